//! The HTTP edge of Gatehouse: reverse proxy, forward-auth, health and JWKS endpoints, and a
//! tower Layer for embedding ([`GatehouseLayer`]). Every verdict comes from `gatehouse-core`'s
//! pipeline; this crate answers its questions (store lookups, key fetches, password hashing
//! off the runtime) and does the IO.
//!
//! Layout: every request is one [`exchange::Exchange`] (request id, clock, client IP, HTML
//! preference, what was seen; refuse / finish / observe / tarpit), whether proxied or a
//! forward-auth subrequest ([`edge`]), guarded by the Layer ([`layer`]) or a `/auth/*` call
//! ([`auth`]); [`gateway`] drives core's pipeline. [`startup`] builds a gateway (store, keys,
//! background tasks), [`routes`] holds its endpoints and routers, [`listener`] the accept
//! loop and graceful drain; [`clock`], [`random`] and [`request_id`] are the clock, the OS
//! RNG and request ids.
//!
//! Layers, none importing one above it: services that own their state and take what they
//! use ([`keys`], [`revocations`], [`suspended`], [`defense`], [`cluster`], [`observe`],
//! [`telemetry`], [`digest`], [`mfa`], [`session`], [`login_providers`], [`cache`],
//! [`inflight`], [`rendered`], [`prepared_refusals`] …); [`gateway`], their composition;
//! then the edge, [`exchange`], the handlers ([`auth`], [`admin`]), [`layer`], [`listener`]
//! and [`startup`] (with the background tasks).

// Stage 5 of issue 12: no unwrap, expect or panic outside tests (an override is an
// `#[expect(..., reason = "...")]` beside the code), and nothing `pub` that no one outside
// can reach.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![deny(unreachable_pub)]

pub mod admin;
pub mod auth;
mod background;
pub mod cache;
pub mod clock;
pub mod cluster;
pub mod cors;
pub mod defense;
pub mod digest;
pub mod edge;
pub mod exchange;
pub mod gateway;
pub mod geoip;
pub mod hashing;
pub mod inflight;
pub mod keys;
pub mod layer;
pub mod limits;
pub mod listener;
pub mod login_providers;
pub mod mfa;
pub mod net;
pub mod observe;
pub mod pages;
pub mod prepared_refusals;
pub mod proxy;
pub mod random;
pub mod record;
pub mod refetch;
pub mod rendered;
pub mod request_id;
pub mod requirements;
pub mod revocations;
pub mod routes;
pub mod session;
pub mod startup;
pub mod suspended;
pub mod telemetry;
pub mod tls;
pub mod tokens;
pub mod unavailable;
pub mod verified;

pub use gateway::{Gateway, Runtime};
pub use layer::{Authenticated, GatehouseLayer};
pub use listener::{bind, serve_on, serve_on_tls, serve_public};
pub use routes::{admin_router, public_router};
pub use startup::{BuildOptions, StartError, build, build_with_options, build_with_store};

/// Installs the one crypto provider (aws-lc-rs) for rustls and jsonwebtoken. Call first in
/// `main` and in test harnesses; calling twice is harmless.
pub fn install_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}
