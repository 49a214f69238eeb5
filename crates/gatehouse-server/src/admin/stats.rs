//! The per-minute decision rollups of the console's charts: the rollups themselves are the
//! observer's ([`crate::observe::stats`]); this flushes a gateway's to its store.

use crate::gateway::Gateway;

/// Adds the gateway's decision counts since the last flush to its store, as rows of the
/// minute of `now` (see [`crate::observe::stats::Folder::flush`]). Returns the rows written.
pub async fn flush(gw: &Gateway, now: i64) -> usize {
    gw.flush_stats(now).await
}
