//! The `Store` trait: every piece of durable state the gateway reads or writes.

use std::future::Future;
use std::pin::Pin;

use crate::error::StoreError;
use crate::model::{ApiKey, NewApiKey, NewUser, SigningKey, User};

/// The future every [`Store`] method returns. Boxed so the trait stays dyn-compatible and
/// callers hold an `Arc<dyn Store>` whatever the backend.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Durable state of Gatehouse (design §4, §5).
///
/// Contract shared by every backend and checked by the conformance suite
/// (`tests/conformance/`):
/// - times are unix seconds passed in by the caller (`now`); a backend never reads the clock
///   for a value it returns;
/// - creating a record that exists is [`StoreError::Conflict`]; changing a user that does not
///   exist is [`StoreError::NotFound`]; any database failure is [`StoreError::Unavailable`];
/// - lists come back in a stable order (users by name; keys by `created_at`, then id/`kid`);
/// - role and scope lists come back in the order they were stored.
pub trait Store: Send + Sync + 'static {
    /// Cheap round trip to the database, for `/readyz`.
    fn ping(&self) -> BoxFuture<'_, ()>;

    // --- users -------------------------------------------------------------------------

    /// Creates an active user. `Conflict` if the name is taken.
    fn create_user(&self, user: NewUser, now: i64) -> BoxFuture<'_, User>;
    fn get_user<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<User>>;
    /// Every user, ordered by name.
    fn list_users(&self) -> BoxFuture<'_, Vec<User>>;
    /// Replaces the password hash; `None` removes password login. `NotFound` for an unknown user.
    fn set_password<'a>(
        &'a self,
        name: &'a str,
        password_hash: Option<String>,
    ) -> BoxFuture<'a, ()>;
    /// Replaces the roles. `NotFound` for an unknown user.
    fn set_roles<'a>(&'a self, name: &'a str, roles: Vec<String>) -> BoxFuture<'a, ()>;
    /// Replaces the tenant. `NotFound` for an unknown user.
    fn set_tenant<'a>(&'a self, name: &'a str, tenant: Option<String>) -> BoxFuture<'a, ()>;
    /// Suspends the account (row 13). Suspending a suspended user replaces time and reason.
    fn suspend_user<'a>(&'a self, name: &'a str, reason: &'a str, now: i64) -> BoxFuture<'a, ()>;
    /// Makes the account active again; a no-op for an active user. `NotFound` if unknown.
    fn unsuspend_user<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()>;
    /// Deletes the user and all their API keys, atomically. `NotFound` if unknown.
    fn delete_user<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()>;

    // --- API keys ----------------------------------------------------------------------

    /// Stores a new key. `Conflict` if the id or prefix is taken, `NotFound` if the owning
    /// user does not exist.
    fn create_api_key(&self, key: NewApiKey, now: i64) -> BoxFuture<'_, ApiKey>;
    /// The key with this prefix, revoked and expired ones included: the caller decides (and
    /// answers `invalid_credentials` for both, design §2 row 11).
    fn find_api_key<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Option<ApiKey>>;
    /// Keys of one user (none for an unknown user), or of everyone with `None`.
    fn list_api_keys<'a>(&'a self, user: Option<&'a str>) -> BoxFuture<'a, Vec<ApiKey>>;
    /// Revokes the key whose id (tried first) or prefix is `id_or_prefix`. Returns whether a
    /// key matched; revoking a revoked key keeps its first `revoked_at`.
    fn revoke_api_key<'a>(&'a self, id_or_prefix: &'a str, now: i64) -> BoxFuture<'a, bool>;
    /// Records a successful use of key `id` (`last_used_at` never moves backwards). Returns
    /// whether the key exists.
    fn touch_api_key<'a>(&'a self, id: &'a str, now: i64) -> BoxFuture<'a, bool>;

    // --- token signing keys ------------------------------------------------------------

    /// Stores a signing key. `Conflict` if the `kid` is taken.
    fn add_signing_key(&self, key: SigningKey) -> BoxFuture<'_, ()>;
    /// Every signing key, retired ones included, oldest first.
    fn list_signing_keys(&self) -> BoxFuture<'_, Vec<SigningKey>>;
    /// Marks a key retired (it then only verifies). Returns whether the `kid` exists;
    /// retiring a retired key keeps its first `retired_at`.
    fn retire_signing_key<'a>(&'a self, kid: &'a str, now: i64) -> BoxFuture<'a, bool>;
}
