//! Per-minute decision rollups for the console's charts: each node folds its answers into
//! (minute, route, status, reason) → count and adds them to the store in batches, so the
//! charts read one picture of every node, and it survives restarts.
//!
//! Nothing is added to the request path: the counts are the differences between two
//! readings of the `gatehouse_decisions_total` counters the gateway keeps anyway, taken every
//! [`FLUSH_EVERY`] and attributed to the minute of the reading (so an answer may land in the
//! minute after its own, by at most that interval). A batch the store refused is kept and
//! added with the next one; rollups older than `[admin] stats_retention` are purged.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use gatehouse_store::{StatRow, Store};

use super::Metrics;

/// How often a node adds its counts to the store.
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);

type Series = (String, u16, &'static str);
type Key = (i64, String, u16, String);

/// The counts read last and the rows the store has not taken yet.
#[derive(Default)]
pub struct Folder {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    last: HashMap<Series, u64>,
    pending: BTreeMap<Key, u64>,
    /// The hour of the last purge.
    purged_hour: i64,
}

impl Folder {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the counters of `metrics` and adds what changed since the last reading to `store`,
    /// as rows of the minute of `now`; then purges rollups older than `retention`. Returns the
    /// rows written (none when the store failed: they wait for the next flush).
    pub async fn flush(
        &self,
        metrics: &Metrics,
        store: &dyn Store,
        retention: Duration,
        now: i64,
    ) -> usize {
        let minute = now - now.rem_euclid(60);
        let counts = metrics.decision_counts();
        let rows: Vec<StatRow> = {
            let mut st = self.lock();
            for (route, status, reason, total) in counts {
                let key = (route, status, reason);
                let before = st.last.get(&key).copied().unwrap_or(0);
                if total > before {
                    *st.pending
                        .entry((minute, key.0.clone(), status, reason.to_owned()))
                        .or_default() += total - before;
                }
                st.last.insert(key, total);
            }
            std::mem::take(&mut st.pending)
                .into_iter()
                .map(|((minute, route, status, reason), count)| StatRow {
                    minute,
                    route,
                    status,
                    reason,
                    count,
                })
                .collect()
        };
        let n = rows.len();
        if n > 0
            && let Err(e) = store.add_stats(rows.clone()).await
        {
            tracing::warn!(error = %e, rows = n, "stats rollups not stored; retrying with the next batch");
            let mut st = self.lock();
            for r in rows {
                *st.pending
                    .entry((r.minute, r.route, r.status, r.reason))
                    .or_default() += r.count;
            }
            return 0;
        }
        self.purge(store, retention, now).await;
        n
    }

    /// Deletes rollups older than `retention` (`[admin] stats_retention`), once an hour per node.
    async fn purge(&self, store: &dyn Store, retention: Duration, now: i64) {
        let hour = now / 3600;
        {
            let mut st = self.lock();
            if st.purged_hour == hour {
                return;
            }
            st.purged_hour = hour;
        }
        let keep = retention.as_secs();
        let before = now.saturating_sub(i64::try_from(keep).unwrap_or(i64::MAX));
        if let Err(e) = store.purge_stats(before).await {
            tracing::warn!(error = %e, "old stats rollups not purged");
        }
    }
}
