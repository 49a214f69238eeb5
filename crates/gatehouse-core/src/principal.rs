//! Who the request is, once a credential was verified.

use std::sync::Arc;

use crate::attributes::{self, Attributes};
use crate::scheme::Scheme;

/// The verified identity of a request. Built by credential verification, read by
/// authorization and turned into the `X-Gatehouse-*` identity headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Local user name, or the `sub` (or mapped subject claim) of an external token.
    pub subject: String,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    pub tenant: Option<String>,
    /// The scheme that proved it.
    pub scheme: Scheme,
    /// `acr` of the token (`pwd`, `mfa`, …); `None` for Basic and API keys.
    pub acr: Option<String>,
    /// `auth_time` of the token, unix seconds.
    pub auth_time: Option<i64>,
    /// Read-only principal (API key flag): unsafe methods are refused (row 19).
    pub read_only: bool,
    /// Account state from the store; `None` when the subject is not a local account
    /// (external issuers) or the state is not known.
    pub account: AccountState,
    /// Which issuer signed the token (`gatehouse` for our own), for audit and metrics.
    pub issuer: Option<String>,
    /// `jti` of the token (or the id of an API key), for revocation.
    pub token_id: Option<String>,
    /// `sid` of the token: the login session it belongs to, for revocation.
    pub session_id: Option<String>,
    /// `exp` of the token, unix seconds.
    pub expires_at: Option<i64>,
    /// A local user's attributes, or the claims an external issuer's `attributes` maps
    /// (issue 13). Shared: most principals have none.
    pub attributes: Arc<Attributes>,
    /// The token claims that requirements name (`claim = "org.plan"`), by that path.
    pub claims: Arc<Attributes>,
}

/// Account state of a local user (row 13).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AccountState {
    #[default]
    Active,
    Suspended {
        /// Unix seconds.
        at: i64,
        reason: String,
    },
}

impl Principal {
    /// A principal with nothing but a subject and a scheme; fill the rest field by field.
    pub fn new(subject: impl Into<String>, scheme: Scheme) -> Self {
        Self {
            subject: subject.into(),
            roles: Vec::new(),
            scopes: Vec::new(),
            tenant: None,
            scheme,
            acr: None,
            auth_time: None,
            read_only: false,
            account: AccountState::Active,
            issuer: None,
            token_id: None,
            session_id: None,
            expires_at: None,
            attributes: attributes::empty(),
            claims: attributes::empty(),
        }
    }
}
