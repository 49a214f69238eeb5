//! `WWW-Authenticate` (RFC 9110 §11.6.1) with gatehouse-challenge: never panics, and every
//! accepted list renders canonically and parses back to the same challenges.
#![no_main]

use gatehouse_challenge::{Challenge, parse};
use libfuzzer_sys::fuzz_target;

fn render(cs: &[Challenge]) -> String {
    cs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fuzz_target!(|data: &[u8]| {
    let Ok(cs) = parse(data) else {
        return;
    };
    for c in &cs {
        assert!(!c.scheme.is_empty(), "empty scheme");
        assert!(
            c.token68.is_none() || c.params.is_empty(),
            "token68 and params"
        );
    }
    let text = render(&cs);
    let again =
        parse(text.as_bytes()).unwrap_or_else(|e| panic!("canonical form {text:?} refused: {e}"));
    assert_eq!(again, cs, "round trip through {text:?}");
    // Canonical form is a fixed point.
    assert_eq!(render(&again), text);
});
