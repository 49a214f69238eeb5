//! The tower Layer in an app of its own (the shape of `examples/axum_layer.rs`), over a real
//! socket: handlers read the verified principal with the `Authenticated` extractor, public
//! routes pass without one, refusals are the table's, and the token service merged after
//! the layer issues tokens the layer accepts. (The whole semantics suite runs against the
//! Layer in `semantics_layer.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use common::{basic, config_text, seed, test_store};
use gatehouse_server::{Authenticated, GatehouseLayer, serve_on};
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::sync::watch;

async fn me(Authenticated(who): Authenticated) -> String {
    format!("hello, {} ({})", who.subject, who.roles.join(", "))
}

async fn who(who: Option<Authenticated>) -> String {
    who.map_or_else(|| "nobody".to_owned(), |w| w.subject.clone())
}

struct App {
    addr: SocketAddr,
    client: Client<HttpConnector, axum::body::Body>,
    _stop: watch::Sender<bool>,
    /// The PostgreSQL schema of this app, when the run uses PostgreSQL (dropped with it).
    _schema: Option<common::pg::Schema>,
}

impl App {
    async fn start() -> Self {
        gatehouse_server::install_crypto();
        // The semantics config; its `[upstream]` is not used by the Layer.
        let text = config_text("127.0.0.1:9".parse().unwrap(), "");
        let (cfg, _) = gatehouse_core::config::parse(&text).unwrap();
        let (store, schema) = test_store().await;
        seed(store.as_ref()).await;
        let gatehouse = GatehouseLayer::from_config(cfg, store).await.unwrap();
        let app = Router::new()
            .route("/api/posts/me", get(me))
            .route("/public/who", get(who))
            // Added before the layer, so that every path is guarded, not only the routes.
            .fallback(|| async { "fallback" })
            .layer(gatehouse.clone())
            .merge(gatehouse.endpoints());
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (stop, mut rx) = watch::channel(false);
        tokio::spawn(serve_on(l, app, async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
        Self {
            addr,
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
            _stop: stop,
            _schema: schema,
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, http::HeaderMap, String) {
        let mut b = http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        let resp = self
            .client
            .request(b.body(axum::body::Body::from(body.to_owned())).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }
}

#[tokio::test]
async fn handlers_read_the_principal_the_layer_verified() {
    let app = App::start().await;

    // Row 5 from the table: one challenge per scheme of the route, problem+json.
    let (status, headers, body) = app.send("GET", "/api/posts/me", &[], "").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(headers.get_all("www-authenticate").iter().count(), 3);
    assert!(body.contains("\"error\":\"missing_credentials\""), "{body}");
    assert!(headers.contains_key("x-request-id"));

    // Basic: the handler reads the principal.
    let auth = basic("bob", "bob-pw");
    let (status, _, body) = app
        .send("GET", "/api/posts/me", &[("Authorization", &auth)], "")
        .await;
    assert_eq!((status, body.as_str()), (200, "hello, bob (editor)"));

    // A public route (row 1) passes without a principal, whatever the client claims.
    let (status, _, body) = app
        .send("GET", "/public/who", &[("X-Gatehouse-User", "admin")], "")
        .await;
    assert_eq!((status, body.as_str()), (200, "nobody"));

    // The token service merged after the layer: sign in, then the token is accepted.
    let (status, _, body) = app
        .send(
            "POST",
            "/auth/login",
            &[("Content-Type", "application/json")],
            r#"{"username":"bob","password":"bob-pw"}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    let (status, _, body) = app
        .send("GET", "/api/posts/me", &[("Authorization", &bearer)], "")
        .await;
    assert_eq!((status, body.as_str()), (200, "hello, bob (editor)"));

    // An encoding trick reaches no handler: the path is normalized first (§3), and a path
    // no route of the app matches is guarded too (the fallback was added before the layer).
    let (status, _, body) = app.send("GET", "/public/..%2fapi/posts/me", &[], "").await;
    assert_eq!(status, 400, "{body}");
}
