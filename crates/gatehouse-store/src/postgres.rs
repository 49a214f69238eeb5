//! The PostgreSQL backend (design §5: several nodes share one database).
//!
//! Same semantics as the SQLite backend, checked by the same conformance suite, and the same
//! queries: the shared ones of `src/queries.rs`, compiled here against
//! [`dialect`]. Where SQLite relies on its single writer (`BEGIN IMMEDIATE`), this backend
//! takes row locks (`SELECT ... FOR UPDATE`) and, around revocation inserts, a
//! transaction-level advisory lock so that the revocation cursor's sequence order equals
//! commit order.

mod dialect;

#[path = "queries.rs"]
#[expect(
    clippy::duplicate_mod,
    reason = "compiled once per backend by design: sqlite.rs loads it too (see src/queries.rs)"
)]
mod queries;

use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::error::StoreError;

/// Connections per node.
const POOL_SIZE: u32 = 10;
/// How long a caller waits for a connection (including connecting) before `Unavailable`:
/// a database that is down answers 503 quickly instead of hanging requests. sqlx retries a
/// refused connection until this deadline, so it bounds both a stopped and a black-holed
/// database (an idle connection is pinged within it too).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);
/// Server-side bound of every statement of the serving pool.
const STATEMENT_TIMEOUT: &str = "5s";
/// How long `open` waits for the database (start-up may race the database's own).
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// [`Store`](crate::Store) on PostgreSQL through an sqlx pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database?options`, as libpq
    /// reads it; e.g. `?options=-c%20search_path%3Dgatehouse` picks a schema) and migrates
    /// the database. Several nodes may open the same database at once: migrations serialize
    /// on an advisory lock.
    ///
    /// Refuses a database migrated by a newer build ([`StoreError::SchemaTooNew`]). Errors
    /// never repeat the URL, which may carry a password.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = connect_options(url)?;
        // Migrations get a connection of their own, without the statement timeout (an
        // index build on a large table may take longer).
        let setup = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(OPEN_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(|e| StoreError::db("connect to postgres", redact(&e)))?;
        let migrated = queries::migrate::run(&setup, dialect::MIGRATIONS).await;
        setup.close().await;
        migrated?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options.options([("statement_timeout", STATEMENT_TIMEOUT)]));
        Ok(Self { pool })
    }

    /// Connects to `url` only to read it (the source of `gatehouse copy`): every transaction
    /// is read-only (`default_transaction_read_only`), and nothing is migrated.
    ///
    /// `SchemaTooOld` (0 for a database without Gatehouse's tables, as when `search_path`
    /// names the wrong schema), `SchemaTooNew` or `MigrationChanged` unless the database is at
    /// exactly this build's schema.
    pub async fn open_read_only(url: &str) -> Result<Self, StoreError> {
        let options = connect_options(url)?.options([("default_transaction_read_only", "on")]);
        let pool = connect(options).await?;
        if let Err(e) = queries::migrate::verify(&pool, dialect::MIGRATIONS).await {
            pool.close().await;
            return Err(e);
        }
        Ok(Self { pool })
    }
}

fn connect_options(url: &str) -> Result<PgConnectOptions, StoreError> {
    PgConnectOptions::from_str(url)
        .map_err(|_| StoreError::InvalidUrl("malformed postgres url".into()))
}

async fn connect(options: PgConnectOptions) -> Result<PgPool, StoreError> {
    PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|e| StoreError::db("connect to postgres", redact(&e)))
}

/// A connection error without anything the URL may have carried: sqlx's configuration and
/// TLS errors can quote parts of it, so only the kind of failure is kept.
fn redact(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(e) => e.message().to_owned(),
        sqlx::Error::Io(e) => e.to_string(),
        sqlx::Error::PoolTimedOut => "timed out".into(),
        sqlx::Error::Tls(_) => "tls handshake failed".into(),
        sqlx::Error::Configuration(_) => "invalid connection settings".into(),
        _ => "connection failed".into(),
    }
}
