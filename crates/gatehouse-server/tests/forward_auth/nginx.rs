//! A real nginx `auth_request` in front of the echo upstream, asking Gatehouse. The `http`
//! block below is the snippet of `docs/forward-auth.md`, checked verbatim by a test.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::{TcpListener, TcpStream};

use gatehouse_server::ids::now;

use super::common::nginx::{Nginx, nginx_or_skip};
use super::common::{Harness, Resp, basic};
use super::{APIKEY, BASIC, BEARER, start_edited};

/// The nginx side of forward-auth (inside `http { … }`); `{gatehouse}`, `{app}` and
/// `{listen}` are filled in.
const SNIPPET: &str = r#"upstream gatehouse {
    server {gatehouse};
    keepalive 16;
}

server {
    listen {listen};

    location / {
        auth_request /_gatehouse_auth;
        auth_request_set $gh_user $upstream_http_x_gatehouse_user;
        auth_request_set $gh_roles $upstream_http_x_gatehouse_roles;
        auth_request_set $gh_tenant $upstream_http_x_gatehouse_tenant;
        auth_request_set $gh_scopes $upstream_http_x_gatehouse_scopes;
        auth_request_set $gh_auth $upstream_http_x_gatehouse_auth;
        auth_request_set $gh_status $upstream_status;
        auth_request_set $gh_error $upstream_http_x_gatehouse_error;
        auth_request_set $gh_retry_after $upstream_http_retry_after;
        # On 401 nginx copies WWW-Authenticate itself (before 1.23.0: the first line only).
        add_header X-Gatehouse-Error $gh_error always;
        # Any auth status but 2xx/401/403 becomes 500: restore Gatehouse's status.
        error_page 500 = @gatehouse_status;

        proxy_set_header X-Gatehouse-User $gh_user;
        proxy_set_header X-Gatehouse-Roles $gh_roles;
        proxy_set_header X-Gatehouse-Tenant $gh_tenant;
        proxy_set_header X-Gatehouse-Scopes $gh_scopes;
        proxy_set_header X-Gatehouse-Auth $gh_auth;
        proxy_pass http://{app};
    }

    location = /_gatehouse_auth {
        internal;
        proxy_pass http://gatehouse/_gatehouse/forward-auth;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header X-Original-URI $request_uri;
        proxy_set_header X-Original-Method $request_method;
        proxy_set_header X-Forwarded-Uri "";
        proxy_set_header X-Forwarded-Method "";
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }

    location @gatehouse_status {
        add_header X-Gatehouse-Error $gh_error always;
        add_header Retry-After $gh_retry_after always;
        if ($gh_status = 400) { return 400; }
        if ($gh_status = 404) { return 404; }
        if ($gh_status = 429) { return 429; }
        if ($gh_status = 503) { return 503; }
        return 500;
    }
}
"#;

fn snippet(gatehouse: &str, app: &str, listen: &str) -> String {
    SNIPPET
        .replace("{gatehouse}", gatehouse)
        .replace("{app}", app)
        .replace("{listen}", listen)
}

/// nginx with [`SNIPPET`] in front of Gatehouse at `gatehouse` and the app at `app`.
async fn start_nginx(bin: &Path, gatehouse: SocketAddr, app: SocketAddr) -> Nginx {
    Nginx::start(bin, |listen| {
        snippet(
            &gatehouse.to_string(),
            &app.to_string(),
            &listen.to_string(),
        )
    })
    .await
}

async fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let mut b = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    let resp = client
        .request(b.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Resp {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Gatehouse without `[upstream]`: forward-auth only, as deployed behind nginx.
async fn forward_auth_only() -> Harness {
    start_edited(|t| {
        let start = t.find("[upstream]").unwrap();
        let end = start + t[start..].find("[store]").unwrap();
        format!("{}{}", &t[..start], &t[end..])
    })
    .await
}

#[tokio::test]
async fn nginx_auth_request_end_to_end() {
    let Some((bin, version)) = nginx_or_skip() else {
        return;
    };
    let h = forward_auth_only().await;
    // Without an upstream, Gatehouse itself proxies nothing.
    let alice = basic("alice", "alice-pw");
    let direct = h
        .get("/api/admin/users", &[("Authorization", &alice)])
        .await;
    assert_eq!(direct.status, 404);
    let nginx = start_nginx(&bin, h.addr, h.upstream).await;
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

    let r = send(
        at,
        "GET",
        "/api/admin/users?page=2",
        &[("Authorization", &alice)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", ctx());
    let b = r.json();
    assert_eq!(b["upstream"], "demo");
    assert_eq!(
        (b["path"].as_str(), b["query"].as_str()),
        (Some("/api/admin/users"), Some("page=2"))
    );
    assert_eq!(b["user"], "alice");
    assert_eq!(b["roles"], "admin,ops");
    assert_eq!(b["tenant"], "acme");
    assert_eq!(b["auth"], "basic");
    assert!(r.header("x-gatehouse-error").is_none());

    // Forged identity headers: the upstream sees the verified principal, or nobody.
    let forged = [
        ("X-Gatehouse-User", "alice"),
        ("X-Gatehouse-Roles", "admin"),
    ];
    let mut with_bob = forged.to_vec();
    with_bob.push(("Authorization", &bob));
    let r = send(at, "GET", "/api/posts/1", &with_bob).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.json()["user"].as_str(), r.json()["roles"].as_str()),
        (Some("bob"), Some("editor"))
    );
    let r = send(at, "GET", "/public/info", &forged).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["user"], serde_json::Value::Null);
    assert_eq!(r.json()["roles"], serde_json::Value::Null);

    // The method reaches Gatehouse although the subrequest itself is a GET.
    let reader = format!(
        "Bearer {}",
        h.own_token("bob", &["posts:read"], "pwd", now(), 600).await
    );
    let r = send(at, "PUT", "/api/posts/1", &[("Authorization", &reader)]).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("x-gatehouse-error"), Some("insufficient_scope"));
    // A client cannot pick the checked URI or its own address.
    let r = send(
        at,
        "GET",
        "/api/admin/users",
        &[("X-Forwarded-Uri", "/public/x")],
    )
    .await;
    assert_eq!(r.status, 401);
    let r = send(
        at,
        "GET",
        "/office/printer",
        &[("X-Forwarded-For", "10.1.2.3")],
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("x-gatehouse-error"), Some("ip_blocked"));

    // Statuses nginx would turn into 500, restored by `@gatehouse_status`.
    let r = send(at, "GET", "/internal/metrics", &[("Authorization", &bob)]).await;
    assert_eq!(r.status, 404, "{}", ctx());
    assert_eq!(r.header("x-gatehouse-error"), Some("not_found"));
    let r = send(at, "GET", "/api/posts", &[("Authorization", "Bearer")]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("x-gatehouse-error"), Some("invalid_request"));
    let r = send(at, "GET", "/internal/metrics", &[("Authorization", &alice)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["user"], "alice");
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
    let Some((bin, _)) = nginx_or_skip() else {
        return;
    };
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
        let nginx = start_nginx(&bin, relay, h.upstream).await;
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

#[test]
fn the_documented_snippet_is_the_tested_one() {
    let doc = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/forward-auth.md"
    ));
    let documented = snippet("127.0.0.1:8080", "127.0.0.1:3000", "80");
    assert!(
        doc.contains(&documented),
        "docs/forward-auth.md must contain the tested nginx snippet verbatim:\n{documented}"
    );
}
