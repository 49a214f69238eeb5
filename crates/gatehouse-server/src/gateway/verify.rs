//! Credential verification (rows 8–11, 13's facts, 22): the IO half. Core verifies
//! signatures and hashes; this module fetches what they need.

use gatehouse_core::Scheme;
use gatehouse_core::apikey::{parse_api_key, verify_api_key};
use gatehouse_core::deny::{Credential, Deny};
use gatehouse_core::digest::{
    Algorithm, DigestParams, NonceCheck, check_nonce, check_opaque, verify as verify_response,
};
use gatehouse_core::password::{dummy_hash, verify_password};
use gatehouse_core::principal::Principal;
use gatehouse_core::secret::SecretString;
use gatehouse_store::{DigestAlgorithm, StoreError, User};

use super::{Gateway, RequestView, Runtime};
use crate::digest::NONCE_TTL;
use crate::unavailable::RETRY_AFTER_UNAVAILABLE;
use crate::verified::{Identity, Verified};

/// Longest a verified bearer token is remembered, seconds.
const BEARER_CACHE_TTL: i64 = 300;
/// Longest a verified Basic pair is remembered, seconds: a changed password or role reaches
/// running gateways within this time; a suspension within a second (the suspended set).
const BASIC_CACHE_TTL: i64 = 30;
/// How long a verified bearer token or API key stays known good: while its address is over
/// its verification budget (row 4) it is still verified, not refused unverified. API keys
/// are not cached (a revoked key stops at once): known good, they are looked up again.
const KNOWN_GOOD_FOR: i64 = 86_400;

fn unavailable(e: &StoreError) -> Deny {
    tracing::error!(error = %e, "store unavailable during authentication");
    Deny::AuthUnavailable {
        retry_after: RETRY_AFTER_UNAVAILABLE,
    }
}

fn sha256(secret: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(secret.as_bytes()).into()
}

fn principal_for_user(user: &User, scheme: Scheme) -> Principal {
    let mut p = Principal::new(user.name.clone(), scheme);
    p.roles.clone_from(&user.roles);
    p.tenant.clone_from(&user.tenant);
    p.account = user.status.clone();
    p
}

impl Gateway {
    /// Every scheme but Bearer is verified in a boxed future: their store lookups, password
    /// checks and Digest state would otherwise be part of every request's future, which is
    /// allocated and moved per request (finding 11). A cached Bearer token awaits nothing.
    pub(super) async fn verify(
        &self,
        rt: &Runtime,
        credential: Credential,
        req: &RequestView<'_>,
    ) -> Result<Identity, Deny> {
        let now = req.now;
        let proven = match credential {
            Credential::Bearer(token) => return self.verify_bearer(rt, &token, now).await,
            Credential::Basic { username, password } => {
                Box::pin(self.verify_basic(&username, password, now)).await
            }
            Credential::ApiKey(key) => {
                let p = Box::pin(self.verify_api_key(&key, now)).await;
                if let Ok(p) = &p {
                    self.remember_good(sha256(key.expose()), p.expires_at, now);
                }
                p
            }
            Credential::Session(cookie) => Box::pin(self.verify_session(&cookie, now)).await,
            Credential::Digest(params) => {
                Box::pin(self.verify_digest(
                    &rt.policy.realm,
                    &rt.config.server.digest_algorithms,
                    &params,
                    req.method,
                    req.target,
                    now,
                ))
                .await
            }
        };
        proven.map(Verified::shared)
    }

    /// Verifies a bearer token (rows 8, 9, 22). One of our own tokens with a `kid` this
    /// node has not loaded makes it re-read the signing keys from the store first (single
    /// flight, at most once per [`crate::keys::RELOAD_FLOOR`]): another node, or `keys rotate`, may have
    /// added the key since our last load, and such a token must not get a 401 here.
    pub async fn verify_token(
        &self,
        rt: &Runtime,
        token: &str,
        now: i64,
    ) -> Result<Principal, Deny> {
        rt.verifiers
            .verify(token, now, || self.reload_own_keys(rt))
            .await
    }

    /// Re-reads our signing keys from the store now, unless a re-read is in flight or ran
    /// less than the floor ago. A store failure is row 22 (our fault, never a 401).
    async fn reload_own_keys(&self, rt: &Runtime) -> Result<(), Deny> {
        let ok = self
            .own_key_reload
            .run(|| async {
                match crate::keys::OwnKeys::load_or_create(self.store.as_ref(), crate::clock::now())
                    .await
                {
                    Ok(keys) => {
                        // `rt` may be a runtime a config reload has just replaced: it
                        // verifies the retry, so it gets the keys too.
                        rt.verifiers.set_own_keys(&keys);
                        self.adopt_own_keys(keys);
                        true
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not re-read signing keys");
                        false
                    }
                }
            })
            .await;
        if ok {
            Ok(())
        } else {
            Err(Deny::AuthUnavailable {
                retry_after: RETRY_AFTER_UNAVAILABLE,
            })
        }
    }

    /// What the gateway already knows about a token-class credential without verifying it
    /// (the pipeline's [`Need::Cached`](gatehouse_core::pipeline::Need::Cached)): a bearer
    /// token in its cache, or a session cookie (opening one costs a MAC, not a signature
    /// check). `None`: only a verification can tell — within the address's budget, or for a
    /// credential verified before ([`Self::known_good`]).
    pub(super) async fn known(
        &self,
        credential: Option<&Credential>,
        now: i64,
    ) -> Option<Result<Identity, Deny>> {
        match credential? {
            Credential::Bearer(token) => {
                let p = self.bearer_cache.get(&sha256(token.expose()), now)?;
                self.cache_stats.bearer.hit();
                Some(self.bearer_checks(p))
            }
            Credential::Session(cookie) => Some(
                Box::pin(self.verify_session(cookie, now))
                    .await
                    .map(Verified::shared),
            ),
            Credential::ApiKey(_) | Credential::Basic { .. } | Credential::Digest(_) => None,
        }
    }

    /// Whether this bearer token or API key was verified within [`KNOWN_GOOD_FOR`].
    pub(super) fn known_good(&self, credential: Option<&Credential>, now: i64) -> bool {
        let secret = match credential {
            Some(Credential::Bearer(s) | Credential::ApiKey(s)) => s,
            _ => return false,
        };
        self.known_good.get(&sha256(secret.expose()), now).is_some()
    }

    fn remember_good(&self, hash: [u8; 32], expires_at: Option<i64>, now: i64) {
        let until = expires_at.map_or(now + KNOWN_GOOD_FOR, |e| e.min(now + KNOWN_GOOD_FOR));
        self.known_good.insert(hash, (), until, now);
    }

    /// A remembered identity as of now: revoked since (row 10), or — when it names a
    /// `local` account — suspended since (row 13's facts).
    fn current(&self, p: Identity, local: bool) -> Result<Identity, Deny> {
        // Row 10: logged out, revoked by an admin, or its refresh family caught being reused.
        if self
            .revocations
            .is_revoked(p.token_id.as_deref(), p.session_id.as_deref())
        {
            return Err(Deny::TokenRevoked);
        }
        Ok(match self.suspended.get(&p.subject).filter(|_| local) {
            Some(state) => p.with_account(state),
            None => p,
        })
    }

    async fn verify_bearer(
        &self,
        rt: &Runtime,
        token: &SecretString,
        now: i64,
    ) -> Result<Identity, Deny> {
        let key = sha256(token.expose());
        // A hit is a reference count: the principal and its rendered identity headers are
        // shared by every request of the token.
        let p = match self.bearer_cache.get(&key, now) {
            Some(p) => {
                self.cache_stats.bearer.hit();
                p
            }
            None => {
                self.cache_stats.bearer.miss();
                // Boxed: verifying may fetch an issuer's keys (an unknown `kid`), a large
                // future that a cache hit should not carry.
                Box::pin(self.verify_bearer_once(rt, token, key, now)).await?
            }
        };
        self.bearer_checks(p)
    }

    /// Single flight: the first request with an uncached token verifies it; the ones that
    /// arrive meanwhile wait for its answer (a success or a failure alike) instead of each
    /// checking the same signature — or each waiting for the same issuer's keys. A request
    /// that gives up (client gone) hands the verification to the next waiter.
    async fn verify_bearer_once(
        &self,
        rt: &Runtime,
        token: &SecretString,
        key: [u8; 32],
        now: i64,
    ) -> Result<Identity, Deny> {
        self.bearer_inflight
            .once(key, || async {
                // A verification that ended between our cache miss and joining left its
                // answer in the cache.
                if let Some(p) = self.bearer_cache.get(&key, now) {
                    return Ok(p);
                }
                self.bearer_verifications
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let p = self.verify_token(rt, token.expose(), now).await?;
                // Cached until the token expires, and at most five minutes (keys an issuer
                // withdraws stop being honoured within that time).
                let until = p.expires_at.unwrap_or(now).min(now + BEARER_CACHE_TTL);
                let p = Verified::shared(p);
                self.remember_good(key, p.expires_at, now);
                self.bearer_cache.insert(&key, &p, until, now);
                Ok(p)
            })
            .await
    }

    /// Row 10 and, for our own tokens, row 13's facts on a verified or cached token.
    fn bearer_checks(&self, p: Identity) -> Result<Identity, Deny> {
        // Our own tokens name a local account: suspension applies (row 13).
        let own = p.issuer.as_deref() == Some(crate::tokens::OWN_ISSUER);
        self.current(p, own)
    }

    /// Argon2/bcrypt on the hashing threads (lowest CPU priority, one per CPU). A full
    /// queue is our own overload: 503 with `Retry-After` at once (row 22), counted in
    /// `gatehouse_password_hashes_refused_total`.
    async fn check_hash(&self, hash: String, password: SecretString) -> Result<bool, Deny> {
        let busy = || Deny::AuthUnavailable {
            retry_after: RETRY_AFTER_UNAVAILABLE,
        };
        let answer = self
            .hasher
            .run(move || {
                verify_password(&hash, password.expose().as_bytes()).unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "stored password hash cannot be used");
                    false
                })
            })
            .map_err(|_| busy())?;
        // Counted here, where every password check starts (metrics; the tests prove with it
        // that throttled and cached requests hash nothing).
        self.hashes_started
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        answer.await.map_err(|_| busy())
    }

    /// Checks a user name and password (Basic and `/auth/login`). Unknown users and users
    /// without a password cost the same hash as known ones, so neither the answer nor its
    /// timing tells whether the account exists.
    pub async fn check_password(
        &self,
        username: &str,
        password: SecretString,
    ) -> Result<User, Deny> {
        let user = self
            .store
            .get_user(username)
            .await
            .map_err(|e| unavailable(&e))?;
        let hash = user
            .as_ref()
            .and_then(|u| u.password_hash.clone())
            .unwrap_or_else(|| dummy_hash().to_owned());
        let ok = self.check_hash(hash, password).await?;
        user.filter(|u| ok && u.password_hash.is_some())
            .ok_or(Deny::InvalidCredentials)
    }

    async fn verify_basic(
        &self,
        username: &str,
        password: SecretString,
        now: i64,
    ) -> Result<Principal, Deny> {
        let key = self.basic_cache_key(username, password.expose());
        let user = match self.basic_cache.get(&key, now) {
            Some(mut user) => {
                self.cache_stats.basic.hit();
                // Suspensions apply at once (the suspended set is current to the second).
                user.status = self.suspended.get(&user.name).unwrap_or_default();
                user
            }
            None => {
                self.cache_stats.basic.miss();
                // Single flight: the first request with this pair checks the password; the
                // ones arriving meanwhile wait for its answer (a success or a failure alike)
                // instead of queueing for the hashing pool with the same work. A request
                // that gives up (client gone) hands the check to the next waiter.
                self.basic_inflight
                    .once(key, || async {
                        // A check that ended between our cache miss and joining left its
                        // answer in the cache.
                        if let Some(user) = self.basic_cache.get(&key, now) {
                            return Ok(user);
                        }
                        let r = self.check_password(username, password).await;
                        if let Ok(user) = &r {
                            self.basic_cache
                                .insert(key, user.clone(), now + BASIC_CACHE_TTL, now);
                        }
                        r
                    })
                    .await?
            }
        };
        let mut p = principal_for_user(&user, Scheme::Basic);
        // The password was proven by this very request.
        p.acr = Some("pwd".to_owned());
        p.auth_time = Some(now);
        Ok(p)
    }

    async fn verify_session(&self, cookie: &SecretString, now: i64) -> Result<Principal, Deny> {
        let Some(c) = crate::session::open(&self.secrets, cookie.expose(), now) else {
            return Err(Deny::InvalidToken {
                detail: "session cookie is not valid or has expired".to_owned(),
            });
        };
        if self.revocations.is_revoked(None, Some(&c.session_id)) {
            return Err(Deny::TokenRevoked);
        }
        let user = self
            .store
            .get_user(&c.user)
            .await
            .map_err(|e| unavailable(&e))?
            .ok_or(Deny::InvalidCredentials)?;
        Ok(crate::session::principal(&c, &user))
    }

    /// Verifies a Digest credential for `method` on `target` (the raw request-target).
    /// `algorithms` are the ones offered (`[server] digest_algorithms`); a response in any
    /// other (or its `-sess` variant) is refused: the server chooses (RFC 7616 §3.3).
    pub async fn verify_digest(
        &self,
        realm: &str,
        algorithms: &[Algorithm],
        params: &DigestParams,
        method: &str,
        target: &str,
        now: i64,
    ) -> Result<Principal, Deny> {
        let key = self.secrets.derive(crate::digest::KEY_DIGEST);
        let base = params.algorithm.base();
        if !algorithms.contains(&base) {
            return Err(Deny::InvalidCredentials);
        }
        let stored_alg = match base {
            Algorithm::Sha256 => DigestAlgorithm::Sha256,
            Algorithm::Md5 => DigestAlgorithm::Md5,
            _ => return Err(Deny::InvalidCredentials),
        };
        if params.realm != realm
            || !params.uri_matches(target)
            || !params
                .opaque
                .as_deref()
                .is_some_and(|o| check_opaque(&key, realm, o))
        {
            return Err(Deny::InvalidCredentials);
        }
        let nonce = check_nonce(&key, &params.nonce, now, NONCE_TTL);
        if matches!(nonce, NonceCheck::Invalid) {
            return Err(Deny::InvalidCredentials);
        }
        let unavailable = |e: gatehouse_store::StoreError| {
            tracing::error!(error = %e, "store unavailable during Digest verification");
            Deny::AuthUnavailable {
                retry_after: RETRY_AFTER_UNAVAILABLE,
            }
        };
        let user_name = if params.userhash {
            self.store
                .find_user_by_digest_userhash(&params.username, realm, stored_alg)
                .await
                .map_err(unavailable)?
        } else {
            Some(params.username.clone())
        };
        let Some(user_name) = user_name else {
            return Err(Deny::InvalidCredentials);
        };
        let ha1 = self
            .store
            .get_digest_ha1(&user_name, realm, stored_alg)
            .await
            .map_err(unavailable)?;
        let Some(ha1) = ha1 else {
            return Err(Deny::InvalidCredentials);
        };
        if !verify_response(params, method, &ha1) {
            return Err(Deny::InvalidCredentials);
        }
        let issued_at = match nonce {
            // Row 12: everything is right but the nonce is old: retry with the new one.
            NonceCheck::Stale => return Err(Deny::StaleNonce),
            NonceCheck::Valid { issued_at } => issued_at,
            NonceCheck::Invalid => return Err(Deny::InvalidCredentials),
        };
        let nc = params.nonce_count();
        if !self.nonce_counts.advance(&params.nonce, nc, issued_at, now) {
            return Err(Deny::InvalidCredentials);
        }
        // Cluster-wide: an `nc` another node accepted is a replay here too. Without an
        // answer from Redis the local count above stands.
        if let Some(c) = &self.cluster {
            let left = (issued_at + i64::try_from(NONCE_TTL).unwrap_or(300) - now).max(1);
            let ttl = u64::try_from(left).unwrap_or(NONCE_TTL) + 60;
            if c.advance_nonce(&params.nonce, nc, ttl).await == Some(false) {
                return Err(Deny::InvalidCredentials);
            }
        }
        let user = self
            .store
            .get_user(&user_name)
            .await
            .map_err(unavailable)?
            .ok_or(Deny::InvalidCredentials)?;
        let mut p = Principal::new(user.name.clone(), Scheme::Digest);
        p.roles.clone_from(&user.roles);
        p.tenant.clone_from(&user.tenant);
        p.account = user.status.clone();
        p.acr = Some("pwd".to_owned());
        p.auth_time = Some(now);
        Ok(p)
    }

    async fn verify_api_key(&self, key: &SecretString, now: i64) -> Result<Principal, Deny> {
        let Some((prefix, _)) = parse_api_key(key.expose()) else {
            return Err(Deny::InvalidCredentials);
        };
        let record = self
            .store
            .find_api_key(prefix)
            .await
            .map_err(|e| unavailable(&e))?;
        let Some(record) = record else {
            return Err(Deny::InvalidCredentials);
        };
        if !verify_api_key(key.expose(), &record.hash)
            || record.revoked_at.is_some()
            || record.expires_at.is_some_and(|e| e <= now)
        {
            return Err(Deny::InvalidCredentials);
        }
        let user = self
            .store
            .get_user(&record.user)
            .await
            .map_err(|e| unavailable(&e))?
            .ok_or(Deny::InvalidCredentials)?;
        let mut p = principal_for_user(&user, Scheme::ApiKey);
        p.scopes.clone_from(&record.scopes);
        p.read_only = record.read_only;
        p.token_id = Some(record.id.clone());
        p.expires_at = record.expires_at;
        Ok(p)
    }
}
