//! What the real-proxy tests (nginx, Caddy) share: the snippets read from
//! `docs/forward-auth.md` — the configuration a reader copies is the one that runs — an
//! application that echoes every header it receives, a proxy process killed on drop, and
//! the checks of what the application may see.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use gatehouse_server::clock::now;
use http::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Map, Value, json};
use tokio::net::{TcpListener, TcpStream};

use super::common::{Harness, Resp, basic, send_to};
use super::start_edited;

const DOC: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/forward-auth.md"
));

/// The one ```` ```lang ```` block of `docs/forward-auth.md`, with each documented address
/// (`from`) replaced by the test's (`to`). Every `from` must occur, so a changed snippet
/// cannot silently run with the doc's own addresses.
pub fn doc_snippet(lang: &str, replace: &[(&str, &str)]) -> String {
    let fence = format!("```{lang}\n");
    let blocks: Vec<&str> = DOC
        .split(&fence)
        .skip(1)
        .filter_map(|b| b.split_once("\n```").map(|(code, _)| code))
        .collect();
    let [block] = blocks[..] else {
        panic!(
            "docs/forward-auth.md must have exactly one ```{lang} block, found {}",
            blocks.len()
        )
    };
    let mut out = format!("{block}\n");
    for (from, to) in replace {
        assert!(
            out.contains(from),
            "the ```{lang} snippet in docs/forward-auth.md no longer contains `{from}`"
        );
        out = out.replace(from, to);
    }
    out
}

/// A free port on loopback (bound, then released for the proxy to take).
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A fresh directory for one proxy's configuration, logs and state.
pub fn scratch_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "gatehouse-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running proxy; killed and its directory removed on drop.
pub struct Proxy {
    pub child: Child,
    pub dir: PathBuf,
    pub addr: SocketAddr,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Proxy {
    /// Starts `cmd` (its stderr into `dir/stderr.log`) and waits until it listens on `addr`.
    pub async fn spawn(mut cmd: Command, dir: PathBuf, addr: SocketAddr) -> Self {
        let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        Self { child, dir, addr }.ready().await
    }

    /// Waits until `addr` accepts connections; panics with the logs if the proxy exits or
    /// never listens.
    async fn ready(mut self) -> Self {
        for _ in 0..400 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the proxy exited ({status}):\n{}", self.logs());
            }
            if TcpStream::connect(self.addr).await.is_ok() {
                return self;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "the proxy did not listen on {}:\n{}",
            self.addr,
            self.logs()
        );
    }

    /// `stderr.log` and `error.log` of the proxy's directory.
    pub fn logs(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("error.log"))
    }
}

/// A request through the proxy at `addr` (a fresh connection each time).
pub async fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    send_to(&client, addr, method, path, headers, Body::empty()).await
}

/// Gatehouse without `[upstream]`: forward-auth only, as deployed behind a proxy.
pub async fn forward_auth_only() -> Harness {
    start_edited(|t| {
        let start = t.find("[upstream]").unwrap();
        let end = start + t[start..].find("[store]").unwrap();
        format!("{}{}", &t[..start], &t[end..])
    })
    .await
}

/// The application behind the proxy: answers every request with its method, path, query
/// and every header it received (names lower-case, values as UTF-8).
pub async fn header_echo() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let app = axum::Router::new().fallback(|req: Request<Body>| async move {
        let headers: Map<String, Value> = req
            .headers()
            .iter()
            .map(|(k, v)| {
                let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (k.as_str().to_owned(), Value::String(v))
            })
            .collect();
        axum::Json(json!({
            "method": req.method().as_str(),
            "path": req.uri().path(),
            "query": req.uri().query(),
            "headers": headers,
        }))
    });
    // Ends with the test's runtime.
    tokio::spawn(async move { axum::serve(l, app).await });
    addr
}

/// Identity and routing headers a client sends to try its luck: none may reach the
/// application, and none may change Gatehouse's decision.
pub const FORGED: &[(&str, &str)] = &[
    ("X-Gatehouse-User", "mallory"),
    ("X-Gatehouse-Roles", "admin"),
    ("X-Gatehouse-Tenant", "acme"),
    ("X-Gatehouse-Scopes", "posts:write"),
    ("X-Gatehouse-Auth", "basic"),
    ("X-Original-URI", "/public/forged"),
    ("X-Original-Method", "GET"),
    ("X-Forwarded-Uri", "/public/forged"),
    ("X-Forwarded-Method", "GET"),
    ("X-Forwarded-For", "10.1.2.3"),
];

/// `FORGED` plus `extra`.
pub fn forged<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut h = FORGED.to_vec();
    h.extend_from_slice(extra);
    h
}

/// The application got the request for `path` with exactly Gatehouse's `identity` (lower-case
/// `x-gatehouse-*` names and values; empty for anonymous), no client-sent `X-Gatehouse-*`,
/// `X-Original-*` or `X-Forwarded-*` header, no placeholder text, and no credentials.
#[track_caller]
pub fn assert_app_saw(r: &Resp, path: &str, identity: &[(&str, &str)], ctx: &str) {
    assert_eq!(r.status, 200, "{}\n{ctx}", r.text);
    let b = r.json();
    assert_eq!(b["path"], path, "{b:#}");
    let headers = b["headers"].as_object().expect("the echo's headers");
    let mut seen_identity: Vec<(&str, &str)> = Vec::new();
    for (name, value) in headers {
        let value = value.as_str().unwrap_or_default();
        assert!(
            !value.contains("{http."),
            "placeholder text `{name}: {value}`\n{b:#}"
        );
        if name.starts_with("x-gatehouse-") {
            seen_identity.push((name, value));
        }
        assert!(
            !name.starts_with("x-original-"),
            "a client-sent `{name}` reached the application\n{b:#}"
        );
        if name.starts_with("x-forwarded-") {
            assert!(
                matches!(
                    name.as_str(),
                    "x-forwarded-for" | "x-forwarded-proto" | "x-forwarded-host"
                ),
                "a client-sent `{name}` reached the application\n{b:#}"
            );
        }
    }
    seen_identity.sort_unstable();
    let mut expected = identity.to_vec();
    expected.sort_unstable();
    assert_eq!(seen_identity, expected, "identity headers\n{b:#}");
    // The proxy's own address for the client, never the forged one.
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1", "{b:#}");
    for credential in ["authorization", "x-api-key"] {
        assert!(
            !headers.contains_key(credential),
            "`{credential}` reached the application\n{b:#}"
        );
    }
}

/// What every proxy in front of Gatehouse must get right, whatever else it does: through the
/// proxy at `at` (configured by its doc snippet), forged identity and routing headers change
/// no decision and reach no application; the application sees exactly Gatehouse's identity
/// (public routes: none) and no credentials; the request's own method and path are checked.
pub async fn identity_reaches_the_app_and_nothing_else(
    h: &Harness,
    at: SocketAddr,
    ctx: &dyn Fn() -> String,
) {
    // Not the 400 of a request in both conventions, nor the 200 of `/public/forged`.
    let r = send(at, "GET", "/api/admin/users", &forged(&[])).await;
    assert_eq!(r.status, 401, "{}\n{}", r.text, ctx());
    assert_eq!(r.header("x-gatehouse-error"), Some("missing_credentials"));

    let alice = basic("alice", "alice-pw");
    let r = send(
        at,
        "GET",
        "/api/admin/users?page=2",
        &forged(&[("Authorization", &alice)]),
    )
    .await;
    assert_app_saw(
        &r,
        "/api/admin/users",
        &[
            ("x-gatehouse-user", "alice"),
            ("x-gatehouse-roles", "admin,ops"),
            ("x-gatehouse-tenant", "acme"),
            ("x-gatehouse-auth", "basic"),
        ],
        &ctx(),
    );
    assert_eq!(r.json()["query"], "page=2");
    assert!(r.header("x-gatehouse-error").is_none());
    // An API key stays with Gatehouse too.
    let key = h.api_key("alice", &["posts:read"], false, None).await;
    let r = send(at, "GET", "/api/posts/2", &forged(&[("X-API-Key", &key)])).await;
    assert_app_saw(
        &r,
        "/api/posts/2",
        &[
            ("x-gatehouse-user", "alice"),
            ("x-gatehouse-roles", "admin,ops"),
            ("x-gatehouse-tenant", "acme"),
            ("x-gatehouse-scopes", "posts:read"),
            ("x-gatehouse-auth", "api_key"),
        ],
        &ctx(),
    );
    // A principal without a tenant: the forged tenant is gone, not kept.
    let jose = basic("josé", "contraseña-£");
    let r = send(
        at,
        "GET",
        "/api/posts/1",
        &forged(&[("Authorization", &jose)]),
    )
    .await;
    assert_app_saw(
        &r,
        "/api/posts/1",
        &[
            ("x-gatehouse-user", "josé"),
            ("x-gatehouse-roles", "editor"),
            ("x-gatehouse-auth", "basic"),
        ],
        &ctx(),
    );
    // A public route: anonymous, whatever the client claims, with no placeholder text
    // standing in for the identity.
    let bob = basic("bob", "bob-pw");
    let r = send(
        at,
        "GET",
        "/public/info",
        &forged(&[("Authorization", &bob)]),
    )
    .await;
    assert_app_saw(&r, "/public/info", &[], &ctx());
    let r = send(at, "GET", "/public/info", &[]).await;
    assert_app_saw(&r, "/public/info", &[], &ctx());

    // The request's own method is checked (nginx's subrequest itself is always a GET), and
    // a bearer token's scopes come through.
    let reader = format!(
        "Bearer {}",
        h.own_token("bob", &["posts:read"], "pwd", now(), 600).await
    );
    let r = send(at, "PUT", "/api/posts/1", &[("Authorization", &reader)]).await;
    assert_eq!(r.status, 403, "{}\n{}", r.text, ctx());
    assert_eq!(r.header("x-gatehouse-error"), Some("insufficient_scope"));
    let r = send(at, "GET", "/api/posts/1", &[("Authorization", &reader)]).await;
    assert_app_saw(
        &r,
        "/api/posts/1",
        &[
            ("x-gatehouse-user", "bob"),
            ("x-gatehouse-roles", "editor"),
            ("x-gatehouse-tenant", "globex"),
            ("x-gatehouse-scopes", "posts:read"),
            ("x-gatehouse-auth", "bearer"),
        ],
        &ctx(),
    );
    // A client cannot pick its own address.
    let r = send(
        at,
        "GET",
        "/office/printer",
        &forged(&[("Authorization", &alice)]),
    )
    .await;
    assert_eq!(r.status, 403, "{}\n{}", r.text, ctx());
    assert_eq!(r.header("x-gatehouse-error"), Some("ip_blocked"));
}
