//! The `Store` trait: every piece of durable state the gateway reads or writes.

use std::future::Future;
use std::pin::Pin;

use crate::error::StoreError;
use crate::model::{
    ApiKey, AuditEntry, AuditQuery, AuditRecord, DigestAlgorithm, DigestHa1, Export, NewApiKey,
    NewSession, NewUser, RecordCounts, Revocation, RotateOutcome, Session, SigningKey, StatRow,
    StatsQuery, User,
};

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
    /// Sets the attributes in `set` and removes those named in `unset` (issue 13), in one
    /// transaction; returns the user's attributes after the change. `NotFound` for an
    /// unknown user, `Invalid` for a bad name or an oversized value.
    fn update_attributes<'a>(
        &'a self,
        name: &'a str,
        set: gatehouse_core::attributes::Attributes,
        unset: Vec<String>,
    ) -> BoxFuture<'a, gatehouse_core::attributes::Attributes>;
    /// Suspends the account (row 13). Suspending a suspended user replaces time and reason.
    fn suspend_user<'a>(&'a self, name: &'a str, reason: &'a str, now: i64) -> BoxFuture<'a, ()>;
    /// Makes the account active again; a no-op for an active user. `NotFound` if unknown.
    fn unsuspend_user<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()>;
    /// Deletes the user and everything of theirs (API keys, sessions with their refresh
    /// tokens, Digest secrets), atomically, and lists each of their unrevoked sessions in the
    /// revocation list (reason `user deleted`) so their access tokens die at once. `NotFound`
    /// if unknown.
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
    /// Stores `key` only if no unretired key of its `algorithm` is stored yet; returns
    /// whether it was stored. Check and insert run in one write transaction under a lock, so
    /// nodes starting together on an empty store agree on one key: one stores it, the others
    /// get `false` and adopt it.
    fn add_first_signing_key(&self, key: SigningKey) -> BoxFuture<'_, bool>;
    /// Every signing key, retired ones included, oldest first.
    fn list_signing_keys(&self) -> BoxFuture<'_, Vec<SigningKey>>;
    /// Marks a key retired (it then only verifies). Returns whether the `kid` exists;
    /// retiring a retired key keeps its first `retired_at`.
    fn retire_signing_key<'a>(&'a self, kid: &'a str, now: i64) -> BoxFuture<'a, bool>;

    // --- sessions and refresh-token families (design §2, crates.md §3.3) ----------------

    /// Starts a session (one login) with its first refresh token, generation 0, expiring
    /// with the session. `Conflict` if the id (`session`) or the token hash (`refresh
    /// token`) is taken, `NotFound { what: "user" }` for an unknown user.
    fn create_session(&self, session: NewSession, now: i64) -> BoxFuture<'_, Session>;
    /// Exchanges the refresh token whose SHA-256 is `presented` for the one whose SHA-256 is
    /// `next`, atomically (concurrent rotations serialize). In order:
    /// - unknown hash → [`RotateOutcome::Unknown`];
    /// - already used → [`RotateOutcome::Reused`]: the session is revoked (reason `refresh
    ///   token reuse`, a session-kind revocation is recorded). Two clients racing with the
    ///   same token therefore lose the whole family: one wins the rotation, the other
    ///   presents a used token. That is the conservative outcome (RFC 9700 §4.14.2);
    /// - session revoked → [`RotateOutcome::Revoked`];
    /// - token or session expired at `now` → [`RotateOutcome::Expired`];
    /// - otherwise → [`RotateOutcome::Rotated`]: `presented` is marked used at `now`, `next`
    ///   becomes the current token (next generation) expiring at `refresh_expires_at`, and
    ///   the session's `expires_at` moves to `refresh_expires_at`, `last_refresh_at` to `now`.
    ///
    /// `Conflict { what: "refresh token" }` (nothing changed) if `next` is already stored.
    fn rotate_refresh(
        &self,
        presented: [u8; 32],
        next: [u8; 32],
        now: i64,
        refresh_expires_at: i64,
    ) -> BoxFuture<'_, RotateOutcome>;
    fn get_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<Session>>;
    /// Sessions of one user (none for an unknown user) or of everyone, by `created_at` then
    /// id. Revoked sessions only with `include_revoked`; expired ones are listed (see
    /// [`Session::is_active`]).
    fn list_sessions<'a>(
        &'a self,
        user: Option<&'a str>,
        include_revoked: bool,
    ) -> BoxFuture<'a, Vec<Session>>;
    /// Raises a session's authentication after an MFA step-up. Returns whether an unrevoked
    /// session with this id exists (a revoked one is left unchanged).
    fn set_session_acr<'a>(
        &'a self,
        id: &'a str,
        acr: &'a str,
        auth_time: i64,
    ) -> BoxFuture<'a, bool>;
    /// Revokes the session and its refresh family and records a session-kind revocation
    /// (expiring with the session) so access tokens carrying its id die at once (row 10).
    /// Returns whether the session exists; revoking twice keeps the first time and reason.
    fn revoke_session<'a>(&'a self, id: &'a str, reason: &'a str, now: i64) -> BoxFuture<'a, bool>;
    /// [`revoke_session`](Self::revoke_session) for every unrevoked session of `user`
    /// (expired ones included), atomically. Returns the ids it revoked, by `created_at`.
    fn revoke_user_sessions<'a>(
        &'a self,
        user: &'a str,
        reason: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Vec<String>>;
    /// Deletes sessions (with their refresh tokens) whose `expires_at` is before `now`,
    /// revoked or not. Returns how many.
    fn purge_sessions(&self, now: i64) -> BoxFuture<'_, u64>;

    // --- access-token revocation list (row 10) -------------------------------------------

    /// Records a revocation. Idempotent: a (kind, id) already listed keeps its first entry.
    /// One whose `expires_at` is before `now` is not stored (what it names is dead anyway).
    /// Returns whether a new entry was recorded.
    fn revoke_token(&self, revocation: Revocation, now: i64) -> BoxFuture<'_, bool>;
    /// Entries recorded after `cursor` (start with 0), oldest first, and the cursor to pass
    /// next time (unchanged when nothing is new). The cursor is a sequence number, not a
    /// time: successive calls never repeat or skip an entry, whatever the clocks do.
    fn revocations_since(&self, cursor: i64) -> BoxFuture<'_, (Vec<Revocation>, i64)>;
    /// Deletes entries whose `expires_at` is before `now`. Returns how many.
    fn purge_revocations(&self, now: i64) -> BoxFuture<'_, u64>;

    // --- MFA (TOTP, RFC 6238) ------------------------------------------------------------

    /// Sets (enrolment) or clears the user's encrypted TOTP secret. Clearing also forgets the
    /// last accepted time-step; replacing a secret keeps it. `NotFound` for an unknown user.
    fn set_mfa_secret<'a>(&'a self, user: &'a str, secret: Option<Vec<u8>>) -> BoxFuture<'a, ()>;
    /// Atomically records `step` as the last accepted TOTP time-step if it is greater than
    /// the stored one. `false` for a step already used or older (RFC 6238 §5.2) and for a
    /// user without a secret; `NotFound` for an unknown user.
    fn accept_totp_step<'a>(&'a self, user: &'a str, step: i64) -> BoxFuture<'a, bool>;

    // --- Digest secrets (RFC 7616) -------------------------------------------------------

    /// Sets (replacing) or with `None` removes the HA1 and userhash of `user` for `realm`
    /// and `algorithm`. `NotFound` for an unknown user; `Invalid` if a value is not a hex
    /// digest of `algorithm`; `Conflict { what: "digest userhash" }` if another user of the
    /// realm has the same userhash.
    fn set_digest_ha1<'a>(
        &'a self,
        user: &'a str,
        realm: &'a str,
        algorithm: DigestAlgorithm,
        secret: Option<DigestHa1>,
    ) -> BoxFuture<'a, ()>;
    /// The stored HA1 (lower-case hex), if any.
    fn get_digest_ha1<'a>(
        &'a self,
        user: &'a str,
        realm: &'a str,
        algorithm: DigestAlgorithm,
    ) -> BoxFuture<'a, Option<String>>;
    /// The user whose userhash (any hex case) for `realm` and `algorithm` is `userhash`
    /// (RFC 7616 §3.4.4, `userhash=true`).
    fn find_user_by_digest_userhash<'a>(
        &'a self,
        userhash: &'a str,
        realm: &'a str,
        algorithm: DigestAlgorithm,
    ) -> BoxFuture<'a, Option<String>>;

    // --- audit trail (design §6) -----------------------------------------------------------

    /// Appends records, all or none, in order (their sequence numbers increase in the order
    /// given).
    fn append_audit(&self, records: Vec<AuditRecord>) -> BoxFuture<'_, ()>;
    /// The newest `query.limit` records matching every filter, returned oldest first.
    fn query_audit(&self, query: AuditQuery) -> BoxFuture<'_, Vec<AuditEntry>>;

    // --- per-minute decision rollups (the admin console's charts) ---------------------

    /// Adds each row's `count` to the stored row of the same minute, route, status and
    /// reason (created at zero), atomically: nodes add their own counts and the rows hold the
    /// sum. Rows must not repeat a key within one call.
    fn add_stats(&self, rows: Vec<StatRow>) -> BoxFuture<'_, ()>;
    /// Rows of minutes in `[since, until)` (of one route with `route`), by minute, route,
    /// status and reason.
    fn query_stats(&self, query: StatsQuery) -> BoxFuture<'_, Vec<StatRow>>;
    /// Deletes rows of minutes before `before`. Returns how many.
    fn purge_stats(&self, before: i64) -> BoxFuture<'_, u64>;

    // --- moving every record to another store (`gatehouse copy`, design §5) ---------------

    /// Every record but the audit trail, read in one snapshot, with ids, times, hashes and
    /// sequence numbers as stored.
    fn export(&self) -> BoxFuture<'_, Export>;
    /// Up to `limit` audit entries with `seq > after_seq`, oldest first: page through the
    /// whole trail by passing the last `seq` of each page (start with 0).
    fn export_audit(&self, after_seq: i64, limit: u32) -> BoxFuture<'_, Vec<AuditEntry>>;
    /// How many rows each table holds.
    fn count_records(&self) -> BoxFuture<'_, RecordCounts>;
    /// Copies every record of `source` (its [`export`](Self::export), then its audit trail
    /// page by page) into this store, in one transaction, and returns the rows now stored.
    /// Ids, times, hashes and sequence numbers are kept, and this store's sequences move past
    /// the source's, so whatever the source issued stays valid here. `source` is only read.
    ///
    /// Nothing is written when this store already holds a record ([`StoreError::NotEmpty`],
    /// naming what it holds) or when, before committing, a table's rows differ from the
    /// source's count ([`StoreError::CopyMismatch`]: the source changed during the copy).
    fn import_from<'a>(&'a self, source: &'a dyn Store) -> BoxFuture<'a, RecordCounts>;
}
