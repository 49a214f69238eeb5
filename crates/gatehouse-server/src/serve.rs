//! Building a gateway from a config and serving it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get, post};
use gatehouse_core::config::Config;
use gatehouse_store::{Store, open_store};
use tokio::net::TcpListener;

use crate::edge;
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
    let own_keys = OwnKeys::load_or_create(store.as_ref(), crate::ids::now())
        .await
        .map_err(|source| StartError::Store { url, source })?;
    let secrets = crate::keys::Secrets::load_or_create(store.as_ref(), crate::ids::now())
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
            match OwnKeys::load_or_create(gw.store.as_ref(), crate::ids::now()).await {
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

/// Gatehouse's own endpoints on the public port; every other path is proxied.
const OWN_PATHS: [&str; 8] = [
    "/healthz",
    "/readyz",
    "/.well-known/jwks.json",
    "/_gatehouse/forward-auth",
    "/auth/login",
    "/auth/mfa",
    "/auth/refresh",
    "/auth/logout",
];

/// The public port's router: Gatehouse's own endpoints, then everything else is proxied.
pub fn public_router(gw: Arc<Gateway>) -> Router {
    own_routes().fallback(edge::proxy_handler).with_state(gw)
}

/// Gatehouse's own endpoints on the public port (health, JWKS, forward-auth, `/auth/*`),
/// without the proxy: the tower Layer merges them into the app it guards.
pub fn own_endpoints(gw: Arc<Gateway>) -> Router {
    own_routes().with_state(gw)
}

fn own_routes() -> Router<Arc<Gateway>> {
    let [
        healthz,
        readyz,
        jwks,
        forward_auth,
        login,
        mfa,
        refresh,
        logout,
    ] = OWN_PATHS;
    Router::new()
        .route(healthz, get(edge::healthz))
        .route(readyz, get(edge::readyz))
        .route(jwks, get(edge::jwks))
        .route(forward_auth, any(edge::forward_auth_handler))
        .route(
            login,
            post(crate::auth::login).options(crate::auth::preflight),
        )
        .route(
            mfa,
            post(crate::auth::mfa_handler).options(crate::auth::preflight),
        )
        .route(
            refresh,
            post(crate::auth::refresh).options(crate::auth::preflight),
        )
        .route(
            logout,
            post(crate::auth::logout).options(crate::auth::preflight),
        )
}

/// The admin port's router: the admin API, its sign-in, health and `/metrics` (never on the
/// public port); see [`crate::admin`].
pub fn admin_router(gw: Arc<Gateway>) -> Router {
    crate::admin::router(gw)
}

/// Binds the configured listeners.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })
}

/// Serves `router` on `listener` until `shutdown` completes, then drains.
pub async fn serve_on(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_on_tls(listener, router, None, shutdown).await
}

/// As [`serve_on`], over TLS with the certificate `tls` names (the admin listener under
/// `[server] tls`).
pub async fn serve_on_tls(
    listener: TcpListener,
    router: Router,
    tls: Option<&gatehouse_core::config::TlsFiles>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::server::serve(
        listener,
        move |peer| crate::server::RouterService::new(router.clone(), peer),
        shutdown,
        crate::limits::Limits::default(),
        tls_acceptor(tls)?,
    )
    .await
}

/// The acceptor of a listener with `[server] tls`; a certificate that cannot be loaded is an
/// error naming its file.
fn tls_acceptor(
    tls: Option<&gatehouse_core::config::TlsFiles>,
) -> std::io::Result<Option<tokio_rustls::TlsAcceptor>> {
    tls.map(crate::tls::acceptor)
        .transpose()
        .map_err(|e| std::io::Error::other(format!("[server] tls: {e}")))
}

/// Serves the public port until `shutdown` completes, then drains: the same answers as
/// [`serve_on`] with [`public_router`], but a proxied request (every path that is not one of
/// Gatehouse's own) goes straight to the proxy, past the router and its extractors.
pub async fn serve_public(
    listener: TcpListener,
    gw: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let own = public_router(Arc::clone(&gw));
    // `[server]` connection limits; a change takes a restart.
    let rt = gw.runtime();
    let limits = crate::limits::Limits::from_config(&rt.config.server);
    let tls = tls_acceptor(rt.config.server.tls.as_ref())?;
    drop(rt);
    crate::server::serve(
        listener,
        move |peer| crate::server::PublicService::new(Arc::clone(&gw), own.clone(), peer),
        shutdown,
        limits,
        tls,
    )
    .await
}

/// Whether a path is one of Gatehouse's own endpoints on the public port (matched exactly, as
/// the router matches them).
pub fn is_own_path(path: &str) -> bool {
    OWN_PATHS.contains(&path)
}
