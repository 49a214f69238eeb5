//! The one error type of every [`Store`](crate::Store) operation.

/// Why a store operation failed.
///
/// Messages are safe to log: they name the record (a user name, a key id or prefix, a `kid`)
/// but never carry a password hash, key hash, private key or connection password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The record to create already exists (same user name, key id, key prefix or `kid`).
    #[error("{what} `{key}` already exists")]
    Conflict { what: &'static str, key: String },
    /// The record to read or change does not exist.
    #[error("{what} `{key}` not found")]
    NotFound { what: &'static str, key: String },
    /// A value handed to the store is malformed (e.g. a Digest HA1 that is not a hex digest of
    /// its algorithm). The message describes the expected form, never the value.
    #[error("invalid {what}: {expected}")]
    Invalid {
        what: &'static str,
        expected: String,
    },
    /// The database failed (IO, lock timeout, corrupt row, ...). The server answers 503
    /// `auth_unavailable` (design §2 row 22), never 401/403, for this.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The database was migrated by a newer Gatehouse than this build.
    #[error(
        "database schema version {found} is newer than this build supports (up to {supported}); \
         run a newer gatehouse against it"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    /// The database lacks migrations of this build, and the operation does not migrate (it
    /// opened the database only to read it, as `gatehouse copy` opens its source).
    #[error(
        "database schema version {found} is older than this build's ({supported}); migrate it \
         first (`gatehouse migrate` with it as `[store] url`)"
    )]
    SchemaTooOld { found: i64, supported: i64 },
    /// A migration that was applied to this database differs from the one in this build.
    #[error("migration {version} applied to this database differs from the one in this build")]
    MigrationChanged { version: i64 },
    /// An import found records in the store it was to fill
    /// ([`Store::import_from`](crate::Store::import_from)). Nothing was written.
    #[error("store is not empty ({holds}): import only into an empty store")]
    NotEmpty { holds: String },
    /// After an import, some table holds a different number of rows than its source (which
    /// changed during the copy, or lost rows on the way). Nothing was written.
    #[error("the copy does not match its source ({0}); nothing was written")]
    CopyMismatch(String),
    /// The store URL cannot be used.
    #[error("invalid store url: {0}")]
    InvalidUrl(String),
}

impl StoreError {
    pub(crate) fn not_found(what: &'static str, key: &str) -> Self {
        Self::NotFound {
            what,
            key: key.to_owned(),
        }
    }

    pub(crate) fn conflict(what: &'static str, key: &str) -> Self {
        Self::Conflict {
            what,
            key: key.to_owned(),
        }
    }

    /// `Unavailable` for a database error during `op`.
    pub(crate) fn db(op: &'static str, err: impl std::fmt::Display) -> Self {
        Self::Unavailable(format!("{op}: {err}"))
    }

    /// `Unavailable` for a row the database returned that violates our own invariants.
    pub(crate) fn corrupt(what: &'static str, key: &str, detail: impl std::fmt::Display) -> Self {
        Self::Unavailable(format!("corrupt {what} `{key}`: {detail}"))
    }
}
