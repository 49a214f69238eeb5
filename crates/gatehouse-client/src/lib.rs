//! A Rust client for APIs behind Gatehouse that gets 401 versus 403 right.
//!
//! - Credentials: Bearer tokens from a [`TokenStore`] (renewed with the refresh token at
//!   `/auth/refresh`), HTTP Basic, or an API key (`X-API-Key`).
//! - A 401 whose `error` is `invalid_token` or `token_expired` (read from the Bearer
//!   challenge, RFC 6750 §3, or the problem body) triggers ONE refresh shared by every
//!   concurrent request, then one retry of the original request. A request whose body is a
//!   stream is not retried: it fails with [`Error::BodyNotReplayable`]. A refused refresh
//!   (expired, revoked, reused) is [`Error::SignInRequired`].
//! - 403 is [`Error::Forbidden`] with the parsed [`Problem`] (RFC 9457), never retried; a
//!   403 `requirement_not_met` lists what the user must do ([`Problem::requirements`]).
//! - 401 `insufficient_user_authentication` (RFC 9470) is [`Error::StepUpRequired`].
//! - 429 and 503 wait for `Retry-After` (RFC 9110 §10.2.3) up to a cap, then retry once.
//!
//! ```no_run
//! use std::sync::Arc;
//! use gatehouse_client::{Client, Credentials, Error, FileTokenStore};
//!
//! # async fn run() -> Result<(), Error> {
//! let store = Arc::new(FileTokenStore::new("/home/me/.config/app/tokens.json"));
//! let client = Client::builder("https://api.example")
//!     .credentials(Credentials::Bearer(store))
//!     .build()?;
//! client.sign_in("bob", "bob-pw").await?;
//! match client.get("/api/posts").send().await {
//!     Ok(resp) => println!("{}", resp.text().await?),
//!     Err(Error::Forbidden(problem)) => eprintln!("not allowed: {problem}"),
//!     Err(Error::SignInRequired { .. }) => eprintln!("please sign in again"),
//!     Err(Error::StepUpRequired { acr_values, .. }) => eprintln!("needs {acr_values:?}"),
//!     Err(e) => return Err(e),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The parsers run anywhere:
//!
//! ```
//! let c = gatehouse_client::challenge::parse(
//!     r#"Bearer realm="api", error="invalid_token", Basic realm="api""#,
//! )
//! .unwrap();
//! assert_eq!(c[0].param("error"), Some("invalid_token"));
//! assert!(c[1].is("basic"));
//! ```

pub mod challenge;
mod client;
mod error;
pub mod problem;
mod retry;
pub mod store;

pub use challenge::{Challenge, ChallengeError};
pub use client::{Client, ClientBuilder, Credentials, RequestBuilder};
pub use error::Error;
pub use problem::{Problem, Requirement};
pub use retry::retry_after;
pub use store::{FileTokenStore, MemoryTokenStore, StoreError, TokenStore, Tokens};
