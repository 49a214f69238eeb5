//! Refusals rendered by core's table ([`gatehouse_core::render`]) as HTTP answers: what a
//! rendering needs besides the refusal, and the status and headers sent for it.

use axum::body::Body;
use gatehouse_core::render::Rendered;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Response, StatusCode};

/// The refusal's stable `error` code, beside the body (design §2).
const X_GATEHOUSE_ERROR: HeaderName = HeaderName::from_static("x-gatehouse-error");

/// What a refusal's rendering needs besides the refusal.
pub struct RenderArgs<'a> {
    pub route: Option<usize>,
    pub html: bool,
    /// The browser's own post of the sign-in or code form (no credentials dialog).
    pub form_post: bool,
    /// A gRPC request: the refusal also carries `grpc-status` and `grpc-message`.
    pub grpc: bool,
    pub request_id: &'a str,
    pub now: i64,
    pub return_to: &'a str,
}

/// Builds a response from a rendered refusal. `with_body = false` for nginx forward-auth.
pub fn rendered_response(r: Rendered, with_body: bool) -> Response<Body> {
    let mut headers = HeaderMap::with_capacity(r.headers.len() + 2);
    for (name, value) in r.headers {
        // The value's bytes move into the header (no copy).
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_maybe_shared(bytes::Bytes::from(value)),
        ) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => return internal_error(),
        }
    }
    let content_type = with_body.then_some(r.content_type);
    let Some(status) = rendered_tail(&mut headers, r.status, r.error, content_type) else {
        return internal_error();
    };
    let body = if with_body {
        Body::from(r.body)
    } else {
        Body::empty()
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

/// The headers [`rendered_response`] sends for `r` with its body (what the prepared
/// refusals copy); `None` where it would answer 500.
pub fn rendered_headers(r: &Rendered) -> Option<HeaderMap> {
    let mut headers = HeaderMap::with_capacity(r.headers.len() + 2);
    for (name, value) in &r.headers {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).ok()?,
            HeaderValue::from_str(value).ok()?,
        );
    }
    rendered_tail(&mut headers, r.status, r.error, Some(r.content_type))?;
    Some(headers)
}

/// The status, and the headers after the table's: `X-Gatehouse-Error` and the body's
/// `Content-Type` (`Content-Length: 0` without a body).
fn rendered_tail(
    headers: &mut HeaderMap,
    status: u16,
    error: &str,
    content_type: Option<&'static str>,
) -> Option<StatusCode> {
    let status = StatusCode::from_u16(status).ok()?;
    headers.insert(X_GATEHOUSE_ERROR, HeaderValue::from_str(error).ok()?);
    match content_type {
        // Core's two content types, both static.
        Some(ct) => headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct)),
        None => headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0")),
    };
    Some(status)
}

fn internal_error() -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    r
}
