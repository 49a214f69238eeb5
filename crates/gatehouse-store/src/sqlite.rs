//! The embedded SQLite backend (design §5: one node, WAL).
//!
//! Its queries are the shared ones of `src/queries.rs`, compiled here
//! against [`dialect`]: SQLite's single writer (`BEGIN IMMEDIATE`) stands in for
//! PostgreSQL's row and advisory locks.

mod dialect;
#[cfg(test)]
mod migrate_tests;

#[path = "queries.rs"]
mod queries;

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::error::StoreError;

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections of a file database: WAL lets readers run beside the one writer.
const FILE_POOL_SIZE: u32 = 4;

/// [`Store`](crate::Store) on SQLite through an sqlx pool.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database at `url`:
    /// `sqlite://path/to/file.db` (relative paths are relative to the working directory) or
    /// `sqlite::memory:` (a private database that lives as long as this store).
    ///
    /// Refuses a database migrated by a newer build ([`StoreError::SchemaTooNew`]).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let target = Target::parse(url)?;
        let options = connect_options(url)?.create_if_missing(true);
        let pool = match target {
            // An in-memory database dies with its last connection: keep exactly one, forever.
            Target::Memory => SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None),
            Target::File => SqlitePoolOptions::new().max_connections(FILE_POOL_SIZE),
        };
        let options = match target {
            Target::Memory => options,
            // NORMAL is durable in WAL mode except for the last transactions on power loss
            // (https://www.sqlite.org/pragma.html#pragma_synchronous).
            Target::File => options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal),
        };
        let pool = pool
            .connect_with(options)
            .await
            .map_err(|e| StoreError::db("open database", e))?;
        queries::migrate::run(&pool, dialect::MIGRATIONS).await?;
        Ok(Self { pool })
    }

    /// Opens the existing database file at `url` only to read it (the source of `gatehouse
    /// copy`): read-only connections, no migration, nothing created.
    ///
    /// `NotFound { what: "database" }` for a missing file, `InvalidUrl` for `sqlite::memory:`
    /// (a new database holds nothing), and `SchemaTooOld`, `SchemaTooNew` or
    /// `MigrationChanged` unless the database is at exactly this build's schema.
    pub async fn open_read_only(url: &str) -> Result<Self, StoreError> {
        if Target::parse(url)? == Target::Memory {
            return Err(StoreError::InvalidUrl(
                "`sqlite::memory:` is a new, empty database: there is nothing to read".into(),
            ));
        }
        let options = connect_options(url)?.read_only(true);
        let path = options.get_filename();
        if !path.is_file() {
            return Err(StoreError::not_found(
                "database",
                &path.display().to_string(),
            ));
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(FILE_POOL_SIZE)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::db("open database", e))?;
        if let Err(e) = queries::migrate::verify(&pool, dialect::MIGRATIONS).await {
            pool.close().await;
            return Err(e);
        }
        Ok(Self { pool })
    }
}

/// What every connection gets: foreign keys on, and a wait for the write lock.
fn connect_options(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    Ok(SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::InvalidUrl(e.to_string()))?
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT))
}

/// What a `sqlite:` URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Memory,
    File,
}

impl Target {
    fn parse(url: &str) -> Result<Self, StoreError> {
        let Some(rest) = url.strip_prefix("sqlite:") else {
            return Err(StoreError::InvalidUrl(
                "a sqlite url starts with `sqlite:`".into(),
            ));
        };
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
        let memory_mode = params.split('&').any(|p| p == "mode=memory");
        if database == ":memory:" || memory_mode {
            Ok(Self::Memory)
        } else if database.is_empty() {
            Err(StoreError::InvalidUrl(
                "a sqlite url needs a file path, as in `sqlite://gatehouse.db`, or `sqlite::memory:`"
                    .into(),
            ))
        } else {
            Ok(Self::File)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NewUser;
    use crate::shared::{decode_list, encode_list};
    use crate::store::Store as _;

    #[test]
    fn urls_are_classified() {
        assert_eq!(Target::parse("sqlite::memory:"), Ok(Target::Memory));
        assert_eq!(Target::parse("sqlite://:memory:"), Ok(Target::Memory));
        assert_eq!(
            Target::parse("sqlite://x.db?mode=memory"),
            Ok(Target::Memory)
        );
        assert_eq!(Target::parse("sqlite://gatehouse.db"), Ok(Target::File));
        assert_eq!(Target::parse("sqlite:///var/lib/g.db"), Ok(Target::File));
        assert_eq!(Target::parse("sqlite:g.db"), Ok(Target::File));
        assert!(matches!(
            Target::parse("sqlite://"),
            Err(StoreError::InvalidUrl(_))
        ));
        assert!(matches!(
            Target::parse("sqlite://?cache=shared"),
            Err(StoreError::InvalidUrl(_))
        ));
        assert!(matches!(
            Target::parse("postgres://h/db"),
            Err(StoreError::InvalidUrl(_))
        ));
    }

    #[test]
    fn lists_round_trip_as_json() -> Result<(), StoreError> {
        let list = vec!["a\"b".to_owned(), "ü".to_owned(), String::new()];
        let text = encode_list(&list)?;
        assert_eq!(decode_list(&text, "user", "x")?, list);
        assert!(matches!(
            decode_list("{not json", "user", "x"),
            Err(StoreError::Unavailable(m)) if m.starts_with("corrupt user `x`")
        ));
        Ok(())
    }

    #[tokio::test]
    async fn memory_databases_are_private_and_persist_across_calls() -> Result<(), StoreError> {
        let a = SqliteStore::open("sqlite::memory:").await?;
        let b = SqliteStore::open("sqlite::memory:").await?;
        a.create_user(
            NewUser {
                name: "only-in-a".into(),
                ..NewUser::default()
            },
            1,
        )
        .await?;
        a.ping().await?;
        assert!(a.get_user("only-in-a").await?.is_some());
        assert!(b.get_user("only-in-a").await?.is_none());
        Ok(())
    }

    #[tokio::test]
    async fn closed_store_is_unavailable() -> Result<(), StoreError> {
        let s = SqliteStore::open("sqlite::memory:").await?;
        s.close().await;
        assert!(matches!(s.ping().await, Err(StoreError::Unavailable(_))));
        Ok(())
    }
}
