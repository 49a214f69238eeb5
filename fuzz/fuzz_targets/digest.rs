//! The `Authorization: Digest` parameters (RFC 7616 §3.4, auth-param syntax RFC 9110 §11.2).
//! What parses is well-formed, and renders back to the same parameters.
#![no_main]

use gatehouse_challenge::grammar::quoted;
use gatehouse_core::digest::{self, DigestParams};
use libfuzzer_sys::fuzz_target;

const KEY: [u8; 32] = [7; 32];

/// The parameters as a client would send them (RFC 7616 §3.4).
fn render(p: &DigestParams) -> String {
    let mut out = format!(
        "username={}, realm={}, uri={}, algorithm={}, nonce={}, nc={}, cnonce={}, qop=auth, response={}",
        quoted(&p.username),
        quoted(&p.realm),
        quoted(&p.uri),
        p.algorithm,
        quoted(&p.nonce),
        p.nc,
        quoted(&p.cnonce),
        quoted(&p.response),
    );
    if p.userhash {
        out.push_str(", userhash=true");
    }
    if let Some(o) = &p.opaque {
        out.push_str(", opaque=");
        out.push_str(&quoted(o));
    }
    out
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = DigestParams::parse(s) else {
        return;
    };
    for (name, v) in [
        ("username", &p.username),
        ("realm", &p.realm),
        ("uri", &p.uri),
    ] {
        assert!(!v.is_empty() || name == "realm", "empty {name} accepted");
    }
    assert!(!p.nonce.is_empty() && !p.cnonce.is_empty());
    assert!(p.nc.len() == 8 && is_hex(&p.nc), "nc {:?}", p.nc);
    assert_eq!(p.response.len(), p.algorithm.hex_len(), "response length");
    assert!(is_hex(&p.response), "response {:?}", p.response);
    let _ = p.nonce_count();
    let _ = p.uri_matches(&p.uri);
    let _ = p.uri_matches("/");
    let _ = digest::check_nonce(&KEY, &p.nonce, 1_700_000_000, 300);
    let _ = digest::check_opaque(&KEY, &p.realm, p.opaque.as_deref().unwrap_or(""));
    let _ = digest::verify(&p, "GET", &"0".repeat(p.algorithm.hex_len()));
    assert!(
        p.response.len() < 16
            || [&p.username, &p.realm, &p.uri]
                .iter()
                .any(|f| f.contains(&p.response))
            || !format!("{p:?}").contains(&p.response),
        "full response in Debug"
    );
    // Round trip: the parsed parameters, rendered as quoted-strings, parse to the same value.
    if !p
        .username
        .chars()
        .chain(p.realm.chars())
        .chain(p.uri.chars())
        .any(char::is_control)
    {
        let again = DigestParams::parse(&render(&p))
            .unwrap_or_else(|e| panic!("rendered {:?} refused: {e}", render(&p)));
        let mut want = p.clone();
        want.response = want.response.to_ascii_lowercase();
        assert_eq!(again, want, "round trip changed the parameters");
    }
});
