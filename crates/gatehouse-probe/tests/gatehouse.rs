//! The probe against `gatehouse serve` itself, in-process: it must come out clean.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use gatehouse_core::config;
use gatehouse_core::password::hash_password;
use gatehouse_probe::{Format, Limits, Options, Report, spec};
use gatehouse_server::clock::now;
use gatehouse_server::{Gateway, build_with_store, public_router, serve_on};
use gatehouse_store::{NewUser, open_store};
use tokio::net::TcpListener;

async fn upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(serve_on(
        l,
        // The app behind the gateway: whatever reaches it is allowed, and answers 200.
        axum::Router::new().fallback(|| async { axum::Json(serde_json::json!({ "ok": true })) }),
        std::future::pending(),
    ));
    addr
}

async fn gateway() -> (SocketAddr, Arc<Gateway>) {
    gatehouse_server::install_crypto();
    let up = upstream().await;
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
realm = "api"
[upstream]
url = "http://{up}"
[store]
url = "sqlite::memory:"
[defaults]
access = "authenticated"
auth = ["bearer", "basic"]
[[route]]
name = "health"
path = "/public/**"
access = "public"
[[route]]
name = "admin"
path = "/api/admin/**"
auth = ["bearer", "basic"]
roles = ["admin"]
[[route]]
name = "items"
path = "/api/items/**"
auth = ["bearer", "basic"]
"#
    );
    let (cfg, _) = config::parse(&text).unwrap();
    let store = open_store("sqlite::memory:").await.unwrap();
    for (name, pw, roles) in [
        ("alice", "alice-pw", vec!["admin"]),
        ("bob", "bob-pw", vec!["editor"]),
    ] {
        store
            .create_user(
                NewUser {
                    name: name.to_owned(),
                    password_hash: Some(hash_password(pw.as_bytes(), &[7u8; 16]).unwrap()),
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
    tokio::spawn(serve_on(
        l,
        public_router(Arc::clone(&gw)),
        std::future::pending(),
    ));
    (addr, gw)
}

async fn token(gw: &Gateway, user: &str, issued: i64, ttl: u64) -> String {
    let u = gw.store.get_user(user).await.unwrap().unwrap();
    let rt = gw.runtime();
    gatehouse_server::tokens::issue(
        &gw.own_keys(),
        &rt.config.tokens,
        &gatehouse_server::tokens::TokenRequest {
            user: &u,
            scopes: &[],
            acr: "pwd",
            auth_time: issued,
            amr: &[],
            session_id: None,
            now: issued,
            ttl: Duration::from_secs(ttl),
        },
    )
    .unwrap()
}

async fn probe(aggressive: bool) -> Report {
    let (addr, gw) = gateway().await;
    let admin = token(&gw, "alice", now(), 600).await;
    let expired = token(&gw, "alice", now() - 7200, 60).await;
    let bob = base64::engine::general_purpose::STANDARD.encode("bob:bob-pw");
    let text = format!(
        r#"
target = "http://{addr}"
[personas.bob]
headers = {{ Authorization = "Basic {bob}" }}
[personas.admin]
headers = {{ Authorization = "Bearer {admin}" }}
[personas.expired]
headers = {{ Authorization = "Bearer {expired}" }}
invalid = true

[[endpoint]]
path = "/api/items/1"
allow = ["bob", "admin"]
[[endpoint]]
method = "DELETE"
path = "/api/admin/users/7"
allow = ["admin"]
[[endpoint]]
path = "/public/health"
public = true
"#
    );
    let spec = spec::parse(&text).unwrap();
    let limits = Limits {
        rate: 1000,
        ..Limits::default()
    };
    gatehouse_probe::run(
        &spec,
        spec.target.clone().unwrap(),
        Options {
            limits,
            aggressive,
            progress: None,
        },
    )
    .await
}

#[tokio::test]
async fn gatehouse_serve_is_clean() {
    let r = probe(false).await;
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(r.throttled, 0);
    assert!(r.findings.is_empty(), "{}", r.render(Format::Table));
}

#[tokio::test]
async fn gatehouse_serve_throttles_failed_attempts() {
    let r = probe(true).await;
    assert!(r.findings.is_empty(), "{}", r.render(Format::Table));
    assert!(r.throttled >= 1);
}
