//! The Done-when scenarios of issue 7 against a real in-process gateway: expiry → refresh →
//! retry; 20 concurrent requests with an expired token → one refresh; a reused refresh
//! token → SignInRequired; 403 → no retry; step-up; 429 with Retry-After.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{CountingStore, Harness};
use gatehouse_client::{Credentials, Error, TokenStore, Tokens};

/// A Bearer client signed in as `user`, with its access token replaced by an expired one.
async fn expired_client(h: &Harness, user: &str) -> (gatehouse_client::Client, Arc<CountingStore>) {
    let store = Arc::new(CountingStore::default());
    let c = h.client(Credentials::Bearer(store.clone()));
    c.sign_in(user, &format!("{user}-pw")).await.unwrap();
    let refresh = store.load().unwrap().unwrap().refresh_token;
    c.set_tokens(Tokens::new(h.expired_token(user).await, refresh))
        .unwrap();
    (c, store)
}

#[tokio::test]
async fn expiry_refresh_retry() {
    let h = Harness::start().await;
    let (c, store) = expired_client(&h, "bob").await;
    let before = store.load().unwrap().unwrap();
    let saves = store.saves();
    let r = c.get("/api/posts").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["user"], "bob");
    assert_eq!(store.saves(), saves + 1, "one refresh");
    let after = store.load().unwrap().unwrap();
    assert_ne!(after.access_token, before.access_token);
    assert_ne!(after.refresh_token, before.refresh_token, "rotated");
    // The expired attempt stopped at the gateway; only the retry reached the app.
    assert_eq!(h.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_expired_requests_share_one_refresh() {
    let h = Harness::start().await;
    let (c, store) = expired_client(&h, "bob").await;
    let saves = store.saves();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move { c.get(&format!("/api/items/{i}")).send().await })
        })
        .collect();
    for t in tasks {
        let r = t.await.unwrap().unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(store.saves(), saves + 1, "exactly one refresh");
    assert_eq!(h.hits(), 20);
}

#[tokio::test]
async fn reused_refresh_token_means_sign_in_required() {
    let h = Harness::start().await;
    let (c, store) = expired_client(&h, "bob").await;
    let stolen = store.load().unwrap().unwrap().refresh_token.unwrap();
    // Someone else uses the refresh token first (rotation: it is now spent).
    let r = Harness::http()
        .post(format!("{}/auth/refresh", h.base))
        .json(&serde_json::json!({"refresh_token": stolen}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let err = c.get("/api/posts").send().await.unwrap_err();
    let Error::SignInRequired { problem: Some(p) } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(p.error(), Some("invalid_token"));
    assert_eq!(store.load().unwrap(), None, "dead tokens are dropped");
    // Later requests do not present the spent token again.
    let err = c.get("/api/posts").send().await.unwrap_err();
    assert!(matches!(err, Error::SignInRequired { .. }), "{err:?}");
    assert_eq!(h.hits(), 0);
}

#[tokio::test]
async fn forbidden_is_never_retried() {
    let h = Harness::start().await;
    let store = Arc::new(CountingStore::default());
    let c = h.client(Credentials::Bearer(store.clone()));
    c.sign_in("bob", "bob-pw").await.unwrap();
    let saves = store.saves();
    // The application's own 403: it sees exactly one request.
    let err = c.get("/api/forbidden").send().await.unwrap_err();
    let Error::Forbidden(p) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(p.error(), Some("not_owner"));
    assert_eq!(p.title.as_deref(), Some("Not the owner"));
    assert_eq!(h.hits(), 1);
    // The gateway's 403 (role missing): typed, not retried, no refresh.
    let err = c.get("/admin/users").send().await.unwrap_err();
    let Error::Forbidden(p) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(p.status, Some(403));
    assert!(p.error().is_some(), "{p:?}");
    assert_eq!(h.hits(), 1);
    assert_eq!(store.saves(), saves, "no refresh on 403");
}

#[tokio::test]
async fn forbidden_exposes_unmet_requirements() {
    let h = Harness::start().await;
    let store = Arc::new(CountingStore::default());
    let c = h.client(Credentials::Bearer(store.clone()));
    c.sign_in("bob", "bob-pw").await.unwrap();
    let err = c.get("/checkout/cart").send().await.unwrap_err();
    let reqs = err.requirements();
    assert_eq!(reqs.len(), 1, "{err:?}");
    assert_eq!(reqs[0].code, "payment_method_required");
    assert_eq!(
        reqs[0].message.as_deref(),
        Some("Add a payment method to check out.")
    );
    assert_eq!(reqs[0].remedy_url.as_deref(), Some("/account/billing"));
    assert_eq!(h.hits(), 0, "refused at the gateway, never retried");
    let err = c.get("/admin/users").send().await.unwrap_err();
    assert!(err.requirements().is_empty(), "{err:?}");
}

#[tokio::test]
async fn step_up_is_surfaced() {
    let h = Harness::start().await;
    let store = Arc::new(CountingStore::default());
    let c = h.client(Credentials::Bearer(store.clone()));
    c.sign_in("bob", "bob-pw").await.unwrap();
    let saves = store.saves();
    let err = c.get("/billing/invoices").send().await.unwrap_err();
    let Error::StepUpRequired {
        acr_values,
        max_age,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(acr_values.as_deref(), Some("mfa"));
    assert_eq!(*max_age, None);
    // Authenticated too long ago for a `max_age = "5m"` route.
    let now = gatehouse_server::clock::now();
    c.set_tokens(Tokens::new(
        h.token("bob", "pwd", now - 1000, 3600).await,
        None,
    ))
    .unwrap();
    let err = c.get("/fresh/report").send().await.unwrap_err();
    let Error::StepUpRequired { max_age, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*max_age, Some(300));
    assert_eq!(store.saves(), saves + 1, "no refresh for a step-up");
    assert_eq!(h.hits(), 0);
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after_then_retries_once() {
    let h = Harness::start().await;
    let c = h.client(Credentials::Basic {
        user: "bob".into(),
        password: "bob-pw".into(),
    });
    assert_eq!(c.get("/metered/a").send().await.unwrap().status(), 200);
    let t = Instant::now();
    let r = c.get("/metered/b").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(h.hits(), 2);
    // A cap below the server's Retry-After: no wait, the caller is told how long.
    let impatient = gatehouse_client::Client::builder(&h.base)
        .credentials(Credentials::Basic {
            user: "bob".into(),
            password: "bob-pw".into(),
        })
        .http_client(Harness::http())
        .max_retry_after(Duration::ZERO)
        .build()
        .unwrap();
    let t = Instant::now();
    let err = impatient.get("/metered/c").send().await.unwrap_err();
    let Error::RateLimited {
        retry_after: Some(d),
    } = err
    else {
        panic!("{err:?}")
    };
    assert!(d > Duration::ZERO && d <= Duration::from_secs(2), "{d:?}");
    assert!(t.elapsed() < Duration::from_millis(500));
    assert_eq!(h.hits(), 2);
}

#[tokio::test]
async fn streamed_bodies_are_not_replayed() {
    let h = Harness::start().await;
    let (c, store) = expired_client(&h, "bob").await;
    let saves = store.saves();
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = vec![Ok("hello".into())];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let err = c.post("/api/upload").body(body).send().await.unwrap_err();
    assert!(
        matches!(err, Error::BodyNotReplayable { status } if status == 401),
        "{err:?}"
    );
    assert!(err.to_string().contains("cannot be replayed"));
    // The refresh still happened, so the next request goes through; buffered bodies replay.
    assert_eq!(store.saves(), saves + 1);
    let r = c.post("/api/upload").body("hello").send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn basic_and_api_key_credentials() {
    let h = Harness::start().await;
    let wrong = h.client(Credentials::Basic {
        user: "bob".into(),
        password: "nope".into(),
    });
    let err = wrong.get("/api/x").send().await.unwrap_err();
    let Error::Unauthorized {
        challenges,
        problem,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(challenges.iter().any(|c| c.is("basic")), "{challenges:?}");
    assert_eq!(problem.status, Some(401));
    let key = h.client(Credentials::ApiKey("ghk_not_a_real_key".into()));
    let err = key.get("/api/x").send().await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    // No tokens at all with Bearer credentials: sign in.
    let none = h.client(Credentials::Bearer(Arc::new(CountingStore::default())));
    let err = none.get("/api/x").send().await.unwrap_err();
    assert!(matches!(err, Error::SignInRequired { .. }), "{err:?}");
    assert_eq!(h.hits(), 0);
}

#[tokio::test]
async fn unavailable_honours_retry_after_up_to_the_cap() {
    let h = Harness::start().await;
    let c = h.client(Credentials::Basic {
        user: "bob".into(),
        password: "bob-pw".into(),
    });
    let t = Instant::now();
    assert_eq!(c.get("/api/busy").send().await.unwrap().status(), 200);
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(h.hits(), 2);
    let impatient = gatehouse_client::Client::builder(&h.base)
        .credentials(Credentials::Basic {
            user: "bob".into(),
            password: "bob-pw".into(),
        })
        .http_client(Harness::http())
        .max_retry_after(Duration::from_millis(500))
        .build()
        .unwrap();
    let err = impatient.get("/api/busy").send().await.unwrap_err();
    assert!(
        matches!(err, Error::Unavailable { retry_after: Some(d) } if d == Duration::from_secs(1)),
        "{err:?}"
    );
    assert_eq!(h.hits(), 3);
}
