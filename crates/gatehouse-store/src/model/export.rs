//! What moves when one store is copied into another (`gatehouse copy`, design §5: a
//! single-node install becoming a cluster): every durable record as it is stored, with its
//! ids, times, hashes and sequence numbers, so that nothing issued before the copy notices.

use std::fmt;

use super::{ApiKey, DigestAlgorithm, DigestHa1, REDACTED, Revocation, Session, SigningKey, User};

/// Every record of a store but the audit trail, read in one snapshot by
/// [`Store::export`](crate::Store::export). (The audit trail can be large: it is paged with
/// [`Store::export_audit`](crate::Store::export_audit).)
///
/// Signing keys include the cluster master secret (kept as a signing-key row), so tokens,
/// session cookies, MFA tokens and Digest nonces issued before the copy stay valid after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Export {
    /// By name.
    pub users: Vec<UserRecord>,
    /// By id.
    pub api_keys: Vec<ApiKey>,
    /// By `kid`.
    pub signing_keys: Vec<SigningKey>,
    /// By id.
    pub sessions: Vec<Session>,
    /// By hash.
    pub refresh_tokens: Vec<RefreshToken>,
    /// By `seq`.
    pub revocations: Vec<RevocationEntry>,
    /// By user, realm and algorithm.
    pub digest_secrets: Vec<DigestSecret>,
    /// The highest revocation `seq` ever handed out: at least the last listed one, more when
    /// the newest entries were purged. The copy hands out numbers above it only.
    pub revocation_seq: i64,
    /// The same for the audit trail.
    pub audit_seq: i64,
    /// The per-minute decision rollups (the console's charts).
    pub decision_stats: Vec<crate::model::StatRow>,
}

/// A [`User`] with what only the store reads: the last accepted TOTP time-step (RFC 6238
/// §5.2), so a code used before the copy is still refused after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub user: User,
    pub mfa_last_step: Option<i64>,
}

/// A refresh token of a session's family, as stored: SHA-256 of the token, never the token.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// SHA-256 of the token.
    pub hash: [u8; 32],
    pub session_id: String,
    /// 0 for the login's token, +1 per rotation.
    pub generation: i64,
    /// Hash of the token this one replaced.
    pub parent_hash: Option<[u8; 32]>,
    pub created_at: i64,
    pub expires_at: i64,
    /// When it was rotated (a used token coming back revokes the family).
    pub used_at: Option<i64>,
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshToken")
            .field("hash", &REDACTED)
            .field("session_id", &self.session_id)
            .field("generation", &self.generation)
            .field("parent_hash", &self.parent_hash.map(|_| REDACTED))
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("used_at", &self.used_at)
            .finish()
    }
}

/// An entry of the revocation list with its sequence number (the cursor nodes poll by).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationEntry {
    pub seq: i64,
    pub revocation: Revocation,
}

/// The Digest secret of one (user, realm, algorithm).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestSecret {
    pub user: String,
    pub realm: String,
    pub algorithm: DigestAlgorithm,
    /// `Debug` redacts the HA1 (a password equivalent).
    pub secret: DigestHa1,
}

/// Rows per table: what [`Store::count_records`](crate::Store::count_records) finds and
/// [`Store::import_from`](crate::Store::import_from) copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordCounts {
    pub users: u64,
    pub api_keys: u64,
    pub signing_keys: u64,
    pub sessions: u64,
    pub refresh_tokens: u64,
    pub revocations: u64,
    pub digest_secrets: u64,
    pub audit: u64,
    pub decision_stats: u64,
}

impl RecordCounts {
    /// `(table, rows)` for every table that holds records, in the order an import fills them
    /// (owners before what refers to them). A migration that adds a table adds it here and to
    /// the copy (a conformance test lists the tables of the schema to make sure).
    pub fn tables(&self) -> [(&'static str, u64); 9] {
        [
            ("users", self.users),
            ("api_keys", self.api_keys),
            ("signing_keys", self.signing_keys),
            ("sessions", self.sessions),
            ("refresh_tokens", self.refresh_tokens),
            ("revocations", self.revocations),
            ("digest_secrets", self.digest_secrets),
            ("audit", self.audit),
            ("decision_stats", self.decision_stats),
        ]
    }

    /// No table holds a row.
    pub fn is_empty(&self) -> bool {
        self.tables().iter().all(|&(_, n)| n == 0)
    }

    /// The tables that hold rows, as `users: 2, signing_keys: 1`; `nothing` when empty.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .tables()
            .iter()
            .filter(|&&(_, n)| n > 0)
            .map(|(table, n)| format!("{table}: {n}"))
            .collect();
        if parts.is_empty() {
            "nothing".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_name_their_tables() {
        let counts = RecordCounts {
            users: 2,
            signing_keys: 1,
            ..RecordCounts::default()
        };
        assert!(!counts.is_empty());
        assert_eq!(counts.summary(), "users: 2, signing_keys: 1");
        assert_eq!(counts.tables()[2], ("signing_keys", 1));
        assert!(RecordCounts::default().is_empty());
        assert_eq!(RecordCounts::default().summary(), "nothing");
    }

    #[test]
    fn debug_hides_refresh_hashes() {
        let token = RefreshToken {
            hash: [0xAB; 32],
            session_id: "s1".into(),
            generation: 1,
            parent_hash: Some([0xCD; 32]),
            created_at: 1,
            expires_at: 2,
            used_at: None,
        };
        let text = format!("{token:?}");
        assert!(text.contains("s1") && text.contains(REDACTED), "{text}");
        assert!(!text.contains("171") && !text.contains("205"), "{text}");
    }
}
