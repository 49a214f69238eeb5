//! The config file (TOML → validated `Config`, design §6): never panics; a refusal names
//! at least one problem with a message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match gatehouse_core::config::parse(text) {
        Ok((config, _warnings)) => {
            let _ = format!("{config:?}");
        }
        Err(errors) => {
            let shown = errors.to_string();
            assert!(!shown.trim().is_empty(), "refused without a message");
        }
    }
});
