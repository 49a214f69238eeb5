//! `revocations` table: the access-token revocation list every node polls (row 10).
//!
//! The cursor is `seq`, a `BIGSERIAL`. A sequence value is taken at insert time, not at
//! commit: without care a poller could read seq 7, move its cursor past 6 while the
//! transaction holding 6 is still open, and never see 6. Every insert therefore runs under
//! one transaction-level advisory lock ([`lock`]), held until commit, so a transaction that
//! takes a larger `seq` always commits after one holding a smaller `seq`: sequence order is
//! commit order, and `seq > cursor` never skips a row a later read would reveal. Revocations
//! are rare, so serializing their inserts costs nothing that matters.
//!
//! Lock order: callers take row locks (users, sessions) before [`lock`], never after, so
//! the advisory lock holder never waits for a row lock and no deadlock can involve it.

use sqlx::{PgConnection, PgPool, Row};

use crate::error::StoreError;
use crate::model::{Revocation, RevocationKind};

/// Key of the advisory lock serializing revocation inserts (arbitrary, fixed: "GHREVOKE").
const REVOCATION_LOCK: i64 = 0x4748_5245_564F_4B45;

/// Takes the revocation advisory lock until the end of the current transaction.
pub(super) async fn lock(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(REVOCATION_LOCK)
        .execute(conn)
        .await
        .map(drop)
        .map_err(|e| StoreError::db("lock revocations", e))
}

/// Inserts `revocation` unless its (kind, id) is listed already or it expired before `now`.
/// Returns whether a row was added. Runs in the caller's transaction and takes [`lock`].
pub(super) async fn record(
    conn: &mut PgConnection,
    revocation: &Revocation,
    now: i64,
) -> Result<bool, StoreError> {
    if revocation.expires_at < now {
        return Ok(false);
    }
    lock(&mut *conn).await?;
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
    pool: &PgPool,
    revocation: Revocation,
    now: i64,
) -> Result<bool, StoreError> {
    let err = |e| StoreError::db("record revocation", e);
    let mut tx = pool.begin().await.map_err(err)?;
    let added = record(&mut tx, &revocation, now).await?;
    tx.commit().await.map_err(err)?;
    Ok(added)
}

pub(super) async fn since(
    pool: &PgPool,
    cursor: i64,
) -> Result<(Vec<Revocation>, i64), StoreError> {
    let rows = sqlx::query(
        "SELECT seq, kind, id, expires_at, reason FROM revocations WHERE seq > $1 ORDER BY seq",
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

pub(super) async fn purge(pool: &PgPool, now: i64) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM revocations WHERE expires_at < $1")
        .bind(now)
        .execute(pool)
        .await
        .map_err(|e| StoreError::db("purge revocations", e))?;
    Ok(done.rows_affected())
}
