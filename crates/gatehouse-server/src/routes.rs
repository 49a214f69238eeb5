//! Gatehouse's own endpoints on the public port (health, JWKS, forward-auth, `/auth/*`) and
//! the routers of both ports; every other public path is proxied.

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get, post};

use crate::edge;
use crate::gateway::Gateway;

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
        .route("/auth/oidc/{name}/start", get(crate::auth::oidc::start))
        .route(
            "/auth/oidc/{name}/callback",
            get(crate::auth::oidc::callback),
        )
        .route(
            "/auth/oidc/{name}/backchannel-logout",
            post(crate::auth::oidc::backchannel_logout),
        )
}

/// The admin port's router: the admin API, its sign-in, health and `/metrics` (never on the
/// public port); see [`crate::admin`].
pub fn admin_router(gw: Arc<Gateway>) -> Router {
    crate::admin::router(gw)
}

/// Whether a path is one of Gatehouse's own endpoints on the public port (matched exactly, as
/// the router matches them).
pub fn is_own_path(path: &str) -> bool {
    OWN_PATHS.contains(&path) || crate::auth::oidc::is_oidc_path(path)
}
