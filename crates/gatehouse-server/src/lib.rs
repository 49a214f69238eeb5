//! The HTTP edge of Gatehouse: reverse proxy, forward-auth, health and JWKS endpoints, a
//! tower Layer for embedding ([`GatehouseLayer`]), and the demo upstream. Every verdict comes
//! from `gatehouse-core`'s pipeline; this crate answers its questions (store lookups, key
//! fetches, password hashing off the runtime) and does the IO.

pub mod admin;
pub mod auth;
pub mod cache;
pub mod cluster;
pub mod cors;
pub mod defense;
pub mod demo;
pub mod digest;
pub mod edge;
pub mod gateway;
pub mod hashing;
pub mod ids;
pub mod keys;
pub mod layer;
pub mod limits;
pub mod net;
pub mod observe;
pub mod proxy;
pub mod refetch;
pub mod refusals;
pub mod requirements;
pub mod revocations;
pub mod serve;
pub mod server;
pub mod suspended;
pub mod tls;
pub mod tokens;
pub mod verified;

pub use gateway::{Gateway, Runtime};
pub use layer::{Authenticated, GatehouseLayer};
pub use serve::{
    BuildOptions, StartError, admin_router, bind, build, build_with_options, build_with_store,
    public_router, serve_on, serve_on_tls, serve_public,
};

/// Installs the one crypto provider (aws-lc-rs) for rustls and jsonwebtoken. Call first in
/// `main` and in test harnesses; calling twice is harmless.
pub fn install_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}
