//! Encryption at rest for small secrets (TOTP seeds): AES-256-GCM through aws-lc-rs.
//!
//! Format: `version (1 byte) ‖ nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`. The version
//! byte is authenticated too (prefixed to the caller's AAD), so a sealed value cannot be
//! replayed under another format. The caller's AAD should bind the value to its owner (e.g.
//! the user id), so a sealed secret copied to another row does not open.
//!
//! Core reads no randomness: the caller passes a fresh random 96-bit nonce per [`seal`]. A
//! nonce must never repeat under one key; with random nonces keep a key to well under 2³²
//! seals (NIST SP 800-38D §8.3), far beyond a user table's needs.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

/// The only format so far.
const VERSION: u8 = 1;
const TAG_LEN: usize = 16;

/// Why sealing or opening failed. Deliberately coarse: which check failed is no business
/// of whoever tampered with the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretboxError {
    #[error("the sealed value is too short")]
    Truncated,
    #[error("the sealed value has unknown format version `{0}`")]
    UnknownVersion(u8),
    #[error("the sealed value does not open with this key and context")]
    Open,
    #[error("encryption failed")]
    Seal,
}

fn key(key: &[u8; 32]) -> Result<LessSafeKey, SecretboxError> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| SecretboxError::Seal)
}

/// `[VERSION] ‖ aad`.
fn full_aad(aad: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(1 + aad.len());
    a.push(VERSION);
    a.extend_from_slice(aad);
    a
}

/// Encrypts `plaintext` bound to `aad` under `key` with the caller's fresh `nonce`.
pub fn seal(
    key_bytes: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, SecretboxError> {
    let k = key(key_bytes)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.push(VERSION);
    out.extend_from_slice(nonce);
    let mut body = plaintext.to_vec();
    k.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(*nonce),
        Aad::from(full_aad(aad)),
        &mut body,
    )
    .map_err(|_| SecretboxError::Seal)?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decrypts a value made by [`seal`] with the same key and AAD.
pub fn open(
    key_bytes: &[u8; 32],
    sealed: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SecretboxError> {
    let (&version, rest) = sealed.split_first().ok_or(SecretboxError::Truncated)?;
    if version != VERSION {
        return Err(SecretboxError::UnknownVersion(version));
    }
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(SecretboxError::Truncated);
    }
    let (nonce, body) = rest.split_at(NONCE_LEN);
    let nonce = <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| SecretboxError::Truncated)?;
    let k = key(key_bytes)?;
    let mut buf = Zeroizing::new(body.to_vec());
    let len = k
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(full_aad(aad)),
            &mut buf,
        )
        .map_err(|_| SecretboxError::Open)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [3; 32];
    const NONCE: [u8; 12] = [5; 12];

    #[test]
    fn round_trip() {
        let sealed = seal(&KEY, &NONCE, b"totp seed bytes", b"user:42").unwrap();
        assert_eq!(sealed.len(), 1 + 12 + 15 + 16);
        assert_eq!(sealed[0], VERSION);
        assert_eq!(&sealed[1..13], &NONCE);
        assert!(!sealed.windows(4).any(|w| w == b"seed"));
        let opened = open(&KEY, &sealed, b"user:42").unwrap();
        assert_eq!(opened.as_slice(), b"totp seed bytes");
        let empty = seal(&KEY, &NONCE, b"", b"").unwrap();
        assert!(open(&KEY, &empty, b"").unwrap().is_empty());
    }

    #[test]
    fn fresh_nonces_give_different_ciphertexts() {
        let a = seal(&KEY, &NONCE, b"x", b"").unwrap();
        let b = seal(&KEY, &[6; 12], b"x", b"").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn any_tampered_byte_fails() {
        let sealed = seal(&KEY, &NONCE, b"secret", b"ctx").unwrap();
        for i in 1..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert_eq!(
                open(&KEY, &t, b"ctx"),
                Err(SecretboxError::Open),
                "byte {i}"
            );
        }
        let mut t = sealed.clone();
        t[0] = 2;
        assert_eq!(
            open(&KEY, &t, b"ctx"),
            Err(SecretboxError::UnknownVersion(2))
        );
        assert_eq!(
            open(&KEY, &sealed[..sealed.len() - 1], b"ctx"),
            Err(SecretboxError::Open)
        );
        assert_eq!(
            open(&KEY, &sealed[..28], b"ctx"),
            Err(SecretboxError::Truncated)
        );
        assert_eq!(open(&KEY, &[], b"ctx"), Err(SecretboxError::Truncated));
    }

    #[test]
    fn wrong_aad_or_key_fails() {
        let sealed = seal(&KEY, &NONCE, b"secret", b"user:42").unwrap();
        assert_eq!(open(&KEY, &sealed, b"user:43"), Err(SecretboxError::Open));
        assert_eq!(open(&KEY, &sealed, b""), Err(SecretboxError::Open));
        assert_eq!(
            open(&[4; 32], &sealed, b"user:42"),
            Err(SecretboxError::Open)
        );
    }
}
