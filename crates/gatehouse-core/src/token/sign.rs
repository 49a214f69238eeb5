//! Gatehouse's own access tokens: EdDSA (Ed25519, RFC 8037) JWTs with a `kid`, and the JWK Set
//! that publishes their public keys at `/.well-known/jwks.json` (design §2 "Tokens and
//! sessions"). Key generation and `jti` randomness are the caller's: this module only signs.

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};

use super::keys::KeyError;

/// The `typ` of Gatehouse access tokens (RFC 9068 §2.1). The verifier of our own issuer
/// requires it, so no other JWT Gatehouse might sign with the same key (RFC 8725 §3.11) can be
/// replayed as an access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The claims of a Gatehouse access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub roles: Vec<String>,
    /// Space-separated scopes (RFC 9068 §2.2.3, RFC 8693 §4.2); omitted when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Authentication context: `pwd`, `mfa` (RFC 9470 step-up reads it).
    pub acr: String,
    /// When the user authenticated, unix seconds (OIDC Core §2, RFC 9470 `max_age`).
    pub auth_time: i64,
    /// Authentication methods (RFC 8176 values; RFC 9068 §2.2.3.1 and OIDC Core §2 name the
    /// claim): `pwd`, `otp`, or what a login provider said. Omitted when none are known.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    pub jti: String,
    /// The session (refresh family) the token belongs to; logout revokes it (row 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub iat: i64,
    pub exp: i64,
}

/// Signing an access token failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the Ed25519 private key is not a valid PKCS#8 document")]
    InvalidKey,
    #[error("the access token could not be signed")]
    Failed,
}

/// Signs `claims` as a compact JWS with header `{"typ":"at+jwt","alg":"EdDSA","kid":kid}`.
/// `ed25519_pkcs8_der` is a PKCS#8 v1 or v2 Ed25519 private key (RFC 8410 §7), as
/// `Ed25519KeyPair::generate_pkcs8` or `openssl genpkey -algorithm ed25519` produce it.
pub fn sign_access_token(
    claims: &AccessClaims,
    kid: &str,
    ed25519_pkcs8_der: &[u8],
) -> Result<String, SignError> {
    // jsonwebtoken panics on sign when it cannot tell its crypto backend (crates.md); an `Err`
    // here only means a provider is already installed.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    // Checked first so a bad key is reported as such rather than as a signing failure.
    Ed25519KeyPair::from_pkcs8(ed25519_pkcs8_der).map_err(|_| SignError::InvalidKey)?;
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
    header.kid = Some(kid.to_owned());
    let key = EncodingKey::from_ed_der(ed25519_pkcs8_der);
    jsonwebtoken::encode(&header, claims, &key).map_err(|_| SignError::Failed)
}

/// The raw 32-byte public key of a PKCS#8 Ed25519 private key, and its public JWK.
pub fn ed25519_public_jwk(
    kid: &str,
    ed25519_pkcs8_der: &[u8],
) -> Result<([u8; 32], Value), KeyError> {
    let pair = Ed25519KeyPair::from_pkcs8(ed25519_pkcs8_der)
        .map_err(|_| KeyError::InvalidEd25519Private)?;
    let public: [u8; 32] = pair
        .public_key()
        .as_ref()
        .try_into()
        .map_err(|_| KeyError::InvalidEd25519Private)?;
    Ok((public, ed25519_jwk(kid, &public)))
}

/// The public JWK of an Ed25519 key (RFC 8037 §2): `kty: OKP`, `crv: Ed25519`, `x` the raw key
/// in base64url, pinned to `alg: EdDSA` and `use: sig`.
pub fn ed25519_jwk(kid: &str, public: &[u8; 32]) -> Value {
    json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(public),
        "kid": kid,
        "use": "sig",
        "alg": "EdDSA",
    })
}

/// The JWK Set document for `/.well-known/jwks.json` (RFC 7517 §5): one JWK per `(kid, public
/// key)`, in the order given (current key first, then those still verifying older tokens).
pub fn jwks_json(keys: &[(&str, [u8; 32])]) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .map(|(kid, public)| ed25519_jwk(kid, public))
        .collect();
    json!({ "keys": keys })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::KeySet;

    #[test]
    fn jwk_round_trips_through_keyset() {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
        let (public, jwk) = ed25519_public_jwk("k1", pkcs8.as_ref()).unwrap();
        assert_eq!(jwk["kty"], "OKP");
        assert_eq!(jwk["x"], URL_SAFE_NO_PAD.encode(public));
        let doc = serde_json::to_vec(&jwks_json(&[("k1", public), ("k0", [0x11; 32])])).unwrap();
        let set = KeySet::from_jwks_json(&doc).unwrap();
        assert_eq!(set.kids().next(), Some(Some("k1")));
    }

    #[test]
    fn bad_private_key_is_reported() {
        assert_eq!(
            ed25519_public_jwk("k", b"nope").err(),
            Some(KeyError::InvalidEd25519Private)
        );
        let claims = AccessClaims {
            iss: "gatehouse".into(),
            aud: "api".into(),
            sub: "ann".into(),
            roles: vec![],
            scope: String::new(),
            tenant: None,
            acr: "pwd".into(),
            auth_time: 1,
            amr: Vec::new(),
            jti: "j".into(),
            sid: None,
            iat: 1,
            exp: 2,
        };
        assert_eq!(
            sign_access_token(&claims, "k", b"nope"),
            Err(SignError::InvalidKey)
        );
    }
}
