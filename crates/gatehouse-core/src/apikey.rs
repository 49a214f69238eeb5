//! API keys (design §2 "API keys"): `gh_<prefix>_<secret>`.
//!
//! - `prefix`: 8 characters of lower-case base32 (RFC 4648 §6 alphabet) from 5 random bytes.
//!   It is public: stored in clear, shown in listings, used to find the key in O(1).
//! - `secret`: 32 random bytes, base64url without padding (RFC 4648 §5), 43 characters.
//!
//! Only the SHA-256 of the full key is stored. The key has 256 bits of entropy, so a fast
//! hash is enough (no password stretching needed); the comparison is constant time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use crate::secret::{SecretString, ct_eq};

/// The fixed start of every key; lets secret scanners recognize leaked keys.
pub const KEY_PREFIX: &str = "gh_";
/// Length of the public prefix.
pub const PREFIX_LEN: usize = 8;
/// Length of the base64url secret (32 bytes, no padding).
pub const SECRET_LEN: usize = 43;
/// Length of a whole key: `gh_` + prefix + `_` + secret.
pub const KEY_LEN: usize = KEY_PREFIX.len() + PREFIX_LEN + 1 + SECRET_LEN;

const BASE32_LOWER: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A freshly generated key.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    /// The full key, to show once to its owner and then forget.
    pub display: SecretString,
    /// The public lookup prefix (the 8 characters after `gh_`).
    pub prefix: String,
    /// SHA-256 of the full key, the only form that is stored.
    pub hash: [u8; 32],
}

/// Builds a key from 37 random bytes supplied by the caller: 5 for the prefix, 32 for the
/// secret.
pub fn generate_api_key(random: &[u8; 37]) -> GeneratedKey {
    let (prefix_bytes, secret_bytes) = random.split_at(5);
    let prefix = base32_lower_40(prefix_bytes);
    let secret = zeroize::Zeroizing::new(URL_SAFE_NO_PAD.encode(secret_bytes));
    let display = SecretString::new(format!("{KEY_PREFIX}{prefix}_{}", secret.as_str()));
    let hash = hash_api_key(display.expose());
    GeneratedKey {
        display,
        prefix,
        hash,
    }
}

/// SHA-256 of a full key, as stored.
pub fn hash_api_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Splits a well-formed key into `(prefix, secret)`; `None` when it is not one of ours.
pub fn parse_api_key(s: &str) -> Option<(&str, &str)> {
    if s.len() != KEY_LEN {
        return None;
    }
    let rest = s.strip_prefix(KEY_PREFIX)?;
    let (prefix, rest) = (rest.get(..PREFIX_LEN)?, rest.get(PREFIX_LEN..)?);
    let secret = rest.strip_prefix('_')?;
    if !prefix.bytes().all(|b| BASE32_LOWER.contains(&b)) {
        return None;
    }
    // Decoding also rejects non-canonical trailing bits (RFC 4648 §3.5), so each secret has
    // exactly one spelling.
    let decoded = zeroize::Zeroizing::new(URL_SAFE_NO_PAD.decode(secret).ok()?);
    (decoded.len() == 32).then_some((prefix, secret))
}

/// Whether `presented` hashes to `stored_hash`, compared in constant time.
pub fn verify_api_key(presented: &str, stored_hash: &[u8]) -> bool {
    ct_eq(&hash_api_key(presented), stored_hash)
}

/// 5 bytes (40 bits) → 8 base32 characters, most significant bits first (RFC 4648 §6).
fn base32_lower_40(bytes: &[u8]) -> String {
    let v = bytes.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
    (0..PREFIX_LEN)
        .rev()
        .map(|i| char::from(BASE32_LOWER[((v >> (i * 5)) & 0x1f) as usize]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(seed: u8) -> [u8; 37] {
        std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8 * 7))
    }

    #[test]
    fn base32_matches_rfc4648_test_vectors() {
        // RFC 4648 §10: BASE32("fooba") = "MZXW6YTB" (upper-case alphabet).
        assert_eq!(base32_lower_40(b"fooba"), "mzxw6ytb");
        assert_eq!(base32_lower_40(&[0; 5]), "aaaaaaaa");
        assert_eq!(base32_lower_40(&[0xff; 5]), "77777777");
    }

    #[test]
    fn generated_key_has_the_documented_shape() {
        let mut r = [0u8; 37];
        r[..5].copy_from_slice(b"fooba");
        r[5..].fill(0xfb);
        let key = generate_api_key(&r);
        let shown = key.display.expose();
        assert_eq!(shown.len(), KEY_LEN);
        assert_eq!(key.prefix, "mzxw6ytb");
        assert_eq!(
            shown,
            format!("gh_mzxw6ytb_{}", URL_SAFE_NO_PAD.encode([0xfb; 32]))
        );
        assert_eq!(parse_api_key(shown), Some(("mzxw6ytb", &shown[12..])));
        assert_eq!(key.hash, hash_api_key(shown));
    }

    #[test]
    fn generated_keys_verify_and_others_do_not() {
        let a = generate_api_key(&random(1));
        let b = generate_api_key(&random(2));
        assert_ne!(a.display.expose(), b.display.expose());
        assert!(verify_api_key(a.display.expose(), &a.hash));
        assert!(!verify_api_key(a.display.expose(), &b.hash));
        assert!(!verify_api_key(b.display.expose(), &a.hash));
        assert!(!verify_api_key("", &a.hash));
        assert!(!verify_api_key(a.display.expose(), &a.hash[..31]));
        assert!(!verify_api_key(a.display.expose(), &[]));
    }

    #[test]
    fn sha256_is_of_the_whole_key() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(hash_api_key("abc")[..4], [0xba, 0x78, 0x16, 0xbf],);
    }

    #[test]
    fn debug_never_shows_the_key() {
        let k = generate_api_key(&random(3));
        let shown = format!("{k:?}");
        assert!(!shown.contains(&k.display.expose()[12..]));
        assert!(shown.contains(&k.prefix));
    }

    #[test]
    fn malformed_keys_are_rejected() {
        let k = generate_api_key(&random(4));
        let good = k.display.expose().to_owned();
        let secret = &good[12..];
        let mut last_bits = good.clone();
        // The last of 43 characters carries 2 bits of padding that must be zero.
        last_bits.pop();
        last_bits.push('B');
        for bad in [
            String::new(),
            good[..good.len() - 1].to_string(),
            format!("{good}A"),
            good.replacen("gh_", "gx_", 1),
            good.replacen("gh_", "GH_", 1),
            format!("gh_{}_{secret}", k.prefix.to_uppercase()),
            format!("gh_{}0_{}", &k.prefix[..7], secret),
            format!("gh_{}1_{}", &k.prefix[..7], secret),
            format!("gh_{}-{secret}", k.prefix),
            format!("gh_{}_{}=", k.prefix, &secret[..42]),
            format!("gh_{}_{}+", k.prefix, &secret[..42]),
            last_bits,
            format!("gh_{}_{}é", k.prefix, &secret[..41]),
        ] {
            assert_eq!(parse_api_key(&bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn every_generated_key_parses(random in proptest::array::uniform::<_, 37>(0u8..)) {
            let k = generate_api_key(&random);
            let (prefix, secret) = parse_api_key(k.display.expose()).expect("parses");
            proptest::prop_assert_eq!(prefix, k.prefix.as_str());
            proptest::prop_assert_eq!(URL_SAFE_NO_PAD.decode(secret).unwrap(), &random[5..]);
            proptest::prop_assert!(verify_api_key(k.display.expose(), &k.hash));
        }

        #[test]
        fn parse_never_panics(s in "(gh_)?.{0,60}") {
            let _ = parse_api_key(&s);
        }
    }
}
