//! Rows 4 and 24 end to end: failed-authentication throttling per client IP and per account
//! (with known sources spared), no password hashing for throttled requests, and quotas with
//! `RateLimit-*` headers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;

use common::{Harness, basic};
use tokio::sync::watch;

async fn start(throttle: &str, extra_routes: &str) -> Harness {
    let (stop, rx) = watch::channel(false);
    let up = common::echo_upstream(rx.clone()).await;
    let text =
        common::config_text(up, extra_routes).replacen("[cors]", &format!("{throttle}\n[cors]"), 1);
    Harness::start_config(&text, up, stop, rx).await
}

fn from(ip: &str) -> (&'static str, String) {
    ("X-Forwarded-For", ip.to_owned())
}

async fn get_as(h: &Harness, path: &str, auth: &str, ip: &str) -> common::Resp {
    let (n, v) = from(ip);
    h.get(path, &[("Authorization", auth), (n, &v)]).await
}

#[tokio::test]
async fn row04_client_ip_is_locked_and_nothing_is_hashed_meanwhile() {
    let h = start("[throttle]\ntarpit = \"0s\"\nfailed_per_ip = { max = 3, per = \"1m\" }\nfailed_per_account = { max = 100, per = \"1m\" }\n", "").await;
    for user in ["a", "b", "c"] {
        let r = get_as(&h, "/api/posts", &basic(user, "wrong"), "198.51.100.7").await;
        assert_eq!(r.error(), "invalid_credentials");
    }
    let hashed = h.gw.hashes_started.load(Ordering::SeqCst);
    // Even the right password is not checked now: 429 before any hashing.
    let r = get_as(
        &h,
        "/api/posts",
        &basic("alice", "alice-pw"),
        "198.51.100.7",
    )
    .await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.error(), "too_many_attempts");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(r.challenges().is_empty());
    assert_eq!(r.json()["retry_after"], retry);
    // A locked client loses its keep-alive connection (a flood pays a handshake per try).
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(h.gw.hashes_started.load(Ordering::SeqCst), hashed);
    // Other clients are not affected.
    let r = get_as(
        &h,
        "/api/posts",
        &basic("alice", "alice-pw"),
        "198.51.100.8",
    )
    .await;
    assert_eq!(r.status, 200);
    // Bad tokens do not count toward the password lock (they have their own budget).
    for _ in 0..5 {
        let r = get_as(&h, "/api/posts", "Bearer garbage", "198.51.100.9").await;
        assert_eq!(r.error(), "invalid_token");
    }
    let r = get_as(&h, "/api/posts", &basic("a", "wrong"), "198.51.100.9").await;
    assert_eq!(r.error(), "invalid_credentials");
}

/// Issue 21: one client behind an address (a NAT, an unlisted load balancer) floods garbage
/// tokens and wrong API keys; another client on the same address keeps its valid token and
/// key working, while passwords from that address still meet the lock before any hashing.
#[tokio::test]
async fn row04_garbage_tokens_never_lock_out_valid_ones_from_the_same_address() {
    let h = start("[throttle]\ntarpit = \"0s\"\nfailed_per_ip = { max = 3, per = \"1m\" }\nfailed_per_account = { max = 100, per = \"1m\" }\nfailed_tokens_per_ip = { max = 5, per = \"1m\" }\n", "").await;
    let nat = "203.0.113.50";
    let now = gatehouse_server::clock::now();
    let token = format!(
        "Bearer {}",
        h.own_token("alice", &["posts:read"], "pwd", now, 600).await
    );
    let key = h.api_key("alice", &["posts:read"], false, None).await;
    // A wrong key with a real prefix (store lookup and hash check) and one without.
    let mut wrong_key = key.clone();
    let last = if wrong_key.ends_with('A') { "B" } else { "A" };
    wrong_key.replace_range(wrong_key.len() - 1.., last);
    let key_as = |k: &str| {
        let (n, v) = from(nat);
        [("X-API-Key", k.to_owned()), (n, v)]
    };
    let get_key = |k: String| {
        let h = &h;
        async move {
            let hs = key_as(&k);
            let hs: Vec<(&str, &str)> = hs.iter().map(|(n, v)| (*n, v.as_str())).collect();
            h.get("/api/posts", &hs).await
        }
    };
    for round in 0..20 {
        // The neighbour: garbage tokens and wrong keys, counted against the address.
        let r = get_as(&h, "/api/posts", "Bearer not.a.token", nat).await;
        assert!(
            ["invalid_token", "too_many_attempts"].contains(&r.error().as_str()),
            "{round}: {}",
            r.text
        );
        for k in [wrong_key.clone(), "gh_nothere_0000000000000000".to_owned()] {
            let r = get_key(k).await;
            assert!(
                ["invalid_credentials", "too_many_attempts"].contains(&r.error().as_str()),
                "{round}: {}",
                r.text
            );
        }
        // The legitimate client on the same address: every request is answered 200.
        let r = get_as(&h, "/api/posts", &token, nat).await;
        assert_eq!(r.status, 200, "{round}: {}", r.text);
        let r = get_key(key.clone()).await;
        assert_eq!(r.status, 200, "{round}: {}", r.text);
    }
    // The address spent its verification budget: unknown tokens are refused unverified,
    // with row 4's answer.
    let r = get_as(&h, "/api/posts", "Bearer other.garbage.token", nat).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.error(), "too_many_attempts");
    assert!(r.header("retry-after").is_some());
    let locks = h.gw.runtime().defense.locks(gatehouse_server::clock::now());
    assert!(
        locks
            .iter()
            .any(|(k, id, _)| k.as_str() == "tokens" && id == nat),
        "{locks:?}"
    );
    // None of that counted toward the password lock: wrong passwords are checked (3 of
    // them), then the address is locked for passwords before any hashing.
    for user in ["a", "b", "c"] {
        let r = get_as(&h, "/api/posts", &basic(user, "wrong"), nat).await;
        assert_eq!(r.error(), "invalid_credentials", "{}", r.text);
    }
    let hashed = h.gw.hashes_started.load(Ordering::SeqCst);
    for pair in [basic("d", "wrong"), basic("alice", "alice-pw")] {
        let r = get_as(&h, "/api/posts", &pair, nat).await;
        assert_eq!(r.status, 429, "{}", r.text);
        assert_eq!(r.error(), "too_many_attempts");
    }
    assert_eq!(h.gw.hashes_started.load(Ordering::SeqCst), hashed);
    // Both address locks on: the valid token and key still pass.
    assert_eq!(get_as(&h, "/api/posts", &token, nat).await.status, 200);
    assert_eq!(get_key(key.clone()).await.status, 200);
    // Even once the token's cache entry ends: verified before, it is verified again (API
    // keys are never cached; a known one is looked up again).
    h.gw.bearer_cache.clear();
    assert_eq!(get_as(&h, "/api/posts", &token, nat).await.status, 200);
    assert_eq!(get_key(key.clone()).await.status, 200);
    // Lifting the budget's lock (admin API: DELETE /admin/api/locks/tokens/<ip>) lets
    // unknown tokens be verified again.
    let defense = &h.gw.runtime().defense;
    let kind = locks
        .iter()
        .find(|(k, _, _)| k.as_str() == "tokens")
        .unwrap()
        .0;
    assert!(defense.unlock(kind, nat, gatehouse_server::clock::now()));
    let r = get_as(&h, "/api/posts", "Bearer other.garbage.token", nat).await;
    assert_eq!(r.error(), "invalid_token");
}

#[tokio::test]
async fn row04_account_lock_spares_known_sources_and_does_not_enumerate() {
    let h = start("[throttle]\ntarpit = \"0s\"\nfailed_per_ip = { max = 100, per = \"1m\" }\nfailed_per_account = { max = 3, per = \"15m\" }\n", "").await;
    // Bob signed in from his usual address before the attack.
    assert_eq!(
        get_as(&h, "/api/posts", &basic("bob", "bob-pw"), "192.0.2.10")
            .await
            .status,
        200
    );
    // An attacker guesses bob's password from several addresses.
    for ip in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        assert_eq!(
            get_as(&h, "/api/posts", &basic("bob", "guess"), ip)
                .await
                .error(),
            "invalid_credentials"
        );
    }
    let hashed = h.gw.hashes_started.load(Ordering::SeqCst);
    for ip in ["203.0.113.1", "203.0.113.4"] {
        let r = get_as(&h, "/api/posts", &basic("bob", "bob-pw"), ip).await;
        assert_eq!(r.status, 429, "{ip}");
        assert_eq!(r.error(), "too_many_attempts");
    }
    assert_eq!(h.gw.hashes_started.load(Ordering::SeqCst), hashed);
    // The real bob, from where he signed in before, still gets in.
    assert_eq!(
        get_as(&h, "/api/posts", &basic("bob", "bob-pw"), "192.0.2.10")
            .await
            .status,
        200
    );
    // An unknown account answers exactly like an existing one.
    for ip in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        get_as(&h, "/api/posts", &basic("nobody", "guess"), ip).await;
    }
    let r = get_as(&h, "/api/posts", &basic("nobody", "guess"), "203.0.113.5").await;
    assert_eq!(r.error(), "too_many_attempts");
}

#[tokio::test]
async fn row04_login_endpoint_is_throttled_too() {
    let h = start(
        "[throttle]\ntarpit = \"0s\"\nfailed_per_ip = { max = 2, per = \"1m\" }\n",
        "",
    )
    .await;
    let login = |pw: &'static str| {
        let h = &h;
        async move {
            h.send_body(
                "POST",
                "/auth/login",
                &[("Content-Type", "application/json")],
                axum::body::Body::from(
                    serde_json::json!({"username": "bob", "password": pw}).to_string(),
                ),
            )
            .await
        }
    };
    assert_eq!(login("x").await.error(), "invalid_credentials");
    assert_eq!(login("y").await.error(), "invalid_credentials");
    let r = login("bob-pw").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.error(), "too_many_attempts");
}

#[tokio::test]
async fn row04_tarpit_holds_a_locked_clients_answer_after_recording_it() {
    let h = start("[throttle]\nfailed_per_ip = { max = 1, per = \"1m\" }\nfailed_per_account = { max = 100, per = \"1m\" }\ntarpit = \"1s\"\n", "").await;
    let ip = "198.51.100.20";
    // The failure that locks the client is answered at once.
    let r = get_as(&h, "/api/posts", &basic("alice", "wrong"), ip).await;
    assert_eq!(r.error(), "invalid_credentials");
    assert_eq!(h.gw.tarpit.held(), 0);
    let right = basic("alice", "alice-pw");
    let locked = get_as(&h, "/api/posts", &right, ip);
    tokio::pin!(locked);
    // The next one is held: the gateway has decided and recorded it while the client still
    // waits for its answer.
    loop {
        tokio::select! {
            r = &mut locked => panic!("answered without being held: {} {}", r.status, r.text),
            () = tokio::time::sleep(std::time::Duration::from_millis(5)) => {
                if h.gw.tarpit.held() == 1 {
                    break;
                }
            }
        }
    }
    let metrics = h.gw.render_metrics(gatehouse_server::clock::now());
    assert!(
        metrics.contains("reason=\"too_many_attempts\"} 1\n"),
        "recorded before the hold: {metrics}"
    );
    assert!(metrics.contains("gatehouse_tarpit_held 1\n"), "{metrics}");
    // Then the answer is the table's, unchanged.
    let r = locked.await;
    assert_eq!(r.status, 429);
    assert_eq!(r.error(), "too_many_attempts");
    assert!(r.header("retry-after").is_some());
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(h.gw.tarpit.held(), 0);
    // Other clients are never held.
    let r = get_as(&h, "/api/posts", &right, "198.51.100.21").await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn row24_quota_with_ratelimit_headers() {
    let h = start("", "\n[[route]]\nname = \"metered\"\npath = \"/metered/**\"\nauth = [\"basic\"]\nquota = { max = 2, per = \"1m\" }\n").await;
    let bob = basic("bob", "bob-pw");
    for remaining in ["1", "0"] {
        let r = h.get("/metered/x", &[("Authorization", &bob)]).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.header("ratelimit-limit"), Some("2"));
        assert_eq!(r.header("ratelimit-remaining"), Some(remaining));
    }
    let r = h.get("/metered/x", &[("Authorization", &bob)]).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.error(), "rate_limited");
    let retry = r.header("retry-after").unwrap().to_owned();
    assert_eq!(r.header("ratelimit-reset"), Some(retry.as_str()));
    assert_eq!(r.header("ratelimit-remaining"), Some("0"));
    assert!(r.challenges().is_empty());
    // Quotas are per principal.
    assert_eq!(
        h.get(
            "/metered/x",
            &[("Authorization", &basic("alice", "alice-pw"))]
        )
        .await
        .status,
        200
    );
    // Failed authentications never use the quota (row 24 comes after authentication).
    assert_eq!(
        h.get("/metered/x", &[("Authorization", &basic("alice", "no"))])
            .await
            .error(),
        "invalid_credentials"
    );
}

#[tokio::test]
async fn credential_cache_skips_rehashing_and_respects_suspension_and_revocation() {
    let h = start("", "").await;
    let alice = basic("alice", "alice-pw");
    assert_eq!(
        h.get("/api/posts", &[("Authorization", &alice)])
            .await
            .status,
        200
    );
    let hashed = h.gw.hashes_started.load(Ordering::SeqCst);
    for _ in 0..5 {
        assert_eq!(
            h.get("/api/posts", &[("Authorization", &alice)])
                .await
                .status,
            200
        );
    }
    assert_eq!(
        h.gw.hashes_started.load(Ordering::SeqCst),
        hashed,
        "cache hits hash nothing"
    );
    assert!(h.gw.cache_stats.basic.hits.load(Ordering::SeqCst) >= 5);
    // A wrong password is never answered from the cache.
    assert_eq!(
        h.get(
            "/api/posts",
            &[("Authorization", &basic("alice", "alice-pw!"))]
        )
        .await
        .error(),
        "invalid_credentials"
    );
    // Suspension reaches cached credentials within the suspended-set refresh (1 s).
    h.gw.store
        .suspend_user("alice", "audit", gatehouse_server::clock::now())
        .await
        .unwrap();
    let mut refused = false;
    for _ in 0..40 {
        let r = h.get("/api/posts", &[("Authorization", &alice)]).await;
        if r.error() == "account_suspended" {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(refused, "a suspension must reach cached Basic credentials");
    // Bearer: cached after the first use; a logout revokes it at once anyway.
    let body = serde_json::json!({"username": "bob", "password": "bob-pw"}).to_string();
    let r = h
        .send_body(
            "POST",
            "/auth/login",
            &[("Content-Type", "application/json")],
            axum::body::Body::from(body),
        )
        .await;
    let access = r.json()["access_token"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {access}");
    for _ in 0..3 {
        assert_eq!(
            h.get("/api/posts", &[("Authorization", &auth)])
                .await
                .status,
            200
        );
    }
    assert!(h.gw.cache_stats.bearer.hits.load(Ordering::SeqCst) >= 2);
    assert_eq!(
        h.send("POST", "/auth/logout", &[("Authorization", &auth)])
            .await
            .status,
        204
    );
    assert_eq!(
        h.get("/api/posts", &[("Authorization", &auth)])
            .await
            .error(),
        "token_revoked"
    );
}

/// A cached Bearer token is shared by its requests (its principal and identity headers are
/// built once): every hit forwards the same identity headers as the first request, and a
/// suspension still reaches the cached token on its next request, as does its lifting.
#[tokio::test]
async fn cached_bearer_tokens_keep_their_identity_headers_and_see_suspensions() {
    let h = start("", "").await;
    let token = h
        .own_token(
            "alice",
            &["posts:read", "posts:write"],
            "pwd",
            gatehouse_server::clock::now(),
            600,
        )
        .await;
    let auth = format!("Bearer {token}");
    let first = h.get("/api/posts/x", &[("Authorization", &auth)]).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let identity = |r: &common::Resp| {
        let j = r.json();
        ["user", "roles", "tenant", "scopes", "auth"].map(|k| j[k].clone())
    };
    assert_eq!(
        identity(&first),
        [
            "alice",
            "admin,ops",
            "acme",
            "posts:read posts:write",
            "bearer"
        ]
        .map(serde_json::Value::from)
    );
    let hits = h.gw.cache_stats.bearer.hits.load(Ordering::SeqCst);
    for _ in 0..3 {
        let r = h.get("/api/posts/x", &[("Authorization", &auth)]).await;
        assert_eq!(identity(&r), identity(&first));
    }
    assert_eq!(
        h.gw.cache_stats.bearer.hits.load(Ordering::SeqCst),
        hits + 3
    );
    // The store first (its poll every second must not lift it), then the set at once.
    h.gw.store
        .suspend_user("alice", "audit", 1_700_000_000)
        .await
        .unwrap();
    h.gw.suspended.set(
        "alice",
        Some(gatehouse_core::principal::AccountState::Suspended {
            at: 1_700_000_000,
            reason: "audit".into(),
        }),
    );
    let r = h.get("/api/posts/x", &[("Authorization", &auth)]).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.error(), "account_suspended");
    assert_eq!(r.json()["reason"], "audit");
    h.gw.store.unsuspend_user("alice").await.unwrap();
    h.gw.suspended.set("alice", None);
    let r = h.get("/api/posts/x", &[("Authorization", &auth)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(identity(&r), identity(&first));
    assert_eq!(
        h.gw.cache_stats.bearer.hits.load(Ordering::SeqCst),
        hits + 5,
        "all from the cache"
    );
}

/// Requests that arrive with one Basic pair while its password is being checked share that
/// check (single flight on a cache miss): eight at once on a cold cache cost one hash, and
/// the check leaves nothing behind. A wrong pair is checked again later, never remembered.
#[tokio::test]
async fn concurrent_requests_with_one_pair_share_one_password_check() {
    let h = start("", "").await;
    let alice = basic("alice", "alice-pw");
    let auth = [("Authorization", alice.as_str())];
    let before = h.gw.hashes_started.load(Ordering::SeqCst);
    let g = || h.get("/api/posts", &auth);
    let rs = tokio::join!(g(), g(), g(), g(), g(), g(), g(), g());
    for r in [rs.0, rs.1, rs.2, rs.3, rs.4, rs.5, rs.6, rs.7] {
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!(h.gw.hashes_started.load(Ordering::SeqCst), before + 1);
    assert!(h.gw.basic_inflight.is_empty());

    let wrong = basic("alice", "not-her-password");
    let auth = [("Authorization", wrong.as_str())];
    let before = h.gw.hashes_started.load(Ordering::SeqCst);
    let g = || h.get("/api/posts", &auth);
    let rs = tokio::join!(g(), g(), g(), g());
    for r in [rs.0, rs.1, rs.2, rs.3] {
        assert_eq!(r.error(), "invalid_credentials", "{}", r.text);
    }
    assert_eq!(h.gw.hashes_started.load(Ordering::SeqCst), before + 1);
    assert!(h.gw.basic_inflight.is_empty());
    // The failure was shared by the requests in flight only: the next one is checked anew.
    assert_eq!(
        h.get("/api/posts", &auth).await.error(),
        "invalid_credentials"
    );
    assert_eq!(h.gw.hashes_started.load(Ordering::SeqCst), before + 2);
}
