//! The token verifier every JWS target checks against: Gatehouse's own issuer (EdDSA,
//! `at+jwt`) and one external HS256 issuer whose secret the harness knows, so claims behind a
//! valid signature are reached too.

use std::time::Duration;

use gatehouse_core::config::{IssuerConfig, IssuerKeys, TokensConfig};
use gatehouse_core::secret::SecretBytes;
use gatehouse_core::token::{IssuerVerifier, KeySet, TokenVerifier};
use jsonwebtoken::Algorithm;

pub const NOW: i64 = 1_800_000_000;
pub const LEEWAY: i64 = 30;
pub const HS_ISS: &str = "https://sso.example.com";
pub const HS_SECRET: &[u8] = b"a fuzzing HS256 secret, 32+ bytes long";
/// RFC 8037 §A.2's Ed25519 public key.
const OWN_PUBLIC: [u8; 32] = [
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
    0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
];

pub fn verifier() -> TokenVerifier {
    let tokens = TokensConfig {
        issuer: "https://api.example.com".into(),
        audience: "api".into(),
        access_ttl: Duration::from_secs(900),
        refresh_ttl: Duration::from_secs(86_400),
        leeway: Duration::from_secs(LEEWAY as u64),
        key_sync: Duration::from_secs(2),
    };
    let own = IssuerVerifier::own(
        &tokens,
        KeySet::from_ed25519_public("ed1", &OWN_PUBLIC).expect("ed25519 key set"),
    );
    let secret = SecretBytes::new(HS_SECRET.to_vec());
    let hs = IssuerVerifier::from_config(
        &IssuerConfig {
            name: "hs".into(),
            issuer: HS_ISS.into(),
            audience: vec!["api".into(), "api-2".into()],
            keys: IssuerKeys::Secret(secret.clone()),
            algorithms: vec![Algorithm::HS256],
            roles_claim: "realm_access.roles".into(),
            scopes_claim: "scope".into(),
            tenant_claim: "org_id".into(),
            subject_claim: "sub".into(),
            attributes: vec![("plan".into(), "org.plan".into())],
            leeway: Duration::from_secs(LEEWAY as u64),
        },
        KeySet::from_hmac_secret(&secret).expect("hmac key set"),
    );
    TokenVerifier::new(vec![own, hs]).expect("verifier")
}
