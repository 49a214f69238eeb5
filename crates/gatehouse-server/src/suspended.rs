//! Suspended local accounts, for tokens (row 13). Basic and API keys read the account from
//! the store on every verification; a token is self-contained, so the set of suspended
//! users is kept in memory and refreshed from the store every second — a suspension made by
//! `gatehouse user suspend` in another process takes effect within that interval.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use gatehouse_core::principal::AccountState;
use gatehouse_store::Store;

#[derive(Default)]
pub struct SuspendedUsers {
    map: RwLock<Arc<HashMap<String, AccountState>>>,
}

impl SuspendedUsers {
    pub fn get(&self, user: &str) -> Option<AccountState> {
        let map = match self.map.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        };
        if map.is_empty() {
            return None;
        }
        map.get(user).cloned()
    }

    /// Sets one user's state (`None`: not suspended), from a cluster event.
    pub fn set(&self, user: &str, state: Option<AccountState>) {
        let mut g = match self.map.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut map = HashMap::clone(&g);
        match state {
            Some(s) => {
                map.insert(user.to_owned(), s);
            }
            None => {
                map.remove(user);
            }
        }
        *g = Arc::new(map);
    }

    /// Reloads the set from the store; keeps the old set when the store fails.
    pub async fn refresh(&self, store: &dyn Store) {
        match store.list_users().await {
            Ok(users) => {
                let map: HashMap<String, AccountState> = users
                    .into_iter()
                    .filter(|u| matches!(u.status, AccountState::Suspended { .. }))
                    .map(|u| (u.name, u.status))
                    .collect();
                match self.map.write() {
                    Ok(mut g) => *g = Arc::new(map),
                    Err(p) => *p.into_inner() = Arc::new(map),
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not refresh suspended accounts"),
        }
    }

    /// Refreshes every `every` until the gateway is dropped.
    pub fn spawn_refresh(gw: std::sync::Weak<crate::gateway::Gateway>, every: Duration) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(gw) = gw.upgrade() else { return };
                gw.suspended.refresh(gw.store.as_ref()).await;
            }
        });
    }
}
