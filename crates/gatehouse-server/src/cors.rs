//! CORS (row 23): preflights are answered per `[cors]` without credentials, and allowed
//! origins get `Access-Control-Allow-Origin` on every answer — refusals included, so a
//! browser client can read the 401/403 body and act on it.

use axum::body::Body;
use gatehouse_core::config::CorsConfig;
use http::header::HeaderValue;
use http::{HeaderMap, Response, StatusCode};

fn origin_allowed<'a>(cfg: &'a CorsConfig, origin: &HeaderValue) -> Option<&'a str> {
    let o = origin.to_str().ok()?;
    cfg.allowed_origins
        .iter()
        .find(|a| a.as_str() == "*" || a.eq_ignore_ascii_case(o))
        .map(String::as_str)
}

fn allow_origin_value(cfg: &CorsConfig, matched: &str, origin: &HeaderValue) -> HeaderValue {
    if matched == "*" && !cfg.allow_credentials {
        HeaderValue::from_static("*")
    } else {
        origin.clone()
    }
}

/// Answers a preflight: 204, with `Access-Control-Allow-*` only for an allowed origin and
/// method (anything else is a refusal the browser enforces).
pub fn preflight(cfg: &CorsConfig, req: &HeaderMap) -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    h.insert(
        http::header::VARY,
        HeaderValue::from_static(
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        ),
    );
    let Some(origin) = req.get(http::header::ORIGIN) else {
        return resp;
    };
    let Some(matched) = origin_allowed(cfg, origin) else {
        return resp;
    };
    let method_ok = req
        .get(http::header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|m| {
            cfg.allowed_methods
                .iter()
                .any(|a| a.eq_ignore_ascii_case(m))
        });
    if !method_ok {
        return resp;
    }
    let h = resp.headers_mut();
    h.insert(
        http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
        allow_origin_value(cfg, matched, origin),
    );
    if let Ok(v) = HeaderValue::from_str(&cfg.allowed_methods.join(", ")) {
        h.insert(http::header::ACCESS_CONTROL_ALLOW_METHODS, v);
    }
    if let Ok(v) = HeaderValue::from_str(&cfg.allowed_headers.join(", ")) {
        h.insert(http::header::ACCESS_CONTROL_ALLOW_HEADERS, v);
    }
    if cfg.allow_credentials {
        h.insert(
            http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    if let Some(age) = cfg.max_age {
        h.insert(
            http::header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(age.as_secs()),
        );
    }
    resp
}

/// Adds CORS headers to an actual (non-preflight) response for an allowed origin.
pub fn actual_response_headers(cfg: &CorsConfig, origin: &HeaderValue, h: &mut HeaderMap) {
    let Some(matched) = origin_allowed(cfg, origin) else {
        return;
    };
    if h.contains_key(http::header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        return;
    }
    h.insert(
        http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
        allow_origin_value(cfg, matched, origin),
    );
    h.append(http::header::VARY, HeaderValue::from_static("Origin"));
    if cfg.allow_credentials {
        h.insert(
            http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    // Let scripts read the challenge and the request id of refusals.
    h.insert(
        http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("WWW-Authenticate, Retry-After, X-Request-Id"),
    );
}
