//! Revoked access tokens (row 10): `jti`s and session ids, mirrored from the store.
//!
//! The store is the durable list; every node polls it once a second with a cursor (only new
//! rows travel) and also inserts its own revocations at once, so the node that handled a
//! logout refuses the token immediately and the others within a second.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, Ordering};

use gatehouse_store::Store;

#[derive(Default)]
pub struct Revocations {
    /// id → when the revoked token would have expired anyway (unix seconds).
    ids: RwLock<HashMap<String, i64>>,
    cursor: AtomicI64,
    last_purge: AtomicI64,
}

impl Revocations {
    /// Is the token (by `jti`) or its session (by `sid`) revoked?
    pub fn is_revoked(&self, jti: Option<&str>, sid: Option<&str>) -> bool {
        let ids = match self.ids.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if ids.is_empty() {
            return false;
        }
        jti.is_some_and(|j| ids.contains_key(j)) || sid.is_some_and(|s| ids.contains_key(s))
    }

    /// Records a revocation made by this node (it is written to the store by the caller).
    pub fn insert(&self, id: String, expires_at: i64) {
        match self.ids.write() {
            Ok(mut g) => {
                g.insert(id, expires_at);
            }
            Err(p) => {
                p.into_inner().insert(id, expires_at);
            }
        }
    }

    /// Pulls new revocations from the store; keeps what it has when the store fails.
    /// Entries whose token has expired anyway are dropped (`now` plus a day of slack for
    /// clock leeway), so the set stays as small as the live revocations.
    pub async fn sync(&self, store: &dyn Store, now: i64) {
        let cursor = self.cursor.load(Ordering::Acquire);
        match store.revocations_since(cursor).await {
            Ok((rows, next)) => {
                let mut ids = match self.ids.write() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                ids.extend(rows.into_iter().map(|r| (r.id, r.expires_at)));
                if now - self.last_purge.load(Ordering::Relaxed) >= 60 {
                    ids.retain(|_, exp| *exp > now - 86_400);
                    self.last_purge.store(now, Ordering::Relaxed);
                }
                self.cursor.store(next, Ordering::Release);
            }
            Err(e) => tracing::warn!(error = %e, "could not sync revocations"),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.read().map_or(0, |g| g.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
