//! Bearer token verification on the hot path (design §5: no network round trip, a few µs).
//!
//! `cargo bench -p gatehouse-core --bench token`

use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::Ed25519KeyPair;
use divan::{Bencher, black_box};
use gatehouse_core::config::{IssuerConfig, IssuerKeys, TokensConfig};
use gatehouse_core::secret::SecretBytes;
use gatehouse_core::token::{
    AccessClaims, IssuerVerifier, KeySet, TokenVerifier, ed25519_public_jwk, sign_access_token,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const NOW: i64 = 1_800_000_000;
const SECRET: &[u8] = b"a benchmark HS256 secret, 32+ bytes long";

fn main() {
    divan::main();
}

fn tokens_config() -> TokensConfig {
    TokensConfig {
        issuer: "https://api.example".into(),
        audience: "api".into(),
        access_ttl: Duration::from_secs(900),
        refresh_ttl: Duration::from_secs(86_400),
        leeway: Duration::from_secs(30),
        ..TokensConfig::default()
    }
}

fn hs_issuer() -> IssuerConfig {
    IssuerConfig {
        name: "corp-sso".into(),
        issuer: "https://sso.example".into(),
        audience: vec!["api".into()],
        keys: IssuerKeys::Secret(SecretBytes::new(SECRET.to_vec())),
        algorithms: vec![Algorithm::HS256],
        roles_claim: "realm_access.roles".into(),
        scopes_claim: "scope".into(),
        tenant_claim: "org_id".into(),
        subject_claim: "sub".into(),
        attributes: Vec::new(),
        leeway: Duration::from_secs(30),
    }
}

/// A realistic external token: ~10 claims, nested roles, a few ignored members.
#[divan::bench]
fn verify_hs256(bencher: Bencher) {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let claims = json!({
        "iss": "https://sso.example", "sub": "f3a1c2d4-5b6e-4f70-8a9b-0c1d2e3f4a5b",
        "aud": ["api", "account"], "exp": NOW + 300, "iat": NOW - 10, "nbf": NOW - 10,
        "jti": "9c1f1c4e-2a3b-4c5d-8e9f-0a1b2c3d4e5f", "azp": "spa", "typ": "Bearer",
        "realm_access": {"roles": ["offline_access", "uma_authorization", "admin"]},
        "scope": "openid profile email", "org_id": "acme", "email_verified": true,
        "preferred_username": "ann",
    });
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(SECRET)).unwrap();
    let keys = KeySet::from_hmac_secret(&SecretBytes::new(SECRET.to_vec())).unwrap();
    let v = TokenVerifier::new(vec![IssuerVerifier::from_config(&hs_issuer(), keys)]).unwrap();
    assert!(v.verify(&token, NOW).is_ok());
    bencher.bench(|| v.verify(black_box(&token), black_box(NOW)));
}

/// Gatehouse's own access token.
#[divan::bench]
fn verify_eddsa_own(bencher: Bencher) {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let (public, _) = ed25519_public_jwk("ed1", pkcs8.as_ref()).unwrap();
    let claims = AccessClaims {
        iss: "https://api.example".into(),
        aud: "api".into(),
        sub: "ann".into(),
        roles: vec!["admin".into(), "ops".into()],
        scope: "orders:read orders:write".into(),
        tenant: Some("acme".into()),
        acr: "mfa".into(),
        auth_time: NOW - 60,
        amr: Vec::new(),
        jti: "01J9Z8Q4W5X6Y7Z8A9B0C1D2E3".into(),
        sid: None,
        iat: NOW - 60,
        exp: NOW + 840,
    };
    let token = sign_access_token(&claims, "ed1", pkcs8.as_ref()).unwrap();
    let keys = KeySet::from_ed25519_public("ed1", &public).unwrap();
    let v = TokenVerifier::new(vec![IssuerVerifier::own(&tokens_config(), keys)]).unwrap();
    assert!(v.verify(&token, NOW).is_ok());
    bencher.bench(|| v.verify(black_box(&token), black_box(NOW)));
}

/// The cheapest refusal: a token whose signature does not match (what an attacker pays for).
#[divan::bench]
fn reject_bad_signature_hs256(bencher: Bencher) {
    let claims = json!({"iss": "https://sso.example", "sub": "x", "aud": "api", "exp": NOW + 60});
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(b"not the secret, but long enough to pass"),
    )
    .unwrap();
    let keys = KeySet::from_hmac_secret(&SecretBytes::new(SECRET.to_vec())).unwrap();
    let v = TokenVerifier::new(vec![IssuerVerifier::from_config(&hs_issuer(), keys)]).unwrap();
    assert!(v.verify(&token, NOW).is_err());
    bencher.bench(|| v.verify(black_box(&token), black_box(NOW)));
}
