//! HTTP Digest (RFC 7616) end to end over a real socket: the challenges of rows 5 and 11, the
//! stale nonce of row 12, `nc` replay protection, the `uri` check, `userhash`, and two real
//! clients — `curl --digest` and Python `requests.auth.HTTPDigestAuth` — getting through.
//!
//! The RFC 7616 §3.9.1 example values (MD5 and SHA-256 responses for `Mufasa`) are checked
//! in core's unit tests (`gatehouse-core/src/digest/tests.rs`, `rfc7616_3_9_1_*`);
//! [`test_client_reproduces_rfc7616_3_9_1`] checks that this file's own client computes them
//! too, so the hand-made requests below are known to be right.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::digest_client::{Request, param};
use common::{Harness, Resp, basic};
use gatehouse_core::digest::{Algorithm, make_nonce, make_opaque};
use gatehouse_server::clock::now;
use gatehouse_server::digest::{KEY_DIGEST, NONCE_TTL};
use gatehouse_testkit::{CURL, REQUESTS, program};
use tokio::sync::watch;

const REALM: &str = "api";
const ROUTE: &str = r#"
[[route]]
name = "digest"
path = "/digest/**"
auth = ["digest", "basic"]
"#;
const BASIC: &str = "Basic realm=\"api\", charset=\"UTF-8\"";

/// Stores alice's (or anyone's) Digest secrets for both algorithms, as
/// `gatehouse user add --digest` does.
async fn enable_digest(h: &Harness, user: &str, pw: &str) {
    common::digest_client::enable(h.gw.store.as_ref(), user, REALM, pw).await;
}

async fn start() -> Harness {
    let h = Harness::start_with(ROUTE).await;
    enable_digest(&h, "alice", "alice-pw").await;
    h
}

/// A fresh nonce and opaque from a 401 of the digest route.
async fn challenge(h: &Harness) -> (String, String) {
    let r = h.get("/digest/start", &[]).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let c = &r.challenges()[0];
    (param(c, "nonce").unwrap(), param(c, "opaque").unwrap())
}

async fn request<'a>(h: &Harness, alg: Algorithm, uri: &'a str) -> Request<'a> {
    let (nonce, opaque) = challenge(h).await;
    Request {
        alg,
        user: "alice",
        pw: "alice-pw",
        realm: REALM,
        method: "GET",
        uri,
        nonce,
        opaque,
        nc: 1,
        cnonce: "0a4f113b",
        userhash: false,
    }
}

async fn send(h: &Harness, path: &str, r: &Request<'_>) -> Resp {
    h.get(path, &[("Authorization", &r.header())]).await
}

#[track_caller]
fn assert_error(r: &Resp, status: u16, error: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text);
    assert_eq!(r.error(), error, "{}", r.text);
}

/// 401 on the digest route with the full challenge list (row 11 keeps row 5's challenges).
#[track_caller]
fn assert_challenged(r: &Resp, error: &str) {
    assert_error(r, 401, error);
    let c = r.challenges();
    assert_eq!(c.len(), 3, "{c:?}");
    assert!(c[0].contains("algorithm=SHA-256") && c[1].contains("algorithm=MD5"));
    assert_eq!(c[2], BASIC);
}

#[tokio::test]
async fn test_client_reproduces_rfc7616_3_9_1() {
    let mut r = Request {
        alg: Algorithm::Md5,
        user: "Mufasa",
        pw: "Circle of Life",
        realm: "http-auth@example.org",
        method: "GET",
        uri: "/dir/index.html",
        nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
        opaque: "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS".into(),
        nc: 1,
        cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        userhash: false,
    };
    assert_eq!(r.response(), "8ca523f5e9506fed4657c9700eebdbec");
    r.alg = Algorithm::Sha256;
    assert_eq!(
        r.response(),
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
}

#[tokio::test]
async fn missing_credentials_get_two_digest_challenges_then_basic() {
    let h = start().await;
    let r = h.get("/digest/hello", &[]).await;
    assert_error(&r, 401, "missing_credentials");
    let c = r.challenges();
    assert_eq!(c.len(), 3, "{c:?}");
    let nonce = param(&c[0], "nonce").unwrap();
    let opaque = param(&c[0], "opaque").unwrap();
    for (i, alg) in ["SHA-256", "MD5"].into_iter().enumerate() {
        assert_eq!(
            c[i],
            format!(
                "Digest realm=\"api\", qop=\"auth\", algorithm={alg}, nonce=\"{nonce}\", opaque=\"{opaque}\", charset=UTF-8, userhash=true"
            )
        );
    }
    assert_eq!(c[2], BASIC);
    assert!(nonce.len() >= 32 && opaque.len() >= 16, "{c:?}");
    // Every 401 carries a fresh nonce; the opaque is fixed per realm.
    let again = h.get("/digest/hello", &[]).await.challenges();
    assert_ne!(param(&again[0], "nonce").unwrap(), nonce);
    assert_eq!(param(&again[0], "opaque").unwrap(), opaque);
}

#[tokio::test]
async fn md5_sha256_and_sess_variants_with_and_without_userhash() {
    let h = start().await;
    for alg in [
        Algorithm::Sha256,
        Algorithm::Md5,
        Algorithm::Sha256Sess,
        Algorithm::Md5Sess,
    ] {
        for uh in [false, true] {
            let path = format!("/digest/v?alg={alg}&userhash={uh}");
            let mut req = request(&h, alg, &path).await;
            req.userhash = uh;
            let r = send(&h, &path, &req).await;
            assert_eq!(r.status, 200, "{alg} userhash={uh}: {}", r.text);
            let b = r.json();
            assert_eq!(b["user"], "alice", "{b}");
            assert_eq!(b["auth"], "digest", "{b}");
            assert_eq!(b["roles"], "admin,ops", "{b}");
        }
    }
}

/// Names and passwords are hashed as UTF-8 (the challenges say `charset=UTF-8`); with
/// `userhash` the name travels as ASCII hex.
#[tokio::test]
async fn utf8_user_with_userhash() {
    let h = start().await;
    enable_digest(&h, "josé", "contraseña-£").await;
    let mut req = request(&h, Algorithm::Sha256, "/digest/u").await;
    (req.user, req.pw, req.userhash) = ("josé", "contraseña-£", true);
    let r = send(&h, "/digest/u", &req).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["user"], "josé");
}

#[tokio::test]
async fn wrong_password_unknown_user_and_user_without_digest_secret() {
    let h = start().await;
    let mut req = request(&h, Algorithm::Sha256, "/digest/x").await;
    req.pw = "wrong";
    assert_challenged(&send(&h, "/digest/x", &req).await, "invalid_credentials");

    let mut req = request(&h, Algorithm::Md5, "/digest/x").await;
    req.user = "nobody";
    assert_challenged(&send(&h, "/digest/x", &req).await, "invalid_credentials");
    req.userhash = true;
    assert_challenged(&send(&h, "/digest/x", &req).await, "invalid_credentials");

    // bob has a password but no Digest secret: Digest fails, Basic on the same route works.
    let mut req = request(&h, Algorithm::Md5, "/digest/x").await;
    (req.user, req.pw) = ("bob", "bob-pw");
    assert_challenged(&send(&h, "/digest/x", &req).await, "invalid_credentials");
    let r = h
        .get("/digest/x", &[("Authorization", &basic("bob", "bob-pw"))])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["auth"], "basic");
}

#[tokio::test]
async fn nonce_count_replay_and_reorder_are_refused() {
    let h = start().await;
    let mut req = request(&h, Algorithm::Sha256, "/digest/n").await;
    assert_eq!(send(&h, "/digest/n", &req).await.status, 200);
    // The same request again (a captured header replayed): refused.
    assert_challenged(&send(&h, "/digest/n", &req).await, "invalid_credentials");
    req.nc = 2;
    assert_eq!(send(&h, "/digest/n", &req).await.status, 200);
    req.nc = 5;
    assert_eq!(send(&h, "/digest/n", &req).await.status, 200);
    // Going back below the highest count seen is refused too.
    req.nc = 4;
    assert_challenged(&send(&h, "/digest/n", &req).await, "invalid_credentials");
    // A wrong response does not advance the count: nc=6 still works after a failed nc=6.
    req.nc = 6;
    let mut bad = req.clone();
    bad.pw = "wrong";
    assert_challenged(&send(&h, "/digest/n", &bad).await, "invalid_credentials");
    assert_eq!(send(&h, "/digest/n", &req).await.status, 200);
}

#[tokio::test]
async fn uri_realm_and_opaque_must_match() {
    let h = start().await;
    // Signed for another resource (RFC 7616 §3.4.6).
    let req = request(&h, Algorithm::Sha256, "/digest/other").await;
    assert_challenged(&send(&h, "/digest/x", &req).await, "invalid_credentials");
    // The query is part of the request-target.
    let req = request(&h, Algorithm::Sha256, "/digest/x").await;
    assert_challenged(
        &send(&h, "/digest/x?admin=1", &req).await,
        "invalid_credentials",
    );
    // Another realm, even with its right HA1.
    let mut req = request(&h, Algorithm::Md5, "/digest/x").await;
    req.realm = "elsewhere";
    assert_challenged(&send(&h, "/digest/x", &req).await, "invalid_credentials");
    // An opaque that is not ours.
    let mut req = request(&h, Algorithm::Md5, "/digest/x").await;
    req.opaque = "AAAAAAAAAAAAAAAAAAAAAAAA".into();
    assert_challenged(&send(&h, "/digest/x", &req).await, "invalid_credentials");
    // The untouched request still passes (the failures above were for the right reasons).
    let req = request(&h, Algorithm::Md5, "/digest/x").await;
    assert_eq!(send(&h, "/digest/x", &req).await.status, 200);
}

#[tokio::test]
async fn expired_nonce_with_a_right_response_is_stale() {
    let h = start().await;
    let key = h.gw.secrets.derive(KEY_DIGEST);
    let old = now() - i64::try_from(NONCE_TTL).unwrap() - 100;
    let mut req = request(&h, Algorithm::Sha256, "/digest/s").await;
    req.nonce = make_nonce(&key, old, &[9u8; 16]);
    req.opaque = make_opaque(&key, REALM);
    let r = send(&h, "/digest/s", &req).await;
    assert_error(&r, 401, "stale_nonce");
    // Row 12: only the Digest challenges, marked stale, with a fresh nonce to retry with.
    let c = r.challenges();
    assert_eq!(c.len(), 2, "{c:?}");
    assert!(c.iter().all(|c| c.ends_with(", stale=true")), "{c:?}");
    let fresh = param(&c[0], "nonce").unwrap();
    assert_ne!(fresh, req.nonce);

    // `gatehouse mock --preset stale-nonce --scheme digest,basic` answers the same, but for
    // the nonce and opaque values (random / per-key).
    let mock = gatehouse_mock::Mock::new(gatehouse_mock::MockOptions {
        presets: vec![gatehouse_mock::PresetSpec::parse("stale-nonce").unwrap()],
        schemes: vec![
            gatehouse_core::Scheme::Digest,
            gatehouse_core::Scheme::Basic,
        ],
        ..gatehouse_mock::MockOptions::default()
    })
    .unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (_stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(gatehouse_mock::serve(std::sync::Arc::clone(&mock), l, rx));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<axum::body::Body>();
    let fake = client
        .request(
            http::Request::get(format!("http://{addr}/digest/s"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(fake.status(), r.status);
    let normalize = |c: &str| {
        c.split(", ")
            .filter(|p| !p.starts_with("nonce=") && !p.starts_with("opaque="))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let fake_challenges: Vec<String> = fake
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| normalize(v.to_str().unwrap()))
        .collect();
    let real_challenges: Vec<String> = c.iter().map(|v| normalize(v)).collect();
    assert_eq!(fake_challenges, real_challenges);
    assert_eq!(
        fake.headers().get("x-gatehouse-error").unwrap(),
        "stale_nonce"
    );

    req.nonce = fresh;
    assert_eq!(send(&h, "/digest/s", &req).await.status, 200);

    // Stale applies only when the response is otherwise right.
    req.nonce = make_nonce(&key, old, &[8u8; 16]);
    req.pw = "wrong";
    assert_challenged(&send(&h, "/digest/s", &req).await, "invalid_credentials");
}

#[tokio::test]
async fn tampered_or_foreign_nonce_is_invalid() {
    let h = start().await;
    let mut req = request(&h, Algorithm::Sha256, "/digest/t").await;
    let mut chars: Vec<char> = req.nonce.chars().collect();
    chars[3] = if chars[3] == 'A' { 'B' } else { 'A' };
    req.nonce = chars.into_iter().collect();
    assert_challenged(&send(&h, "/digest/t", &req).await, "invalid_credentials");
    // Made with another key (another deployment), correctly answered.
    req.nonce = make_nonce(&[7u8; 32], now(), &[1u8; 16]);
    assert_challenged(&send(&h, "/digest/t", &req).await, "invalid_credentials");
}

#[tokio::test]
async fn malformed_digest_is_invalid_request() {
    let h = start().await;
    for bad in [
        "Digest",
        "Digest username=\"alice\"",
        "Digest username=\"alice\", realm=\"api\", uri=\"/digest/m\", nonce=\"n\", nc=1, cnonce=\"c\", qop=auth, response=\"00\"",
        "Digest garbage",
        "Digest username=\"alice\", qop=auth-int",
    ] {
        let r = h.get("/digest/m", &[("Authorization", bad)]).await;
        assert_error(&r, 400, "invalid_request");
    }
}

#[tokio::test]
async fn suspended_user_is_forbidden_after_digest_proves_identity() {
    let h = start().await;
    enable_digest(&h, "carol", "carol-pw").await;
    let mut req = request(&h, Algorithm::Md5, "/digest/c").await;
    (req.user, req.pw) = ("carol", "carol-pw");
    assert_error(&send(&h, "/digest/c", &req).await, 403, "account_suspended");
}

#[tokio::test]
async fn digest_algorithms_setting_limits_what_is_offered_and_accepted() {
    let (stop, rx) = watch::channel(false);
    let upstream = common::echo_upstream(rx.clone()).await;
    let text = common::config_text(upstream, ROUTE).replacen(
        "realm = \"api\"\n",
        "realm = \"api\"\ndigest_algorithms = [\"MD5\"]\n",
        1,
    );
    let h = Harness::start_config(&text, upstream, stop, rx).await;
    enable_digest(&h, "alice", "alice-pw").await;
    let r = h.get("/digest/a", &[]).await;
    let c = r.challenges();
    assert_eq!(c.len(), 2, "{c:?}");
    assert!(c[0].contains("algorithm=MD5"), "{c:?}");
    assert_eq!(c[1], BASIC);
    let req = request(&h, Algorithm::Sha256, "/digest/a").await;
    assert_error(
        &send(&h, "/digest/a", &req).await,
        401,
        "invalid_credentials",
    );
    let req = request(&h, Algorithm::Md5Sess, "/digest/a").await;
    assert_eq!(send(&h, "/digest/a", &req).await.status, 200);
}

// --- real clients ---------------------------------------------------------------------

#[tokio::test]
async fn curl_digest_gets_through() {
    let Some(curl) = CURL.found(program("curl")) else {
        return;
    };
    let h = start().await;
    let url = format!("http://{}/digest/curl?q=1", h.addr);
    let out = tokio::process::Command::new(&curl)
        .args(["-sS", "-v", "--noproxy", "*", "--max-time", "20"])
        .args(["--digest", "-u", "alice:alice-pw", &url])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("< HTTP/1.1 200"), "{stderr}");
    // curl answers the first challenge it supports: SHA-256, with the userhash offered.
    let auth = stderr
        .lines()
        .find(|l| l.starts_with("> Authorization: Digest "))
        .unwrap_or_else(|| panic!("curl sent no Digest credentials: {stderr}"));
    assert!(auth.contains("algorithm=SHA-256"), "{auth}");
    assert!(auth.contains("userhash=true"), "{auth}");
    assert!(!auth.contains("alice"), "userhash hides the name: {auth}");
    let b: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(b["user"], "alice", "{b}");
    assert_eq!(b["auth"], "digest", "{b}");
    assert_eq!(b["query"], "q=1", "{b}");

    // And a wrong password is refused.
    let out = tokio::process::Command::new(&curl)
        .args(["-sS", "--noproxy", "*", "--max-time", "20"])
        .args(["-o", "/dev/null", "-w", "%{http_code}"])
        .args(["--digest", "-u", "alice:nope", &url])
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");
}

const PYTHON_CLIENT: &str = r#"
import json, sys
import requests
from requests.auth import HTTPDigestAuth
url, user, pw = sys.argv[1:4]
s = requests.Session()
s.trust_env = False
auth = HTTPDigestAuth(user, pw)
out = []
for _ in range(2):
    r = s.get(url, auth=auth, timeout=20)
    out.append({
        "status": r.status_code,
        "history": [x.status_code for x in r.history],
        "authorization": r.request.headers.get("Authorization", ""),
        "body": r.text,
    })
print(json.dumps(out))
"#;

#[tokio::test]
async fn python_requests_http_digest_auth_gets_through_and_reuses_the_nonce() {
    let Some(python) = gatehouse_testkit::python_with("requests", &REQUESTS) else {
        return;
    };
    let h = start().await;
    let url = format!("http://{}/digest/py?x=y", h.addr);
    let run = |user: &str, pw: &str| {
        tokio::process::Command::new(&python)
            .args(["-c", PYTHON_CLIENT, &url, user, pw])
            .output()
    };
    let out = run("alice", "alice-pw").await.expect("run python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python3 with requests failed: {stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &v[0];
    assert_eq!(first["status"], 200, "{v:#}");
    assert_eq!(first["history"], serde_json::json!([401]), "{v:#}");
    let body: serde_json::Value = serde_json::from_str(first["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["user"], "alice");
    assert_eq!(body["auth"], "digest");
    // The second request answers the same nonce up front with nc=2: no new 401 round.
    let second = &v[1];
    assert_eq!(second["status"], 200, "{v:#}");
    assert_eq!(second["history"], serde_json::json!([]), "{v:#}");
    let a1 = first["authorization"].as_str().unwrap();
    let a2 = second["authorization"].as_str().unwrap();
    // requests joins the two `WWW-Authenticate` fields into one string and the last
    // `algorithm` wins, so it answers MD5 (requests 2.x); either offered one is right.
    assert!(
        a1.contains(r#"algorithm="MD5""#) || a1.contains(r#"algorithm="SHA-256""#),
        "{a1}"
    );
    assert!(
        a1.contains("nc=00000001") && a2.contains("nc=00000002"),
        "{v:#}"
    );
    assert_eq!(param(a1, "nonce"), param(a2, "nonce"), "{v:#}");

    let out = run("alice", "wrong").await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["status"], 401, "{v:#}");
}
