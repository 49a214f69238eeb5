//! `gatehouse mock` over real sockets: stubs (simple and WireMock), priorities, header
//! matchers, the request journal, reload on change, stub-file errors with their field and
//! line. (Presets against the real gateway: `gatehouse-server`'s `tests/mock.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use gatehouse_core::Scheme;
use gatehouse_mock::{self as mock, Mock, MockError, MockOptions, Running};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

async fn start(opts: MockOptions) -> Running {
    Running::start(opts).await.unwrap()
}

async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let mut b = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    let resp = client
        .request(b.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Resp {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gatehouse-mock-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("stubs.json");
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test]
async fn stubs_win_over_presets_and_presets_take_paths() {
    let file = temp_file(
        "precedence",
        r#"[{"method": "GET", "url": "/api/me", "status": 200, "body": {"name": "bob"}}]"#,
    );
    let mut opts =
        MockOptions::with_presets(&["step-up@/billing/**", "expired-token"], &[Scheme::Bearer])
            .unwrap();
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
    let m = start(MockOptions::with_presets(&["revoked-token"], &[Scheme::Bearer]).unwrap()).await;
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
    assert!(
        err.to_string().contains("line 3: stub 2: `status`"),
        "{err}"
    );
    // The field is named however deep it is, and the line is the value's.
    let wiremock = temp_file(
        "bad-wiremock",
        "{\"mappings\": [\n {\"request\": {\"url\": \"/a\"},\n  \"response\": {\n    \"status\": \"four-oh-one\"}}\n]}\n",
    );
    let err = Mock::new(MockOptions {
        stubs: Some(wiremock),
        ..MockOptions::default()
    })
    .unwrap_err();
    let MockError::Stubs { errors, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(errors.len(), 1, "{err}");
    assert_eq!(errors[0].line, 4, "{err}");
    assert_eq!(
        errors[0].message,
        "stub 1: `response.status`: invalid type: string \"four-oh-one\", expected u16"
    );
    let missing = Mock::new(MockOptions {
        stubs: Some(file.with_file_name("absent.json")),
        ..MockOptions::default()
    })
    .unwrap_err();
    assert!(matches!(missing, MockError::Read { .. }));
}
