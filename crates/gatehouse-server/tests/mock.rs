//! Every checked preset of `gatehouse mock` against the real gateway's answer in the same
//! situation, so the two cannot drift. (The mock's own behaviour — stubs, the journal,
//! reloads — is tested in `gatehouse-mock`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use common::{Harness, Resp, basic, send_to};
use gatehouse_core::Scheme;
use gatehouse_mock::{MockOptions, Running};
use gatehouse_server::clock::now;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::sync::watch;

async fn start(opts: MockOptions) -> Running {
    gatehouse_server::install_crypto();
    Running::start(opts).await.unwrap()
}

/// The same request the gateway got, sent to the mock (without a body).
async fn ask_mock(m: &Running, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    send_to(&client, m.addr, method, path, headers, Body::empty()).await
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
        let m = start(MockOptions::with_presets(&[preset], schemes).unwrap()).await;
        // Same request to the mock: the preset answers whatever was sent.
        let fake = ask_mock(&m, method, path, &hs).await;
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
    let m = start(MockOptions::with_presets(&["rate-limited"], BEARER_API).unwrap()).await;
    let fake = ask_mock(&m, "GET", "/quota/x", &[("Authorization", &auth)]).await;
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
    let m =
        start(MockOptions::with_presets(&["missing-credentials"], BEARER_API_BASIC).unwrap()).await;
    let fake = ask_mock(&m, "GET", "/api/posts", &html).await;
    assert_eq!(fake.status, real.status);
    assert_eq!(fake.challenges(), real.challenges());
    assert_eq!(fake.header("content-type"), real.header("content-type"));
}

/// Compares a preset with the gateway's real answer: status, challenges, `error`, the stable
/// body members (minus `extra`, which differ per response) and `Retry-After` presence.
async fn same_answer(preset: &str, schemes: &[Scheme], real: &Resp, extra: &[&str]) {
    let m = start(MockOptions::with_presets(&[preset], schemes).unwrap()).await;
    let fake = ask_mock(&m, "GET", "/anything", &[]).await;
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

#[tokio::test(flavor = "multi_thread")]
async fn geo_blocked_presets_match_the_gateway() {
    let db = common::geo::GeoDb::new(common::geo::NETWORKS);
    let h = Harness::start_with(&db.config()).await;
    let auth = basic("alice", "alice-pw");
    let headers = [
        ("Authorization", auth.as_str()),
        ("X-Forwarded-For", common::geo::US),
    ];
    let real = h.get("/geo/eu/x", &headers).await;
    assert_eq!(real.error(), "geo_blocked");
    same_answer("geo-blocked=US", BEARER_API, &real, &[]).await;
    // The legal block: 451; the preset has no `blocked_by`, so no `Link`.
    let real = h
        .get("/geo/video/x", &[("X-Forwarded-For", common::geo::DE)])
        .await;
    assert_eq!(real.status, 451);
    same_answer("geo-blocked=DE,451", BEARER_API, &real, &[]).await;
}
