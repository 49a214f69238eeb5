//! `digest_secrets` table: HA1 and userhash per (user, realm, algorithm), RFC 7616. Shared by
//! both backends (see `src/queries.rs`).

use sqlx::{Pool, Row};

use super::dialect::Db;
use super::users;
use crate::error::StoreError;
use crate::model::{DigestAlgorithm, DigestHa1};
use crate::shared::{is_foreign_key_violation, is_unique_violation, normalize_hex};

pub(super) async fn set(
    pool: &Pool<Db>,
    user: &str,
    realm: &str,
    algorithm: DigestAlgorithm,
    secret: Option<DigestHa1>,
) -> Result<(), StoreError> {
    let Some(secret) = secret else {
        let done = sqlx::query(
            "DELETE FROM digest_secrets WHERE user_name = $1 AND realm = $2 AND algorithm = $3",
        )
        .bind(user)
        .bind(realm)
        .bind(algorithm.as_str())
        .execute(pool)
        .await
        .map_err(|e| StoreError::db("clear digest secret", e))?;
        return if done.rows_affected() > 0 || users::exists(pool, user).await? {
            Ok(())
        } else {
            Err(StoreError::not_found("user", user))
        };
    };
    let ha1 = normalize_hex("digest ha1", &secret.ha1, algorithm)?;
    let userhash = normalize_hex("digest userhash", &secret.userhash, algorithm)?;
    let stored = sqlx::query(
        "INSERT INTO digest_secrets (user_name, realm, algorithm, ha1, userhash)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_name, realm, algorithm)
         DO UPDATE SET ha1 = excluded.ha1, userhash = excluded.userhash",
    )
    .bind(user)
    .bind(realm)
    .bind(algorithm.as_str())
    .bind(&ha1)
    .bind(&userhash)
    .execute(pool)
    .await;
    match stored {
        Ok(_) => Ok(()),
        Err(e) if is_foreign_key_violation(&e) => Err(StoreError::not_found("user", user)),
        // The upsert absorbs the primary key, so this is `UNIQUE (realm, algorithm, userhash)`.
        // It may be reported before the foreign key (SQLite checks it first, PostgreSQL checks
        // the key only at the end of the statement): an unknown user is still `NotFound`.
        Err(e) if is_unique_violation(&e) => Err(if users::exists(pool, user).await? {
            StoreError::conflict("digest userhash", &userhash)
        } else {
            StoreError::not_found("user", user)
        }),
        Err(e) => Err(StoreError::db("set digest secret", e)),
    }
}

pub(super) async fn get(
    pool: &Pool<Db>,
    user: &str,
    realm: &str,
    algorithm: DigestAlgorithm,
) -> Result<Option<String>, StoreError> {
    let row = sqlx::query(
        "SELECT ha1 FROM digest_secrets WHERE user_name = $1 AND realm = $2 AND algorithm = $3",
    )
    .bind(user)
    .bind(realm)
    .bind(algorithm.as_str())
    .fetch_optional(pool)
    .await
    .map_err(|e| StoreError::db("read digest secret", e))?;
    row.map(|r| r.try_get("ha1"))
        .transpose()
        .map_err(|e| StoreError::corrupt("digest secret of", user, e))
}

pub(super) async fn find_user_by_userhash(
    pool: &Pool<Db>,
    userhash: &str,
    realm: &str,
    algorithm: DigestAlgorithm,
) -> Result<Option<String>, StoreError> {
    let row = sqlx::query(
        "SELECT user_name FROM digest_secrets WHERE userhash = $1 AND realm = $2 AND algorithm = $3",
    )
    .bind(userhash.to_ascii_lowercase())
    .bind(realm)
    .bind(algorithm.as_str())
    .fetch_optional(pool)
    .await
    .map_err(|e| StoreError::db("find digest userhash", e))?;
    row.map(|r| r.try_get("user_name"))
        .transpose()
        .map_err(|e| StoreError::db("find digest userhash", e))
}
