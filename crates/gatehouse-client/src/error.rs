//! The errors a request can end in; each names what the caller should do next.

use std::time::Duration;

use http::StatusCode;
use thiserror::Error;

use crate::challenge::Challenge;
use crate::problem::Problem;
use crate::store::StoreError;

#[derive(Debug, Error)]
pub enum Error {
    /// No usable credentials any more (no refresh token, or the refresh was refused, e.g.
    /// a reused refresh token): the user has to sign in again.
    #[error("sign-in required{}", .problem.as_ref().map(|p| format!(": {p}")).unwrap_or_default())]
    SignInRequired { problem: Option<Box<Problem>> },
    /// 403: authenticated but not allowed. Never retried.
    #[error("forbidden: {0}")]
    Forbidden(Box<Problem>),
    /// 401 `insufficient_user_authentication` (RFC 9470 §3): authenticate again, more strongly
    /// (`acr_values`) or more recently (`max_age` seconds), then retry.
    #[error("step-up authentication required (acr_values {acr_values:?}, max_age {max_age:?})")]
    StepUpRequired {
        acr_values: Option<String>,
        max_age: Option<u64>,
    },
    /// 401 the client cannot fix by refreshing (wrong Basic password or API key, or still
    /// refused after a refresh).
    #[error("unauthorized: {problem}")]
    Unauthorized {
        challenges: Vec<Challenge>,
        problem: Box<Problem>,
    },
    /// 429 whose `Retry-After` is absent, beyond the configured cap, or that persisted after
    /// the one wait.
    #[error("rate limited (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    /// 503, as [`Error::RateLimited`].
    #[error("service unavailable (retry after {retry_after:?})")]
    Unavailable { retry_after: Option<Duration> },
    /// The request would have been retried (after a refresh or a `Retry-After` wait) but its
    /// body is a stream that was already consumed.
    #[error(
        "the request body cannot be replayed, so the request answered {status} was not retried"
    )]
    BodyNotReplayable { status: StatusCode },
    #[error("the {0} cannot be sent in an HTTP header")]
    InvalidHeader(&'static str),
    #[error("invalid URL `{0}`")]
    InvalidUrl(String),
    #[error("token store: {0}")]
    Store(#[from] StoreError),
    #[error("unexpected answer from the token endpoint: {0}")]
    TokenEndpoint(String),
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
}

impl Error {
    /// For [`Error::Forbidden`] with `requirement_not_met` (row 25): the unmet requirements,
    /// each with its code, message and remedy link; empty for every other error.
    pub fn requirements(&self) -> Vec<crate::problem::Requirement> {
        match self {
            Self::Forbidden(p) => p.requirements(),
            _ => Vec::new(),
        }
    }
}
