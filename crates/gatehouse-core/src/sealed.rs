//! Small HMAC-sealed strings: the `mfa_token` of a half-finished login and the browser
//! session cookie ([`crate::session_cookie`]). `payload.signature`, the signature an
//! HMAC-SHA256 over the payload with a key derived for that one purpose, compared in
//! constant time.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Seals `payload` (which must not contain `.` in its last field; fields are `.`-joined).
pub fn seal(key: &[u8; 32], payload: &str) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&k, payload.as_bytes());
    format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// The payload of a sealed string, if the signature is ours.
pub fn open<'a>(key: &[u8; 32], sealed: &'a str) -> Option<&'a str> {
    let (payload, sig) = sealed.rsplit_once('.')?;
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    // `verify` compares in constant time.
    hmac::verify(&k, payload.as_bytes(), &sig).ok()?;
    Some(payload)
}

/// base64url of a UTF-8 field, so `.` inside user names cannot split a payload.
pub fn field(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s.as_bytes())
}

pub fn unfield(s: &str) -> Option<String> {
    String::from_utf8(URL_SAFE_NO_PAD.decode(s).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let k = [7u8; 32];
        let s = seal(&k, "v1.abc.123");
        assert_eq!(open(&k, &s), Some("v1.abc.123"));
        assert_eq!(open(&[8u8; 32], &s), None);
        let tampered = s.replacen("123", "124", 1);
        assert_eq!(open(&k, &tampered), None);
        assert_eq!(open(&k, "garbage"), None);
        assert_eq!(unfield(&field("a.b:c")).as_deref(), Some("a.b:c"));
    }
}
