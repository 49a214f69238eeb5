use std::time::Duration;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use super::*;
use crate::config::{ClientSecret, UserPolicy};

const NOW: i64 = 1_800_000_000;

fn provider() -> LoginProviderConfig {
    LoginProviderConfig {
        name: "corp".into(),
        display_name: "Corp".into(),
        issuer: "https://sso.example.com".into(),
        client_id: "gatehouse".into(),
        client_secret: ClientSecret::None,
        scopes: vec!["openid".into()],
        algorithms: vec![Algorithm::EdDSA],
        username_claim: "email".into(),
        roles_claim: Some("realm_access.roles".into()),
        tenant_claim: Some("org".into()),
        attributes: vec![
            ("email_verified".into(), "email_verified".into()),
            ("plan".into(), "billing.plan".into()),
            ("seats".into(), "billing.seats".into()),
        ],
        groups_claim: "groups".into(),
        required_groups: Vec::new(),
        allowed_domains: Vec::new(),
        users: UserPolicy::Provision,
        mfa_acr: "mfa".into(),
        leeway: Duration::from_secs(30),
        redirect_uri: None,
        post_logout_redirect_uri: None,
    }
}

struct Signer {
    pkcs8: Vec<u8>,
    keys: KeySet,
}

fn signer() -> Signer {
    let doc = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).expect("key");
    let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).expect("pair");
    let keys = KeySet::from_ed25519_public("k1", pair.public_key().as_ref()).expect("set");
    Signer {
        pkcs8: doc.as_ref().to_vec(),
        keys,
    }
}

impl Signer {
    fn sign(&self, claims: &Value) -> String {
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some("k1".into());
        jsonwebtoken::encode(&h, claims, &EncodingKey::from_ed_der(&self.pkcs8)).expect("sign")
    }
}

fn id_claims() -> Value {
    json!({
        "iss": "https://sso.example.com",
        "aud": "gatehouse",
        "sub": "248289761001",
        "exp": NOW + 300,
        "iat": NOW,
        "nonce": "n-0S6_WzA2Mj",
        "email": "Jane@Example.com",
        "email_verified": true,
        "realm_access": {"roles": ["admin", "dev"]},
        "org": "acme",
        "billing": {"plan": "pro", "seats": {"used": 3}},
        "groups": ["staff"],
        "acr": "mfa",
        "amr": ["pwd", "otp"],
        "auth_time": NOW - 5,
        "sid": "op-session-1",
    })
}

fn verify(s: &Signer, claims: &Value) -> Result<SignedIn, TokenError> {
    let p = provider();
    verify_id_token(
        &s.keys,
        &s.sign(claims),
        &IdTokenCheck {
            provider: &p,
            nonce: "n-0S6_WzA2Mj",
            now: NOW,
        },
    )
}

#[test]
fn pkce_s256_is_base64url_of_sha256() {
    // Computed independently (Python hashlib + base64.urlsafe_b64encode).
    assert_eq!(
        pkce_challenge("dBjftJeZ4CVP-mJ0tqHgrgPGvdGqKRCXi0u1IiHDOoo"),
        "-LtBoI1ZLmicZ1TDSYKqRsJxgpuEn6YXrVNhtLQgzJs"
    );
}

#[test]
fn a_good_id_token_maps_its_claims() {
    let s = signer();
    let got = verify(&s, &id_claims()).expect("valid");
    assert_eq!(got.subject, "248289761001");
    assert_eq!(got.username.as_deref(), Some("Jane@Example.com"));
    assert_eq!(got.roles, Some(vec!["admin".into(), "dev".into()]));
    assert_eq!(got.tenant.as_deref(), Some("acme"));
    assert_eq!(got.auth_time, Some(NOW - 5));
    assert_eq!(got.sid.as_deref(), Some("op-session-1"));
    assert_eq!(got.amr, ["pwd", "otp"]);
    // The attribute mapping: dotted paths; an object maps nothing.
    assert_eq!(
        got.attributes,
        crate::attributes::Attributes::from([
            (
                "email_verified".into(),
                crate::attributes::Value::Bool(true)
            ),
            ("plan".into(), crate::attributes::Value::Str("pro".into())),
        ])
    );
    assert!(is_multi_factor(&provider(), &got));
    assert_eq!(admit(&provider(), &got).as_deref(), Ok("jane@example.com"));
}

#[test]
fn each_check_of_core_3_1_3_7_refuses() {
    let s = signer();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("iss", json!("https://evil.example.com"), "issuer"),
        ("aud", json!("someone-else"), "audience"),
        ("aud", json!(["gatehouse", "other"]), "authorized party"),
        ("azp", json!("other"), "authorized party"),
        ("exp", json!(NOW - 31), "expired"),
        ("iat", json!(NOW + 31), "future"),
        ("nonce", json!("replayed-nonce"), "nonce"),
        ("sub", json!(""), "subject"),
    ];
    for (claim, value, want) in cases {
        let mut c = id_claims();
        c[claim] = value;
        let err = verify(&s, &c).expect_err(claim).to_string();
        assert!(err.contains(want), "{claim}: {err}");
    }
    for claim in ["nonce", "exp", "iat"] {
        let mut c = id_claims();
        c.as_object_mut().expect("object").remove(claim);
        assert!(verify(&s, &c).is_err(), "without {claim}");
    }
}

#[test]
fn another_key_or_algorithm_is_refused() {
    let (a, b) = (signer(), signer());
    let token = a.sign(&id_claims());
    let p = provider();
    let check = IdTokenCheck {
        provider: &p,
        nonce: "n-0S6_WzA2Mj",
        now: NOW,
    };
    assert!(matches!(
        verify_id_token(&b.keys, &token, &check),
        Err(TokenError::Invalid(_))
    ));
    let mut rs = provider();
    rs.algorithms = vec![Algorithm::RS256];
    let check = IdTokenCheck {
        provider: &rs,
        nonce: "n-0S6_WzA2Mj",
        now: NOW,
    };
    assert_eq!(
        verify_id_token(&a.keys, &token, &check),
        Err(TokenError::Invalid("algorithm is not allowed"))
    );
}

#[test]
fn admission_by_domain_group_and_verified_email() {
    let s = signer();
    let got = verify(&s, &id_claims()).expect("valid");
    let mut p = provider();
    p.allowed_domains = vec!["example.com".into()];
    assert!(admit(&p, &got).is_ok());
    p.allowed_domains = vec!["corp.example".into()];
    assert!(admit(&p, &got).expect_err("domain").contains("example.com"));
    p.allowed_domains.clear();
    p.required_groups = vec!["admins".into()];
    assert!(admit(&p, &got).expect_err("group").contains("group"));
    p.required_groups = vec!["staff".into()];
    assert!(admit(&p, &got).is_ok());
    let mut unverified = got.clone();
    unverified.email_verified = false;
    assert!(
        admit(&p, &unverified).is_err(),
        "an unverified email names nobody"
    );
    p.users = UserPolicy::Link;
    assert!(admit(&p, &unverified).is_err());
    p.users = UserPolicy::Existing;
    p.username_claim = "preferred_username".into();
    unverified.username = Some("jane".into());
    assert_eq!(admit(&p, &unverified).as_deref(), Ok("jane"));
}

#[test]
fn logout_tokens_per_backchannel_logout_2_6() {
    let s = signer();
    let p = provider();
    let good = json!({
        "iss": "https://sso.example.com",
        "aud": "gatehouse",
        "iat": NOW,
        "exp": NOW + 120,
        "jti": "bWJq",
        "sid": "op-session-1",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    });
    let t = verify_logout_token(&s.keys, &s.sign(&good), &p, NOW).expect("valid");
    assert_eq!(t.sid.as_deref(), Some("op-session-1"));
    assert_eq!(t.subject, None);
    // An ID token (it has a nonce and no event) is not a logout token.
    assert!(verify_logout_token(&s.keys, &s.sign(&id_claims()), &p, NOW).is_err());
    let mut with_nonce = good.clone();
    with_nonce["nonce"] = json!("x");
    assert!(verify_logout_token(&s.keys, &s.sign(&with_nonce), &p, NOW).is_err());
    let mut nobody = good.clone();
    nobody.as_object_mut().expect("object").remove("sid");
    assert!(verify_logout_token(&s.keys, &s.sign(&nobody), &p, NOW).is_err());
    let mut other_aud = good;
    other_aud["aud"] = json!("other");
    assert!(verify_logout_token(&s.keys, &s.sign(&other_aud), &p, NOW).is_err());
}

#[test]
fn claim_paths_are_the_issuers_paths() {
    let c = id_claims();
    let m = c.as_object().expect("object");
    assert_eq!(
        claim_at(m, "realm_access.roles"),
        Some(&json!(["admin", "dev"]))
    );
    assert_eq!(claim_at(m, "realm_access.missing"), None);
    let uri = json!({"https://example.com/roles": ["x"]});
    assert_eq!(
        claim_at(
            uri.as_object().expect("object"),
            "https://example.com/roles"
        ),
        Some(&json!(["x"]))
    );
}
