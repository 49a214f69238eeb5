//! An axum app guarded by Gatehouse as a tower Layer: the same config format and the same
//! answers as `gatehouse serve` in front of an upstream, in-process.
//!
//! ```sh
//! cargo run -p gatehouse-server --example axum_layer            # listens on 127.0.0.1:8081
//! curl -i http://127.0.0.1:8081/api/me                          # 401 missing_credentials
//! curl -i -u bob:bob-password http://127.0.0.1:8081/api/me      # 200 "hello, bob (editor)"
//! curl -i -u bob:bob-password http://127.0.0.1:8081/api/admin   # 403 insufficient_role
//! ```
//! `GATEHOUSE_EXAMPLE_LISTEN` overrides the address (the tests use `127.0.0.1:0`).

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use gatehouse_core::password::hash_password;
use gatehouse_server::{Authenticated, GatehouseLayer};
use gatehouse_store::{NewUser, open_store};

const CONFIG: &str = r#"
[server]
realm = "example"

[store]
url = "sqlite::memory:"

[defaults]
access = "authenticated"
auth = ["bearer", "basic"]

[[route]]
name = "health"
path = "/health"
access = "public"

[[route]]
name = "admin"
path = "/api/admin/**"
auth = ["bearer", "basic"]
roles = ["admin"]
"#;

/// A handler that reads the verified principal.
async fn me(Authenticated(who): Authenticated) -> String {
    format!("hello, {} ({})", who.subject, who.roles.join(", "))
}

async fn health(who: Option<Authenticated>) -> &'static str {
    // A public route: no principal.
    if who.is_some() { "odd" } else { "ok" }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    gatehouse_server::install_crypto();
    let (config, _warnings) = gatehouse_core::config::parse(CONFIG)?;
    let store = open_store(&config.store.url).await?;
    let salt = gatehouse_server::random::random_bytes::<16>();
    store
        .create_user(
            NewUser {
                name: "bob".into(),
                password_hash: Some(hash_password(b"bob-password", &salt)?),
                roles: vec!["editor".into()],
                tenant: None,
            },
            gatehouse_server::clock::now(),
        )
        .await?;
    let gatehouse = GatehouseLayer::from_config(config, store).await?;
    let app = Router::new()
        .route("/api/me", get(me))
        .route("/api/admin", get(me))
        .route("/health", get(health))
        // Before the layer, so that paths without a route are guarded too.
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "no such page") })
        .layer(gatehouse.clone())
        // Gatehouse's own endpoints (`/auth/login`, JWKS, …), unguarded: added after the layer.
        .merge(gatehouse.endpoints());
    let listen =
        std::env::var("GATEHOUSE_EXAMPLE_LISTEN").unwrap_or_else(|_| "127.0.0.1:8081".into());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    // The client address decides `networks` (row 3) and throttling (row 4).
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
