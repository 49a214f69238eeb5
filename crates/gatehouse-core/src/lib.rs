//! The pure decision core of Gatehouse.
//!
//! Data flows one way: the edge extracts facts from a request, this crate decides, the edge
//! renders and records. The decision is one sans-IO step machine, [`pipeline::Pipeline`]
//! (the order of the contract's rows exists there only); everything about a refusal is its
//! entry of one table, [`Deny::entry`]. Nothing here does IO or reads the clock: time and
//! randomness are arguments, so every decision is deterministic under test. (design §4)

// Stage 5 of issue 12: no unwrap, expect or panic outside tests (an override is an
// `#[expect(..., reason = "...")]` beside the code), and nothing `pub` that no one outside
// can reach.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![deny(unreachable_pub)]

pub mod accept;
pub mod apikey;
pub mod attributes;
pub mod config;
pub mod credential;
pub mod decision;
pub mod deny;
pub mod digest;
pub mod geo;
pub mod htpasswd;
pub mod oidc;
pub mod password;
pub mod path;
pub mod pipeline;
pub mod principal;
pub mod render;
pub mod requirements;
pub mod route;
pub mod scheme;
pub mod sealed;
pub mod secret;
pub mod secretbox;
pub mod session_cookie;
mod text;
pub mod throttle;
pub mod token;
pub mod totp;

pub use config::{Access, Config};
pub use deny::{Credential, Deny};
pub use principal::{AccountState, Principal};
pub use scheme::Scheme;
