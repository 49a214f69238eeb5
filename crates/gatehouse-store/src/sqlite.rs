//! The embedded SQLite backend (design §5: one node, WAL).

mod audit;
mod digest;
mod keys;
mod migrate;
mod revocations;
mod sessions;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::error::StoreError;
use crate::model::{
    ApiKey, AuditEntry, AuditQuery, AuditRecord, DigestAlgorithm, DigestHa1, NewApiKey, NewSession,
    NewUser, Revocation, RotateOutcome, Session, SigningKey, User,
};
use crate::store::{BoxFuture, Store};

pub use crate::shared::AppliedMigration;
use crate::shared::{decode_list, encode_list};

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections of a file database: WAL lets readers run beside the one writer.
const FILE_POOL_SIZE: u32 = 4;

/// [`Store`] on SQLite through an sqlx pool.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database at `url`:
    /// `sqlite://path/to/file.db` (relative paths are relative to the working directory) or
    /// `sqlite::memory:` (a private database that lives as long as this store).
    ///
    /// Refuses a database migrated by a newer build ([`StoreError::SchemaTooNew`]).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let target = Target::parse(url)?;
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidUrl(e.to_string()))?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = match target {
            // An in-memory database dies with its last connection: keep exactly one, forever.
            Target::Memory => SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None),
            Target::File => SqlitePoolOptions::new().max_connections(FILE_POOL_SIZE),
        };
        let options = match target {
            Target::Memory => options,
            // NORMAL is durable in WAL mode except for the last transactions on power loss
            // (https://www.sqlite.org/pragma.html#pragma_synchronous).
            Target::File => options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal),
        };
        let pool = pool
            .connect_with(options)
            .await
            .map_err(|e| StoreError::db("open database", e))?;
        migrate::run(&pool, migrate::MIGRATIONS).await?;
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

    /// Closes every connection (checkpointing the WAL). Later calls fail with `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// What a `sqlite:` URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Memory,
    File,
}

impl Target {
    fn parse(url: &str) -> Result<Self, StoreError> {
        let Some(rest) = url.strip_prefix("sqlite:") else {
            return Err(StoreError::InvalidUrl(
                "a sqlite url starts with `sqlite:`".into(),
            ));
        };
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
        let memory_mode = params.split('&').any(|p| p == "mode=memory");
        if database == ":memory:" || memory_mode {
            Ok(Self::Memory)
        } else if database.is_empty() {
            Err(StoreError::InvalidUrl(
                "a sqlite url needs a file path, as in `sqlite://gatehouse.db`, or `sqlite::memory:`"
                    .into(),
            ))
        } else {
            Ok(Self::File)
        }
    }
}

/// Whether `err` is a unique/primary-key violation.
fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_foreign_key_violation())
}

impl SqliteStore {
    async fn ping_db(&self) -> Result<(), StoreError> {
        let row = sqlx::query("SELECT 1")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| StoreError::db("ping", e))?;
        row.try_get::<i64, _>(0)
            .map(drop)
            .map_err(|e| StoreError::db("ping", e))
    }
}

impl Store for SqliteStore {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_classified() {
        assert_eq!(Target::parse("sqlite::memory:"), Ok(Target::Memory));
        assert_eq!(Target::parse("sqlite://:memory:"), Ok(Target::Memory));
        assert_eq!(
            Target::parse("sqlite://x.db?mode=memory"),
            Ok(Target::Memory)
        );
        assert_eq!(Target::parse("sqlite://gatehouse.db"), Ok(Target::File));
        assert_eq!(Target::parse("sqlite:///var/lib/g.db"), Ok(Target::File));
        assert_eq!(Target::parse("sqlite:g.db"), Ok(Target::File));
        assert!(matches!(
            Target::parse("sqlite://"),
            Err(StoreError::InvalidUrl(_))
        ));
        assert!(matches!(
            Target::parse("sqlite://?cache=shared"),
            Err(StoreError::InvalidUrl(_))
        ));
        assert!(matches!(
            Target::parse("postgres://h/db"),
            Err(StoreError::InvalidUrl(_))
        ));
    }

    #[test]
    fn lists_round_trip_as_json() -> Result<(), StoreError> {
        let list = vec!["a\"b".to_owned(), "ü".to_owned(), String::new()];
        let text = encode_list(&list)?;
        assert_eq!(decode_list(&text, "user", "x")?, list);
        assert!(matches!(
            decode_list("{not json", "user", "x"),
            Err(StoreError::Unavailable(m)) if m.starts_with("corrupt user `x`")
        ));
        Ok(())
    }

    #[tokio::test]
    async fn memory_databases_are_private_and_persist_across_calls() -> Result<(), StoreError> {
        let a = SqliteStore::open("sqlite::memory:").await?;
        let b = SqliteStore::open("sqlite::memory:").await?;
        a.create_user(
            NewUser {
                name: "only-in-a".into(),
                ..NewUser::default()
            },
            1,
        )
        .await?;
        a.ping().await?;
        assert!(a.get_user("only-in-a").await?.is_some());
        assert!(b.get_user("only-in-a").await?.is_none());
        Ok(())
    }

    #[tokio::test]
    async fn closed_store_is_unavailable() -> Result<(), StoreError> {
        let s = SqliteStore::open("sqlite::memory:").await?;
        s.close().await;
        assert!(matches!(s.ping().await, Err(StoreError::Unavailable(_))));
        Ok(())
    }
}
