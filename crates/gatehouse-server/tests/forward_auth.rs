//! Forward-auth mode end to end (design §4): `/_gatehouse/forward-auth` asked directly the
//! way Traefik / Caddy and nginx ask it, then a real nginx `auth_request` and a real Caddy
//! `forward_auth` in front of an application, each configured with the snippet of
//! `docs/forward-auth.md` (skipped, saying so, where the proxy is not installed; a failure
//! under `GATEHOUSE_TEST_REQUIRE=all`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "forward_auth/caddy.rs"]
mod caddy;
mod common;
#[path = "forward_auth/nginx.rs"]
mod nginx;
#[path = "forward_auth/proxies.rs"]
mod proxies;

use common::{Harness, Resp, basic, config_text, echo_upstream};
use gatehouse_server::clock::now;
use serde_json::json;
use tokio::sync::watch;

const FA: &str = "/_gatehouse/forward-auth";
const BEARER: &str = "Bearer realm=\"api\"";
const BASIC: &str = "Basic realm=\"api\", charset=\"UTF-8\"";
const APIKEY: &str = "ApiKey realm=\"api\", header=\"X-API-Key\"";
const IDENTITY: [&str; 5] = [
    "x-gatehouse-user",
    "x-gatehouse-roles",
    "x-gatehouse-tenant",
    "x-gatehouse-scopes",
    "x-gatehouse-auth",
];

/// The headers Traefik's ForwardAuth and Caddy's `forward_auth` send, plus `extra`.
fn traefik<'a>(
    method: &'a str,
    uri: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![
        ("X-Forwarded-Method", method),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "api.example"),
        ("X-Forwarded-Uri", uri),
        ("X-Forwarded-For", "203.0.113.9"),
    ];
    h.extend_from_slice(extra);
    h
}

/// The headers the nginx snippet in `docs/forward-auth.md` sends, plus `extra`.
fn nginx_style<'a>(
    method: &'a str,
    uri: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![("X-Original-Method", method), ("X-Original-URI", uri)];
    h.extend_from_slice(extra);
    h
}

fn assert_problem(r: &Resp, status: u16, error: &str) {
    assert_eq!(r.status.as_u16(), status, "body: {}", r.text);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.header("x-gatehouse-error"), Some(error));
    let b = r.json();
    assert_eq!(b["error"], error, "{b}");
    assert_eq!(b["status"], status);
    assert_eq!(b["detail"], b["message"]);
    assert!(b["type"].as_str().unwrap().ends_with(error));
    assert!(b["title"].is_string());
    assert!(b["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(b["request_id"].as_str(), r.header("x-request-id"));
    assert_no_identity(r);
}

/// nginx style: the status and headers of the table, and nothing in the body.
fn assert_empty(r: &Resp, status: u16, error: &str) {
    assert_eq!(r.status.as_u16(), status, "body: {}", r.text);
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(r.text, "");
    assert!(r.header("content-type").is_none());
    assert_eq!(r.header("x-gatehouse-error"), Some(error));
    assert!(r.header("x-request-id").is_some());
    assert_no_identity(r);
}

fn assert_no_identity(r: &Resp) {
    for h in IDENTITY {
        assert!(r.header(h).is_none(), "{h} on a {} answer", r.status);
    }
}

/// A harness whose config is `config_text` edited by `edit` (must change something).
async fn start_edited(edit: impl Fn(&str) -> String) -> Harness {
    gatehouse_server::install_crypto();
    let (stop, rx) = watch::channel(false);
    let up = echo_upstream(rx.clone()).await;
    let original = config_text(up, "");
    let text = edit(&original);
    assert_ne!(text, original, "the edit did not apply");
    Harness::start_config(&text, up, stop, rx).await
}

#[tokio::test]
async fn traefik_style_allow_answers_200_with_identity_headers() {
    let h = Harness::start().await;
    let alice = basic("alice", "alice-pw");
    let r = h
        .get(
            FA,
            &traefik(
                "GET",
                "/api/admin/users?page=2",
                &[("Authorization", &alice)],
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.text, "");
    assert_eq!(r.header("x-gatehouse-user"), Some("alice"));
    assert_eq!(r.header("x-gatehouse-roles"), Some("admin,ops"));
    assert_eq!(r.header("x-gatehouse-tenant"), Some("acme"));
    assert_eq!(r.header("x-gatehouse-auth"), Some("basic"));
    assert!(r.header("x-gatehouse-error").is_none());
    // A Bearer token carries its scopes; bob has no tenant header but globex.
    let token = h
        .own_token("bob", &["posts:read", "posts:write"], "pwd", now(), 600)
        .await;
    let auth = format!("Bearer {token}");
    let r = h
        .get(
            FA,
            &traefik("POST", "/api/posts/7", &[("Authorization", &auth)]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-gatehouse-user"), Some("bob"));
    assert_eq!(r.header("x-gatehouse-roles"), Some("editor"));
    assert_eq!(r.header("x-gatehouse-tenant"), Some("globex"));
    assert_eq!(
        r.header("x-gatehouse-scopes"),
        Some("posts:read posts:write")
    );
    assert_eq!(r.header("x-gatehouse-auth"), Some("bearer"));
}

#[tokio::test]
async fn traefik_style_missing_credentials_is_401_with_challenges_and_body() {
    let h = Harness::start().await;
    let r = h.get(FA, &traefik("GET", "/api/admin/users", &[])).await;
    assert_problem(&r, 401, "missing_credentials");
    assert_eq!(r.challenges(), [BEARER, BASIC, APIKEY]);
    assert_eq!(
        r.json()["accepted_schemes"],
        json!(["bearer", "basic", "api_key"])
    );
    // Unmatched paths follow [defaults].
    let r = h.get(FA, &traefik("GET", "/elsewhere", &[])).await;
    assert_problem(&r, 401, "missing_credentials");
    assert_eq!(r.challenges(), [BEARER, APIKEY]);
}

#[tokio::test]
async fn traefik_style_refusals_403_and_hidden_404() {
    let h = Harness::start().await;
    let bob = basic("bob", "bob-pw");
    let r = h
        .get(
            FA,
            &traefik("GET", "/api/admin/users", &[("Authorization", &bob)]),
        )
        .await;
    assert_problem(&r, 403, "insufficient_role");
    assert!(r.challenges().is_empty());
    assert_eq!(r.json()["required_roles"], json!(["admin"]));
    // The method comes from X-Forwarded-Method, not from the forward-auth request's own.
    let token = h.own_token("bob", &["posts:read"], "pwd", now(), 600).await;
    let auth = format!("Bearer {token}");
    let r = h
        .get(
            FA,
            &traefik("DELETE", "/api/posts/7", &[("Authorization", &auth)]),
        )
        .await;
    assert_problem(&r, 403, "insufficient_scope");
    assert_eq!(
        r.challenges(),
        ["Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"posts:write\""]
    );
    // Hidden: any refusal is a 404 without a challenge or a hint.
    for auth in [None, Some(bob.as_str())] {
        let extra: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        let r = h
            .get(FA, &traefik("GET", "/internal/metrics", &extra))
            .await;
        assert_problem(&r, 404, "not_found");
        assert!(r.challenges().is_empty());
        assert!(r.json().get("required_roles").is_none());
    }
    // Deny routes and encoding tricks are refused as in proxy mode.
    let r = h.get(FA, &traefik("GET", "/.git/config", &[])).await;
    assert_problem(&r, 403, "forbidden_path");
    let r = h
        .get(FA, &traefik("GET", "/public/%2e%2e/api/admin/users", &[]))
        .await;
    assert_problem(&r, 400, "invalid_path");
}

#[tokio::test]
async fn public_routes_and_forged_identity_headers() {
    let h = Harness::start().await;
    let forged = [
        ("X-Gatehouse-User", "alice"),
        ("X-Gatehouse-Roles", "admin"),
        ("X-Gatehouse-Auth", "basic"),
    ];
    let r = h.get(FA, &traefik("GET", "/public/info", &forged)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.text, "");
    assert_no_identity(&r);
    // A CORS preflight passes without credentials or identity; the application answers it.
    let preflight = [
        ("Origin", "https://app.example"),
        ("Access-Control-Request-Method", "DELETE"),
    ];
    let r = h
        .get(FA, &traefik("OPTIONS", "/api/admin/users", &preflight))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_no_identity(&r);
    // Forged identity is not a credential …
    let r = h
        .get(FA, &traefik("GET", "/api/admin/users", &forged))
        .await;
    assert_problem(&r, 401, "missing_credentials");
    // … and never echoed back as identity: the verified principal wins.
    let bob = basic("bob", "bob-pw");
    let mut with_bob = forged.to_vec();
    with_bob.push(("Authorization", &bob));
    let r = h.get(FA, &traefik("GET", "/api/posts/1", &with_bob)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-gatehouse-user"), Some("bob"));
    assert_eq!(r.header("x-gatehouse-roles"), Some("editor"));
    let r = h
        .get(FA, &nginx_style("GET", "/api/posts/1", &with_bob))
        .await;
    assert_eq!(r.header("x-gatehouse-user"), Some("bob"));
}

#[tokio::test]
async fn nginx_style_same_statuses_with_empty_bodies() {
    let h = Harness::start().await;
    let r = h
        .get(FA, &nginx_style("GET", "/api/admin/users", &[]))
        .await;
    assert_empty(&r, 401, "missing_credentials");
    assert_eq!(r.challenges(), [BEARER, BASIC, APIKEY]);
    let bob = basic("bob", "bob-pw");
    let r = h
        .get(
            FA,
            &nginx_style("GET", "/api/admin/users", &[("Authorization", &bob)]),
        )
        .await;
    assert_empty(&r, 403, "insufficient_role");
    assert!(r.challenges().is_empty());
    let r = h
        .get(
            FA,
            &nginx_style("GET", "/internal/metrics", &[("Authorization", &bob)]),
        )
        .await;
    assert_empty(&r, 404, "not_found");
    let r = h
        .get(
            FA,
            &nginx_style("GET", "/api/posts", &[("Authorization", "Bearer")]),
        )
        .await;
    assert_empty(&r, 400, "invalid_request");
    assert_eq!(
        r.challenges(),
        ["Bearer realm=\"api\", error=\"invalid_request\""]
    );
    let alice = basic("alice", "alice-pw");
    let r = h
        .get(
            FA,
            &nginx_style("GET", "/api/admin/users", &[("Authorization", &alice)]),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-gatehouse-user"), Some("alice"));
    assert_eq!(r.header("x-gatehouse-roles"), Some("admin,ops"));
    let r = h.get(FA, &nginx_style("GET", "/public/x", &[])).await;
    assert_eq!(r.status, 200);
    assert_no_identity(&r);
    // X-Original-Method decides: bob's token lacks `posts:write`.
    let reader = format!(
        "Bearer {}",
        h.own_token("bob", &["posts:read"], "pwd", now(), 600).await
    );
    let r = h
        .get(
            FA,
            &nginx_style("PUT", "/api/posts/1", &[("Authorization", &reader)]),
        )
        .await;
    assert_empty(&r, 403, "insufficient_scope");
}

#[tokio::test]
async fn the_original_request_comes_from_exactly_one_convention() {
    let h = Harness::start().await;
    let bob = format!(
        "Bearer {}",
        h.own_token("bob", &["posts:read"], "pwd", now(), 600).await
    );
    // nginx passes client headers to the subrequest: a client adding X-Forwarded-Uri or
    // X-Forwarded-Method next to nginx's X-Original-* must not choose what is checked.
    let r = h
        .get(
            FA,
            &nginx_style(
                "GET",
                "/api/admin/users",
                &[("X-Forwarded-Uri", "/public/x")],
            ),
        )
        .await;
    assert_empty(&r, 400, "invalid_request");
    let r = h
        .get(
            FA,
            &nginx_style(
                "PUT",
                "/api/posts/1",
                &[("X-Forwarded-Method", "GET"), ("Authorization", &bob)],
            ),
        )
        .await;
    assert_empty(&r, 403, "insufficient_scope");
    // Likewise X-Original-* sent by a client through Traefik: the method is ignored, a
    // second URI refused …
    let r = h
        .get(
            FA,
            &traefik(
                "PUT",
                "/api/posts/1",
                &[("X-Original-Method", "GET"), ("Authorization", &bob)],
            ),
        )
        .await;
    assert_problem(&r, 403, "insufficient_scope");
    let r = h
        .get(
            FA,
            &traefik(
                "GET",
                "/api/admin/users",
                &[("X-Original-URI", "/public/x")],
            ),
        )
        .await;
    // (`X-Original-URI` present: `auto` answers the nginx way.)
    assert_empty(&r, 400, "invalid_request");
    // … and nothing is guessed: no URI, no method, or a target that is not origin-form.
    for headers in [
        vec![],
        vec![("X-Original-URI", "/api/posts/1")],
        vec![("X-Forwarded-Uri", "/api/posts/1")],
        vec![("X-Forwarded-Method", "GET")],
        vec![
            ("X-Original-Method", "GET"),
            ("X-Original-URI", "api/posts"),
        ],
        vec![
            ("X-Original-Method", "G ET"),
            ("X-Original-URI", "/api/posts"),
        ],
    ] {
        let r = h.get(FA, &headers).await;
        assert_eq!(r.status, 400, "{headers:?}");
        assert_eq!(r.header("x-gatehouse-error"), Some("invalid_request"));
        assert_no_identity(&r);
    }
}

#[tokio::test]
async fn forward_auth_body_full_and_empty_override_auto() {
    let full = start_edited(|t| {
        t.replace(
            "realm = \"api\"",
            "realm = \"api\"\nforward_auth_body = \"full\"",
        )
    })
    .await;
    let r = full
        .get(FA, &nginx_style("GET", "/api/admin/users", &[]))
        .await;
    assert_problem(&r, 401, "missing_credentials");
    assert_eq!(r.challenges(), [BEARER, BASIC, APIKEY]);
    drop(full);
    let empty = start_edited(|t| {
        t.replace(
            "realm = \"api\"",
            "realm = \"api\"\nforward_auth_body = \"empty\"",
        )
    })
    .await;
    let r = empty
        .get(FA, &traefik("GET", "/api/admin/users", &[]))
        .await;
    assert_empty(&r, 401, "missing_credentials");
    assert_eq!(r.challenges(), [BEARER, BASIC, APIKEY]);
    let bob = basic("bob", "bob-pw");
    let r = empty
        .get(
            FA,
            &traefik("GET", "/api/admin/users", &[("Authorization", &bob)]),
        )
        .await;
    assert_empty(&r, 403, "insufficient_role");
}

#[tokio::test]
async fn peers_that_are_not_trusted_proxies_are_refused() {
    let h = start_edited(|t| {
        t.replace(
            "trusted_proxies = [\"127.0.0.1/32\"]",
            "trusted_proxies = [\"10.0.0.0/8\"]",
        )
    })
    .await;
    let alice = basic("alice", "alice-pw");
    for headers in [
        traefik("GET", "/api/admin/users", &[("Authorization", &alice)]),
        traefik("GET", "/public/info", &[]),
    ] {
        let r = h.get(FA, &headers).await;
        assert_problem(&r, 400, "invalid_request");
        assert!(
            r.json()["detail"]
                .as_str()
                .unwrap()
                .contains("trusted proxies")
        );
    }
    let r = h
        .get(
            FA,
            &nginx_style("GET", "/api/admin/users", &[("Authorization", &alice)]),
        )
        .await;
    assert_empty(&r, 400, "invalid_request");
}

#[tokio::test]
async fn request_id_of_a_trusted_proxy_is_kept() {
    let h = Harness::start().await;
    let r = h
        .get(
            FA,
            &traefik(
                "GET",
                "/api/admin/users",
                &[("X-Request-Id", "req-from-traefik")],
            ),
        )
        .await;
    assert_problem(&r, 401, "missing_credentials");
    assert_eq!(r.header("x-request-id"), Some("req-from-traefik"));
}
