//! Store conformance: the suite in `suite.rs` run once per backend, each case on a fresh,
//! empty store. SQLite-only behaviour (files, migrations) is tested in `sqlite.rs`,
//! PostgreSQL-only behaviour in `postgres.rs`. The PostgreSQL arm runs when
//! `GATEHOUSE_TEST_POSTGRES_URL` is set (each case in its own fresh schema) and otherwise
//! skips, saying so (`gatehouse_testkit::POSTGRES`; a failure under `GATEHOUSE_TEST_REQUIRE`).
//!
//! `copy.rs` runs the copy cases (`Store::import_from`) for every pair of backends.
//!
//! Adding a backend: add an arm to `conformance!` below whose `$open` expression yields a
//! fresh `Some((Arc<dyn Store>, guard))`, or `None` to skip (saying so).

mod copy;
mod postgres;
mod sqlite;
mod suite;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use gatehouse_store::{SqliteStore, Store, StoreError};

/// A directory under the system temp dir, unique to this process and call, removed on drop
/// (also when the test panics).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> std::io::Result<Self> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "gatehouse-store-{}-{label}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `sqlite://` URL of a database file in this directory.
    pub fn sqlite_url(&self, file: &str) -> String {
        format!("sqlite://{}", self.0.join(file).display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn sqlite_memory() -> Result<Option<(Arc<dyn Store>, ())>, StoreError> {
    Ok(Some((
        Arc::new(SqliteStore::open("sqlite::memory:").await?),
        (),
    )))
}

pub async fn sqlite_file(label: &str) -> Result<Option<(Arc<dyn Store>, TempDir)>, StoreError> {
    let dir = TempDir::new(label).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let store = SqliteStore::open(&dir.sqlite_url("gatehouse.db")).await?;
    Ok(Some((Arc::new(store), dir)))
}

/// Asserts that `tables` (of a migrated schema, without `_gatehouse_migrations`) are the
/// ones `gatehouse copy` moves (`RecordCounts::tables`): a new table cannot be forgotten.
pub fn assert_every_table_copied(tables: Vec<String>) {
    let copied: std::collections::BTreeSet<String> = gatehouse_store::RecordCounts::default()
        .tables()
        .iter()
        .map(|(table, _)| (*table).to_owned())
        .collect();
    assert_eq!(
        tables
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>(),
        copied
    );
}

/// One `#[tokio::test]` per (backend, case).
macro_rules! conformance {
    ($( $backend:ident => |$label:ident| $open:expr ;)+) => {$(
        mod $backend {
            conformance!(@cases $label, $open,
                ping, users_crud, user_errors, attributes_round_trip, suspend_round_trip, api_keys_lifecycle,
                api_key_errors, delete_user_removes_keys, signing_keys,
                first_signing_key_is_stored_once, debug_redacts_secrets,
                sessions_create_get_list, refresh_rotates_twice, refresh_reuse_revokes_family,
                refresh_expired_and_unknown, refresh_concurrent_rotation, session_step_up,
                revoke_sessions_feed_the_revocation_list, revocation_cursor, revocation_purge,
                totp_steps_are_monotonic, mfa_secret_round_trip, digest_secrets,
                delete_user_removes_identity, audit_append_and_query, stats_add_up_and_purge,
                export_of_an_empty_store,
                export_reads_everything);
        }
    )+};
    (@cases $label:ident, $open:expr, $($case:ident),+) => {$(
        #[tokio::test]
        async fn $case() -> Result<(), gatehouse_store::StoreError> {
            let $label = stringify!($case);
            let Some((store, _guard)) = $open.await? else {
                return Ok(());
            };
            crate::suite::$case(&*store).await
        }
    )+};
}

conformance! {
    sqlite_memory => |_label| crate::sqlite_memory();
    sqlite_file => |label| crate::sqlite_file(label);
    postgresql => |label| crate::postgres::fresh(label);
}
