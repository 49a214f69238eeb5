//! `revocations` table: the access-token revocation list every node polls (row 10). Shared
//! by both backends (see `src/queries.rs`); why the cursor never skips a row is told in each
//! backend's `dialect` module (one writer on SQLite, an advisory lock on PostgreSQL).

use sqlx::{Pool, Row};

use super::dialect::{Connection, Db, begin_write, lock_revocations};
use crate::error::StoreError;
use crate::model::{Revocation, RevocationEntry, RevocationKind};

type DbRow = <Db as sqlx::Database>::Row;

/// Every revocation column, unqualified, in the order `copy.rs` binds them.
macro_rules! revocation_columns {
    () => {
        "seq, kind, id, expires_at, reason"
    };
}
pub(super) use revocation_columns;

/// Inserts `revocation` unless its (kind, id) is listed already or it expired before `now`.
/// Returns whether a row was added. Runs in the caller's transaction and takes the
/// revocation lock.
pub(super) async fn record(
    conn: &mut Connection,
    revocation: &Revocation,
    now: i64,
) -> Result<bool, StoreError> {
    if revocation.expires_at < now {
        return Ok(false);
    }
    lock_revocations(&mut *conn).await?;
    let done = sqlx::query(
        "INSERT INTO revocations (kind, id, expires_at, reason) VALUES ($1, $2, $3, $4)
         ON CONFLICT (kind, id) DO NOTHING",
    )
    .bind(revocation.kind.as_str())
    .bind(&revocation.id)
    .bind(revocation.expires_at)
    .bind(&revocation.reason)
    .execute(conn)
    .await
    .map_err(|e| StoreError::db("record revocation", e))?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn revoke_token(
    pool: &Pool<Db>,
    revocation: Revocation,
    now: i64,
) -> Result<bool, StoreError> {
    let err = |e| StoreError::db("record revocation", e);
    let mut tx = begin_write(pool).await.map_err(err)?;
    let added = record(&mut tx, &revocation, now).await?;
    tx.commit().await.map_err(err)?;
    Ok(added)
}

pub(super) async fn since(
    pool: &Pool<Db>,
    cursor: i64,
) -> Result<(Vec<Revocation>, i64), StoreError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        revocation_columns!(),
        " FROM revocations WHERE seq > $1 ORDER BY seq"
    ))
    .bind(cursor)
    .fetch_all(pool)
    .await
    .map_err(|e| StoreError::db("read revocations", e))?;
    let mut next = cursor;
    let mut list = Vec::with_capacity(rows.len());
    for row in &rows {
        let entry = entry_from_row(row)?;
        next = next.max(entry.seq);
        list.push(entry.revocation);
    }
    Ok((list, next))
}

/// A row of [`revocation_columns`].
pub(super) fn entry_from_row(row: &DbRow) -> Result<RevocationEntry, StoreError> {
    let seq: i64 = row
        .try_get("seq")
        .map_err(|e| StoreError::db("read revocations", e))?;
    let key = seq.to_string();
    let read = |e: sqlx::Error| StoreError::corrupt("revocation", &key, e);
    let kind: String = row.try_get("kind").map_err(read)?;
    let kind = RevocationKind::parse(&kind)
        .ok_or_else(|| StoreError::corrupt("revocation", &key, "unknown kind"))?;
    Ok(RevocationEntry {
        seq,
        revocation: Revocation {
            id: row.try_get("id").map_err(read)?,
            kind,
            expires_at: row.try_get("expires_at").map_err(read)?,
            reason: row.try_get("reason").map_err(read)?,
        },
    })
}

pub(super) async fn purge(pool: &Pool<Db>, now: i64) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM revocations WHERE expires_at < $1")
        .bind(now)
        .execute(pool)
        .await
        .map_err(|e| StoreError::db("purge revocations", e))?;
    Ok(done.rows_affected())
}
