//! The cluster's events on this node: revocations, suspensions and attribute changes this
//! node makes (recorded at once, published to the others), and the events of every node
//! applied to this one's revocations, user set, locks and Basic cache.

use gatehouse_core::attributes::Attributes;
use gatehouse_core::principal::AccountState;

use super::Gateway;
use crate::cluster::{Event, Listener, UserChange};

impl Gateway {
    /// Records a revocation this node made (the caller wrote it to the store first): in
    /// memory at once, and to every other node through the event channel.
    pub fn revoked(&self, id: String, expires_at: i64) {
        if let Some(c) = &self.cluster {
            c.publish(&Event::Revoke {
                id: id.clone(),
                exp: expires_at,
            });
        }
        self.revocations.insert(id, expires_at);
    }

    /// Records an attribute change this node made to local user `name` (the caller wrote
    /// it to the store first): in memory at once, and to every other node through the event
    /// channel — the event `gatehouse user set` sends.
    pub fn attributes_changed(&self, name: String, attributes: Attributes) {
        let event = Event::User {
            name,
            change: UserChange::Attributes { attributes },
        };
        if let Some(c) = &self.cluster {
            c.publish(&event);
        }
        self.apply_event(&event, crate::clock::now());
    }

    /// Re-reads revocations and suspensions from the store (after a (re)subscribe).
    pub async fn resync(&self) {
        self.revocations
            .sync(self.store.as_ref(), crate::clock::now())
            .await;
        self.suspended.refresh(self.store.as_ref()).await;
    }

    /// Applies an event from the channel to this node's caches.
    pub fn apply_event(&self, event: &Event, now: i64) {
        match event {
            Event::Revoke { id, exp } => self.revocations.insert(id.clone(), *exp),
            Event::Lock { kind, key, until } => {
                self.runtime().defense.mirror(*kind, key, *until, now);
            }
            Event::User {
                name,
                change: UserChange::Attributes { attributes },
            } => self.suspended.set_attributes(name, attributes.clone()),
            Event::User { name, change } => {
                let state = match change {
                    UserChange::Suspended { at, reason } => Some(AccountState::Suspended {
                        at: *at,
                        reason: reason.clone(),
                    }),
                    UserChange::Active | UserChange::Deleted | UserChange::Attributes { .. } => {
                        None
                    }
                };
                self.suspended.set(name, state);
                if matches!(change, UserChange::Deleted) {
                    self.suspended.set_attributes(name, Default::default());
                    self.basic_cache.remove_where(|u| u.name == *name);
                }
            }
        }
    }
}

impl Listener for Gateway {
    fn resync(&self) -> impl std::future::Future<Output = ()> + Send {
        Self::resync(self)
    }

    fn apply_event(&self, event: &Event, now: i64) {
        Self::apply_event(self, event, now);
    }
}
