//! Durable state of Gatehouse (design §2, §4, §5): users, API keys, token signing keys,
//! sessions with rotating refresh tokens, the access-token revocation list, TOTP and Digest
//! secrets, behind one [`Store`] trait, so callers hold an `Arc<dyn Store>` and never see
//! the backend.
//!
//! Backends: SQLite ([`SqliteStore`], the embedded default, one node) and PostgreSQL
//! ([`PgStore`], several nodes sharing one database). [`open_store`] picks one from the
//! `[store] url` of the configuration.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use gatehouse_store::{open_store, NewUser};
//!
//! let store = open_store("sqlite::memory:").await?;
//! let now = 1_700_000_000;
//! store.create_user(NewUser { name: "alice".into(), ..NewUser::default() }, now).await?;
//! assert!(store.get_user("alice").await?.is_some());
//! # Ok::<(), gatehouse_store::StoreError>(())
//! # }).unwrap();
//! ```

mod error;
mod model;
mod postgres;
mod shared;
mod sqlite;
mod store;

use std::sync::Arc;

pub use error::StoreError;
pub use model::{
    AccountStatus, ApiKey, AuditEntry, AuditKind, AuditQuery, AuditRecord, DigestAlgorithm,
    DigestHa1, DigestSecret, Export, NewApiKey, NewSession, NewUser, RecordCounts, RefreshToken,
    Revocation, RevocationEntry, RevocationKind, RotateOutcome, Session, SigningKey, StatRow,
    StatsQuery, User, UserRecord,
};
pub use postgres::PgStore;
pub use shared::AppliedMigration;
pub use sqlite::SqliteStore;
pub use store::{BoxFuture, Store};

/// Opens the store named by `url`, dispatching on its scheme:
/// `sqlite://path` or `sqlite::memory:` → [`SqliteStore`]; `postgres://` / `postgresql://` →
/// [`PgStore`].
///
/// Error messages never repeat the URL, which may carry a password.
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    match Backend::of(url)? {
        Backend::Sqlite => Ok(Arc::new(SqliteStore::open(url).await?)),
        Backend::Postgres => Ok(Arc::new(PgStore::open(url).await?)),
    }
}

/// Opens the existing store named by `url` (the forms [`open_store`] takes) only to read it,
/// as `gatehouse copy` reads its source: nothing is created or migrated, and the database
/// must be at exactly this build's schema ([`StoreError::SchemaTooOld`] otherwise, or
/// `NotFound { what: "database" }` for a missing SQLite file). See
/// [`SqliteStore::open_read_only`] and [`PgStore::open_read_only`].
pub async fn open_store_read_only(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    match Backend::of(url)? {
        Backend::Sqlite => Ok(Arc::new(SqliteStore::open_read_only(url).await?)),
        Backend::Postgres => Ok(Arc::new(PgStore::open_read_only(url).await?)),
    }
}

/// The backend a store URL names, by its scheme.
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of(url: &str) -> Result<Self, StoreError> {
        match url.split_once(':').map(|(scheme, _)| scheme) {
            Some("sqlite") => Ok(Self::Sqlite),
            Some("postgres" | "postgresql") => Ok(Self::Postgres),
            _ => Err(StoreError::InvalidUrl(
                "unknown scheme: expected `sqlite://path`, `sqlite::memory:` or `postgres://...`"
                    .into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dispatches_on_scheme_without_echoing_the_url() {
        // Port 1 on loopback refuses at once: the postgres arm is taken and fails without
        // echoing the password.
        let pg = open_store("postgres://gate:hunter2@127.0.0.1:1/gatehouse")
            .await
            .err();
        let pg = pg.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            pg.starts_with("store unavailable: connect to postgres"),
            "{pg}"
        );
        assert!(!pg.contains("hunter2"), "{pg}");
        let bad = open_store("postgresql://gate:hunter2@[::1/x").await.err();
        let bad = bad.map(|e| e.to_string()).unwrap_or_default();
        assert!(!bad.contains("hunter2"), "{bad}");
        let other = open_store("mysql://gate:hunter2@db/x").await.err();
        let other = other.map(|e| e.to_string()).unwrap_or_default();
        assert!(other.starts_with("invalid store url"), "{other}");
        assert!(!other.contains("hunter2"), "{other}");
        assert!(open_store("no-scheme-at-all").await.is_err());
        assert!(open_store("sqlite::memory:").await.is_ok());
    }
}
