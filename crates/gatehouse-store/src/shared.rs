//! What the SQLite and PostgreSQL backends share beside their queries: the encoding of list
//! columns, checks of stored values, error classification and the migration bookkeeping.
//! (The queries are shared too: see `src/queries.rs`.)

use sha2::{Digest as _, Sha256};

use crate::error::StoreError;
use crate::model::DigestAlgorithm;

/// Encodes a role or scope list as the JSON text stored in `roles` / `scopes`.
pub(crate) fn encode_list(list: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(list).map_err(|e| StoreError::Unavailable(format!("encode list: {e}")))
}

pub(crate) fn decode_list(
    text: &str,
    what: &'static str,
    key: &str,
) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt(what, key, e))
}

/// Encodes a user's attributes as the JSON object stored in `users.attributes`.
pub(crate) fn encode_attributes(
    attrs: &gatehouse_core::attributes::Attributes,
) -> Result<String, StoreError> {
    serde_json::to_string(attrs)
        .map_err(|e| StoreError::Unavailable(format!("encode attributes: {e}")))
}

pub(crate) fn decode_attributes(
    text: &str,
    key: &str,
) -> Result<gatehouse_core::attributes::Attributes, StoreError> {
    let attrs = serde_json::from_str(text).map_err(|e| StoreError::corrupt("user", key, e))?;
    gatehouse_core::attributes::check(&attrs).map_err(|e| StoreError::corrupt("user", key, e))?;
    Ok(attrs)
}

/// Lower-cases `value` after checking it is a hex digest of `algorithm`. Digest computes
/// with lower-case hex (RFC 2617's `LHEX`, kept by RFC 7616), so that is the stored form: a
/// KD over an upper-case HA1 would never match a client's response.
pub(crate) fn normalize_hex(
    what: &'static str,
    value: &str,
    algorithm: DigestAlgorithm,
) -> Result<String, StoreError> {
    let len = algorithm.hex_len();
    if value.len() == len && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(StoreError::Invalid {
            what,
            expected: format!("{len} hex digits for `{}`", algorithm.as_str()),
        })
    }
}

/// Whether `err` is a unique/primary-key violation (SQLite's constraint error, PostgreSQL's
/// SQLSTATE 23505).
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

/// Whether `err` is a foreign-key violation (PostgreSQL's SQLSTATE 23503).
pub(crate) fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_foreign_key_violation())
}

/// Fails with `NotFound` when an update touched no row.
pub(crate) fn found(rows: u64, name: &str) -> Result<(), StoreError> {
    if rows == 0 {
        Err(StoreError::not_found("user", name))
    } else {
        Ok(())
    }
}

/// One schema step. Versions start at 1 and increase by one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
}

/// A row of `_gatehouse_migrations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    pub version: i64,
    pub description: String,
    /// Unix seconds, from the database's clock.
    pub applied_at: i64,
}

/// The migrations of one backend, whose SQL files are in `migrations/$dir/` (`sqlite` or
/// `postgres`), oldest first. One list for both, so one version number means the same schema
/// on both backends. Append only; never edit a released file: the migrator stores each
/// file's SHA-256 and refuses a database whose applied migrations changed.
macro_rules! migrations {
    ($dir:literal) => {
        $crate::shared::migrations!(@ $dir;
            1, "init", "0001_init.sql";
            2, "identity", "0002_identity.sql";
            3, "audit", "0003_audit.sql";
            4, "stats", "0004_stats.sql";
            5, "attributes", "0005_attributes.sql";
            6, "session amr", "0006_session_amr.sql";
        )
    };
    (@ $dir:literal; $($version:literal, $description:literal, $file:literal;)+) => {
        &[$($crate::shared::Migration {
            version: $version,
            description: $description,
            sql: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"), "/migrations/", $dir, "/", $file
            )),
        }),+]
    };
}
pub(crate) use migrations;

pub(crate) fn latest(migrations: &[Migration]) -> i64 {
    migrations.last().map_or(0, |m| m.version)
}

pub(crate) fn checksum(sql: &str) -> Vec<u8> {
    Sha256::digest(sql.as_bytes()).to_vec()
}

/// Versions must be 1, 2, 3, ... so "newest applied" and "known" compare simply.
pub(crate) fn check_order(migrations: &[Migration]) -> Result<(), StoreError> {
    for (expected, m) in (1..).zip(migrations) {
        if m.version != expected {
            return Err(StoreError::Unavailable(format!(
                "migration list of this build is out of order at version {}",
                m.version
            )));
        }
    }
    Ok(())
}
