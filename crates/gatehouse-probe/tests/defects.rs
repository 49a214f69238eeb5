//! One loopback target per defect of issue 15, each asserting the exact finding set (or
//! the exact result) the probe must give. Numbers refer to the issue's list.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::result_large_err
)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{expect, fast, set};
use gatehouse_probe::{Format, Limits, Options, Outcome, Report, spec};
use http_body_util::BodyExt as _;
use md5::Md5;
use sha2::{Digest as _, Sha256};

/// What a target sees of a request.
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: String,
}

impl Seen {
    fn auth(&self) -> &str {
        self.headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    fn basic_user(&self) -> Option<String> {
        let b = self.auth().strip_prefix("Basic ")?;
        let raw = String::from_utf8(STANDARD.decode(b).ok()?).ok()?;
        match raw.as_str() {
            "alice:alicepw" => Some("alice".to_owned()),
            _ => None,
        }
    }
    fn preflight(&self) -> bool {
        self.method == Method::OPTIONS && self.headers.contains_key("access-control-request-method")
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Response<Body> + Send + Sync>;

async fn serve(h: Handler) -> String {
    let router = Router::new().fallback(move |req: Request<Body>| {
        let h = Arc::clone(&h);
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            h(&Seen {
                method: parts.method,
                path: parts.uri.path().to_owned(),
                headers: parts.headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            })
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, router).await });
    format!("http://{addr}")
}

fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> Response<Body> {
    let mut b = Response::builder().status(status);
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

const BASIC_CHALLENGE: (&str, &str) = ("www-authenticate", r#"Basic realm="api""#);
const BEARER_CHALLENGE: (&str, &str) = ("www-authenticate", r#"Bearer realm="api""#);
const BAD_TOKEN: (&str, &str) = (
    "www-authenticate",
    r#"Bearer realm="api", error="invalid_token""#,
);
const ALICE: &str = "Basic YWxpY2U6YWxpY2Vwdw=="; // alice:alicepw

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

fn jwt(sub: &str) -> String {
    format!(
        "{}.{}.{}",
        b64(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64(&format!(r#"{{"sub":"{sub}","exp":4102444800}}"#)),
        b64(&format!("sig-of-{sub}"))
    )
}

async fn probe_text(text: &str, limits: Limits) -> Report {
    let spec = spec::parse(text).unwrap_or_else(|e| panic!("{:?}", e.0));
    gatehouse_probe::run(
        &spec,
        spec.target.clone().unwrap(),
        Options {
            limits,
            aggressive: false,
            progress: None,
        },
    )
    .await
}

fn assert_set(r: &Report, items: &[(&str, &str, &str)]) {
    assert_eq!(set(r), expect(items), "\n{}", r.render(Format::Table));
}

/// A Basic-only API: `/items` for alice, everything answered 401 with a Basic challenge
/// otherwise (preflights included: the server knows nothing of CORS).
fn basic_api(s: &Seen) -> Response<Body> {
    match s.basic_user() {
        Some(_) if s.path == "/items" => resp(200, &[], "[]"),
        Some(_) => resp(404, &[], ""),
        None => resp(401, &[BASIC_CHALLENGE], ""),
    }
}

const BASIC_SPEC: &str = r#"
[personas.user]
headers = { Authorization = "Basic YWxpY2U6YWxpY2Vwdw==" }
[[endpoint]]
path = "/items"
allow = ["user"]
"#;

// 1. A 401 to `OPTIONS` from a server without any CORS is not a CORS bug.
#[tokio::test]
async fn d1_preflight_on_a_server_without_cors_is_not_judged() {
    let t = serve(Arc::new(basic_api)).await;
    let r = probe_text(&format!("target = \"{t}\"\n{BASIC_SPEC}"), fast()).await;
    assert_set(&r, &[]);
    assert_eq!(r.outcome("GET /items"), Some(Outcome::Ok));
    assert!(!r.failed());
}

// 1. A CORS target whose preflight is a 200 without `Access-Control-Allow-Origin` fails
//    in browsers exactly like a 401 would.
#[tokio::test]
async fn d1_preflight_without_allow_origin_on_a_cors_target() {
    let t = serve(Arc::new(|s: &Seen| {
        let cors = ("access-control-allow-origin", "https://app.example");
        if s.preflight() {
            return resp(200, &[("allow", "GET, OPTIONS")], "");
        }
        match s.basic_user() {
            Some(_) => resp(200, &[cors], "[]"),
            None => resp(401, &[BASIC_CHALLENGE, cors], ""),
        }
    }))
    .await;
    let r = probe_text(&format!("target = \"{t}\"\n{BASIC_SPEC}"), fast()).await;
    assert_set(&r, &[("preflight-challenged", "GET /items", "anonymous")]);
}

// 2. Every path misspelled: 404 for allowed personas and public endpoints is not `ok`.
#[tokio::test]
async fn d2_misspelled_paths_are_reported() {
    let t = serve(Arc::new(|s: &Seen| match s.basic_user() {
        Some(_) => resp(404, &[], ""),
        None if s.path == "/helth" => resp(404, &[], ""),
        None => resp(401, &[BASIC_CHALLENGE], ""),
    }))
    .await;
    let text = format!(
        "target = \"{t}\"\n[personas.user]\nheaders = {{ Authorization = \"{ALICE}\" }}\n[[endpoint]]\npath = \"/itemz\"\nallow = [\"user\"]\n[[endpoint]]\npath = \"/helth\"\npublic = true\n"
    );
    let r = probe_text(&text, fast()).await;
    assert_set(
        &r,
        &[
            // Guarded (anonymous got 401): the user was let through to a missing resource.
            ("resource-not-found", "GET /itemz", "user"),
            ("endpoint-missing", "GET /helth", "anonymous"),
        ],
    );
    assert!(r.failed());
    assert!(r.render(Format::Table).contains("FAIL"));
}

// 2. An endpoint declared `absent` (its path names nothing, on purpose, so an allowed
//    persona changes nothing): a 404 behind the guard is the expected answer, but a 404
//    for everyone still says the endpoint is missing.
#[tokio::test]
async fn d2_declared_absent_resource_is_expected_only_behind_the_guard() {
    let t = serve(Arc::new(|s: &Seen| {
        match (s.basic_user(), s.path.as_str()) {
            (_, "/gone") => resp(404, &[], ""),
            (Some(_), _) => resp(404, &[], ""),
            (None, _) => resp(401, &[BASIC_CHALLENGE], ""),
        }
    }))
    .await;
    let text = format!(
        "target = \"{t}\"\n[personas.user]\nheaders = {{ Authorization = \"{ALICE}\" }}\n[[endpoint]]\nmethod = \"DELETE\"\npath = \"/items/none\"\nallow = [\"user\"]\nabsent = true\n[[endpoint]]\npath = \"/gone\"\nallow = [\"user\"]\nabsent = true\n"
    );
    let r = probe_text(&text, fast()).await;
    assert_set(&r, &[("endpoint-missing", "GET /gone", "user")]);
    assert_eq!(r.outcome("DELETE /items/none"), Some(Outcome::Ok));
    let bad = spec::parse(&format!(
        "target = \"{t}\"\n[[endpoint]]\npath = \"/h\"\npublic = true\nabsent = true\n"
    ))
    .unwrap_err();
    assert!(bad.0[0].message.contains("`absent`"), "{bad:?}");
    assert_eq!(bad.0[0].line, Some(5));
}

// 2. An allowed persona redirected to a sign-in page, or answered 5xx, is reported.
#[tokio::test]
async fn d2_allowed_persona_redirected_or_failing() {
    let t = serve(Arc::new(|s: &Seen| {
        match (s.basic_user(), s.path.as_str()) {
            (Some(_), "/a") => resp(302, &[("location", "/login")], ""),
            (Some(_), "/b") => resp(500, &[], "oops"),
            (Some(_), _) => resp(404, &[], ""),
            (None, _) => resp(401, &[BASIC_CHALLENGE], ""),
        }
    }))
    .await;
    let text = format!(
        "target = \"{t}\"\n[personas.user]\nheaders = {{ Authorization = \"{ALICE}\" }}\n[[endpoint]]\npath = \"/a\"\nallow = [\"user\"]\n[[endpoint]]\npath = \"/b\"\nallow = [\"user\"]\n"
    );
    let r = probe_text(&text, fast()).await;
    assert_set(
        &r,
        &[
            ("allowed-refused", "GET /a", "user"),
            ("server-error", "GET /b", "user"),
        ],
    );
}

// 3. An unreachable target is not `ok`/PASS: every endpoint is incomplete, in every format.
#[tokio::test]
async fn d3_unanswered_requests_make_the_run_incomplete() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let r = probe_text(&format!("target = \"http://{addr}\"\n{BASIC_SPEC}"), fast()).await;
    assert_eq!(r.outcome("GET /items"), Some(Outcome::Incomplete));
    assert!(r.failed());
    let table = r.render(Format::Table);
    assert!(
        table.contains("incomplete") && !table.contains("PASS"),
        "{table}"
    );
    let json: serde_json::Value = serde_json::from_str(&r.render(Format::Json)).unwrap();
    assert_eq!(json["summary"]["passed"], false);
    assert_eq!(json["summary"]["results"][0]["result"], "incomplete");
    let junit = r.render(Format::Junit);
    assert!(junit.contains("type=\"incomplete\""), "{junit}");
    let sarif: serde_json::Value = serde_json::from_str(&r.render(Format::Sarif)).unwrap();
    assert_eq!(
        sarif["runs"][0]["invocations"][0]["executionSuccessful"],
        false
    );
    assert!(r.render(Format::Html).contains("incomplete"));
}

// 3. Timeouts on most requests: the endpoint is incomplete although some were answered.
#[tokio::test]
async fn d3_timeouts_make_an_endpoint_incomplete() {
    // Answers without credentials at once, everything else too late.
    let router = Router::new().fallback(|req: Request<Body>| async move {
        if req.headers().contains_key("authorization") {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        resp(401, &[BASIC_CHALLENGE], "")
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, router).await });
    let r = probe_text(
        &format!("target = \"http://{addr}\"\n{BASIC_SPEC}"),
        Limits {
            timeout: Duration::from_millis(200),
            ..fast()
        },
    )
    .await;
    assert_eq!(r.outcome("GET /items"), Some(Outcome::Incomplete));
    assert!(r.failed());
    assert!(!r.unreachable());
    assert!(r.render(Format::Table).contains("FAIL: incomplete"));
}

/// Basic routes and Bearer routes in one server; each scheme unknown to the other routes.
fn mixed_api(s: &Seen) -> Response<Body> {
    match s.path.as_str() {
        "/open" => resp(200, &[], "{}"),
        "/basic" => match s.basic_user() {
            Some(_) => resp(200, &[], "{}"),
            None => resp(401, &[BASIC_CHALLENGE], ""),
        },
        "/bearer" => match s.auth() {
            "Bearer svc-token" => resp(200, &[], "{}"),
            "" => resp(401, &[BEARER_CHALLENGE], ""),
            _ => resp(401, &[BAD_TOKEN], ""),
        },
        _ => resp(404, &[], ""),
    }
}

// 4. Personas scoped per endpoint (`personas`) and per scheme (`auth`).
#[tokio::test]
async fn d4_personas_scoped_by_scheme_and_by_name() {
    let t = serve(Arc::new(mixed_api)).await;
    let text = format!(
        r#"target = "{t}"
[personas.user]
headers = {{ Authorization = "{ALICE}" }}
[personas.svc]
headers = {{ Authorization = "Bearer svc-token" }}
[[endpoint]]
path = "/basic"
auth = ["basic"]
allow = ["user"]
[[endpoint]]
path = "/bearer"
personas = ["svc"]
allow = ["svc"]
"#
    );
    let r = probe_text(&text, fast()).await;
    assert_set(&r, &[]);
    assert_eq!(r.outcome("GET /basic"), Some(Outcome::Ok));
    assert_eq!(r.outcome("GET /bearer"), Some(Outcome::Ok));
    // A persona allowed but outside the scope is a spec error.
    let bad = text.replace("allow = [\"svc\"]", "allow = [\"user\"]");
    let errs = spec::parse(&bad).unwrap_err().0;
    assert!(errs[0].message.contains("not sent here"), "{errs:?}");
}

// 4. OpenAPI (YAML): `securitySchemes` + per-operation `security` decide who is sent where.
#[tokio::test]
async fn d4_openapi_security_schemes_choose_the_personas() {
    let t = serve(Arc::new(mixed_api)).await;
    let text = format!(
        "target = \"{t}\"\n[personas.user]\nheaders = {{ Authorization = \"{ALICE}\" }}\n[personas.svc]\nheaders = {{ Authorization = \"Bearer svc-token\" }}\n"
    );
    let mut spec = spec::parse(&text).unwrap();
    let yaml = r#"
openapi: 3.0.3
info: {title: mixed, version: "1"}
components:
  securitySchemes:
    basicAuth: {type: http, scheme: basic}
    tokenAuth: {type: http, scheme: bearer}
security:
  - tokenAuth: []
paths:
  /open:
    get: {security: []}
  /basic:
    get:
      security:
        - basicAuth: []
  /bearer:
    get: {}
"#;
    spec.endpoints = gatehouse_probe::openapi::endpoints(yaml, &spec.personas).unwrap();
    let scopes: Vec<(String, Vec<String>)> = spec
        .endpoints
        .iter()
        .map(|e| (e.label(), e.personas.clone()))
        .collect();
    assert_eq!(
        scopes,
        vec![
            (
                "GET /open".to_owned(),
                vec!["user".to_owned(), "svc".to_owned()]
            ),
            ("GET /basic".to_owned(), vec!["user".to_owned()]),
            ("GET /bearer".to_owned(), vec!["svc".to_owned()]),
        ]
    );
    let r = gatehouse_probe::run(
        &spec,
        spec.target.clone().unwrap(),
        Options {
            limits: fast(),
            aggressive: false,
            progress: None,
        },
    )
    .await;
    assert_set(&r, &[]);
    assert!(!r.failed());
}

/// Bearer JWTs "verified" by their exact string, except that `alg: none` tokens are taken
/// at their word (the bug); `/admin` is for `admin` only.
fn unsigned_api(s: &Seen) -> Response<Body> {
    let Some(tok) = s.auth().strip_prefix("Bearer ") else {
        return resp(401, &[BEARER_CHALLENGE], "");
    };
    let parts: Vec<&str> = tok.split('.').collect();
    let claims = |i: usize| {
        parts
            .get(i)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let who = if tok == jwt("admin") {
        "admin"
    } else if tok == jwt("bob") {
        "bob"
    } else if claims(0).contains(r#""alg":"none""#) {
        if claims(1).contains(r#""sub":"admin""#) {
            "admin"
        } else {
            "bob"
        }
    } else {
        return resp(401, &[BAD_TOKEN], "");
    };
    match who {
        "admin" => resp(200, &[], "{}"),
        _ => resp(403, &[], r#"{"error":"forbidden"}"#),
    }
}

// 5. Forged tokens from every JWT persona; an unsigned token accepted as a low-privilege
//    user and refused by role (403) is `token-accepted-unsigned`, one finding for both.
#[tokio::test]
async fn d5_unsigned_token_refused_by_role_is_still_accepted() {
    let t = serve(Arc::new(unsigned_api)).await;
    let text = format!(
        "target = \"{t}\"\n[personas.admin]\nheaders = {{ Authorization = \"Bearer {}\" }}\n[personas.bob]\nheaders = {{ Authorization = \"Bearer {}\" }}\n[[endpoint]]\npath = \"/admin\"\nallow = [\"admin\"]\n",
        jwt("admin"),
        jwt("bob")
    );
    let r = probe_text(&text, fast()).await;
    assert_set(
        &r,
        &[
            ("token-accepted-unsigned", "GET /admin", "alg-none(admin)"),
            ("token-accepted-unsigned", "GET /admin", "alg-none(bob)"),
        ],
    );
    assert_eq!(
        r.findings
            .iter()
            .filter(|f| f.check.id() == "token-accepted-unsigned")
            .count(),
        1,
        "one root cause, one finding"
    );
}

// 5. One 403-for-everything server: one finding with every piece of evidence.
#[tokio::test]
async fn d5_one_root_cause_is_one_finding() {
    let t = serve(Arc::new(|s: &Seen| match s.basic_user() {
        Some(_) => resp(200, &[], "[]"),
        None => resp(403, &[], r#"{"detail":"Not authenticated"}"#),
    }))
    .await;
    let r = probe_text(&format!("target = \"{t}\"\n{BASIC_SPEC}"), fast()).await;
    assert_set(
        &r,
        &[
            ("invalid-credentials-not-401", "GET /items", "anonymous"),
            ("invalid-credentials-not-401", "GET /items", "garbage-token"),
            (
                "invalid-credentials-not-401",
                "GET /items",
                "wrong-password(user)",
            ),
        ],
    );
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].all_evidence().len(), 3);
    // 8. Evidence shows the body's message whatever member carries it.
    assert_eq!(r.findings[0].evidence["message"], "Not authenticated");
    assert!(
        r.render(Format::Table)
            .contains("message: Not authenticated")
    );
}

// 6. No `allow` is not "nobody": it is an error. `allow = []` says nobody.
#[test]
fn d6_endpoint_without_allow_is_an_error() {
    let errs = spec::parse("[[endpoint]]\npath = \"/x\"\n").unwrap_err().0;
    assert_eq!(errs[0].line, Some(1));
    assert!(errs[0].message.contains("needs `allow"), "{errs:?}");
    assert!(spec::parse("[[endpoint]]\npath = \"/x\"\nallow = []\n").is_ok());
}

// 6. The existence check asks below the forbidden path, also at the root; the progress
//    total is the plan, fixed before the first request.
#[tokio::test]
async fn d6_existence_below_a_root_path_and_a_fixed_progress_total() {
    let t = serve(Arc::new(|s: &Seen| {
        match (s.basic_user(), s.path.as_str()) {
            (None, _) => resp(401, &[BASIC_CHALLENGE], ""),
            (Some(_), "/admin") => resp(403, &[], ""),
            (Some(_), _) => resp(404, &[], ""),
        }
    }))
    .await;
    let text = format!(
        "target = \"{t}\"\n[personas.user]\nheaders = {{ Authorization = \"{ALICE}\" }}\n[[endpoint]]\npath = \"/admin\"\nallow = []\n"
    );
    let spec = spec::parse(&text).unwrap();
    let seen: Arc<Mutex<Vec<(usize, usize)>>> = Arc::default();
    let s2 = Arc::clone(&seen);
    let r = gatehouse_probe::run(
        &spec,
        spec.target.clone().unwrap(),
        Options {
            limits: fast(),
            aggressive: false,
            progress: Some(Arc::new(move |p: &gatehouse_probe::Progress| {
                s2.lock().unwrap().push((p.done, p.total));
            })),
        },
    )
    .await;
    assert_set(&r, &[("existence-leak", "GET /admin", "user")]);
    let f = &r.findings[0];
    assert!(
        f.evidence["request"]["url"]
            .as_str()
            .unwrap()
            .ends_with("/admin/gatehouse-probe-missing-0")
    );
    let seen = seen.lock().unwrap();
    let total = seen[0].1;
    assert!(seen.iter().all(|(_, t)| *t == total), "{seen:?}");
    assert_eq!(seen.len(), total);
    assert_eq!(r.requests, total);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A Digest server (RFC 7616, qop=auth): `/md5` offers MD5 only, `/sha` SHA-256 only.
fn digest_api(s: &Seen) -> Response<Body> {
    let sha = s.path == "/sha";
    let h = |x: &str| {
        if sha {
            hex(&Sha256::digest(x.as_bytes()))
        } else {
            hex(&Md5::digest(x.as_bytes()))
        }
    };
    let alg = if sha { "SHA-256" } else { "MD5" };
    let challenge =
        format!(r#"Digest realm="zoo", qop="auth", algorithm={alg}, nonce="n-{alg}", opaque="o""#);
    let refuse = || resp(401, &[("www-authenticate", challenge.as_str())], "");
    let Some(params) = s.auth().strip_prefix("Digest ") else {
        return refuse();
    };
    let get = |k: &str| {
        params.split(", ").find_map(|p| {
            let (n, v) = p.split_once('=')?;
            (n == k).then(|| v.trim_matches('"').to_owned())
        })
    };
    let (Some(user), Some(nonce), Some(uri), Some(nc), Some(cnonce), Some(response)) = (
        get("username"),
        get("nonce"),
        get("uri"),
        get("nc"),
        get("cnonce"),
        get("response"),
    ) else {
        return refuse();
    };
    let ha1 = h(&format!("{user}:zoo:alicepw"));
    let ha2 = h(&format!("{}:{uri}", s.method));
    let want = h(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    if user == "alice"
        && response == want
        && uri == s.path
        && get("algorithm").as_deref() == Some(alg)
    {
        resp(200, &[], "{}")
    } else {
        refuse()
    }
}

// 7. Digest personas, both algorithms; the wrong password is a Digest one too.
#[tokio::test]
async fn d7_digest_personas_md5_and_sha256() {
    let t = serve(Arc::new(digest_api)).await;
    let text = format!(
        "target = \"{t}\"\n[personas.alice]\ndigest = {{ user = \"alice\", password = \"alicepw\" }}\n[[endpoint]]\npath = \"/md5\"\nallow = [\"alice\"]\n[[endpoint]]\npath = \"/sha\"\nallow = [\"alice\"]\n"
    );
    let r = probe_text(&text, fast()).await;
    assert_set(&r, &[]);
    assert_eq!(r.outcome("GET /md5"), Some(Outcome::Ok));
    assert_eq!(r.outcome("GET /sha"), Some(Outcome::Ok));
    // anonymous, alice (2), garbage, wrong-password(alice) (2), preflight — per endpoint.
    assert_eq!(r.requests, 2 * 7);
    // Without the right password the persona is refused, and the probe says so.
    let bad = text.replace("password = \"alicepw\"", "password = \"nope\"");
    let r = probe_text(&bad, fast()).await;
    assert_set(
        &r,
        &[
            ("allowed-refused", "GET /md5", "alice"),
            ("allowed-refused", "GET /sha", "alice"),
        ],
    );
}

// 7. Sign-in steps (a form that sets a cookie, JSON that returns a token) and `${ENV}`.
#[tokio::test]
async fn d7_login_steps_and_environment_secrets() {
    let pw = env!("CARGO_PKG_NAME");
    let t = serve(Arc::new(move |s: &Seen| {
        match (s.method.as_str(), s.path.as_str()) {
            ("POST", "/login") if s.body == format!("user=bob&password={pw}") => resp(
                303,
                &[
                    ("set-cookie", "sid=s3cret; Path=/; HttpOnly"),
                    ("location", "/"),
                ],
                "",
            ),
            ("POST", "/token") if s.body == format!(r#"{{"user":"carol","password":"{pw}"}}"#) => {
                resp(
                    200,
                    &[("content-type", "application/json")],
                    r#"{"data":{"access_token":"tok-carol"}}"#,
                )
            }
            ("POST", _) => resp(401, &[BEARER_CHALLENGE], ""),
            (_, "/me") => {
                let cookie = s
                    .headers
                    .get("cookie")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if cookie == "sid=s3cret" || s.auth() == "Bearer tok-carol" {
                    resp(200, &[], "{}")
                } else if s.auth().starts_with("Bearer ") {
                    resp(401, &[BAD_TOKEN], "")
                } else {
                    resp(401, &[BEARER_CHALLENGE], "")
                }
            }
            _ => resp(404, &[], ""),
        }
    }))
    .await;
    let text = format!(
        r#"target = "{t}"
[personas.bob.login]
path = "/login"
form = {{ user = "bob", password = "${{CARGO_PKG_NAME}}" }}
cookie = "sid"
[personas.carol.login]
path = "/token"
json = {{ user = "carol", password = "${{CARGO_PKG_NAME}}" }}
token = "/data/access_token"
[[endpoint]]
path = "/me"
allow = ["bob", "carol"]
"#
    );
    let r = probe_text(&text, fast()).await;
    assert_set(&r, &[]);
    assert_eq!(r.outcome("GET /me"), Some(Outcome::Ok));
    // The secret never reaches a report.
    assert!(!r.render(Format::Json).contains("s3cret"));
    // A failed sign-in leaves the persona's endpoints incomplete, not silently skipped.
    let r = probe_text(&text.replace("/data/access_token", "/nope"), fast()).await;
    assert_eq!(r.outcome("GET /me"), Some(Outcome::Incomplete));
    assert!(
        r.failures
            .iter()
            .any(|f| f.endpoint == "sign-in" && f.persona == "carol")
    );
    // An unset variable is an error with its line.
    let errs = spec::parse(
        "[personas.x]\nheaders = { Authorization = \"Bearer ${GATEHOUSE_PROBE_SURELY_UNSET}\" }\n",
    )
    .unwrap_err()
    .0;
    assert_eq!(errs[0].line, Some(2));
    assert!(
        errs[0]
            .message
            .contains("`GATEHOUSE_PROBE_SURELY_UNSET` is not set"),
        "{errs:?}"
    );
}

// 8. Internals in error bodies, versions in headers, and a bad Bearer token's 401 without
//    `error="invalid_token"`.
#[tokio::test]
async fn d8_leaks_and_the_invalid_token_error() {
    let t = serve(Arc::new(|s: &Seen| {
        let server = ("server", "nginx/1.22.1");
        match s.auth() {
            "Bearer svc-token" => resp(200, &[server], "{}"),
            "" => resp(401, &[BEARER_CHALLENGE, server], r#"{"message":"Unauthorized"}"#),
            _ => resp(
                401,
                &[BEARER_CHALLENGE, server],
                "UnauthorizedError: jwt malformed\n    at /app/node_modules/express-jwt/dist/index.js:1:1",
            ),
        }
    }))
    .await;
    let text = format!(
        "target = \"{t}\"\n[personas.svc]\nheaders = {{ Authorization = \"Bearer svc-token\" }}\n[[endpoint]]\npath = \"/x\"\nallow = [\"svc\"]\n"
    );
    let r = probe_text(&text, fast()).await;
    assert_set(
        &r,
        &[
            ("version-disclosed", "GET /x", "anonymous"),
            ("invalid-token-no-error", "GET /x", "garbage-token"),
            ("internals-leaked", "GET /x", "garbage-token"),
        ],
    );
    let v = r
        .findings
        .iter()
        .find(|f| f.check.id() == "version-disclosed")
        .unwrap();
    assert_eq!(v.evidence["message"], "Unauthorized");
}
