//! A store that can be switched off, to prove row 22: our own dependency failing is a 503,
//! never a 401/403.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gatehouse_store::{ApiKey, BoxFuture, NewApiKey, NewUser, SigningKey, Store, StoreError, User};

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
    fn list_signing_keys(&self) -> BoxFuture<'_, Vec<SigningKey>> {
        self.gate(self.inner.list_signing_keys())
    }
    fn retire_signing_key<'a>(&'a self, kid: &'a str, now: i64) -> BoxFuture<'a, bool> {
        self.gate(self.inner.retire_signing_key(kid, now))
    }
}
