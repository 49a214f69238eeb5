//! A third-party verifier (PyJWT) verifies our access tokens from the published JWKS alone,
//! before and after `gatehouse keys rotate`. Without PyJWT the test says so and skips
//! (fails under `GATEHOUSE_TEST_REQUIRE=all`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gatehouse_testkit::PYJWT;
use serde_json::Value;

use crate::identity::{Gateway, jwt_part};
use crate::support::{http, poll};

/// Fetches the JWKS (no proxy), picks the JWK of the token's `kid`, verifies with
/// `algorithms=["EdDSA"]`, `aud` and `iss` pinned (RFC 8725 §3.1, §3.8–3.9), and prints the
/// claims. A token with a flipped signature byte and a wrong expected audience must both be
/// rejected, or the verification proves nothing.
const VERIFY: &str = r#"
import json, sys, urllib.request
import jwt

url, token = sys.argv[1], sys.argv[2]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
with opener.open(url, timeout=10) as r:
    jwks = json.load(r)
kid = jwt.get_unverified_header(token)["kid"]
matching = [k for k in jwks["keys"] if k.get("kid") == kid]
if len(matching) != 1:
    sys.exit("kid %r: %d matching keys in %s" % (kid, len(matching), url))
key = jwt.PyJWK(matching[0]).key

def decode(t, aud="api"):
    return jwt.decode(t, key, algorithms=["EdDSA"], audience=aud, issuer="gatehouse")

claims = decode(token)

def rejected(f):
    try:
        f()
    except jwt.InvalidTokenError as e:
        return type(e).__name__
    return None

head, payload, sig = token.split(".")
flipped = sig[:5] + ("A" if sig[5] != "A" else "B") + sig[6:]
print(json.dumps({
    "kid": kid,
    "claims": claims,
    "tampered": rejected(lambda: decode(".".join([head, payload, flipped]))),
    "wrong_audience": rejected(lambda: decode(token, aud="other")),
}))
"#;

/// Runs the verifier; its JSON report.
#[track_caller]
fn pyjwt_verify(python: &Path, gw: &Gateway, token: &str) -> Value {
    let url = format!("http://{}/.well-known/jwks.json", gw.addr);
    let out = Command::new(python)
        .args(["-c", VERIFY, &url, token])
        .output()
        .expect("run python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "PyJWT refused our token:\n{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"));
    let claims = &report["claims"];
    assert_eq!(claims["sub"], "alice", "{report}");
    assert_eq!(claims["acr"], "pwd", "{report}");
    for name in ["sid", "jti"] {
        assert!(
            claims[name].as_str().is_some_and(|s| !s.is_empty()),
            "{name}: {report}"
        );
    }
    assert!(claims["exp"].as_i64().is_some(), "exp: {report}");
    assert_eq!(
        report["tampered"], "InvalidSignatureError",
        "a tampered signature passed: {report}"
    );
    assert_eq!(
        report["wrong_audience"], "InvalidAudienceError",
        "a wrong audience passed: {report}"
    );
    report
}

/// The number of keys in our JWKS.
fn jwks_len(gw: &Gateway) -> Option<usize> {
    let r = http(gw.addr, "GET", "/.well-known/jwks.json", &[]).ok()?;
    let v: Value = serde_json::from_str(&r.body).ok()?;
    v["keys"].as_array().map(Vec::len)
}

#[test]
fn pyjwt_verifies_our_tokens_from_the_jwks_alone() {
    let Some(python) = gatehouse_testkit::python_with("jwt, cryptography", &PYJWT) else {
        return;
    };
    let gw = Gateway::start("pyjwt");
    let old = gw.login();
    let report = pyjwt_verify(&python, &gw, &old.access);
    let old_kid = report["kid"].as_str().expect("kid").to_owned();
    assert_eq!(jwks_len(&gw), Some(1));

    // Rotate in another process; the server publishes the new key within its sync interval.
    let out = gw.env.run(&["keys", "rotate"]).ok();
    let new_kid = out
        .stdout
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no kid printed: {out:#?}"))
        .to_owned();
    poll(
        Duration::from_secs(10),
        "the JWKS to publish 2 keys",
        || (jwks_len(&gw) == Some(2)).then_some(()),
    );

    // A new login is signed with the new key, which PyJWT finds in the JWKS.
    let new = gw.login();
    assert_eq!(jwt_part(&new.access, 0)["kid"], new_kid.as_str());
    let report = pyjwt_verify(&python, &gw, &new.access);
    assert_eq!(report["kid"], new_kid.as_str());

    // The old token still verifies: at Gatehouse, and for PyJWT from the same JWKS.
    let r = gw.get("/api/posts", &old.access);
    assert_eq!(r.status, 200, "{r:#?}");
    assert_eq!(
        pyjwt_verify(&python, &gw, &old.access)["kid"],
        old_kid.as_str()
    );
}
