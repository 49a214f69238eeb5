//! Compact JWS / JWT verification (RFC 7515 §5.2, RFC 7519 §7.2, RFC 8725) on arbitrary
//! tokens: never panics; nothing without a valid signature is ever accepted.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::LazyLock;

use gatehouse_core::token::TokenVerifier;
use libfuzzer_sys::fuzz_target;

static VERIFIER: LazyLock<TokenVerifier> = LazyLock::new(common::verifier);

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    match VERIFIER.verify(token, common::NOW) {
        // Neither key is one the fuzzer can sign with (the HS256 secret is not in the input),
        // so an acceptance here is a signature bypass.
        Ok(p) => panic!("unsigned token accepted: {p:?}"),
        Err(e) => {
            let _ = e.to_deny();
        }
    }
});
