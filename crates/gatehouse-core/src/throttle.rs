//! Failed-authentication throttling (design §2 row 4) and request quotas (row 24): pure,
//! keyed counters that take the time as an argument. The edge holds them behind a lock and
//! decides what a key is (a client IP, an account name, a route and subject).
//!
//! Policy, as documented in `docs/operations.md`:
//! - failures are counted per key in a fixed window of `per` seconds; the `max`-th failure
//!   locks the key for `per` seconds;
//! - repeat offenders wait longer: every lock within a day of the previous one doubles, up
//!   to a day;
//! - a locked key is refused before any password is hashed (the edge asks first);
//! - memory is bounded: at most `capacity` keys; expired entries go first, and when every
//!   entry is live the oldest windows are dropped.

use std::collections::HashMap;
use std::hash::Hash;

/// Longest lock, seconds.
pub const MAX_LOCK: i64 = 86_400;

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: i64,
    count: u32,
    locked_until: i64,
    strikes: u32,
    last_lock: i64,
}

impl Entry {
    fn new(now: i64) -> Self {
        Self {
            window_start: now,
            count: 0,
            locked_until: 0,
            strikes: 0,
            last_lock: i64::MIN / 2,
        }
    }
}

/// Counts failures per key and locks keys that fail too often.
#[derive(Debug)]
pub struct FailureLimiter<K> {
    max: u32,
    per: i64,
    capacity: usize,
    entries: HashMap<K, Entry>,
}

impl<K: Eq + Hash + Clone> FailureLimiter<K> {
    pub fn new(max: u32, per_secs: u64, capacity: usize) -> Self {
        Self {
            max: max.max(1),
            per: i64::try_from(per_secs.max(1)).unwrap_or(MAX_LOCK),
            capacity: capacity.max(16),
            entries: HashMap::new(),
        }
    }

    /// Seconds until `key` may try again, if it is locked.
    pub fn locked(&self, key: &K, now: i64) -> Option<u64> {
        let e = self.entries.get(key)?;
        (e.locked_until > now).then(|| u64::try_from(e.locked_until - now).unwrap_or(1))
    }

    /// Records a failure; returns the lock's length if this failure locked the key.
    pub fn failure(&mut self, key: &K, now: i64) -> Option<u64> {
        if !self.entries.contains_key(key) && self.entries.len() >= self.capacity {
            self.evict(now);
        }
        let per = self.per;
        let max = self.max;
        let e = self.entries.entry(key.clone()).or_insert(Entry::new(now));
        if now >= e.window_start + per {
            e.window_start = now;
            e.count = 0;
        }
        e.count += 1;
        if e.count < max {
            return None;
        }
        if now - e.last_lock > MAX_LOCK {
            e.strikes = 0;
        }
        let lock = per.saturating_mul(1_i64 << e.strikes.min(20)).min(MAX_LOCK);
        e.strikes += 1;
        e.last_lock = now;
        e.locked_until = now + lock;
        e.count = 0;
        e.window_start = now;
        Some(u64::try_from(lock).unwrap_or(1))
    }

    /// Locks `key` until `until` (unix seconds) without counting a failure: a lock decided
    /// elsewhere (another node of a cluster) mirrored here. An existing longer lock stays.
    pub fn lock_until(&mut self, key: &K, until: i64, now: i64) {
        if until <= now {
            return;
        }
        if !self.entries.contains_key(key) && self.entries.len() >= self.capacity {
            self.evict(now);
        }
        let e = self.entries.entry(key.clone()).or_insert(Entry::new(now));
        if until > e.locked_until {
            e.locked_until = until;
            e.last_lock = now;
            e.count = 0;
            e.window_start = now;
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keys currently locked, with the unix second each lock ends.
    pub fn locks(&self, now: i64) -> Vec<(K, i64)> {
        self.entries
            .iter()
            .filter(|(_, e)| e.locked_until > now)
            .map(|(k, e)| (k.clone(), e.locked_until))
            .collect()
    }

    /// Lifts `key`'s lock and forgets its failures and strikes (an administrator's unlock).
    /// Returns whether the key was locked at `now`.
    pub fn unlock(&mut self, key: &K, now: i64) -> bool {
        self.entries
            .remove(key)
            .is_some_and(|e| e.locked_until > now)
    }

    /// Keys currently locked.
    pub fn locked_count(&self, now: i64) -> usize {
        self.entries
            .values()
            .filter(|e| e.locked_until > now)
            .count()
    }

    fn evict(&mut self, now: i64) {
        let per = self.per;
        self.entries.retain(|_, e| {
            e.locked_until > now
                || (now < e.window_start + per && e.count > 0)
                || now - e.last_lock <= MAX_LOCK
        });
        if self.entries.len() >= self.capacity {
            // Everything is live: drop the oldest half of the windows, never a current lock.
            let mut starts: Vec<i64> = self
                .entries
                .values()
                .filter(|e| e.locked_until <= now)
                .map(|e| e.window_start)
                .collect();
            starts.sort_unstable();
            if let Some(&cut) = starts.get(starts.len() / 2) {
                self.entries
                    .retain(|_, e| e.locked_until > now || e.window_start > cut);
            }
        }
    }
}

/// A fixed-window request quota per key (row 24).
#[derive(Debug)]
pub struct Quota<K> {
    max: u32,
    per: i64,
    capacity: usize,
    entries: HashMap<K, (i64, u32)>,
}

/// The state of a quota after a request: for `RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaState {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window resets.
    pub reset: u64,
    /// The request is over the quota.
    pub exceeded: bool,
}

impl QuotaState {
    /// The state after the `count`-th request (counting this one) of a fixed window of at
    /// most `limit` requests that resets in `reset` seconds: how a counter kept elsewhere
    /// (Redis, for a cluster) reads the same as [`Quota::hit`].
    pub fn after(limit: u32, count: u64, reset: u64) -> Self {
        let limit = limit.max(1);
        let exceeded = count > u64::from(limit);
        let used = u32::try_from(count).unwrap_or(u32::MAX).min(limit);
        Self {
            limit,
            remaining: limit - used,
            reset: reset.max(1),
            exceeded,
        }
    }
}

impl<K: Eq + Hash + Clone> Quota<K> {
    pub fn new(max: u32, per_secs: u64, capacity: usize) -> Self {
        Self {
            max: max.max(1),
            per: i64::try_from(per_secs.max(1)).unwrap_or(MAX_LOCK),
            capacity: capacity.max(16),
            entries: HashMap::new(),
        }
    }

    /// Counts one request for `key`.
    pub fn hit(&mut self, key: &K, now: i64) -> QuotaState {
        if !self.entries.contains_key(key) && self.entries.len() >= self.capacity {
            let per = self.per;
            self.entries.retain(|_, (start, _)| now < *start + per);
            if self.entries.len() >= self.capacity {
                self.entries.clear();
            }
        }
        let per = self.per;
        let e = self.entries.entry(key.clone()).or_insert((now, 0));
        if now >= e.0 + per {
            *e = (now, 0);
        }
        let reset = u64::try_from(e.0 + per - now).unwrap_or(1);
        if e.1 <= self.max {
            e.1 += 1;
        }
        QuotaState::after(self.max, u64::from(e.1), reset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_and_doubles_for_repeat_offenders() {
        let mut l = FailureLimiter::new(3, 60, 100);
        let k = "1.2.3.4".to_owned();
        assert_eq!(l.failure(&k, 0), None);
        assert_eq!(l.failure(&k, 1), None);
        assert_eq!(l.locked(&k, 2), None);
        assert_eq!(l.failure(&k, 2), Some(60));
        assert_eq!(l.locked(&k, 3), Some(59));
        assert_eq!(l.locked(&k, 62), None);
        for t in 62..64 {
            assert_eq!(l.failure(&k, t), None);
        }
        assert_eq!(l.failure(&k, 64), Some(120));
        // A day later the slate is clean.
        let later = 64 + 120 + MAX_LOCK + 1;
        l.failure(&k, later);
        l.failure(&k, later);
        assert_eq!(l.failure(&k, later), Some(60));
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let mut l = FailureLimiter::new(3, 60, 100);
        let k = 1u32;
        l.failure(&k, 0);
        l.failure(&k, 30);
        assert_eq!(l.failure(&k, 61), None);
        assert_eq!(l.failure(&k, 62), None);
        assert_eq!(l.failure(&k, 63), Some(60));
    }

    #[test]
    fn memory_is_bounded_and_locks_survive_eviction() {
        let mut l = FailureLimiter::new(2, 60, 64);
        let victim = u32::MAX;
        l.failure(&victim, 0);
        assert!(l.failure(&victim, 0).is_some());
        for k in 0..10_000u32 {
            l.failure(&k, 1);
            assert!(l.len() <= 64);
        }
        assert!(l.locked(&victim, 2).is_some());
    }

    #[test]
    fn quota_counts_a_fixed_window() {
        let mut q = Quota::new(2, 60, 100);
        let k = ("r", "bob");
        let a = q.hit(&k, 0);
        assert_eq!((a.remaining, a.exceeded, a.reset), (1, false, 60));
        assert!(!q.hit(&k, 10).exceeded);
        let c = q.hit(&k, 20);
        assert!(c.exceeded);
        assert_eq!(c.reset, 40);
        assert!(!q.hit(&k, 60).exceeded);
    }

    #[test]
    fn quota_state_from_a_shared_count_matches_the_local_quota() {
        let mut q = Quota::new(3, 60, 100);
        for (i, t) in [0, 5, 10, 15, 20].into_iter().enumerate() {
            let local = q.hit(&"k", t);
            let shared = QuotaState::after(3, i as u64 + 1, u64::try_from(60 - t).unwrap());
            assert_eq!(local, shared, "request {}", i + 1);
        }
    }

    #[test]
    fn a_mirrored_lock_holds_until_its_end_and_never_shortens_one() {
        let mut l = FailureLimiter::new(3, 60, 100);
        let k = "acct".to_owned();
        l.lock_until(&k, 100, 10);
        assert_eq!(l.locked(&k, 10), Some(90));
        l.lock_until(&k, 50, 20);
        assert_eq!(l.locked(&k, 20), Some(80));
        l.lock_until(&k, 5, 20);
        assert_eq!(l.locked(&k, 100), None);
        assert_eq!(l.locked_count(99), 1);
    }
}
