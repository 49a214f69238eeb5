//! `gatehouse demo`: a built-in upstream, a config with the classic scenarios of a small
//! API, seeded users, keys and tokens, and a tour of `curl` commands.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use http::{Request, Response};

/// The demo's config; `{upstream}` and `{listen}` are filled in at start.
pub const DEMO_CONFIG: &str = r#"
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

/// The demo upstream: echoes what it received, including the identity headers.
pub fn upstream_router() -> Router {
    Router::new().fallback(|req: Request<Body>| async move {
        let h = req.headers();
        // Identity values are UTF-8 (a user may be `josé`); header bytes, not just ASCII.
        let get = |n: &str| {
            h.get(n)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let body = serde_json::json!({
            "upstream": "demo",
            "method": req.method().as_str(),
            "path": req.uri().path(),
            "query": req.uri().query(),
            "user": get("x-gatehouse-user"),
            "roles": get("x-gatehouse-roles"),
            "tenant": get("x-gatehouse-tenant"),
            "scopes": get("x-gatehouse-scopes"),
            "auth": get("x-gatehouse-auth"),
        });
        let mut r = Response::new(Body::from(body.to_string()));
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        r
    })
}

/// Fills the demo config's addresses.
pub fn demo_config(listen: SocketAddr, upstream: SocketAddr) -> String {
    DEMO_CONFIG
        .replace("{listen}", &listen.to_string())
        .replace("{upstream}", &upstream.to_string())
}
