//! Bearer token verification: RFC 7515 vectors, the attack corpus and claim mapping.
//! Every attack test asserts the exact `VerifyError`.

use std::sync::OnceLock;
use std::time::Duration;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RsaKeyPair, RsaPublicKeyComponents,
};
use aws_lc_rs::{hmac, rsa::KeySize};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use gatehouse_core::config::{IssuerConfig, IssuerKeys, Scheme, TokensConfig};
use gatehouse_core::deny::Deny;
use gatehouse_core::secret::SecretBytes;
use gatehouse_core::token::{
    AccessClaims, IssuerVerifier, JwsError, KeyError, KeySet, TokenVerifier, VerifyError,
    ed25519_public_jwk, jwks_json, msg, sign_access_token,
};
use jsonwebtoken::Algorithm;
use proptest::prelude::*;
use serde_json::{Value, json};

const NOW: i64 = 1_800_000_000;
const HS_SECRET: &[u8] = b"an HS256 secret of at least 32 bytes!";
const HS_ISS: &str = "https://hs.example";
const RS_ISS: &str = "https://sso.example";
const ES_ISS: &str = "https://es.example";
const OWN_ISS: &str = "https://api.example";

// ---------------------------------------------------------------------------------------------
// Keys and signing helpers

struct Keys {
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
    ed_pkcs8: Vec<u8>,
    attacker_ec: EcdsaKeyPair,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rng = SystemRandom::new();
        let ec = |_| {
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).unwrap()
        };
        Keys {
            rsa: RsaKeyPair::generate(KeySize::Rsa2048).unwrap(),
            ec: ec(0),
            ed_pkcs8: Ed25519KeyPair::generate_pkcs8(&rng)
                .unwrap()
                .as_ref()
                .to_vec(),
            attacker_ec: ec(1),
        }
    })
}

enum Signer<'a> {
    Hmac(&'a [u8]),
    Rsa(&'a RsaKeyPair),
    Ec(&'a EcdsaKeyPair),
    Ed(&'a [u8]),
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS over exactly these header and payload bytes.
fn sign_raw(header: &str, payload: &str, signer: Signer<'_>) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = match signer {
        Signer::Hmac(secret) => {
            hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes())
                .as_ref()
                .to_vec()
        }
        Signer::Rsa(pair) => {
            let mut sig = vec![0; pair.public_modulus_len()];
            pair.sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
            sig
        }
        Signer::Ec(pair) => pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec(),
        Signer::Ed(pkcs8) => Ed25519KeyPair::from_pkcs8(pkcs8)
            .unwrap()
            .sign(input.as_bytes())
            .as_ref()
            .to_vec(),
    };
    format!("{input}.{}", b64(sig))
}

fn sign(header: &Value, payload: &Value, signer: Signer<'_>) -> String {
    sign_raw(&header.to_string(), &payload.to_string(), signer)
}

fn rsa_jwk(kid: &str) -> Value {
    let c = RsaPublicKeyComponents::<Vec<u8>>::from(keys().rsa.public_key());
    json!({"kty": "RSA", "kid": kid, "use": "sig", "n": b64(c.n), "e": b64(c.e)})
}

fn ec_jwk(pair: &EcdsaKeyPair, kid: &str) -> Value {
    let point = pair.public_key().as_ref();
    json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(&point[1..33]), "y": b64(&point[33..65])})
}

fn jwks(keys: &[Value]) -> KeySet {
    KeySet::from_jwks_json(json!({ "keys": keys }).to_string().as_bytes()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Issuers

fn issuer_config(name: &str, iss: &str, algorithms: Vec<Algorithm>) -> IssuerConfig {
    IssuerConfig {
        name: name.into(),
        issuer: iss.into(),
        audience: vec!["api".into(), "api-2".into()],
        keys: IssuerKeys::JwksUrl(format!("{iss}/jwks")),
        algorithms,
        roles_claim: "roles".into(),
        scopes_claim: "scope".into(),
        tenant_claim: "tenant".into(),
        subject_claim: "sub".into(),
        attributes: Vec::new(),
        leeway: Duration::from_secs(30),
    }
}

fn tokens_config() -> TokensConfig {
    TokensConfig {
        issuer: OWN_ISS.into(),
        audience: "api".into(),
        access_ttl: Duration::from_secs(900),
        refresh_ttl: Duration::from_secs(86_400),
        leeway: Duration::from_secs(30),
        ..TokensConfig::default()
    }
}

const OWN: usize = 0;
const HS: usize = 1;
const RS: usize = 2;
const ES: usize = 3;

fn own_public() -> [u8; 32] {
    ed25519_public_jwk("ed1", &keys().ed_pkcs8).unwrap().0
}

fn verifier() -> TokenVerifier {
    let own = IssuerVerifier::own(
        &tokens_config(),
        KeySet::from_ed25519_public("ed1", &own_public()).unwrap(),
    );
    let hs = IssuerVerifier::from_config(
        &issuer_config("hs", HS_ISS, vec![Algorithm::HS256]),
        KeySet::from_hmac_secret(&SecretBytes::new(HS_SECRET.to_vec())).unwrap(),
    );
    let mut rs_config = issuer_config("corp-sso", RS_ISS, vec![Algorithm::RS256]);
    rs_config.roles_claim = "realm_access.roles".into();
    rs_config.tenant_claim = "org_id".into();
    let rs = IssuerVerifier::from_config(&rs_config, jwks(&[rsa_jwk("rsa1")]));
    let es = IssuerVerifier::from_config(
        &issuer_config("es", ES_ISS, vec![Algorithm::ES256]),
        jwks(&[ec_jwk(&keys().ec, "ec1")]),
    );
    TokenVerifier::new(vec![own, hs, rs, es]).unwrap()
}

fn claims(iss: &str) -> Value {
    json!({"iss": iss, "sub": "ann", "aud": "api", "iat": NOW - 5, "exp": NOW + 600, "jti": "t-1"})
}

fn hs_token(payload: &Value) -> String {
    sign(
        &json!({"alg": "HS256", "typ": "JWT"}),
        payload,
        Signer::Hmac(HS_SECRET),
    )
}

fn rs_token(payload: &Value) -> String {
    sign(
        &json!({"alg": "RS256", "kid": "rsa1"}),
        payload,
        Signer::Rsa(&keys().rsa),
    )
}

fn invalid(detail: &'static str) -> Result<gatehouse_core::Principal, VerifyError> {
    Err(VerifyError::Invalid { detail })
}

// ---------------------------------------------------------------------------------------------
// RFC 7515 Appendix A

const RFC_PAYLOAD: &[u8] = include_bytes!("../testdata/rfc7515/payload.bin");

fn rfc_vector(jws: &str, jwks_json: &str, alg: Algorithm) {
    let set = KeySet::from_jwks_json(jwks_json.as_bytes()).unwrap();
    assert_eq!(set.verify_jws(jws, &[alg]).unwrap(), RFC_PAYLOAD);
    // The same signature through jsonwebtoken's own primitive.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let jwk: jsonwebtoken::jwk::JwkSet = serde_json::from_str(jwks_json).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk.keys[0]).unwrap();
    let (input, sig) = jws.rsplit_once('.').unwrap();
    assert!(jsonwebtoken::crypto::verify(sig, input.as_bytes(), &key, alg).unwrap());
    // A flipped signature byte fails, and another algorithm is refused.
    let mut bad = sig.as_bytes().to_vec();
    bad[10] = if bad[10] == b'A' { b'B' } else { b'A' };
    let bad = format!("{input}.{}", String::from_utf8(bad).unwrap());
    let detail = msg::BAD_SIGNATURE;
    assert_eq!(
        set.verify_jws(&bad, &[alg]),
        Err(JwsError::Invalid { detail })
    );
    let detail = msg::ALG_NOT_ALLOWED;
    assert_eq!(
        set.verify_jws(jws, &[Algorithm::PS512]),
        Err(JwsError::Invalid { detail })
    );
}

#[test]
fn rfc7515_a1_hs256() {
    rfc_vector(
        include_str!("../testdata/rfc7515/a1.jws"),
        include_str!("../testdata/rfc7515/a1.jwks.json"),
        Algorithm::HS256,
    );
}

#[test]
fn rfc7515_a2_rs256() {
    rfc_vector(
        include_str!("../testdata/rfc7515/a2.jws"),
        include_str!("../testdata/rfc7515/a2.jwks.json"),
        Algorithm::RS256,
    );
}

#[test]
fn rfc7515_a3_es256() {
    rfc_vector(
        include_str!("../testdata/rfc7515/a3.jws"),
        include_str!("../testdata/rfc7515/a3.jwks.json"),
        Algorithm::ES256,
    );
}

#[test]
fn rfc7515_a1_through_the_full_verifier_checks_claims_after_the_signature() {
    let mut config = issuer_config("joe", "joe", vec![Algorithm::HS256]);
    config.audience = vec!["api".into()];
    let set = KeySet::from_jwks_json(include_bytes!("../testdata/rfc7515/a1.jwks.json")).unwrap();
    let v = TokenVerifier::new(vec![IssuerVerifier::from_config(&config, set)]).unwrap();
    let jws = include_str!("../testdata/rfc7515/a1.jws");
    // The signature holds (CRLF header and all); the RFC's claims carry no `aud`.
    assert_eq!(v.verify(jws, 1_300_819_000), invalid(msg::AUDIENCE));
}

// ---------------------------------------------------------------------------------------------
// Round trips and claim mapping

#[test]
fn own_eddsa_token_round_trip() {
    let access = AccessClaims {
        iss: OWN_ISS.into(),
        aud: "api".into(),
        sub: "ann".into(),
        roles: vec!["admin".into(), "ops".into()],
        scope: "read write".into(),
        tenant: Some("acme".into()),
        acr: "mfa".into(),
        auth_time: NOW - 60,
        amr: Vec::new(),
        jti: "jti-42".into(),
        sid: Some("s-1".into()),
        iat: NOW,
        exp: NOW + 900,
    };
    let token = sign_access_token(&access, "ed1", &keys().ed_pkcs8).unwrap();
    let p = verifier().verify(&token, NOW + 1).unwrap();
    assert_eq!(p.subject, "ann");
    assert_eq!(p.roles, ["admin", "ops"]);
    assert_eq!(p.scopes, ["read", "write"]);
    assert_eq!(p.tenant.as_deref(), Some("acme"));
    assert_eq!(p.acr.as_deref(), Some("mfa"));
    assert_eq!(p.auth_time, Some(NOW - 60));
    assert_eq!(p.token_id.as_deref(), Some("jti-42"));
    assert_eq!(p.session_id.as_deref(), Some("s-1"));
    assert_eq!(p.expires_at, Some(NOW + 900));
    assert_eq!(p.issuer.as_deref(), Some("gatehouse"));
    assert_eq!(verifier().issuers()[OWN].name(), "gatehouse");
    assert_eq!(verifier().issuers()[OWN].issuer(), OWN_ISS);
    assert_eq!(p.scheme, Scheme::Bearer);
    assert!(!p.read_only);
    // Published JWKS verifies it too, and the token is Expired once exp + leeway passes.
    let doc = jwks_json(&[("ed1", own_public())]).to_string();
    let v = TokenVerifier::new(vec![IssuerVerifier::own(
        &tokens_config(),
        KeySet::from_jwks_json(doc.as_bytes()).unwrap(),
    )])
    .unwrap();
    assert!(v.verify(&token, NOW).is_ok());
    assert_eq!(
        v.verify(&token, NOW + 930),
        Err(VerifyError::Expired {
            expired_at: NOW + 900
        })
    );
}

#[test]
fn own_issuer_requires_at_jwt_type_and_eddsa() {
    let ed = Signer::Ed(&keys().ed_pkcs8);
    let jwt = sign(
        &json!({"alg": "EdDSA", "kid": "ed1", "typ": "JWT"}),
        &claims(OWN_ISS),
        ed,
    );
    assert_eq!(verifier().verify(&jwt, NOW), invalid(msg::TYP));
    let ed = Signer::Ed(&keys().ed_pkcs8);
    let ok = sign(
        &json!({"alg": "EdDSA", "kid": "ed1", "typ": "Application/AT+JWT"}),
        &claims(OWN_ISS),
        ed,
    );
    assert!(verifier().verify(&ok, NOW).is_ok());
    let hs = sign(
        &json!({"alg": "HS256", "kid": "ed1", "typ": "at+jwt"}),
        &claims(OWN_ISS),
        Signer::Hmac(HS_SECRET),
    );
    assert_eq!(verifier().verify(&hs, NOW), invalid(msg::ALG_NOT_ALLOWED));
}

#[test]
fn rs256_via_jwks_round_trip_with_dotted_roles_path() {
    let mut c = claims(RS_ISS);
    c["realm_access"] = json!({"roles": ["admin", "auditor"], "other": 1});
    c["org_id"] = json!("acme");
    c["scp"] = json!(["orders:read", "orders:write"]);
    let p = verifier().verify(&rs_token(&c), NOW).unwrap();
    assert_eq!(p.roles, ["admin", "auditor"]);
    assert_eq!(p.tenant.as_deref(), Some("acme"));
    assert_eq!(
        p.scopes,
        ["orders:read", "orders:write"],
        "scp is the fallback"
    );
    assert_eq!(p.issuer.as_deref(), Some("corp-sso"));
}

#[test]
fn es256_via_jwks_round_trip_signed_by_jsonwebtoken() {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
    header.kid = Some("ec2".into());
    let key = jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref());
    let mut c = claims(ES_ISS);
    c["scope"] = json!("a b  c");
    c["roles"] = json!("viewer editor");
    let token = jsonwebtoken::encode(&header, &c, &key).unwrap();
    let v = verifier();
    v.issuers()[ES].set_keys(jwks(&[ec_jwk(&keys().ec, "ec1"), ec_jwk(&pair, "ec2")]));
    let p = v.verify(&token, NOW).unwrap();
    assert_eq!(p.scopes, ["a", "b", "c"]);
    assert_eq!(p.roles, ["viewer", "editor"]);
}

#[test]
fn hs256_shared_secret_and_scope_array() {
    let mut c = claims(HS_ISS);
    c["scope"] = json!(["x", "y"]);
    c["aud"] = json!(["other", "api-2"]);
    let p = verifier().verify(&hs_token(&c), NOW).unwrap();
    assert_eq!(p.scopes, ["x", "y"]);
    assert_eq!(p.issuer.as_deref(), Some("hs"));
    assert_eq!(verifier().issuer_by_name("hs").map(|(i, _)| i), Some(HS));
}

/// RFC 7519 §7.2 step 10: a claims set that is not UTF-8 is not JSON, even when the bad bytes
/// sit in a member no issuer maps (found by fuzzing: such a token was accepted).
#[test]
fn claims_with_invalid_utf8_in_an_unmapped_member_are_refused() {
    let mut payload = br#"{"iss":"https://hs.example","sub":"ann","aud":"api","exp":"#.to_vec();
    payload.extend_from_slice(format!("{},\"note\":\"a", NOW + 600).as_bytes());
    payload.extend_from_slice(&[0xff, 0xfe]);
    payload.extend_from_slice(br#""}"#);
    let input = format!("{}.{}", b64(r#"{"alg":"HS256"}"#), b64(&payload));
    let sig = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, HS_SECRET),
        input.as_bytes(),
    );
    let token = format!("{input}.{}", b64(sig.as_ref()));
    assert_eq!(verifier().verify(&token, NOW), invalid(msg::CLAIMS));
    // The same claims in valid UTF-8 are accepted: only the encoding is refused.
    let fixed = String::from_utf8_lossy(&payload).into_owned();
    assert!(
        verifier()
            .verify(&hs_token(&serde_json::from_str(&fixed).unwrap()), NOW)
            .is_ok()
    );
}

#[test]
fn wrongly_typed_mapped_claim_is_invalid() {
    let mut c = claims(HS_ISS);
    c["roles"] = json!({"admin": true});
    assert_eq!(verifier().verify(&hs_token(&c), NOW), invalid(msg::CLAIMS));
}

#[test]
fn verify_error_maps_to_rows_8_and_9() {
    assert_eq!(
        VerifyError::Expired { expired_at: 5 }.to_deny(),
        Deny::TokenExpired { expired_at: 5 }
    );
    assert_eq!(
        VerifyError::UnknownKid { issuer: 2 }.to_deny(),
        Deny::InvalidToken {
            detail: msg::UNKNOWN_KEY.into()
        }
    );
    assert_eq!(
        VerifyError::Invalid {
            detail: msg::AUDIENCE
        }
        .to_deny()
        .code(),
        "invalid_token"
    );
}

#[test]
fn two_issuers_with_one_iss_are_refused() {
    let a = IssuerVerifier::from_config(&issuer_config("a", HS_ISS, vec![]), KeySet::default());
    let b = IssuerVerifier::from_config(&issuer_config("b", HS_ISS, vec![]), KeySet::default());
    assert_eq!(
        TokenVerifier::new(vec![a, b]).err(),
        Some(KeyError::DuplicateIssuer {
            issuer: HS_ISS.into()
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Attack corpus

#[test]
fn alg_none_in_every_casing() {
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "typ": "JWT"}).to_string();
        let unsigned = format!("{}.{}.", b64(header), b64(claims(HS_ISS).to_string()));
        assert_eq!(
            verifier().verify(&unsigned, NOW),
            invalid(msg::ALG_NOT_ALLOWED),
            "{alg}"
        );
        // Even with a signature appended.
        let signed = format!("{unsigned}c2ln");
        assert_eq!(
            verifier().verify(&signed, NOW),
            invalid(msg::ALG_NOT_ALLOWED),
            "{alg}"
        );
    }
}

#[test]
fn stripped_signature_does_not_match() {
    let token = hs_token(&claims(HS_ISS));
    let (input, _) = token.rsplit_once('.').unwrap();
    assert_eq!(
        verifier().verify(&format!("{input}."), NOW),
        invalid(msg::BAD_SIGNATURE)
    );
}

/// The classic confusion: the attacker HMAC-signs with the issuer's RSA public key (as the PEM
/// text a server might have on disk) and says `alg: HS256`.
#[test]
fn hs_rs_confusion_fails() {
    let der = keys().rsa.public_key().as_der().unwrap();
    let body = STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    );
    for header in [
        json!({"alg": "HS256", "kid": "rsa1"}),
        json!({"alg": "HS256"}),
    ] {
        let forged = sign(&header, &claims(RS_ISS), Signer::Hmac(pem.as_bytes()));
        assert_eq!(
            verifier().verify(&forged, NOW),
            invalid(msg::ALG_NOT_ALLOWED)
        );
    }
    // Even an issuer misconfigured to allow both: the RSA key has no HMAC form.
    let both = issuer_config("both", RS_ISS, vec![Algorithm::RS256, Algorithm::HS256]);
    let v = TokenVerifier::new(vec![IssuerVerifier::from_config(
        &both,
        jwks(&[rsa_jwk("rsa1")]),
    )])
    .unwrap();
    let forged = sign(
        &json!({"alg": "HS256", "kid": "rsa1"}),
        &claims(RS_ISS),
        Signer::Hmac(pem.as_bytes()),
    );
    assert_eq!(v.verify(&forged, NOW), invalid(msg::ALG_NOT_ALLOWED));
    let forged = sign(
        &json!({"alg": "HS256"}),
        &claims(RS_ISS),
        Signer::Hmac(pem.as_bytes()),
    );
    assert_eq!(v.verify(&forged, NOW), invalid(msg::ALG_NOT_ALLOWED));
    assert!(v.verify(&rs_token(&claims(RS_ISS)), NOW).is_ok());
}

#[test]
fn unknown_crit_header_fails() {
    let header = json!({"alg": "HS256", "crit": ["exp"], "exp": NOW + 10});
    let token = sign(&header, &claims(HS_ISS), Signer::Hmac(HS_SECRET));
    assert_eq!(verifier().verify(&token, NOW), invalid(msg::CRIT));
}

#[test]
fn tampered_payload_fails() {
    let token = rs_token(&claims(RS_ISS));
    let parts: Vec<&str> = token.split('.').collect();
    let mut c = claims(RS_ISS);
    c["realm_access"] = json!({"roles": ["admin"]});
    let tampered = format!("{}.{}.{}", parts[0], b64(c.to_string()), parts[2]);
    assert_eq!(
        verifier().verify(&tampered, NOW),
        invalid(msg::BAD_SIGNATURE)
    );
}

#[test]
fn tampered_signature_fails() {
    for token in [hs_token(&claims(HS_ISS)), rs_token(&claims(RS_ISS))] {
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut sig = sig.as_bytes().to_vec();
        sig[5] = if sig[5] == b'x' { b'y' } else { b'x' };
        let tampered = format!("{input}.{}", String::from_utf8(sig).unwrap());
        assert_eq!(
            verifier().verify(&tampered, NOW),
            invalid(msg::BAD_SIGNATURE)
        );
    }
}

#[test]
fn wrong_audience_fails() {
    for aud in [json!("other"), json!(["x", "y"]), json!([])] {
        let mut c = claims(HS_ISS);
        c["aud"] = aud;
        assert_eq!(
            verifier().verify(&hs_token(&c), NOW),
            invalid(msg::AUDIENCE)
        );
    }
    let mut c = claims(HS_ISS);
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        verifier().verify(&hs_token(&c), NOW),
        invalid(msg::AUDIENCE)
    );
}

#[test]
fn wrong_or_missing_issuer_fails() {
    assert_eq!(
        verifier().verify(&hs_token(&claims("https://evil")), NOW),
        invalid(msg::ISSUER)
    );
    // Exact comparison: no case folding or trailing-slash normalization (RFC 7519 §4.1.1).
    assert_eq!(
        verifier().verify(&hs_token(&claims("https://HS.example")), NOW),
        invalid(msg::ISSUER)
    );
    assert_eq!(
        verifier().verify(&hs_token(&claims("https://hs.example/")), NOW),
        invalid(msg::ISSUER)
    );
    let mut c = claims(HS_ISS);
    c.as_object_mut().unwrap().remove("iss");
    assert_eq!(
        verifier().verify(&hs_token(&c), NOW),
        invalid(msg::NO_ISSUER)
    );
}

#[test]
fn token_of_one_issuer_signed_with_anothers_key_fails() {
    // Claims to come from the RS issuer but is HMAC-signed: RS issuer allows no HS256.
    let token = hs_token(&claims(RS_ISS));
    assert_eq!(
        verifier().verify(&token, NOW),
        invalid(msg::ALG_NOT_ALLOWED)
    );
    // ES256 signed by the ES issuer's key but claiming the RS issuer.
    let token = sign(
        &json!({"alg": "ES256", "kid": "ec1"}),
        &claims(RS_ISS),
        Signer::Ec(&keys().ec),
    );
    assert_eq!(
        verifier().verify(&token, NOW),
        invalid(msg::ALG_NOT_ALLOWED)
    );
}

#[test]
fn expired_reports_expiry_only_after_the_signature() {
    let mut c = claims(HS_ISS);
    c["exp"] = json!(NOW - 31);
    let token = hs_token(&c);
    assert_eq!(
        verifier().verify(&token, NOW),
        Err(VerifyError::Expired {
            expired_at: NOW - 31
        })
    );
    // Within the 30 s leeway it still passes.
    c["exp"] = json!(NOW - 29);
    assert!(verifier().verify(&hs_token(&c), NOW).is_ok());
}

#[test]
fn expired_and_tampered_is_invalid_not_expired() {
    let mut c = claims(RS_ISS);
    c["exp"] = json!(NOW - 3600);
    let token = rs_token(&c);
    let parts: Vec<&str> = token.split('.').collect();
    c["sub"] = json!("root");
    let tampered = format!("{}.{}.{}", parts[0], b64(c.to_string()), parts[2]);
    assert_eq!(
        verifier().verify(&tampered, NOW),
        invalid(msg::BAD_SIGNATURE)
    );
}

#[test]
fn expired_with_wrong_audience_is_invalid() {
    let mut c = claims(HS_ISS);
    c["exp"] = json!(NOW - 3600);
    c["aud"] = json!("someone-else");
    assert_eq!(
        verifier().verify(&hs_token(&c), NOW),
        invalid(msg::AUDIENCE)
    );
}

#[test]
fn nbf_in_the_future_fails() {
    let mut c = claims(HS_ISS);
    c["nbf"] = json!(NOW + 31);
    assert_eq!(
        verifier().verify(&hs_token(&c), NOW),
        invalid(msg::NOT_YET_VALID)
    );
    c["nbf"] = json!(NOW + 29);
    assert!(verifier().verify(&hs_token(&c), NOW).is_ok());
}

#[test]
fn iat_far_in_the_future_fails() {
    let mut c = claims(HS_ISS);
    c["iat"] = json!(NOW + 86_400);
    assert_eq!(
        verifier().verify(&hs_token(&c), NOW),
        invalid(msg::ISSUED_IN_FUTURE)
    );
}

#[test]
fn missing_exp_or_subject_fails() {
    let mut c = claims(HS_ISS);
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        verifier().verify(&hs_token(&c), NOW),
        invalid(msg::NO_EXPIRY)
    );
    let mut c = claims(HS_ISS);
    c["exp"] = json!("tomorrow");
    assert_eq!(verifier().verify(&hs_token(&c), NOW), invalid(msg::CLAIMS));
    for sub in [json!(null), json!(""), json!(42)] {
        let mut c = claims(HS_ISS);
        c["sub"] = sub;
        assert_eq!(
            verifier().verify(&hs_token(&c), NOW),
            invalid(msg::NO_SUBJECT)
        );
    }
}

#[test]
fn unknown_kid_is_distinct_and_a_key_swap_fixes_it() {
    let token = sign(
        &json!({"alg": "RS256", "kid": "rsa2"}),
        &claims(RS_ISS),
        Signer::Rsa(&keys().rsa),
    );
    let v = verifier();
    assert_eq!(
        v.verify(&token, NOW),
        Err(VerifyError::UnknownKid { issuer: RS })
    );
    assert_eq!(v.issuers()[RS].name(), "corp-sso");
    // The edge refetched the JWKS: the rotated key is now published under `rsa2`.
    v.issuers()[RS].set_keys(jwks(&[rsa_jwk("rsa1"), rsa_jwk("rsa2")]));
    assert!(v.verify(&token, NOW).is_ok());
    // An empty key set (JWKS not loaded yet) also asks for a fetch.
    v.issuers()[RS].set_keys(KeySet::default());
    assert_eq!(
        v.verify(&token, NOW),
        Err(VerifyError::UnknownKid { issuer: RS })
    );
}

#[test]
fn kid_is_only_a_map_key() {
    for kid in [
        "../../../../etc/passwd",
        "' OR '1'='1",
        "rsa1\u{0}",
        "RSA1",
        "rsa1 ",
        "/rsa1",
    ] {
        let token = sign(
            &json!({"alg": "RS256", "kid": kid}),
            &claims(RS_ISS),
            Signer::Rsa(&keys().rsa),
        );
        assert_eq!(
            verifier().verify(&token, NOW),
            Err(VerifyError::UnknownKid { issuer: RS }),
            "{kid:?}"
        );
    }
}

#[test]
fn jku_x5u_and_embedded_jwk_are_ignored() {
    let attacker = &keys().attacker_ec;
    // The attacker's key rides in the header; verification uses only the issuer's key.
    for header in [
        json!({"alg": "ES256", "jwk": ec_jwk(attacker, "ec1")}),
        json!({"alg": "ES256", "kid": "ec1", "jwk": ec_jwk(attacker, "ec1")}),
        json!({"alg": "ES256", "kid": "ec1", "jku": "https://evil.example/jwks.json"}),
        json!({"alg": "ES256", "kid": "ec1", "x5u": "https://evil.example/cert.pem"}),
    ] {
        let forged = sign(&header, &claims(ES_ISS), Signer::Ec(attacker));
        assert_eq!(
            verifier().verify(&forged, NOW),
            invalid(msg::BAD_SIGNATURE),
            "{header}"
        );
    }
    // A genuine token carrying those members still verifies: they are not fetched, not used.
    let header = json!({"alg": "ES256", "kid": "ec1", "jku": "https://evil.example/jwks.json",
        "x5u": "https://evil.example/c", "jwk": ec_jwk(attacker, "x")});
    assert!(
        verifier()
            .verify(&sign(&header, &claims(ES_ISS), Signer::Ec(&keys().ec)), NOW)
            .is_ok()
    );
}

#[test]
fn garbage_is_malformed() {
    for garbage in [
        "",
        "Bearer",
        "a.b.c",
        "....",
        "eyJ.eyJ.sig",
        "not a token at all",
        "eyJhbGciOiJIUzI1NiJ9.e30.e30.e30.e30",
    ] {
        assert_eq!(
            verifier().verify(garbage, NOW),
            invalid(msg::MALFORMED),
            "{garbage}"
        );
    }
    let huge = format!("{}.{}.{}", "a".repeat(9000), "b".repeat(9000), "c");
    assert_eq!(verifier().verify(&huge, NOW), invalid(msg::TOO_LONG));
    let not_object = format!("{}.{}.c2ln", b64(r#"{"alg":"HS256"}"#), b64("[1,2]"));
    assert_eq!(verifier().verify(&not_object, NOW), invalid(msg::CLAIMS));
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,400}") {
        let _ = verifier_once().verify(&s, NOW);
    }

    #[test]
    fn arbitrary_parts_never_panic(h in any::<Vec<u8>>(), p in any::<Vec<u8>>(), s in any::<Vec<u8>>()) {
        let token = format!("{}.{}.{}", b64(h), b64(p), b64(s));
        let _ = verifier_once().verify(&token, NOW);
    }

    #[test]
    fn signed_arbitrary_claims_never_panic(rest in CLAIMS_REGEX) {
        let payload = format!(r#"{{"iss":"{HS_ISS}"{rest}}}"#);
        let token = sign_raw(r#"{"alg":"HS256"}"#, &payload, Signer::Hmac(HS_SECRET));
        let _ = verifier_once().verify(&token, NOW);
    }
}

/// Members after `iss`: the claims the verifier reads, with values of every JSON type.
const CLAIMS_REGEX: &str = r#"(,"(sub|aud|exp|nbf|iat|roles|scope|scp|tenant|acr|auth_time|jti|x)":(-?[0-9]{1,20}(\.[0-9]{1,3})?(e[0-9]{1,3})?|"[a-z ]{0,5}"|\[("[a-z]{0,3}",?){0,3}\]|null|true|\{\})){0,10}"#;

fn verifier_once() -> &'static TokenVerifier {
    static V: OnceLock<TokenVerifier> = OnceLock::new();
    V.get_or_init(verifier)
}
