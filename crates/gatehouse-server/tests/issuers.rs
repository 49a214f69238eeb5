//! External issuers by JWKS URL (fetch on first use, refetch on an unknown `kid`,
//! rate-limited) and row 22: Gatehouse's own dependencies failing answer 503, never 401/403.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::flaky::Flaky;
use common::{Harness, basic};
use gatehouse_server::clock::now;
use gatehouse_store::open_store;
use serde_json::json;
use tokio::sync::watch;

struct IdpKey {
    kid: String,
    pkcs8: Vec<u8>,
    jwk: serde_json::Value,
}

fn idp_key(kid: &str) -> IdpKey {
    let doc = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
    IdpKey {
        kid: kid.to_owned(),
        pkcs8: doc.as_ref().to_vec(),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
                    "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())}),
    }
}

fn idp_token(key: &IdpKey, sub: &str, roles: &[&str]) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(key.kid.clone());
    let claims = json!({"iss": "https://idp.example", "aud": "api", "sub": sub, "exp": now() + 600,
                        "realm_access": {"roles": roles}, "scope": "posts:read"});
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_der(&key.pkcs8),
    )
    .unwrap()
}

/// A tiny identity provider serving a JWKS that the test can change, counting fetches.
async fn idp(
    keys: Arc<Mutex<Vec<serde_json::Value>>>,
    fetches: Arc<AtomicUsize>,
    stop: watch::Receiver<bool>,
) -> SocketAddr {
    slow_idp(keys, fetches, stop, std::time::Duration::ZERO).await
}

/// As [`idp`], answering each fetch after `delay`.
async fn slow_idp(
    keys: Arc<Mutex<Vec<serde_json::Value>>>,
    fetches: Arc<AtomicUsize>,
    stop: watch::Receiver<bool>,
    delay: std::time::Duration,
) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let router = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let keys = Arc::clone(&keys);
            let fetches = Arc::clone(&fetches);
            async move {
                fetches.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                axum::Json(json!({"keys": *keys.lock().unwrap()}))
            }
        }),
    );
    let mut rx = stop;
    tokio::spawn(gatehouse_server::serve_on(l, router, async move {
        let _ = rx.wait_for(|s| *s).await;
    }));
    addr
}

fn issuer_block(jwks: &str) -> String {
    format!(
        r#"
[[issuers]]
name = "idp"
issuer = "https://idp.example"
audience = "api"
jwks_url = "{jwks}"
algorithms = ["EdDSA"]
roles_claim = "realm_access.roles"
"#
    )
}

/// `extra` must go before the first `[[route]]` of the harness config: issuers are
/// spliced in after the `partner` issuer.
fn config_with_issuer(upstream: SocketAddr, jwks: &str) -> String {
    common::config_text(upstream, "").replacen(
        "[cors]",
        &format!("{}\n[cors]", issuer_block(jwks)),
        1,
    )
}

#[tokio::test]
async fn jwks_fetched_on_first_use_and_refetched_for_a_new_kid_rate_limited() {
    let (stop, rx) = watch::channel(false);
    let upstream = common::echo_upstream(rx.clone()).await;
    let k1 = idp_key("k1");
    let keys = Arc::new(Mutex::new(vec![k1.jwk.clone()]));
    let fetches = Arc::new(AtomicUsize::new(0));
    let idp_addr = idp(Arc::clone(&keys), Arc::clone(&fetches), rx.clone()).await;
    let text = config_with_issuer(upstream, &format!("http://{idp_addr}/jwks.json"));
    let h = Harness::start_config(&text, upstream, stop, rx).await;

    let t1 = idp_token(&k1, "ext-admin", &["admin"]);
    let r = h
        .get(
            "/api/admin/users",
            &[("Authorization", &format!("Bearer {t1}"))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["user"], "ext-admin");
    assert_eq!(r.json()["roles"], "admin");
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    // Known kid: no more fetches.
    let r = h
        .get(
            "/api/admin/users",
            &[("Authorization", &format!("Bearer {t1}"))],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    // The IdP rotates in k2; right after a fetch, unknown kids are not fetched again
    // (a flood of forged kids must not hammer the IdP): 401 invalid_token.
    let k2 = idp_key("k2");
    keys.lock().unwrap().push(k2.jwk.clone());
    let t2 = idp_token(&k2, "ext-user", &["editor"]);
    for _ in 0..5 {
        let r = h
            .get("/api/posts", &[("Authorization", &format!("Bearer {t2}"))])
            .await;
        assert_eq!(r.status, 401);
        assert_eq!(r.error(), "invalid_token");
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    // Once the interval has passed, the new kid triggers one refetch and is accepted.
    tokio::time::sleep(std::time::Duration::from_millis(10_200)).await;
    let r = h
        .get("/api/posts", &[("Authorization", &format!("Bearer {t2}"))])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    // A token from a key the IdP never published stays invalid.
    let forged = idp_token(&idp_key("k2"), "ext-admin", &["admin"]);
    let r = h
        .get(
            "/api/admin/users",
            &[("Authorization", &format!("Bearer {forged}"))],
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error(), "invalid_token");
}

/// Eight requests at once with one token, on a gateway that has not fetched the issuer's
/// keys yet (the fetch takes 300 ms): their statuses and `error` codes, and how many
/// verifications and key fetches they cost, and whether a verification is left in flight.
async fn eight_at_once(
    token: impl Fn(&IdpKey) -> String,
) -> (Vec<(u16, String)>, u64, usize, bool) {
    let (stop, rx) = watch::channel(false);
    let upstream = common::echo_upstream(rx.clone()).await;
    let k1 = idp_key("k1");
    let keys = Arc::new(Mutex::new(vec![k1.jwk.clone()]));
    let fetches = Arc::new(AtomicUsize::new(0));
    let delay = std::time::Duration::from_millis(300);
    let idp_addr = slow_idp(keys, Arc::clone(&fetches), rx.clone(), delay).await;
    let text = config_with_issuer(upstream, &format!("http://{idp_addr}/jwks.json"));
    let h = Harness::start_config(&text, upstream, stop, rx).await;
    let auth = format!("Bearer {}", token(&k1));
    let headers = [("Authorization", auth.as_str())];
    let g = || h.get("/api/posts", &headers);
    let rs = tokio::join!(g(), g(), g(), g(), g(), g(), g(), g());
    let answers = [rs.0, rs.1, rs.2, rs.3, rs.4, rs.5, rs.6, rs.7]
        .iter()
        .map(|r| (r.status.as_u16(), r.error()))
        .collect();
    let verified = h.gw.bearer_verifications.load(Ordering::SeqCst);
    let left = !h.gw.bearer_inflight.is_empty();
    (answers, verified, fetches.load(Ordering::SeqCst), left)
}

/// Requests that arrive with one uncached token while it is being verified share that
/// verification (single flight on a bearer cache miss, as for Basic): eight at once while
/// the issuer's keys are being fetched cost one verification, whose answer — an identity or
/// a refusal — they all get.
#[tokio::test]
async fn concurrent_requests_with_one_uncached_token_share_one_verification() {
    let (answers, verified, fetched, left) =
        eight_at_once(|k| idp_token(k, "ext-user", &["editor"])).await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    assert_eq!((verified, fetched, left), (1, 1, false));
    // A token with the issuer's `kid` but another key's signature: one verification too.
    let (answers, verified, fetched, left) =
        eight_at_once(|_| idp_token(&idp_key("k1"), "ext-admin", &["admin"])).await;
    assert!(
        answers
            .iter()
            .all(|(s, e)| *s == 401 && e == "invalid_token"),
        "{answers:?}"
    );
    assert_eq!((verified, fetched, left), (1, 1, false));
}

#[tokio::test]
async fn row22_unreachable_jwks_is_503_not_401() {
    let (stop, rx) = watch::channel(false);
    let upstream = common::echo_upstream(rx.clone()).await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let text = config_with_issuer(upstream, &format!("http://{dead}/jwks.json"));
    let h = Harness::start_config(&text, upstream, stop, rx).await;
    let t = idp_token(&idp_key("k1"), "someone", &[]);
    let r = h
        .get("/api/posts", &[("Authorization", &format!("Bearer {t}"))])
        .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.error(), "auth_unavailable");
    assert_eq!(r.header("retry-after"), Some("5"));
    assert!(r.challenges().is_empty());
}

#[tokio::test]
async fn row22_store_outage_is_503_and_tokens_keep_working() {
    let (stop, rx) = watch::channel(false);
    let upstream = common::echo_upstream(rx.clone()).await;
    let inner = open_store("sqlite::memory:").await.unwrap();
    common::seed(inner.as_ref()).await;
    let flaky = Arc::new(Flaky {
        inner,
        down: std::sync::atomic::AtomicBool::new(false),
    });
    let h = Harness::start_store(
        &common::config_text(upstream, ""),
        upstream,
        stop,
        rx,
        flaky.clone(),
    )
    .await;
    let token = h.own_token("bob", &["posts:read"], "pwd", now(), 600).await;
    let key = h.api_key("bob", &[], false, None).await;
    flaky.down.store(true, Ordering::SeqCst);
    for headers in [
        vec![("Authorization", basic("alice", "alice-pw"))],
        vec![("X-API-Key", key.clone())],
    ] {
        let hs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let r = h.get("/api/posts", &hs).await;
        assert_eq!(r.status, 503, "{}", r.text);
        assert_eq!(r.error(), "auth_unavailable");
        assert_eq!(r.header("retry-after"), Some("5"));
    }
    assert_eq!(h.get("/readyz", &[]).await.status, 503);
    // Self-contained tokens need no store round trip.
    let r = h
        .get(
            "/api/posts",
            &[("Authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(r.status, 200);
    flaky.down.store(false, Ordering::SeqCst);
    let r = h
        .get(
            "/api/posts",
            &[("Authorization", &basic("alice", "alice-pw"))],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(h.get("/readyz", &[]).await.status, 200);
}
