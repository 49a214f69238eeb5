//! Mock stub files (WireMock-style JSON): never panics; every refusal names a line within
//! the file; accepted stubs can be matched against a request.
#![no_main]

use gatehouse_mock::stubs;
use http::{HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match stubs::parse(text) {
        Ok(list) => {
            let mut headers = HeaderMap::new();
            headers.insert("authorization", HeaderValue::from_static("Bearer abc"));
            headers.insert("x-api-key", HeaderValue::from_static("k"));
            for s in &list {
                let _ = s.matches(&Method::GET, "/orders/42?x=1&y", &headers);
                let _ = s.matches(&Method::POST, "/", &HeaderMap::new());
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "refused without an error");
            // serde_json counts the line after a final newline too.
            let lines = text.split('\n').count();
            for e in &errors {
                assert!(
                    e.line >= 1 && e.line <= lines,
                    "error line {} of {lines}",
                    e.line
                );
                assert!(!e.message.is_empty());
            }
        }
    }
});
