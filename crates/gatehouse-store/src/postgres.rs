//! The PostgreSQL backend (design §5: several nodes share one database).
//!
//! Same semantics as the SQLite backend, checked by the same conformance suite. Where SQLite
//! relies on its single writer (`BEGIN IMMEDIATE`), this backend takes row locks
//! (`SELECT ... FOR UPDATE`) and, around revocation inserts, a transaction-level advisory
//! lock so that the revocation cursor's sequence order equals commit order.

mod audit;
mod digest;
mod keys;
mod migrate;
mod revocations;
mod sessions;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

use crate::error::StoreError;
use crate::model::{
    ApiKey, AuditEntry, AuditQuery, AuditRecord, DigestAlgorithm, DigestHa1, NewApiKey, NewSession,
    NewUser, Revocation, RotateOutcome, Session, SigningKey, User,
};
use crate::store::{BoxFuture, Store};

pub use crate::shared::AppliedMigration;
use crate::shared::{decode_list, encode_list};

/// Connections per node.
const POOL_SIZE: u32 = 10;
/// How long a caller waits for a connection (including connecting) before `Unavailable`:
/// a database that is down answers 503 quickly instead of hanging requests. sqlx retries a
/// refused connection until this deadline, so it bounds both a stopped and a black-holed
/// database (an idle connection is pinged within it too).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);
/// Server-side bound of every statement of the serving pool.
const STATEMENT_TIMEOUT: &str = "5s";
/// How long `open` waits for the database (start-up may race the database's own).
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// [`Store`] on PostgreSQL through an sqlx pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database?options`, as libpq
    /// reads it; e.g. `?options=-c%20search_path%3Dgatehouse` picks a schema) and migrates
    /// the database. Several nodes may open the same database at once: migrations serialize
    /// on an advisory lock.
    ///
    /// Refuses a database migrated by a newer build ([`StoreError::SchemaTooNew`]). Errors
    /// never repeat the URL, which may carry a password.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::InvalidUrl("malformed postgres url".into()))?;
        // Migrations get a connection of their own, without the statement timeout (an
        // index build on a large table may take longer).
        let setup = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(OPEN_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(|e| StoreError::db("connect to postgres", redact(&e)))?;
        let migrated = migrate::run(&setup, migrate::MIGRATIONS).await;
        setup.close().await;
        migrated?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options.options([("statement_timeout", STATEMENT_TIMEOUT)]));
        Ok(Self { pool })
    }

    /// The migrations recorded in this database, oldest first.
    pub async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>, StoreError> {
        migrate::applied(&self.pool).await
    }

    /// The schema version this build migrates to.
    pub fn supported_schema_version() -> i64 {
        crate::shared::latest(migrate::MIGRATIONS)
    }

    /// Closes every connection. Later calls fail with `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn ping_db(&self) -> Result<(), StoreError> {
        let row = sqlx::query("SELECT 1::bigint")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| StoreError::db("ping", e))?;
        row.try_get::<i64, _>(0)
            .map(drop)
            .map_err(|e| StoreError::db("ping", e))
    }
}

/// A connection error without anything the URL may have carried: sqlx's configuration and
/// TLS errors can quote parts of it, so only the kind of failure is kept.
fn redact(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(e) => e.message().to_owned(),
        sqlx::Error::Io(e) => e.to_string(),
        sqlx::Error::PoolTimedOut => "timed out".into(),
        sqlx::Error::Tls(_) => "tls handshake failed".into(),
        sqlx::Error::Configuration(_) => "invalid connection settings".into(),
        _ => "connection failed".into(),
    }
}

/// Whether `err` is a unique/primary-key violation (SQLSTATE 23505).
fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

/// Whether `err` is a foreign-key violation (SQLSTATE 23503).
fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_foreign_key_violation())
}

/// The violated constraint's name, if the error carries one.
fn constraint(err: &sqlx::Error) -> Option<&str> {
    err.as_database_error().and_then(|e| e.constraint())
}

impl Store for PgStore {
    fn ping(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.ping_db())
    }

    fn create_user(&self, user: NewUser, now: i64) -> BoxFuture<'_, User> {
        Box::pin(users::create(&self.pool, user, now))
    }
    fn get_user<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<User>> {
        Box::pin(users::get(&self.pool, name))
    }
    fn list_users(&self) -> BoxFuture<'_, Vec<User>> {
        Box::pin(users::list(&self.pool))
    }
    fn set_password<'a>(
        &'a self,
        name: &'a str,
        password_hash: Option<String>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(users::set_password(&self.pool, name, password_hash))
    }
    fn set_roles<'a>(&'a self, name: &'a str, roles: Vec<String>) -> BoxFuture<'a, ()> {
        Box::pin(users::set_roles(&self.pool, name, roles))
    }
    fn set_tenant<'a>(&'a self, name: &'a str, tenant: Option<String>) -> BoxFuture<'a, ()> {
        Box::pin(users::set_tenant(&self.pool, name, tenant))
    }
    fn suspend_user<'a>(&'a self, name: &'a str, reason: &'a str, now: i64) -> BoxFuture<'a, ()> {
        Box::pin(users::suspend(&self.pool, name, reason, now))
    }
    fn unsuspend_user<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(users::unsuspend(&self.pool, name))
    }
    fn delete_user<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(users::delete(&self.pool, name))
    }

    fn create_api_key(&self, key: NewApiKey, now: i64) -> BoxFuture<'_, ApiKey> {
        Box::pin(keys::create_api_key(&self.pool, key, now))
    }
    fn find_api_key<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Option<ApiKey>> {
        Box::pin(keys::find_api_key(&self.pool, prefix))
    }
    fn list_api_keys<'a>(&'a self, user: Option<&'a str>) -> BoxFuture<'a, Vec<ApiKey>> {
        Box::pin(keys::list_api_keys(&self.pool, user))
    }
    fn revoke_api_key<'a>(&'a self, id_or_prefix: &'a str, now: i64) -> BoxFuture<'a, bool> {
        Box::pin(keys::revoke_api_key(&self.pool, id_or_prefix, now))
    }
    fn touch_api_key<'a>(&'a self, id: &'a str, now: i64) -> BoxFuture<'a, bool> {
        Box::pin(keys::touch_api_key(&self.pool, id, now))
    }

    fn add_signing_key(&self, key: SigningKey) -> BoxFuture<'_, ()> {
        Box::pin(keys::add_signing_key(&self.pool, key))
    }
    fn list_signing_keys(&self) -> BoxFuture<'_, Vec<SigningKey>> {
        Box::pin(keys::list_signing_keys(&self.pool))
    }
    fn retire_signing_key<'a>(&'a self, kid: &'a str, now: i64) -> BoxFuture<'a, bool> {
        Box::pin(keys::retire_signing_key(&self.pool, kid, now))
    }

    fn create_session(&self, session: NewSession, now: i64) -> BoxFuture<'_, Session> {
        Box::pin(sessions::create(&self.pool, session, now))
    }
    fn rotate_refresh(
        &self,
        presented: [u8; 32],
        next: [u8; 32],
        now: i64,
        refresh_expires_at: i64,
    ) -> BoxFuture<'_, RotateOutcome> {
        Box::pin(sessions::rotate(
            &self.pool,
            presented,
            next,
            now,
            refresh_expires_at,
        ))
    }
    fn get_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<Session>> {
        Box::pin(sessions::get(&self.pool, id))
    }
    fn list_sessions<'a>(
        &'a self,
        user: Option<&'a str>,
        include_revoked: bool,
    ) -> BoxFuture<'a, Vec<Session>> {
        Box::pin(sessions::list(&self.pool, user, include_revoked))
    }
    fn set_session_acr<'a>(
        &'a self,
        id: &'a str,
        acr: &'a str,
        auth_time: i64,
    ) -> BoxFuture<'a, bool> {
        Box::pin(sessions::set_acr(&self.pool, id, acr, auth_time))
    }
    fn revoke_session<'a>(&'a self, id: &'a str, reason: &'a str, now: i64) -> BoxFuture<'a, bool> {
        Box::pin(sessions::revoke(&self.pool, id, reason, now))
    }
    fn revoke_user_sessions<'a>(
        &'a self,
        user: &'a str,
        reason: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Vec<String>> {
        Box::pin(sessions::revoke_user(&self.pool, user, reason, now))
    }
    fn purge_sessions(&self, now: i64) -> BoxFuture<'_, u64> {
        Box::pin(sessions::purge(&self.pool, now))
    }

    fn revoke_token(&self, revocation: Revocation, now: i64) -> BoxFuture<'_, bool> {
        Box::pin(revocations::revoke_token(&self.pool, revocation, now))
    }
    fn revocations_since(&self, cursor: i64) -> BoxFuture<'_, (Vec<Revocation>, i64)> {
        Box::pin(revocations::since(&self.pool, cursor))
    }
    fn purge_revocations(&self, now: i64) -> BoxFuture<'_, u64> {
        Box::pin(revocations::purge(&self.pool, now))
    }

    fn set_mfa_secret<'a>(&'a self, user: &'a str, secret: Option<Vec<u8>>) -> BoxFuture<'a, ()> {
        Box::pin(users::set_mfa_secret(&self.pool, user, secret))
    }
    fn accept_totp_step<'a>(&'a self, user: &'a str, step: i64) -> BoxFuture<'a, bool> {
        Box::pin(users::accept_totp_step(&self.pool, user, step))
    }

    fn set_digest_ha1<'a>(
        &'a self,
        user: &'a str,
        realm: &'a str,
        algorithm: DigestAlgorithm,
        secret: Option<DigestHa1>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(digest::set(&self.pool, user, realm, algorithm, secret))
    }
    fn get_digest_ha1<'a>(
        &'a self,
        user: &'a str,
        realm: &'a str,
        algorithm: DigestAlgorithm,
    ) -> BoxFuture<'a, Option<String>> {
        Box::pin(digest::get(&self.pool, user, realm, algorithm))
    }
    fn find_user_by_digest_userhash<'a>(
        &'a self,
        userhash: &'a str,
        realm: &'a str,
        algorithm: DigestAlgorithm,
    ) -> BoxFuture<'a, Option<String>> {
        Box::pin(digest::find_user_by_userhash(
            &self.pool, userhash, realm, algorithm,
        ))
    }

    fn append_audit(&self, records: Vec<AuditRecord>) -> BoxFuture<'_, ()> {
        Box::pin(audit::append(&self.pool, records))
    }
    fn query_audit(&self, query: AuditQuery) -> BoxFuture<'_, Vec<AuditEntry>> {
        Box::pin(audit::query(&self.pool, query))
    }
}
