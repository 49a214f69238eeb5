//! The probe against purpose-built targets on loopback: a clean API, and the same API with
//! one misbehaviour at a time. Each test asserts the exact set of findings.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::result_large_err
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{expect, fast, set};
use gatehouse_probe::{Format, Limits, Options, Report, spec};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bug {
    None,
    Anonymous403,
    NoChallenge,
    MalformedChallenge,
    BearerErrorOnMissing,
    WrongPassword403,
    InvalidToken500,
    AcceptUnsigned,
    AcceptTampered,
    Forbidden401,
    Bypass,
    ChallengeOn403,
    PreflightChallenged,
    ExistenceLeak,
    RedirectForApi,
    NoThrottling,
}

struct App {
    bug: Bug,
    failures: AtomicUsize,
}

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

/// The admin's token: the target accepts exactly this string (a stand-in for verification).
fn admin_token() -> String {
    format!(
        "{}.{}.{}",
        b64(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64(r#"{"sub":"admin","exp":4102444800}"#),
        b64("signature-bytes")
    )
}

fn expired_token() -> String {
    format!(
        "{}.{}.{}",
        b64(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64(r#"{"sub":"admin","exp":1}"#),
        b64("other-signature")
    )
}

const USER_BASIC: &str = "Basic YWxpY2U6YWxpY2Vwdw=="; // alice:alicepw

fn respond(status: StatusCode, headers: &[(&str, &str)]) -> Response<Body> {
    // The target does CORS: every answer allows any origin (so the preflight check applies).
    let mut b = Response::builder()
        .status(status)
        .header("content-type", "application/problem+json")
        .header("access-control-allow-origin", "*");
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    let error = match status.as_u16() {
        401 => "invalid_token",
        403 => "forbidden",
        _ => "other",
    };
    b.body(Body::from(format!(
        r#"{{"status":{},"error":"{error}"}}"#,
        status.as_u16()
    )))
    .unwrap()
}

const CHALLENGE: &str = r#"Bearer realm="api", Basic realm="api", charset="UTF-8""#;

/// Who the credentials prove, or the refusal to send.
fn identify(app: &App, h: &HeaderMap) -> Result<&'static str, Response<Body>> {
    let fail = |status: StatusCode, challenge: &str| {
        app.failures.fetch_add(1, Ordering::Relaxed);
        let hs: Vec<(&str, &str)> = match app.bug {
            Bug::NoChallenge => vec![],
            Bug::MalformedChallenge => vec![("www-authenticate", "Basic realm=my api")],
            _ => vec![("www-authenticate", challenge)],
        };
        Err(respond(status, &hs))
    };
    if app.bug != Bug::NoThrottling && app.failures.load(Ordering::Relaxed) >= 15 {
        return Err(respond(
            StatusCode::TOO_MANY_REQUESTS,
            &[("retry-after", "60")],
        ));
    }
    let Some(auth) = h.get("authorization").and_then(|v| v.to_str().ok()) else {
        return match app.bug {
            Bug::Anonymous403 => Err(respond(StatusCode::FORBIDDEN, &[])),
            Bug::RedirectForApi => Err(respond(StatusCode::FOUND, &[("location", "/login")])),
            Bug::BearerErrorOnMissing => fail(
                StatusCode::UNAUTHORIZED,
                r#"Bearer realm="api", error="invalid_token""#,
            ),
            _ => fail(StatusCode::UNAUTHORIZED, CHALLENGE),
        };
    };
    let invalid = r#"Bearer realm="api", error="invalid_token""#;
    if let Some(basic) = auth.strip_prefix("Basic ") {
        let raw = String::from_utf8(STANDARD.decode(basic).unwrap_or_default()).unwrap_or_default();
        if raw == "alice:alicepw" {
            return Ok("user");
        }
        if app.bug == Bug::WrongPassword403 && raw.starts_with("alice:") {
            app.failures.fetch_add(1, Ordering::Relaxed);
            return Err(respond(StatusCode::FORBIDDEN, &[]));
        }
        return fail(StatusCode::UNAUTHORIZED, CHALLENGE);
    }
    if let Some(tok) = auth.strip_prefix("Bearer ") {
        if tok == admin_token() {
            return Ok("admin");
        }
        let parts: Vec<&str> = tok.split('.').collect();
        let header = parts
            .first()
            .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
            .map(|h| String::from_utf8_lossy(&h).into_owned())
            .unwrap_or_default();
        if app.bug == Bug::AcceptUnsigned && header.contains(r#""alg":"none""#) {
            return Ok("admin");
        }
        let real: Vec<String> = admin_token().split('.').map(str::to_owned).collect();
        if app.bug == Bug::AcceptTampered
            && parts.len() == 3
            && parts[0] == real[0]
            && parts[2] == real[2]
        {
            return Ok("admin");
        }
        if app.bug == Bug::InvalidToken500 && tok == expired_token() {
            return Err(respond(StatusCode::INTERNAL_SERVER_ERROR, &[]));
        }
        return fail(StatusCode::UNAUTHORIZED, invalid);
    }
    fail(StatusCode::UNAUTHORIZED, CHALLENGE)
}

async fn handle(State(app): State<Arc<App>>, req: Request<Body>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    if req.method() == Method::OPTIONS
        && req.headers().contains_key("access-control-request-method")
        && app.bug != Bug::PreflightChallenged
    {
        return respond(StatusCode::NO_CONTENT, &[]);
    }
    if path == "/health" {
        return respond(StatusCode::OK, &[]);
    }
    if path == "/slow" {
        tokio::time::sleep(Duration::from_secs(5)).await;
        return respond(StatusCode::OK, &[]);
    }
    let who = match identify(&app, req.headers()) {
        Ok(w) => w,
        Err(r) => return r,
    };
    match (path.as_str(), who) {
        ("/api/items", _) | ("/api/admin", "admin") => respond(StatusCode::OK, &[]),
        ("/api/admin", _) => match app.bug {
            Bug::Forbidden401 => {
                respond(StatusCode::UNAUTHORIZED, &[("www-authenticate", CHALLENGE)])
            }
            Bug::Bypass => respond(StatusCode::OK, &[]),
            Bug::ChallengeOn403 => respond(
                StatusCode::FORBIDDEN,
                &[("www-authenticate", r#"Bearer realm="api""#)],
            ),
            _ => respond(StatusCode::FORBIDDEN, &[]),
        },
        // Unknown paths: the clean target answers like a forbidden resource.
        _ if app.bug == Bug::ExistenceLeak => respond(StatusCode::NOT_FOUND, &[]),
        (_, "admin") => respond(StatusCode::NOT_FOUND, &[]),
        _ => respond(StatusCode::FORBIDDEN, &[]),
    }
}

async fn serve(bug: Bug) -> String {
    let app = Arc::new(App {
        bug,
        failures: AtomicUsize::new(0),
    });
    let router = Router::new().fallback(handle).with_state(app);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, router).await });
    format!("http://{addr}")
}

fn spec_text(target: &str) -> String {
    format!(
        r#"
target = "{target}"
[personas.user]
headers = {{ Authorization = "{USER_BASIC}" }}
[personas.admin]
headers = {{ Authorization = "Bearer {}" }}
[personas.expired]
headers = {{ Authorization = "Bearer {}" }}
invalid = true

[[endpoint]]
path = "/api/items"
allow = ["user", "admin"]
[[endpoint]]
path = "/api/admin"
allow = ["admin"]
[[endpoint]]
path = "/health"
public = true
"#,
        admin_token(),
        expired_token()
    )
}

async fn probe_with(bug: Bug, aggressive: bool, limits: Limits) -> Report {
    let target = serve(bug).await;
    let spec = spec::parse(&spec_text(&target)).unwrap();
    let t = spec.target.clone().unwrap();
    gatehouse_probe::run(
        &spec,
        t,
        Options {
            limits,
            aggressive,
            progress: None,
        },
    )
    .await
}

async fn assert_findings(bug: Bug, items: &[(&str, &str, &str)]) {
    let r = probe_with(bug, false, fast()).await;
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(
        set(&r),
        expect(items),
        "{bug:?}:\n{}",
        r.render(Format::Table)
    );
}

const ITEMS: &str = "GET /api/items";
const ADMIN: &str = "GET /api/admin";

#[tokio::test]
async fn clean_target_has_no_findings() {
    let r = probe_with(Bug::None, false, fast()).await;
    assert!(set(&r).is_empty(), "{}", r.render(Format::Table));
    assert!(!r.failed());
    assert_eq!(r.throttled, 0);
    // Per endpoint: anonymous, 3 personas, garbage, wrong password, alg none, tampered,
    // preflight; a sibling where a persona is refused; one request for the public one.
    assert_eq!(r.requests, 9 + 10 + 1);
}

#[tokio::test]
async fn anonymous_403() {
    assert_findings(
        Bug::Anonymous403,
        &[
            ("anonymous-not-401", ITEMS, "anonymous"),
            ("anonymous-not-401", ADMIN, "anonymous"),
        ],
    )
    .await;
}

#[tokio::test]
async fn unauthorized_without_challenge() {
    assert_findings(
        Bug::NoChallenge,
        &[
            ("challenge-missing", ITEMS, "anonymous"),
            ("challenge-missing", ADMIN, "anonymous"),
        ],
    )
    .await;
}

#[tokio::test]
async fn malformed_challenge() {
    assert_findings(
        Bug::MalformedChallenge,
        &[
            ("challenge-malformed", ITEMS, "anonymous"),
            ("challenge-malformed", ADMIN, "anonymous"),
        ],
    )
    .await;
}

#[tokio::test]
async fn bearer_error_without_token() {
    assert_findings(
        Bug::BearerErrorOnMissing,
        &[
            ("bearer-error-on-missing", ITEMS, "anonymous"),
            ("bearer-error-on-missing", ADMIN, "anonymous"),
        ],
    )
    .await;
}

#[tokio::test]
async fn wrong_password_403() {
    assert_findings(
        Bug::WrongPassword403,
        &[
            ("invalid-credentials-not-401", ITEMS, "wrong-password(user)"),
            ("invalid-credentials-not-401", ADMIN, "wrong-password(user)"),
        ],
    )
    .await;
}

#[tokio::test]
async fn invalid_persona_500() {
    assert_findings(
        Bug::InvalidToken500,
        &[
            ("invalid-credentials-not-401", ITEMS, "expired"),
            ("invalid-credentials-not-401", ADMIN, "expired"),
        ],
    )
    .await;
}

#[tokio::test]
async fn unsigned_token_accepted() {
    assert_findings(
        Bug::AcceptUnsigned,
        &[
            ("token-accepted-unsigned", ITEMS, "alg-none(admin)"),
            ("token-accepted-unsigned", ADMIN, "alg-none(admin)"),
        ],
    )
    .await;
}

#[tokio::test]
async fn tampered_token_accepted() {
    assert_findings(
        Bug::AcceptTampered,
        &[
            ("token-accepted-tampered", ITEMS, "tampered(admin)"),
            ("token-accepted-tampered", ADMIN, "tampered(admin)"),
        ],
    )
    .await;
}

#[tokio::test]
async fn low_privilege_gets_401() {
    assert_findings(Bug::Forbidden401, &[("forbidden-not-403", ADMIN, "user")]).await;
}

#[tokio::test]
async fn outsider_gets_through() {
    assert_findings(Bug::Bypass, &[("access-control-bypass", ADMIN, "user")]).await;
}

#[tokio::test]
async fn challenge_on_403() {
    assert_findings(Bug::ChallengeOn403, &[("challenge-on-403", ADMIN, "user")]).await;
}

#[tokio::test]
async fn preflight_challenged() {
    assert_findings(
        Bug::PreflightChallenged,
        &[
            ("preflight-challenged", ITEMS, "anonymous"),
            ("preflight-challenged", ADMIN, "anonymous"),
        ],
    )
    .await;
}

#[tokio::test]
async fn existence_leak() {
    assert_findings(Bug::ExistenceLeak, &[("existence-leak", ADMIN, "user")]).await;
}

#[tokio::test]
async fn redirect_for_api() {
    assert_findings(
        Bug::RedirectForApi,
        &[
            ("redirect-for-api", ITEMS, "anonymous"),
            ("redirect-for-api", ADMIN, "anonymous"),
        ],
    )
    .await;
}

#[tokio::test]
async fn throttling_only_with_aggressive() {
    let r = probe_with(Bug::NoThrottling, true, fast()).await;
    assert_eq!(
        set(&r),
        expect(&[("no-throttling", ITEMS, "wrong-password(user)")]),
        "{}",
        r.render(Format::Table)
    );
    assert!(set(&probe_with(Bug::NoThrottling, false, fast()).await).is_empty());
    // The clean target throttles: nothing to report.
    let r = probe_with(Bug::None, true, fast()).await;
    assert!(set(&r).is_empty(), "{}", r.render(Format::Table));
    assert!(r.throttled >= 1);
}

#[tokio::test]
async fn budget_and_timeout_bound_the_run() {
    let r = probe_with(
        Bug::None,
        false,
        Limits {
            max_requests: 3,
            ..fast()
        },
    )
    .await;
    assert_eq!(r.requests, 3);
    assert!(r.failures.iter().any(|f| f.error.contains("budget")));

    let target = serve(Bug::None).await;
    let text = format!("target = \"{target}\"\n[[endpoint]]\npath = \"/slow\"\npublic = true\n");
    let spec = spec::parse(&text).unwrap();
    let limits = Limits {
        timeout: Duration::from_millis(200),
        ..fast()
    };
    let started = std::time::Instant::now();
    let r = gatehouse_probe::run(
        &spec,
        spec.target.clone().unwrap(),
        Options {
            limits,
            aggressive: false,
            progress: None,
        },
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(r.failures.len(), 1);
    assert!(
        r.failures[0].error.contains("timed out"),
        "{:?}",
        r.failures
    );
    assert!(r.unreachable());
}

#[tokio::test]
async fn rate_limit_spaces_requests() {
    let started = std::time::Instant::now();
    let r = probe_with(Bug::None, false, Limits { rate: 50, ..fast() }).await;
    // 20 requests at 50/s: the last starts no earlier than 19 intervals of 20 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(380),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.requests, 20);
}

#[tokio::test]
async fn reports_in_every_format() {
    let mut r = probe_with(Bug::Bypass, false, fast()).await;
    r.spec_uri = Some("probe.toml".to_owned());
    assert!(r.failed());
    let json: serde_json::Value = serde_json::from_str(&r.render(Format::Json)).unwrap();
    let f = &json["findings"][0];
    assert_eq!(f["check"], "access-control-bypass");
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["endpoint"], ADMIN);
    assert_eq!(f["persona"], "user");
    assert_eq!(f["evidence"]["status"], 200);
    // Credentials never appear in reports.
    assert_eq!(
        f["evidence"]["request"]["headers"]["authorization"],
        "Basic <redacted>"
    );
    assert!(!r.render(Format::Json).contains("YWxpY2U6"));
    assert_eq!(json["summary"]["passed"], false);
    assert_eq!(json["summary"]["by_severity"]["critical"], 1);

    let junit = r.render(Format::Junit);
    // Per endpoint: every check but `no-throttling` (not aggressive), plus `answered`.
    assert_eq!(junit.matches("<testcase ").count(), 3 * 21);
    assert_eq!(junit.matches("<failure ").count(), 1);
    assert!(junit.contains("classname=\"GET /api/admin\" name=\"access-control-bypass\""));

    let sarif: serde_json::Value = serde_json::from_str(&r.render(Format::Sarif)).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(
        sarif["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .unwrap()
            .len(),
        21
    );
    let res = &sarif["runs"][0]["results"][0];
    assert_eq!(res["ruleId"], "access-control-bypass");
    assert_eq!(res["level"], "error");
    assert_eq!(
        res["locations"][0]["physicalLocation"]["region"]["startLine"],
        14
    );

    let html = r.render(Format::Html);
    assert!(html.starts_with("<!doctype html>"));
    assert!(!html.contains("<script") && !html.contains("http-equiv"));
    assert!(html.contains("access-control-bypass"));

    let table = r.render(Format::Table);
    assert!(table.contains("critical   access-control-bypass"));
    assert!(table.contains("FAIL"));
}

#[tokio::test]
async fn openapi_endpoints() {
    let target = serve(Bug::Bypass).await;
    let mut spec = spec::parse(&spec_text(&target)).unwrap();
    // Basic or Bearer: every persona is in scope (a `basic`-only persona would not be sent
    // to a Bearer-only operation).
    let doc = r#"{"openapi":"3.0.0","security":[{"bearer":[]},{"basic":[]}],"paths":{
        "/health":{"get":{"security":[]}},
        "/api/items":{"get":{}},
        "/api/admin":{"get":{"x-probe-allow":["admin"]}}}}"#;
    spec.endpoints = gatehouse_probe::openapi::endpoints(doc, &spec.personas).unwrap();
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
    assert_eq!(set(&r), expect(&[("access-control-bypass", ADMIN, "user")]));
}
