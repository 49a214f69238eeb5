//! Verification keys of one issuer, parsed once into what aws-lc-rs verifies with directly
//! (an `hmac::Key`, a `ParsedPublicKey`), so the hot path neither parses keys nor allocates.

use std::fmt;

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents};
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use serde::Deserialize;

use super::b64;
use crate::secret::SecretBytes;

/// Building a [`KeySet`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the JWKS document is not a JSON object with a `keys` array")]
    MalformedJwks,
    /// RFC 7518 §3.2: an HMAC key MUST be at least as long as the hash output.
    #[error("the HMAC secret is {len} bytes; HS256 needs at least 32 (RFC 7518 §3.2)")]
    HmacSecretTooShort { len: usize },
    #[error("the Ed25519 public key for `{kid}` is not 32 bytes")]
    InvalidEd25519Public { kid: String },
    #[error("the Ed25519 private key is not a valid PKCS#8 document")]
    InvalidEd25519Private,
    #[error("two issuers share the `iss` value `{issuer}`")]
    DuplicateIssuer { issuer: String },
}

/// One way to check a signature, bound to exactly one algorithm.
pub(crate) enum Verifier {
    // Boxed: the key holds its precomputed inner and outer hash states (over 1 KiB).
    Hmac(Box<hmac::Key>),
    Public(ParsedPublicKey),
}

impl Verifier {
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            // Constant-time comparison of the MAC (aws-lc `hmac::verify`).
            Self::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
            Self::Public(key) => key.verify_sig(message, signature).is_ok(),
        }
    }
}

struct KeyEntry {
    kid: Option<String>,
    /// One verifier per algorithm this key may be used with: the algorithms of its family, or
    /// only the JWK's `alg` when it names one (RFC 7517 §4.4).
    algs: Vec<(Algorithm, Verifier)>,
}

/// A JWK that was left out of a set, and why (for the edge to log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    pub kid: Option<String>,
    pub reason: &'static str,
}

/// The verification keys of one issuer. Immutable: the edge builds a new one after refetching
/// a JWKS and swaps it in with [`super::IssuerVerifier::set_keys`].
#[derive(Default)]
pub struct KeySet {
    entries: Vec<KeyEntry>,
    skipped: Vec<SkippedKey>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for e in &self.entries {
            let algs: Vec<_> = e.algs.iter().map(|(a, _)| a).collect();
            list.entry(&(e.kid.as_deref(), algs));
        }
        list.finish()
    }
}

/// What [`KeySet::find`] found for a token's (`kid`, `alg`).
pub(crate) enum Lookup<'a> {
    Found(&'a Verifier),
    /// The `kid` names no key here (or the set is empty): a JWKS refetch may help.
    UnknownKid,
    /// The key exists but is not of the token's algorithm (HS/RS confusion lands here).
    WrongFamily,
    /// No `kid` in the token and more than one key would fit.
    Ambiguous,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

const RSA_ALGS: [(Algorithm, &RsaParameters); 6] = [
    (Algorithm::RS256, &sig::RSA_PKCS1_2048_8192_SHA256),
    (Algorithm::RS384, &sig::RSA_PKCS1_2048_8192_SHA384),
    (Algorithm::RS512, &sig::RSA_PKCS1_2048_8192_SHA512),
    (Algorithm::PS256, &sig::RSA_PSS_2048_8192_SHA256),
    (Algorithm::PS384, &sig::RSA_PSS_2048_8192_SHA384),
    (Algorithm::PS512, &sig::RSA_PSS_2048_8192_SHA512),
];

impl KeySet {
    /// Parses a JWK Set (RFC 7517 §5). Keys Gatehouse cannot or must not verify with are left
    /// out and listed in [`Self::skipped`]: `use: enc`, `key_ops` without `verify`, unknown
    /// `kty`/`crv`/`alg`, an `alg` that does not fit the key, RSA under 2048 bits (RFC 7518
    /// §3.3), HMAC keys shorter than the hash (RFC 7518 §3.2), malformed members. A bad key
    /// never takes the good ones down with it; only a document that is not `{"keys": [...]}` fails.
    pub fn from_jwks_json(json: &[u8]) -> Result<Self, KeyError> {
        let raw: RawJwks = serde_json::from_slice(json).map_err(|_| KeyError::MalformedJwks)?;
        let mut set = Self::default();
        for value in raw.keys {
            let kid = value.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
            let parsed = serde_json::from_value::<Jwk>(value)
                .map_err(|_| "key is malformed")
                .and_then(|jwk| entry_from_jwk(&jwk));
            match parsed {
                Ok(entry) => set.entries.push(entry),
                Err(reason) => set.skipped.push(SkippedKey { kid, reason }),
            }
        }
        Ok(set)
    }

    /// A shared HMAC secret (`[[issuers]] secret`), without a `kid`: it verifies HS256, and
    /// HS384 / HS512 when it is long enough for them (RFC 7518 §3.2).
    pub fn from_hmac_secret(secret: &SecretBytes) -> Result<Self, KeyError> {
        let entry =
            hmac_entry(None, secret.expose(), None).map_err(|_| KeyError::HmacSecretTooShort {
                len: secret.expose().len(),
            })?;
        Ok(Self {
            entries: vec![entry],
            skipped: Vec::new(),
        })
    }

    /// One Ed25519 public key: the raw 32 bytes of RFC 8032 §5.1.5 (what a JWK's `x` holds,
    /// RFC 8037 §2), not SPKI DER.
    pub fn from_ed25519_public(kid: &str, public: &[u8]) -> Result<Self, KeyError> {
        Self::from_ed25519_public_keys([(kid, public)])
    }

    /// Several Ed25519 public keys (the current signing key and those still within their
    /// tokens' lifetime after a rotation), each `(kid, raw 32 bytes)`.
    pub fn from_ed25519_public_keys<'a>(
        keys: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Self, KeyError> {
        let mut set = Self::default();
        for (kid, public) in keys {
            let bad = || KeyError::InvalidEd25519Public {
                kid: kid.to_owned(),
            };
            if public.len() != sig::ED25519_PUBLIC_KEY_LEN {
                return Err(bad());
            }
            let key = ParsedPublicKey::new(&sig::ED25519, public).map_err(|_| bad())?;
            set.entries.push(KeyEntry {
                kid: Some(kid.to_owned()),
                algs: vec![(Algorithm::EdDSA, Verifier::Public(key))],
            });
        }
        Ok(set)
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `kid`s of the usable keys, in document order (`None` for a key without one).
    pub fn kids(&self) -> impl Iterator<Item = Option<&str>> {
        self.entries.iter().map(|e| e.kid.as_deref())
    }

    /// Keys of the JWKS that were left out, with the reason.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// Picks the key for a token. A `kid` is only ever compared for equality with the keys'
    /// `kid`s (RFC 7515 §4.1.4: it is a hint, never a path or a query). Without a `kid`, or in a
    /// set whose keys carry none (a shared secret), the one key that fits `alg` is used.
    pub(crate) fn find(&self, kid: Option<&str>, alg: Algorithm) -> Lookup<'_> {
        if self.entries.is_empty() {
            return Lookup::UnknownKid;
        }
        if let Some(kid) = kid {
            let mut named = self
                .entries
                .iter()
                .filter(|e| e.kid.as_deref() == Some(kid))
                .peekable();
            if named.peek().is_some() {
                return named
                    .find_map(|e| e.verifier(alg))
                    .map_or(Lookup::WrongFamily, Lookup::Found);
            }
            if self.entries.iter().any(|e| e.kid.is_some()) {
                return Lookup::UnknownKid;
            }
        }
        let mut fitting = self.entries.iter().filter_map(|e| e.verifier(alg));
        match (fitting.next(), fitting.next()) {
            (Some(v), None) => Lookup::Found(v),
            (None, _) => Lookup::WrongFamily,
            (Some(_), Some(_)) => Lookup::Ambiguous,
        }
    }
}

impl KeyEntry {
    fn verifier(&self, alg: Algorithm) -> Option<&Verifier> {
        self.algs.iter().find(|(a, _)| *a == alg).map(|(_, v)| v)
    }
}

fn entry_from_jwk(jwk: &Jwk) -> Result<KeyEntry, &'static str> {
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(PublicKeyUse::Encryption) => return Err("key is for encryption (`use: enc`)"),
        Some(_) => return Err("key `use` is not `sig`"),
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err("key `key_ops` does not include `verify`");
    }
    let pinned = match jwk.common.key_algorithm {
        None => None,
        Some(ka) => Some(Algorithm::try_from(ka).map_err(|_| "key `alg` is not supported")?),
    };
    let kid = jwk.common.key_id.clone();
    match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            let n = b64::decode(&p.n).map_err(|_| "RSA `n` is not base64url")?;
            let e = b64::decode(&p.e).map_err(|_| "RSA `e` is not base64url")?;
            // Some publishers keep a sign byte; the integer is the same without it.
            let n = strip_leading_zeros(&n);
            let e = strip_leading_zeros(&e);
            if n.len() < 256 {
                return Err("RSA key is shorter than 2048 bits (RFC 7518 §3.3)");
            }
            let components = RsaPublicKeyComponents { n, e };
            let mut algs = Vec::new();
            for (alg, params) in RSA_ALGS {
                if pinned.is_none_or(|p| p == alg) {
                    let key = components
                        .to_parsed_public_key(params)
                        .map_err(|_| "RSA key is invalid")?;
                    algs.push((alg, Verifier::Public(key)));
                }
            }
            if algs.is_empty() {
                return Err("key `alg` does not fit an RSA key");
            }
            Ok(KeyEntry { kid, algs })
        }
        AlgorithmParameters::EllipticCurve(p) => {
            let (alg, verification, len): (_, &'static sig::EcdsaVerificationAlgorithm, _) =
                match p.curve {
                    EllipticCurve::P256 => (Algorithm::ES256, &sig::ECDSA_P256_SHA256_FIXED, 32),
                    EllipticCurve::P384 => (Algorithm::ES384, &sig::ECDSA_P384_SHA384_FIXED, 48),
                    _ => return Err("EC curve is not supported"),
                };
            if pinned.is_some_and(|p| p != alg) {
                return Err("key `alg` does not fit its curve");
            }
            let x = b64::decode(&p.x).map_err(|_| "EC `x` is not base64url")?;
            let y = b64::decode(&p.y).map_err(|_| "EC `y` is not base64url")?;
            if x.len() != len || y.len() != len {
                return Err("EC coordinates have the wrong length");
            }
            // SEC 1 §2.3.3 uncompressed point: 0x04 || x || y.
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            let key = ParsedPublicKey::new(verification, &point)
                .map_err(|_| "EC point is not on the curve")?;
            Ok(KeyEntry {
                kid,
                algs: vec![(alg, Verifier::Public(key))],
            })
        }
        AlgorithmParameters::OctetKeyPair(p) => {
            if p.curve != EllipticCurve::Ed25519 {
                return Err("OKP curve is not supported");
            }
            if pinned.is_some_and(|p| p != Algorithm::EdDSA) {
                return Err("key `alg` does not fit an Ed25519 key");
            }
            let x = b64::decode(&p.x).map_err(|_| "OKP `x` is not base64url")?;
            if x.len() != sig::ED25519_PUBLIC_KEY_LEN {
                return Err("Ed25519 `x` is not 32 bytes");
            }
            let key =
                ParsedPublicKey::new(&sig::ED25519, &x).map_err(|_| "Ed25519 key is invalid")?;
            Ok(KeyEntry {
                kid,
                algs: vec![(Algorithm::EdDSA, Verifier::Public(key))],
            })
        }
        AlgorithmParameters::OctetKey(p) => {
            let k = zeroize::Zeroizing::new(
                b64::decode(&p.value).map_err(|_| "oct `k` is not base64url")?,
            );
            hmac_entry(kid, &k, pinned)
        }
        _ => Err("key type is not supported"),
    }
}

/// HS256/384/512 verifiers for a secret, each only when the secret is at least as long as the
/// hash (RFC 7518 §3.2).
fn hmac_entry(
    kid: Option<String>,
    secret: &[u8],
    pinned: Option<Algorithm>,
) -> Result<KeyEntry, &'static str> {
    let all = [
        (Algorithm::HS256, hmac::HMAC_SHA256, 32),
        (Algorithm::HS384, hmac::HMAC_SHA384, 48),
        (Algorithm::HS512, hmac::HMAC_SHA512, 64),
    ];
    if pinned.is_some_and(|p| !all.iter().any(|(a, _, _)| *a == p)) {
        return Err("key `alg` does not fit an HMAC key");
    }
    let algs: Vec<_> = all
        .into_iter()
        .filter(|(alg, _, min)| secret.len() >= *min && pinned.is_none_or(|p| p == *alg))
        .map(|(alg, h, _)| (alg, Verifier::Hmac(Box::new(hmac::Key::new(h, secret)))))
        .collect();
    if algs.is_empty() {
        return Err("HMAC key is shorter than its hash (RFC 7518 §3.2)");
    }
    Ok(KeyEntry { kid, algs })
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(start..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(n: usize) -> SecretBytes {
        SecretBytes::new(vec![7; n])
    }

    fn algs_of(set: &KeySet) -> Vec<Algorithm> {
        set.entries
            .iter()
            .flat_map(|e| e.algs.iter().map(|(a, _)| *a))
            .collect()
    }

    #[test]
    fn hmac_secret_length_decides_the_algorithms() {
        assert_eq!(
            KeySet::from_hmac_secret(&secret(31)).err(),
            Some(KeyError::HmacSecretTooShort { len: 31 })
        );
        assert_eq!(
            algs_of(&KeySet::from_hmac_secret(&secret(32)).unwrap()),
            [Algorithm::HS256]
        );
        assert_eq!(
            algs_of(&KeySet::from_hmac_secret(&secret(48)).unwrap()).len(),
            2
        );
        assert_eq!(
            algs_of(&KeySet::from_hmac_secret(&secret(64)).unwrap()).len(),
            3
        );
    }

    #[test]
    fn jwks_skips_what_it_cannot_use_and_keeps_the_rest() {
        let jwks = br#"{"keys":[
            {"kty":"oct","kid":"enc","use":"enc","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"},
            {"kty":"oct","kid":"short","k":"AAAA"},
            {"kty":"EC","kid":"p521","crv":"P-521","x":"AA","y":"AA"},
            {"kty":"OKP","kid":"x25519","crv":"X25519","x":"AA"},
            {"kty":"dragon","kid":"odd"},
            {"kid":5},
            {"kty":"oct","kid":"pinned","alg":"HS384","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"},
            {"kty":"oct","kid":"mismatch","alg":"RS256","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}
        ]}"#;
        let set = KeySet::from_jwks_json(jwks).unwrap();
        assert_eq!(set.kids().collect::<Vec<_>>(), [Some("pinned")]);
        assert_eq!(algs_of(&set), [Algorithm::HS384]);
        let skipped: Vec<_> = set.skipped().iter().map(|s| s.kid.as_deref()).collect();
        assert_eq!(
            skipped,
            [
                Some("enc"),
                Some("short"),
                Some("p521"),
                Some("x25519"),
                Some("odd"),
                None,
                Some("mismatch")
            ]
        );
    }

    #[test]
    fn jwks_document_shape_is_checked() {
        for bad in [&b"[]"[..], b"{}", b"{\"keys\":{}}", b"not json"] {
            assert_eq!(
                KeySet::from_jwks_json(bad).err(),
                Some(KeyError::MalformedJwks)
            );
        }
        assert!(
            KeySet::from_jwks_json(br#"{"keys":[]}"#)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn lookup_by_kid_and_without() {
        let set = KeySet::from_jwks_json(
            br#"{"keys":[
            {"kty":"oct","kid":"a","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"},
            {"kty":"oct","kid":"b","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}]}"#,
        )
        .unwrap();
        assert!(matches!(
            set.find(Some("a"), Algorithm::HS256),
            Lookup::Found(_)
        ));
        assert!(matches!(
            set.find(Some("a"), Algorithm::ES256),
            Lookup::WrongFamily
        ));
        assert!(matches!(
            set.find(Some("c"), Algorithm::HS256),
            Lookup::UnknownKid
        ));
        assert!(matches!(
            set.find(Some("../../etc/passwd"), Algorithm::HS256),
            Lookup::UnknownKid
        ));
        assert!(matches!(
            set.find(None, Algorithm::HS256),
            Lookup::Ambiguous
        ));
        assert!(matches!(
            KeySet::default().find(None, Algorithm::HS256),
            Lookup::UnknownKid
        ));

        let shared = KeySet::from_hmac_secret(&secret(32)).unwrap();
        assert!(matches!(
            shared.find(Some("any"), Algorithm::HS256),
            Lookup::Found(_)
        ));
        assert!(matches!(
            shared.find(None, Algorithm::HS256),
            Lookup::Found(_)
        ));
        assert!(matches!(
            shared.find(None, Algorithm::HS512),
            Lookup::WrongFamily
        ));
    }

    #[test]
    fn ed25519_public_must_be_32_bytes() {
        use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
        assert_eq!(
            KeySet::from_ed25519_public("k", &[1; 31]).err(),
            Some(KeyError::InvalidEd25519Public { kid: "k".into() })
        );
        let pair = Ed25519KeyPair::generate().unwrap();
        let set = KeySet::from_ed25519_public("k", pair.public_key().as_ref()).unwrap();
        assert_eq!(algs_of(&set), [Algorithm::EdDSA]);
    }

    #[test]
    fn debug_shows_no_key_material() {
        let set = KeySet::from_hmac_secret(&SecretBytes::new(
            b"0123456789abcdef0123456789abcdef".to_vec(),
        ))
        .unwrap();
        let dbg = format!("{set:?}");
        assert!(!dbg.contains("0123"), "{dbg}");
        assert!(dbg.contains("HS256"), "{dbg}");
    }
}
