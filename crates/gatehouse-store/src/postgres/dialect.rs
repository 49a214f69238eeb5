//! What the shared queries (`src/queries/`) need from PostgreSQL: the database type, row
//! locks, the revocation advisory lock, byte-order collation and the migration bookkeeping.
//!
//! Where SQLite relies on its single writer, this backend takes row locks
//! (`SELECT ... FOR UPDATE`) and, around revocation inserts, a transaction-level advisory
//! lock. Lock order, shared by every query: user and session rows, then refresh-token rows,
//! then the revocation advisory lock (never a row lock after it), so no deadlock involves it.
//!
//! The revocation cursor is `seq`, a `BIGSERIAL`. A sequence value is taken at insert time,
//! not at commit: without care a poller could read seq 7, move its cursor past 6 while the
//! transaction holding 6 is still open, and never see 6. Every insert therefore runs under
//! one transaction-level advisory lock ([`lock_revocations`]), held until commit, so a
//! transaction that takes a larger `seq` always commits after one holding a smaller `seq`:
//! sequence order is commit order, and `seq > cursor` never skips a row a later read would
//! reveal. Revocations are rare, so serializing their inserts costs nothing that matters.

use sqlx::{PgConnection, Pool, Transaction};

use crate::error::StoreError;
use crate::shared::Migration;

/// The database the shared queries run on here.
pub(super) type Db = sqlx::Postgres;
/// A connection (or transaction) of [`Db`].
pub(super) type Connection = PgConnection;
/// The store the shared `Store` implementation (`queries/store.rs`) is for.
pub(super) type Backend = super::PgStore;

/// Locks the selected rows until the end of the transaction; concurrent writers of the same
/// rows queue, and READ COMMITTED re-reads a row once its lock is released.
macro_rules! for_update {
    () => {
        " FOR UPDATE"
    };
}
pub(super) use for_update;

/// Makes an `ORDER BY` on text compare bytes, as SQLite's default collation does, whatever
/// the database's collation is.
macro_rules! bytewise {
    () => {
        " COLLATE \"C\""
    };
}
pub(super) use bytewise;

/// Writes bind parameter `n` (1-based) of SQL built at run time: `$n`.
pub(super) fn push_param(sql: &mut String, n: usize) {
    use std::fmt::Write as _;
    let _ = write!(sql, "${n}");
}

/// A transaction that will write (row locks are taken by the statements themselves).
pub(super) async fn begin_write(pool: &Pool<Db>) -> Result<Transaction<'static, Db>, sqlx::Error> {
    pool.begin().await
}

/// A transaction that only reads, seeing one snapshot (an export).
pub(super) async fn begin_snapshot(
    pool: &Pool<Db>,
) -> Result<Transaction<'static, Db>, sqlx::Error> {
    pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
}

/// Key of the advisory lock serializing revocation inserts (arbitrary, fixed: "GHREVOKE").
const REVOCATION_LOCK: i64 = 0x4748_5245_564F_4B45;

/// Takes the revocation advisory lock until the end of the current transaction (see the
/// module docs).
pub(super) async fn lock_revocations(conn: &mut Connection) -> Result<(), StoreError> {
    advisory_xact_lock(conn, REVOCATION_LOCK, "lock revocations").await
}

/// Takes advisory lock `key` until the end of the current transaction.
async fn advisory_xact_lock(
    conn: &mut Connection,
    key: i64,
    what: &'static str,
) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key)
        .execute(conn)
        .await
        .map(drop)
        .map_err(|e| StoreError::db(what, e))
}

/// Key of the advisory lock around creating the first signing key (arbitrary, fixed:
/// "GHSIGKEY").
const SIGNING_KEY_LOCK: i64 = 0x4748_5349_474B_4559;

/// Takes the signing-key advisory lock until the end of the current transaction: nodes
/// starting together on an empty database create one signing key between them.
pub(super) async fn lock_signing_keys(conn: &mut Connection) -> Result<(), StoreError> {
    advisory_xact_lock(conn, SIGNING_KEY_LOCK, "lock signing keys").await
}

/// Keeps other writers (a node already started on the target) out of an import until it
/// commits; readers go on, and see nothing of it before the commit.
pub(super) async fn lock_for_import(conn: &mut Connection) -> Result<(), StoreError> {
    sqlx::query(
        "LOCK TABLE users, api_keys, signing_keys, sessions, refresh_tokens, revocations,
             digest_secrets, audit IN EXCLUSIVE MODE",
    )
    .execute(conn)
    .await
    .map(drop)
    .map_err(|e| StoreError::db("lock tables for import", e))
}

/// The highest `seq` ever handed out in table `$1` (a `BIGSERIAL` table), 0 if none: the
/// last value of its sequence, also after the newest rows were deleted.
pub(super) const SEQUENCE_HIGH: &str =
    "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence($1, 'seq')::regclass), 0)";

/// Makes the next `seq` of `table` greater than `high`: rows inserted with explicit `seq`
/// values do not move a sequence.
pub(super) async fn raise_sequence(
    conn: &mut Connection,
    table: &str,
    high: i64,
) -> Result<(), StoreError> {
    if high < 1 {
        // Nothing handed out yet; `setval` takes 1 at least.
        return Ok(());
    }
    sqlx::query("SELECT setval(pg_get_serial_sequence($1, 'seq'), $2)")
        .bind(table)
        .bind(high)
        .execute(conn)
        .await
        .map(drop)
        .map_err(|e| StoreError::db("set sequence", e))
}

/// Whether a unique violation on `api_keys` is the prefix's: the constraint is named in
/// migrations/postgres/0001_init.sql.
pub(super) fn is_prefix_conflict(err: &sqlx::Error) -> bool {
    err.as_database_error().and_then(|e| e.constraint()) == Some("api_keys_prefix_key")
}

/// Every migration this build knows, oldest first (`migrations/postgres/`).
pub(super) const MIGRATIONS: &[Migration] = crate::shared::migrations!("postgres");

pub(super) const CREATE_MIGRATIONS_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS _gatehouse_migrations (
    version     BIGINT NOT NULL PRIMARY KEY,
    description TEXT   NOT NULL,
    checksum    BYTEA  NOT NULL,
    applied_at  BIGINT NOT NULL
)";

/// Whether the database (its `search_path`) has a migrations table at all.
pub(super) const MIGRATIONS_TABLE_EXISTS: &str =
    "SELECT to_regclass('_gatehouse_migrations') IS NOT NULL";

pub(super) const RECORD_MIGRATION: &str =
    "INSERT INTO _gatehouse_migrations (version, description, checksum, applied_at)
     VALUES ($1, $2, $3, extract(epoch FROM now())::bigint)";

/// Key of the advisory lock migrations take (arbitrary, fixed: "GHMIGRAT").
const MIGRATION_LOCK: i64 = 0x4748_4D49_4752_4154;

/// The transaction of one migration step, under an advisory lock: several nodes may start at
/// once against one database, and exactly one applies each step while the others wait, then
/// see it recorded. (The migrations table is created under the lock too: `CREATE TABLE IF
/// NOT EXISTS` alone races on the catalog's unique index.)
pub(super) async fn begin_migration(
    pool: &Pool<Db>,
) -> Result<Transaction<'static, Db>, StoreError> {
    let mut tx = pool
        .begin()
        .await
        .map_err(|e| StoreError::db("begin migration", e))?;
    advisory_xact_lock(&mut tx, MIGRATION_LOCK, "lock migrations").await?;
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::{check_order, latest};

    #[test]
    fn the_shipped_list_is_ordered_and_matches_sqlite_versions() {
        assert!(check_order(MIGRATIONS).is_ok());
        assert_eq!(latest(MIGRATIONS), MIGRATIONS.len() as i64);
        assert_eq!(
            latest(MIGRATIONS),
            crate::SqliteStore::supported_schema_version(),
            "both backends must know the same schema versions"
        );
    }
}
