//! A real nginx `auth_request` in front of an application, asking Gatehouse. The `http`
//! block is the ```` ```nginx ```` snippet of `docs/forward-auth.md`, read from the page, so
//! the configuration a reader copies is the one tested.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};

use super::common::basic;
use super::proxies::{
    Proxy, doc_snippet, forward_auth_only, free_addr, header_echo,
    identity_reaches_the_app_and_nothing_else, scratch_dir, send,
};
use super::{APIKEY, BASIC, BEARER, start_edited};

/// The doc's snippet with the test's addresses: Gatehouse, the application, nginx itself.
fn snippet(gatehouse: SocketAddr, app: SocketAddr, listen: SocketAddr) -> String {
    doc_snippet(
        "nginx",
        &[
            ("server 127.0.0.1:8080;", &format!("server {gatehouse};")),
            ("http://127.0.0.1:3000;", &format!("http://{app};")),
            ("listen 80;", &format!("listen {listen};")),
        ],
    )
}

/// nginx with the doc's snippet, in front of `app`, asking Gatehouse at `gatehouse`.
async fn nginx(bin: &Path, gatehouse: SocketAddr, app: SocketAddr) -> Proxy {
    let dir = scratch_dir("nginx");
    let addr = free_addr();
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\n\
         error_log {d}/error.log info;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 128; }}\n\
         http {{\n\
         access_log off;\n\
         client_body_temp_path {d}/client_body;\nproxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
         {}\n}}\n",
        snippet(gatehouse, app, addr)
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("-e")
        .arg(dir.join("error.log"))
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf_path);
    Proxy::spawn(cmd, dir, addr).await
}

fn skip() -> Option<(PathBuf, (u32, u32))> {
    super::common::nginx::nginx_or_skip()
}

#[tokio::test]
async fn nginx_auth_request_end_to_end() {
    let Some((bin, version)) = skip() else { return };
    let h = forward_auth_only().await;
    // Without an upstream, Gatehouse itself proxies nothing.
    let alice = basic("alice", "alice-pw");
    let direct = h
        .get("/api/admin/users", &[("Authorization", &alice)])
        .await;
    assert_eq!(direct.status, 404);
    let app = header_echo().await;
    let nginx = nginx(&bin, h.addr, app).await;
    let at = nginx.addr;
    let ctx = || nginx.logs();

    let r = send(at, "GET", "/api/admin/users", &[]).await;
    assert_eq!(r.status, 401, "{}", ctx());
    // nginx copies WWW-Authenticate from a 401 auth answer: before 1.23.0 only the first.
    let expected: &[&str] = if version >= (1, 23) {
        &[BEARER, BASIC, APIKEY]
    } else {
        &[BEARER]
    };
    assert_eq!(r.challenges(), expected);
    assert_eq!(r.header("x-gatehouse-error"), Some("missing_credentials"));

    let bob = basic("bob", "bob-pw");
    let r = send(at, "GET", "/api/admin/users", &[("Authorization", &bob)]).await;
    assert_eq!(r.status, 403);
    assert!(r.challenges().is_empty());
    assert_eq!(r.header("x-gatehouse-error"), Some("insufficient_role"));

    identity_reaches_the_app_and_nothing_else(&h, at, &ctx).await;

    // Statuses nginx would turn into 500, restored by `@gatehouse_status`.
    let r = send(at, "GET", "/internal/metrics", &[("Authorization", &bob)]).await;
    assert_eq!(r.status, 404, "{}", ctx());
    assert_eq!(r.header("x-gatehouse-error"), Some("not_found"));
    let r = send(at, "GET", "/api/posts", &[("Authorization", "Bearer")]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("x-gatehouse-error"), Some("invalid_request"));
    let r = send(at, "GET", "/internal/metrics", &[("Authorization", &alice)]).await;
    assert_eq!(r.status, 200, "{}", ctx());
    assert_eq!(r.json()["headers"]["x-gatehouse-user"], "alice");
}

/// Accepts on a loopback port, counts connections, relays each to `target`.
async fn counting_relay(target: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = l.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut out) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    (addr, count)
}

/// Design §4: nginx reuses the keep-alive connection to the auth service only when the
/// denial has no body — the reason `forward_auth_body = "auto"` answers nginx empty.
#[tokio::test]
async fn nginx_reuses_auth_connections_only_for_empty_denials() {
    let Some((bin, _)) = skip() else { return };
    let mut connections = Vec::new();
    for policy in ["auto", "full"] {
        let h = start_edited(|t| {
            t.replace(
                "realm = \"api\"",
                &format!("realm = \"api\"\nforward_auth_body = \"{policy}\""),
            )
        })
        .await;
        let (relay, count) = counting_relay(h.addr).await;
        let nginx = nginx(&bin, relay, h.upstream).await;
        for _ in 0..20 {
            let r = send(nginx.addr, "GET", "/api/admin/users", &[]).await;
            assert_eq!(r.status, 401, "{}", nginx.logs());
        }
        connections.push(count.load(Ordering::SeqCst));
    }
    assert!(
        connections[0] <= 2,
        "empty bodies: {} connections for 20 checks",
        connections[0]
    );
    assert!(
        connections[1] >= 19,
        "full bodies: {} connections for 20 checks",
        connections[1]
    );
}
