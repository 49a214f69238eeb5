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
    crate::background::start(&gw, options.store_poll);
    Ok(gw)
}
