//! What an answer should not tell: stack traces and library error text (`internals-leaked`)
//! and product versions (`version-disclosed`). Each returns a short description of what
//! it saw, or `None`.

use http::header;

use crate::client::Answer;

/// Marks of a stack trace or of a library's own error text in a response body.
const INTERNALS: [(&str, &str); 16] = [
    ("Traceback (most recent call last)", "a Python traceback"),
    ("\", line ", "a Python stack frame"),
    ("    at ", "a JavaScript / Java stack frame"),
    ("node_modules/", "a Node.js module path"),
    ("Exception in thread", "a Java exception"),
    ("java.lang.", "a Java exception class"),
    ("panicked at", "a Rust panic message"),
    ("goroutine ", "a Go stack trace"),
    ("JsonWebTokenError", "a jsonwebtoken error class"),
    ("TokenExpiredError", "a jsonwebtoken error class"),
    ("UnauthorizedError", "an express-jwt error class"),
    ("jwt malformed", "jsonwebtoken's error text"),
    ("invalid signature", "a JWT library's error text"),
    (
        "Signature verification failed",
        "a JWT library's error text",
    ),
    ("werkzeug.exceptions", "a Werkzeug exception class"),
    ("SQLSTATE", "a database error"),
];

/// Stack traces or library error text in the body (first 64 KiB).
pub fn internals(a: &Answer) -> Option<String> {
    let body = String::from_utf8_lossy(&a.body);
    INTERNALS
        .iter()
        .find(|(mark, _)| body.contains(mark))
        .map(|(mark, what)| format!("the body shows {what} (`{}`)", mark.trim()))
}

/// `product/1.2` in `Server` or `X-Powered-By`, or in an HTML error page's footer.
pub fn version(a: &Answer) -> Option<String> {
    for name in [header::SERVER.as_str(), "x-powered-by"] {
        for v in a.headers.get_all(name) {
            let s = String::from_utf8_lossy(v.as_bytes());
            if has_version(&s) {
                return Some(format!("`{name}: {s}` names a product version"));
            }
        }
    }
    let body = String::from_utf8_lossy(&a.body);
    for product in ["nginx/", "Apache/", "Werkzeug/", "Jetty(", "lighttpd/"] {
        if let Some(i) = body.find(product)
            && body[i + product.len()..].starts_with(|c: char| c.is_ascii_digit())
        {
            let end = body[i..]
                .find(|c: char| c.is_whitespace() || c == '<')
                .map_or(body.len(), |e| i + e);
            return Some(format!("the body names `{}`", &body[i..end]));
        }
    }
    None
}

/// Whether a product token carries a version (`nginx/1.22.1`, RFC 9110 §10.2.4).
fn has_version(s: &str) -> bool {
    s.split_whitespace().any(|tok| {
        tok.split_once('/')
            .is_some_and(|(_, v)| v.starts_with(|c: char| c.is_ascii_digit()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue, StatusCode};

    fn answer(headers: &[(&'static str, &'static str)], body: &str) -> Answer {
        let mut h = HeaderMap::new();
        for (n, v) in headers {
            h.append(*n, HeaderValue::from_static(v));
        }
        Answer {
            status: StatusCode::UNAUTHORIZED,
            headers: h,
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn versions_in_headers_and_pages() {
        assert!(version(&answer(&[("server", "nginx/1.22.1")], "")).is_some());
        assert!(version(&answer(&[("server", "nginx")], "")).is_none());
        assert!(version(&answer(&[("x-powered-by", "Express")], "")).is_none());
        assert!(version(&answer(&[("server", "Werkzeug/3.0.1 Python/3.11.2")], "")).is_some());
        assert!(version(&answer(&[], "<hr><center>nginx/1.22.1</center>")).is_some());
        assert!(version(&answer(&[], "<center>nginx</center>")).is_none());
    }

    #[test]
    fn traces_and_library_text() {
        assert!(internals(&answer(&[], "Traceback (most recent call last):\n")).is_some());
        assert!(internals(&answer(&[], "UnauthorizedError: jwt malformed\n    at x (/app/node_modules/express-jwt/index.js:1:1)")).is_some());
        assert!(
            internals(&answer(
                &[],
                r#"{"error":"invalid_token","error_description":"The access token is invalid"}"#
            ))
            .is_none()
        );
    }
}
