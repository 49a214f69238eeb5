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
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            store_poll: Duration::from_secs(1),
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
    let gw = Arc::new(Gateway::new(runtime, store, own_keys, secrets, cluster));
    gw.observer.audit.start(Arc::clone(&gw.store), audit_file);
    gw.resync().await;
    if let Some(c) = &gw.cluster {
        c.spawn_subscriber(Arc::downgrade(&gw));
    }
    crate::suspended::SuspendedUsers::spawn_refresh(Arc::downgrade(&gw), options.store_poll);
    crate::revocations::Revocations::spawn_sync(Arc::downgrade(&gw), options.store_poll);
    spawn_own_key_sync(Arc::downgrade(&gw), Duration::from_secs(2));
    spawn_jwks_refresh(Arc::downgrade(&gw), Duration::from_secs(60));
    Ok(gw)
}

/// Picks up signing keys added by `gatehouse keys rotate` (in any process, on any node).
fn spawn_own_key_sync(gw: std::sync::Weak<Gateway>, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let Some(gw) = gw.upgrade() else { return };
            match OwnKeys::load_or_create(gw.store.as_ref(), crate::ids::now()).await {
                Ok(keys) => {
                    let current: Vec<String> =
                        gw.own_keys().keys.iter().map(|k| k.kid.clone()).collect();
                    let fresh: Vec<String> = keys.keys.iter().map(|k| k.kid.clone()).collect();
                    if current != fresh {
                        tracing::info!(keys = fresh.len(), "signing keys changed");
                        gw.replace_own_keys(keys);
                    }
                }
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

/// The admin port's router: health and `/metrics` (never on the public port).
pub fn admin_router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/healthz", get(edge::healthz))
        .route("/readyz", get(edge::readyz))
        .route("/metrics", get(metrics))
        .with_state(gw)
}

/// `/metrics`: Prometheus text format 0.0.4.
async fn metrics(
    axum::extract::State(gw): axum::extract::State<Arc<Gateway>>,
) -> axum::response::Response {
    let body = gw.render_metrics(crate::ids::now());
    let mut r = axum::response::Response::new(axum::body::Body::from(body));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
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
    crate::server::serve(
        listener,
        move |peer| crate::server::RouterService::new(router.clone(), peer),
        shutdown,
    )
    .await
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
    crate::server::serve(
        listener,
        move |peer| crate::server::PublicService::new(Arc::clone(&gw), own.clone(), peer),
        shutdown,
    )
    .await
}

/// Whether a path is one of Gatehouse's own endpoints on the public port (matched exactly, as
/// the router matches them).
pub fn is_own_path(path: &str) -> bool {
    OWN_PATHS.contains(&path)
}
