//! Records of the identity features (design §2 "Tokens and sessions"): sessions and their
//! refresh-token families, the access-token revocation list, Digest HA1 secrets.

use std::fmt;

use super::REDACTED;

/// One login: one session, one refresh-token family (crates.md §3.3).
///
/// A session lives as long as its current refresh token: `expires_at` is that token's expiry
/// and moves with every rotation. Revoking it ends the family and, through a
/// [`RevocationKind::Session`] row, every access token carrying its id (row 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    /// Name of the [`User`](crate::User).
    pub user: String,
    /// Authentication context class of the login (e.g. `pwd`, `mfa`), raised by step-up.
    pub acr: String,
    /// Unix seconds of the authentication `acr` describes (OIDC `auth_time`).
    pub auth_time: i64,
    /// Authentication methods of the login (RFC 8176: `pwd`, `otp`, `hwk`, …; a login
    /// provider's own), for the `amr` of the tokens minted from the session.
    pub amr: Vec<String>,
    pub created_at: i64,
    /// Unix seconds; the first second the session is unusable.
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoke_reason: Option<String>,
    /// Unix seconds of the last successful rotation.
    pub last_refresh_at: Option<i64>,
}

impl Session {
    /// Neither revoked nor expired at `now`. A session whose `expires_at` equals `now` is
    /// expired.
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// What [`Store::create_session`](crate::Store::create_session) needs.
#[derive(Clone)]
pub struct NewSession {
    pub id: String,
    pub user: String,
    pub acr: String,
    pub auth_time: i64,
    /// RFC 8176 authentication methods (see [`Session::amr`]).
    pub amr: Vec<String>,
    /// End of the first refresh token's life (`now + refresh_ttl`).
    pub expires_at: i64,
    /// SHA-256 of the first refresh token (generation 0).
    pub first_refresh: [u8; 32],
}

impl fmt::Debug for NewSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSession")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("acr", &self.acr)
            .field("auth_time", &self.auth_time)
            .field("amr", &self.amr)
            .field("expires_at", &self.expires_at)
            .field("first_refresh", &REDACTED)
            .finish()
    }
}

/// Result of [`Store::rotate_refresh`](crate::Store::rotate_refresh).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The presented token was current: it is now used and `next` is the session's current
    /// token. Carries the session after the rotation.
    Rotated(Session),
    /// The presented token had already been used: someone replays an old token, so the
    /// whole family is revoked (theft detection). Carries the session after revocation; a
    /// session revoked earlier keeps its first time and reason.
    Reused { session: Session },
    /// The token or its session expired.
    Expired,
    /// The session was revoked (logout, admin, earlier theft detection).
    Revoked,
    /// No such token.
    Unknown,
}

/// What a revocation names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationKind {
    /// One access token, by its `jti`.
    Token,
    /// Every access token carrying this session id.
    Session,
}

impl RevocationKind {
    /// The stored spelling: `token` or `session`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Session => "session",
        }
    }

    /// Inverse of [`as_str`](Self::as_str).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "token" => Some(Self::Token),
            "session" => Some(Self::Session),
            _ => None,
        }
    }
}

/// An entry of the access-token revocation list (design §2 row 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// A `jti` or a session id, per `kind`.
    pub id: String,
    pub kind: RevocationKind,
    /// Unix seconds when what is revoked expires anyway; the entry is purged after it.
    pub expires_at: i64,
    pub reason: String,
}

/// Digest hash algorithms whose HA1 the store keeps (RFC 7616 §3.3). The `-sess` variants
/// derive their HA1 from the same stored H(user:realm:password) (§3.4.2), so they use the
/// entry of their base algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    Md5,
    Sha256,
}

impl DigestAlgorithm {
    /// The RFC 7616 token: `MD5` or `SHA-256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha256 => "SHA-256",
        }
    }

    /// Inverse of [`as_str`](Self::as_str).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "MD5" => Some(Self::Md5),
            "SHA-256" => Some(Self::Sha256),
            _ => None,
        }
    }

    /// Length of a hex digest of this algorithm (32 for MD5, 64 for SHA-256).
    pub fn hex_len(self) -> usize {
        match self {
            Self::Md5 => 32,
            Self::Sha256 => 64,
        }
    }
}

/// A Digest secret for one (user, realm, algorithm), both values as hex digests of
/// [`DigestAlgorithm`]: `ha1` = H(user:realm:password) (RFC 7616 §3.4.2), a password
/// equivalent, and `userhash` = H(user:realm) (§3.4.4). Upper-case hex is accepted and stored
/// lower-case, the form Digest computes with.
#[derive(Clone, PartialEq, Eq)]
pub struct DigestHa1 {
    pub ha1: String,
    pub userhash: String,
}

impl fmt::Debug for DigestHa1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestHa1")
            .field("ha1", &REDACTED)
            .field("userhash", &self.userhash)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_kinds_round_trip() {
        for kind in [RevocationKind::Token, RevocationKind::Session] {
            assert_eq!(RevocationKind::parse(kind.as_str()), Some(kind));
        }
        for alg in [DigestAlgorithm::Md5, DigestAlgorithm::Sha256] {
            assert_eq!(DigestAlgorithm::parse(alg.as_str()), Some(alg));
        }
        assert_eq!(DigestAlgorithm::parse("md5"), None);
        assert_eq!(RevocationKind::parse("Token"), None);
    }

    #[test]
    fn session_activity_follows_revocation_and_expiry() {
        let s = Session {
            id: "s".into(),
            user: "u".into(),
            acr: "pwd".into(),
            auth_time: 0,
            amr: Vec::new(),
            created_at: 0,
            expires_at: 100,
            revoked_at: None,
            revoke_reason: None,
            last_refresh_at: None,
        };
        assert!(s.is_active(99) && !s.is_active(100));
        let revoked = Session {
            revoked_at: Some(1),
            revoke_reason: Some("logout".into()),
            ..s
        };
        assert!(!revoked.is_active(0));
    }

    #[test]
    fn debug_hides_refresh_hash_and_ha1() {
        let new = NewSession {
            id: "s1".into(),
            user: "alice".into(),
            acr: "pwd".into(),
            auth_time: 1,
            amr: vec!["pwd".into()],
            expires_at: 2,
            first_refresh: [0xAB; 32],
        };
        let text = format!("{new:?}");
        assert!(text.contains("s1") && text.contains("<redacted>"), "{text}");
        assert!(!text.contains("171"), "hash bytes printed: {text}");
        let secret = DigestHa1 {
            ha1: "939e7578ed9e3c518a452acee763bce9".into(),
            userhash: "userhash-hex".into(),
        };
        let text = format!("{secret:?}");
        assert!(
            !text.contains("939e75") && text.contains("userhash-hex"),
            "{text}"
        );
    }
}
