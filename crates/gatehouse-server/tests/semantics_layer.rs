//! The semantics cases of `semantics.rs`, run against the tower Layer: the same gateway as a
//! `GatehouseLayer` around an axum app (the echo app the proxy forwards to), over a real
//! socket. The harness picks the Layer by this binary's name (`common::layer_mode`); the
//! cases are shared, not copied. Cases about proxying itself (an unreachable upstream,
//! hop-by-hop headers) say so and pass through the app instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "semantics.rs"]
mod semantics;
