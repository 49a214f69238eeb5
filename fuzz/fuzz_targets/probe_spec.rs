//! Probe files (TOML, `gatehouse probe`): never panics; a refusal carries messages.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = gatehouse_probe::spec::parse(text) {
        assert!(
            !e.to_string().trim().is_empty(),
            "refused without a message"
        );
    }
    let _ = gatehouse_probe::spec::expand_env(text);
    let _ = gatehouse_probe::spec::check_path(text);
});
