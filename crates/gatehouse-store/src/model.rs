//! The records the store keeps. `Debug` of every record redacts its secret parts.

mod audit;
mod export;
mod identity;

use std::fmt;

pub use audit::{AuditEntry, AuditKind, AuditQuery, AuditRecord, StatRow, StatsQuery};
pub use export::{DigestSecret, Export, RecordCounts, RefreshToken, RevocationEntry, UserRecord};
pub use identity::{
    DigestAlgorithm, DigestHa1, NewSession, Revocation, RevocationKind, RotateOutcome, Session,
};

/// Account state of a local user (design §2 row 13). The same type the decision core reads
/// from a [`Principal`](gatehouse_core::Principal), so no conversion is needed.
pub use gatehouse_core::AccountState as AccountStatus;

pub(crate) const REDACTED: &str = "<redacted>";

/// Prints `Some("<redacted>")` or `None`: whether a secret is set, never the secret.
fn redacted_option<T>(value: &Option<T>) -> Option<&'static str> {
    value.as_ref().map(|_| REDACTED)
}

/// A local account.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// PHC string (argon2, bcrypt, ...). `None` for accounts that only use API keys.
    pub password_hash: Option<String>,
    pub roles: Vec<String>,
    pub tenant: Option<String>,
    pub status: AccountStatus,
    /// Unix seconds.
    pub created_at: i64,
    /// TOTP secret (RFC 6238), encrypted by the caller: opaque bytes to the store. `None` =
    /// MFA not enrolled. Set with [`Store::set_mfa_secret`](crate::Store::set_mfa_secret).
    pub mfa_secret: Option<Vec<u8>>,
    /// Attributes (issue 13), read by route requirements (row 25) and `when` expressions.
    /// Set with [`Store::update_attributes`](crate::Store::update_attributes).
    pub attributes: gatehouse_core::attributes::Attributes,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("password_hash", &redacted_option(&self.password_hash))
            .field("roles", &self.roles)
            .field("tenant", &self.tenant)
            .field("status", &self.status)
            .field("created_at", &self.created_at)
            .field("mfa_secret", &redacted_option(&self.mfa_secret))
            .field("attributes", &self.attributes)
            .finish()
    }
}

/// What [`Store::create_user`](crate::Store::create_user) needs.
#[derive(Clone, Default)]
pub struct NewUser {
    pub name: String,
    pub password_hash: Option<String>,
    pub roles: Vec<String>,
    pub tenant: Option<String>,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("name", &self.name)
            .field("password_hash", &redacted_option(&self.password_hash))
            .field("roles", &self.roles)
            .field("tenant", &self.tenant)
            .finish()
    }
}

/// An API key as stored: the key itself is shown once at creation and never kept, only its
/// SHA-256 (a fast hash is right for 256-bit random keys) and its public lookup prefix.
/// (`==` compares every field, the hash too, in variable time: to check a presented key use
/// [`hash_matches`](Self::hash_matches).)
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    /// Public part of the key, unique, used to find the record in O(1).
    pub prefix: String,
    /// SHA-256 of the full key.
    pub hash: [u8; 32],
    /// Name of the owning [`User`].
    pub user: String,
    pub scopes: Vec<String>,
    pub read_only: bool,
    /// Unix seconds; `None` = never expires.
    pub expires_at: Option<i64>,
    /// Unix seconds; `None` = not revoked.
    pub revoked_at: Option<i64>,
    pub label: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl ApiKey {
    /// Constant-time comparison of `candidate` (SHA-256 of a presented key) with the stored hash.
    pub fn hash_matches(&self, candidate: &[u8; 32]) -> bool {
        gatehouse_core::secret::ct_eq(&self.hash, candidate)
    }

    /// True when the key is neither revoked nor expired at `now` (unix seconds). A key whose
    /// `expires_at` equals `now` is expired.
    pub fn is_usable(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|exp| now < exp)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("prefix", &self.prefix)
            .field("hash", &REDACTED)
            .field("user", &self.user)
            .field("scopes", &self.scopes)
            .field("read_only", &self.read_only)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .field("label", &self.label)
            .field("created_at", &self.created_at)
            .field("last_used_at", &self.last_used_at)
            .finish()
    }
}

/// What [`Store::create_api_key`](crate::Store::create_api_key) needs.
#[derive(Clone)]
pub struct NewApiKey {
    pub id: String,
    pub prefix: String,
    pub hash: [u8; 32],
    pub user: String,
    pub scopes: Vec<String>,
    pub read_only: bool,
    pub expires_at: Option<i64>,
    pub label: Option<String>,
}

impl fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApiKey")
            .field("id", &self.id)
            .field("prefix", &self.prefix)
            .field("hash", &REDACTED)
            .field("user", &self.user)
            .field("scopes", &self.scopes)
            .field("read_only", &self.read_only)
            .field("expires_at", &self.expires_at)
            .field("label", &self.label)
            .finish()
    }
}

/// A key Gatehouse signs its own access tokens with (design §2: EdDSA by default, `kid` set,
/// rotated). Retired keys stay listed so tokens they signed verify until they expire.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub kid: String,
    /// JWS `alg` (RFC 7518 §3.1 / RFC 8037 §3.1), e.g. `EdDSA`.
    pub algorithm: String,
    /// PKCS#8 DER of the private key.
    pub private_pkcs8: Vec<u8>,
    /// Raw public key bytes (32 bytes for Ed25519).
    pub public: Vec<u8>,
    pub created_at: i64,
    /// Unix seconds; `None` = current signing key.
    pub retired_at: Option<i64>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use base64::Engine as _;
        let public = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.public);
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("private_pkcs8", &REDACTED)
            .field("public", &public)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ApiKey {
        ApiKey {
            id: "k".into(),
            prefix: "gh_k".into(),
            hash: [7; 32],
            user: "u".into(),
            scopes: Vec::new(),
            read_only: false,
            expires_at: None,
            revoked_at: None,
            label: None,
            created_at: 0,
            last_used_at: None,
        }
    }

    #[test]
    fn usability_follows_revocation_and_expiry() {
        let forever = key();
        assert!(forever.is_usable(i64::MAX));
        let expiring = ApiKey {
            expires_at: Some(100),
            ..key()
        };
        assert!(expiring.is_usable(99));
        assert!(
            !expiring.is_usable(100),
            "expires_at is the first unusable second"
        );
        let revoked = ApiKey {
            revoked_at: Some(5),
            ..key()
        };
        assert!(!revoked.is_usable(0));
    }

    #[test]
    fn hash_comparison_is_exact() {
        let k = key();
        assert!(k.hash_matches(&[7; 32]));
        let mut other = [7; 32];
        other[31] = 8;
        assert!(!k.hash_matches(&other));
    }

    #[test]
    fn debug_shows_whether_a_password_is_set() {
        let none = NewUser {
            name: "a".into(),
            ..NewUser::default()
        };
        assert!(format!("{none:?}").contains("password_hash: None"));
        let some = NewUser {
            password_hash: Some("$2b$xyz".into()),
            ..none
        };
        let text = format!("{some:?}");
        assert!(
            text.contains("Some(\"<redacted>\")") && !text.contains("xyz"),
            "{text}"
        );
    }
}
