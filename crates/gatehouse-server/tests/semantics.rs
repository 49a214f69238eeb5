//! End-to-end: every row of the semantics contract (design §2) over a real socket,
//! asserting status, exact challenges, and the body's `error` and extra members.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Harness, basic, partner_token};
use gatehouse_server::clock::now;
use serde_json::json;

const BEARER: &str = "Bearer realm=\"api\"";
const BASIC: &str = "Basic realm=\"api\", charset=\"UTF-8\"";
const APIKEY: &str = "ApiKey realm=\"api\", header=\"X-API-Key\"";

fn assert_problem(r: &common::Resp, status: u16, error: &str) {
    assert_eq!(r.status.as_u16(), status, "body: {}", r.text);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let b = r.json();
    assert_eq!(b["error"], error, "{b}");
    assert_eq!(b["status"], status);
    assert_eq!(b["detail"], b["message"]);
    assert!(b["type"].as_str().unwrap().ends_with(error));
    assert!(b["title"].is_string());
    assert!(b["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(b["request_id"].as_str(), r.header("x-request-id"));
}

#[tokio::test]
async fn row01_public_route_passes_without_identity() {
    let h = Harness::start().await;
    let r = h
        .get(
            "/public/info",
            &[
                ("X-Gatehouse-User", "admin"),
                ("X-Gatehouse-Roles", "admin"),
            ],
        )
        .await;
    assert_eq!(r.status, 200);
    let b = r.json();
    assert_eq!(b["path"], "/public/info");
    // Identity headers from clients never reach the upstream.
    assert_eq!(b["user"], serde_json::Value::Null);
    assert_eq!(b["roles"], serde_json::Value::Null);
}

#[tokio::test]
async fn row02_deny_route_is_403_without_challenge_even_with_credentials() {
    let h = Harness::start().await;
    for headers in [vec![], vec![("Authorization", basic("alice", "alice-pw"))]] {
        let hs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let r = h.get("/.git/config", &hs).await;
        assert_problem(&r, 403, "forbidden_path");
        assert!(r.challenges().is_empty());
    }
}

#[tokio::test]
async fn row03_networks_and_deny_networks() {
    let h = Harness::start().await;
    let r = h.get("/office/printer", &[]).await;
    assert_problem(&r, 403, "ip_blocked");
    assert!(r.challenges().is_empty());
    let r = h
        .get(
            "/blocked/x",
            &[("Authorization", &basic("alice", "alice-pw"))],
        )
        .await;
    assert_problem(&r, 403, "ip_blocked");
    // A trusted proxy's X-Forwarded-For decides the client address.
    let r = h
        .get(
            "/office/printer",
            &[
                ("X-Forwarded-For", "10.1.2.3"),
                ("Authorization", &basic("alice", "alice-pw")),
            ],
        )
        .await;
    assert_problem(&r, 401, "unsupported_scheme");
}

#[tokio::test]
async fn row05_missing_credentials_one_challenge_per_scheme() {
    let h = Harness::start().await;
    let r = h.get("/api/admin/users", &[]).await;
    assert_problem(&r, 401, "missing_credentials");
    assert_eq!(r.challenges(), [BEARER, BASIC, APIKEY]);
    assert_eq!(
        r.json()["accepted_schemes"],
        json!(["bearer", "basic", "api_key"])
    );
    // Unmatched paths follow [defaults].
    let r = h.get("/somewhere/else", &[]).await;
    assert_problem(&r, 401, "missing_credentials");
    assert_eq!(r.challenges(), [BEARER, APIKEY]);
    let r = h.get("/basic/x", &[]).await;
    assert_eq!(r.challenges(), [BASIC]);
}

#[tokio::test]
async fn row06_unsupported_scheme() {
    let h = Harness::start().await;
    let r = h
        .get("/api/posts", &[("Authorization", "Negotiate YIIB")])
        .await;
    assert_problem(&r, 401, "unsupported_scheme");
    assert_eq!(r.challenges(), [BEARER, APIKEY, BASIC]);
    // Basic on a route that only takes Bearer and API keys.
    let r = h
        .get(
            "/elsewhere",
            &[("Authorization", &basic("alice", "alice-pw"))],
        )
        .await;
    assert_problem(&r, 401, "unsupported_scheme");
    assert_eq!(r.challenges(), [BEARER, APIKEY]);
}

#[tokio::test]
async fn row07_malformed_or_multiple_credentials() {
    let h = Harness::start().await;
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![("Authorization", "Bearer".into())],
        vec![("Authorization", "Bearer ".into())],
        vec![("Authorization", "Basic !!!notbase64".into())],
        vec![
            ("Authorization", basic("a", "b")),
            ("Authorization", basic("c", "d")),
        ],
        vec![
            ("Authorization", basic("alice", "alice-pw")),
            ("X-API-Key", "gh_abc".into()),
        ],
    ];
    for headers in cases {
        let hs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let r = h.get("/api/posts", &hs).await;
        assert_problem(&r, 400, "invalid_request");
        assert_eq!(
            r.challenges(),
            ["Bearer realm=\"api\", error=\"invalid_request\""],
            "{hs:?}"
        );
    }
    // Header + query token.
    let r = h
        .get(
            "/api/posts?access_token=abc",
            &[("Authorization", "Bearer abc")],
        )
        .await;
    assert_problem(&r, 400, "invalid_request");
    // Where Bearer is not accepted, no Bearer challenge.
    let r = h.get("/basic/x", &[("Authorization", "Basic %%%")]).await;
    assert_problem(&r, 400, "invalid_request");
    assert!(r.challenges().is_empty());
}

#[tokio::test]
async fn row08_invalid_tokens() {
    let h = Harness::start().await;
    let t = now();
    let mut tampered = partner_token(
        json!({"iss": "https://partner.example", "aud": "api", "sub": "p1", "exp": t + 600}),
    );
    // Flip a character in the middle of the signature: changing the last base64url
    // character may leave the decoded bytes as they were (its low bits are padding).
    let at = tampered.rfind('.').unwrap() + 10;
    let flipped = if &tampered[at..=at] == "A" { "B" } else { "A" };
    tampered.replace_range(at..=at, flipped);
    let wrong_aud = partner_token(
        json!({"iss": "https://partner.example", "aud": "other", "sub": "p1", "exp": t + 600}),
    );
    let future = partner_token(
        json!({"iss": "https://partner.example", "aud": "api", "sub": "p1", "exp": t + 600, "nbf": t + 500}),
    );
    for token in [
        "garbage",
        "a.b.c",
        tampered.as_str(),
        wrong_aud.as_str(),
        future.as_str(),
    ] {
        let auth = format!("Bearer {token}");
        let r = h.get("/api/posts", &[("Authorization", &auth)]).await;
        assert_problem(&r, 401, "invalid_token");
        let c = r.challenges();
        assert_eq!(c.len(), 1, "{token}");
        assert!(
            c[0].starts_with("Bearer realm=\"api\", error=\"invalid_token\", error_description=\""),
            "{}",
            c[0]
        );
    }
}

#[tokio::test]
async fn row09_expired_token() {
    let h = Harness::start().await;
    let issued = now() - 7200;
    let token = h.own_token("bob", &[], "pwd", issued, 600).await;
    let r = h
        .get(
            "/api/posts",
            &[("Authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_problem(&r, 401, "token_expired");
    assert_eq!(
        r.challenges(),
        [
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"The access token expired\""
        ]
    );
    let expired_at = time::OffsetDateTime::parse(
        r.json()["expired_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(expired_at.unix_timestamp(), issued + 600);
}

#[tokio::test]
async fn row11_invalid_credentials_same_answer_for_unknown_users() {
    let h = Harness::start().await;
    let wrong = h
        .get(
            "/api/admin/x",
            &[("Authorization", &basic("alice", "nope"))],
        )
        .await;
    let unknown = h
        .get(
            "/api/admin/x",
            &[("Authorization", &basic("nobody", "nope"))],
        )
        .await;
    let no_password = h
        .get("/api/admin/x", &[("Authorization", &basic("dave", ""))])
        .await;
    for r in [&wrong, &unknown, &no_password] {
        assert_problem(r, 401, "invalid_credentials");
        assert_eq!(r.challenges(), [BEARER, BASIC, APIKEY]);
    }
    assert_eq!(wrong.json()["detail"], unknown.json()["detail"]);
    // Unknown, revoked and expired API keys.
    let revoked = h.api_key("bob", &[], false, None).await;
    let prefix = gatehouse_core::apikey::parse_api_key(&revoked)
        .unwrap()
        .0
        .to_owned();
    assert!(h.gw.store.revoke_api_key(&prefix, now()).await.unwrap());
    let expired = h.api_key("bob", &[], false, Some(now() - 10)).await;
    let mut unknown_key = h.api_key("bob", &[], false, None).await;
    unknown_key.replace_range(3..6, "zzz");
    for key in [revoked, expired, unknown_key, "not-a-key".to_owned()] {
        let r = h.get("/api/posts", &[("X-API-Key", &key)]).await;
        assert_problem(&r, 401, "invalid_credentials");
    }
}

#[tokio::test]
async fn row13_suspended_account_is_403_once_identity_is_proven() {
    let h = Harness::start().await;
    let r = h
        .get(
            "/api/posts",
            &[("Authorization", &basic("carol", "carol-pw"))],
        )
        .await;
    assert_problem(&r, 403, "account_suspended");
    assert!(r.challenges().is_empty());
    let b = r.json();
    assert_eq!(b["reason"], "Terms of Service violation");
    assert_eq!(b["suspended_at"], "2023-11-14T22:13:20Z");
    // A wrong password stays a 401: identity is not proven.
    let r = h
        .get("/api/posts", &[("Authorization", &basic("carol", "wrong"))])
        .await;
    assert_problem(&r, 401, "invalid_credentials");
    // Tokens of a suspended user, too.
    let token = h.own_token("carol", &[], "pwd", now(), 600).await;
    let r = h
        .get(
            "/api/posts",
            &[("Authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_problem(&r, 403, "account_suspended");
    let key = h.api_key("carol", &[], false, None).await;
    let r = h.get("/api/posts", &[("X-API-Key", &key)]).await;
    assert_problem(&r, 403, "account_suspended");
}

#[tokio::test]
async fn row14_step_up_for_mfa_and_max_age() {
    let h = Harness::start().await;
    let pwd = h.own_token("bob", &[], "pwd", now(), 600).await;
    let r = h
        .get(
            "/billing/invoices",
            &[("Authorization", &format!("Bearer {pwd}"))],
        )
        .await;
    assert_problem(&r, 401, "insufficient_user_authentication");
    let c = r.challenges();
    assert_eq!(c.len(), 1);
    assert!(c[0].starts_with(
        "Bearer realm=\"api\", error=\"insufficient_user_authentication\", error_description=\""
    ));
    assert!(c[0].ends_with("acr_values=\"mfa\""), "{}", c[0]);
    assert_eq!(r.json()["acr_values"], "mfa");
    let mfa = h.own_token("bob", &[], "mfa", now(), 600).await;
    let r = h
        .get(
            "/billing/invoices",
            &[("Authorization", &format!("Bearer {mfa}"))],
        )
        .await;
    assert_eq!(r.status, 200);
    // max_age: an authentication 10 minutes old is too old for a 5 minute route.
    let old = h.own_token("bob", &[], "pwd", now() - 600, 3600).await;
    let r = h
        .get("/fresh/x", &[("Authorization", &format!("Bearer {old}"))])
        .await;
    assert_problem(&r, 401, "insufficient_user_authentication");
    assert!(
        r.challenges()[0].ends_with(", max_age=300"),
        "{}",
        r.challenges()[0]
    );
    assert_eq!(r.json()["max_age"], 300);
    let r = h
        .get("/fresh/x", &[("Authorization", &format!("Bearer {pwd}"))])
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn row15_insufficient_role() {
    let h = Harness::start().await;
    let r = h
        .get(
            "/api/admin/users",
            &[("Authorization", &basic("bob", "bob-pw"))],
        )
        .await;
    assert_problem(&r, 403, "insufficient_role");
    assert!(r.challenges().is_empty());
    assert_eq!(r.json()["required_roles"], json!(["admin"]));
    let r = h
        .get(
            "/api/admin/users",
            &[("Authorization", &basic("alice", "alice-pw"))],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["user"], "alice");
    assert_eq!(r.json()["roles"], "admin,ops");
    assert_eq!(r.json()["auth"], "basic");
}

#[tokio::test]
async fn row15_minimal_disclosure_omits_required_roles() {
    let h = Harness::start_with("").await;
    drop(h);
    let (stop, rx) = tokio::sync::watch::channel(false);
    let up = common::echo_upstream(rx.clone()).await;
    let text = common::config_text(up, "").replace(
        "realm = \"api\"",
        "realm = \"api\"\ndisclosure = \"minimal\"",
    );
    let h = Harness::start_config(&text, up, stop, rx).await;
    let r = h
        .get(
            "/api/admin/users",
            &[("Authorization", &basic("bob", "bob-pw"))],
        )
        .await;
    assert_problem(&r, 403, "insufficient_role");
    assert!(r.json().get("required_roles").is_none());
}

#[tokio::test]
async fn row16_insufficient_scope_with_rfc6750_challenge() {
    let h = Harness::start().await;
    let token = h.own_token("bob", &["posts:read"], "pwd", now(), 600).await;
    let auth = format!("Bearer {token}");
    let r = h
        .send("POST", "/api/posts", &[("Authorization", &auth)])
        .await;
    assert_problem(&r, 403, "insufficient_scope");
    assert_eq!(
        r.challenges(),
        ["Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"posts:write\""]
    );
    assert_eq!(r.json()["required_scopes"], json!(["posts:write"]));
    let r = h.get("/api/posts", &[("Authorization", &auth)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["scopes"], "posts:read");
    let key = h.api_key("bob", &["posts:read"], false, None).await;
    let r = h.send("PUT", "/api/posts/1", &[("X-API-Key", &key)]).await;
    assert_problem(&r, 403, "insufficient_scope");
    let writer = h
        .own_token("bob", &["posts:read", "posts:write"], "pwd", now(), 600)
        .await;
    let r = h
        .send(
            "POST",
            "/api/posts",
            &[("Authorization", &format!("Bearer {writer}"))],
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn row17_tenant_mismatch() {
    let h = Harness::start().await;
    let r = h
        .get(
            "/tenants/acme/reports",
            &[("Authorization", &basic("bob", "bob-pw"))],
        )
        .await;
    assert_problem(&r, 403, "tenant_mismatch");
    let r = h
        .get(
            "/tenants/globex/reports",
            &[("Authorization", &basic("bob", "bob-pw"))],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["tenant"], "globex");
    // External tokens map the tenant through `tenant_claim`.
    let t = partner_token(
        json!({"iss": "https://partner.example", "aud": "api", "sub": "p1", "exp": now() + 600, "org_id": "acme"}),
    );
    let r = h
        .get(
            "/tenants/acme/x",
            &[("Authorization", &format!("Bearer {t}"))],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["user"], "p1");
}

#[tokio::test]
async fn row18_not_owner() {
    let h = Harness::start().await;
    let r = h
        .get(
            "/users/alice/settings",
            &[("Authorization", &basic("bob", "bob-pw"))],
        )
        .await;
    assert_problem(&r, 403, "not_owner");
    let r = h
        .get(
            "/users/bob/settings",
            &[("Authorization", &basic("bob", "bob-pw"))],
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn row19_read_only_key_on_unsafe_method() {
    let h = Harness::start().await;
    let key = h.api_key("bob", &["posts:write"], true, None).await;
    let r = h
        .send("DELETE", "/api/posts/1", &[("X-API-Key", &key)])
        .await;
    assert_problem(&r, 403, "read_only");
    let r = h.get("/api/posts/1", &[("X-API-Key", &key)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["auth"], "api_key");
}

#[tokio::test]
async fn row20_hidden_route_answers_404_for_any_refusal() {
    let h = Harness::start().await;
    for headers in [
        vec![],
        vec![("Authorization", basic("bob", "bob-pw"))],
        vec![("Authorization", "Bearer junk".to_owned())],
    ] {
        let hs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let r = h.get("/internal/metrics", &hs).await;
        assert_problem(&r, 404, "not_found");
        assert!(r.challenges().is_empty());
        assert!(r.json().get("required_roles").is_none());
    }
    let r = h
        .get(
            "/internal/metrics",
            &[("Authorization", &basic("alice", "alice-pw"))],
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn row21_upstream_unreachable_and_timeout() {
    if common::layer_mode() {
        // The Layer's app is in-process: there is no upstream to lose.
        return;
    }
    let (stop, rx) = tokio::sync::watch::channel(false);
    // A port nobody listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let h = Harness::start_config(&common::config_text(dead, ""), dead, stop, rx).await;
    let r = h.get("/public/x", &[]).await;
    assert_problem(&r, 502, "upstream_unavailable");
    let h = Harness::start().await;
    let r = h.get("/public/../slow", &[]).await;
    assert_eq!(r.status, 400);
    let r = h
        .send(
            "GET",
            "/slow",
            &[(
                "Authorization",
                &format!(
                    "Bearer {}",
                    h.own_token("bob", &[], "pwd", now(), 600).await
                ),
            )],
        )
        .await;
    assert_problem(&r, 504, "upstream_timeout");
}

#[tokio::test]
async fn row23_cors_preflight_needs_no_credentials() {
    let h = Harness::start().await;
    let r = h
        .send(
            "OPTIONS",
            "/api/admin/users",
            &[
                ("Origin", "https://app.example"),
                ("Access-Control-Request-Method", "POST"),
            ],
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(r.challenges().is_empty());
    // A refusal carries CORS headers so the script can read the 401.
    let r = h
        .get("/api/admin/users", &[("Origin", "https://app.example")])
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    // A foreign origin gets no allowance.
    let r = h
        .send(
            "OPTIONS",
            "/api/admin/users",
            &[
                ("Origin", "https://evil.example"),
                ("Access-Control-Request-Method", "POST"),
            ],
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(r.header("access-control-allow-origin").is_none());
    // A plain OPTIONS (no Access-Control-Request-Method) is an ordinary request.
    let r = h.send("OPTIONS", "/api/admin/users", &[]).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn path_normalization_defeats_encoding_tricks() {
    let h = Harness::start().await;
    for p in [
        "/public/../api/admin/users",
        "/public/%2e%2e/api/admin",
        "/public%2fapi",
        "/public/..;/api/admin",
        "/public/a%5cb",
        "/public/%00",
        "/public/%zz",
    ] {
        let r = h.get(p, &[]).await;
        assert_problem(&r, 400, "invalid_path");
    }
    // `//api/admin` and `/api/./admin` reach the admin route's checks, not a looser route.
    for p in [
        "//api/admin/users",
        "/api/./admin/users",
        "/api/%61dmin/users",
        "/api//admin/users/",
    ] {
        let r = h.get(p, &[]).await;
        assert_problem(&r, 401, "missing_credentials");
        assert_eq!(r.challenges(), [BEARER, BASIC, APIKEY], "{p}");
    }
    // The upstream receives exactly the normalized path.
    let r = h.get("/public//a/./b%20c", &[]).await;
    assert_eq!(r.json()["path"], "/public/a/b%20c");
}

#[tokio::test]
async fn identity_headers_replace_client_ones_and_credentials_are_not_forwarded() {
    let h = Harness::start().await;
    let r = h
        .get(
            "/api/posts/echo-headers",
            &[
                ("Authorization", &basic("bob", "bob-pw")),
                ("X-Gatehouse-User", "alice"),
                ("X-Gatehouse-Roles", "admin"),
            ],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["user"], "bob");
    assert_eq!(r.json()["roles"], "editor");
    let h2 = h
        .get(
            "/echo-headers",
            &[("X-API-Key", &h.api_key("bob", &[], false, None).await)],
        )
        .await;
    let echoed = h2.json();
    assert_eq!(echoed["x-gatehouse-user"], "bob");
    assert!(echoed.get("x-api-key").is_none());
    if !common::layer_mode() {
        // The proxy starts the chain; an in-process app has the peer address itself.
        assert_eq!(echoed["x-forwarded-for"], "127.0.0.1");
    }
}

#[tokio::test]
async fn utf8_basic_credentials_rfc7617() {
    let h = Harness::start().await;
    let r = h
        .get(
            "/api/posts",
            &[("Authorization", &basic("josé", "contraseña-£"))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["user"], "josé");
}

#[tokio::test]
async fn browsers_get_html_with_the_same_status_and_challenges() {
    let h = Harness::start().await;
    let accept = (
        "Accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    );
    let r = h.get("/api/admin/users", &[accept]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.challenges(), [BEARER, BASIC, APIKEY]);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(r.text.contains("action=\"/auth/login\""));
    assert!(r.text.contains("value=\"/api/admin/users\""));
    let r = h
        .get(
            "/api/admin/users",
            &[accept, ("Authorization", &basic("bob", "bob-pw"))],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(r.header("location").is_none());
    assert!(!r.text.contains("/auth/login"));
    assert!(r.text.contains("<code>admin</code>"));
}

#[tokio::test]
async fn healthz_readyz_and_jwks() {
    let h = Harness::start().await;
    assert_eq!(h.get("/healthz", &[]).await.status, 200);
    assert_eq!(h.get("/readyz", &[]).await.status, 200);
    let r = h.get("/.well-known/jwks.json", &[]).await;
    let k = &r.json()["keys"][0];
    assert_eq!(k["kty"], "OKP");
    assert_eq!(k["crv"], "Ed25519");
    assert_eq!(k["alg"], "EdDSA");
    assert!(k.get("d").is_none());
}

#[tokio::test]
async fn proxy_streams_bodies_and_strips_hop_by_hop_headers() {
    let h = Harness::start().await;
    let body: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let token = format!(
        "Bearer {}",
        h.own_token("bob", &[], "pwd", now(), 600).await
    );
    let r = h
        .send_body(
            "POST",
            "/echo-body",
            &[("Authorization", &token)],
            axum::body::Body::from(body.clone()),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text, String::from_utf8_lossy(&body));
    if common::layer_mode() {
        // Hop-by-hop headers and `X-Forwarded-*` are the proxy's; the Layer's app is
        // in-process (the body above is streamed to it all the same).
        return;
    }
    let r = h
        .get(
            "/echo-headers",
            &[
                ("Authorization", &token),
                ("Connection", "X-Secret-Hop"),
                ("X-Secret-Hop", "1"),
                ("Proxy-Authorization", "Basic eDp5"),
                ("X-Kept", "yes"),
            ],
        )
        .await;
    let echoed = r.json();
    assert!(echoed.get("x-secret-hop").is_none(), "{echoed}");
    assert!(echoed.get("proxy-authorization").is_none());
    assert_eq!(echoed["x-kept"], "yes");
    assert_eq!(echoed["x-forwarded-proto"], "http");
}

#[tokio::test]
async fn oversized_declared_body_is_413() {
    let (stop, rx) = tokio::sync::watch::channel(false);
    let up = common::echo_upstream(rx.clone()).await;
    let text = common::config_text(up, "")
        .replace("realm = \"api\"", "realm = \"api\"\nmax_body_bytes = 1000");
    let h = Harness::start_config(&text, up, stop, rx).await;
    let r = h
        .send_body(
            "POST",
            "/public/x",
            &[],
            axum::body::Body::from(vec![0u8; 5000]),
        )
        .await;
    assert_problem(&r, 413, "payload_too_large");
}

/// `[problems] base_uri`: every problem `type` is the base plus the code — rendered and
/// prepared refusals alike, on the proxy and the Layer (this file runs under both).
#[tokio::test]
async fn problem_types_follow_problems_base_uri() {
    let h = Harness::start_with("\n[problems]\nbase_uri = \"https://docs.example.com/errors/\"\n")
        .await;
    let bob = basic("bob", "bob-pw");
    for (path, headers, code) in [
        // Prepared (no facts of its own) …
        ("/api/posts", vec![], "missing_credentials"),
        ("/.git/config", vec![], "forbidden_path"),
        // … and rendered per request.
        (
            "/api/admin/x",
            vec![("Authorization", bob.as_str())],
            "insufficient_role",
        ),
        (
            "/api/posts",
            vec![("Authorization", "Bearer")],
            "invalid_request",
        ),
    ] {
        // Twice: the second answer of a prepared kind comes from its template.
        for _ in 0..2 {
            let r = h.get(path, &headers).await;
            assert_eq!(r.error(), code, "{}", r.text);
            assert_eq!(
                r.json()["type"],
                format!("https://docs.example.com/errors/{code}"),
                "{}",
                r.text
            );
        }
    }
    let login = h.login("alice", "wrong-password").await;
    assert_eq!(
        login.json()["type"],
        "https://docs.example.com/errors/invalid_credentials"
    );
    // Without the key: the URN.
    let h = Harness::start().await;
    let r = h.get("/api/posts", &[]).await;
    assert_eq!(
        r.json()["type"],
        "urn:gatehouse:problem:missing_credentials"
    );
}

/// `[pages]`: a browser gets the operator's 403 page, given the problem members (escaped);
/// kinds without a template keep the built-in page; JSON clients are unaffected.
#[tokio::test]
async fn branded_pages_replace_the_built_in_ones() {
    let dir = std::env::temp_dir().join(format!(
        "gatehouse-pages-{}-{:016x}",
        std::process::id(),
        u64::from_le_bytes(gatehouse_server::random::random_bytes::<8>())
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("403.html"),
        "<html><body class=\"acme\"><h1>{{ title }}</h1><p>{{ detail }}</p><ul>{% for r in required_roles %}<li>{{ r }}</li>{% endfor %}</ul><small>{{ error }} {{ request_id }}</small></body></html>",
    )
    .unwrap();
    let h = Harness::start_with(&format!("\n[pages]\ndir = \"{}\"\n", dir.display())).await;
    let bob = basic("bob", "bob-pw");
    let html = [("Authorization", bob.as_str()), ("Accept", "text/html")];
    let r = h.get("/api/admin/x", &html).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let id = r.header("x-request-id").unwrap();
    assert!(
        r.text
            .starts_with("<html><body class=\"acme\"><h1>Forbidden</h1>"),
        "{}",
        r.text
    );
    assert!(r.text.contains("<li>admin</li>"), "{}", r.text);
    assert!(
        r.text.contains(&format!("insufficient_role {id}")),
        "{}",
        r.text
    );
    // No sign-in.html: the built-in sign-in page.
    let r = h.get("/api/posts", &[("Accept", "text/html")]).await;
    assert_eq!(r.status, 401);
    assert!(r.text.contains("action=\"/auth/login\""), "{}", r.text);
    // JSON clients get the problem body as before.
    let r = h
        .get("/api/admin/x", &[("Authorization", bob.as_str())])
        .await;
    assert_eq!(r.json()["error"], "insufficient_role");
    let _ = std::fs::remove_dir_all(dir);
}
