//! The token service end to end: login, refresh rotation with theft detection, logout and
//! revocation (row 10), MFA and step-up (row 14), browser sessions with CSRF protection,
//! and signing-key rotation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::Harness;
use gatehouse_core::totp::Totp;
use gatehouse_server::clock::now;

const SESSION_ROUTE: &str = r#"
[[route]]
name = "app"
path = "/app/**"
auth = ["session", "bearer"]
"#;

async fn start() -> Harness {
    Harness::start_with(SESSION_ROUTE).await
}

fn json_body(v: serde_json::Value) -> axum::body::Body {
    axum::body::Body::from(v.to_string())
}

/// The claims of a JWT (its signature is the gateway's business; the tests read what it says).
fn claims_of(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn login(h: &Harness, user: &str, pw: &str) -> common::Resp {
    h.send_body(
        "POST",
        "/auth/login",
        &[("Content-Type", "application/json")],
        json_body(serde_json::json!({"username": user, "password": pw})),
    )
    .await
}

async fn refresh(h: &Harness, token: &str) -> common::Resp {
    h.send_body(
        "POST",
        "/auth/refresh",
        &[("Content-Type", "application/json")],
        json_body(serde_json::json!({"refresh_token": token})),
    )
    .await
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

/// Polls until `f` holds (revocations reach other nodes within a second).
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..60 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn login_returns_oauth_shaped_tokens_that_work() {
    let h = start().await;
    let r = login(&h, "bob", "bob-pw").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let b = r.json();
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["expires_in"], 900);
    assert!(b["refresh_token"].as_str().unwrap().starts_with("ghr_"));
    let access = b["access_token"].as_str().unwrap();
    let r = h
        .get("/api/posts", &[("Authorization", &bearer(access))])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["user"], "bob");
    assert_eq!(r.json()["auth"], "bearer");
    // Form bodies work too (no browser: no Origin check needed for JSON clients only).
    let r = h
        .send_body(
            "POST",
            "/auth/login",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Origin", &format!("http://{}", h.addr)),
                ("Host", &h.addr.to_string()),
            ],
            axum::body::Body::from("username=bob&password=bob-pw"),
        )
        .await;
    assert_eq!(r.status, 303);
}

#[tokio::test]
async fn login_refusals_follow_the_table() {
    let h = start().await;
    let wrong = login(&h, "bob", "nope").await;
    let unknown = login(&h, "nobody", "nope").await;
    for r in [&wrong, &unknown] {
        assert_eq!(r.status, 401);
        assert_eq!(r.error(), "invalid_credentials");
        assert!(!r.challenges().is_empty());
    }
    assert_eq!(wrong.json()["detail"], unknown.json()["detail"]);
    let r = login(&h, "carol", "carol-pw").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.error(), "account_suspended");
    let r = h
        .send_body(
            "POST",
            "/auth/login",
            &[("Content-Type", "text/plain")],
            axum::body::Body::from("x"),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error(), "invalid_request");
    let r = h
        .send_body(
            "POST",
            "/auth/login",
            &[("Content-Type", "application/json")],
            json_body(serde_json::json!({"username": "bob"})),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let h = start().await;
    let b = login(&h, "bob", "bob-pw").await.json();
    let r1 = b["refresh_token"].as_str().unwrap().to_owned();
    let a1 = b["access_token"].as_str().unwrap().to_owned();
    let r = refresh(&h, &r1).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let b2 = r.json();
    let r2 = b2["refresh_token"].as_str().unwrap().to_owned();
    let a2 = b2["access_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);
    // How the user signed in (RFC 8176 `amr`) is kept with the session: the minted tokens
    // say `pwd`, before and after the rotation, as the session does.
    assert_eq!(claims_of(&a1)["amr"], serde_json::json!(["pwd"]));
    assert_eq!(claims_of(&a2)["amr"], serde_json::json!(["pwd"]));
    assert_eq!(claims_of(&a2)["acr"], "pwd");
    let sid = claims_of(&a2)["sid"].as_str().unwrap().to_owned();
    let session = h.gw.store.get_session(&sid).await.unwrap().unwrap();
    assert_eq!(session.amr, ["pwd"]);
    assert_eq!(
        h.get("/api/posts", &[("Authorization", &bearer(&a2))])
            .await
            .status,
        200
    );
    // The old refresh token again: suspected theft. 401 invalid_token, and the family dies.
    let r = refresh(&h, &r1).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error(), "invalid_token");
    let r = refresh(&h, &r2).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error(), "invalid_token");
    for a in [&a1, &a2] {
        let r = h.get("/api/posts", &[("Authorization", &bearer(a))]).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.error(), "token_revoked");
    }
    let r = refresh(&h, "ghr_unknown").await;
    assert_eq!(r.error(), "invalid_token");
    let r = refresh(&h, "not-a-refresh-token").await;
    assert_eq!(r.error(), "invalid_token");
}

#[tokio::test]
async fn row10_logout_revokes_access_and_refresh_tokens() {
    let h = start().await;
    let b = login(&h, "bob", "bob-pw").await.json();
    let access = b["access_token"].as_str().unwrap().to_owned();
    let r = h
        .send(
            "POST",
            "/auth/logout",
            &[("Authorization", &bearer(&access))],
        )
        .await;
    assert_eq!(r.status, 204);
    let r = h
        .get("/api/posts", &[("Authorization", &bearer(&access))])
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error(), "token_revoked");
    assert_eq!(
        r.challenges(),
        [
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"The access token has been revoked\""
        ]
    );
    let r = refresh(&h, b["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.error(), "invalid_token");
    // Logging out needs a valid token.
    let r = h.send("POST", "/auth/logout", &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error(), "missing_credentials");
}

#[tokio::test]
async fn admin_session_revocation_reaches_running_gateways() {
    let h = start().await;
    let b = login(&h, "bob", "bob-pw").await.json();
    let access = b["access_token"].as_str().unwrap().to_owned();
    // Another process (the CLI) revokes through the store only.
    let ids =
        h.gw.store
            .revoke_user_sessions("bob", "test", now())
            .await
            .unwrap();
    assert_eq!(ids.len(), 1);
    eventually("the revocation to be synced", || {
        let h = &h;
        let access = access.clone();
        async move {
            h.get("/api/posts", &[("Authorization", &bearer(&access))])
                .await
                .error()
                == "token_revoked"
        }
    })
    .await;
}

async fn enroll(h: &Harness, user: &str) -> Vec<u8> {
    let secret = gatehouse_core::totp::generate_secret(&[42u8; 20]);
    let sealed =
        gatehouse_server::auth::mfa::seal_totp_secret(&h.gw.secrets, user, &secret).unwrap();
    h.gw.store.set_mfa_secret(user, Some(sealed)).await.unwrap();
    secret
}

async fn mfa(h: &Harness, token: &str, code: &str) -> common::Resp {
    h.send_body(
        "POST",
        "/auth/mfa",
        &[("Content-Type", "application/json")],
        json_body(serde_json::json!({"mfa_token": token, "code": code})),
    )
    .await
}

#[tokio::test]
async fn mfa_login_and_step_up() {
    let h = start().await;
    // Before MFA: a password token is refused on the MFA route with the RFC 9470 challenge.
    let pwd = login(&h, "bob", "bob-pw").await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h
        .get("/billing/x", &[("Authorization", &bearer(&pwd))])
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error(), "insufficient_user_authentication");
    let secret = enroll(&h, "bob").await;
    let r = login(&h, "bob", "bob-pw").await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.error(), "mfa_required");
    let token = r.json()["mfa_token"].as_str().unwrap().to_owned();
    // A wrong password never reveals that MFA is on.
    assert_eq!(
        login(&h, "bob", "wrong").await.error(),
        "invalid_credentials"
    );
    let t = Totp::new(&secret);
    let step = now() / 30;
    let code = format!("{:06}", t.code_at(step));
    let wrong = format!("{:06}", (t.code_at(step) + 1) % 1_000_000);
    assert_eq!(mfa(&h, &token, &wrong).await.error(), "invalid_credentials");
    let r = mfa(&h, &token, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let access = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims_of(&access)["acr"], "mfa");
    assert_eq!(
        claims_of(&access)["amr"],
        serde_json::json!(["pwd", "otp", "mfa"])
    );
    let r = h
        .get("/billing/x", &[("Authorization", &bearer(&access))])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The same time-step is never accepted twice (RFC 6238 §5.2).
    let token2 = login(&h, "bob", "bob-pw").await.json()["mfa_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(mfa(&h, &token2, &code).await.error(), "invalid_credentials");
    // A tampered mfa_token is refused.
    let mut bad = token2.clone();
    bad.insert(5, 'x');
    assert_eq!(mfa(&h, &bad, &code).await.error(), "invalid_token");
}

#[tokio::test]
async fn mfa_token_allows_a_few_attempts_only() {
    let h = start().await;
    let secret = enroll(&h, "bob").await;
    let token = login(&h, "bob", "bob-pw").await.json()["mfa_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = Totp::new(&secret);
    let step = now() / 30;
    let right = t.code_at(step);
    let mut tried = 0;
    let mut n = 0u32;
    while tried < 5 {
        n += 1;
        let guess = (right + n) % 1_000_000;
        if [t.code_at(step - 1), t.code_at(step + 1)].contains(&guess) {
            continue;
        }
        assert_eq!(
            mfa(&h, &token, &format!("{guess:06}")).await.error(),
            "invalid_credentials"
        );
        tried += 1;
    }
    // Even the right code is refused now: the token is spent.
    assert_eq!(
        mfa(&h, &token, &format!("{right:06}")).await.error(),
        "invalid_token"
    );
}

fn cookie_of(r: &common::Resp) -> String {
    let set = r.header("set-cookie").expect("a Set-Cookie");
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Lax"), "{set}");
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn browser_session_cookie_csrf_and_sign_out() {
    let h = start().await;
    let origin = format!("http://{}", h.addr);
    let host = h.addr.to_string();
    let form = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Origin", origin.as_str()),
        ("Host", host.as_str()),
    ];
    let r = h
        .send_body(
            "POST",
            "/auth/login",
            &form,
            axum::body::Body::from("username=bob&password=bob-pw&return_to=%2Fapp%2Fhome"),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(r.header("location"), Some("/app/home"));
    let cookie = cookie_of(&r);
    let r = h.get("/app/home", &[("Cookie", &cookie)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["user"], "bob");
    assert_eq!(r.json()["auth"], "session");
    // Cookies do not count on routes that do not take sessions.
    assert_eq!(
        h.get("/api/posts", &[("Cookie", &cookie)]).await.error(),
        "missing_credentials"
    );
    // CSRF: an unsafe method on a cookie needs our own origin.
    let r = h.send("POST", "/app/items", &[("Cookie", &cookie)]).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.error(), "csrf_rejected");
    let r = h
        .send(
            "POST",
            "/app/items",
            &[
                ("Cookie", &cookie),
                ("Origin", "https://evil.example"),
                ("Host", &host),
            ],
        )
        .await;
    assert_eq!(r.error(), "csrf_rejected");
    let r = h
        .send(
            "POST",
            "/app/items",
            &[("Cookie", &cookie), ("Sec-Fetch-Site", "same-origin")],
        )
        .await;
    assert_eq!(r.status, 200);
    // Login CSRF: a cross-site form post is refused.
    let r = h
        .send_body(
            "POST",
            "/auth/login",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Origin", "https://evil.example"),
                ("Host", &host),
            ],
            axum::body::Body::from("username=bob&password=bob-pw"),
        )
        .await;
    assert_eq!(r.error(), "csrf_rejected");
    // An open redirect is not possible.
    let r = h
        .send_body(
            "POST",
            "/auth/login",
            &form,
            axum::body::Body::from("username=bob&password=bob-pw&return_to=%2F%2Fevil.example%2F"),
        )
        .await;
    assert_eq!(r.header("location"), Some("/"));
    // Sign out: the cookie is cleared and the session is dead.
    let r = h
        .send(
            "POST",
            "/auth/logout",
            &[("Cookie", &cookie), ("Origin", &origin), ("Host", &host)],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    let r = h.get("/app/home", &[("Cookie", &cookie)]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error(), "token_revoked");
    // A forged cookie is invalid_token.
    let r = h
        .get(
            "/app/home",
            &[("Cookie", "gatehouse_session=v1.x.y.pwd.1.99999999999.AAAA")],
        )
        .await;
    assert_eq!(r.error(), "invalid_token");
}

/// A refused sign-in form gets the page again, never a `Basic`/`Digest` challenge: browsers
/// answer those with their native dialog (headless Chromium fails the navigation with
/// `ERR_INVALID_AUTH_CREDENTIALS`), which re-posts the form and loops on a wrong password.
#[tokio::test]
async fn refused_sign_in_form_opens_no_browser_dialog() {
    gatehouse_server::install_crypto();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let upstream = common::echo_upstream(rx.clone()).await;
    let text = common::config_text(upstream, "").replacen(
        r#"auth = ["bearer", "api_key"]"#,
        r#"auth = ["basic", "digest"]"#,
        1,
    );
    let h = Harness::start_config(&text, upstream, stop, rx).await;
    let origin = format!("http://{}", h.addr);
    let host = h.addr.to_string();
    let r = h
        .send_body(
            "POST",
            "/auth/login",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
                ("Origin", &origin),
                ("Host", &host),
            ],
            axum::body::Body::from("username=bob&password=nope&return_to=%2Fapp%2Fhome"),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.challenges(), ["Bearer realm=\"api\""]);
    assert!(r.text.contains("action=\"/auth/login\""), "{}", r.text);
    assert!(r.text.contains("name=\"return_to\" value=\"/app/home\""));
    // API clients still get the configured challenges.
    let r = login(&h, "bob", "nope").await;
    assert_eq!(r.status, 401);
    let c = r.challenges();
    assert!(c[0].starts_with("Basic "), "{c:?}");
    assert!(c.iter().any(|c| c.starts_with("Digest ")), "{c:?}");
}

#[tokio::test]
async fn signing_key_rotation_keeps_old_tokens_valid() {
    let h = start().await;
    let old = h.own_token("bob", &[], "pwd", now(), 600).await;
    let before = h.get("/.well-known/jwks.json", &[]).await.json()["keys"]
        .as_array()
        .unwrap()
        .len();
    let key = gatehouse_server::keys::generate(now() + 1).unwrap();
    h.gw.store.add_signing_key(key).await.unwrap();
    eventually("the new key to be published", || {
        let h = &h;
        async move {
            h.get("/.well-known/jwks.json", &[]).await.json()["keys"]
                .as_array()
                .unwrap()
                .len()
                == before + 1
        }
    })
    .await;
    let new = h.own_token("bob", &[], "pwd", now(), 600).await;
    assert_ne!(
        old.split('.').next(),
        new.split('.').next(),
        "the newest key signs"
    );
    for t in [&old, &new] {
        assert_eq!(
            h.get("/api/posts", &[("Authorization", &bearer(t))])
                .await
                .status,
            200
        );
    }
}

#[tokio::test]
async fn spa_on_another_origin_can_log_in_with_cors() {
    let h = start().await;
    let r = h
        .send(
            "OPTIONS",
            "/auth/login",
            &[
                ("Origin", "https://app.example"),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type"),
            ],
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let r = h
        .send_body(
            "POST",
            "/auth/login",
            &[
                ("Content-Type", "application/json"),
                ("Origin", "https://app.example"),
            ],
            json_body(serde_json::json!({"username": "bob", "password": "nope"})),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let exposed = r.header("access-control-expose-headers").unwrap();
    assert!(exposed.contains("WWW-Authenticate"), "{exposed}");
}

/// A node whose periodic key sync never runs during the test (`key_sync = "1h"`) and whose
/// forced re-reads of the signing keys are at most one per hour: whatever it accepts with
/// a key added after it started, it learned from the one forced re-read.
async fn start_without_key_sync() -> Harness {
    let options = gatehouse_server::BuildOptions {
        key_reload_floor: Duration::from_secs(3600),
        ..Default::default()
    };
    // (The flood below must not be throttled as failed authentications first.)
    let extra = "[tokens]\nkey_sync = \"1h\"\n\n\
                 [throttle]\nfailed_per_ip = { max = 1000, per = \"1m\" }\n";
    Harness::start_with_options(extra, options).await
}

/// A token of ours signed with a key this node has not loaded (another node created it, or
/// `keys rotate` ran) is accepted on the first request: the unknown `kid` makes the node
/// re-read the store before refusing (issue 20).
#[tokio::test]
async fn a_token_signed_with_a_key_newer_than_the_node_is_accepted_at_once() {
    let h = start_without_key_sync().await;
    let key = gatehouse_server::keys::generate(now() + 1).unwrap();
    let kid = key.kid.clone();
    h.gw.store.add_signing_key(key).await.unwrap();
    // "Another node": the keys as the store has them now, the new one signing.
    let theirs = gatehouse_server::keys::OwnKeys::load_or_create(h.gw.store.as_ref(), now())
        .await
        .unwrap();
    assert_eq!(theirs.current().map(|k| k.kid.as_str()), Some(kid.as_str()));
    assert!(
        h.gw.own_keys().keys.iter().all(|k| k.kid != kid),
        "this node has not loaded the new key"
    );
    let u = h.gw.store.get_user("bob").await.unwrap().unwrap();
    let token = gatehouse_server::tokens::issue(
        &theirs,
        &h.gw.runtime().config.tokens,
        &gatehouse_server::tokens::TokenRequest {
            user: &u,
            scopes: &[],
            acr: "pwd",
            auth_time: now(),
            amr: &[],
            session_id: None,
            now: now(),
            ttl: Duration::from_secs(600),
        },
    )
    .unwrap();
    let r = h
        .get("/api/posts", &[("Authorization", &bearer(&token))])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(h.gw.own_key_reload.reads(), 1, "one forced re-read");
    // The node now publishes and signs with the new key too.
    assert!(h.gw.own_keys().keys.iter().any(|k| k.kid == kid));
    assert_eq!(
        h.gw.own_keys().current().map(|k| k.kid.clone()),
        Some(kid),
        "the newest key signs"
    );
}

/// Tokens with random `kid`s (forged) are refused as `invalid_token`, and however many
/// arrive, the store is re-read at most once per floor interval (counted, not timed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_kids_reads_the_store_once_per_floor() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let h = std::sync::Arc::new(start_without_key_sync().await);
    let genuine = h.own_token("bob", &[], "pwd", now(), 600).await;
    let (_, rest) = genuine.split_once('.').unwrap();
    let forged: Vec<String> = (0..40)
        .map(|i| {
            let header = format!(r#"{{"typ":"at+jwt","alg":"EdDSA","kid":"forged-{i}"}}"#);
            format!("{}.{rest}", b64.encode(header))
        })
        .collect();
    let requests: Vec<_> = forged
        .into_iter()
        .map(|t| {
            let h = std::sync::Arc::clone(&h);
            tokio::spawn(
                async move { h.get("/api/posts", &[("Authorization", &bearer(&t))]).await },
            )
        })
        .collect();
    for r in requests {
        let r = r.await.unwrap();
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(r.error(), "invalid_token");
        assert!(
            r.header("www-authenticate")
                .is_some_and(|c| c.contains("Token key is not known")),
            "{:?}",
            r.header("www-authenticate")
        );
    }
    assert_eq!(h.gw.own_key_reload.reads(), 1);
    // The genuine token never needed a re-read.
    let r = h
        .get("/api/posts", &[("Authorization", &bearer(&genuine))])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(h.gw.own_key_reload.reads(), 1);
}
