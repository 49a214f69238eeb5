//! Suspended local accounts, for tokens (row 13). Basic and API keys read the account from
//! the store on every verification; a token is self-contained, so the set of suspended
//! users is kept in memory and refreshed from the store every second — a suspension made by
//! `gatehouse user suspend` in another process takes effect within that interval.
//!
//! Attributes of local users (issue 13) ride along the same way: refreshed with the same read
//! of the users, set at once by a cluster event, and looked up only by routes with
//! requirements — a change by `gatehouse user set` reaches every node as fast as a suspension.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use gatehouse_core::attributes::Attributes;
use gatehouse_core::principal::AccountState;
use gatehouse_store::Store;

#[derive(Default)]
pub struct SuspendedUsers {
    map: RwLock<Arc<HashMap<String, AccountState>>>,
    /// Attributes of the users that have any.
    attributes: RwLock<Arc<HashMap<String, Arc<Attributes>>>>,
}

fn read<T>(lock: &RwLock<Arc<T>>) -> Arc<T> {
    match lock.read() {
        Ok(g) => Arc::clone(&g),
        Err(p) => Arc::clone(&p.into_inner()),
    }
}

fn write<T>(lock: &RwLock<Arc<T>>, value: T) {
    match lock.write() {
        Ok(mut g) => *g = Arc::new(value),
        Err(p) => *p.into_inner() = Arc::new(value),
    }
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

    /// The current attributes of local user `user` (`None`: none, or not a local user).
    pub fn attributes(&self, user: &str) -> Option<Arc<Attributes>> {
        read(&self.attributes).get(user).cloned()
    }

    /// Replaces one user's attributes, from a cluster event.
    pub fn set_attributes(&self, user: &str, attributes: Attributes) {
        let mut map = HashMap::clone(&read(&self.attributes));
        if attributes.is_empty() {
            map.remove(user);
        } else {
            map.insert(user.to_owned(), Arc::new(attributes));
        }
        write(&self.attributes, map);
    }

    /// Reloads the set from the store; keeps the old set when the store fails.
    pub async fn refresh(&self, store: &dyn Store) {
        match store.list_users().await {
            Ok(users) => {
                let old = read(&self.attributes);
                let mut attributes = HashMap::new();
                let mut map = HashMap::new();
                for u in users {
                    if !u.attributes.is_empty() {
                        // Unchanged sets keep their `Arc`.
                        let a = match old.get(&u.name) {
                            Some(a) if **a == u.attributes => Arc::clone(a),
                            _ => Arc::new(u.attributes),
                        };
                        attributes.insert(u.name.clone(), a);
                    }
                    if matches!(u.status, AccountState::Suspended { .. }) {
                        map.insert(u.name, u.status);
                    }
                }
                write(&self.map, map);
                write(&self.attributes, attributes);
            }
            Err(e) => tracing::warn!(error = %e, "could not refresh suspended accounts"),
        }
    }
}
