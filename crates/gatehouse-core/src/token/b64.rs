//! Strict base64url without padding (RFC 7515 §2: no `=`, no line breaks, no stray bits), the
//! encoding of every part of a JWS and of the key material of a JWK (RFC 7518 §6).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Decodes one base64url part; any deviation from the strict form is an error.
pub(crate) fn decode(part: &str) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD.decode(part)
}
