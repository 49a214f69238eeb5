//! The verified-credential cache (issue: "successful verifications … are not repeated per
//! request"): a bounded, sharded map from a digest of the credential to what verifying it
//! proved, with a deadline. Only successes are cached. The key is never the credential
//! itself: a SHA-256 of a bearer token, an HMAC (per-process random key) of a Basic pair, so
//! the cache holds nothing that could be replayed. Checks that must be current — revocation,
//! suspension — run after a hit, every time.

mod bearer;

pub use bearer::BearerCache;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

const SHARDS: usize = 16;

/// Hit and miss counters of one cache (exported as metrics).
#[derive(Debug, Default)]
pub struct HitMiss {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

impl HitMiss {
    pub fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }
    pub fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counters of the credential caches, by kind.
#[derive(Debug, Default)]
pub struct CacheStats {
    pub bearer: HitMiss,
    pub basic: HitMiss,
}

/// One shard: digest → (value, deadline).
type Shard<V> = Mutex<HashMap<[u8; 32], (V, i64)>>;

/// A bounded map with per-entry deadlines (unix seconds).
pub struct TtlCache<V> {
    shards: Vec<Shard<V>>,
    per_shard: usize,
}

impl<V: Clone> TtlCache<V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: (capacity / SHARDS).max(16),
        }
    }

    fn shard(&self, key: &[u8; 32]) -> &Shard<V> {
        &self.shards[usize::from(key[0]) % SHARDS]
    }

    pub fn get(&self, key: &[u8; 32], now: i64) -> Option<V> {
        let map = match self.shard(key).lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        map.get(key)
            .filter(|(_, until)| *until > now)
            .map(|(v, _)| v.clone())
    }

    pub fn insert(&self, key: [u8; 32], value: V, until: i64, now: i64) {
        if until <= now {
            return;
        }
        let mut map = match self.shard(&key).lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if map.len() >= self.per_shard && !map.contains_key(&key) {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= self.per_shard {
                // Still full of live entries: start this shard over rather than grow.
                map.clear();
            }
        }
        map.insert(key, (value, until));
    }

    /// Drops every entry for which `f` is true (e.g. a user's entries on suspension).
    pub fn remove_where(&self, f: impl Fn(&V) -> bool) {
        for s in &self.shards {
            let mut map = match s.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            map.retain(|_, (v, _)| !f(v));
        }
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |m| m.len()))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_and_bounds() {
        let c: TtlCache<u32> = TtlCache::new(16 * 16);
        c.insert([1; 32], 7, 100, 0);
        assert_eq!(c.get(&[1; 32], 99), Some(7));
        assert_eq!(c.get(&[1; 32], 100), None);
        c.insert([2; 32], 8, 5, 10);
        assert_eq!(
            c.get(&[2; 32], 10),
            None,
            "already expired entries are not stored"
        );
        for i in 0..10_000u32 {
            let mut k = [0u8; 32];
            k[..4].copy_from_slice(&i.to_le_bytes());
            c.insert(k, i, 1_000, 1);
        }
        assert!(c.len() <= 16 * 16);
        c.remove_where(|v| *v % 2 == 0);
        assert!(c.len() <= 16 * 8 + 16);
    }
}
