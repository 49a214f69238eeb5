//! `gatehouse mock` over real sockets: stubs (simple and WireMock), priorities, header
//! matchers, the request journal, reload on change, stub-file errors with lines — and every
//! checked preset against the real gateway's answer in the same situation, so the two cannot
//! drift.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use common::{Harness, Resp, basic, send_to};
use gatehouse_core::Scheme;
use gatehouse_server::ids::now;
use gatehouse_server::mock::{self, Mock, MockError, MockOptions, PresetSpec};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::watch;

/// A mock on a random loopback port, stopped on drop.
struct Running {
    addr: SocketAddr,
    mock: Arc<Mock>,
    stop: watch::Sender<bool>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn start(opts: MockOptions) -> Running {
    gatehouse_server::install_crypto();
    let mock = Mock::new(opts).unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (stop, rx) = watch::channel(false);
    tokio::spawn(mock::serve(Arc::clone(&mock), l, rx));
    Running { addr, mock, stop }
}

fn with_presets(presets: &[&str], schemes: &[Scheme]) -> MockOptions {
    MockOptions {
        presets: presets
            .iter()
            .map(|p| PresetSpec::parse(p).unwrap())
            .collect(),
        schemes: schemes.to_vec(),
        ..MockOptions::default()
    }
}

async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    send_to(
        &client,
        addr,
        method,
        path,
        headers,
        Body::from(body.to_owned()),
    )
    .await
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gatehouse-mock-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("stubs.json");
    std::fs::write(&p, text).unwrap();
    p
}

/// The problem body without the members that differ per response.
fn stable_body(r: &Resp) -> Value {
    let mut b = r.json();
    for k in [
        "timestamp",
        "request_id",
        "expired_at",
        "suspended_at",
        "reason",
        "retry_after",
    ] {
        b.as_object_mut().unwrap().remove(k);
    }
    b
}

/// A preset, the mock's schemes, and the gateway's situation: method, path, headers.
type Case<'a> = (
    &'a str,
    &'a [Scheme],
    &'a str,
    &'a str,
    Vec<(&'a str, String)>,
);

const BEARER_API_BASIC: &[Scheme] = &[Scheme::Bearer, Scheme::ApiKey, Scheme::Basic];
const BEARER_BASIC_API: &[Scheme] = &[Scheme::Bearer, Scheme::Basic, Scheme::ApiKey];
const BEARER_API: &[Scheme] = &[Scheme::Bearer, Scheme::ApiKey];

#[tokio::test(flavor = "multi_thread")]
async fn presets_answer_exactly_what_the_gateway_answers() {
    let h = Harness::start().await;
    let expired = h.own_token("bob", &[], "pwd", now() - 7200, 600).await;
    let pwd = h.own_token("bob", &["posts:read"], "pwd", now(), 600).await;
    let read_only = h.api_key("bob", &["posts:write"], true, None).await;
    let bearer = |t: &str| format!("Bearer {t}");
    // (preset, mock schemes, the gateway's situation: method, path, headers)
    let cases: Vec<Case<'_>> = vec![
        (
            "missing-credentials",
            BEARER_API_BASIC,
            "GET",
            "/api/posts",
            vec![],
        ),
        (
            "unsupported-scheme",
            BEARER_API_BASIC,
            "GET",
            "/api/posts",
            vec![("Authorization", "Negotiate YIIB".into())],
        ),
        (
            "invalid-request",
            BEARER_API_BASIC,
            "GET",
            "/api/posts",
            vec![("Authorization", "Bearer".into())],
        ),
        (
            "invalid-token",
            BEARER_API_BASIC,
            "GET",
            "/api/posts",
            vec![("Authorization", "Bearer garbage".into())],
        ),
        (
            "expired-token",
            BEARER_API_BASIC,
            "GET",
            "/api/posts",
            vec![("Authorization", bearer(&expired))],
        ),
        (
            "invalid-credentials",
            BEARER_BASIC_API,
            "GET",
            "/api/admin/x",
            vec![("Authorization", basic("alice", "nope"))],
        ),
        (
            "account-suspended",
            BEARER_API_BASIC,
            "GET",
            "/api/posts",
            vec![("Authorization", basic("carol", "carol-pw"))],
        ),
        (
            "step-up",
            BEARER_API,
            "GET",
            "/billing/invoices",
            vec![("Authorization", bearer(&pwd))],
        ),
        (
            "insufficient-role=admin",
            BEARER_BASIC_API,
            "GET",
            "/api/admin/x",
            vec![("Authorization", basic("bob", "bob-pw"))],
        ),
        (
            "insufficient-scope=posts:write",
            BEARER_API_BASIC,
            "POST",
            "/api/posts",
            vec![("Authorization", bearer(&pwd))],
        ),
        (
            "tenant-mismatch",
            BEARER_BASIC_API,
            "GET",
            "/tenants/globex/x",
            vec![("Authorization", basic("alice", "alice-pw"))],
        ),
        (
            "not-owner",
            &[Scheme::Bearer, Scheme::Basic],
            "GET",
            "/users/alice/x",
            vec![("Authorization", basic("bob", "bob-pw"))],
        ),
        (
            "read-only",
            BEARER_API_BASIC,
            "DELETE",
            "/api/posts/1",
            vec![("X-API-Key", read_only.clone())],
        ),
        (
            "not-found",
            &[Scheme::Bearer, Scheme::Basic],
            "GET",
            "/internal/metrics",
            vec![],
        ),
        ("ip-blocked", BEARER_API, "GET", "/blocked/x", vec![]),
        ("forbidden-path", BEARER_API, "GET", "/.git/config", vec![]),
        (
            "upstream-timeout",
            BEARER_API,
            "GET",
            "/slow",
            vec![("Authorization", bearer(&pwd))],
        ),
    ];
    for (preset, schemes, method, path, headers) in cases {
        let hs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let real = h.send(method, path, &hs).await;
        let m = start(with_presets(&[preset], schemes)).await;
        // Same request to the mock: the preset answers whatever was sent.
        let fake = call(m.addr, method, path, &hs, "").await;
        assert_eq!(fake.status, real.status, "{preset}: {}", real.text);
        assert_eq!(fake.challenges(), real.challenges(), "{preset}");
        assert_eq!(fake.error(), real.error(), "{preset}");
        assert_eq!(stable_body(&fake), stable_body(&real), "{preset}");
        for header in [
            "content-type",
            "cache-control",
            "x-gatehouse-error",
            "retry-after",
        ] {
            assert_eq!(
                fake.header(header),
                real.header(header),
                "{preset}: {header}"
            );
        }
        assert_eq!(
            fake.json()["request_id"].as_str(),
            fake.header("x-request-id")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limited_and_browser_presets_match_the_gateway() {
    let quota =
        "[[route]]\nname = \"quota\"\npath = \"/quota/**\"\nquota = { max = 1, per = \"1m\" }\n";
    let h = Harness::start_with(quota).await;
    let token = h.own_token("bob", &[], "pwd", now(), 600).await;
    let auth = format!("Bearer {token}");
    let _ = h.get("/quota/x", &[("Authorization", &auth)]).await;
    let real = h.get("/quota/x", &[("Authorization", &auth)]).await;
    let m = start(with_presets(&["rate-limited"], BEARER_API)).await;
    let fake = call(m.addr, "GET", "/quota/x", &[("Authorization", &auth)], "").await;
    assert_eq!((fake.status, fake.error()), (real.status, real.error()));
    assert_eq!(fake.challenges(), real.challenges());
    for header in [
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
    ] {
        assert!(
            real.header(header).is_some() && fake.header(header).is_some(),
            "{header}"
        );
    }
    // A browser asking for HTML gets the same status and challenges, and an HTML page.
    let html = [("Accept", "text/html")];
    let real = h.get("/api/posts", &html).await;
    let m = start(with_presets(&["missing-credentials"], BEARER_API_BASIC)).await;
    let fake = call(m.addr, "GET", "/api/posts", &html, "").await;
    assert_eq!(fake.status, real.status);
    assert_eq!(fake.challenges(), real.challenges());
    assert_eq!(fake.header("content-type"), real.header("content-type"));
}

#[tokio::test]
async fn stubs_win_over_presets_and_presets_take_paths() {
    let file = temp_file(
        "precedence",
        r#"[{"method": "GET", "url": "/api/me", "status": 200, "body": {"name": "bob"}}]"#,
    );
    let mut opts = with_presets(&["step-up@/billing/**", "expired-token"], &[Scheme::Bearer]);
    opts.stubs = Some(file);
    let m = start(opts).await;
    let r = call(m.addr, "GET", "/api/me", &[], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"name": "bob"}));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        call(m.addr, "GET", "/billing/x", &[], "").await.error(),
        "insufficient_user_authentication"
    );
    assert_eq!(
        call(m.addr, "GET", "/other", &[], "").await.error(),
        "token_expired"
    );
    // Without presets, nothing matching is the mock's own 404.
    let m = start(MockOptions::default()).await;
    let r = call(m.addr, "GET", "/nothing", &[], "").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error(), "no_stub_matched");
}

#[tokio::test]
async fn wiremock_mappings_with_header_matchers_and_priorities() {
    let file = temp_file(
        "wiremock",
        r#"{"mappings": [
  {"request": {"method": "GET", "urlPathPattern": "/orders/[0-9]+"},
   "response": {"status": 404, "jsonBody": {"error": "no such order"}}},
  {"priority": 1,
   "request": {"method": "GET", "urlPath": "/orders/7",
               "headers": {"Authorization": {"equalTo": "Bearer good"}, "X-Tenant": {"contains": "acme"}}},
   "response": {"status": 200, "headers": {"Content-Type": "text/plain", "X-Order": "7"}, "body": "order 7"}}
]}"#,
    );
    let m = start(MockOptions {
        stubs: Some(file),
        ..MockOptions::default()
    })
    .await;
    let ok = [
        ("Authorization", "Bearer good"),
        ("X-Tenant", "tenant-acme-eu"),
    ];
    let r = call(m.addr, "GET", "/orders/7?expand=1", &ok, "").await;
    assert_eq!((r.status.as_u16(), r.text.as_str()), (200, "order 7"));
    assert_eq!(r.header("x-order"), Some("7"));
    let r = call(
        m.addr,
        "GET",
        "/orders/7",
        &[("Authorization", "Bearer good")],
        "",
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "no such order");
    let r = call(m.addr, "GET", "/orders/7x", &ok, "").await;
    assert_eq!(r.error(), "no_stub_matched");
}

#[tokio::test]
async fn journal_records_what_the_client_sent_and_can_be_cleared() {
    let m = start(with_presets(&["revoked-token"], &[Scheme::Bearer])).await;
    let r = call(
        m.addr,
        "POST",
        "/api/posts?draft=1",
        &[("Authorization", "Bearer t1"), ("X-A", "1"), ("X-A", "2")],
        "{\"title\":\"hi\"}",
    )
    .await;
    assert_eq!(r.error(), "token_revoked");
    let j = call(m.addr, "GET", mock::JOURNAL_PATH, &[], "").await;
    assert_eq!(j.status, 200);
    let entries = j.json();
    let e = &entries.as_array().unwrap()[0];
    assert_eq!(
        entries.as_array().unwrap().len(),
        1,
        "the journal's own requests are not journaled"
    );
    assert_eq!(e["method"], "POST");
    assert_eq!(e["url"], "/api/posts?draft=1");
    assert_eq!(e["headers"]["authorization"], "Bearer t1");
    assert_eq!(e["headers"]["x-a"], "1, 2");
    assert_eq!(e["body"], "{\"title\":\"hi\"}");
    assert_eq!(e["status"], 401);
    assert_eq!(
        e["answered_by"],
        json!({"kind": "preset", "name": "revoked-token"})
    );
    assert!(e["time"].as_str().unwrap().ends_with('Z'));
    let d = call(m.addr, "DELETE", mock::JOURNAL_PATH, &[], "").await;
    assert_eq!(d.status, 204);
    assert_eq!(
        call(m.addr, "GET", mock::JOURNAL_PATH, &[], "")
            .await
            .json(),
        json!([])
    );
    assert_eq!(m.mock.journal().entries().len(), 0);
}

#[tokio::test]
async fn a_changed_stub_file_is_reloaded_and_a_bad_one_keeps_the_old_stubs() {
    let file = temp_file("reload", r#"{"url": "/v", "body": "one"}"#);
    let m = start(MockOptions {
        stubs: Some(file.clone()),
        ..MockOptions::default()
    })
    .await;
    assert_eq!(call(m.addr, "GET", "/v", &[], "").await.text, "one");
    std::fs::write(&file, r#"{"url": "/v", "body": "two, longer"}"#).unwrap();
    let start_wait = Instant::now();
    loop {
        if call(m.addr, "GET", "/v", &[], "").await.text == "two, longer" {
            break;
        }
        assert!(
            start_wait.elapsed() < Duration::from_secs(10),
            "not reloaded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::fs::write(&file, "{\"url\": \"/v\",\n \"body\": }").unwrap();
    // Give the watcher several polls; the good stubs stay in force.
    tokio::time::sleep(mock::POLL_INTERVAL * 3).await;
    assert_eq!(call(m.addr, "GET", "/v", &[], "").await.text, "two, longer");
    assert!(
        matches!(m.mock.reload_if_changed(), Ok(false)),
        "a bad file is reported once"
    );
}

#[test]
fn a_bad_stub_file_is_refused_with_its_line() {
    let file = temp_file(
        "bad",
        "[\n  {\"url\": \"/a\"},\n  {\"url\": \"/b\", \"status\": \"ok\"}\n]\n",
    );
    let err = Mock::new(MockOptions {
        stubs: Some(file.clone()),
        ..MockOptions::default()
    })
    .unwrap_err();
    let MockError::Stubs { errors, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(errors[0].line, 3, "{err}");
    assert!(err.to_string().contains("line 3: stub 2"), "{err}");
    let missing = Mock::new(MockOptions {
        stubs: Some(file.with_file_name("absent.json")),
        ..MockOptions::default()
    })
    .unwrap_err();
    assert!(matches!(missing, MockError::Read { .. }));
}

/// Compares a preset with the gateway's real answer: status, challenges, `error`, the stable
/// body members (minus `extra`, which differ per response) and `Retry-After` presence.
async fn same_answer(preset: &str, schemes: &[Scheme], real: &Resp, extra: &[&str]) {
    let m = start(with_presets(&[preset], schemes)).await;
    let fake = call(m.addr, "GET", "/anything", &[], "").await;
    assert_eq!(fake.status, real.status, "{preset}: {}", real.text);
    assert_eq!(fake.challenges(), real.challenges(), "{preset}");
    assert_eq!(fake.error(), real.error(), "{preset}");
    let (mut a, mut b) = (stable_body(&fake), stable_body(real));
    for k in extra {
        a.as_object_mut().unwrap().remove(*k);
        b.as_object_mut().unwrap().remove(*k);
    }
    assert_eq!(a, b, "{preset}");
    assert_eq!(
        fake.header("retry-after").is_some(),
        real.header("retry-after").is_some(),
        "{preset}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_service_throttle_and_outage_presets_match_the_gateway() {
    // revoked-token: a real logout, then the token again.
    let h = Harness::start().await;
    let login = serde_json::json!({"username": "bob", "password": "bob-pw"}).to_string();
    let json_ct = [("Content-Type", "application/json")];
    let r = h
        .send_body("POST", "/auth/login", &json_ct, Body::from(login.clone()))
        .await;
    let auth = format!("Bearer {}", r.json()["access_token"].as_str().unwrap());
    assert_eq!(
        h.send("POST", "/auth/logout", &[("Authorization", &auth)])
            .await
            .status,
        204
    );
    let real = h.get("/api/posts", &[("Authorization", &auth)]).await;
    assert_eq!(real.error(), "token_revoked");
    same_answer("revoked-token", BEARER_API, &real, &[]).await;

    // mfa-required: a user with TOTP signs in with the right password.
    let secret = gatehouse_core::totp::generate_secret(&[9u8; 20]);
    let sealed =
        gatehouse_server::auth::mfa::seal_totp_secret(&h.gw.secrets, "bob", &secret).unwrap();
    h.gw.store
        .set_mfa_secret("bob", Some(sealed))
        .await
        .unwrap();
    let real = h
        .send_body("POST", "/auth/login", &json_ct, Body::from(login))
        .await;
    assert_eq!(real.error(), "mfa_required");
    same_answer("mfa-required", BEARER_API, &real, &["mfa_token"]).await;

    // auth-unavailable: the store fails while a password is checked.
    let (stop, rx) = watch::channel(false);
    let up = common::echo_upstream(rx.clone()).await;
    let inner = gatehouse_store::open_store("sqlite::memory:")
        .await
        .unwrap();
    common::seed(inner.as_ref()).await;
    let flaky = Arc::new(common::flaky::Flaky {
        inner,
        down: std::sync::atomic::AtomicBool::new(false),
    });
    let h = Harness::start_store(&common::config_text(up, ""), up, stop, rx, flaky.clone()).await;
    flaky.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let real = h
        .get(
            "/api/posts",
            &[("Authorization", &basic("alice", "alice-pw"))],
        )
        .await;
    assert_eq!(real.error(), "auth_unavailable");
    same_answer("auth-unavailable", BEARER_API, &real, &[]).await;

    // too-many-attempts: one failure locks the client.
    let (stop, rx) = watch::channel(false);
    let up = common::echo_upstream(rx.clone()).await;
    let text = common::config_text(up, "").replacen(
        "[cors]",
        "[throttle]\nfailed_per_ip = { max = 1, per = \"1m\" }\ntarpit = \"0s\"\n\n[cors]",
        1,
    );
    let h = Harness::start_config(&text, up, stop, rx).await;
    let _ = h
        .get("/api/posts", &[("Authorization", &basic("alice", "nope"))])
        .await;
    let real = h
        .get(
            "/api/posts",
            &[("Authorization", &basic("alice", "alice-pw"))],
        )
        .await;
    assert_eq!(real.error(), "too_many_attempts");
    same_answer(
        "too-many-attempts",
        BEARER_API,
        &real,
        &["detail", "message"],
    )
    .await;

    // upstream-unavailable: nobody listens behind the gateway.
    let (stop, rx) = watch::channel(false);
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let h = Harness::start_config(&common::config_text(dead, ""), dead, stop, rx).await;
    let real = h.get("/public/x", &[]).await;
    assert_eq!(real.error(), "upstream_unavailable");
    same_answer("upstream-unavailable", BEARER_API, &real, &[]).await;
}
