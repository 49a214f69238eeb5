//! HTTP Digest at the edge (RFC 7616, rows 5, 11, 12): fresh stateless nonces in every
//! challenge and the `nc` counts of replay protection. The verification against the user's
//! stored HA1 (with the `uri` checked against the request target) is the gateway's
//! (`Gateway::verify_digest`): it reads the store and the cluster too.
//!
//! Nonces are `timestamp ‖ random ‖ HMAC` under a key derived from the cluster master secret,
//! so every node accepts every node's nonces. A nonce lives [`NONCE_TTL`] seconds; an expired
//! one with an otherwise right response is answered `stale=true` (row 12) so the client
//! retries without asking the user. The highest `nc` seen per nonce is kept in memory: a
//! replayed or reordered `nc` is refused.

use std::collections::HashMap;
use std::sync::Mutex;

use gatehouse_core::digest::{Algorithm, DigestChallenge, make_nonce, make_opaque};

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
    pub fn advance(&self, nonce: &str, nc: u32, issued_at: i64, now: i64) -> bool {
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
