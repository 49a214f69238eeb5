//! TOTP (RFC 6238) for multi-factor sign-in: HMAC-SHA-1, 6 digits, 30-second steps from the
//! Unix epoch — the parameters every authenticator app supports (apps that ignore the
//! `algorithm` parameter silently use SHA-1).
//!
//! Replay (RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt of the OTP after
//! the successful validation has been issued for the first OTP"): the edge stores the last
//! accepted step per user and passes it to [`Totp::verify_unused`].

use std::fmt;
use std::fmt::Write as _;

use aws_lc_rs::hmac;

use crate::secret::ct_eq;

/// Seconds per time step (RFC 6238 §4.1 `X`, default 30).
pub const PERIOD: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Length of a generated secret: 160 bits (RFC 4226 §4 R6 recommends ≥ 160).
pub const SECRET_LEN: usize = 20;

/// A TOTP generator/verifier over one shared secret. The secret is held only inside the HMAC
/// key and never printed.
pub struct Totp {
    key: hmac::Key,
}

impl fmt::Debug for Totp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Totp { key: <redacted> }")
    }
}

impl Totp {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            // RFC 6238 §1.2 / RFC 4226: HMAC-SHA-1; aws-lc names it "for legacy use", but
            // HMAC-SHA-1 is not affected by SHA-1 collisions and is what the apps implement.
            key: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret),
        }
    }

    /// The 6-digit code of time step `step` (`T` of RFC 6238 §4.2, never negative).
    pub fn code_at(&self, step: i64) -> u32 {
        self.hotp(step.cast_unsigned(), DIGITS)
    }

    /// HOTP (RFC 4226 §5.3) of `counter` with `digits` digits (≤ 9).
    fn hotp(&self, counter: u64, digits: u32) -> u32 {
        let tag = hmac::sign(&self.key, &counter.to_be_bytes());
        let hs = tag.as_ref();
        // Dynamic truncation (§5.4): HMAC-SHA-1 output is 20 bytes, so the offset (the low
        // nibble of the last byte, ≤ 15) and the four bytes it selects are in range.
        let offset = usize::from(hs.last().copied().unwrap_or(0) & 0x0f);
        let word = match hs.get(offset..offset + 4) {
            Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
            _ => 0,
        };
        (word & 0x7fff_ffff) % 10u32.pow(digits)
    }

    /// Verifies `code` at `now` (unix seconds), accepting steps within `skew` of the current
    /// one (RFC 6238 §5.2 recommends at most one step of network delay). Returns the matched
    /// step. Input other than exactly six ASCII digits is rejected.
    pub fn verify(&self, code: &str, now: i64, skew: u8) -> Option<i64> {
        self.verify_unused(code, now, skew, None)
    }

    /// As [`Self::verify`], but only steps after `last_used` count, so a code (or an older
    /// one) is never accepted twice (RFC 6238 §5.2).
    pub fn verify_unused(
        &self,
        code: &str,
        now: i64,
        skew: u8,
        last_used: Option<i64>,
    ) -> Option<i64> {
        if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let current = step_at(now)?;
        let skew = i64::from(skew);
        let mut matched = None;
        let mut buf = String::with_capacity(DIGITS as usize);
        // Every candidate is computed and compared, without an early exit.
        for step in current.saturating_sub(skew)..=current.saturating_add(skew) {
            if step < 0 || last_used.is_some_and(|l| step <= l) {
                continue;
            }
            buf.clear();
            let _ = write!(buf, "{:06}", self.code_at(step));
            if ct_eq(buf.as_bytes(), code.as_bytes()) && matched.is_none() {
                matched = Some(step);
            }
        }
        matched
    }
}

/// The time step of `now` (RFC 6238 §4.2, `T0 = 0`); `None` before the epoch.
pub fn step_at(now: i64) -> Option<i64> {
    (now >= 0).then_some(now / PERIOD)
}

/// A new shared secret from 20 bytes of randomness supplied by the edge (core reads no RNG).
pub fn generate_secret(random: &[u8; SECRET_LEN]) -> Vec<u8> {
    random.to_vec()
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 §6 base32, upper case, without padding (as authenticator apps expect).
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buf: u16 = 0;
    let mut bits = 0u32;
    for &b in bytes {
        buf = (buf << 8) | u16::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(base32_char(buf >> bits));
        }
        buf &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(base32_char(buf << (5 - bits)));
    }
    out
}

fn base32_char(v: u16) -> char {
    char::from(BASE32.get(usize::from(v & 0x1f)).copied().unwrap_or(b'A'))
}

/// Decodes RFC 4648 §6 base32: case-insensitive, trailing `=` padding optional. Returns
/// `None` for other characters, an impossible length, or non-zero leftover bits (§3.5).
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    // 8 characters carry 5 bytes; a final group of 1, 3 or 6 characters cannot occur.
    if matches!(s.len() % 8, 1 | 3 | 6) {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let mut buf: u16 = 0;
    let mut bits = 0u32;
    for c in s.bytes() {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buf = (buf << 5) | u16::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from(buf >> bits).ok()?);
            buf &= (1 << bits) - 1;
        }
    }
    (buf == 0).then_some(out)
}

/// Percent-encodes all but RFC 3986 §2.3 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The Key URI for enrolment (Google Authenticator "Key Uri Format"):
/// `otpauth://totp/Issuer:account?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`.
/// Issuer and account are percent-encoded, so a `:` inside either cannot split the label.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let issuer = percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={PERIOD}",
        account = percent_encode(account),
        secret = base32_encode(secret),
    )
}

#[cfg(test)]
mod tests;
