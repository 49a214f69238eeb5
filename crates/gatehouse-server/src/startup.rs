//! Starting a gateway: the store, our signing keys and secrets, the runtime built from the
//! config, and the background tasks that keep them fresh.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::config::Config;
use gatehouse_store::{Store, open_store};

use crate::gateway::{Gateway, Runtime};
use crate::keys::OwnKeys;

/// Errors starting a gateway; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("store `{url}`: {source}")]
    Store {
        url: String,
        source: gatehouse_store::StoreError,
    },
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on `{addr}`: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Opens the store, loads our signing keys and builds the runtime.
pub async fn build(config: Config) -> Result<Arc<Gateway>, StartError> {
    let url = config.store.url.clone();
    let store = open_store(&url).await.map_err(|source| StartError::Store {
        url: url.clone(),
        source,
    })?;
    build_with_store(config, store).await
}

/// Knobs of [`build_with_options`]; the defaults are what `gatehouse serve` runs with.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// How often revocations and suspensions are re-read from the store: the fallback of
    /// the cluster's events, and the only channel on one node. Default 1 s.
    pub store_poll: Duration,
    /// The least time between two forced re-reads of our signing keys (an unknown `kid` on
    /// one of our tokens). Default [`crate::keys::RELOAD_FLOOR`].
    pub key_reload_floor: Duration,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            store_poll: Duration::from_secs(1),
            key_reload_floor: crate::keys::RELOAD_FLOOR,
        }
    }
}

/// As [`build`], with a store the caller opened (tests, `demo`).
pub async fn build_with_store(
    config: Config,
    store: Arc<dyn Store>,
) -> Result<Arc<Gateway>, StartError> {
    build_with_options(config, store, BuildOptions::default()).await
}

/// As [`build_with_store`], with [`BuildOptions`] (tests that must tell the cluster's
/// events from the store poll lengthen the poll).
pub async fn build_with_options(
    config: Config,
    store: Arc<dyn Store>,
    options: BuildOptions,
) -> Result<Arc<Gateway>, StartError> {
    let url = config.store.url.clone();
    let own_keys = OwnKeys::load_or_create(store.as_ref(), crate::clock::now())
        .await
        .map_err(|source| StartError::Store { url, source })?;
    let secrets = crate::keys::Secrets::load_or_create(store.as_ref(), crate::clock::now())
        .await
        .map_err(|source| StartError::Store {
            url: config.store.url.clone(),
            source,
        })?;
    let cluster = crate::cluster::Cluster::new(&config.cluster, &secrets)
        .map_err(|e| StartError::Config(e.to_string()))?;
    let runtime = Runtime::new(config, &own_keys, cluster.clone()).map_err(StartError::Config)?;
    let audit_file = runtime.config.audit.file.clone();
    let mut gw = Gateway::new(runtime, store, own_keys, secrets, cluster);
    gw.own_key_reload = crate::refetch::Refetch::new(options.key_reload_floor);
    let gw = Arc::new(gw);
    gw.observer.audit.start(Arc::clone(&gw.store), audit_file);
    gw.resync().await;
    if let Some(c) = &gw.cluster {
        c.spawn_subscriber(Arc::downgrade(&gw));
    }
    crate::suspended::SuspendedUsers::spawn_refresh(Arc::downgrade(&gw), options.store_poll);
    crate::revocations::Revocations::spawn_sync(Arc::downgrade(&gw), options.store_poll);
    spawn_own_key_sync(Arc::downgrade(&gw));
    spawn_jwks_refresh(Arc::downgrade(&gw), Duration::from_secs(60));
    crate::geoip::spawn_watch(Arc::downgrade(&gw));
    crate::admin::stats::spawn(Arc::downgrade(&gw));
    crate::telemetry::otlp::spawn(Arc::downgrade(&gw));
    Ok(gw)
}

/// Picks up signing keys added by `gatehouse keys rotate` (in any process, on any node)
/// every `[tokens] key_sync` (read again each time, so a config reload changes it).
fn spawn_own_key_sync(gw: std::sync::Weak<Gateway>) {
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

/// Refreshes stale JWKS in the background until the gateway is dropped.
fn spawn_jwks_refresh(gw: std::sync::Weak<Gateway>, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let Some(gw) = gw.upgrade() else { return };
            gw.runtime().verifiers.refresh_stale().await;
        }
    });
}
