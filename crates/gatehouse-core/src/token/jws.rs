//! JWS Compact Serialization (RFC 7515 §7.1) taken apart without trusting any of it: the three
//! base64url parts, the protected header (only `alg`, `kid`, `typ` and `crit` are read) and
//! the signature check against one [`KeySet`].

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::de::{self, IgnoredAny};
use serde::{Deserialize, Deserializer};

use super::b64;
use super::keys::{KeySet, Lookup};
use super::msg;

/// Longest token accepted, in bytes. Real access tokens are well under 4 KiB; the cap bounds the
/// work an anonymous client can cause before any signature is checked.
pub(crate) const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Longest encoded signature: RSA-8192 (the largest modulus aws-lc verifies) gives 1024 bytes,
/// 1366 base64url characters.
const MAX_SIGNATURE_B64: usize = 1368;
/// Decode buffer for it: base64 decoders want room for `ceil(len / 4) * 3` bytes.
const SIGNATURE_BUF: usize = MAX_SIGNATURE_B64 / 4 * 3;

/// A JWS failure below the issuer level: the [`super::TokenVerifier`] adds which issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// The token fails; `detail` is short text safe to show a client.
    #[error("invalid token: {detail}")]
    Invalid { detail: &'static str },
    /// The header's `kid` names no key of the set: the caller may refetch the JWKS (design §2).
    #[error("token key id is not in the key set")]
    UnknownKid,
}

pub(crate) const fn invalid(detail: &'static str) -> JwsError {
    JwsError::Invalid { detail }
}

/// The three parts of a compact JWS, still encoded.
pub(crate) struct Compact<'t> {
    /// `BASE64URL(header) '.' BASE64URL(payload)`: the JWS Signing Input (RFC 7515 §5.1 step 8).
    pub signing_input: &'t str,
    pub header: &'t str,
    pub payload: &'t str,
    pub signature: &'t str,
}

/// Splits a compact JWS into exactly three parts. A JWE (five parts, RFC 7516 §7.1) and
/// anything over [`MAX_TOKEN_LEN`] fail. An empty signature passes here so that an unsecured JWT
/// (RFC 7519 §6.1) is refused for what it is, its `alg: none`; and with any real `alg` an empty
/// signature simply does not match.
pub(crate) fn split(token: &str) -> Result<Compact<'_>, JwsError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(invalid(msg::TOO_LONG));
    }
    let (signing_input, signature) = token.rsplit_once('.').ok_or(invalid(msg::MALFORMED))?;
    let (header, payload) = signing_input
        .split_once('.')
        .ok_or(invalid(msg::MALFORMED))?;
    if payload.contains('.') || header.is_empty() || payload.is_empty() {
        return Err(invalid(msg::MALFORMED));
    }
    Ok(Compact {
        signing_input,
        header,
        payload,
        signature,
    })
}

/// One part of the token in strict base64url ([`super::b64::decode`]); anything else is
/// [`msg::MALFORMED`].
pub(crate) fn b64_decode(part: &str) -> Result<Vec<u8>, JwsError> {
    b64::decode(part).map_err(|_| invalid(msg::MALFORMED))
}

/// A string borrowed from the decoded JSON when it has no escapes, owned otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CowStr<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> de::Visitor<'de> for V<'a> {
            type Value = CowStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// True when the member is present at all, whatever its value.
#[derive(Debug, Default, Clone, Copy)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d).map(|_| Present(true))
    }
}

/// The JOSE header members Gatehouse reads. Everything else is ignored on purpose: `jku`,
/// `x5u`, `jwk` and `x5c` name or carry keys chosen by whoever made the token, and trusting them
/// lets an attacker pick the key that verifies their own signature (RFC 8725 §3.10). Keys come
/// only from the issuer's configured [`KeySet`]. A member given twice makes the header malformed
/// (RFC 7515 §5.2 allows rejecting it).
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: CowStr<'a>,
    #[serde(borrow, default)]
    kid: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    typ: Option<CowStr<'a>>,
    #[serde(default)]
    crit: Present,
}

/// A parsed protected header, borrowing from its decoded bytes.
pub(crate) struct Header<'a> {
    pub alg: Algorithm,
    pub kid: Option<Cow<'a, str>>,
    pub typ: Option<Cow<'a, str>>,
}

/// Decodes and checks the protected header: `alg` must name a signature algorithm exactly as
/// RFC 7518 §3.1 spells it (so `none`, `None`, `NONE` and unknown names all fail), and any
/// `crit` fails: Gatehouse understands no extension, and RFC 7515 §4.1.11 says a recipient that
/// does not understand a listed extension MUST reject the JWS.
/// `bytes` is the base64url-decoded header.
pub(crate) fn parse_header(bytes: &[u8]) -> Result<Header<'_>, JwsError> {
    // The header is a JSON object (RFC 7515 §4); a derived struct would also take an array.
    let first = bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first != Some(&b'{') {
        return Err(invalid(msg::MALFORMED));
    }
    // RFC 7515 §5.2 step 3: the header is UTF-8 JSON. serde_json does not check the UTF-8 of
    // members it skips, so the whole header is checked first (found by fuzzing).
    let text = std::str::from_utf8(bytes).map_err(|_| invalid(msg::MALFORMED))?;
    let raw: RawHeader<'_> = serde_json::from_str(text).map_err(|_| invalid(msg::MALFORMED))?;
    let alg = match raw.alg.0.as_ref() {
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return Err(invalid(msg::ALG_NOT_ALLOWED)),
    };
    if raw.crit.0 {
        return Err(invalid(msg::CRIT));
    }
    Ok(Header {
        alg,
        kid: raw.kid.map(|k| k.0),
        typ: raw.typ.map(|t| t.0),
    })
}

/// Checks the signature of `jws` with the key `keys` holds for (`kid`, `alg`). The caller has
/// already checked that `alg` is one its issuer allows; the key set adds the second half of the
/// pin: the key itself must be of `alg`'s family (and of `alg` itself when its JWK said so), so
/// an RSA public key can never act as an HMAC secret (RFC 8725 §2.1, §3.1).
pub(crate) fn verify_signature(
    keys: &KeySet,
    header: &Header<'_>,
    jws: &Compact<'_>,
) -> Result<(), JwsError> {
    let key = match keys.find(header.kid.as_deref(), header.alg) {
        Lookup::Found(key) => key,
        Lookup::UnknownKid => return Err(JwsError::UnknownKid),
        Lookup::WrongFamily => return Err(invalid(msg::ALG_NOT_ALLOWED)),
        Lookup::Ambiguous => return Err(invalid(msg::NO_KID)),
    };
    if jws.signature.len() > MAX_SIGNATURE_B64 {
        return Err(invalid(msg::MALFORMED));
    }
    let mut buf = [0u8; SIGNATURE_BUF];
    let n = URL_SAFE_NO_PAD
        .decode_slice(jws.signature, &mut buf)
        .map_err(|_| invalid(msg::MALFORMED))?;
    let sig = buf.get(..n).ok_or(invalid(msg::MALFORMED))?;
    if key.verify(jws.signing_input.as_bytes(), sig) {
        Ok(())
    } else {
        Err(invalid(msg::BAD_SIGNATURE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        b64_decode(&URL_SAFE_NO_PAD.encode(s)).unwrap()
    }

    #[test]
    fn split_wants_exactly_three_non_empty_parts() {
        assert!(split("a.b.c").is_ok());
        assert!(
            split("a.b.").is_ok(),
            "alg none is refused by its header, not here"
        );
        for bad in ["", "a", "a.b", ".b.c", "a..c", "a.b.c.d", "a.b.c.d.e"] {
            assert_eq!(split(bad).err(), Some(invalid(msg::MALFORMED)), "{bad}");
        }
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(split(&long).err(), Some(invalid(msg::TOO_LONG)));
    }

    #[test]
    fn base64_is_strict() {
        assert!(b64_decode("eyJ9").is_ok());
        assert!(b64_decode("eyJ9=").is_err(), "padding");
        assert!(b64_decode("ey+9").is_err(), "standard alphabet");
        assert!(b64_decode("eyJ 9").is_err(), "whitespace");
    }

    #[test]
    fn header_alg_is_spelled_exactly() {
        for alg in ["none", "None", "NONE", "hs256", "HS257", ""] {
            let h = b64(&format!(r#"{{"alg":"{alg}"}}"#));
            assert_eq!(
                parse_header(&h).err(),
                Some(invalid(msg::ALG_NOT_ALLOWED)),
                "{alg}"
            );
        }
        let bytes = b64(r#"{"alg":"EdDSA","kid":"k1","typ":"at+jwt"}"#);
        let h = parse_header(&bytes).unwrap();
        assert_eq!(h.alg, Algorithm::EdDSA);
        assert_eq!(h.kid.as_deref(), Some("k1"));
        assert_eq!(h.typ.as_deref(), Some("at+jwt"));
    }

    #[test]
    fn header_rejects_crit_duplicates_and_non_objects() {
        let crit = b64(r#"{"alg":"HS256","crit":["exp"],"exp":1}"#);
        assert_eq!(parse_header(&crit).err(), Some(invalid(msg::CRIT)));
        let crit_null = b64(r#"{"alg":"HS256","crit":null}"#);
        assert_eq!(parse_header(&crit_null).err(), Some(invalid(msg::CRIT)));
        for bad in [
            r#"{"alg":"HS256","alg":"none"}"#,
            r#"["HS256"]"#,
            r#"{"alg":7}"#,
            "{}",
        ] {
            assert_eq!(
                parse_header(&b64(bad)).err(),
                Some(invalid(msg::MALFORMED)),
                "{bad}"
            );
        }
    }

    /// RFC 7515 §5.2 step 3: invalid UTF-8 in a header member Gatehouse skips still makes the
    /// header malformed (found by fuzzing the claims, the same gap).
    #[test]
    fn header_with_invalid_utf8_in_a_skipped_member_is_malformed() {
        let mut h = br#"{"alg":"HS256","x":""#.to_vec();
        h.extend_from_slice(&[0xc3, 0x28]);
        h.extend_from_slice(br#""}"#);
        assert!(matches!(
            parse_header(&h),
            Err(JwsError::Invalid {
                detail: msg::MALFORMED
            })
        ));
    }

    #[test]
    fn header_ignores_key_carrying_members() {
        let h = b64(
            r#"{"alg":"RS256","jku":"https://evil/jwks","x5u":"https://evil/c","jwk":{"kty":"oct","k":"AA"},"x5c":["AA"]}"#,
        );
        let h = parse_header(&h).unwrap();
        assert_eq!(h.alg, Algorithm::RS256);
        assert_eq!(h.kid, None);
    }
}
