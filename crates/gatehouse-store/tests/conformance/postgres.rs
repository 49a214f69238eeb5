//! PostgreSQL harness and PostgreSQL-only behaviour: each test gets its own schema in the
//! database named by `GATEHOUSE_TEST_POSTGRES_URL`, dropped afterwards (also on failure).
//! Without the variable every test here and every PostgreSQL conformance case prints
//! `skipped: a PostgreSQL server … is not installed (…)` and passes (fails under
//! `GATEHOUSE_TEST_REQUIRE=all`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use gatehouse_store::{
    NewUser, PgStore, Revocation, RevocationKind, Store, StoreError, open_store,
};
use sqlx::{AssertSqlSafe, Connection as _, PgConnection};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The server to test against, or `None` (after saying so) to skip.
pub fn base_url() -> Option<String> {
    gatehouse_testkit::POSTGRES.found(gatehouse_testkit::env("GATEHOUSE_TEST_POSTGRES_URL"))
}

/// A schema of its own in the test database, dropped (with everything in it) on drop.
pub struct Schema {
    base: String,
    name: String,
}

impl Schema {
    /// Creates `gh_<label>_<pid>_<n>`.
    pub async fn create(base: &str, label: &str) -> Result<Self, StoreError> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let label: String = label
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(32)
            .collect::<String>()
            .to_ascii_lowercase();
        let name = format!("gh_{label}_{}_{n}", std::process::id());
        let mut conn = PgConnection::connect(base)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        // `name` is built from [a-z0-9_] only, so quoting it is enough.
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA \"{name}\"")))
            .execute(&mut conn)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let _ = conn.close().await;
        Ok(Self {
            base: base.to_owned(),
            name,
        })
    }

    /// The test URL with this schema as the only `search_path` entry.
    pub fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        // `application_name` lets cleanup find this store's connections.
        format!(
            "{}{sep}options=-c%20search_path%3D{name}&application_name={name}",
            self.base,
            name = self.name
        )
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let base = self.base.clone();
        let name = self.name.clone();
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread
        // with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&base).await?;
                // The test's runtime is blocked on this thread, so its pool cannot roll back
                // a transaction it still holds: end the store's connections first.
                sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE application_name = $1",
                )
                .bind(&name)
                .execute(&mut conn)
                .await?;
                sqlx::query("SET lock_timeout = '10s'")
                    .execute(&mut conn)
                    .await?;
                sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await?;
                conn.close().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}", self.name);
        }
    }
}

/// A fresh, migrated store in its own schema, or `None` to skip.
pub async fn fresh(label: &str) -> Result<Option<(Arc<dyn Store>, Schema)>, StoreError> {
    let Some(base) = base_url() else {
        return Ok(None);
    };
    let schema = Schema::create(&base, label).await?;
    let store = PgStore::open(&schema.url()).await?;
    Ok(Some((Arc::new(store), schema)))
}

async fn empty_schema(label: &str) -> Result<Option<Schema>, StoreError> {
    match base_url() {
        Some(base) => Ok(Some(Schema::create(&base, label).await?)),
        None => Ok(None),
    }
}

#[tokio::test]
async fn reopening_does_not_rerun_migrations() -> TestResult {
    let Some(schema) = empty_schema("pg_reopen").await? else {
        return Ok(());
    };
    let store = PgStore::open(&schema.url()).await?;
    let first = store.applied_migrations().await?;
    let versions: Vec<i64> = first.iter().map(|m| m.version).collect();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6]);
    assert_eq!(PgStore::supported_schema_version(), 6);
    store.close().await;
    let store = open_store(&schema.url()).await?;
    store.ping().await?;
    let again = PgStore::open(&schema.url()).await?;
    assert_eq!(again.applied_migrations().await?, first);
    Ok(())
}

/// Several nodes starting at once: the advisory lock lets exactly one apply each step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_migrate_once() -> TestResult {
    let Some(schema) = empty_schema("pg_concurrent_open").await? else {
        return Ok(());
    };
    let url = schema.url();
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PgStore::open(&url).await })
        })
        .collect();
    for open in opens {
        open.await??;
    }
    let store = PgStore::open(&url).await?;
    assert_eq!(
        store.applied_migrations().await?.len() as i64,
        PgStore::supported_schema_version()
    );
    Ok(())
}

#[tokio::test]
async fn database_from_the_future_is_refused() -> TestResult {
    let Some(schema) = empty_schema("pg_future").await? else {
        return Ok(());
    };
    PgStore::open(&schema.url()).await?.close().await;
    let mut conn = PgConnection::connect(&schema.url()).await?;
    sqlx::query(
        "INSERT INTO _gatehouse_migrations (version, description, checksum, applied_at)
         VALUES (7, 'from a newer build', '\\x00', 0)",
    )
    .execute(&mut conn)
    .await?;
    conn.close().await?;
    let err = PgStore::open(&schema.url()).await.err();
    assert_eq!(
        err,
        Some(StoreError::SchemaTooNew {
            found: 7,
            supported: 6
        })
    );
    Ok(())
}

/// Many nodes revoking at once while one polls: the cursor never skips an entry (the
/// advisory lock makes sequence order commit order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_cursor_misses_nothing_under_concurrent_writers() -> TestResult {
    let Some((store, _schema)) = fresh("pg_cursor_race").await? else {
        return Ok(());
    };
    let writers: Vec<_> = (0..40)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .revoke_token(
                        Revocation {
                            id: format!("jti-{i}"),
                            kind: RevocationKind::Token,
                            expires_at: 2_000,
                            reason: "test".into(),
                        },
                        1_000,
                    )
                    .await
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    let mut cursor = 0;
    loop {
        let finished = writers.iter().all(|w| w.is_finished());
        let (batch, next) = store.revocations_since(cursor).await?;
        for entry in batch {
            assert!(seen.insert(entry.id.clone()), "{} seen twice", entry.id);
        }
        cursor = next;
        if finished {
            break;
        }
        tokio::task::yield_now().await;
    }
    for writer in writers {
        assert!(writer.await??);
    }
    let (rest, _) = store.revocations_since(cursor).await?;
    assert!(rest.is_empty(), "a poller skipped {rest:?}");
    assert_eq!(seen.len(), 40);
    Ok(())
}

#[tokio::test]
async fn unreachable_server_is_unavailable() {
    let err = PgStore::open("postgres://gatehouse:s3cret@127.0.0.1:1/none")
        .await
        .err();
    let message = err.as_ref().map(ToString::to_string).unwrap_or_default();
    assert!(matches!(err, Some(StoreError::Unavailable(_))), "{err:?}");
    assert!(!message.contains("s3cret"), "{message}");
}

/// `gatehouse copy` reads its source through `open_read_only`: a schema without Gatehouse's
/// tables is refused and left empty, and nothing can be written through it.
#[tokio::test]
async fn read_only_open_creates_nothing_and_writes_nothing() -> TestResult {
    let Some(schema) = empty_schema("pg_read_only").await? else {
        return Ok(());
    };
    let err = PgStore::open_read_only(&schema.url()).await.err();
    assert_eq!(
        err,
        Some(StoreError::SchemaTooOld {
            found: 0,
            supported: PgStore::supported_schema_version()
        })
    );
    let mut conn = PgConnection::connect(&schema.url()).await?;
    let created: bool = sqlx::query_scalar("SELECT to_regclass('users') IS NOT NULL")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    assert!(!created, "reading migrated the source");

    let store = PgStore::open(&schema.url()).await?;
    let alice = NewUser {
        name: "alice".into(),
        ..NewUser::default()
    };
    store.create_user(alice.clone(), 1).await?;
    let reader = PgStore::open_read_only(&schema.url()).await?;
    assert_eq!(reader.count_records().await?.users, 1);
    let bob = NewUser {
        name: "bob".into(),
        ..alice
    };
    let refused = reader.create_user(bob, 2).await.err();
    assert!(
        matches!(refused, Some(StoreError::Unavailable(_))),
        "{refused:?}"
    );
    assert_eq!(reader.export().await?, store.export().await?);
    Ok(())
}

/// Every table a migration creates is one `gatehouse copy` moves (`RecordCounts::tables`).
#[tokio::test]
async fn every_table_of_the_schema_is_copied() -> TestResult {
    let Some((_store, schema)) = fresh("pg_tables").await? else {
        return Ok(());
    };
    let mut conn = PgConnection::connect(&schema.url()).await?;
    let tables = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
           AND table_name <> '_gatehouse_migrations'",
    )
    .fetch_all(&mut conn)
    .await?;
    conn.close().await?;
    crate::assert_every_table_copied(tables);
    Ok(())
}
