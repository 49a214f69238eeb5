//! Password hashes: verifying the formats an htpasswd file or the store may hold, and
//! hashing new passwords with Argon2id.
//!
//! Supported stored formats: Argon2 PHC strings (`$argon2id$`, `$argon2i$`, `$argon2d$`),
//! bcrypt (`$2y$`, `$2b$`, `$2a$`), Apache MD5-crypt (`$apr1$`) and Apache `{SHA}`. Everything
//! else is refused with a [`PasswordError`] that names the format, never the hash itself.

use argon2::{Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest as _, Md5};
use sha1::Sha1;

use crate::secret::ct_eq;

/// Why a stored hash cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error(
        "DES crypt hashes are not supported (they keep only 8 characters); re-hash with `htpasswd -B`"
    )]
    DesCrypt,
    #[error("sha-crypt (`$5$`, `$6$`) is not supported; re-hash with `htpasswd -B`")]
    ShaCrypt,
    #[error("plaintext or unrecognized password hash; use bcrypt (`htpasswd -B`) or argon2")]
    Unrecognized,
    #[error("unsupported password hash scheme `{0}`")]
    Unsupported(String),
    #[error("malformed {kind} hash: {detail}")]
    Malformed {
        kind: &'static str,
        detail: &'static str,
    },
    #[error("cannot hash the password: {0}")]
    Hashing(String),
}

/// The family of a supported stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    Argon2,
    Bcrypt,
    Apr1,
    Sha1,
}

impl HashKind {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Argon2 => "argon2",
            Self::Bcrypt => "bcrypt",
            Self::Apr1 => "apr1",
            Self::Sha1 => "{SHA}",
        }
    }
}

/// The crypt(3) alphabet used by MD5-crypt and DES crypt.
const CRYPT64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

const APR1_MAGIC: &str = "$apr1$";

/// Checks that `stored` is a complete, well-formed hash in a supported format.
pub fn check_hash(stored: &str) -> Result<HashKind, PasswordError> {
    if stored.starts_with("$argon2") {
        parse_argon2(stored)?;
        Ok(HashKind::Argon2)
    } else if stored.starts_with("$2") {
        check_bcrypt(stored)?;
        Ok(HashKind::Bcrypt)
    } else if stored.starts_with(APR1_MAGIC) {
        split_apr1(stored)?;
        Ok(HashKind::Apr1)
    } else if stored.starts_with("{SHA}") {
        decode_sha1(stored)?;
        Ok(HashKind::Sha1)
    } else if stored.starts_with("$5$") || stored.starts_with("$6$") {
        Err(PasswordError::ShaCrypt)
    } else if let Some(rest) = stored.strip_prefix('$') {
        // A modular-crypt id we do not know (`$1$`, `$y$`, `$sha1$`, …): name only the id.
        let id: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(16)
            .collect();
        Err(PasswordError::Unsupported(format!("${id}$")))
    } else if stored.len() == 13 && stored.bytes().all(|b| CRYPT64.contains(&b)) {
        // What Apache's htpasswd -d writes: 2 salt characters and 11 hash characters.
        Err(PasswordError::DesCrypt)
    } else {
        Err(PasswordError::Unrecognized)
    }
}

/// Verifies `password` against a stored hash. `Ok(false)` is a wrong password; an error
/// means the stored hash itself is unusable.
pub fn verify_password(stored: &str, password: &[u8]) -> Result<bool, PasswordError> {
    match check_hash(stored)? {
        HashKind::Argon2 => {
            let hash = parse_argon2(stored)?;
            // The argon2 crate compares the outputs in constant time (`phc::Output`'s `Eq`).
            match Argon2::default().verify_password(password, &hash) {
                Ok(()) => Ok(true),
                Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
                Err(e) => Err(PasswordError::Hashing(e.to_string())),
            }
        }
        // bcrypt compares with `subtle` itself. Passwords past 72 bytes are truncated, as
        // every bcrypt implementation (and Apache) does.
        HashKind::Bcrypt => {
            bcrypt::verify(password, stored).map_err(|_| PasswordError::Malformed {
                kind: "bcrypt",
                detail: "the hash cannot be decoded",
            })
        }
        HashKind::Apr1 => {
            let (salt, expected) = split_apr1(stored)?;
            let computed = apr1(password, salt.as_bytes());
            Ok(ct_eq(&computed, expected.as_bytes()))
        }
        HashKind::Sha1 => {
            let expected = decode_sha1(stored)?;
            let computed: [u8; 20] = Sha1::digest(password).into();
            Ok(ct_eq(&computed, &expected))
        }
    }
}

/// Hashes `password` with Argon2id and the argon2 crate's default parameters (m=19456 KiB,
/// t=2, p=1: the OWASP Password Storage Cheat Sheet minimum) into a PHC string. The salt
/// comes from the caller, who owns the randomness.
pub fn hash_password(password: &[u8], salt: &[u8; 16]) -> Result<String, PasswordError> {
    Argon2::default()
        .hash_password_with_salt(password, salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hashing(e.to_string()))
}

/// A valid Argon2id hash (default parameters) of a random password nobody knows. Verifying
/// a presented password against it when the user does not exist costs the same as a real
/// check, so response times do not reveal which user names exist.
pub const fn dummy_hash() -> &'static str {
    DUMMY_HASH
}

const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$OQtjNv1Nxikg13pnlziOlQ$3KJL4rI8vw/BQ7DOuEIYaxtiu2dTiqTjFSR3VhtMNtI";

fn parse_argon2(stored: &str) -> Result<PasswordHash, PasswordError> {
    let malformed = |detail| PasswordError::Malformed {
        kind: "argon2",
        detail,
    };
    let hash = PasswordHash::new(stored).map_err(|_| malformed("not a valid PHC string"))?;
    if argon2::Algorithm::try_from(hash.algorithm.as_str()).is_err() {
        return Err(PasswordError::Unsupported(format!(
            "${}$",
            hash.algorithm.as_str()
        )));
    }
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err(malformed("salt or hash missing"));
    }
    argon2::Params::try_from(&hash).map_err(|_| malformed("invalid parameters"))?;
    Ok(hash)
}

/// `$2y$NN$` + 22 characters of salt + 31 of hash, in bcrypt's own base64 alphabet.
fn check_bcrypt(stored: &str) -> Result<(), PasswordError> {
    let malformed = |detail| PasswordError::Malformed {
        kind: "bcrypt",
        detail,
    };
    let b = stored.as_bytes();
    let (Some(version), Some(cost), Some(body)) = (stored.get(1..3), stored.get(4..6), b.get(7..))
    else {
        return Err(malformed("expected `$2y$NN$` and 53 characters"));
    };
    // `$2x$` marks hashes from the crypt_blowfish sign-extension bug; `$2$` is obsolete.
    if !matches!(version, "2y" | "2b" | "2a") {
        return Err(PasswordError::Unsupported(format!("${version}$")));
    }
    if b.get(3) != Some(&b'$') || b.get(6) != Some(&b'$') || body.len() != 53 {
        return Err(malformed("expected `$2y$NN$` and 53 characters"));
    }
    match cost.parse::<u32>() {
        Ok(4..=31) if cost.bytes().all(|c| c.is_ascii_digit()) => {}
        _ => return Err(malformed("the cost must be 04 to 31")),
    }
    if !body
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'/'))
    {
        return Err(malformed("invalid characters"));
    }
    Ok(())
}

/// `$apr1$<salt ≤ 8>$<22 characters>` → (salt, encoded hash).
fn split_apr1(stored: &str) -> Result<(&str, &str), PasswordError> {
    let malformed = |detail| PasswordError::Malformed {
        kind: "apr1",
        detail,
    };
    let rest = stored.strip_prefix(APR1_MAGIC).unwrap_or(stored);
    let (salt, hash) = rest
        .split_once('$')
        .ok_or_else(|| malformed("no `$` after the salt"))?;
    if salt.is_empty() || salt.len() > 8 || !salt.bytes().all(|b| CRYPT64.contains(&b)) {
        return Err(malformed("the salt must be 1 to 8 crypt characters"));
    }
    if hash.len() != 22 || !hash.bytes().all(|b| CRYPT64.contains(&b)) {
        return Err(malformed("the hash must be 22 crypt characters"));
    }
    Ok((salt, hash))
}

/// `{SHA}` + base64 of the 20-byte SHA-1 digest (Apache's `htpasswd -s`).
fn decode_sha1(stored: &str) -> Result<[u8; 20], PasswordError> {
    let malformed = || PasswordError::Malformed {
        kind: "{SHA}",
        detail: "expected the base64 of a 20-byte SHA-1 digest",
    };
    let b64 = stored.strip_prefix("{SHA}").unwrap_or(stored);
    let bytes = STANDARD.decode(b64).map_err(|_| malformed())?;
    bytes.try_into().map_err(|_| malformed())
}

/// Apache's MD5-crypt (`$apr1$`): Poul-Henning Kamp's FreeBSD MD5-crypt with the magic
/// `$apr1$` instead of `$1$` (apr-util `apr_md5_encode`). Returns the 22-character encoding.
fn apr1(password: &[u8], salt: &[u8]) -> [u8; 22] {
    let alt = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();

    let mut ctx = Md5::new();
    ctx.update(password);
    ctx.update(APR1_MAGIC.as_bytes());
    ctx.update(salt);
    for chunk in password.chunks(16) {
        ctx.update(alt.get(..chunk.len()).unwrap_or(&[]));
    }
    // For each bit of the length, low bit first: a NUL byte when set, else the first
    // password byte (the original reads a zeroed buffer, hence NUL).
    let mut n = password.len();
    while n > 0 {
        if n & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(password.get(..1).unwrap_or(&[]));
        }
        n >>= 1;
    }
    let mut fin: [u8; 16] = ctx.finalize().into();

    // 1000 rounds "to slow things down".
    for i in 0..1000 {
        let mut round = Md5::new();
        if i % 2 == 1 {
            round.update(password);
        } else {
            round.update(fin);
        }
        if i % 3 != 0 {
            round.update(salt);
        }
        if i % 7 != 0 {
            round.update(password);
        }
        if i % 2 == 1 {
            round.update(fin);
        } else {
            round.update(password);
        }
        fin = round.finalize().into();
    }

    let mut out = [0u8; 22];
    let groups = [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)];
    let mut pos = 0;
    for (a, b, c) in groups {
        let v = u32::from(fin[a]) << 16 | u32::from(fin[b]) << 8 | u32::from(fin[c]);
        pos = to64(&mut out, pos, v, 4);
    }
    to64(&mut out, pos, u32::from(fin[11]), 2);
    out
}

/// Writes the low `6 * n` bits of `v` as crypt base64, least significant first.
fn to64(out: &mut [u8], mut pos: usize, mut v: u32, n: usize) -> usize {
    for _ in 0..n {
        if let (Some(slot), Some(&c)) = (out.get_mut(pos), CRYPT64.get((v & 0x3f) as usize)) {
            *slot = c;
        }
        v >>= 6;
        pos += 1;
    }
    pos
}

#[cfg(test)]
mod tests;
