//! `Authorization` / `X-API-Key` / `?access_token` credential extraction (design §2 rows 5-7).
//!
//! Input: a first byte saying how many `Authorization` lines (bits 0-1), `X-API-Key` lines
//! (bits 2-3) and whether there is a query (bit 4); the rest is split on `\n` into those
//! values in order.
#![no_main]

use gatehouse_core::Credential;
use gatehouse_core::credential::{Extracted, extract};
use libfuzzer_sys::fuzz_target;

/// A secret that cannot appear in a `Debug` rendering by accident.
fn distinctive(s: &str) -> bool {
    s.len() >= 16 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fuzz_target!(|data: &[u8]| {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    let n_auth = usize::from(shape & 3);
    let n_key = usize::from((shape >> 2) & 3);
    let with_query = shape & 0x10 != 0;
    let mut parts = rest.split(|&b| b == b'\n');
    let auth: Vec<&[u8]> = parts.by_ref().take(n_auth).collect();
    let key: Vec<&[u8]> = parts.by_ref().take(n_key).collect();
    let query = if with_query {
        parts.next().and_then(|q| std::str::from_utf8(q).ok())
    } else {
        None
    };
    let got = extract(&auth, &key, query);
    let debug = format!("{got:?}");
    match &got {
        Extracted::None => {
            assert!(
                auth.is_empty() && key.is_empty(),
                "lines given but no credential"
            );
        }
        Extracted::One(c) => {
            assert_eq!(
                auth.len() + key.len(),
                1,
                "one credential from several lines"
            );
            match c {
                Credential::Basic { username, password } => {
                    // RFC 7617 §2: the user-id cannot contain a colon.
                    assert!(!username.contains(':'), "user-id with a colon");
                    let p = password.expose();
                    if distinctive(p) && !username.contains(p) {
                        assert!(!debug.contains(p), "password in Debug");
                    }
                }
                Credential::Bearer(s) | Credential::ApiKey(s) => {
                    assert!(!s.expose().is_empty(), "empty secret accepted");
                    if distinctive(s.expose()) {
                        assert!(!debug.contains(s.expose()), "secret in Debug");
                    }
                }
                Credential::Digest(p) => {
                    assert!(!p.username.is_empty() && !p.nonce.is_empty());
                }
                Credential::Session(_) => panic!("a session from a header"),
            }
        }
        Extracted::Unsupported { scheme } => {
            assert_eq!(
                auth.len(),
                1,
                "unsupported scheme without one Authorization line"
            );
            assert!(scheme.len() <= 32, "scheme longer than 32: {scheme:?}");
            assert!(
                !scheme.bytes().any(|b| b.is_ascii_uppercase()),
                "scheme not lower-cased: {scheme:?}"
            );
        }
        Extracted::Malformed { detail } => {
            assert!(!detail.is_empty());
        }
    }
    // Rows 6 and 7 map to a refusal, the others to a credential or none.
    let _ = got.into_result();
});
