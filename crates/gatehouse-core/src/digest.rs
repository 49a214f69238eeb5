//! HTTP Digest access authentication, server side (RFC 7616), qop `auth` only.
//!
//! * [`DigestParams::parse`] reads the `auth-param` list of `Authorization: Digest …`.
//! * Nonces are stateless ([`make_nonce`], [`check_nonce`]): `base64url(ts ‖ random ‖ mac)`
//!   with `ts` the issue time (8 bytes, big-endian unix seconds), 16 random bytes from the
//!   edge, and `mac` the first 16 bytes of HMAC-SHA256(key, label ‖ ts ‖ random). Every node
//!   holding the same key accepts every node's nonces; replay within the nonce's lifetime is
//!   stopped by the edge tracking `nc` per nonce (RFC 7616 §5.4, §3.4: `nc` increases).
//! * `opaque` is fixed per realm ([`make_opaque`]): HMAC-SHA256(key, label ‖ realm), so it needs
//!   no state either and the edge can check that a client echoes it unchanged (§3.3).
//! * [`ha1`] computes what a user store keeps (`H(username:realm:password)`, the htdigest
//!   value for MD5); [`verify`] computes the expected `response` from it (§3.4.1–§3.4.3).
//!
//! The HMACs use aws-lc-rs (already in the tree for JWT keys), so no `hmac` crate is needed.
//! The labels give the nonce and opaque MACs separate domains, so an opaque value can never
//! pass as a nonce MAC nor the other way round.

mod parse;

use std::fmt;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use md5::Md5;
use sha2::{Sha256, Sha512_256};
use zeroize::Zeroizing;

use crate::secret::ct_eq;

#[cfg(test)]
mod tests;

/// Domain label of the nonce MAC.
const NONCE_LABEL: &[u8] = b"gatehouse digest nonce v1\0";
/// Domain label of the opaque MAC.
const OPAQUE_LABEL: &[u8] = b"gatehouse digest opaque v1\0";
/// Bytes of the truncated MAC in a nonce (128 bits).
const NONCE_MAC_LEN: usize = 16;
/// `ts ‖ random ‖ mac`.
const NONCE_LEN: usize = 8 + 16 + NONCE_MAC_LEN;
/// How far in the future a nonce's timestamp may lie (clock skew between nodes sharing
/// the key) before the nonce is treated as forged.
const MAX_FUTURE_SKEW_SECS: i64 = 60;

/// A Digest `algorithm` (RFC 7616 §3.3, §6.1 registry). The `-sess` variants hash the same
/// stored HA1 once more with the nonce and cnonce (§3.4.2).
///
/// `SHA-512-256` is SHA-512/256 of FIPS 180-4 as §3.3 says. Beware: the RFC's own example
/// (§3.9.2, errata 4897) used SHA-512 cut to 256 bits, and clients tested only against it
/// compute that instead; offer SHA-256 and MD5 for interoperability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
    Sha512_256,
    Sha512_256Sess,
}

impl Algorithm {
    /// The token of the registry (RFC 7616 §6.1).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
            Self::Sha512_256 => "SHA-512-256",
            Self::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// Case-insensitive lookup of a registry token.
    pub fn from_name(s: &str) -> Option<Self> {
        [
            Self::Md5,
            Self::Md5Sess,
            Self::Sha256,
            Self::Sha256Sess,
            Self::Sha512_256,
            Self::Sha512_256Sess,
        ]
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    /// Whether this is a `-sess` variant.
    pub const fn is_sess(self) -> bool {
        matches!(
            self,
            Self::Md5Sess | Self::Sha256Sess | Self::Sha512_256Sess
        )
    }

    /// The variant without `-sess`: the one whose HA1 a store keeps.
    pub const fn base(self) -> Self {
        match self {
            Self::Md5 | Self::Md5Sess => Self::Md5,
            Self::Sha256 | Self::Sha256Sess => Self::Sha256,
            Self::Sha512_256 | Self::Sha512_256Sess => Self::Sha512_256,
        }
    }

    /// Length of a lower-case hex digest of this algorithm.
    pub const fn hex_len(self) -> usize {
        match self.base() {
            Self::Md5 => 32,
            _ => 64,
        }
    }

    /// Preference when several are offered: stronger hashes first (RFC 7616 §3.7: the
    /// server lists challenges by preference; clients take the first they support).
    pub const fn strength_rank(self) -> u8 {
        match self.base() {
            Self::Sha512_256 => 0,
            Self::Sha256 => 1,
            _ => 2,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a Digest credential could not be parsed. The detail is a fixed, safe string (it is
/// shown to the client as the row 7 detail) and never echoes input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(&'static str);

impl ParseError {
    pub const fn detail(self) -> &'static str {
        self.0
    }
}

/// The parameters of `Authorization: Digest …` (RFC 7616 §3.4), validated for qop `auth`.
#[derive(Clone, PartialEq, Eq)]
pub struct DigestParams {
    /// The user name (from `username` or the decoded `username*`), or with `userhash` the
    /// lower-case hex `H(username:realm)` (§3.4.4).
    pub username: String,
    pub userhash: bool,
    pub realm: String,
    /// The request-target the client signed (§3.4.6); see [`Self::uri_matches`].
    pub uri: String,
    pub algorithm: Algorithm,
    pub nonce: String,
    /// `nc`: exactly 8 hex digits as sent (the response hashes them verbatim).
    pub nc: String,
    pub cnonce: String,
    /// Lower-case hex, [`Algorithm::hex_len`] long.
    pub response: String,
    pub opaque: Option<String>,
}

impl fmt::Debug for DigestParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The response is not a secret, but a full hash adds nothing to a log line.
        let response = format!("{}…", self.response.get(..8).unwrap_or(""));
        f.debug_struct("DigestParams")
            .field("username", &self.username)
            .field("userhash", &self.userhash)
            .field("realm", &self.realm)
            .field("uri", &self.uri)
            .field("algorithm", &self.algorithm)
            .field("nc", &self.nc)
            .field("response", &response)
            .finish_non_exhaustive()
    }
}

const fn err(detail: &'static str) -> ParseError {
    ParseError(detail)
}

impl DigestParams {
    /// Parses the part of the field value after `Digest` and its spaces.
    ///
    /// Unknown parameters are ignored (RFC 9110 §11.2 extensibility); duplicates, a missing
    /// mandatory parameter, `auth-int`, an unknown algorithm and malformed `nc` or
    /// `response` are errors.
    pub fn parse(params: &str) -> Result<Self, ParseError> {
        let list = parse::auth_params(params)?;
        let get = |name: &str| list.iter().find(|p| p.name.eq_ignore_ascii_case(name));
        let required = |name: &str, missing: &'static str| {
            get(name)
                .map(|p| p.value.clone())
                .filter(|v| !v.is_empty())
                .ok_or(err(missing))
        };

        let algorithm = match get("algorithm") {
            // §3.4: "If the algorithm parameter is not present, it is assumed to be MD5."
            None => Algorithm::Md5,
            Some(p) => Algorithm::from_name(&p.value)
                .ok_or(err("the Digest algorithm is not supported"))?,
        };
        let userhash = match get("userhash") {
            None => false,
            Some(p) if p.value.eq_ignore_ascii_case("true") => true,
            Some(p) if p.value.eq_ignore_ascii_case("false") => false,
            Some(_) => return Err(err("the Digest `userhash` must be `true` or `false`")),
        };
        let username = match (get("username"), get("username*")) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "the Digest credentials carry both `username` and `username*`",
                ));
            }
            (None, None) => return Err(err("the Digest credentials lack `username`")),
            (Some(u), None) => u.value.clone(),
            // §3.4: `username*` is not used with userhash (a hash is plain ASCII hex).
            (None, Some(_)) if userhash => {
                return Err(err("the Digest `username*` cannot be used with `userhash`"));
            }
            // RFC 8187 §3.2: an ext-value is never a quoted-string.
            (None, Some(u)) if u.quoted => {
                return Err(err("the Digest `username*` must not be quoted"));
            }
            (None, Some(u)) => parse::ext_value(&u.value)?,
        };
        if username.is_empty() {
            return Err(err("the Digest `username` is empty"));
        }
        if username.chars().any(char::is_control) {
            return Err(err("the Digest `username` contains control characters"));
        }
        if userhash && !is_hex_of_len(&username, algorithm.hex_len()) {
            return Err(err("the Digest `username` is not a userhash"));
        }
        let username = if userhash {
            username.to_ascii_lowercase()
        } else {
            username
        };

        // §3.4: qop is mandatory in RFC 7616 (the RFC 2069 form without it is obsolete), and
        // Gatehouse only offers `auth`.
        let qop = required("qop", "the Digest credentials lack `qop`")?;
        if qop.eq_ignore_ascii_case("auth-int") {
            return Err(err("the Digest qop `auth-int` is not supported"));
        }
        if !qop.eq_ignore_ascii_case("auth") {
            return Err(err("the Digest qop is not `auth`"));
        }
        let nc = required("nc", "the Digest credentials lack `nc`")?;
        if !is_hex_of_len(&nc, 8) {
            return Err(err("the Digest `nc` is not 8 hex digits"));
        }
        let response = required("response", "the Digest credentials lack `response`")?;
        if !is_hex_of_len(&response, algorithm.hex_len()) {
            return Err(err(
                "the Digest `response` is not a hex digest of the algorithm",
            ));
        }
        Ok(Self {
            username,
            userhash,
            realm: required("realm", "the Digest credentials lack `realm`")?,
            uri: required("uri", "the Digest credentials lack `uri`")?,
            algorithm,
            nonce: required("nonce", "the Digest credentials lack `nonce`")?,
            nc,
            cnonce: required("cnonce", "the Digest credentials lack `cnonce`")?,
            response: response.to_ascii_lowercase(),
            opaque: get("opaque").map(|p| p.value.clone()),
        })
    }

    /// RFC 7616 §3.4.6: the `uri` must name the same resource as the request-target. We
    /// require the exact string the request line carried (origin-form as received, before
    /// any normalization), which is what conforming clients send.
    pub fn uri_matches(&self, request_target: &str) -> bool {
        self.uri == request_target
    }

    /// The nonce count as a number, for the edge's per-nonce replay check (RFC 7616 §3.4:
    /// the client increments it on each request with the same nonce).
    pub fn nonce_count(&self) -> u32 {
        u32::from_str_radix(&self.nc, 16).unwrap_or(0)
    }
}

fn is_hex_of_len(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Lower-case hex of a digest over `parts` concatenated.
fn hash_hex(algorithm: Algorithm, parts: &[&[u8]]) -> Zeroizing<String> {
    fn run<D: md5::Digest>(parts: &[&[u8]]) -> Zeroizing<String> {
        let mut h = D::new();
        for p in parts {
            h.update(p);
        }
        Zeroizing::new(hex_lower(&h.finalize()))
    }
    match algorithm.base() {
        Algorithm::Sha256 => run::<Sha256>(parts),
        Algorithm::Sha512_256 => run::<Sha512_256>(parts),
        _ => run::<Md5>(parts),
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

/// `HA1 = H(username ":" realm ":" password)` in lower-case hex (RFC 7616 §3.4.2), for the
/// hash of `algorithm` (a `-sess` variant uses its base hash: the stored HA1 is the same).
/// Strings are hashed as UTF-8, the charset the challenge announces. Password-equivalent:
/// store it like a secret.
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    let h = hash_hex(
        algorithm,
        &[
            username.as_bytes(),
            b":",
            realm.as_bytes(),
            b":",
            password.as_bytes(),
        ],
    );
    String::clone(&h)
}

/// `userhash = H(username ":" realm)` in lower-case hex (RFC 7616 §3.4.4).
pub fn userhash(algorithm: Algorithm, username: &str, realm: &str) -> String {
    let h = hash_hex(algorithm, &[username.as_bytes(), b":", realm.as_bytes()]);
    String::clone(&h)
}

/// Whether `params.response` is right for `method` and the stored `ha1_hex` (of
/// `params.algorithm`'s base hash). RFC 7616 §3.4.1 with qop `auth`:
///
/// ```text
/// response = H( HA1' ":" nonce ":" nc ":" cnonce ":" "auth" ":" H(method ":" uri) )
/// HA1'     = HA1                           (non-sess)
///          = H( HA1 ":" nonce ":" cnonce ) (-sess, §3.4.2)
/// ```
///
/// Compared in constant time. Nonce freshness, `nc` replay, realm, opaque and `uri` are
/// checked separately ([`check_nonce`], [`check_opaque`], [`DigestParams::uri_matches`]).
pub fn verify(params: &DigestParams, method: &str, ha1_hex: &str) -> bool {
    let alg = params.algorithm;
    let stored = Zeroizing::new(ha1_hex.to_ascii_lowercase());
    let ha1 = if alg.is_sess() {
        hash_hex(
            alg,
            &[
                stored.as_bytes(),
                b":",
                params.nonce.as_bytes(),
                b":",
                params.cnonce.as_bytes(),
            ],
        )
    } else {
        stored
    };
    let ha2 = hash_hex(alg, &[method.as_bytes(), b":", params.uri.as_bytes()]);
    let expected = hash_hex(
        alg,
        &[
            ha1.as_bytes(),
            b":",
            params.nonce.as_bytes(),
            b":",
            params.nc.as_bytes(),
            b":",
            params.cnonce.as_bytes(),
            b":auth:",
            ha2.as_bytes(),
        ],
    );
    ct_eq(expected.as_bytes(), params.response.as_bytes())
}

/// The verdict on a nonce a client sent back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours and fresh; `issued_at` unix seconds.
    Valid { issued_at: i64 },
    /// Ours but older than the allowed age: answer `stale=true` if the response is
    /// otherwise right (RFC 7616 §3.3, design §2 row 12).
    Stale,
    /// Not ours (bad MAC, wrong length, not base64url, timestamp in the future).
    Invalid,
}

fn mac(key: &[u8; 32], label: &[u8], parts: &[&[u8]]) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(label);
    for p in parts {
        ctx.update(p);
    }
    ctx.sign()
}

/// A fresh nonce issued at `now` (unix seconds) with 16 bytes of randomness from the edge.
pub fn make_nonce(key: &[u8; 32], now: i64, random: &[u8; 16]) -> String {
    let ts = now.to_be_bytes();
    let tag = mac(key, NONCE_LABEL, &[&ts, random]);
    let mut raw = Vec::with_capacity(NONCE_LEN);
    raw.extend_from_slice(&ts);
    raw.extend_from_slice(random);
    raw.extend_from_slice(tag.as_ref().get(..NONCE_MAC_LEN).unwrap_or_default());
    URL_SAFE_NO_PAD.encode(raw)
}

/// Checks a nonce made by [`make_nonce`] with the same key: authentic (constant-time MAC
/// comparison) first, then age. A nonce is stale once more than `max_age_secs` old.
pub fn check_nonce(key: &[u8; 32], nonce: &str, now: i64, max_age_secs: u64) -> NonceCheck {
    let Ok(raw) = URL_SAFE_NO_PAD.decode(nonce) else {
        return NonceCheck::Invalid;
    };
    let (Some(ts), Some(random), Some(got)) = (
        raw.get(..8),
        raw.get(8..24),
        raw.get(24..).filter(|m| m.len() == NONCE_MAC_LEN),
    ) else {
        return NonceCheck::Invalid;
    };
    let tag = mac(key, NONCE_LABEL, &[ts, random]);
    let want = tag.as_ref().get(..NONCE_MAC_LEN).unwrap_or_default();
    if !ct_eq(want, got) {
        return NonceCheck::Invalid;
    }
    let Ok(ts) = <[u8; 8]>::try_from(ts) else {
        return NonceCheck::Invalid;
    };
    let issued_at = i64::from_be_bytes(ts);
    if issued_at > now.saturating_add(MAX_FUTURE_SKEW_SECS) {
        return NonceCheck::Invalid;
    }
    let age = now.saturating_sub(issued_at);
    if u64::try_from(age).is_ok_and(|a| a > max_age_secs) {
        return NonceCheck::Stale;
    }
    NonceCheck::Valid { issued_at }
}

/// The `opaque` of `realm`: fixed per key and realm (24 base64url characters).
pub fn make_opaque(key: &[u8; 32], realm: &str) -> String {
    let tag = mac(key, OPAQUE_LABEL, &[realm.as_bytes()]);
    URL_SAFE_NO_PAD.encode(tag.as_ref().get(..18).unwrap_or_default())
}

/// Whether a client echoed `realm`'s opaque unchanged (constant-time).
pub fn check_opaque(key: &[u8; 32], realm: &str, opaque: &str) -> bool {
    ct_eq(make_opaque(key, realm).as_bytes(), opaque.as_bytes())
}

/// One `WWW-Authenticate: Digest …` challenge (RFC 7616 §3.3), quoted as in the RFC's
/// examples (§3.9): `algorithm`, `charset`, `userhash` and `stale` are tokens.
pub fn challenge(
    realm: &str,
    algorithm: Algorithm,
    nonce: &str,
    opaque: &str,
    stale: bool,
    userhash_supported: bool,
) -> String {
    let mut c = String::with_capacity(160);
    c.push_str("Digest ");
    crate::text::push_param(&mut c, "realm", realm);
    crate::text::push_param(&mut c, "qop", "auth");
    c.push_str(", algorithm=");
    c.push_str(algorithm.as_str());
    crate::text::push_param(&mut c, "nonce", nonce);
    crate::text::push_param(&mut c, "opaque", opaque);
    c.push_str(", charset=UTF-8");
    if userhash_supported {
        c.push_str(", userhash=true");
    }
    if stale {
        c.push_str(", stale=true");
    }
    c
}

/// What the edge hands to [`crate::render`] so it can emit Digest challenges: a fresh nonce
/// (one per response) and the realm's opaque, and the algorithms the route allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    pub nonce: String,
    pub opaque: String,
    /// Rendered strongest first (SHA-256 before MD5), whatever the order here.
    pub algorithms: Vec<Algorithm>,
    pub userhash: bool,
}

impl DigestChallenge {
    /// The challenges, strongest algorithm first (RFC 7616 §3.7); `stale` for row 12.
    pub fn render(&self, realm: &str, stale: bool) -> Vec<String> {
        let mut algs = self.algorithms.clone();
        algs.sort_by_key(|a| a.strength_rank());
        algs.dedup();
        algs.into_iter()
            .map(|a| challenge(realm, a, &self.nonce, &self.opaque, stale, self.userhash))
            .collect()
    }
}
