//! Extraction of the one credential of a request (design §2 rows 5, 6 and 7).
//!
//! The edge hands over the raw values of every `Authorization` and `X-API-Key` field line
//! and the raw query string; [`extract`] decides whether the request carries no credential
//! (row 5), exactly one in a scheme we parse ([`Extracted::One`]: Bearer, Basic, ApiKey,
//! Digest), one in a scheme we do not parse (row 6), or something malformed or ambiguous
//! (row 7, e.g. an unparsable Digest). Verification comes later.
//!
//! Nothing secret ever reaches [`Extracted::Malformed`]: its detail is a fixed string.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gatehouse_challenge::grammar::{is_tchar, is_token68, is_token68_char};

use crate::deny::{Credential, Deny};
use crate::digest::DigestParams;
use crate::secret::SecretString;

/// Longest auth-scheme name we report back in [`Extracted::Unsupported`].
const MAX_SCHEME_LEN: usize = 32;

/// The result of looking for the request's credential.
#[derive(Debug, Clone)]
pub enum Extracted {
    /// No credential at all (row 5).
    None,
    /// Exactly one credential in a scheme Gatehouse parses.
    One(Credential),
    /// An `Authorization` credential in a scheme Gatehouse does not parse (row 6).
    /// `scheme` is lower-cased, at most 32 token characters.
    Unsupported { scheme: String },
    /// A malformed credential or more than one (row 7). `detail` never holds secret material.
    Malformed { detail: &'static str },
}

impl Extracted {
    /// Turns the extraction into the credential to verify, `Ok(None)` when there is none,
    /// or the refusal of rows 6 and 7.
    pub fn into_result(self) -> Result<Option<Credential>, Deny> {
        match self {
            Self::None => Ok(None),
            Self::One(c) => Ok(Some(c)),
            Self::Unsupported { scheme } => Err(Deny::UnsupportedScheme { presented: scheme }),
            Self::Malformed { detail } => Err(Deny::InvalidRequest {
                detail: detail.to_owned(),
            }),
        }
    }
}

const fn malformed(detail: &'static str) -> Extracted {
    Extracted::Malformed { detail }
}

/// Finds the one credential of a request.
///
/// `authorization` and `api_key` hold the raw value of every `Authorization` and `X-API-Key`
/// field line (one slice per line, in order); `query` is the raw query string without `?`.
pub fn extract<'a>(
    authorization: &[&'a [u8]],
    api_key: &[&'a [u8]],
    query: Option<&'a str>,
) -> Extracted {
    let in_query = query.is_some_and(has_access_token_param);
    let count = authorization.len() + api_key.len() + usize::from(in_query);
    if count > 1 {
        return malformed("more than one credential");
    }
    if in_query {
        // RFC 6750 §2.3 allows `access_token` in the URI; we never do (§5.3 of the same RFC:
        // URLs end up in logs and `Referer`).
        return malformed("send the access token in the Authorization header, not in the URL");
    }
    if let Some(value) = authorization.first() {
        if let Some(c) = fast_bearer(value) {
            return c;
        }
        return parse_authorization(value);
    }
    if let Some(value) = api_key.first() {
        return parse_x_api_key(value);
    }
    Extracted::None
}

/// The common case in one pass: `Bearer <token68>` with nothing else. A token68 holds no
/// comma, quote or control character, so the checks of [`parse_authorization`] (visible
/// ASCII, a second credential) cannot fail for it; anything else takes the general path,
/// which also words the refusal.
fn fast_bearer(raw: &[u8]) -> Option<Extracted> {
    let rest = raw
        .get(..7)?
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| &raw[7..])?;
    let start = rest.iter().position(|&b| b != b' ')?;
    let token = rest.get(start..)?;
    let end = token.iter().rposition(|&b| b != b' ' && b != b'\t')? + 1;
    let token = token.get(..end)?;
    let body_len = token.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    let valid = body_len > 0 && token[..body_len].iter().all(|&b| is_token68_char(b));
    if !valid {
        return None;
    }
    let token = std::str::from_utf8(token).ok()?;
    Some(Extracted::One(Credential::Bearer(SecretString::new(
        token.to_owned(),
    ))))
}

/// RFC 9110 §11.6.2: `Authorization = credentials`,
/// `credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]` (§11.4).
fn parse_authorization(raw: &[u8]) -> Extracted {
    let value = match ascii_field_value(raw) {
        Some(v) => v,
        // Digest alone may carry UTF-8 inside quoted strings (obs-text, RFC 9110 §5.6.4):
        // the challenge announces `charset=UTF-8` (RFC 7616 §3.3) and clients send user
        // names that way. Every other scheme we parse is token68 or plain ASCII.
        None => match utf8_field_value(raw) {
            Some(v) if auth_scheme(v).eq_ignore_ascii_case("digest") => v,
            _ => return malformed("the Authorization header is not visible ASCII"),
        },
    };
    if value.is_empty() {
        return malformed("the Authorization header is empty");
    }
    let scheme = auth_scheme(value);
    let rest = value.get(scheme.len()..).unwrap_or("");
    if scheme.is_empty() {
        return malformed("the Authorization header does not start with an auth scheme");
    }
    let params = match rest.strip_prefix(' ') {
        Some(p) => p.trim_start_matches(' '),
        None if rest.is_empty() => "",
        None => return malformed("the auth scheme contains invalid characters"),
    };
    if has_second_credential(params) {
        return malformed("more than one credential");
    }
    // Auth schemes are case-insensitive (RFC 9110 §11.1).
    if scheme.eq_ignore_ascii_case("bearer") {
        parse_bearer(params)
    } else if scheme.eq_ignore_ascii_case("basic") {
        parse_basic(params)
    } else if scheme.eq_ignore_ascii_case("apikey") {
        parse_api_key_value(params, "the ApiKey scheme requires a key")
    } else if scheme.eq_ignore_ascii_case("digest") {
        parse_digest(params)
    } else if scheme.len() > MAX_SCHEME_LEN {
        malformed("the auth scheme is too long")
    } else {
        Extracted::Unsupported {
            scheme: scheme.to_ascii_lowercase(),
        }
    }
}

/// RFC 6750 §2.1: `credentials = "Bearer" 1*SP b64token`,
/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn parse_bearer(token: &str) -> Extracted {
    if token.is_empty() {
        return malformed("the Bearer scheme requires a token");
    }
    if !is_token68(token) {
        return malformed("the Bearer token contains invalid characters");
    }
    Extracted::One(Credential::Bearer(SecretString::new(token.to_owned())))
}

/// RFC 7617 §2: `credentials = "Basic" 1*SP token68`, the token being the base64 of
/// `user-id ":" password`; §2.1: we advertise `charset="UTF-8"`, so the octets are UTF-8.
fn parse_basic(token: &str) -> Extracted {
    if token.is_empty() {
        return malformed("the Basic scheme requires credentials");
    }
    if !is_token68(token) {
        return malformed("the Basic credentials contain invalid characters");
    }
    // RFC 4648 §4 alphabet with the padding §3.2 requires; no trailing bits (§3.5).
    let Ok(decoded) = STANDARD.decode(token) else {
        return malformed("the Basic credentials are not valid base64");
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return malformed("the Basic credentials are not UTF-8");
    };
    let decoded = SecretString::new(decoded);
    // The user-id cannot contain ':' (RFC 7617 §2), so the first one splits.
    let Some((user, password)) = decoded.expose().split_once(':') else {
        return malformed("the Basic credentials have no `:` between user-id and password");
    };
    // RFC 7617 §2: "The user-id and password MUST NOT contain any control characters";
    // with UTF-8 (RFC 8265 profiles, §2.1) that includes the C1 controls too.
    if user.chars().any(char::is_control) {
        return malformed("the Basic user-id contains control characters");
    }
    if password.chars().any(char::is_control) {
        return malformed("the Basic password contains control characters");
    }
    Extracted::One(Credential::Basic {
        username: user.to_owned(),
        password: SecretString::new(password.to_owned()),
    })
}

/// RFC 7616 §3.4: `credentials = "Digest" 1*SP #auth-param` (never token68).
fn parse_digest(params: &str) -> Extracted {
    if params.is_empty() {
        return malformed("the Digest scheme requires parameters");
    }
    match DigestParams::parse(params) {
        Ok(p) => Extracted::One(Credential::Digest(Box::new(p))),
        Err(e) => malformed(e.detail()),
    }
}

/// `X-API-Key: <key>`: one visible-ASCII key, surrounding whitespace ignored.
fn parse_x_api_key(raw: &[u8]) -> Extracted {
    let Some(value) = ascii_field_value(raw) else {
        return malformed("the X-API-Key header is not visible ASCII");
    };
    if value.contains(',') {
        // Two field lines joined by a proxy (RFC 9110 §5.3); an API key never has a comma.
        return malformed("more than one credential");
    }
    parse_api_key_value(value, "the X-API-Key header is empty")
}

fn parse_api_key_value(key: &str, empty: &'static str) -> Extracted {
    if key.is_empty() {
        return malformed(empty);
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return malformed("the API key contains invalid characters");
    }
    Extracted::One(Credential::ApiKey(SecretString::new(key.to_owned())))
}

/// The field value as ASCII with surrounding OWS removed (RFC 9110 §5.5), or `None` when it
/// holds anything but visible ASCII, SP and HTAB.
fn ascii_field_value(raw: &[u8]) -> Option<&str> {
    if !raw
        .iter()
        .all(|&b| b.is_ascii_graphic() || b == b' ' || b == b'\t')
    {
        return None;
    }
    let s = std::str::from_utf8(raw).ok()?;
    Some(s.trim_matches([' ', '\t']))
}

/// Like [`ascii_field_value`] but also allowing obs-text (octets 0x80–0xFF, RFC 9110
/// §5.5), which must then be UTF-8.
fn utf8_field_value(raw: &[u8]) -> Option<&str> {
    if !raw
        .iter()
        .all(|&b| b.is_ascii_graphic() || b == b' ' || b == b'\t' || b >= 0x80)
    {
        return None;
    }
    let s = std::str::from_utf8(raw).ok()?;
    Some(s.trim_matches([' ', '\t']))
}

/// The leading `auth-scheme` token of a credential (possibly empty).
fn auth_scheme(value: &str) -> &str {
    let len = value.bytes().take_while(|&b| is_tchar(b)).count();
    value.get(..len).unwrap_or("")
}

/// Whether the part after the auth scheme holds the start of another credential: a
/// top-level comma (outside quoted strings) followed by `auth-scheme` and then SP or the
/// end, rather than by an `auth-param` (`token BWS "=" …`) or nothing. That is what a proxy
/// produces when it joins two `Authorization` field lines (RFC 9110 §5.3).
fn has_second_credential(params: &str) -> bool {
    let bytes = params.as_bytes();
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate() {
        if in_quotes {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_quotes = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_quotes = true,
            b',' => {
                let next = params
                    .get(i + 1..)
                    .unwrap_or("")
                    .trim_start_matches([' ', '\t']);
                let name_len = next.bytes().take_while(|&c| is_tchar(c)).count();
                let after = next.get(name_len..).unwrap_or("");
                let after_trimmed = after.trim_start_matches([' ', '\t']);
                if name_len > 0 && !after_trimmed.starts_with('=') {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// Whether the query string has an `access_token` parameter (RFC 6750 §2.3), its name
/// percent-decoded as `application/x-www-form-urlencoded` would.
fn has_access_token_param(query: &str) -> bool {
    query.split('&').any(|pair| {
        let name = pair.split('=').next().unwrap_or("");
        percent_decode_eq(name, b"access_token")
    })
}

/// Compares a percent-encoded form name (with `+` as space) to `expected`, without
/// allocating. Invalid escapes compare literally.
fn percent_decode_eq(encoded: &str, expected: &[u8]) -> bool {
    let bytes = encoded.as_bytes();
    let mut out = expected.iter();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let decoded = match b {
            b'%' => match (
                bytes.get(i + 1).and_then(|&h| hex(h)),
                bytes.get(i + 2).and_then(|&l| hex(l)),
            ) {
                (Some(h), Some(l)) => {
                    i += 2;
                    h << 4 | l
                }
                _ => b'%',
            },
            b'+' => b' ',
            other => other,
        };
        if out.next() != Some(&decoded) {
            return false;
        }
        i += 1;
    }
    out.next().is_none()
}

const fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
