//! SQLite-specific behaviour: files, WAL, migrations across opens, concurrent writers,
//! read-only opening (the source of a copy).

use std::sync::Arc;

use gatehouse_store::{NewUser, SqliteStore, Store, StoreError, open_store};
use sqlx::Connection as _;
use sqlx::sqlite::SqliteConnection;

use crate::TempDir;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn user(name: &str) -> NewUser {
    NewUser {
        name: name.into(),
        ..NewUser::default()
    }
}

#[tokio::test]
async fn reopening_keeps_data_and_does_not_rerun_migrations() -> TestResult {
    let dir = TempDir::new("reopen")?;
    let url = dir.sqlite_url("gatehouse.db");
    let store = SqliteStore::open(&url).await?;
    store.create_user(user("alice"), 1).await?;
    let first = store.applied_migrations().await?;
    assert_eq!(first.len() as i64, SqliteStore::supported_schema_version());
    store.close().await;

    let store = SqliteStore::open(&url).await?;
    assert!(
        store.get_user("alice").await?.is_some(),
        "data survived the reopen"
    );
    assert_eq!(
        store.applied_migrations().await?,
        first,
        "migrations were recorded again"
    );
    store.create_user(user("bob"), 2).await?;
    drop(store);

    // Through the dispatcher, with a still-open pool from the previous handle dropped.
    let store = open_store(&url).await?;
    assert_eq!(store.list_users().await?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn database_from_the_future_is_refused() -> TestResult {
    let dir = TempDir::new("future")?;
    let url = dir.sqlite_url("gatehouse.db");
    SqliteStore::open(&url).await?.close().await;

    let future = SqliteStore::supported_schema_version() + 1;
    let mut conn = SqliteConnection::connect(&url).await?;
    sqlx::query(
        "INSERT INTO _gatehouse_migrations (version, description, checksum, applied_at)
         VALUES (?, 'from a newer build', x'00', 0)",
    )
    .bind(future)
    .execute(&mut conn)
    .await?;
    conn.close().await?;

    let err = SqliteStore::open(&url).await.err();
    assert_eq!(
        err,
        Some(StoreError::SchemaTooNew {
            found: future,
            supported: future - 1
        })
    );
    let message = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("newer than this build supports"),
        "{message}"
    );
    assert!(
        open_store(&url).await.is_err(),
        "the dispatcher refuses it too"
    );
    Ok(())
}

#[tokio::test]
async fn file_database_uses_wal_and_is_created_on_open() -> TestResult {
    let dir = TempDir::new("wal")?;
    let path = dir.path().join("new.db");
    assert!(!path.exists());
    let store = SqliteStore::open(&dir.sqlite_url("new.db")).await?;
    assert!(path.exists(), "open created the file");
    let mut conn = SqliteConnection::connect(&dir.sqlite_url("new.db")).await?;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await?;
    assert_eq!(mode, "wal");
    conn.close().await?;
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn missing_directory_is_unavailable_not_a_panic() {
    let url = format!(
        "sqlite://{}",
        std::env::temp_dir()
            .join("gatehouse-no-such-dir-7f3a/x/y.db")
            .display()
    );
    assert!(matches!(
        SqliteStore::open(&url).await,
        Err(StoreError::Unavailable(_))
    ));
}

/// Concurrent writers through the pool wait for the lock (busy_timeout) instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_all_succeed() -> TestResult {
    let dir = TempDir::new("concurrent")?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.sqlite_url("c.db")).await?);
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let name = format!("user-{i:02}");
                store.create_user(user(&name), i).await?;
                store.suspend_user(&name, "load test", i + 1).await?;
                store.delete_user(&name).await
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    assert!(store.list_users().await?.is_empty());
    Ok(())
}

/// A database at schema v1, as an older build left it, with user `old-timer`.
async fn v1_database(url: &str) -> TestResult {
    use sha2::{Digest as _, Sha256};

    let v1 = include_str!("../../migrations/sqlite/0001_init.sql");
    let mut conn = SqliteConnection::connect(&format!("{url}?mode=rwc")).await?;
    sqlx::raw_sql(v1).execute(&mut conn).await?;
    sqlx::raw_sql(
        "CREATE TABLE _gatehouse_migrations (version INTEGER NOT NULL PRIMARY KEY,
             description TEXT NOT NULL, checksum BLOB NOT NULL, applied_at INTEGER NOT NULL
         ) STRICT;
         INSERT INTO users (name, roles, created_at) VALUES ('old-timer', '[\"admin\"]', 5);",
    )
    .execute(&mut conn)
    .await?;
    sqlx::query("INSERT INTO _gatehouse_migrations VALUES (1, 'init', ?, 5)")
        .bind(Sha256::digest(v1.as_bytes()).to_vec())
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

/// A database left at schema v1 by an older build upgrades in place: its users survive and
/// gain the identity features (v2: sessions, revocations, MFA, Digest secrets).
#[tokio::test]
async fn v1_database_upgrades_to_identity_schema() -> TestResult {
    let dir = TempDir::new("upgrade")?;
    let url = dir.sqlite_url("old.db");
    v1_database(&url).await?;

    let store = SqliteStore::open(&url).await?;
    let versions: Vec<i64> = store
        .applied_migrations()
        .await?
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6], "every later step ran");
    let user = store.get_user("old-timer").await?.ok_or("user lost")?;
    assert_eq!(
        (user.roles.as_slice(), user.mfa_secret),
        (&["admin".to_owned()][..], None)
    );
    store
        .set_mfa_secret("old-timer", Some(vec![1, 2, 3]))
        .await?;
    assert!(store.accept_totp_step("old-timer", 7).await?);
    let session = gatehouse_store::NewSession {
        id: "s".into(),
        user: "old-timer".into(),
        acr: "pwd".into(),
        auth_time: 10,
        amr: Vec::new(),
        expires_at: 100,
        first_refresh: [1; 32],
    };
    store.create_session(session, 10).await?;
    Ok(())
}

/// `gatehouse copy` reads its source through `open_read_only`: nothing is created, nothing
/// can be written, and what it reads copies.
#[tokio::test]
async fn read_only_open_creates_nothing_and_writes_nothing() -> TestResult {
    let dir = TempDir::new("read-only")?;
    let url = dir.sqlite_url("g.db");
    let path = dir.path().join("g.db");
    let missing = SqliteStore::open_read_only(&url).await.err();
    assert_eq!(
        missing,
        Some(StoreError::NotFound {
            what: "database",
            key: path.display().to_string()
        })
    );
    assert!(!path.exists(), "a missing source was created");
    assert!(matches!(
        SqliteStore::open_read_only("sqlite::memory:").await.err(),
        Some(StoreError::InvalidUrl(_))
    ));

    let store = SqliteStore::open(&url).await?;
    store.create_user(user("alice"), 1).await?;
    store.close().await;
    let reader = SqliteStore::open_read_only(&url).await?;
    assert_eq!(reader.count_records().await?.users, 1);
    let refused = reader.create_user(user("bob"), 2).await.err();
    assert!(
        matches!(refused, Some(StoreError::Unavailable(_))),
        "{refused:?}"
    );
    let target = SqliteStore::open("sqlite::memory:").await?;
    assert_eq!(target.import_from(&reader).await?.users, 1);
    assert_eq!(reader.export().await?, target.export().await?);
    Ok(())
}

/// A source at an older schema is not migrated by reading it: copying it is refused until
/// it is migrated, and it stays as it was.
#[tokio::test]
async fn read_only_open_refuses_an_older_schema_and_leaves_it() -> TestResult {
    let dir = TempDir::new("read-only-v1")?;
    let url = dir.sqlite_url("old.db");
    v1_database(&url).await?;
    let err = SqliteStore::open_read_only(&url).await.err();
    assert_eq!(
        err,
        Some(StoreError::SchemaTooOld {
            found: 1,
            supported: SqliteStore::supported_schema_version()
        })
    );
    let mut conn = SqliteConnection::connect(&url).await?;
    let versions: i64 = sqlx::query_scalar("SELECT count(*) FROM _gatehouse_migrations")
        .fetch_one(&mut conn)
        .await?;
    assert_eq!(versions, 1, "reading migrated the source");
    conn.close().await?;
    Ok(())
}

/// Every table a migration creates is one `gatehouse copy` moves (`RecordCounts::tables`),
/// so a new table cannot be forgotten by the copy.
#[tokio::test]
async fn every_table_of_the_schema_is_copied() -> TestResult {
    let dir = TempDir::new("tables")?;
    let url = dir.sqlite_url("g.db");
    SqliteStore::open(&url).await?.close().await;
    let mut conn = SqliteConnection::connect(&url).await?;
    let tables = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table'
           AND name NOT LIKE 'sqlite_%' AND name <> '_gatehouse_migrations'",
    )
    .fetch_all(&mut conn)
    .await?;
    conn.close().await?;
    crate::assert_every_table_copied(tables);
    Ok(())
}
