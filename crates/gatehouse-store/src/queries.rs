//! The queries of both backends, written once: this module is compiled twice, as
//! `sqlite::queries` and `postgres::queries` (a `#[path]` module in `sqlite.rs` and
//! `postgres.rs`), each time against the parent backend's `dialect` module. The dialect gives
//! `Db` (the `sqlx::Database`), the store type, and what differs between the backends: how a
//! write transaction starts (`BEGIN IMMEDIATE` on SQLite), row locks (`FOR UPDATE` on
//! PostgreSQL, nothing under SQLite's single writer), the revocation advisory lock, byte-order
//! collation and the migration bookkeeping. Placeholders are `$1`, `$2`, ... on both: sqlx's
//! SQLite driver reads `$N` as `?N` (SQL built at run time with many parameters takes them
//! from `dialect::push_param`: anonymous `?` on SQLite, whose named ones bind in quadratic time).
//!
//! So one body serves both backends with concrete types (no trait bounds to carry around),
//! the conformance suite checks both, and every difference in behaviour is named in one place
//! per backend.

use super::dialect;

#[path = "queries/audit.rs"]
mod audit;
#[path = "queries/copy.rs"]
mod copy;
#[path = "queries/digest.rs"]
mod digest;
#[path = "queries/keys.rs"]
mod keys;
#[path = "queries/migrate.rs"]
pub(super) mod migrate;
#[path = "queries/revocations.rs"]
mod revocations;
#[path = "queries/sessions.rs"]
mod sessions;
#[path = "queries/stats.rs"]
mod stats;
#[path = "queries/store.rs"]
mod store;
#[path = "queries/users.rs"]
mod users;
