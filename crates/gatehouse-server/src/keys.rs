//! Our own signing keys: Ed25519, generated into the store on first start, published at
//! `/.well-known/jwks.json`. The newest key signs; every key stays verifiable.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_store::{SigningKey, Store, StoreError};
use sha2::{Digest as _, Sha256};
use std::time::Duration;

/// The `algorithm` of our signing keys' store rows (JWS `alg`, RFC 8037 §3.1).
const ALGORITHM: &str = "EdDSA";

/// A key we can sign with. The private half never leaves this struct's `Debug`.
pub struct OwnKey {
    pub kid: String,
    pub public: Vec<u8>,
    private_pkcs8: Vec<u8>,
}

impl std::fmt::Debug for OwnKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl OwnKey {
    pub fn private_pkcs8(&self) -> &[u8] {
        &self.private_pkcs8
    }
}

#[derive(Debug, Default)]
pub struct OwnKeys {
    /// Oldest first; the last one signs.
    pub keys: Vec<OwnKey>,
}

/// RFC 7638 thumbprint of an Ed25519 public key (RFC 8037 §2 member order: crv, kty, x).
pub fn thumbprint(public: &[u8]) -> String {
    let json = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(json.as_bytes()))
}

/// Generates a new Ed25519 key pair.
pub fn generate(now: i64) -> Result<SigningKey, String> {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
    let doc = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
        .map_err(|_| "could not generate an Ed25519 key".to_owned())?;
    let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref())
        .map_err(|_| "could not read the generated Ed25519 key".to_owned())?;
    let public = pair.public_key().as_ref().to_vec();
    Ok(SigningKey {
        kid: thumbprint(&public),
        algorithm: ALGORITHM.to_owned(),
        private_pkcs8: doc.as_ref().to_vec(),
        public,
        created_at: now,
        retired_at: None,
    })
}

impl OwnKeys {
    /// Loads our keys from the store, generating the first one if there is none.
    pub async fn load_or_create(store: &dyn Store, now: i64) -> Result<Self, StoreError> {
        let mut keys = store.list_signing_keys().await?;
        // The master secret lives in the same table: only an EdDSA row is a signing key.
        if !keys
            .iter()
            .any(|k| k.algorithm == ALGORITHM && k.retired_at.is_none())
        {
            // Stored only if no node got there first (one transaction under a lock): nodes
            // starting together on an empty store agree on one key and all sign with it.
            let key = generate(now).map_err(StoreError::Unavailable)?;
            match store.add_first_signing_key(key).await {
                Ok(_) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
            keys = store.list_signing_keys().await?;
        }
        // Keys that `keys rotate` set to retire go first, oldest first, so the signing key
        // (the last) is the one rotated in, even when it was created in the same second as
        // the key it replaces (the store orders ties by `kid`, which is random).
        keys.sort_by_key(|k| (k.retired_at.is_none(), k.created_at));
        Ok(Self {
            keys: keys
                .into_iter()
                // Retired keys (past the end of their grace period) no longer verify.
                .filter(|k| k.algorithm == ALGORITHM && k.retired_at.is_none_or(|r| r > now))
                .map(|k| OwnKey {
                    kid: k.kid,
                    public: k.public,
                    private_pkcs8: k.private_pkcs8,
                })
                .collect(),
        })
    }

    /// The key that signs new tokens.
    pub fn current(&self) -> Option<&OwnKey> {
        self.keys.last()
    }

    /// The JWK Set document (RFC 7517 §5, RFC 8037 §2).
    pub fn jwks_json(&self) -> String {
        let keys: Vec<serde_json::Value> = self
            .keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(&k.public),
                    "kid": k.kid,
                    "alg": "EdDSA",
                    "use": "sig",
                })
            })
            .collect();
        serde_json::json!({ "keys": keys }).to_string()
    }
}

/// A forced re-read of our signing keys happens at most this often (a flood of tokens
/// with random `kid`s must not hammer the store).
pub const RELOAD_FLOOR: Duration = Duration::from_secs(1);

/// The cluster-wide master secret (32 random bytes, kept in the store beside the signing
/// keys so every node shares it) and the keys derived from it, one per purpose.
pub struct Secrets {
    master: [u8; 32],
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

/// The store row that holds the master secret (`algorithm` marks it as not a signing key).
const MASTER_KID: &str = "gatehouse-master-1";
const MASTER_ALG: &str = "master-secret";

impl Secrets {
    pub async fn load_or_create(store: &dyn Store, now: i64) -> Result<Self, StoreError> {
        let find = |keys: Vec<SigningKey>| {
            keys.into_iter()
                .find(|k| k.algorithm == MASTER_ALG && k.kid == MASTER_KID)
                .and_then(|k| <[u8; 32]>::try_from(k.private_pkcs8.as_slice()).ok())
        };
        if let Some(master) = find(store.list_signing_keys().await?) {
            return Ok(Self { master });
        }
        let fresh = SigningKey {
            kid: MASTER_KID.to_owned(),
            algorithm: MASTER_ALG.to_owned(),
            private_pkcs8: crate::random::random_bytes::<32>().to_vec(),
            public: Vec::new(),
            created_at: now,
            retired_at: None,
        };
        match store.add_signing_key(fresh).await {
            Ok(()) | Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
        // Another node may have won the race: read back whichever secret the store kept.
        find(store.list_signing_keys().await?)
            .map(|master| Self { master })
            .ok_or_else(|| StoreError::Unavailable("the master secret could not be stored".into()))
    }

    /// A key for one purpose: HMAC-SHA256(master, purpose). Purposes never share a key.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.master);
        let tag = aws_lc_rs::hmac::sign(&key, purpose.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    #[cfg(test)]
    pub fn from_bytes(master: [u8; 32]) -> Self {
        Self { master }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_store_holding_only_the_master_secret_gets_a_signing_key() {
        // `user mfa enroll` creates the master secret before any gateway has started.
        let store = gatehouse_store::open_store("sqlite::memory:")
            .await
            .expect("in-memory store");
        Secrets::load_or_create(store.as_ref(), 1_700_000_000)
            .await
            .expect("master secret");
        let keys = OwnKeys::load_or_create(store.as_ref(), 1_700_000_000)
            .await
            .expect("load");
        assert!(keys.current().is_some(), "a signing key was created");
    }

    #[tokio::test]
    async fn the_rotated_in_key_signs_even_within_the_same_second() {
        let store = gatehouse_store::open_store("sqlite::memory:")
            .await
            .expect("in-memory store");
        let now = 1_700_000_000;
        // Many rounds: each time, the old and the new key share `created_at` and their
        // random kids decide the store's order.
        for _ in 0..16 {
            let old: Vec<String> = store
                .list_signing_keys()
                .await
                .expect("list")
                .into_iter()
                .filter(|k| k.algorithm == "EdDSA" && k.retired_at.is_none())
                .map(|k| k.kid)
                .collect();
            let key = generate(now).expect("generate");
            let kid = key.kid.clone();
            store.add_signing_key(key).await.expect("add");
            for k in &old {
                store
                    .retire_signing_key(k, now + 900)
                    .await
                    .expect("retire");
            }
            let keys = OwnKeys::load_or_create(store.as_ref(), now)
                .await
                .expect("load");
            assert_eq!(keys.current().map(|k| k.kid.as_str()), Some(kid.as_str()));
            assert!(keys.keys.iter().any(|k| old.contains(&k.kid)) || old.is_empty());
        }
    }
}
