//! `Authorization: Basic` (RFC 7617): arbitrary decoded bytes, base64-encoded. Whatever is
//! accepted splits at the first colon and round-trips exactly.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gatehouse_core::Credential;
use gatehouse_core::credential::{Extracted, extract};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Also the raw token path: an odd first byte sends the bytes unencoded.
    let header = match data.split_first() {
        Some((b, rest)) if b & 1 == 1 => {
            let mut h = b"Basic ".to_vec();
            h.extend_from_slice(rest);
            h
        }
        _ => format!("Basic {}", STANDARD.encode(data)).into_bytes(),
    };
    let got = extract(&[&header], &[], None);
    if let Extracted::One(Credential::Basic { username, password }) = &got {
        if header.starts_with(b"Basic ") && data.first().is_none_or(|b| b & 1 == 0) {
            let joined = format!("{username}:{}", password.expose());
            assert_eq!(
                joined.as_bytes(),
                data,
                "Basic credential does not round-trip"
            );
        }
        assert!(!username.contains(':'));
        assert!(
            !username.chars().any(char::is_control),
            "control character in user-id"
        );
    } else {
        assert!(
            matches!(got, Extracted::Malformed { .. }),
            "a Basic header gave {got:?}"
        );
    }
});
