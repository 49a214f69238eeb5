//! Test harness: a real upstream and a real gateway on random loopback ports, a seeded
//! in-memory store, and a small HTTP client that can send anything (duplicate headers,
//! raw paths). Servers stop when the harness is dropped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod digest_client;
pub mod flaky;
pub mod geo;
pub mod nginx;
pub mod pg;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use gatehouse_core::apikey::generate_api_key;
use gatehouse_core::config;
use gatehouse_core::password::hash_password;
use gatehouse_server::clock::now;
use gatehouse_server::{BuildOptions, Gateway, build_with_options, serve_on, serve_public};
use gatehouse_store::{NewApiKey, NewUser, Store, open_store};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub struct Harness {
    pub addr: SocketAddr,
    pub upstream: SocketAddr,
    pub gw: Arc<Gateway>,
    client: Client<HttpConnector, Body>,
    stop: watch::Sender<bool>,
    /// The PostgreSQL schema of this harness, when the run uses PostgreSQL.
    _schema: Option<pg::Schema>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
    pub fn challenges(&self) -> Vec<String> {
        self.headers
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// An upstream that echoes what it got (method, path, query, identity headers, auth).
pub async fn echo_upstream(stop: watch::Receiver<bool>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let router = echo_app();
    let mut rx = stop;
    tokio::spawn(serve_on(l, router, async move {
        let _ = rx.wait_for(|s| *s).await;
    }));
    addr
}

/// The echo upstream's app: what the proxy forwards to, and what the tower Layer guards in
/// the layer runs of the semantics cases.
pub fn echo_app() -> axum::Router {
    axum::Router::new()
        .fallback(|req: Request<Body>| async move {
            let h = req.headers();
            // Identity values are UTF-8 (a user may be `josé`); header bytes, not just ASCII.
            let get = |n: &str| {
                h.get(n)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            };
            axum::Json(serde_json::json!({
                "upstream": "echo",
                "method": req.method().as_str(),
                "path": req.uri().path(),
                "query": req.uri().query(),
                "user": get("x-gatehouse-user"),
                "roles": get("x-gatehouse-roles"),
                "tenant": get("x-gatehouse-tenant"),
                "scopes": get("x-gatehouse-scopes"),
                "auth": get("x-gatehouse-auth"),
            }))
        })
        .route(
            "/slow",
            axum::routing::any(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route(
            "/echo-body",
            axum::routing::any(|req: Request<Body>| async move {
                let bytes = req
                    .into_body()
                    .collect()
                    .await
                    .map(|c| c.to_bytes())
                    .unwrap_or_default();
                Body::from(bytes)
            }),
        )
        .route(
            "/echo-headers",
            axum::routing::any(|req: Request<Body>| async move {
                let h: serde_json::Map<String, serde_json::Value> = req
                    .headers()
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            serde_json::Value::String(v.to_str().unwrap_or("").to_owned()),
                        )
                    })
                    .collect();
                axum::Json(serde_json::Value::Object(h))
            }),
        )
}

/// How the gateway under test is run: as the reverse proxy, or as a tower Layer around the
/// echo app ([`echo_app`]) in-process. The test binaries whose name ends in `_layer` (e.g.
/// `semantics_layer`, which runs `semantics.rs`'s cases) use the Layer; every other one the
/// proxy.
pub fn layer_mode() -> bool {
    env!("CARGO_CRATE_NAME").ends_with("_layer")
}

pub const HS_SECRET: &str = "an-hs256-shared-secret-of-32-bytes-or-more!";

/// The config used by the semantics tests: one route per row of the contract.
pub fn config_text(upstream: SocketAddr, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
realm = "api"
trusted_proxies = ["127.0.0.1/32"]

[upstream]
url = "http://{upstream}"
timeout = "1s"

[store]
url = "sqlite::memory:"

[[issuers]]
name = "partner"
issuer = "https://partner.example"
audience = "api"
secret = "{HS_SECRET}"
algorithms = ["HS256"]
roles_claim = "realm_access.roles"
tenant_claim = "org_id"

[cors]
allowed_origins = ["https://app.example"]

[defaults]
access = "authenticated"
auth = ["bearer", "api_key"]

[[route]]
name = "public"
path = "/public/**"
access = "public"

[[route]]
name = "dotfiles"
path = "/.git/**"
access = "deny"

[[route]]
name = "office"
path = "/office/**"
networks = ["10.0.0.0/8"]

[[route]]
name = "blocked"
path = "/blocked/**"
deny_networks = ["127.0.0.0/8"]

[[route]]
name = "admin"
path = "/api/admin/**"
auth = ["bearer", "basic", "api_key"]
roles = ["admin"]

[[route]]
name = "basic-only"
path = "/basic/**"
auth = ["basic"]

[[route]]
name = "posts-write"
path = "/api/posts/**"
methods = ["POST", "PUT", "PATCH", "DELETE"]
auth = ["bearer", "api_key", "basic"]
scopes = ["posts:write"]

[[route]]
name = "posts"
path = "/api/posts/**"
auth = ["bearer", "api_key", "basic"]

[[route]]
name = "tenant"
path = "/tenants/{{tenant}}/**"
auth = ["bearer", "basic", "api_key"]
tenant_param = "tenant"

[[route]]
name = "owner"
path = "/users/{{user_id}}/**"
auth = ["bearer", "basic"]
owner_param = "user_id"

[[route]]
name = "internal"
path = "/internal/**"
auth = ["bearer", "basic"]
roles = ["ops"]
hidden = true

[[route]]
name = "billing"
path = "/billing/**"
mfa = true

[[route]]
name = "fresh"
path = "/fresh/**"
max_age = "5m"
{extra}
"#
    )
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with("").await
    }

    pub async fn start_with(extra: &str) -> Self {
        gatehouse_server::install_crypto();
        let (stop, rx) = watch::channel(false);
        let upstream = echo_upstream(rx.clone()).await;
        Self::start_config(&config_text(upstream, extra), upstream, stop, rx).await
    }

    pub async fn start_config(
        text: &str,
        upstream: SocketAddr,
        stop: watch::Sender<bool>,
        rx: watch::Receiver<bool>,
    ) -> Self {
        Self::start_config_with(text, upstream, stop, rx, BuildOptions::default()).await
    }

    /// As [`Harness::start_with`], with build options.
    pub async fn start_with_options(extra: &str, options: BuildOptions) -> Self {
        gatehouse_server::install_crypto();
        let (stop, rx) = watch::channel(false);
        let upstream = echo_upstream(rx.clone()).await;
        Self::start_config_with(&config_text(upstream, extra), upstream, stop, rx, options).await
    }

    async fn start_config_with(
        text: &str,
        upstream: SocketAddr,
        stop: watch::Sender<bool>,
        rx: watch::Receiver<bool>,
        options: BuildOptions,
    ) -> Self {
        let (store, schema) = test_store().await;
        seed(store.as_ref()).await;
        let mut h = Self::start_store_with(text, upstream, stop, rx, store, options).await;
        h._schema = schema;
        h
    }

    /// As [`Harness::start_config`] with a store the test built (seeded or not).
    pub async fn start_store(
        text: &str,
        upstream: SocketAddr,
        stop: watch::Sender<bool>,
        rx: watch::Receiver<bool>,
        store: Arc<dyn Store>,
    ) -> Self {
        Self::start_store_with(text, upstream, stop, rx, store, BuildOptions::default()).await
    }

    /// As [`Harness::start_store`] with build options (e.g. a long store poll).
    pub async fn start_store_with(
        text: &str,
        upstream: SocketAddr,
        stop: watch::Sender<bool>,
        rx: watch::Receiver<bool>,
        store: Arc<dyn Store>,
        options: BuildOptions,
    ) -> Self {
        gatehouse_server::install_crypto();
        let (cfg, _warnings) = config::parse(text).unwrap_or_else(|e| panic!("config: {e}"));
        let gw = build_with_options(cfg, store, options).await.unwrap();
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let mut rx2 = rx;
        let stopped = async move {
            let _ = rx2.wait_for(|s| *s).await;
        };
        if layer_mode() {
            let layer = gatehouse_server::GatehouseLayer::new(Arc::clone(&gw));
            let app = echo_app().layer(layer.clone()).merge(layer.endpoints());
            tokio::spawn(serve_on(l, app, stopped));
        } else {
            tokio::spawn(serve_public(l, Arc::clone(&gw), stopped));
        }
        let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        Self {
            addr,
            upstream,
            gw,
            client,
            stop,
            _schema: None,
        }
    }

    /// Sends a request; `headers` may repeat names.
    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.send_body(method, path, headers, Body::empty()).await
    }

    pub async fn send_body(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Resp {
        self.send_at(self.addr, method, path, headers, body).await
    }

    /// As [`Harness::send_body`] to another listener of this gateway (the admin port).
    pub async fn send_at(
        &self,
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Resp {
        send_to(&self.client, addr, method, path, headers, body).await
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.send("GET", path, headers).await
    }

    /// `POST /auth/login` with a JSON body.
    pub async fn login(&self, user: &str, pw: &str) -> Resp {
        let body = serde_json::json!({ "username": user, "password": pw }).to_string();
        self.send_body(
            "POST",
            "/auth/login",
            &[("Content-Type", "application/json")],
            Body::from(body),
        )
        .await
    }

    /// A token signed with the gateway's own key for a seeded user.
    pub async fn own_token(
        &self,
        user: &str,
        scopes: &[&str],
        acr: &str,
        issued: i64,
        ttl: u64,
    ) -> String {
        let u = self.gw.store.get_user(user).await.unwrap().unwrap();
        let rt = self.gw.runtime();
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        gatehouse_server::tokens::issue(
            &self.gw.own_keys(),
            &rt.config.tokens,
            &gatehouse_server::tokens::TokenRequest {
                user: &u,
                scopes: &scopes,
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

    /// Creates an API key for `user`; returns the full key.
    pub async fn api_key(
        &self,
        user: &str,
        scopes: &[&str],
        read_only: bool,
        expires_at: Option<i64>,
    ) -> String {
        let mut random = [0u8; 37];
        aws_lc_rs::rand::fill(&mut random).unwrap();
        let g = generate_api_key(&random);
        self.gw
            .store
            .create_api_key(
                NewApiKey {
                    id: format!("key_{}", g.prefix),
                    prefix: g.prefix.clone(),
                    hash: g.hash,
                    user: user.to_owned(),
                    scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                    read_only,
                    expires_at,
                    label: None,
                },
                now(),
            )
            .await
            .unwrap();
        g.display.expose().to_owned()
    }
}

/// An empty store: SQLite in memory, or a fresh PostgreSQL schema when the run asks for it.
pub async fn test_store() -> (Arc<dyn Store>, Option<pg::Schema>) {
    match pg::wanted() {
        Some(base) => {
            let schema = pg::Schema::create(&base).await;
            let store = open_store(&schema.url()).await.unwrap();
            (store, Some(schema))
        }
        None => (open_store("sqlite::memory:").await.unwrap(), None),
    }
}

/// Users: alice (admin, ops; tenant acme), bob (editor; tenant globex),
/// carol (suspended), dave (no password).
pub async fn seed(store: &dyn Store) {
    // Low-cost argon2 keeps debug-build tests fast; verification reads params from the hash.
    let h = |pw: &str| hash_password(pw.as_bytes(), &[7u8; 16]).unwrap();
    for (name, pw, roles, tenant) in [
        (
            "alice",
            Some("alice-pw"),
            vec!["admin", "ops"],
            Some("acme"),
        ),
        ("bob", Some("bob-pw"), vec!["editor"], Some("globex")),
        ("carol", Some("carol-pw"), vec!["editor"], Some("acme")),
        ("dave", None, vec![], None),
        ("josé", Some("contraseña-£"), vec!["editor"], None),
    ] {
        store
            .create_user(
                NewUser {
                    name: name.to_owned(),
                    password_hash: pw.map(h),
                    roles: roles.into_iter().map(str::to_owned).collect(),
                    tenant: tenant.map(str::to_owned),
                },
                now(),
            )
            .await
            .unwrap();
    }
    store
        .suspend_user("carol", "Terms of Service violation", 1_700_000_000)
        .await
        .unwrap();
}

/// Sends a request to any server on `addr` (a gateway, a proxy in front of one, a mock);
/// `headers` may repeat names.
pub async fn send_to(
    client: &Client<HttpConnector, Body>,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Body,
) -> Resp {
    let mut b = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    let resp = client.request(b.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Resp {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub fn basic(user: &str, pw: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

/// An HS256 token of the `partner` issuer.
pub fn partner_token(claims: serde_json::Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(HS_SECRET.as_bytes());
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &key,
    )
    .unwrap()
}
