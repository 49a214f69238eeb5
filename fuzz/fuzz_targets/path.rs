//! Path normalization (design §3): never panics, and what it accepts is canonical.
#![no_main]

use gatehouse_core::path::normalize;
use libfuzzer_sys::fuzz_target;

/// The properties every normalized form must have, for `decoded` and `encoded` alike.
fn check_shape(p: &str) {
    assert!(p.starts_with('/'), "not absolute: {p:?}");
    assert!(!p.contains("//"), "empty segment survived: {p:?}");
    for seg in p.split('/') {
        assert!(seg != "." && seg != "..", "dot segment survived: {p:?}");
        assert!(!seg.starts_with("..;"), "`..;` segment survived: {p:?}");
    }
    assert!(!p.contains('\0'), "NUL survived: {p:?}");
    assert!(
        !p.chars().any(|c| c.is_ascii_control()),
        "control character survived: {p:?}"
    );
    assert!(!p.contains('\\'), "backslash survived: {p:?}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(n) = normalize(raw) else {
        return;
    };
    check_shape(&n.decoded);
    check_shape(&n.encoded);
    // The forwarded form is a fixed point: normalizing it again changes nothing, so the
    // upstream sees exactly the path the route was matched against.
    let again = normalize(&n.encoded)
        .unwrap_or_else(|e| panic!("encoded form {:?} of {raw:?} refused: {e}", n.encoded));
    assert_eq!(
        again.decoded, n.decoded,
        "decoded changed on re-normalization of {raw:?}"
    );
    assert_eq!(
        again.encoded, n.encoded,
        "encoded changed on re-normalization of {raw:?}"
    );
    // A trailing slash is kept, never invented.
    assert!(
        !raw.ends_with('/') || n.decoded.ends_with('/'),
        "trailing `/` of {raw:?} lost"
    );
    if !raw.ends_with('/') && n.decoded != "/" {
        assert!(
            !n.decoded.ends_with('/'),
            "trailing `/` invented for {raw:?}"
        );
    }
});
