//! `revocations` table: the access-token revocation list every node polls (row 10).

use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::error::StoreError;
use crate::model::{Revocation, RevocationKind};

/// Inserts `revocation` unless its (kind, id) is listed already or it expired before `now`.
/// Returns whether a row was added. Runs on the caller's connection or transaction.
pub(super) async fn record(
    conn: &mut SqliteConnection,
    revocation: &Revocation,
    now: i64,
) -> Result<bool, StoreError> {
    if revocation.expires_at < now {
        return Ok(false);
    }
    let done = sqlx::query(
        "INSERT INTO revocations (kind, id, expires_at, reason) VALUES (?, ?, ?, ?)
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
    pool: &SqlitePool,
    revocation: Revocation,
    now: i64,
) -> Result<bool, StoreError> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(|e| StoreError::db("record revocation", e))?;
    record(&mut conn, &revocation, now).await
}

/// `seq` is `AUTOINCREMENT` and SQLite has one writer at a time, so a row with a smaller
/// `seq` is always committed before one with a larger `seq`: reading `seq > cursor` in order
/// never skips a row a later read would reveal.
pub(super) async fn since(
    pool: &SqlitePool,
    cursor: i64,
) -> Result<(Vec<Revocation>, i64), StoreError> {
    let rows = sqlx::query(
        "SELECT seq, kind, id, expires_at, reason FROM revocations WHERE seq > ? ORDER BY seq",
    )
    .bind(cursor)
    .fetch_all(pool)
    .await
    .map_err(|e| StoreError::db("read revocations", e))?;
    let mut next = cursor;
    let mut list = Vec::with_capacity(rows.len());
    for row in &rows {
        let seq: i64 = row
            .try_get("seq")
            .map_err(|e| StoreError::db("read revocations", e))?;
        let key = seq.to_string();
        let read = |e: sqlx::Error| StoreError::corrupt("revocation", &key, e);
        let kind: String = row.try_get("kind").map_err(read)?;
        let kind = RevocationKind::parse(&kind)
            .ok_or_else(|| StoreError::corrupt("revocation", &key, "unknown kind"))?;
        list.push(Revocation {
            id: row.try_get("id").map_err(read)?,
            kind,
            expires_at: row.try_get("expires_at").map_err(read)?,
            reason: row.try_get("reason").map_err(read)?,
        });
        next = next.max(seq);
    }
    Ok((list, next))
}

pub(super) async fn purge(pool: &SqlitePool, now: i64) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM revocations WHERE expires_at < ?")
        .bind(now)
        .execute(pool)
        .await
        .map_err(|e| StoreError::db("purge revocations", e))?;
    Ok(done.rows_affected())
}
