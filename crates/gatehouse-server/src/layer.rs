//! Gatehouse as a tower [`Layer`]: the same config, the same pipeline and the same answers as
//! the reverse proxy (every row of the contract, HTML pages for browsers, audit, metrics,
//! throttling, the tarpit), guarding an axum app in-process instead of an upstream over HTTP.
//!
//! ```no_run
//! # async fn demo(cfg: gatehouse_core::Config, store: std::sync::Arc<dyn gatehouse_store::Store>) {
//! use axum::{Router, routing::get};
//! use gatehouse_server::layer::{Authenticated, GatehouseLayer};
//!
//! async fn me(Authenticated(who): Authenticated) -> String {
//!     format!("hello, {}", who.subject)
//! }
//!
//! let gatehouse = GatehouseLayer::from_config(cfg, store).await.expect("config");
//! let app = Router::new()
//!     .route("/api/me", get(me))
//!     // A fallback added before the layer: paths without a route are guarded too.
//!     .fallback(|| async { "nothing here" })
//!     .layer(gatehouse.clone())
//!     // `/auth/*`, JWKS and health, unguarded (added after the layer).
//!     .merge(gatehouse.endpoints());
//! // Serve with `into_make_service_with_connect_info::<SocketAddr>()`: the client address
//! // decides `networks` (row 3) and throttling (row 4).
//! # }
//! ```
//!
//! An allowed request reaches the app with the `X-Gatehouse-*` identity headers set (client
//! ones are always stripped) and the verified principal in its extensions, read with the
//! [`Authenticated`] extractor. A public route (row 1) passes without one.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts};
use axum::response::IntoResponse;
use gatehouse_core::config::Config;
use gatehouse_core::deny::Deny;
use gatehouse_store::Store;
use http::request::Parts;
use http::{Request, Response, StatusCode};
use tower::{Layer, Service, ServiceExt as _};

use crate::edge::{Pass, Passed, guard};
use crate::gateway::{Gateway, Runtime};
use crate::verified::Identity;

/// Guards an axum app with Gatehouse: `Router::new().route(..).layer(GatehouseLayer::..)`.
#[derive(Clone)]
pub struct GatehouseLayer {
    gw: Arc<Gateway>,
}

impl GatehouseLayer {
    /// Builds the gateway from a config (the `gatehouse serve` format; `[upstream]` is not
    /// used) and an open store.
    pub async fn from_config(
        config: Config,
        store: Arc<dyn Store>,
    ) -> Result<Self, crate::startup::StartError> {
        crate::startup::build_with_store(config, store)
            .await
            .map(|gw| Self { gw })
    }

    /// Guards with a gateway built elsewhere.
    pub const fn new(gw: Arc<Gateway>) -> Self {
        Self { gw }
    }

    pub const fn gateway(&self) -> &Arc<Gateway> {
        &self.gw
    }

    /// Gatehouse's own endpoints (`/auth/*`, `/.well-known/jwks.json`, `/healthz`,
    /// `/readyz`, forward-auth), to merge into the app after the layer.
    pub fn endpoints(&self) -> axum::Router {
        crate::routes::own_endpoints(Arc::clone(&self.gw))
    }
}

impl<S> Layer<S> for GatehouseLayer {
    type Service = Gatehouse<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Gatehouse {
            gw: Arc::clone(&self.gw),
            inner,
        }
    }
}

/// The service [`GatehouseLayer`] wraps around an app.
#[derive(Clone)]
pub struct Gatehouse<S> {
    gw: Arc<Gateway>,
    inner: S,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl<S, B> Service<Request<Body>> for Gatehouse<S>
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The app is made ready (`oneshot`) when an allowed request reaches it; refusals
        // never wait for it.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // Without `ConnectInfo` there is no client address: an unspecified one, which no
        // `networks` list admits (deny by default).
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)), |c| c.0);
        let app = ToApp(self.inner.clone());
        Box::pin(guard(Arc::clone(&self.gw), peer, req, app))
    }
}

/// The Layer's [`Pass`]: the guarded app, with the identity headers and the principal.
struct ToApp<S>(S);

impl<S, B> Pass for ToApp<S>
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Send + 'static,
    S::Future: Send,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    fn ready(&self, _rt: &Runtime) -> bool {
        true
    }

    async fn pass(
        self,
        rt: &Runtime,
        mut req: Request<Body>,
        to: Passed<'_>,
    ) -> Result<Response<Body>, Deny> {
        let limit = usize::try_from(rt.config.server.max_body_bytes).unwrap_or(usize::MAX);
        // The app routes on the path that was checked, normalized (design §3): no encoding
        // trick reaches a handler other than the route Gatehouse decided for.
        if req.uri().path() != to.path {
            let pq = match req.uri().query() {
                Some(q) => format!("{}?{q}", to.path),
                None => to.path.to_owned(),
            };
            let mut parts = req.uri().clone().into_parts();
            parts.path_and_query =
                Some(
                    http::uri::PathAndQuery::try_from(pq).map_err(|_| Deny::InvalidPath {
                        detail: "the normalized path is not a valid URI path".to_owned(),
                    })?,
                );
            *req.uri_mut() = http::Uri::from_parts(parts).map_err(|_| Deny::InvalidPath {
                detail: "the normalized path is not a valid URI path".to_owned(),
            })?;
        }
        if let Some(identity) = to.identity {
            // As the proxy: credentials the gateway consumed are not passed on.
            req.headers_mut().remove(http::header::AUTHORIZATION);
            req.headers_mut().remove("x-api-key");
            crate::verified::identity_headers(req.headers_mut(), identity);
            req.extensions_mut()
                .insert(Authenticated(Arc::clone(identity)));
        }
        let req = req.map(|b| Body::new(http_body_util::Limited::new(b, limit)));
        match self.0.oneshot(req).await {
            Ok(resp) => Ok(resp.map(Body::new)),
            Err(never) => match never {},
        }
    }
}

/// The verified principal of the request (rows 5–19 passed). Dereferences to
/// [`gatehouse_core::Principal`]: `subject`, `roles`, `scopes`, `tenant`, `scheme`, …
///
/// Rejected with an opaque 500 where the route is not guarded by [`GatehouseLayer`] or is
/// public (no principal): that is a wiring mistake, never a client's. Use
/// `Option<Authenticated>` on routes that may be public.
#[derive(Clone)]
pub struct Authenticated(pub Identity);

impl std::ops::Deref for Authenticated {
    type Target = gatehouse_core::Principal;

    fn deref(&self) -> &gatehouse_core::Principal {
        self.0.principal()
    }
}

impl std::fmt::Debug for Authenticated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Authenticated").field(&self.0).finish()
    }
}

/// [`Authenticated`] was asked for where Gatehouse passed no principal.
#[derive(Debug)]
pub struct NoPrincipal;

impl IntoResponse for NoPrincipal {
    fn into_response(self) -> axum::response::Response {
        tracing::error!(
            "a handler asked for the principal on a route Gatehouse does not guard, or a public one"
        );
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }
}

impl<St: Send + Sync> FromRequestParts<St> for Authenticated {
    type Rejection = NoPrincipal;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, NoPrincipal> {
        parts.extensions.get::<Self>().cloned().ok_or(NoPrincipal)
    }
}

impl<St: Send + Sync> OptionalFromRequestParts<St> for Authenticated {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &St,
    ) -> Result<Option<Self>, Infallible> {
        Ok(parts.extensions.get::<Self>().cloned())
    }
}
