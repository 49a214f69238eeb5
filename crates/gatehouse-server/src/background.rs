//! The background tasks of a running gateway: each keeps one of its services current (from
//! the store, the country database's file, the cluster's channel) or drains one of its
//! queues, and ends when the gateway is dropped. The services know nothing of the gateway;
//! these tasks hand each the parts it works on.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use crate::gateway::Gateway;
use crate::keys::OwnKeys;

/// How often stale JWKS of the token issuers are refreshed.
const JWKS_REFRESH_EVERY: Duration = Duration::from_secs(60);

/// Starts every task of `gw`. `store_poll`: how often revocations and suspensions are
/// re-read from the store.
pub(crate) fn start(gw: &Arc<Gateway>, store_poll: Duration) {
    if let Some(c) = &gw.cluster {
        c.spawn_subscriber(Arc::downgrade(gw));
    }
    every(gw, store_poll, MissedTickBehavior::Burst, |gw| async move {
        gw.suspended.refresh(gw.store.as_ref()).await;
    });
    every(gw, store_poll, MissedTickBehavior::Burst, |gw| async move {
        gw.revocations
            .sync(gw.store.as_ref(), crate::clock::now())
            .await;
    });
    spawn_own_key_sync(Arc::downgrade(gw));
    every(
        gw,
        JWKS_REFRESH_EVERY,
        MissedTickBehavior::Burst,
        |gw| async move {
            gw.runtime().verifiers.refresh_stale().await;
        },
    );
    every(
        gw,
        crate::geoip::WATCH_EVERY,
        MissedTickBehavior::Delay,
        |gw| async move { reload_geoip(&gw) },
    );
    every(
        gw,
        crate::observe::stats::FLUSH_EVERY,
        MissedTickBehavior::Delay,
        |gw| async move {
            gw.flush_stats(crate::clock::now()).await;
        },
    );
    let weak = Arc::downgrade(gw);
    crate::telemetry::otlp::spawn(Arc::clone(&gw.observer.spans), move || {
        weak.upgrade()
            .map(|gw| gw.runtime().config.telemetry.clone())
    });
}

/// Runs `work` every `period` (the first run at once) until the gateway is dropped.
fn every<F, Fut>(gw: &Arc<Gateway>, period: Duration, missed: MissedTickBehavior, work: F)
where
    F: Fn(Arc<Gateway>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let gw = Arc::downgrade(gw);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(missed);
        loop {
            tick.tick().await;
            let Some(gw) = gw.upgrade() else { return };
            work(gw).await;
        }
    });
}

/// Checks the current runtime's country database for a change.
fn reload_geoip(gw: &Gateway) {
    let rt = gw.runtime();
    let Some(db) = rt.geoip.as_ref() else {
        return;
    };
    match db.reload_if_changed() {
        Ok(true) => {
            tracing::info!(database = %db.path().display(), "country database reloaded")
        }
        Ok(false) => {}
        Err(e) => {
            tracing::error!(error = %e, "country database changed but cannot be loaded; the old one stays in force")
        }
    }
}

/// Picks up signing keys added by `gatehouse keys rotate` (in any process, on any node)
/// every `[tokens] key_sync` (read again each time, so a config reload changes it).
fn spawn_own_key_sync(gw: Weak<Gateway>) {
    tokio::spawn(async move {
        loop {
            let every = match gw.upgrade() {
                Some(gw) => gw.runtime().config.tokens.key_sync,
                None => return,
            };
            tokio::time::sleep(every).await;
            let Some(gw) = gw.upgrade() else { return };
            match OwnKeys::load_or_create(gw.store.as_ref(), crate::clock::now()).await {
                Ok(keys) => gw.adopt_own_keys(keys),
                Err(e) => tracing::warn!(error = %e, "could not sync signing keys"),
            }
        }
    });
}
