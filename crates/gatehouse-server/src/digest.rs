//! HTTP Digest at the edge (RFC 7616, rows 5, 11, 12): fresh stateless nonces in every
//! challenge, verification against the user's stored HA1, `nc` replay protection, and the
//! `uri` checked against the request target.
//!
//! Nonces are `timestamp ‖ random ‖ HMAC` under a key derived from the cluster master secret,
//! so every node accepts every node's nonces. A nonce lives [`NONCE_TTL`] seconds; an expired
//! one with an otherwise right response is answered `stale=true` (row 12) so the client
//! retries without asking the user. The highest `nc` seen per nonce is kept in memory: a
//! replayed or reordered `nc` is refused.

use std::collections::HashMap;
use std::sync::Mutex;

use gatehouse_core::Scheme;
use gatehouse_core::deny::Deny;
use gatehouse_core::digest::{
    Algorithm, DigestChallenge, DigestParams, NonceCheck, check_nonce, check_opaque, make_nonce,
    make_opaque, verify,
};
use gatehouse_core::principal::Principal;
use gatehouse_store::DigestAlgorithm;

use crate::gateway::Gateway;
use crate::keys::Secrets;

/// Lifetime of a nonce, seconds.
pub const NONCE_TTL: u64 = 300;
pub const KEY_DIGEST: &str = "gatehouse/digest-nonce/v1";

/// Highest `nc` per nonce.
#[derive(Default)]
pub struct NonceCounts {
    map: Mutex<HashMap<String, (u32, i64)>>,
}

impl NonceCounts {
    /// Records `nc` for `nonce`; false if it is not greater than the last one seen.
    fn advance(&self, nonce: &str, nc: u32, issued_at: i64, now: i64) -> bool {
        let mut map = match self.map.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if map.len() > 100_000 {
            let horizon = now - i64::try_from(NONCE_TTL).unwrap_or(300);
            map.retain(|_, (_, issued)| *issued > horizon);
        }
        let entry = map.entry(nonce.to_owned()).or_insert((0, issued_at));
        if nc <= entry.0 {
            return false;
        }
        entry.0 = nc;
        true
    }
}

/// A fresh challenge for a 401 on a route that takes Digest, one per configured algorithm
/// (`[server] digest_algorithms`, rendered strongest first).
pub fn challenge(
    secrets: &Secrets,
    realm: &str,
    algorithms: &[Algorithm],
    now: i64,
) -> DigestChallenge {
    let key = secrets.derive(KEY_DIGEST);
    DigestChallenge {
        nonce: make_nonce(&key, now, &crate::random::random_bytes::<16>()),
        opaque: make_opaque(&key, realm),
        algorithms: algorithms.to_vec(),
        userhash: true,
    }
}

impl Gateway {
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
        let key = self.secrets.derive(KEY_DIGEST);
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
                retry_after: crate::gateway::RETRY_AFTER_UNAVAILABLE,
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
        if !verify(params, method, &ha1) {
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
}
