//! Row 25 end to end (issue 13): requirements of a route, over real HTTP, on SQLite or (with
//! `GATEHOUSE_TEST_STORE=postgres`) PostgreSQL, with a second node on the same store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Harness, Resp, basic, partner_token};
use gatehouse_core::attributes::{Attributes, parse_assignment};
use serde_json::json;

const STOREFRONT: &str = r#"
[[route]]
name = "cart"
path = "/shop/cart/**"
auth = ["bearer", "basic"]

[[route]]
name = "checkout"
path = "/shop/checkout/**"
auth = ["bearer", "basic"]

[[route.require]]
attribute = "email_verified"
present = true
code = "email_unverified"
message = "Verify your email address first."
remedy_url = "/account/email"

[[route.require]]
attribute = "payment_method"
present = true
code = "payment_method_required"
message = "Add a payment method to check out."
remedy_url = "/account/billing"

[[route]]
name = "plans"
path = "/plans/{plan}/**"
auth = ["bearer"]
hidden = false

[[route.require]]
claim = "org.plan"
in = ["pro", "team"]
code = "plan_required"
message = "Upgrade your plan."

[[route.require]]
when = 'request.params.plan == principal.attributes.plan'
code = "wrong_plan"

[[route]]
name = "office-hours"
path = "/office-hours/**"
auth = ["bearer", "basic"]
when = 'now >= 1700000000 && now < 1700003600'

[[route]]
name = "broken"
path = "/broken/**"
auth = ["basic"]
when = 'principal.attributes.missing == true'

[[route]]
name = "secret-shop"
path = "/secret-shop/**"
auth = ["basic"]
hidden = true

[[route.require]]
attribute = "vip"
equals = true
code = "vip_only"
"#;

/// The harness config with the storefront routes and the partner issuer's attribute mapping.
fn config(upstream: std::net::SocketAddr) -> String {
    common::config_text(upstream, STOREFRONT).replace(
        "tenant_claim = \"org_id\"",
        "tenant_claim = \"org_id\"\nattributes = { email_verified = \"email_verified\", plan = \"org.plan\" }",
    )
}

async fn node(store: std::sync::Arc<dyn gatehouse_store::Store>) -> Harness {
    let (stop, rx) = tokio::sync::watch::channel(false);
    let upstream = common::echo_upstream(rx.clone()).await;
    Harness::start_store(&config(upstream), upstream, stop, rx, store).await
}

fn codes(r: &Resp) -> Vec<String> {
    r.json()["requirements"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|u| u["code"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// What `gatehouse user set` does to the store.
async fn user_set(h: &Harness, user: &str, args: &[&str]) {
    let set: Attributes = args.iter().map(|a| parse_assignment(a).unwrap()).collect();
    h.gw.store
        .update_attributes(user, set, Vec::new())
        .await
        .unwrap();
}

/// Polls until `f` holds, at most ten seconds (the store poll runs every second).
async fn eventually<F: std::future::Future<Output = bool>>(mut f: impl FnMut() -> F) -> bool {
    for _ in 0..200 {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn row25_storefront_lists_unmet_requirements_until_the_user_fixes_them() {
    gatehouse_server::install_crypto();
    let (store, _schema) = common::test_store().await;
    common::seed(store.as_ref()).await;
    let a = node(std::sync::Arc::clone(&store)).await;
    let b = node(std::sync::Arc::clone(&store)).await;
    let bob = basic("bob", "bob-pw");

    // Signing in is needed for the cart and the checkout alike.
    let r = a.get("/shop/checkout/", &[]).await;
    assert_eq!(
        (r.status.as_u16(), r.error().as_str()),
        (401, "missing_credentials")
    );
    let r = a.get("/shop/cart/", &[("authorization", &bob)]).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Signed in, both requirements unmet: 403 listing both, no challenge.
    let r = a.get("/shop/checkout/", &[("authorization", &bob)]).await;
    assert_eq!(
        (r.status.as_u16(), r.error().as_str()),
        (403, "requirement_not_met")
    );
    assert!(r.header("www-authenticate").is_none());
    assert_eq!(
        r.json()["requirements"],
        json!([
            {"code": "email_unverified", "message": "Verify your email address first.",
             "remedy_url": "/account/email"},
            {"code": "payment_method_required", "message": "Add a payment method to check out.",
             "remedy_url": "/account/billing"}
        ])
    );

    // Metrics: the reason, and each unmet requirement by its configured code.
    assert_eq!(
        a.gw.observer
            .metrics
            .decisions_of("checkout", 403, "requirement_not_met"),
        1
    );
    let mut text = String::new();
    a.gw.observer.metrics.render(&mut text);
    for code in ["email_unverified", "payment_method_required"] {
        let line = format!(
            "gatehouse_requirements_unmet_total{{route=\"checkout\",requirement=\"{code}\"}} 1"
        );
        assert!(text.contains(&line), "{text}");
    }

    // `user set bob email_verified=true`: the other node sees it within its store poll.
    user_set(&a, "bob", &["email_verified=true"]).await;
    assert!(
        eventually(|| async {
            codes(&b.get("/shop/checkout/", &[("authorization", &bob)]).await)
                == ["payment_method_required"]
        })
        .await,
        "node b never saw the verified email"
    );
    // A token of the same user: the same answer (attributes are checked on cache hits too).
    let token = a
        .own_token("bob", &[], "pwd", gatehouse_server::clock::now(), 600)
        .await;
    let bearer = format!("Bearer {token}");
    let r = b
        .get("/shop/checkout/", &[("authorization", &bearer)])
        .await;
    assert_eq!(codes(&r), ["payment_method_required"], "{}", r.text);

    user_set(&a, "bob", &["payment_method=card_visa_4242"]).await;
    for h in [&a, &b] {
        assert!(
            eventually(|| async {
                h.get("/shop/checkout/", &[("authorization", &bob)])
                    .await
                    .status
                    == 200
            })
            .await,
            "a node never saw the payment method"
        );
        let r = h
            .get("/shop/checkout/", &[("authorization", &bearer)])
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }

    // `user unset`: refused again.
    a.gw.store
        .update_attributes("bob", Attributes::new(), vec!["payment_method".into()])
        .await
        .unwrap();
    assert!(
        eventually(|| async {
            codes(
                &b.get("/shop/checkout/", &[("authorization", &bearer)])
                    .await,
            ) == ["payment_method_required"]
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn row25_browsers_get_the_messages_with_links_and_minimal_disclosure_keeps_codes() {
    gatehouse_server::install_crypto();
    let (store, _schema) = common::test_store().await;
    common::seed(store.as_ref()).await;
    let h = node(std::sync::Arc::clone(&store)).await;
    let bob = basic("bob", "bob-pw");
    let r = h
        .get(
            "/shop/checkout/",
            &[("authorization", &bob), ("accept", "text/html")],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(
        r.text.contains(
            "<li>Add a payment method to check out. <a href=\"/account/billing\">Fix this</a></li>"
        ),
        "{}",
        r.text
    );
    assert!(
        !r.text.contains("action=\"/auth/login\""),
        "no sign-in loop"
    );

    // `hidden = true` still answers 404; the audit keeps the true reason.
    let r = h.get("/secret-shop/x", &[("authorization", &bob)]).await;
    assert_eq!((r.status.as_u16(), r.error().as_str()), (404, "not_found"));

    // disclosure = "minimal": codes only.
    let (stop, rx) = tokio::sync::watch::channel(false);
    let upstream = common::echo_upstream(rx.clone()).await;
    let text = config(upstream).replace(
        "trusted_proxies = [\"127.0.0.1/32\"]",
        "trusted_proxies = [\"127.0.0.1/32\"]\ndisclosure = \"minimal\"",
    );
    let m = Harness::start_store(&text, upstream, stop, rx, store).await;
    let r = m.get("/shop/checkout/", &[("authorization", &bob)]).await;
    assert_eq!(
        r.json()["requirements"],
        json!([{"code": "email_unverified"}, {"code": "payment_method_required"}])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn row25_conditions_claims_time_windows_and_evaluation_errors() {
    gatehouse_server::install_crypto();
    let (store, _schema) = common::test_store().await;
    common::seed(store.as_ref()).await;
    let h = node(std::sync::Arc::clone(&store)).await;
    let now = gatehouse_server::clock::now();
    let token = |plan: &str| {
        format!(
            "Bearer {}",
            partner_token(json!({
                "iss": "https://partner.example", "aud": "api", "sub": "p-1",
                "exp": now + 600, "org": {"plan": plan}, "email_verified": true,
            }))
        )
    };
    // A claim comparison (`claim = "org.plan"`) and a path-parameter check against the
    // attribute the issuer maps from the same claim.
    let r = h
        .get("/plans/pro/x", &[("authorization", &token("pro"))])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = h
        .get("/plans/team/x", &[("authorization", &token("pro"))])
        .await;
    assert_eq!(codes(&r), ["wrong_plan"], "{}", r.text);
    let r = h
        .get("/plans/free/x", &[("authorization", &token("free"))])
        .await;
    assert_eq!(codes(&r), ["plan_required"], "{}", r.text);

    // A time window that has passed.
    let bob = basic("bob", "bob-pw");
    let r = h.get("/office-hours/x", &[("authorization", &bob)]).await;
    assert_eq!(codes(&r), ["condition_not_met"], "{}", r.text);

    // An evaluation error never allows, and is no 500.
    let r = h.get("/broken/x", &[("authorization", &bob)]).await;
    assert_eq!(
        (r.status.as_u16(), r.error().as_str()),
        (403, "requirement_not_met")
    );
    assert_eq!(codes(&r), ["condition_error"]);
}
