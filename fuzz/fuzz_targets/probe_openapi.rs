//! OpenAPI 3 documents (JSON or YAML) read by the probe: never panics; a refusal carries
//! messages.
#![no_main]

use gatehouse_probe::openapi;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = openapi::endpoints(text, &[]) {
        assert!(
            !e.to_string().trim().is_empty(),
            "refused without a message"
        );
    }
});
