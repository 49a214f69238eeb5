//! `sessions` and `refresh_tokens` tables: one login, one refresh-token family, rotated on
//! every use with reuse detection (crates.md §3.3, RFC 9700 §4.14.2).
//!
//! Shared by both backends (see `src/queries.rs`). Every change runs in a write transaction
//! (`BEGIN IMMEDIATE` on SQLite, so they serialize). On PostgreSQL the lock order, shared
//! with `users::delete`, is: the session row (`FOR UPDATE`), then its refresh token rows,
//! then the revocation advisory lock (`lock_revocations`).

use sqlx::{Pool, Row, Transaction};

use super::dialect::{Connection, Db, begin_write, bytewise, for_update};
use super::revocations;
use crate::error::StoreError;
use crate::model::{NewSession, Revocation, RevocationKind, RotateOutcome, Session};
use crate::shared::{decode_list, encode_list, is_foreign_key_violation, is_unique_violation};

type DbRow = <Db as sqlx::Database>::Row;

/// Reason recorded when a used refresh token comes back.
const REUSE_REASON: &str = "refresh token reuse";

/// Session columns, unqualified (they are also valid in `RETURNING`), in the order
/// `copy.rs` binds them.
macro_rules! session_columns {
    () => {
        "id, user_name, acr, auth_time, created_at, expires_at, revoked_at, revoke_reason, \
         last_refresh_at, amr"
    };
}
pub(super) use session_columns;

pub(super) fn from_row(row: &DbRow) -> Result<Session, StoreError> {
    let id: String = row
        .try_get("id")
        .map_err(|e| StoreError::db("read session", e))?;
    let read = |e: sqlx::Error| StoreError::corrupt("session", &id, e);
    let amr: String = row.try_get("amr").map_err(read)?;
    Ok(Session {
        amr: decode_list(&amr, "session", &id)?,
        user: row.try_get("user_name").map_err(read)?,
        acr: row.try_get("acr").map_err(read)?,
        auth_time: row.try_get("auth_time").map_err(read)?,
        created_at: row.try_get("created_at").map_err(read)?,
        expires_at: row.try_get("expires_at").map_err(read)?,
        revoked_at: row.try_get("revoked_at").map_err(read)?,
        revoke_reason: row.try_get("revoke_reason").map_err(read)?,
        last_refresh_at: row.try_get("last_refresh_at").map_err(read)?,
        id,
    })
}

pub(super) async fn create(
    pool: &Pool<Db>,
    new: NewSession,
    now: i64,
) -> Result<Session, StoreError> {
    let err = |e| StoreError::db("create session", e);
    let mut tx = begin_write(pool).await.map_err(err)?;
    let inserted = sqlx::query(
        "INSERT INTO sessions (id, user_name, acr, auth_time, created_at, expires_at, amr)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&new.id)
    .bind(&new.user)
    .bind(&new.acr)
    .bind(new.auth_time)
    .bind(now)
    .bind(new.expires_at)
    .bind(encode_list(&new.amr)?)
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(StoreError::conflict("session", &new.id)),
        Err(e) if is_foreign_key_violation(&e) => {
            return Err(StoreError::not_found("user", &new.user));
        }
        Err(e) => return Err(err(e)),
    }
    insert_token(
        &mut tx,
        &new.first_refresh,
        &new.id,
        0,
        None,
        now,
        new.expires_at,
    )
    .await?;
    tx.commit().await.map_err(err)?;
    Ok(Session {
        id: new.id,
        user: new.user,
        acr: new.acr,
        auth_time: new.auth_time,
        amr: new.amr,
        created_at: now,
        expires_at: new.expires_at,
        revoked_at: None,
        revoke_reason: None,
        last_refresh_at: None,
    })
}

/// Inserts a refresh token. A taken hash is a `Conflict` naming the session, never the hash.
async fn insert_token(
    conn: &mut Connection,
    hash: &[u8; 32],
    session: &str,
    generation: i64,
    parent: Option<&[u8; 32]>,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO refresh_tokens
             (hash, session_id, generation, parent_hash, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(hash.as_slice())
    .bind(session)
    .bind(generation)
    .bind(parent.map(|p| p.as_slice()))
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::conflict("refresh token", session)),
        Err(e) => Err(StoreError::db("store refresh token", e)),
    }
}

/// Marks the session revoked (keeping an earlier time and reason) and lists it in the
/// revocation list until it would have expired. Returns the session, `None` if unknown.
async fn revoke_in(
    conn: &mut Connection,
    id: &str,
    reason: &str,
    now: i64,
) -> Result<Option<Session>, StoreError> {
    let row = sqlx::query(concat!(
        "UPDATE sessions SET revoked_at = coalesce(revoked_at, $1),
             revoke_reason = coalesce(revoke_reason, $2)
         WHERE id = $3 RETURNING ",
        session_columns!()
    ))
    .bind(now)
    .bind(reason)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| StoreError::db("revoke session", e))?;
    let Some(session) = row.as_ref().map(from_row).transpose()? else {
        return Ok(None);
    };
    let entry = Revocation {
        id: session.id.clone(),
        kind: RevocationKind::Session,
        expires_at: session.expires_at,
        reason: session.revoke_reason.clone().unwrap_or_default(),
    };
    revocations::record(conn, &entry, now).await?;
    Ok(Some(session))
}

pub(super) async fn rotate(
    pool: &Pool<Db>,
    presented: [u8; 32],
    next: [u8; 32],
    now: i64,
    refresh_expires_at: i64,
) -> Result<RotateOutcome, StoreError> {
    let err = |e| StoreError::db("rotate refresh token", e);
    let mut tx = begin_write(pool).await.map_err(err)?;
    // Which session? A token never changes session, so this read needs no lock.
    let owner = sqlx::query("SELECT session_id FROM refresh_tokens WHERE hash = $1")
        .bind(presented.as_slice())
        .fetch_optional(&mut *tx)
        .await
        .map_err(err)?;
    let Some(owner) = owner else {
        return finish(tx, RotateOutcome::Unknown).await;
    };
    let session_id: String = owner.try_get("session_id").map_err(err)?;
    // Lock the session row, then the token row: concurrent rotations of one family queue
    // here, and each re-reads the token after the previous one committed, so the second
    // sees the first one's `used_at` (PostgreSQL's READ COMMITTED re-reads locked rows;
    // SQLite's `BEGIN IMMEDIATE` already made this transaction the only writer).
    let session = sqlx::query(concat!(
        "SELECT revoked_at, expires_at FROM sessions WHERE id = $1",
        for_update!()
    ))
    .bind(&session_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(err)?;
    let token = sqlx::query(concat!(
        "SELECT generation, expires_at, used_at FROM refresh_tokens WHERE hash = $1",
        for_update!()
    ))
    .bind(presented.as_slice())
    .fetch_optional(&mut *tx)
    .await
    .map_err(err)?;
    // Purged (or the user deleted) between the first read and the locks.
    let (Some(session), Some(token)) = (session, token) else {
        return finish(tx, RotateOutcome::Unknown).await;
    };
    let read = |e: sqlx::Error| StoreError::corrupt("refresh token of session", &session_id, e);
    let generation: i64 = token.try_get("generation").map_err(read)?;
    let token_expires_at: i64 = token.try_get("expires_at").map_err(read)?;
    let used_at: Option<i64> = token.try_get("used_at").map_err(read)?;
    let revoked_at: Option<i64> = session.try_get("revoked_at").map_err(read)?;
    let session_expires_at: i64 = session.try_get("expires_at").map_err(read)?;

    if used_at.is_some() {
        // Theft detection: the legitimate client and an attacker both held this token.
        let session = revoke_in(&mut tx, &session_id, REUSE_REASON, now)
            .await?
            .ok_or_else(|| StoreError::corrupt("session", &session_id, "vanished"))?;
        tx.commit().await.map_err(err)?;
        return Ok(RotateOutcome::Reused { session });
    }
    if revoked_at.is_some() {
        return finish(tx, RotateOutcome::Revoked).await;
    }
    if now >= token_expires_at || now >= session_expires_at {
        return finish(tx, RotateOutcome::Expired).await;
    }

    sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE hash = $2")
        .bind(now)
        .bind(presented.as_slice())
        .execute(&mut *tx)
        .await
        .map_err(err)?;
    insert_token(
        &mut tx,
        &next,
        &session_id,
        generation + 1,
        Some(&presented),
        now,
        refresh_expires_at,
    )
    .await?;
    let row = sqlx::query(concat!(
        "UPDATE sessions SET expires_at = $1, last_refresh_at = $2 WHERE id = $3 RETURNING ",
        session_columns!()
    ))
    .bind(refresh_expires_at)
    .bind(now)
    .bind(&session_id)
    .fetch_one(&mut *tx)
    .await
    .map_err(err)?;
    let session = from_row(&row)?;
    tx.commit().await.map_err(err)?;
    Ok(RotateOutcome::Rotated(session))
}

/// Ends a rotation that changed nothing, releasing its locks at once.
async fn finish(
    tx: Transaction<'_, Db>,
    outcome: RotateOutcome,
) -> Result<RotateOutcome, StoreError> {
    tx.rollback()
        .await
        .map_err(|e| StoreError::db("rotate refresh token", e))?;
    Ok(outcome)
}

pub(super) async fn get(pool: &Pool<Db>, id: &str) -> Result<Option<Session>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        session_columns!(),
        " FROM sessions WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(|e| StoreError::db("read session", e))?
    .as_ref()
    .map(from_row)
    .transpose()
}

pub(super) async fn list(
    pool: &Pool<Db>,
    user: Option<&str>,
    include_revoked: bool,
) -> Result<Vec<Session>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        session_columns!(),
        " FROM sessions
         WHERE ($1 IS NULL OR user_name = $1) AND ($2 OR revoked_at IS NULL)
         ORDER BY created_at, id",
        bytewise!()
    ))
    .bind(user)
    .bind(include_revoked)
    .fetch_all(pool)
    .await
    .map_err(|e| StoreError::db("list sessions", e))?
    .iter()
    .map(from_row)
    .collect()
}

pub(super) async fn set_acr(
    pool: &Pool<Db>,
    id: &str,
    acr: &str,
    auth_time: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE sessions SET acr = $1, auth_time = $2 WHERE id = $3 AND revoked_at IS NULL",
    )
    .bind(acr)
    .bind(auth_time)
    .bind(id)
    .execute(pool)
    .await
    .map_err(|e| StoreError::db("set session acr", e))?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn revoke(
    pool: &Pool<Db>,
    id: &str,
    reason: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let err = |e| StoreError::db("revoke session", e);
    let mut tx = begin_write(pool).await.map_err(err)?;
    let found = revoke_in(&mut tx, id, reason, now).await?.is_some();
    tx.commit().await.map_err(err)?;
    Ok(found)
}

pub(super) async fn revoke_user(
    pool: &Pool<Db>,
    user: &str,
    reason: &str,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let err = |e| StoreError::db("revoke user sessions", e);
    let mut tx = begin_write(pool).await.map_err(err)?;
    let rows = sqlx::query(concat!(
        "UPDATE sessions SET revoked_at = $1, revoke_reason = $2
         WHERE user_name = $3 AND revoked_at IS NULL RETURNING ",
        session_columns!()
    ))
    .bind(now)
    .bind(reason)
    .bind(user)
    .fetch_all(&mut *tx)
    .await
    .map_err(err)?;
    let mut sessions = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    // RETURNING has no defined order.
    sessions.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    for session in &sessions {
        let entry = Revocation {
            id: session.id.clone(),
            kind: RevocationKind::Session,
            expires_at: session.expires_at,
            reason: reason.to_owned(),
        };
        revocations::record(&mut tx, &entry, now).await?;
    }
    tx.commit().await.map_err(err)?;
    Ok(sessions.into_iter().map(|s| s.id).collect())
}

pub(super) async fn purge(pool: &Pool<Db>, now: i64) -> Result<u64, StoreError> {
    let err = |e| StoreError::db("purge sessions", e);
    let mut tx = begin_write(pool).await.map_err(err)?;
    // Session rows before token rows, the order `rotate` takes them in. Tokens are deleted
    // explicitly too, independent of SQLite's `foreign_keys` pragma.
    sqlx::query(concat!(
        "SELECT id FROM sessions WHERE expires_at < $1 ORDER BY id",
        for_update!()
    ))
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(err)?;
    sqlx::query(
        "DELETE FROM refresh_tokens WHERE session_id IN
             (SELECT id FROM sessions WHERE expires_at < $1)",
    )
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(err)?;
    let done = sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
    tx.commit().await.map_err(err)?;
    Ok(done.rows_affected())
}
