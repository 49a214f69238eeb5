//! The [`Store`] implementation of both backends (see `src/queries.rs`): each method runs the
//! shared query of its table module on the backend's pool.

use super::dialect::{Backend, MIGRATIONS};
use super::{audit, copy, digest, keys, migrate, revocations, sessions, stats, users};
use crate::error::StoreError;
use crate::model::{
    ApiKey, AuditEntry, AuditQuery, AuditRecord, DigestAlgorithm, DigestHa1, Export, NewApiKey,
    NewSession, NewUser, RecordCounts, Revocation, RotateOutcome, Session, SigningKey, StatRow,
    StatsQuery, User,
};
use crate::shared::{AppliedMigration, latest};
use crate::store::{BoxFuture, Store};

impl Backend {
    /// The migrations recorded in this database, oldest first.
    pub async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>, StoreError> {
        migrate::applied(&self.pool).await
    }

    /// The schema version this build migrates to.
    pub fn supported_schema_version() -> i64 {
        latest(MIGRATIONS)
    }

    /// Closes every connection (on SQLite, checkpointing the WAL). Later calls fail with
    /// `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl Store for Backend {
    fn ping(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {
            sqlx::query_scalar::<_, i64>("SELECT CAST(1 AS BIGINT)")
                .fetch_one(&self.pool)
                .await
                .map(drop)
                .map_err(|e| StoreError::db("ping", e))
        })
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
    fn update_attributes<'a>(
        &'a self,
        name: &'a str,
        set: gatehouse_core::attributes::Attributes,
        unset: Vec<String>,
    ) -> BoxFuture<'a, gatehouse_core::attributes::Attributes> {
        Box::pin(users::update_attributes(&self.pool, name, set, unset))
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
    fn add_first_signing_key(&self, key: SigningKey) -> BoxFuture<'_, bool> {
        Box::pin(keys::add_first_signing_key(&self.pool, key))
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

    fn add_stats(&self, rows: Vec<StatRow>) -> BoxFuture<'_, ()> {
        Box::pin(stats::add(&self.pool, rows))
    }
    fn query_stats(&self, query: StatsQuery) -> BoxFuture<'_, Vec<StatRow>> {
        Box::pin(stats::query(&self.pool, query))
    }
    fn purge_stats(&self, before: i64) -> BoxFuture<'_, u64> {
        Box::pin(stats::purge(&self.pool, before))
    }

    fn export(&self) -> BoxFuture<'_, Export> {
        Box::pin(copy::export(&self.pool))
    }
    fn export_audit(&self, after_seq: i64, limit: u32) -> BoxFuture<'_, Vec<AuditEntry>> {
        Box::pin(copy::export_audit(&self.pool, after_seq, limit))
    }
    fn count_records(&self) -> BoxFuture<'_, RecordCounts> {
        Box::pin(copy::count_records(&self.pool))
    }
    fn import_from<'a>(&'a self, source: &'a dyn Store) -> BoxFuture<'a, RecordCounts> {
        Box::pin(copy::import(&self.pool, source))
    }
}
