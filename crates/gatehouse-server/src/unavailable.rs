//! Row 22 (`auth_unavailable`): a dependency of ours — the store, the hashing pool, a login
//! provider — did not answer. Never a 401: the client is told to come back.

/// Row 22: our own dependency failed. Clients may retry after this many seconds.
pub const RETRY_AFTER_UNAVAILABLE: u64 = 5;
