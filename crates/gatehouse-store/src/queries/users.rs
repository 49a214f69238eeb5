//! `users` table. Shared by both backends (see `src/queries.rs`).

use sqlx::{Pool, Row};

use super::dialect::{Db, begin_write, bytewise, for_update, lock_revocations};
use crate::error::StoreError;
use crate::model::{AccountStatus, NewUser, User};
use crate::shared::{
    decode_attributes, decode_list, encode_attributes, encode_list, found, is_unique_violation,
};
use gatehouse_core::attributes::{self, Attributes, Value};

type DbRow = <Db as sqlx::Database>::Row;

/// The columns of a [`User`], unqualified, in the order `copy.rs` binds them.
macro_rules! user_columns {
    () => {
        "name, password_hash, roles, tenant, suspended_at, suspended_reason, created_at, \
         mfa_secret, attributes"
    };
}
pub(super) use user_columns;

/// `SELECT` of every user column followed by `$tail`, as a `&'static str`.
macro_rules! select_users {
    ($tail:literal) => {
        concat!("SELECT ", user_columns!(), " FROM users ", $tail)
    };
}

pub(super) fn from_row(row: &DbRow) -> Result<User, StoreError> {
    let name: String = row
        .try_get("name")
        .map_err(|e| StoreError::db("read user", e))?;
    let read = |e: sqlx::Error| StoreError::corrupt("user", &name, e);
    let roles: String = row.try_get("roles").map_err(read)?;
    let attributes: String = row.try_get("attributes").map_err(read)?;
    let suspended_at: Option<i64> = row.try_get("suspended_at").map_err(read)?;
    let reason: Option<String> = row.try_get("suspended_reason").map_err(read)?;
    let status = match (suspended_at, reason) {
        (None, None) => AccountStatus::Active,
        (Some(at), Some(reason)) => AccountStatus::Suspended { at, reason },
        _ => return Err(StoreError::corrupt("user", &name, "half-set suspension")),
    };
    Ok(User {
        password_hash: row.try_get("password_hash").map_err(read)?,
        roles: decode_list(&roles, "user", &name)?,
        tenant: row.try_get("tenant").map_err(read)?,
        status,
        created_at: row.try_get("created_at").map_err(read)?,
        mfa_secret: row.try_get("mfa_secret").map_err(read)?,
        attributes: decode_attributes(&attributes, &name)?,
        name,
    })
}

pub(super) async fn create(pool: &Pool<Db>, user: NewUser, now: i64) -> Result<User, StoreError> {
    let roles = encode_list(&user.roles)?;
    let inserted = sqlx::query(
        "INSERT INTO users (name, password_hash, roles, tenant, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&user.name)
    .bind(&user.password_hash)
    .bind(&roles)
    .bind(&user.tenant)
    .bind(now)
    .execute(pool)
    .await;
    match inserted {
        Ok(_) => Ok(User {
            name: user.name,
            password_hash: user.password_hash,
            roles: user.roles,
            tenant: user.tenant,
            status: AccountStatus::Active,
            created_at: now,
            mfa_secret: None,
            attributes: Attributes::new(),
        }),
        Err(e) if is_unique_violation(&e) => Err(StoreError::conflict("user", &user.name)),
        Err(e) => Err(StoreError::db("create user", e)),
    }
}

pub(super) async fn get(pool: &Pool<Db>, name: &str) -> Result<Option<User>, StoreError> {
    sqlx::query(select_users!("WHERE name = $1"))
        .bind(name)
        .fetch_optional(pool)
        .await
        .map_err(|e| StoreError::db("read user", e))?
        .as_ref()
        .map(from_row)
        .transpose()
}

pub(super) async fn list(pool: &Pool<Db>) -> Result<Vec<User>, StoreError> {
    sqlx::query(concat!(select_users!("ORDER BY name"), bytewise!()))
        .fetch_all(pool)
        .await
        .map_err(|e| StoreError::db("list users", e))?
        .iter()
        .map(from_row)
        .collect()
}

pub(super) async fn set_password(
    pool: &Pool<Db>,
    name: &str,
    hash: Option<String>,
) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE name = $2")
        .bind(hash)
        .bind(name)
        .execute(pool)
        .await
        .map_err(|e| StoreError::db("set password", e))?;
    found(done.rows_affected(), name)
}

pub(super) async fn set_roles(
    pool: &Pool<Db>,
    name: &str,
    roles: Vec<String>,
) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE users SET roles = $1 WHERE name = $2")
        .bind(encode_list(&roles)?)
        .bind(name)
        .execute(pool)
        .await
        .map_err(|e| StoreError::db("set roles", e))?;
    found(done.rows_affected(), name)
}

pub(super) async fn set_tenant(
    pool: &Pool<Db>,
    name: &str,
    tenant: Option<String>,
) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE users SET tenant = $1 WHERE name = $2")
        .bind(tenant)
        .bind(name)
        .execute(pool)
        .await
        .map_err(|e| StoreError::db("set tenant", e))?;
    found(done.rows_affected(), name)
}

/// Sets and removes attributes in one write transaction, so two concurrent `user set`s of
/// different keys both land (the row is locked on PostgreSQL; SQLite has one writer).
pub(super) async fn update_attributes(
    pool: &Pool<Db>,
    name: &str,
    set: Attributes,
    unset: Vec<String>,
) -> Result<Attributes, StoreError> {
    let err = |e| StoreError::db("set attributes", e);
    for (k, v) in &set {
        attributes::check_name(k)
            .and_then(|()| attributes::check(&Attributes::from([(k.clone(), v.clone())])))
            .map_err(|e| StoreError::Invalid {
                what: "attribute",
                expected: e,
            })?;
    }
    let mut tx = begin_write(pool).await.map_err(err)?;
    let row = sqlx::query(concat!(
        "SELECT attributes FROM users WHERE name = $1",
        for_update!()
    ))
    .bind(name)
    .fetch_optional(&mut *tx)
    .await
    .map_err(err)?;
    let Some(row) = row else {
        tx.rollback().await.map_err(err)?;
        return Err(StoreError::not_found("user", name));
    };
    let text: String = row
        .try_get("attributes")
        .map_err(|e| StoreError::corrupt("user", name, e))?;
    let mut attrs = decode_attributes(&text, name)?;
    for k in &unset {
        attrs.remove(k);
    }
    attrs.extend(set.into_iter().map(|(k, v): (String, Value)| (k, v)));
    sqlx::query("UPDATE users SET attributes = $1 WHERE name = $2")
        .bind(encode_attributes(&attrs)?)
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
    tx.commit().await.map_err(err)?;
    Ok(attrs)
}

pub(super) async fn suspend(
    pool: &Pool<Db>,
    name: &str,
    reason: &str,
    now: i64,
) -> Result<(), StoreError> {
    let done =
        sqlx::query("UPDATE users SET suspended_at = $1, suspended_reason = $2 WHERE name = $3")
            .bind(now)
            .bind(reason)
            .bind(name)
            .execute(pool)
            .await
            .map_err(|e| StoreError::db("suspend user", e))?;
    found(done.rows_affected(), name)
}

pub(super) async fn unsuspend(pool: &Pool<Db>, name: &str) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE users SET suspended_at = NULL, suspended_reason = NULL WHERE name = $1",
    )
    .bind(name)
    .execute(pool)
    .await
    .map_err(|e| StoreError::db("unsuspend user", e))?;
    found(done.rows_affected(), name)
}

/// Deletes the user and their records atomically; their unrevoked sessions go to the
/// revocation list first, so access tokens naming them die with the user. The records are
/// deleted explicitly as well as through `ON DELETE CASCADE`, so the result does not depend
/// on SQLite's `foreign_keys` pragma.
///
/// Lock order on PostgreSQL (shared with `sessions.rs`): user and session rows first, then
/// the revocation advisory lock, so this never deadlocks with a rotation.
pub(super) async fn delete(pool: &Pool<Db>, name: &str) -> Result<(), StoreError> {
    let err = |e| StoreError::db("delete user", e);
    let mut tx = begin_write(pool).await.map_err(err)?;
    let user = sqlx::query(concat!(
        "SELECT 1 FROM users WHERE name = $1",
        for_update!()
    ))
    .bind(name)
    .fetch_optional(&mut *tx)
    .await
    .map_err(err)?;
    if user.is_none() {
        tx.rollback().await.map_err(err)?;
        return Err(StoreError::not_found("user", name));
    }
    sqlx::query(concat!(
        "SELECT id FROM sessions WHERE user_name = $1 ORDER BY id",
        for_update!()
    ))
    .bind(name)
    .fetch_all(&mut *tx)
    .await
    .map_err(err)?;
    lock_revocations(&mut tx).await?;
    // SQLite's parser needs the `WHERE` before `ON CONFLICT` in an INSERT ... SELECT.
    sqlx::query(
        "INSERT INTO revocations (kind, id, expires_at, reason)
         SELECT 'session', id, expires_at, 'user deleted' FROM sessions
         WHERE user_name = $1 AND revoked_at IS NULL
         ORDER BY created_at, id
         ON CONFLICT (kind, id) DO NOTHING",
    )
    .bind(name)
    .execute(&mut *tx)
    .await
    .map_err(err)?;
    for statement in [
        "DELETE FROM refresh_tokens WHERE session_id IN
             (SELECT id FROM sessions WHERE user_name = $1)",
        "DELETE FROM sessions WHERE user_name = $1",
        "DELETE FROM digest_secrets WHERE user_name = $1",
        "DELETE FROM api_keys WHERE user_name = $1",
        "DELETE FROM users WHERE name = $1",
    ] {
        sqlx::query(statement)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
    }
    tx.commit().await.map_err(err)
}

/// Whether a user named `name` exists (to tell "unknown user" from "nothing to change").
pub(super) async fn exists(pool: &Pool<Db>, name: &str) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT 1 FROM users WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await
        .map_err(|e| StoreError::db("read user", e))?;
    Ok(row.is_some())
}

pub(super) async fn set_mfa_secret(
    pool: &Pool<Db>,
    name: &str,
    secret: Option<Vec<u8>>,
) -> Result<(), StoreError> {
    // Clearing the secret forgets the last step (the table's CHECK requires it); replacing
    // it keeps the step, so a step already used is still refused.
    let done = sqlx::query(
        "UPDATE users SET mfa_secret = $1,
             mfa_last_step = CASE WHEN $1 IS NULL THEN NULL ELSE mfa_last_step END
         WHERE name = $2",
    )
    .bind(secret)
    .bind(name)
    .execute(pool)
    .await
    .map_err(|e| StoreError::db("set mfa secret", e))?;
    found(done.rows_affected(), name)
}

/// One conditional `UPDATE`, so two requests with the same step cannot both see it as new
/// (RFC 6238 §5.2): SQLite runs it under the write lock; under PostgreSQL's READ COMMITTED a
/// second `UPDATE` of the same row waits for the first to commit and then re-evaluates its
/// `WHERE` on the new row.
pub(super) async fn accept_totp_step(
    pool: &Pool<Db>,
    name: &str,
    step: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE users SET mfa_last_step = $1
         WHERE name = $2 AND mfa_secret IS NOT NULL
           AND (mfa_last_step IS NULL OR mfa_last_step < $1)",
    )
    .bind(step)
    .bind(name)
    .execute(pool)
    .await
    .map_err(|e| StoreError::db("accept totp step", e))?;
    if done.rows_affected() > 0 {
        Ok(true)
    } else if exists(pool, name).await? {
        Ok(false)
    } else {
        Err(StoreError::not_found("user", name))
    }
}
