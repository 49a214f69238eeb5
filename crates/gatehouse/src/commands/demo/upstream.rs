//! The demo's built-in upstream and its config with the classic scenarios of a small API.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use gatehouse_core::accept::prefers_html;
use gatehouse_core::render::escape_html;
use http::{Request, Response};

/// The demo's config; `{upstream}` and `{listen}` are filled in at start.
const DEMO_CONFIG: &str = r#"
[server]
listen = "{listen}"
realm = "api"

[upstream]
url = "http://{upstream}"

[store]
url = "sqlite::memory:"

[defaults]
access = "authenticated"
auth = ["bearer", "api_key", "basic"]

[[route]]
name = "health"
path = "/api/public/**"
access = "public"

[[route]]
name = "home"
path = "/"
access = "public"

[[route]]
name = "app-admin"
path = "/app/admin/**"
auth = ["session", "bearer"]
roles = ["admin"]

[[route]]
name = "app"
path = "/app/**"
auth = ["session", "bearer"]

[[route]]
name = "dotfiles"
path = "/.git/**"
access = "deny"

[[route]]
name = "htaccess"
path = "/.htaccess"
access = "deny"

[[route]]
name = "admin"
path = "/api/admin/**"
roles = ["admin"]

[[route]]
name = "posts-write"
path = "/api/posts/**"
methods = ["POST", "PUT", "PATCH", "DELETE"]
scopes = ["posts:write"]

[[route]]
name = "posts-read"
path = "/api/posts/**"
methods = ["GET", "HEAD"]

[[route]]
name = "tenant"
path = "/tenants/{tenant}/**"
tenant_param = "tenant"

[[route]]
name = "profile"
path = "/users/{user_id}/**"
owner_param = "user_id"

[[route]]
name = "internal"
path = "/api/internal/**"
roles = ["ops"]
hidden = true

[[route]]
name = "billing"
path = "/api/billing/**"
auth = ["bearer"]
mfa = true

[[route]]
name = "office"
path = "/api/office/**"
networks = ["10.0.0.0/8"]
"#;

/// The demo upstream: echoes what it received, including the identity headers, as JSON; a
/// browser (`Accept` prefers HTML) gets small HTML pages for `/` and `/app/...` instead.
pub(super) fn upstream_router() -> Router {
    Router::new().fallback(|req: Request<Body>| async move {
        let h = req.headers();
        // Identity values are UTF-8 (a user may be `josé`); header bytes, not just ASCII.
        let get = |n: &str| {
            h.get(n)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let path = req.uri().path();
        let browser = h
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(prefers_html);
        if browser && (path == "/" || path.starts_with("/app/")) {
            let page = app_page(path, get("x-gatehouse-user").as_deref());
            return typed(page, "text/html; charset=utf-8");
        }
        let body = serde_json::json!({
            "upstream": "demo",
            "method": req.method().as_str(),
            "path": path,
            "query": req.uri().query(),
            "user": get("x-gatehouse-user"),
            "roles": get("x-gatehouse-roles"),
            "tenant": get("x-gatehouse-tenant"),
            "scopes": get("x-gatehouse-scopes"),
            "auth": get("x-gatehouse-auth"),
        });
        typed(body.to_string(), "application/json")
    })
}

fn typed(body: String, content_type: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r
}

const APP_STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}\
main{max-width:30rem;margin:8vh auto;background:#fff;padding:2rem 2.25rem;border-radius:10px;\
box-shadow:0 2px 14px rgba(0,0,0,.08)}h1{font-size:1.35rem;margin:0 0 .75rem}a{color:#2456d3}\
li{margin:.35rem 0}button{padding:.5rem 1rem;border:1px solid #c5c9d3;border-radius:6px;\
background:#fff;font-size:.95rem;cursor:pointer}";

/// The demo app's page: who is signed in (per the gateway's identity header) and links to
/// a page everyone may see and one only admins may.
fn app_page(path: &str, user: Option<&str>) -> String {
    let (title, greeting) = match user {
        Some(u) => ("Demo app", format!("Hello, {}", escape_html(u))),
        None => ("Gatehouse demo", "Gatehouse demo".to_owned()),
    };
    let sign_out = if user.is_some() {
        "<form method=\"post\" action=\"/auth/logout\"><button type=\"submit\">Sign out</button></form>"
    } else {
        ""
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{title}</title><style>{APP_STYLE}</style></head><body><main>\
<h1>{greeting}</h1><p>This page (<code>{path}</code>) comes from the demo upstream, behind Gatehouse.</p>\
<ul><li><a href=\"/app/home\">App home</a> (any signed-in user)</li>\
<li><a href=\"/app/admin/settings\">Admin settings</a> (the <code>admin</code> role)</li></ul>\
{sign_out}</main></body></html>",
        path = escape_html(path),
    )
}

/// Fills the demo config's addresses.
pub(super) fn demo_config(listen: SocketAddr, upstream: SocketAddr) -> String {
    DEMO_CONFIG
        .replace("{listen}", &listen.to_string())
        .replace("{upstream}", &upstream.to_string())
}
