//! The few pieces of IO glue the mock needs: turning core's [`Rendered`] refusal into a
//! response, JSON answers, request ids, the clock and the OS RNG.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use gatehouse_core::render::Rendered;
use http::header::{CONTENT_TYPE, HeaderName};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

/// The header `gatehouse serve` puts on every refusal: the `error` code shown.
const X_GATEHOUSE_ERROR: HeaderName = HeaderName::from_static("x-gatehouse-error");

/// A refusal exactly as core's table renders it: status, the table's headers,
/// `X-Gatehouse-Error`, `Content-Type` and body. A header core could not have produced
/// (never the case for the table's rows) gives an empty 500 rather than a partial answer.
pub(crate) fn rendered_response(r: Rendered) -> Response<Body> {
    let mut headers = HeaderMap::with_capacity(r.headers.len() + 2);
    for (name, value) in r.headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_maybe_shared(bytes::Bytes::from(value)),
        ) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => return empty(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
    let (Ok(status), Ok(error)) = (
        StatusCode::from_u16(r.status),
        HeaderValue::from_str(r.error),
    ) else {
        return empty(StatusCode::INTERNAL_SERVER_ERROR);
    };
    headers.insert(X_GATEHOUSE_ERROR, error);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(r.content_type));
    let mut resp = Response::new(Body::from(r.body));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// `body` (already JSON) with `status` and `Content-Type: application/json`.
pub(crate) fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Request ids of the mock's refusals: a random per-process prefix and a counter, in hex
/// (the same shape as the gateway's, so clients parse both alike).
pub(crate) struct RequestIds {
    prefix: u32,
    next: AtomicU64,
}

impl RequestIds {
    pub(crate) fn new() -> Self {
        Self {
            prefix: u32::from_le_bytes(random_bytes::<4>()),
            next: AtomicU64::new(1),
        }
    }

    pub(crate) fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff_ffff;
        format!("{:08x}{n:012x}", self.prefix)
    }
}

/// `N` bytes from the OS RNG. The mock's only secrets are its Digest nonce key and fake MFA
/// tokens, so a failing RNG falls back to the clock rather than stopping the mock.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
            .to_le_bytes();
        for (i, x) in b.iter_mut().enumerate() {
            *x = t[i % t.len()];
        }
    }
    b
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_twenty_hex_digits_and_distinct() {
        let ids = RequestIds::new();
        let (a, b) = (ids.next(), ids.next());
        assert_eq!(a.len(), 20);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(a[..8], b[..8]);
    }
}
