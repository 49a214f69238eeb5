//! Request bodies of `/auth/*`: JSON or `application/x-www-form-urlencoded`, small.

use std::collections::HashMap;

use axum::body::Body;
use http::HeaderMap;
use http_body_util::{BodyExt as _, Limited};

/// Bodies of `/auth/*` are a few hundred bytes; anything larger is refused.
const MAX_AUTH_BODY: usize = 16 * 1024;

/// The fields of an auth request, and whether it came from an HTML form (a browser).
pub(crate) struct Fields {
    map: HashMap<String, String>,
    pub form: bool,
}

impl Fields {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.map
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Reads and parses the body. Errors are safe to show (`invalid_request` detail).
pub(crate) async fn read(headers: &HeaderMap, body: Body) -> Result<Fields, &'static str> {
    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let form = match ct.as_str() {
        "application/json" => false,
        "application/x-www-form-urlencoded" => true,
        _ => return Err("send the fields as JSON or as an HTML form"),
    };
    let bytes = Limited::new(body, MAX_AUTH_BODY)
        .collect()
        .await
        .map_err(|_| "the request body is too large or unreadable")?
        .to_bytes();
    let map = if form {
        parse_form(&bytes)?
    } else {
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|_| "the request body is not valid JSON")?;
        let obj = v
            .as_object()
            .ok_or("the request body must be a JSON object")?;
        obj.iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
            .collect()
    };
    Ok(Fields { map, form })
}

/// `application/x-www-form-urlencoded` (WHATWG URL §5.1): `+` is a space, percent-decoding
/// once, UTF-8. Repeated names keep the first value.
pub(super) fn parse_form(bytes: &[u8]) -> Result<HashMap<String, String>, &'static str> {
    let mut map = HashMap::new();
    for pair in bytes.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let mut it = pair.splitn(2, |b| *b == b'=');
        let k = decode(it.next().unwrap_or_default())?;
        let v = decode(it.next().unwrap_or_default())?;
        map.entry(k).or_insert(v);
    }
    Ok(map)
}

fn decode(s: &[u8]) -> Result<String, &'static str> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3).ok_or("malformed form encoding")?;
                let hex = std::str::from_utf8(hex).map_err(|_| "malformed form encoding")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| "malformed form encoding")?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "form fields must be UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let m = parse_form(b"username=jos%C3%A9&password=a+b%26c&x=&username=second").unwrap();
        assert_eq!(m["username"], "josé");
        assert_eq!(m["password"], "a b&c");
        assert_eq!(m["x"], "");
        assert!(parse_form(b"a=%zz").is_err());
        assert!(parse_form(b"a=%ff").is_err());
    }
}
