//! Design §6 end to end: the audit trail is complete (one record per refusal of a mixed
//! load) and never holds a secret; `/metrics` on the admin port carries the series with
//! bounded labels; a 401 spike raises an alert that reaches a webhook.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use common::{Harness, basic};
use gatehouse_store::{AuditKind, AuditQuery, AuditRecord};
use http_body_util::BodyExt as _;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

fn temp_file(label: &str) -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "gatehouse-observe-{}-{label}-{}.jsonl",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

const METERED: &str = r#"
[[route]]
name = "metered"
path = "/metered/**"
auth = ["basic"]
quota = { max = 1, per = "1m" }
"#;

async fn start(sections: &str) -> Harness {
    let (stop, rx) = watch::channel(false);
    let up = common::echo_upstream(rx.clone()).await;
    let text =
        common::config_text(up, METERED).replacen("[cors]", &format!("{sections}\n[cors]"), 1);
    Harness::start_config(&text, up, stop, rx).await
}

/// Serves the admin router of `h` on a random port; returns its address.
async fn admin(h: &Harness) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let router = gatehouse_server::admin_router(Arc::clone(&h.gw));
    tokio::spawn(gatehouse_server::serve_on(
        l,
        router,
        std::future::pending(),
    ));
    addr
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Body>();
    let resp = client
        .get(format!("http://{addr}{path}").parse().unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ct, String::from_utf8_lossy(&body).into_owned())
}

async fn post_json(h: &Harness, path: &str, body: serde_json::Value) -> common::Resp {
    h.send_body(
        "POST",
        path,
        &[("Content-Type", "application/json")],
        Body::from(body.to_string()),
    )
    .await
}

async fn audit_rows(h: &Harness) -> Vec<AuditRecord> {
    let q = AuditQuery {
        limit: 100_000,
        ..AuditQuery::default()
    };
    let got = h.gw.store.query_audit(q).await.unwrap();
    got.into_iter().map(|e| e.record).collect()
}

#[tokio::test]
async fn audit_is_complete_secret_free_and_metrics_are_bounded() {
    let file = temp_file("mixed");
    let h = start(&format!(
        "[audit]\nfile = \"{}\"\n[throttle]\nfailed_per_ip = {{ max = 8, per = \"1m\" }}\nfailed_per_account = {{ max = 100, per = \"1m\" }}\ntarpit = \"0s\"\n",
        file.display()
    ))
    .await;
    let key = h.api_key("alice", &["posts:write"], false, None).await;
    let wrong_pw = "hunter2-WRONG-password";
    let bare_secret = "sk_live_BARESECRETvalue42";
    let query_secret = "QUERYSECRETtoken987";
    let garbage_token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.SIGNATURESECRET";
    let bogus_key = "ghk_BOGUSSECRETkey123456";

    let mut refusals = Vec::new(); // (request id, status)
    let mut passes = 0;
    let mut note = |r: &common::Resp| {
        let id = r.header("x-request-id").unwrap().to_owned();
        if r.status.as_u16() >= 400 {
            refusals.push((id, r.status.as_u16()));
        } else {
            passes += 1;
        }
    };
    let alice = basic("alice", "alice-pw");
    let bob = basic("bob", "bob-pw");
    // Allowed.
    note(&h.get("/public/x", &[]).await);
    note(&h.get("/api/posts", &[("Authorization", &alice)]).await);
    note(&h.get("/api/posts", &[("X-API-Key", &key)]).await);
    note(&h.get("/metered/a", &[("Authorization", &alice)]).await);
    // 401s.
    let missing = h.get("/api/posts", &[]).await;
    assert_eq!(missing.status, 401);
    note(&missing);
    note(
        &h.get(
            "/api/posts",
            &[("Authorization", &basic("alice", wrong_pw))],
        )
        .await,
    );
    note(
        &h.get(
            "/api/posts",
            &[("Authorization", &format!("Bearer {garbage_token}"))],
        )
        .await,
    );
    note(&h.get("/api/posts", &[("X-API-Key", bogus_key)]).await);
    note(&h.get("/api/posts", &[("Authorization", bare_secret)]).await);
    note(
        &h.get(&format!("/api/posts?access_token={query_secret}"), &[])
            .await,
    );
    // 403s.
    let role = h.get("/api/admin/x", &[("Authorization", &bob)]).await;
    assert_eq!(role.status, 403);
    note(&role);
    note(&h.get("/.git/config", &[]).await);
    // Hidden 404s.
    note(&h.get("/internal/x", &[]).await);
    let hidden = h.get("/internal/x", &[("Authorization", &bob)]).await;
    assert_eq!(hidden.status, 404);
    note(&hidden);
    // 429: the quota, then a locked client IP.
    let quota = h.get("/metered/b", &[("Authorization", &alice)]).await;
    assert_eq!(quota.status, 429);
    note(&quota);
    // Four failures from this test's own address come first: the limit is 8.
    for _ in 0..8 {
        note(
            &h.get(
                "/api/posts",
                &[
                    ("Authorization", &basic("x", wrong_pw)),
                    ("X-Forwarded-For", "198.51.100.50"),
                ],
            )
            .await,
        );
    }
    let locked = h
        .get(
            "/api/posts",
            &[
                ("Authorization", &alice),
                ("X-Forwarded-For", "198.51.100.50"),
            ],
        )
        .await;
    assert_eq!(locked.status, 429);
    note(&locked);
    // The token service: a wrong password, a login, a refresh, a reused refresh token.
    note(
        &post_json(
            &h,
            "/auth/login",
            serde_json::json!({"username": "bob", "password": wrong_pw}),
        )
        .await,
    );
    let login = post_json(
        &h,
        "/auth/login",
        serde_json::json!({"username": "alice", "password": "alice-pw"}),
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.text);
    note(&login);
    let access = login.json()["access_token"].as_str().unwrap().to_owned();
    let refresh = login.json()["refresh_token"].as_str().unwrap().to_owned();
    let fresh = post_json(
        &h,
        "/auth/refresh",
        serde_json::json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(fresh.status, 200);
    note(&fresh);
    let new_refresh = fresh.json()["refresh_token"].as_str().unwrap().to_owned();
    let reused = post_json(
        &h,
        "/auth/refresh",
        serde_json::json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(reused.status, 401);
    note(&reused);
    // Reuse revoked the whole session: its access token is refused now.
    let revoked = h
        .get(
            "/api/posts",
            &[("Authorization", &format!("Bearer {access}"))],
        )
        .await;
    assert_eq!(revoked.error(), "token_revoked");
    note(&revoked);
    assert!(passes >= 6, "{passes}");
    assert!(refusals.len() >= 18, "{refusals:?}");

    // Metrics, before shutdown (the admin port).
    let admin = admin(&h).await;
    let (status, ct, text) = http_get(admin, "/metrics").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    for series in [
        "gatehouse_decisions_total{route=\"posts\",status=\"401\",reason=\"missing_credentials\"} 1\n",
        "gatehouse_decisions_total{route=\"admin\",status=\"403\",reason=\"insufficient_role\"} 1\n",
        "gatehouse_decisions_total{route=\"internal\",status=\"404\",reason=\"insufficient_role\"} 1\n",
        "gatehouse_decisions_total{route=\"internal\",status=\"404\",reason=\"missing_credentials\"} 1\n",
        "gatehouse_decisions_total{route=\"metered\",status=\"429\",reason=\"rate_limited\"} 1\n",
        "gatehouse_decisions_total{route=\"posts\",status=\"429\",reason=\"too_many_attempts\"} 1\n",
        "gatehouse_decisions_total{route=\"public\",status=\"200\",reason=\"public\"} 1\n",
        "gatehouse_decisions_total{route=\"auth/login\",status=\"200\",reason=\"signed_in\"} 1\n",
        "gatehouse_decisions_total{route=\"auth/refresh\",status=\"401\",reason=\"invalid_token\"} 1\n",
        "gatehouse_throttled_keys 1\n",
        "gatehouse_audit_dropped_total 0\n",
        "gatehouse_alerts_total 0\n",
        "gatehouse_credential_cache_hits_total{kind=\"bearer\"} ",
        "gatehouse_credential_cache_misses_total{kind=\"basic\"} ",
        "# TYPE gatehouse_decision_seconds histogram\n",
        "gatehouse_decision_seconds_bucket{le=\"+Inf\"} ",
        "# TYPE gatehouse_upstream_seconds histogram\n",
        "gatehouse_password_hashes_total ",
        "gatehouse_revocations ",
        "gatehouse_audit_queue_depth ",
    ] {
        assert!(text.contains(series), "missing `{series}` in\n{text}");
    }
    let total: u64 = text
        .lines()
        .filter(|l| l.starts_with("gatehouse_decisions_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        total as usize,
        passes + refusals.len(),
        "every answer counted once"
    );
    let upstream_count: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("gatehouse_upstream_seconds_count "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(upstream_count, 4, "four requests reached the upstream");
    for leak in [
        "alice",
        "bob",
        "/api/",
        "/internal",
        "198.51.100.50",
        "127.0.0.1",
    ] {
        assert!(!text.contains(leak), "`{leak}` in metrics:\n{text}");
    }
    // Not on the public port.
    let public = h.get("/metrics", &[]).await;
    assert_ne!(public.status, 200);
    assert!(!public.text.contains("gatehouse_decisions_total"));
    refusals.push((
        public.header("x-request-id").unwrap().to_owned(),
        public.status.as_u16(),
    ));

    h.gw.shutdown().await;
    let rows = audit_rows(&h).await;
    let requests: Vec<&AuditRecord> = rows
        .iter()
        .filter(|r| r.kind == AuditKind::Request)
        .collect();
    assert_eq!(
        requests.len(),
        refusals.len(),
        "one record per refusal, nothing else"
    );
    for (id, status) in &refusals {
        let r = requests
            .iter()
            .find(|r| &r.request_id == id)
            .unwrap_or_else(|| panic!("no record for {id}"));
        assert_eq!(r.status, *status, "{r:?}");
        assert!(r.error.is_some(), "{r:?}");
    }
    let by_id = |id: &str| *requests.iter().find(|r| r.request_id == id).unwrap();
    let m = by_id(missing.header("x-request-id").unwrap());
    assert_eq!(
        (
            m.route.as_str(),
            m.method.as_str(),
            m.path.as_str(),
            m.client_ip.as_deref()
        ),
        ("posts", "GET", "/api/posts", Some("127.0.0.1"))
    );
    assert_eq!(m.error.as_deref(), Some("missing_credentials"));
    assert!(m.principal.is_none() && m.scheme.is_none() && !m.hidden);
    let d = by_id(hidden.header("x-request-id").unwrap());
    assert_eq!(
        (d.status, d.error.as_deref(), d.hidden),
        (404, Some("insufficient_role"), true)
    );
    assert_eq!(
        (d.principal.as_deref(), d.scheme.as_deref()),
        (Some("bob"), Some("basic"))
    );
    assert_eq!(d.route, "internal");
    let r = by_id(role.header("x-request-id").unwrap());
    assert_eq!(r.principal.as_deref(), Some("bob"));
    assert!(r.detail.contains("admin"), "{r:?}");
    let l = by_id(locked.header("x-request-id").unwrap());
    assert_eq!(
        (l.error.as_deref(), l.client_ip.as_deref()),
        (Some("too_many_attempts"), Some("198.51.100.50"))
    );
    let q = by_id(quota.header("x-request-id").unwrap());
    assert_eq!(
        (q.error.as_deref(), q.principal.as_deref()),
        (Some("rate_limited"), Some("alice"))
    );
    let u = by_id(reused.header("x-request-id").unwrap());
    assert_eq!(
        (u.route.as_str(), u.method.as_str(), u.path.as_str()),
        ("auth/refresh", "POST", "/auth/refresh")
    );
    // Refresh-token reuse is audited as suspected theft.
    assert_eq!(u.error.as_deref(), Some("invalid_token"));
    assert!(u.detail.contains("suspected theft"), "{}", u.detail);

    // The JSON-lines file holds the same records.
    let lines = std::fs::read_to_string(&file).unwrap();
    assert_eq!(lines.lines().count(), rows.len());
    for line in lines.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            v["request_id"].is_string() && v["status"].is_u64(),
            "{line}"
        );
    }
    // No secret anywhere.
    let db = format!("{rows:?}");
    for secret in [
        wrong_pw,
        "alice-pw",
        "bob-pw",
        bare_secret,
        query_secret,
        garbage_token,
        "SIGNATURESECRET",
        bogus_key,
        &key,
        &access,
        &refresh,
        &new_refresh,
    ] {
        assert!(!db.contains(secret), "`{secret}` in the audit table");
        assert!(!lines.contains(secret), "`{secret}` in the audit file");
    }
    // Base64 of Basic credentials neither.
    assert!(!lines.contains(alice.trim_start_matches("Basic ")));
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn log_allowed_records_passes_too() {
    let h = start("[audit]\nlog_allowed = true\n").await;
    let ok = h
        .get(
            "/api/posts",
            &[("Authorization", &basic("alice", "alice-pw"))],
        )
        .await;
    assert_eq!(ok.status, 200);
    let no = h.get("/api/posts", &[]).await;
    h.gw.shutdown().await;
    let rows = audit_rows(&h).await;
    assert_eq!(rows.len(), 2);
    let a = rows
        .iter()
        .find(|r| Some(r.request_id.as_str()) == ok.header("x-request-id"))
        .unwrap();
    assert_eq!(
        (
            a.status,
            a.error.as_deref(),
            a.principal.as_deref(),
            a.scheme.as_deref()
        ),
        (200, None, Some("alice"), Some("basic"))
    );
    assert_eq!(a.detail, "allowed");
    assert!(
        rows.iter()
            .any(|r| Some(r.request_id.as_str()) == no.header("x-request-id"))
    );
}

#[tokio::test]
async fn a_401_spike_raises_an_alert_that_reaches_the_webhook() {
    // A tiny webhook receiver.
    let (tx, mut rx) = mpsc::channel::<(String, serde_json::Value)>(8);
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: http::HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let ct = headers
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                let _ = tx.send((ct, serde_json::from_str(&body).unwrap())).await;
                http::StatusCode::NO_CONTENT
            }
        }),
    );
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = l.local_addr().unwrap();
    tokio::spawn(gatehouse_server::serve_on(l, hook, std::future::pending()));

    let h = start(&format!(
        "[alerts]\nwebhook_url = \"http://{hook_addr}/hook\"\nmin_per_minute = 5\nfactor = 2\nip_burst_per_minute = 1000\n"
    ))
    .await;
    // 12 refusals: whatever minute boundary falls in between, one minute sees at least 6.
    for _ in 0..12 {
        assert_eq!(h.get("/api/posts", &[]).await.status, 401);
    }
    let (ct, alert) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the webhook got no alert")
        .unwrap();
    assert_eq!(ct, "application/json");
    assert_eq!(alert["kind"], "alert_rate");
    assert_eq!(alert["source"], "gatehouse");
    assert!(alert["count"].as_u64().unwrap() >= 5, "{alert}");
    assert_eq!(alert["threshold"], 5);
    h.gw.shutdown().await;
    let rows = audit_rows(&h).await;
    let alerts: Vec<&AuditRecord> = rows.iter().filter(|r| r.kind == AuditKind::Alert).collect();
    assert!(!alerts.is_empty() && alerts.len() <= 2, "{alerts:?}");
    assert_eq!(alerts[0].error.as_deref(), Some("alert_rate"));
    assert_eq!(alerts[0].status, 0);
    assert_eq!(
        rows.iter().filter(|r| r.kind == AuditKind::Request).count(),
        12
    );
    assert!(h.gw.observer.metrics.alerts_total.load(Ordering::Relaxed) >= 1);
}

/// The soak (`bench/soak.sh`) found it: restarting PostgreSQL under load lost the audit
/// records of the batches written meanwhile from the `audit` table (two retries within
/// 300 ms, then given up). Now they wait for the store and are written when it is back,
/// oldest first, while the file has them at once.
#[tokio::test]
async fn audit_records_wait_out_a_store_outage_and_none_is_lost() {
    use gatehouse_server::observe::AuditSink;
    let (inner, _schema) = common::test_store().await;
    let flaky = Arc::new(common::flaky::Flaky {
        inner: Arc::clone(&inner),
        down: std::sync::atomic::AtomicBool::new(true),
    });
    let file = temp_file("outage");
    let sink = AuditSink::with_capacity(64);
    sink.start(flaky.clone(), Some(file.clone()));
    let rec = |i: i64| AuditRecord {
        time: 1_700_000_000 + i,
        kind: AuditKind::Request,
        request_id: format!("outage-{i}"),
        route: "default".into(),
        method: "GET".into(),
        path: "/x".into(),
        client_ip: Some("192.0.2.7".into()),
        principal: None,
        scheme: None,
        status: 401,
        error: Some("missing_credentials".into()),
        hidden: false,
        detail: String::new(),
    };
    for i in 0..3 {
        sink.push(rec(i), 1_700_000_000);
    }
    // The store refuses: the records are in the file and wait for the store, several
    // attempts long (100, 200, 400, 800 ms pauses).
    let waited = std::time::Instant::now();
    while sink.stats.store_backlog.load(Ordering::Relaxed) < 3
        || waited.elapsed() < Duration::from_millis(1600)
    {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "records never waited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for i in 3..5 {
        sink.push(rec(i), 1_700_000_000);
    }
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    assert_eq!(text.lines().count(), 3, "the file has them at once: {text}");
    assert_eq!(sink.stats.written.load(Ordering::Relaxed), 0);
    assert_eq!(sink.stats.store_failed.load(Ordering::Relaxed), 0);
    // The store is back: every record is written, in order, without a shutdown.
    flaky.down.store(false, Ordering::SeqCst);
    let back = std::time::Instant::now();
    while sink.stats.written.load(Ordering::Relaxed) < 5 {
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "records not written after the store came back: {:?}",
            sink.stats
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sink.stats.store_backlog.load(Ordering::Relaxed), 0);
    let rows = inner
        .query_audit(AuditQuery::default())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.record.request_id)
        .filter(|id| id.starts_with("outage-"))
        .collect::<Vec<_>>();
    let mut sorted = rows.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        (0..5).map(|i| format!("outage-{i}")).collect::<Vec<_>>()
    );
    sink.shutdown().await;
    assert_eq!(sink.stats.store_failed.load(Ordering::Relaxed), 0);
    let _ = std::fs::remove_file(&file);
}
