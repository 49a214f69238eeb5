//! `api_keys` and `signing_keys` tables. Shared by both backends (see `src/queries.rs`).

use sqlx::{Pool, Row};

use super::dialect::{Db, begin_write, bytewise, is_prefix_conflict, lock_signing_keys};
use crate::error::StoreError;
use crate::model::{ApiKey, NewApiKey, SigningKey};
use crate::shared::{decode_list, encode_list, is_foreign_key_violation, is_unique_violation};

type DbRow = <Db as sqlx::Database>::Row;

/// Every API key column, unqualified, in the order `copy.rs` binds them.
macro_rules! api_key_columns {
    () => {
        "id, prefix, hash, user_name, scopes, read_only, label, expires_at, revoked_at, \
         created_at, last_used_at"
    };
}
pub(super) use api_key_columns;

/// `SELECT` of every API key column followed by `$tail`, as a `&'static str`.
macro_rules! select_api_keys {
    ($tail:literal) => {
        concat!("SELECT ", api_key_columns!(), " FROM api_keys ", $tail)
    };
}

/// Every signing key column, unqualified, in the order `add_signing_key` and `copy.rs` bind
/// them.
macro_rules! signing_key_columns {
    () => {
        "kid, algorithm, private_pkcs8, public_key, created_at, retired_at"
    };
}
pub(super) use signing_key_columns;

pub(super) fn api_key_from_row(row: &DbRow) -> Result<ApiKey, StoreError> {
    let id: String = row
        .try_get("id")
        .map_err(|e| StoreError::db("read api key", e))?;
    let read = |e: sqlx::Error| StoreError::corrupt("api key", &id, e);
    let hash: Vec<u8> = row.try_get("hash").map_err(read)?;
    let hash: [u8; 32] = hash
        .try_into()
        .map_err(|_| StoreError::corrupt("api key", &id, "hash is not 32 bytes"))?;
    let scopes: String = row.try_get("scopes").map_err(read)?;
    Ok(ApiKey {
        prefix: row.try_get("prefix").map_err(read)?,
        hash,
        user: row.try_get("user_name").map_err(read)?,
        scopes: decode_list(&scopes, "api key", &id)?,
        read_only: row.try_get("read_only").map_err(read)?,
        label: row.try_get("label").map_err(read)?,
        expires_at: row.try_get("expires_at").map_err(read)?,
        revoked_at: row.try_get("revoked_at").map_err(read)?,
        created_at: row.try_get("created_at").map_err(read)?,
        last_used_at: row.try_get("last_used_at").map_err(read)?,
        id,
    })
}

pub(super) async fn create_api_key(
    pool: &Pool<Db>,
    key: NewApiKey,
    now: i64,
) -> Result<ApiKey, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO api_keys
             (id, prefix, hash, user_name, scopes, read_only, label, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&key.id)
    .bind(&key.prefix)
    .bind(key.hash.as_slice())
    .bind(&key.user)
    .bind(encode_list(&key.scopes)?)
    .bind(key.read_only)
    .bind(&key.label)
    .bind(key.expires_at)
    .bind(now)
    .execute(pool)
    .await;
    match inserted {
        Ok(_) => Ok(ApiKey {
            id: key.id,
            prefix: key.prefix,
            hash: key.hash,
            user: key.user,
            scopes: key.scopes,
            read_only: key.read_only,
            expires_at: key.expires_at,
            revoked_at: None,
            label: key.label,
            created_at: now,
            last_used_at: None,
        }),
        Err(e) if is_unique_violation(&e) => Err(if is_prefix_conflict(&e) {
            StoreError::conflict("api key prefix", &key.prefix)
        } else {
            StoreError::conflict("api key", &key.id)
        }),
        Err(e) if is_foreign_key_violation(&e) => Err(StoreError::not_found("user", &key.user)),
        Err(e) => Err(StoreError::db("create api key", e)),
    }
}

pub(super) async fn find_api_key(
    pool: &Pool<Db>,
    prefix: &str,
) -> Result<Option<ApiKey>, StoreError> {
    sqlx::query(select_api_keys!("WHERE prefix = $1"))
        .bind(prefix)
        .fetch_optional(pool)
        .await
        .map_err(|e| StoreError::db("find api key", e))?
        .as_ref()
        .map(api_key_from_row)
        .transpose()
}

pub(super) async fn list_api_keys(
    pool: &Pool<Db>,
    user: Option<&str>,
) -> Result<Vec<ApiKey>, StoreError> {
    let query = match user {
        Some(user) => sqlx::query(concat!(
            select_api_keys!("WHERE user_name = $1 ORDER BY created_at, id"),
            bytewise!()
        ))
        .bind(user),
        None => sqlx::query(concat!(
            select_api_keys!("ORDER BY created_at, id"),
            bytewise!()
        )),
    };
    query
        .fetch_all(pool)
        .await
        .map_err(|e| StoreError::db("list api keys", e))?
        .iter()
        .map(api_key_from_row)
        .collect()
}

pub(super) async fn revoke_api_key(
    pool: &Pool<Db>,
    id_or_prefix: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let err = |e| StoreError::db("revoke api key", e);
    // In one write transaction, so no other writer slips in between "not an id" and "try
    // the prefix".
    let mut tx = begin_write(pool).await.map_err(err)?;
    let by_id =
        sqlx::query("UPDATE api_keys SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2")
            .bind(now)
            .bind(id_or_prefix)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
    let matched = if by_id.rows_affected() > 0 {
        true
    } else {
        sqlx::query("UPDATE api_keys SET revoked_at = coalesce(revoked_at, $1) WHERE prefix = $2")
            .bind(now)
            .bind(id_or_prefix)
            .execute(&mut *tx)
            .await
            .map_err(err)?
            .rows_affected()
            > 0
    };
    tx.commit().await.map_err(err)?;
    Ok(matched)
}

pub(super) async fn touch_api_key(pool: &Pool<Db>, id: &str, now: i64) -> Result<bool, StoreError> {
    // (A `CASE`, as SQLite's `max` is PostgreSQL's `greatest`.)
    let done = sqlx::query(
        "UPDATE api_keys SET last_used_at = CASE
             WHEN last_used_at IS NULL OR last_used_at < $1 THEN $1 ELSE last_used_at END
         WHERE id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(pool)
    .await
    .map_err(|e| StoreError::db("touch api key", e))?;
    Ok(done.rows_affected() > 0)
}

/// The `INSERT` of one signing key, on a pool or inside a transaction.
async fn insert_signing_key<'c, E>(conn: E, key: &SigningKey) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = Db>,
{
    let inserted = sqlx::query(concat!(
        "INSERT INTO signing_keys (",
        signing_key_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6)"
    ))
    .bind(&key.kid)
    .bind(&key.algorithm)
    .bind(key.private_pkcs8.as_slice())
    .bind(key.public.as_slice())
    .bind(key.created_at)
    .bind(key.retired_at)
    .execute(conn)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::conflict("signing key", &key.kid)),
        Err(e) => Err(StoreError::db("add signing key", e)),
    }
}

pub(super) async fn add_signing_key(pool: &Pool<Db>, key: SigningKey) -> Result<(), StoreError> {
    insert_signing_key(pool, &key).await
}

pub(super) async fn add_first_signing_key(
    pool: &Pool<Db>,
    key: SigningKey,
) -> Result<bool, StoreError> {
    let err = |e| StoreError::db("add first signing key", e);
    // The check and the insert under one lock (SQLite: the write lock of `BEGIN IMMEDIATE`;
    // PostgreSQL: an advisory lock, since READ COMMITTED would let two transactions both see
    // no key and insert two different ones).
    let mut tx = begin_write(pool).await.map_err(err)?;
    lock_signing_keys(&mut tx).await?;
    let existing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM signing_keys WHERE algorithm = $1 AND retired_at IS NULL",
    )
    .bind(&key.algorithm)
    .fetch_one(&mut *tx)
    .await
    .map_err(err)?;
    if existing > 0 {
        tx.rollback().await.map_err(err)?;
        return Ok(false);
    }
    insert_signing_key(&mut *tx, &key).await?;
    tx.commit().await.map_err(err)?;
    Ok(true)
}

pub(super) fn signing_key_from_row(row: &DbRow) -> Result<SigningKey, StoreError> {
    let kid: String = row
        .try_get("kid")
        .map_err(|e| StoreError::db("read signing key", e))?;
    let read = |e: sqlx::Error| StoreError::corrupt("signing key", &kid, e);
    Ok(SigningKey {
        algorithm: row.try_get("algorithm").map_err(read)?,
        private_pkcs8: row.try_get("private_pkcs8").map_err(read)?,
        public: row.try_get("public_key").map_err(read)?,
        created_at: row.try_get("created_at").map_err(read)?,
        retired_at: row.try_get("retired_at").map_err(read)?,
        kid,
    })
}

pub(super) async fn list_signing_keys(pool: &Pool<Db>) -> Result<Vec<SigningKey>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        signing_key_columns!(),
        " FROM signing_keys ORDER BY created_at, kid",
        bytewise!()
    ))
    .fetch_all(pool)
    .await
    .map_err(|e| StoreError::db("list signing keys", e))?
    .iter()
    .map(signing_key_from_row)
    .collect()
}

pub(super) async fn retire_signing_key(
    pool: &Pool<Db>,
    kid: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let done =
        sqlx::query("UPDATE signing_keys SET retired_at = coalesce(retired_at, $1) WHERE kid = $2")
            .bind(now)
            .bind(kid)
            .execute(pool)
            .await
            .map_err(|e| StoreError::db("retire signing key", e))?;
    Ok(done.rows_affected() > 0)
}
