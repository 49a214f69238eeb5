//! What the shared queries (`src/queries/`) need from SQLite: the database type, how a write
//! transaction starts, what stands for PostgreSQL's row and advisory locks, and the migration
//! bookkeeping.
//!
//! SQLite has one writer at a time. `BEGIN IMMEDIATE` takes the write lock before the first
//! read, so a transaction that reads and then writes (a refresh-token rotation, a user
//! deletion) runs alone: no row lock is needed (`for_update!` is empty), and a revocation with
//! a smaller `seq` always commits before one with a larger `seq` (no advisory lock either).

use sqlx::{Pool, SqliteConnection, Transaction};

use crate::error::StoreError;
use crate::shared::Migration;

/// The database the shared queries run on here.
pub(super) type Db = sqlx::Sqlite;
/// A connection (or transaction) of [`Db`].
pub(super) type Connection = SqliteConnection;
/// The store the shared `Store` implementation (`queries/store.rs`) is for.
pub(super) type Backend = super::SqliteStore;

/// Row locks: none, the write lock of `BEGIN IMMEDIATE` covers every row.
macro_rules! for_update {
    () => {
        ""
    };
}
pub(super) use for_update;

/// Makes an `ORDER BY` on text compare bytes: SQLite's default `BINARY` collation does.
macro_rules! bytewise {
    () => {
        ""
    };
}
pub(super) use bytewise;

/// Writes bind parameter `n` (1-based) of SQL built at run time: an anonymous `?`, bound in
/// order. sqlx binds a named one (`$N`, `?N`) by asking SQLite for its name, a scan over
/// every parameter of the statement, so a statement with hundreds of them (the many-row audit
/// `INSERT`) costs time quadratic in their number: 7 µs per audit record at 32 rows of 13.
pub(super) fn push_param(sql: &mut String, _n: usize) {
    sql.push('?');
}

/// A transaction that will write: `BEGIN IMMEDIATE` takes the write lock at once, so reads
/// inside it see no concurrent change (and never fail later with `SQLITE_BUSY` on upgrade).
pub(super) async fn begin_write(pool: &Pool<Db>) -> Result<Transaction<'static, Db>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// A transaction that only reads, seeing one snapshot: in WAL mode a deferred `BEGIN`
/// keeps the snapshot of its first read until it ends.
pub(super) async fn begin_snapshot(
    pool: &Pool<Db>,
) -> Result<Transaction<'static, Db>, sqlx::Error> {
    pool.begin().await
}

/// Revocation inserts need no lock here (see the module docs).
pub(super) async fn lock_revocations(_conn: &mut Connection) -> Result<(), StoreError> {
    Ok(())
}

/// The first signing key needs no lock beyond `BEGIN IMMEDIATE`'s write lock.
pub(super) async fn lock_signing_keys(_conn: &mut Connection) -> Result<(), StoreError> {
    Ok(())
}

/// Keeps other writers out of an import: `BEGIN IMMEDIATE` already did.
pub(super) async fn lock_for_import(_conn: &mut Connection) -> Result<(), StoreError> {
    Ok(())
}

/// The highest `seq` ever handed out in table `$1` (an `AUTOINCREMENT` table), 0 if none:
/// SQLite keeps it in `sqlite_sequence`, also after the newest rows were deleted.
pub(super) const SEQUENCE_HIGH: &str =
    "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = $1), 0)";

/// Makes the next `seq` of `table` greater than `high`. Rows inserted with explicit `seq`
/// values already moved it to their maximum; this also keeps purged numbers unused.
pub(super) async fn raise_sequence(
    conn: &mut Connection,
    table: &str,
    high: i64,
) -> Result<(), StoreError> {
    let err = |e| StoreError::db("set sequence", e);
    let done = sqlx::query("UPDATE sqlite_sequence SET seq = max(seq, $2) WHERE name = $1")
        .bind(table)
        .bind(high)
        .execute(&mut *conn)
        .await
        .map_err(err)?;
    if done.rows_affected() == 0 && high > 0 {
        sqlx::query("INSERT INTO sqlite_sequence (name, seq) VALUES ($1, $2)")
            .bind(table)
            .bind(high)
            .execute(conn)
            .await
            .map_err(err)?;
    }
    Ok(())
}

/// Whether a unique violation on `api_keys` is the prefix's: SQLite names the violated
/// column in its message (`api_keys.prefix`).
pub(super) fn is_prefix_conflict(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|d| d.message().contains("api_keys.prefix"))
}

/// Every migration this build knows, oldest first (`migrations/sqlite/`).
pub(super) const MIGRATIONS: &[Migration] = crate::shared::migrations!("sqlite");

pub(super) const CREATE_MIGRATIONS_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS _gatehouse_migrations (
    version     INTEGER NOT NULL PRIMARY KEY,
    description TEXT    NOT NULL,
    checksum    BLOB    NOT NULL,
    applied_at  INTEGER NOT NULL
) STRICT";

/// Whether the database has a migrations table at all (a file of another program has not).
pub(super) const MIGRATIONS_TABLE_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM sqlite_master
     WHERE type = 'table' AND name = '_gatehouse_migrations')";

pub(super) const RECORD_MIGRATION: &str =
    "INSERT INTO _gatehouse_migrations (version, description, checksum, applied_at)
     VALUES ($1, $2, $3, unixepoch())";

/// The transaction of one migration step: under `BEGIN IMMEDIATE` (the write lock) another
/// process migrating at the same time waits, then sees the step recorded.
pub(super) async fn begin_migration(
    pool: &Pool<Db>,
) -> Result<Transaction<'static, Db>, StoreError> {
    begin_write(pool)
        .await
        .map_err(|e| StoreError::db("begin migration", e))
}
