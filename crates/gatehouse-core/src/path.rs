//! Request path normalization (design §3).
//!
//! The path is normalized once, before route matching, and the upstream receives exactly
//! the normalized form, so no encoding trick reaches a different route than the one that
//! was checked. Rules:
//! - percent-decoding happens exactly once (`%252F` becomes the three characters `%2F`);
//! - empty segments (`//`) collapse and `.` segments are removed (RFC 3986 §5.2.4);
//! - `..` segments (also `%2e%2e` and Tomcat's `..;`) are rejected, never resolved;
//! - an encoded `/` (`%2F`), any `\` (raw or `%5C`), NUL and other control characters, and
//!   bytes that do not decode to UTF-8 are rejected;
//! - case is preserved (matching is case-sensitive) and a trailing `/` is kept.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Why a path was refused (answered 400 `invalid_path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path must start with `/`")]
    NotAbsolute,
    #[error("the path contains a `..` segment")]
    DotDot,
    #[error("the path contains an encoded `/`")]
    EncodedSlash,
    #[error("the path contains a backslash")]
    Backslash,
    #[error("the path contains a control character")]
    ControlCharacter,
    #[error("the path contains a malformed percent-encoding")]
    BadPercentEncoding,
    #[error("the path does not decode to UTF-8")]
    NotUtf8,
}

/// A normalized path: `decoded` is what routes are matched against, `encoded` what is
/// forwarded (the same path with the characters that may not appear raw in a request
/// target percent-encoded again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedPath<'a> {
    pub decoded: Cow<'a, str>,
    pub encoded: Cow<'a, str>,
}

const fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Characters forwarded raw in a path segment (RFC 3986 `pchar` minus `%`).
const fn is_pchar_raw(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

/// Normalizes the path of a request target (the part before `?`).
pub fn normalize(raw: &str) -> Result<NormalizedPath<'_>, PathError> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    // Fast path: nothing to decode, no dot or empty segments, nothing to re-encode.
    if is_canonical(bytes) {
        return Ok(NormalizedPath {
            decoded: Cow::Borrowed(raw),
            encoded: Cow::Borrowed(raw),
        });
    }
    let mut decoded_segments: Vec<String> = Vec::new();
    let ends_with_slash = bytes.len() > 1 && bytes.ends_with(b"/");
    for raw_seg in raw.split('/').skip(1) {
        if raw_seg.is_empty() {
            continue;
        }
        let seg = decode_segment(raw_seg.as_bytes())?;
        if seg == "." {
            continue;
        }
        if seg == ".." || seg.starts_with("..;") {
            return Err(PathError::DotDot);
        }
        decoded_segments.push(seg);
    }
    let mut decoded = String::with_capacity(raw.len());
    for seg in &decoded_segments {
        decoded.push('/');
        decoded.push_str(seg);
    }
    if decoded.is_empty() || ends_with_slash {
        decoded.push('/');
    }
    let encoded = encode_path(&decoded);
    Ok(NormalizedPath {
        decoded: Cow::Owned(decoded),
        encoded: Cow::Owned(encoded),
    })
}

fn is_canonical(bytes: &[u8]) -> bool {
    let mut prev_slash = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'/' {
            if prev_slash {
                return false;
            }
            prev_slash = true;
        } else {
            if !is_pchar_raw(b) {
                return false;
            }
            if b == b'.' && prev_slash {
                // `.` or `..` segment (or a segment starting with a dot, checked slowly).
                return false;
            }
            prev_slash = false;
        }
        i += 1;
    }
    true
}

fn decode_segment(seg: &[u8]) -> Result<String, PathError> {
    let mut out = Vec::with_capacity(seg.len());
    let mut i = 0;
    while i < seg.len() {
        let b = seg[i];
        if b == b'%' {
            let (Some(&h), Some(&l)) = (seg.get(i + 1), seg.get(i + 2)) else {
                return Err(PathError::BadPercentEncoding);
            };
            let (Some(h), Some(l)) = (hex_val(h), hex_val(l)) else {
                return Err(PathError::BadPercentEncoding);
            };
            let v = (h << 4) | l;
            if v == b'/' {
                return Err(PathError::EncodedSlash);
            }
            out.push(v);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    for &b in &out {
        if b == b'\\' {
            return Err(PathError::Backslash);
        }
        if b < 0x20 || b == 0x7f {
            return Err(PathError::ControlCharacter);
        }
    }
    String::from_utf8(out).map_err(|_| PathError::NotUtf8)
}

/// Percent-encodes everything in a decoded path that may not stand raw in a request target.
pub fn encode_path(decoded: &str) -> String {
    let mut out = String::with_capacity(decoded.len() + 8);
    for &b in decoded.as_bytes() {
        if b == b'/' || is_pchar_raw(b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> Result<(String, String), PathError> {
        normalize(p).map(|n| (n.decoded.into_owned(), n.encoded.into_owned()))
    }

    #[test]
    fn canonical_paths_are_borrowed() {
        let p = normalize("/api/posts/12").unwrap();
        assert!(matches!(p.decoded, Cow::Borrowed(_)));
        assert_eq!(p.encoded, "/api/posts/12");
    }

    #[test]
    fn collapses_and_removes_dots() {
        assert_eq!(n("//api///admin/").unwrap().0, "/api/admin/");
        assert_eq!(n("/api/./admin").unwrap().0, "/api/admin");
        assert_eq!(n("/").unwrap().0, "/");
        assert_eq!(n("//").unwrap().0, "/");
        assert_eq!(
            n("/.well-known/jwks.json").unwrap().0,
            "/.well-known/jwks.json"
        );
    }

    #[test]
    fn decodes_exactly_once() {
        assert_eq!(n("/api/%61dmin").unwrap().0, "/api/admin");
        let (d, e) = n("/a/%252F").unwrap();
        assert_eq!(d, "/a/%2F");
        assert_eq!(e, "/a/%252F");
        let (d, e) = n("/a/b%20c").unwrap();
        assert_eq!(d, "/a/b c");
        assert_eq!(e, "/a/b%20c");
        assert_eq!(n("/caf%C3%A9").unwrap().0, "/café");
    }

    #[test]
    fn rejects_encoding_tricks() {
        assert_eq!(n("/api/../admin"), Err(PathError::DotDot));
        assert_eq!(n("/api/%2e%2e/admin"), Err(PathError::DotDot));
        assert_eq!(n("/api/%2E./admin"), Err(PathError::DotDot));
        assert_eq!(n("/api/..;/admin"), Err(PathError::DotDot));
        assert_eq!(n("/api/..%3b/admin"), Err(PathError::DotDot));
        assert_eq!(n("/api%2fadmin"), Err(PathError::EncodedSlash));
        assert_eq!(n("/api%2Fadmin"), Err(PathError::EncodedSlash));
        assert_eq!(n("/api\\admin"), Err(PathError::Backslash));
        assert_eq!(n("/api%5cadmin"), Err(PathError::Backslash));
        assert_eq!(n("/api%00"), Err(PathError::ControlCharacter));
        assert_eq!(n("/api%0a"), Err(PathError::ControlCharacter));
        assert_eq!(n("/api%zz"), Err(PathError::BadPercentEncoding));
        assert_eq!(n("/api%4"), Err(PathError::BadPercentEncoding));
        assert_eq!(n("/api%ff"), Err(PathError::NotUtf8));
        assert_eq!(n("api"), Err(PathError::NotAbsolute));
        assert_eq!(n(""), Err(PathError::NotAbsolute));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_is_idempotent(s in "/[ -~]{0,40}") {
            if let Ok(p) = normalize(&s) {
                // Normalizing the forwarded form again yields the same path: what the
                // upstream sees is what was matched.
                let again = normalize(&p.encoded).unwrap();
                proptest::prop_assert_eq!(&again.decoded, &p.decoded);
                proptest::prop_assert_eq!(&again.encoded, &p.encoded);
                proptest::prop_assert!(!p.decoded.split('/').any(|s| s == ".."));
                proptest::prop_assert!(!p.decoded.contains("//"));
            }
        }
    }
}
