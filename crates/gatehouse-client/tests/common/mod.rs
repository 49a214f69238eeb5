//! A real gateway (`gatehouse-server`) on a loopback port in front of a counting echo
//! upstream, with seeded users; the pattern of `gatehouse-server/tests/common/mod.rs`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use gatehouse_client::{Client, Credentials, StoreError, TokenStore, Tokens};
use gatehouse_core::config;
use gatehouse_core::password::hash_password;
use gatehouse_server::clock::now;
use gatehouse_server::{Gateway, build_with_store, public_router, serve_on};
use gatehouse_store::{NewUser, open_store};
use http::{Request, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub struct Harness {
    pub base: String,
    pub gw: Arc<Gateway>,
    /// Requests the upstream application received.
    pub upstream_hits: Arc<AtomicUsize>,
    stop: watch::Sender<bool>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The upstream: `/api/forbidden` refuses with its own 403 problem, everything else echoes.
async fn upstream(hits: Arc<AtomicUsize>, mut stop: watch::Receiver<bool>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let router = axum::Router::new().fallback(move |req: Request<Body>| {
        let hits = Arc::clone(&hits);
        async move {
            let before = hits.fetch_add(1, Ordering::SeqCst);
            if req.uri().path() == "/api/busy" && before.is_multiple_of(2) {
                // Every other request: busy, come back in a second.
                return axum::response::Response::builder()
                    .status(StatusCode::SERVICE_UNAVAILABLE)
                    .header("retry-after", "1")
                    .body(Body::empty())
                    .unwrap();
            }
            if req.uri().path() == "/api/forbidden" {
                return axum::response::Response::builder()
                    .status(StatusCode::FORBIDDEN)
                    .header("content-type", "application/problem+json")
                    .body(Body::from(
                        r#"{"type":"https://app.example/problems/not-owner","title":"Not the owner","status":403,"error":"not_owner"}"#,
                    ))
                    .unwrap();
            }
            let user = req
                .headers()
                .get("x-gatehouse-user")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let body = serde_json::json!({"path": req.uri().path(), "user": user});
            axum::response::Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap()
        }
    });
    tokio::spawn(serve_on(l, router, async move {
        let _ = stop.wait_for(|s| *s).await;
    }));
    addr
}

fn config_text(upstream: SocketAddr) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
realm = "api"

[upstream]
url = "http://{upstream}"
timeout = "2s"

[store]
url = "sqlite::memory:"

[defaults]
access = "authenticated"
auth = ["bearer", "basic", "api_key"]

[[route]]
name = "admin"
path = "/admin/**"
roles = ["admin"]

[[route]]
name = "billing"
path = "/billing/**"
mfa = true

[[route]]
name = "fresh"
path = "/fresh/**"
max_age = "5m"

[[route]]
name = "checkout"
path = "/checkout/**"

[[route.require]]
attribute = "payment_method"
present = true
code = "payment_method_required"
message = "Add a payment method to check out."
remedy_url = "/account/billing"

[[route]]
name = "metered"
path = "/metered/**"
quota = {{ max = 1, per = "2s" }}

[[route]]
name = "api"
path = "/api/**"
"#
    )
}

impl Harness {
    pub async fn start() -> Self {
        gatehouse_server::install_crypto();
        let (stop, rx) = watch::channel(false);
        let hits = Arc::new(AtomicUsize::new(0));
        let up = upstream(Arc::clone(&hits), rx.clone()).await;
        let (cfg, _warnings) = config::parse(&config_text(up)).unwrap();
        let store = open_store("sqlite::memory:").await.unwrap();
        let h = |pw: &str| hash_password(pw.as_bytes(), &[7u8; 16]).unwrap();
        for (name, pw, roles) in [
            ("alice", "alice-pw", vec!["admin"]),
            ("bob", "bob-pw", vec![]),
        ] {
            store
                .create_user(
                    NewUser {
                        name: name.to_owned(),
                        password_hash: Some(h(pw)),
                        roles: roles.into_iter().map(str::to_owned).collect(),
                        tenant: None,
                    },
                    now(),
                )
                .await
                .unwrap();
        }
        let gw = build_with_store(cfg, store).await.unwrap();
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let mut rx2 = rx;
        tokio::spawn(serve_on(l, public_router(Arc::clone(&gw)), async move {
            let _ = rx2.wait_for(|s| *s).await;
        }));
        Self {
            base: format!("http://{addr}"),
            gw,
            upstream_hits: hits,
            stop,
        }
    }

    pub fn hits(&self) -> usize {
        self.upstream_hits.load(Ordering::SeqCst)
    }

    /// A loopback HTTP client (no system proxy).
    pub fn http() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    pub fn client(&self, credentials: Credentials) -> Client {
        Client::builder(&self.base)
            .credentials(credentials)
            .http_client(Self::http())
            .max_retry_after(Duration::from_secs(5))
            .build()
            .unwrap()
    }

    /// An access token of the gateway's own key for `user`, issued at `issued`
    /// (authenticated then) and valid for `ttl` seconds.
    pub async fn token(&self, user: &str, acr: &str, issued: i64, ttl: u64) -> String {
        let u = self.gw.store.get_user(user).await.unwrap().unwrap();
        let rt = self.gw.runtime();
        gatehouse_server::tokens::issue(
            &self.gw.own_keys(),
            &rt.config.tokens,
            &gatehouse_server::tokens::TokenRequest {
                user: &u,
                scopes: &[],
                acr,
                auth_time: issued,
                amr: &[],
                session_id: None,
                now: issued,
                ttl: Duration::from_secs(ttl),
            },
        )
        .unwrap()
    }

    /// An access token that expired a minute ago.
    pub async fn expired_token(&self, user: &str) -> String {
        self.token(user, "pwd", now() - 600, 60).await
    }
}

/// A token store that counts saves (sign-ins and refreshes).
#[derive(Default)]
pub struct CountingStore {
    pub inner: gatehouse_client::MemoryTokenStore,
    pub saves: AtomicUsize,
}

impl CountingStore {
    pub fn saves(&self) -> usize {
        self.saves.load(Ordering::SeqCst)
    }
}

impl TokenStore for CountingStore {
    fn load(&self) -> Result<Option<Tokens>, StoreError> {
        self.inner.load()
    }
    fn save(&self, tokens: &Tokens) -> Result<(), StoreError> {
        self.saves.fetch_add(1, Ordering::SeqCst);
        self.inner.save(tokens)
    }
    fn clear(&self) -> Result<(), StoreError> {
        self.inner.clear()
    }
}
