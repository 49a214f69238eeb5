//! Single flight for verifications: requests that arrive while one verification of the
//! same credential runs share its answer instead of each running it again.

use std::collections::HashMap;
use std::sync::Arc;

use gatehouse_core::deny::Deny;

/// Verifications in flight, by cache key (the gateway's Basic password checks and bearer
/// token verifications). Requests that arrive while one runs share its answer; once it
/// is answered the entry goes, so later requests use the cache (a success) or verify again
/// (a failure, or the store's outage, is never kept).
pub struct InFlight<T> {
    map: std::sync::Mutex<HashMap<[u8; 32], Arc<Flight<T>>>>,
}

impl<T> Default for InFlight<T> {
    fn default() -> Self {
        Self {
            map: std::sync::Mutex::default(),
        }
    }
}

type Flight<T> = tokio::sync::OnceCell<Result<T, Deny>>;

/// One request's part in a verification; leaving removes the entry when it is answered or
/// nobody else waits for it (a verification whose requests all gave up leaves nothing
/// behind).
pub(crate) struct Joined<'a, T> {
    inflight: &'a InFlight<T>,
    key: [u8; 32],
    cell: Arc<Flight<T>>,
}

impl<T> InFlight<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<Flight<T>>>> {
        match self.map.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Joins the check of `key` in flight, or starts one.
    fn join(&self, key: [u8; 32]) -> Joined<'_, T> {
        let cell = Arc::clone(self.lock().entry(key).or_default());
        Joined {
            inflight: self,
            key,
            cell,
        }
    }

    /// Runs `verify` for `key` unless a run is in flight, whose answer it then shares.
    pub async fn once<F>(&self, key: [u8; 32], verify: impl FnOnce() -> F) -> Result<T, Deny>
    where
        F: Future<Output = Result<T, Deny>>,
        T: Clone,
    {
        let flight = self.join(key);
        let result = flight.cell.get_or_init(verify).await.clone();
        drop(flight);
        result
    }

    /// Checks in flight now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Drop for Joined<'_, T> {
    fn drop(&mut self) {
        let mut map = self.inflight.lock();
        // Two references when nobody else waits: the map's and ours.
        if map
            .get(&self.key)
            .is_some_and(|c| Arc::ptr_eq(c, &self.cell))
            && (self.cell.initialized() || Arc::strong_count(&self.cell) == 2)
        {
            map.remove(&self.key);
        }
    }
}
