//! Forced re-reads of keys after an unknown `kid`: single flight, with a floor between
//! them. One pattern serves an external issuer's JWKS (an HTTP fetch) and our own signing
//! keys (a store read): a token with a `kid` we do not know may be signed with a key that is
//! newer than ours, but a flood of forged `kid`s must not turn into a flood of fetches.
//!
//! - Concurrent callers wait for the read in flight and share its outcome.
//! - After a read started, none starts again before `floor` has passed: callers within the
//!   floor decide with the keys they have (or get the last read's failure).

use std::future::Future;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One key source's forced re-reads.
#[derive(Debug)]
pub struct Refetch {
    floor: Duration,
    /// Serializes the reads (single flight).
    flight: tokio::sync::Mutex<()>,
    state: StdMutex<State>,
    /// Reads started so far (metrics; the tests count with it).
    reads: AtomicU64,
}

#[derive(Debug, Default, Clone, Copy)]
struct State {
    last_attempt: Option<Instant>,
    last_ok: Option<Instant>,
}

impl Refetch {
    /// At most one read per `floor`.
    pub fn new(floor: Duration) -> Self {
        Self {
            floor,
            flight: tokio::sync::Mutex::new(()),
            state: StdMutex::new(State::default()),
            reads: AtomicU64::new(0),
        }
    }

    /// Runs `read` (which says whether it succeeded) unless another caller's read is in
    /// flight or one started less than `floor` ago; then that read's outcome is returned.
    pub async fn run<F, Fut>(&self, read: F) -> bool
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = bool>,
    {
        let seen = self.reads();
        let _flight = self.flight.lock().await;
        let state = self.state();
        if let Some(at) = state.last_attempt
            && (self.reads() > seen || at.elapsed() < self.floor)
        {
            // Read while we waited, or just before: decide with what that read left.
            return state.last_ok == state.last_attempt;
        }
        let started = Instant::now();
        self.reads.fetch_add(1, Ordering::Relaxed);
        let ok = read().await;
        if let Ok(mut s) = self.state.lock() {
            s.last_attempt = Some(started);
            if ok {
                s.last_ok = Some(started);
            }
        }
        ok
    }

    /// When the last successful read started, if any succeeded.
    pub fn last_ok(&self) -> Option<Instant> {
        self.state().last_ok
    }

    /// Reads started so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    fn state(&self) -> State {
        self.state.lock().map(|s| *s).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_within_the_floor_reads_once() {
        let refetch = Arc::new(Refetch::new(Duration::from_secs(3600)));
        let gate = Arc::new(tokio::sync::Notify::new());
        let callers: Vec<_> = (0..64)
            .map(|_| {
                let (refetch, gate) = (Arc::clone(&refetch), Arc::clone(&gate));
                tokio::spawn(async move {
                    refetch
                        .run(|| async move {
                            // Held until every caller is queued behind this read.
                            gate.notified().await;
                            true
                        })
                        .await
                })
            })
            .collect();
        // The first read waits on `gate`; release it once it has started.
        while refetch.reads() == 0 {
            tokio::task::yield_now().await;
        }
        gate.notify_one();
        for c in callers {
            assert!(
                c.await.expect("caller"),
                "every caller shares the good read"
            );
        }
        // Later callers within the floor do not read again either.
        assert!(
            refetch
                .run(|| async { unreachable!("read within the floor") })
                .await
        );
        assert_eq!(refetch.reads(), 1);
    }

    #[tokio::test]
    async fn a_failed_read_is_reported_until_the_floor_passes() {
        let refetch = Refetch::new(Duration::from_secs(3600));
        assert!(!refetch.run(|| async { false }).await);
        assert!(!refetch.run(|| async { true }).await, "within the floor");
        assert_eq!(refetch.reads(), 1);
        assert_eq!(refetch.last_ok(), None);
    }

    #[tokio::test]
    async fn past_the_floor_each_call_reads() {
        let refetch = Refetch::new(Duration::ZERO);
        for n in 1..=3 {
            assert!(refetch.run(|| async { true }).await);
            assert_eq!(refetch.reads(), n);
        }
        assert!(refetch.last_ok().is_some());
    }
}
