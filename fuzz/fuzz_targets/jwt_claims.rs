//! JWT header and claims behind a valid HS256 signature: the input is `header \0 payload`
//! (raw JSON bytes); the harness signs them with the issuer's secret. An accepted token's
//! claims must satisfy RFC 7519 §4.1 as serde_json reads them.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::LazyLock;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_core::token::TokenVerifier;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

static VERIFIER: LazyLock<TokenVerifier> = LazyLock::new(common::verifier);

fn sign(header: &[u8], payload: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, common::HS_SECRET);
    let tag = hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

fn num(claims: &Value, name: &str) -> Option<f64> {
    claims.get(name).and_then(Value::as_f64)
}

fuzz_target!(|data: &[u8]| {
    let (header, payload) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&br#"{"alg":"HS256","typ":"JWT"}"#[..], data),
    };
    let token = sign(header, payload);
    let Ok(p) = VERIFIER.verify(&token, common::NOW) else {
        return;
    };
    let header: Value = match serde_json::from_slice(header) {
        Ok(h) => h,
        // As for the claims below: a number beyond serde_json's range in a header member the
        // verifier skips is still JSON (RFC 8259 §6).
        Err(e) if e.to_string().starts_with("number out of range") => return,
        Err(e) => panic!("accepted header is not JSON: {e}"),
    };
    assert_eq!(header["alg"], "HS256", "accepted alg");
    let claims: Value = match serde_json::from_slice(payload) {
        Ok(c) => c,
        // RFC 8259 §6 lets an implementation limit the range of numbers: serde_json refuses
        // `1e999`, the claims pass skips it in a member it does not read. Not a disagreement.
        Err(e) if e.to_string().starts_with("number out of range") => return,
        Err(e) => panic!("accepted claims are not JSON: {e}"),
    };
    assert!(claims.is_object(), "accepted claims are not an object");
    assert_eq!(claims["iss"], common::HS_ISS, "issuer");
    assert_eq!(p.issuer.as_deref(), Some("hs"));
    assert!(!p.subject.is_empty(), "empty subject");
    let aud_ok = match &claims["aud"] {
        Value::String(a) => a == "api" || a == "api-2",
        Value::Array(l) => l.iter().any(|a| a == "api" || a == "api-2"),
        _ => false,
    };
    assert!(aud_ok, "audience {:?} accepted", claims["aud"]);
    let now = common::NOW as f64;
    let leeway = common::LEEWAY as f64;
    match num(&claims, "exp") {
        Some(exp) => assert!(exp + leeway >= now, "expired token accepted (exp {exp})"),
        None => panic!("token without a numeric exp accepted"),
    }
    if let Some(nbf) = num(&claims, "nbf") {
        assert!(nbf - leeway <= now, "token before nbf accepted (nbf {nbf})");
    }
});
