//! A store that can be switched off, to prove row 22: our own dependency failing is a 503,
//! never a 401/403.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gatehouse_store::{
    ApiKey, AuditEntry, AuditQuery, AuditRecord, BoxFuture, DigestAlgorithm, DigestHa1, Export,
    NewApiKey, NewSession, NewUser, RecordCounts, Revocation, RotateOutcome, Session, SigningKey,
    StatRow, StatsQuery, Store, StoreError, User,
};

pub struct Flaky {
    pub inner: Arc<dyn Store>,
    pub down: AtomicBool,
}

impl Flaky {
    fn gate<'a, T: Send + 'a>(&'a self, f: BoxFuture<'a, T>) -> BoxFuture<'a, T> {
        if self.down.load(Ordering::SeqCst) {
            Box::pin(async { Err(StoreError::Unavailable("injected outage".into())) })
        } else {
            f
        }
    }
}

impl Store for Flaky {
    fn ping(&self) -> BoxFuture<'_, ()> {
        self.gate(self.inner.ping())
    }
    fn create_user(&self, user: NewUser, now: i64) -> BoxFuture<'_, User> {
        self.gate(self.inner.create_user(user, now))
    }
    fn get_user<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<User>> {
        self.gate(self.inner.get_user(name))
    }
    fn list_users(&self) -> BoxFuture<'_, Vec<User>> {
        self.gate(self.inner.list_users())
    }
    fn set_password<'a>(&'a self, name: &'a str, hash: Option<String>) -> BoxFuture<'a, ()> {
        self.gate(self.inner.set_password(name, hash))
    }
    fn set_roles<'a>(&'a self, name: &'a str, roles: Vec<String>) -> BoxFuture<'a, ()> {
        self.gate(self.inner.set_roles(name, roles))
    }
    fn set_tenant<'a>(&'a self, name: &'a str, tenant: Option<String>) -> BoxFuture<'a, ()> {
        self.gate(self.inner.set_tenant(name, tenant))
    }
    fn update_attributes<'a>(
        &'a self,
        name: &'a str,
        set: gatehouse_core::attributes::Attributes,
        unset: Vec<String>,
    ) -> BoxFuture<'a, gatehouse_core::attributes::Attributes> {
        self.gate(self.inner.update_attributes(name, set, unset))
    }
    fn suspend_user<'a>(&'a self, name: &'a str, reason: &'a str, now: i64) -> BoxFuture<'a, ()> {
        self.gate(self.inner.suspend_user(name, reason, now))
    }
    fn unsuspend_user<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()> {
        self.gate(self.inner.unsuspend_user(name))
    }
    fn delete_user<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()> {
        self.gate(self.inner.delete_user(name))
    }
    fn create_api_key(&self, key: NewApiKey, now: i64) -> BoxFuture<'_, ApiKey> {
        self.gate(self.inner.create_api_key(key, now))
    }
    fn find_api_key<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Option<ApiKey>> {
        self.gate(self.inner.find_api_key(prefix))
    }
    fn list_api_keys<'a>(&'a self, user: Option<&'a str>) -> BoxFuture<'a, Vec<ApiKey>> {
        self.gate(self.inner.list_api_keys(user))
    }
    fn revoke_api_key<'a>(&'a self, id_or_prefix: &'a str, now: i64) -> BoxFuture<'a, bool> {
        self.gate(self.inner.revoke_api_key(id_or_prefix, now))
    }
    fn touch_api_key<'a>(&'a self, id: &'a str, now: i64) -> BoxFuture<'a, bool> {
        self.gate(self.inner.touch_api_key(id, now))
    }
    fn add_signing_key(&self, key: SigningKey) -> BoxFuture<'_, ()> {
        self.gate(self.inner.add_signing_key(key))
    }
    fn add_first_signing_key(&self, key: SigningKey) -> BoxFuture<'_, bool> {
        self.gate(self.inner.add_first_signing_key(key))
    }
    fn list_signing_keys(&self) -> BoxFuture<'_, Vec<SigningKey>> {
        self.gate(self.inner.list_signing_keys())
    }
    fn retire_signing_key<'a>(&'a self, kid: &'a str, now: i64) -> BoxFuture<'a, bool> {
        self.gate(self.inner.retire_signing_key(kid, now))
    }
    fn create_session(&self, session: NewSession, now: i64) -> BoxFuture<'_, Session> {
        self.gate(self.inner.create_session(session, now))
    }
    fn rotate_refresh(
        &self,
        presented: [u8; 32],
        next: [u8; 32],
        now: i64,
        refresh_expires_at: i64,
    ) -> BoxFuture<'_, RotateOutcome> {
        self.gate(
            self.inner
                .rotate_refresh(presented, next, now, refresh_expires_at),
        )
    }
    fn get_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<Session>> {
        self.gate(self.inner.get_session(id))
    }
    fn list_sessions<'a>(
        &'a self,
        user: Option<&'a str>,
        include_revoked: bool,
    ) -> BoxFuture<'a, Vec<Session>> {
        self.gate(self.inner.list_sessions(user, include_revoked))
    }
    fn set_session_acr<'a>(
        &'a self,
        id: &'a str,
        acr: &'a str,
        auth_time: i64,
    ) -> BoxFuture<'a, bool> {
        self.gate(self.inner.set_session_acr(id, acr, auth_time))
    }
    fn revoke_session<'a>(&'a self, id: &'a str, reason: &'a str, now: i64) -> BoxFuture<'a, bool> {
        self.gate(self.inner.revoke_session(id, reason, now))
    }
    fn revoke_user_sessions<'a>(
        &'a self,
        user: &'a str,
        reason: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Vec<String>> {
        self.gate(self.inner.revoke_user_sessions(user, reason, now))
    }
    fn purge_sessions(&self, now: i64) -> BoxFuture<'_, u64> {
        self.gate(self.inner.purge_sessions(now))
    }
    fn revoke_token(&self, revocation: Revocation, now: i64) -> BoxFuture<'_, bool> {
        self.gate(self.inner.revoke_token(revocation, now))
    }
    fn revocations_since(&self, cursor: i64) -> BoxFuture<'_, (Vec<Revocation>, i64)> {
        self.gate(self.inner.revocations_since(cursor))
    }
    fn purge_revocations(&self, now: i64) -> BoxFuture<'_, u64> {
        self.gate(self.inner.purge_revocations(now))
    }
    fn set_mfa_secret<'a>(&'a self, user: &'a str, secret: Option<Vec<u8>>) -> BoxFuture<'a, ()> {
        self.gate(self.inner.set_mfa_secret(user, secret))
    }
    fn accept_totp_step<'a>(&'a self, user: &'a str, step: i64) -> BoxFuture<'a, bool> {
        self.gate(self.inner.accept_totp_step(user, step))
    }
    fn set_digest_ha1<'a>(
        &'a self,
        user: &'a str,
        realm: &'a str,
        algorithm: DigestAlgorithm,
        secret: Option<DigestHa1>,
    ) -> BoxFuture<'a, ()> {
        self.gate(self.inner.set_digest_ha1(user, realm, algorithm, secret))
    }
    fn get_digest_ha1<'a>(
        &'a self,
        user: &'a str,
        realm: &'a str,
        algorithm: DigestAlgorithm,
    ) -> BoxFuture<'a, Option<String>> {
        self.gate(self.inner.get_digest_ha1(user, realm, algorithm))
    }
    fn find_user_by_digest_userhash<'a>(
        &'a self,
        userhash: &'a str,
        realm: &'a str,
        algorithm: DigestAlgorithm,
    ) -> BoxFuture<'a, Option<String>> {
        self.gate(
            self.inner
                .find_user_by_digest_userhash(userhash, realm, algorithm),
        )
    }
    fn append_audit(&self, records: Vec<AuditRecord>) -> BoxFuture<'_, ()> {
        self.gate(self.inner.append_audit(records))
    }
    fn query_audit(&self, query: AuditQuery) -> BoxFuture<'_, Vec<AuditEntry>> {
        self.gate(self.inner.query_audit(query))
    }
    fn add_stats(&self, rows: Vec<StatRow>) -> BoxFuture<'_, ()> {
        self.gate(self.inner.add_stats(rows))
    }
    fn query_stats(&self, query: StatsQuery) -> BoxFuture<'_, Vec<StatRow>> {
        self.gate(self.inner.query_stats(query))
    }
    fn purge_stats(&self, before: i64) -> BoxFuture<'_, u64> {
        self.gate(self.inner.purge_stats(before))
    }
    fn export(&self) -> BoxFuture<'_, Export> {
        self.gate(self.inner.export())
    }
    fn export_audit(&self, after_seq: i64, limit: u32) -> BoxFuture<'_, Vec<AuditEntry>> {
        self.gate(self.inner.export_audit(after_seq, limit))
    }
    fn count_records(&self) -> BoxFuture<'_, RecordCounts> {
        self.gate(self.inner.count_records())
    }
    fn import_from<'a>(&'a self, source: &'a dyn Store) -> BoxFuture<'a, RecordCounts> {
        self.gate(self.inner.import_from(source))
    }
}
