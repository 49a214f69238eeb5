//! The console: one HTML page on the admin port, its script and style embedded in the
//! binary (nothing fetched at run time, no Node to build or run), over the admin API. The
//! page is behind the same guard as the API (a browser without a session gets the sign-in
//! page with the 401); the script and style hold nothing secret and are served to anyone.

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode};

const PAGE: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

/// Content-Security-Policy of the console: its own script and style only, no framing
/// (clickjacking), forms to itself only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    r
}

/// `GET /admin/` (guarded).
pub async fn page() -> Response<Body> {
    asset(PAGE, "text/html; charset=utf-8")
}

/// `GET /admin/assets/console.js`.
pub async fn script() -> Response<Body> {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

/// `GET /admin/assets/console.css`.
pub async fn style() -> Response<Body> {
    asset(STYLE, "text/css; charset=utf-8")
}
