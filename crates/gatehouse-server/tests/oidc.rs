//! Sign-in through an OpenID Connect provider (issue 16), against a small provider on
//! loopback that checks what a real one checks (PKCE S256, single-use codes, client
//! authentication, registered redirect URI) and signs ID and logout tokens with Ed25519:
//! the code flow landing on the asked page, the users policies, the refusals by the contract
//! (403 page, 400 `invalid_request`, 503 `auth_unavailable`), step-up at the provider,
//! RP-initiated and back-channel logout. The browser journeys against the certified
//! `oidc-provider` package are in `tests/oidc/` (Node + Chromium).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Harness, Resp};
use gatehouse_server::clock::now;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;

const CLIENT_ID: &str = "gatehouse-test";
const CLIENT_SECRET: &str = "s3cret-of-the-client";
const HTML: (&str, &str) = ("Accept", "text/html");

/// Who the provider signs in next, and how it misbehaves.
#[derive(Clone)]
struct Person {
    sub: String,
    email: String,
    preferred_username: String,
    groups: Vec<String>,
    /// Answer `error=access_denied` instead of a code.
    refuse: bool,
    /// Put this nonce in the ID token instead of the one asked for.
    wrong_nonce: Option<String>,
    /// More claims of the ID token.
    claims: serde_json::Value,
}

fn person(sub: &str, email: &str) -> Person {
    Person {
        sub: sub.into(),
        email: email.into(),
        preferred_username: sub.into(),
        groups: vec!["staff".into()],
        refuse: false,
        wrong_nonce: None,
        claims: json!({}),
    }
}

struct Grant {
    person: Person,
    nonce: String,
    challenge: String,
    redirect_uri: String,
    acr: &'static str,
    used: bool,
}

struct OpState {
    issuer: String,
    pkcs8: Vec<u8>,
    jwk: serde_json::Value,
    next: Mutex<Person>,
    grants: Mutex<HashMap<String, Grant>>,
    /// Query parameters of every authorization request.
    seen: Mutex<Vec<HashMap<String, String>>>,
}

struct Provider {
    addr: SocketAddr,
    state: Arc<OpState>,
    stop: watch::Sender<bool>,
}

impl Provider {
    async fn start() -> Self {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let doc = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        let state = Arc::new(OpState {
            issuer: format!("http://{addr}"),
            pkcs8: doc.as_ref().to_vec(),
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                        "kid": "op-1", "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())}),
            next: Mutex::new(person("u-1", "jane@example.com")),
            grants: Mutex::new(HashMap::new()),
            seen: Mutex::new(Vec::new()),
        });
        let router = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(discovery),
            )
            .route("/authorize", axum::routing::get(authorize))
            .route("/token", axum::routing::post(token))
            .route("/jwks", axum::routing::get(jwks))
            .with_state(Arc::clone(&state));
        let (stop, mut rx) = watch::channel(false);
        tokio::spawn(gatehouse_server::serve_on(l, router, async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
        Self { addr, state, stop }
    }

    fn set(&self, p: Person) {
        *self.state.next.lock().unwrap() = p;
    }

    fn sign(&self, claims: &serde_json::Value) -> String {
        sign(&self.state, claims)
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn sign(s: &OpState, claims: &serde_json::Value) -> String {
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    h.kid = Some("op-1".into());
    jsonwebtoken::encode(
        &h,
        claims,
        &jsonwebtoken::EncodingKey::from_ed_der(&s.pkcs8),
    )
    .unwrap()
}

async fn discovery(State(s): State<Arc<OpState>>) -> Response {
    axum::Json(json!({
        "issuer": s.issuer,
        "authorization_endpoint": format!("{}/authorize", s.issuer),
        "token_endpoint": format!("{}/token", s.issuer),
        "jwks_uri": format!("{}/jwks", s.issuer),
        "end_session_endpoint": format!("{}/session/end", s.issuer),
    }))
    .into_response()
}

async fn jwks(State(s): State<Arc<OpState>>) -> Response {
    axum::Json(json!({"keys": [s.jwk]})).into_response()
}

async fn authorize(
    State(s): State<Arc<OpState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    s.seen.lock().unwrap().push(q.clone());
    let who = s.next.lock().unwrap().clone();
    let redirect = q["redirect_uri"].clone();
    let state = q["state"].clone();
    if who.refuse {
        return Redirect::to(&format!("{redirect}?error=access_denied&state={state}"))
            .into_response();
    }
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["code_challenge_method"], "S256");
    let code = URL_SAFE_NO_PAD.encode(rand_bytes());
    // The provider performs MFA when asked for it.
    let acr = if q.get("acr_values").is_some_and(|a| a == "mfa") {
        "mfa"
    } else {
        "pwd"
    };
    s.grants.lock().unwrap().insert(
        code.clone(),
        Grant {
            person: who,
            nonce: q["nonce"].clone(),
            challenge: q["code_challenge"].clone(),
            redirect_uri: redirect.clone(),
            acr,
            used: false,
        },
    );
    Redirect::to(&format!("{redirect}?code={code}&state={state}")).into_response()
}

fn rand_bytes() -> [u8; 24] {
    let mut b = [0u8; 24];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    b
}

async fn token(State(s): State<Arc<OpState>>, headers: http::HeaderMap, body: String) -> Response {
    let bad = |e: &str| {
        (
            http::StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": e})),
        )
            .into_response()
    };
    let form: HashMap<String, String> = body
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), urldecode(v)))
        .collect();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(basic.as_str()) {
        return (
            http::StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let mut grants = s.grants.lock().unwrap();
    let Some(g) = grants.get_mut(&form["code"]) else {
        return bad("invalid_grant");
    };
    if g.used {
        return bad("invalid_grant");
    }
    g.used = true;
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(form["code_verifier"].as_bytes()));
    if challenge != g.challenge || form["redirect_uri"] != g.redirect_uri {
        return bad("invalid_grant");
    }
    let t = now();
    let mut claims = json!({
        "iss": s.issuer, "aud": CLIENT_ID, "sub": g.person.sub, "iat": t, "exp": t + 300,
        "nonce": g.person.wrong_nonce.clone().unwrap_or_else(|| g.nonce.clone()),
        "email": g.person.email, "email_verified": true,
        "preferred_username": g.person.preferred_username,
        "groups": g.person.groups, "roles": ["viewer"],
        "acr": g.acr, "auth_time": t, "sid": format!("op-session-{}", g.person.sub),
    });
    for (k, v) in g.person.claims.as_object().unwrap() {
        claims[k] = v.clone();
    }
    let id_token = sign(&s, &claims);
    axum::Json(json!({"access_token": "at", "token_type": "Bearer", "id_token": id_token}))
        .into_response()
}

fn urldecode(v: &str) -> String {
    let b = v.replace('+', " ");
    let mut out = Vec::new();
    let bytes = b.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&b[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn provider_block(op: &Provider, extra: &str) -> String {
    format!(
        r#"
[[route]]
name = "sso"
path = "/sso/**"
auth = ["session", "bearer"]

[[route]]
name = "sso-mfa"
path = "/sso-mfa/**"
auth = ["session", "bearer"]
mfa = true

[[login_providers]]
name = "corp"
display_name = "Corp SSO"
issuer = "http://{}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
algorithms = ["EdDSA"]
roles_claim = "roles"
{extra}
"#,
        op.addr
    )
}

/// The `name=value` of a `Set-Cookie` named `name`.
fn set_cookie(r: &Resp, name: &str) -> Option<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

/// Path and query of an absolute URL.
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/".into(), |i| rest[i..].to_owned())
}

/// A browser's sign-in up to the callback: start, then the provider's answer. Returns the
/// flow cookie and the callback path the provider redirected to.
async fn to_callback(h: &Harness, op: &Provider, start: &str) -> (String, String) {
    let r = h.get(start, &[HTML]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let flow = set_cookie(&r, "gatehouse_oidc").expect("flow cookie");
    let auth = r.header("location").unwrap().to_owned();
    assert!(
        auth.starts_with(&format!("http://{}/authorize?", op.addr)),
        "{auth}"
    );
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Body>();
    let resp = client
        .request(
            http::Request::get(auth.as_str())
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    let back = resp.headers()["location"].to_str().unwrap().to_owned();
    (flow, path_of(&back))
}

/// The whole sign-in; returns the callback's answer.
async fn sign_in(h: &Harness, op: &Provider, return_to: &str) -> Resp {
    let (flow, callback) = to_callback(
        h,
        op,
        &format!("/auth/oidc/corp/start?return_to={return_to}"),
    )
    .await;
    h.get(&callback, &[HTML, ("Cookie", &flow)]).await
}

async fn backchannel(h: &Harness, op: &Provider, claims: &serde_json::Value) -> Resp {
    let token = op.sign(claims);
    h.send_body(
        "POST",
        "/auth/oidc/corp/backchannel-logout",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Body::from(format!("logout_token={token}")),
    )
    .await
}

/// The account the provider's default person signs in to.
async fn jane(h: &Harness) -> gatehouse_store::User {
    h.gw.store
        .get_user("jane@example.com")
        .await
        .unwrap()
        .unwrap()
}

/// Her unrevoked sessions.
async fn jane_sessions(h: &Harness) -> Vec<gatehouse_store::Session> {
    h.gw.store
        .list_sessions(Some("jane@example.com"), false)
        .await
        .unwrap()
}

async fn harness(op: &Provider, extra: &str) -> Harness {
    Harness::start_with(&provider_block(op, extra)).await
}

#[tokio::test]
async fn sign_in_lands_on_the_asked_page_and_provisions_the_user() {
    let op = Provider::start().await;
    let h = harness(&op, r#"users = "provision""#).await;
    let r = sign_in(&h, &op, "/sso/reports%3Fq%3D1").await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(r.header("location"), Some("/sso/reports?q=1"));
    let session = set_cookie(&r, "gatehouse_session").expect("session cookie");
    // The flow cookie is cleared.
    assert_eq!(
        set_cookie(&r, "gatehouse_oidc").as_deref(),
        Some("gatehouse_oidc=")
    );
    let page = h.get("/sso/reports?q=1", &[("Cookie", &session)]).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(page.json()["user"], "jane@example.com");
    // Provisioned with the mapped roles.
    let user = jane(&h).await;
    assert_eq!(user.roles, ["viewer"]);
    assert_eq!(user.password_hash, None);
    // What the provider was asked: PKCE S256, state, nonce, our scopes and callback.
    let seen = op.state.seen.lock().unwrap()[0].clone();
    assert_eq!(seen["scope"], "openid email profile");
    assert_eq!(
        seen["redirect_uri"],
        format!("http://{}/auth/oidc/corp/callback", h.addr)
    );
    assert_eq!(seen["code_challenge"].len(), 43);
    assert!(!seen.contains_key("prompt"), "no step-up asked");
}

#[tokio::test]
async fn existing_only_admits_known_users_and_refuses_others_with_a_page() {
    let op = Provider::start().await;
    let h = harness(
        &op,
        "users = \"existing\"\nusername_claim = \"preferred_username\"",
    )
    .await;
    let mut alice = person("alice", "alice@example.com");
    alice.preferred_username = "alice".into();
    op.set(alice);
    let r = sign_in(&h, &op, "/sso/a").await;
    assert_eq!(r.status, 303, "{}", r.text);
    let session = set_cookie(&r, "gatehouse_session").unwrap();
    assert_eq!(
        h.get("/sso/a", &[("Cookie", &session)]).await.json()["user"],
        "alice"
    );

    op.set(person("mallory", "mallory@example.com"));
    let r = sign_in(&h, &op, "/sso/a").await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("no account"), "{}", r.text);
    assert!(
        r.header("location").is_none(),
        "never a loop back to the provider"
    );
    assert!(set_cookie(&r, "gatehouse_session").is_none());
    assert!(
        h.gw.store.get_user("mallory").await.unwrap().is_none(),
        "nobody provisioned"
    );
}

#[tokio::test]
async fn outside_the_allowed_domains_or_groups_or_refused_by_the_provider_is_a_403_page() {
    let op = Provider::start().await;
    let h = harness(
        &op,
        "users = \"provision\"\nallowed_domains = [\"example.com\"]\nrequired_groups = [\"staff\"]",
    )
    .await;
    op.set(person("u-2", "eve@elsewhere.org"));
    let r = sign_in(&h, &op, "/sso/x").await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("elsewhere.org"), "{}", r.text);
    assert!(r.text.contains("access_denied"));

    let mut outsider = person("u-3", "olly@example.com");
    outsider.groups = vec!["contractors".into()];
    op.set(outsider);
    let r = sign_in(&h, &op, "/sso/x").await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("group"), "{}", r.text);

    let mut refuse = person("u-4", "jane@example.com");
    refuse.refuse = true;
    op.set(refuse);
    let r = sign_in(&h, &op, "/sso/x").await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("refused"), "{}", r.text);
    assert!(r.header("location").is_none());
    // JSON clients get the problem body with the stable code.
    let mut refuse = person("u-4", "jane@example.com");
    refuse.refuse = true;
    op.set(refuse);
    let (flow, callback) = to_callback(&h, &op, "/auth/oidc/corp/start").await;
    let r = h.get(&callback, &[("Cookie", &flow)]).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.error(), "access_denied");
}

#[tokio::test]
async fn tampered_state_wrong_nonce_replayed_callback_and_used_code_are_400() {
    let op = Provider::start().await;
    let h = harness(&op, r#"users = "provision""#).await;

    // Tampered state.
    let (flow, callback) = to_callback(&h, &op, "/auth/oidc/corp/start").await;
    let tampered = callback.replace("state=", "state=x");
    let r = h.get(&tampered, &[("Cookie", &flow)]).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.error(), "invalid_request");
    // No flow cookie at all.
    let (_, callback) = to_callback(&h, &op, "/auth/oidc/corp/start").await;
    let r = h.get(&callback, &[]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error(), "invalid_request");

    // A replayed callback, even with the flow cookie kept.
    let (flow, callback) = to_callback(&h, &op, "/auth/oidc/corp/start").await;
    let first = h.get(&callback, &[("Cookie", &flow)]).await;
    assert_eq!(first.status, 303, "{}", first.text);
    let again = h.get(&callback, &[("Cookie", &flow)]).await;
    assert_eq!(again.status, 400, "{}", again.text);
    assert!(
        again.json()["detail"]
            .as_str()
            .unwrap()
            .contains("already used")
    );

    // A code already used, under a new flow's state.
    let code = callback
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("code="))
        .unwrap()
        .to_owned();
    let (flow2, callback2) = to_callback(&h, &op, "/auth/oidc/corp/start").await;
    let state2 = callback2
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("state="))
        .unwrap();
    let r = h
        .get(
            &format!("/auth/oidc/corp/callback?code={code}&state={state2}"),
            &[("Cookie", &flow2)],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.json()["detail"].as_str().unwrap().contains("code"),
        "{}",
        r.text
    );

    // The ID token carries another nonce.
    let mut p = person("u-1", "jane@example.com");
    p.wrong_nonce = Some("someone-elses-nonce".into());
    op.set(p);
    let r = sign_in(&h, &op, "/").await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("nonce"), "{}", r.text);
    assert!(set_cookie(&r, "gatehouse_session").is_none());
}

#[tokio::test]
async fn the_provider_unreachable_is_503_with_retry_after() {
    let op = Provider::start().await;
    let h = harness(&op, r#"users = "provision""#).await;
    let (flow, callback) = to_callback(&h, &op, "/auth/oidc/corp/start").await;
    let _ = op.stop.send(true);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = h.get(&callback, &[("Cookie", &flow)]).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.error(), "auth_unavailable");
    assert!(r.header("retry-after").is_some());
    // A gateway that never reached the provider cannot even start.
    let h2 = harness(&op, "").await;
    let r = h2.get("/auth/oidc/corp/start", &[HTML]).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.header("retry-after").is_some());
}

#[tokio::test]
async fn step_up_sends_the_browser_back_with_acr_values_and_api_clients_get_row_14() {
    let op = Provider::start().await;
    let h = harness(&op, r#"users = "provision""#).await;
    let r = sign_in(&h, &op, "/sso-mfa/pay").await;
    let session = set_cookie(&r, "gatehouse_session").unwrap();
    // Not MFA yet: a browser goes back to the provider, through our start.
    let r = h.get("/sso-mfa/pay", &[HTML, ("Cookie", &session)]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let start = r.header("location").unwrap().to_owned();
    assert!(start.starts_with("/auth/oidc/corp/start?"), "{start}");
    assert!(start.contains("acr_values=mfa"), "{start}");
    // An API client (no HTML) gets the contract's 401 with the RFC 9470 challenge.
    let r = h.get("/sso-mfa/pay", &[("Cookie", &session)]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error(), "insufficient_user_authentication");
    // The provider is asked for MFA and a fresh login, and the route then admits.
    let (flow, callback) = to_callback(&h, &op, &start).await;
    let seen = op.state.seen.lock().unwrap().last().unwrap().clone();
    assert_eq!(seen["acr_values"], "mfa");
    assert_eq!(seen["prompt"], "login");
    let r = h.get(&callback, &[HTML, ("Cookie", &flow)]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(r.header("location"), Some("/sso-mfa/pay"));
    let stepped = set_cookie(&r, "gatehouse_session").unwrap();
    let r = h.get("/sso-mfa/pay", &[HTML, ("Cookie", &stepped)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn sign_in_page_lists_providers_and_hides_passwords_when_disabled() {
    let op = Provider::start().await;
    let h = harness(&op, "").await;
    let r = h.get("/sso/x", &[HTML]).await;
    assert_eq!(r.status, 401);
    assert!(
        r.text
            .contains("href=\"/auth/oidc/corp/start?return_to=%2Fsso%2Fx\">Sign in with Corp SSO"),
        "{}",
        r.text
    );
    assert!(r.text.contains("action=\"/auth/login\""));
    // A route that does not take sessions has no provider button (nor a redirect).
    let r = h.get("/basic/x", &[HTML]).await;
    assert_eq!(r.status, 401);
    assert!(!r.text.contains("/auth/oidc/"));

    // `password_sign_in = false`: buttons only, and `/auth/login` is not there.
    let (stop, rx) = watch::channel(false);
    let upstream = common::echo_upstream(rx.clone()).await;
    let text = common::config_text(upstream, &provider_block(&op, "")).replacen(
        "realm = \"api\"",
        "realm = \"api\"\npassword_sign_in = false",
        1,
    );
    let h = Harness::start_config(&text, upstream, stop, rx).await;
    let r = h.get("/sso/x", &[HTML]).await;
    assert!(r.text.contains("Sign in with Corp SSO"), "{}", r.text);
    assert!(!r.text.contains("action=\"/auth/login\""), "{}", r.text);
    let r = h.login("alice", "alice-pw").await;
    assert_eq!(r.status, 404, "{}", r.text);
}

#[tokio::test]
async fn rp_initiated_logout_ends_at_the_provider() {
    let op = Provider::start().await;
    let h = harness(&op, r#"users = "provision""#).await;
    let r = sign_in(&h, &op, "/sso/x").await;
    let session = set_cookie(&r, "gatehouse_session").unwrap();
    let r = h
        .send(
            "POST",
            "/auth/logout",
            &[("Cookie", &session), ("Sec-Fetch-Site", "same-origin")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let to = r.header("location").unwrap();
    assert!(
        to.starts_with(&format!(
            "http://{}/session/end?client_id={CLIENT_ID}",
            op.addr
        )),
        "{to}"
    );
    assert!(to.contains(&format!(
        "post_logout_redirect_uri=http%3A%2F%2F{}%2F",
        h.addr.to_string().replace(':', "%3A")
    )));
    let r = h.get("/sso/x", &[("Cookie", &session)]).await;
    assert_eq!(r.status, 401);
}

/// Two gateways on one store (SQLite, or PostgreSQL with `GATEHOUSE_TEST_STORE=postgres`)
/// with the provider block and `extra`.
async fn two_nodes(op: &Provider, extra: &str) -> (Harness, Harness, Option<common::pg::Schema>) {
    gatehouse_server::install_crypto();
    let (store, schema) = common::test_store().await;
    common::seed(store.as_ref()).await;
    let (stop, rx) = watch::channel(false);
    let upstream = common::echo_upstream(rx.clone()).await;
    let text = common::config_text(upstream, &provider_block(op, extra));
    let options = gatehouse_server::BuildOptions {
        store_poll: Duration::from_millis(200),
        ..Default::default()
    };
    let a = Harness::start_store_with(
        &text,
        upstream,
        stop,
        rx.clone(),
        Arc::clone(&store),
        options.clone(),
    )
    .await;
    let (stop_b, rx_b) = watch::channel(false);
    let b = Harness::start_store_with(&text, upstream, stop_b, rx_b, store, options).await;
    (a, b, schema)
}

/// Asks `path` of `h` until it answers `status` (within a second: the other node's view).
async fn within_a_second(h: &Harness, path: &str, cookie: &str, status: u16) -> Resp {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let r = h.get(path, &[("Cookie", cookie)]).await;
        if r.status == status {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "{path} still answers {}: {}",
            r.status,
            r.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A plan route: row 25 on attributes the provider maps.
const MAPPED: &str = r#"users = "provision"
attributes = { email_verified = "email_verified", plan = "org.plan" }

[[route]]
name = "pro"
path = "/pro/**"
auth = ["session", "bearer"]

[[route.require]]
attribute = "plan"
equals = "pro"
code = "plan_required"
message = "Upgrade to Pro."
remedy_url = "/account/plan"

[[route.require]]
attribute = "email_verified"
equals = true
code = "email_unverified"
"#;

#[tokio::test]
async fn mapped_attributes_follow_the_provider_and_routes_require_them_on_every_node() {
    use gatehouse_core::attributes::Value;
    let op = Provider::start().await;
    let (a, b, _schema) = two_nodes(&op, MAPPED).await;
    let with_plan = |plan: Option<&str>| {
        let mut p = person("u-1", "jane@example.com");
        if let Some(plan) = plan {
            p.claims = json!({"org": {"plan": plan, "seats": 3}});
        }
        p
    };

    // Provisioned with the mapped attributes; the plan does not meet the route (row 25).
    op.set(with_plan(Some("free")));
    let r = sign_in(&a, &op, "/pro/x").await;
    assert_eq!(r.status, 303, "{}", r.text);
    let first = set_cookie(&r, "gatehouse_session").unwrap();
    let user = jane(&a).await;
    assert_eq!(user.attributes["plan"], Value::Str("free".into()));
    assert_eq!(user.attributes["email_verified"], Value::Bool(true));
    assert_eq!(user.attributes.len(), 2, "only the mapped claims");
    let r = a.get("/pro/x", &[("Cookie", &first)]).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.error(), "requirement_not_met");
    assert_eq!(r.json()["requirements"][0]["code"], "plan_required");
    assert_eq!(r.json()["requirements"][0]["remedy_url"], "/account/plan");
    assert_eq!(r.json()["requirements"].as_array().unwrap().len(), 1);
    assert_eq!(b.get("/pro/x", &[("Cookie", &first)]).await.status, 403);

    // The provider now says `pro`: the existing account follows at the next sign-in, and
    // both nodes admit every session of the user (the older one too).
    op.set(with_plan(Some("pro")));
    let r = sign_in(&b, &op, "/pro/x").await;
    assert_eq!(r.status, 303, "{}", r.text);
    let second = set_cookie(&r, "gatehouse_session").unwrap();
    assert_eq!(b.get("/pro/x", &[("Cookie", &second)]).await.status, 200);
    within_a_second(&a, "/pro/x", &first, 200).await;

    // A claim the token no longer carries removes its attribute; so does one too large to
    // store (the sign-in itself goes through).
    let huge = "p".repeat(gatehouse_core::attributes::MAX_VALUE + 1);
    for plan in [None, Some(huge.as_str())] {
        op.set(with_plan(Some("pro")));
        assert_eq!(sign_in(&a, &op, "/pro/x").await.status, 303);
        assert!(jane(&a).await.attributes.contains_key("plan"));
        op.set(with_plan(plan));
        let r = sign_in(&a, &op, "/pro/x").await;
        assert_eq!(r.status, 303, "{}", r.text);
        let user = jane(&a).await;
        assert!(
            !user.attributes.contains_key("plan"),
            "{:?}",
            user.attributes
        );
    }
    let r = within_a_second(&b, "/pro/x", &second, 403).await;
    assert_eq!(r.error(), "requirement_not_met");
}

#[tokio::test]
async fn the_providers_acr_amr_and_auth_time_are_kept_with_the_session() {
    let op = Provider::start().await;
    let h = harness(&op, r#"users = "provision""#).await;
    let authenticated = now() - 90;
    let mut p = person("u-1", "jane@example.com");
    // A security key (RFC 8176 `hwk`) is a second factor: the session is `mfa`.
    p.claims = json!({"amr": ["pwd", "hwk"], "auth_time": authenticated});
    op.set(p);
    let r = sign_in(&h, &op, "/sso-mfa/pay").await;
    assert_eq!(r.status, 303, "{}", r.text);
    let session = set_cookie(&r, "gatehouse_session").unwrap();
    // The route that needs MFA admits it without a step-up.
    let page = h.get("/sso-mfa/pay", &[HTML, ("Cookie", &session)]).await;
    assert_eq!(page.status, 200, "{}", page.text);
    // The session, as `gatehouse session list` and the admin API show it, carries what the
    // provider said; tokens minted from a session take their `amr` from it (a refresh:
    // tests/identity.rs).
    let sessions = jane_sessions(&h).await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].acr, "mfa");
    assert_eq!(sessions[0].amr, ["pwd", "hwk"]);
    assert_eq!(sessions[0].auth_time, authenticated);
    let shown = gatehouse_server::admin::users::session_json(&sessions[0], now());
    assert_eq!(shown["amr"], json!(["pwd", "hwk"]));

    // Without `amr` and `acr` from the provider: `sso`, and no methods claimed for it.
    op.set(person("u-1", "jane@example.com"));
    let r = sign_in(&h, &op, "/sso/x").await;
    assert_eq!(r.status, 303, "{}", r.text);
    let sessions = jane_sessions(&h).await;
    let newest = sessions
        .iter()
        .find(|s| s.amr.is_empty())
        .expect("the second session");
    assert_eq!(newest.acr, "sso");
}

#[tokio::test]
async fn back_channel_logout_revokes_the_session_on_a_second_node() {
    let op = Provider::start().await;
    let (a, b, _schema) = two_nodes(&op, r#"users = "provision""#).await;

    let r = sign_in(&a, &op, "/sso/x").await;
    let session = set_cookie(&r, "gatehouse_session").unwrap();
    assert_eq!(b.get("/sso/x", &[("Cookie", &session)]).await.status, 200);

    let t = now();
    let base = json!({
        "iss": format!("http://{}", op.addr), "aud": CLIENT_ID, "iat": t, "exp": t + 120,
        "jti": "lt-1", "sid": "op-session-u-1",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    });
    // A token that does not verify changes nothing (OpenID Back-Channel Logout §2.8: 400).
    let mut forged = base.clone();
    forged["aud"] = json!("someone-else");
    let r = backchannel(&b, &op, &forged).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(a.get("/sso/x", &[("Cookie", &session)]).await.status, 200);

    // Received by node B; node A refuses the session within a second.
    let r = backchannel(&b, &op, &base).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let r = a.get("/sso/x", &[("Cookie", &session)]).await;
        if r.status == 401 {
            assert_eq!(r.error(), "token_revoked");
            break;
        }
        assert!(Instant::now() < deadline, "node A still admits the session");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Another provider session is left alone; a token naming only the subject ends all of
    // the subject's sessions from this provider.
    let r = sign_in(&a, &op, "/sso/x").await;
    let again = set_cookie(&r, "gatehouse_session").unwrap();
    let mut other = json!({
        "iss": format!("http://{}", op.addr), "aud": CLIENT_ID, "iat": t, "exp": t + 120,
        "jti": "lt-2", "sid": "another-op-session",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    });
    assert_eq!(backchannel(&a, &op, &other).await.status, 200);
    assert_eq!(a.get("/sso/x", &[("Cookie", &again)]).await.status, 200);
    other.as_object_mut().unwrap().remove("sid");
    other["sub"] = json!("u-1");
    assert_eq!(backchannel(&a, &op, &other).await.status, 200);
    assert_eq!(a.get("/sso/x", &[("Cookie", &again)]).await.status, 401);
}
