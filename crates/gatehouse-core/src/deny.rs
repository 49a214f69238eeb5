//! Why a request is refused. Each variant is one row (or one failure) of the semantics
//! contract (design §2); its entry of the one table ([`Deny::entry`], in `deny/table.rs`)
//! says everything about it, and [`crate::render`] renders that entry.

mod table;

pub use table::{
    Challenge, Entry, Extra, FIXED, Fact, Headers, KNOWN_SCHEMES, Page, Text, grpc_code,
};

use crate::geo::{Country, CountryRule};
use crate::scheme::Scheme;

/// A refusal, with the facts the response needs. Constructed by the decision steps and by
/// the edge (which only reports facts: an upstream that timed out, a store that failed); the
/// status code is decided by its entry of the table alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deny {
    /// Row 2: route is `deny`.
    ForbiddenPath,
    /// Row 3: client IP outside `networks` or inside `deny_networks`.
    IpBlocked,
    /// Row 4: too many failed authentications.
    TooManyAttempts { retry_after: u64 },
    /// Row 5: no credential at all.
    MissingCredentials,
    /// Row 6: a credential in a scheme the route does not accept.
    UnsupportedScheme { presented: String },
    /// Row 7: malformed credential, or more than one.
    InvalidRequest { detail: String },
    /// Row 8: token fails verification. `detail` is safe to show (no key material).
    InvalidToken { detail: String },
    /// Row 9: token expired; `expired_at` unix seconds.
    TokenExpired { expired_at: i64 },
    /// Row 10: token or session revoked.
    TokenRevoked,
    /// Row 11: wrong user/password, unknown/revoked/expired API key.
    InvalidCredentials,
    /// Row 12: Digest nonce expired, response otherwise right.
    StaleNonce,
    /// Row 13: identity proven, account suspended; `suspended_at` unix seconds.
    AccountSuspended { suspended_at: i64, reason: String },
    /// Row 14: step-up needed (RFC 9470).
    InsufficientUserAuthentication {
        acr_values: Option<String>,
        max_age: Option<u64>,
    },
    /// Row 15: lacks a required role (any of `required`).
    InsufficientRole { required: Vec<String> },
    /// Row 16: lacks required scopes (all of `required`).
    InsufficientScope { required: Vec<String> },
    /// Row 17.
    TenantMismatch,
    /// Row 18.
    NotOwner,
    /// Row 19: read-only principal on an unsafe method.
    ReadOnly,
    /// Row 25: identity proven and authorized, but requirements of the route are not met
    /// (issue 13): every unmet one, in file order.
    RequirementNotMet {
        unmet: Vec<crate::requirements::Unmet>,
    },
    /// Row 21: upstream unreachable.
    UpstreamUnavailable,
    /// Row 21: upstream timed out.
    UpstreamTimeout,
    /// Row 22: our own dependency failed; never a 401/403 for our own fault.
    AuthUnavailable { retry_after: u64 },
    /// Row 24: authenticated client over its quota of `limit` requests per window.
    RateLimited { retry_after: u64, limit: u32 },
    /// §3: the request path cannot be normalized safely (`..`, encoded `/`, `\`, NUL).
    InvalidPath { detail: String },
    /// No route accepts this method on this path where a route exists for the path
    /// (RFC 9110 §15.5.6) — only used for Gatehouse's own endpoints.
    MethodNotAllowed { allow: &'static str },
    /// A request body over `max_body_bytes` (RFC 9110 §15.5.14).
    PayloadTooLarge,
    /// Gatehouse's own endpoints: nothing here.
    NotFound,
    /// `/auth/login`: the password was right and the account has MFA; finish with a TOTP
    /// code at `/auth/mfa` using this token (design §2 "Tokens and sessions").
    MfaRequired { mfa_token: String },
    /// An unsafe request riding on a session cookie did not come from our own origin.
    CsrfRejected,
    /// A sign-in through a `[[login_providers]]` entry that the provider refused
    /// (`access_denied`) or that Gatehouse does not admit (outside `allowed_domains`, missing
    /// a required group, no such local user): a page saying so, never a loop back to the
    /// provider. `reason` is safe to show the user.
    SignInRefused { reason: String },
    /// Row 26: the client's country (`None`: the database does not know the address) is not
    /// allowed on this route; `legal` answers 451 (RFC 7725) instead of 403, with
    /// `Link: <blocked_by>; rel="blocked-by"` when the route names who requires the block.
    GeoBlocked {
        country: Option<Country>,
        legal: bool,
        blocked_by: Option<std::sync::Arc<str>>,
    },
}

impl Deny {
    /// The stable `error` code of the body (design §2).
    pub fn code(&self) -> &'static str {
        self.entry().code
    }

    /// The row of design §2 this refusal implements, for `explain` and the docs.
    pub fn row(&self) -> Option<u8> {
        self.entry().row
    }

    /// True for the 401/403 outcomes that `hidden = true` turns into 404 (row 20).
    pub fn hideable(&self) -> bool {
        self.entry().hideable
    }
}

/// A credential as presented, before verification. Secrets inside are redacted from `Debug`.
#[derive(Debug, Clone)]
pub enum Credential {
    Bearer(crate::secret::SecretString),
    Basic {
        username: String,
        password: crate::secret::SecretString,
    },
    ApiKey(crate::secret::SecretString),
    /// `Authorization: Digest …` (RFC 7616), parsed but not yet verified. Boxed: it is
    /// much larger than the other variants.
    Digest(Box<crate::digest::DigestParams>),
    /// The browser session cookie (sealed by the edge; opaque here).
    Session(crate::secret::SecretString),
}

impl Credential {
    pub const fn scheme(&self) -> Scheme {
        match self {
            Self::Bearer(_) => Scheme::Bearer,
            Self::Basic { .. } => Scheme::Basic,
            Self::ApiKey(_) => Scheme::ApiKey,
            Self::Digest(_) => Scheme::Digest,
            Self::Session(_) => Scheme::Session,
        }
    }
}

impl CountryRule {
    /// Row 26: [`CountryRule::refuses`] as a decision step: `country` is the database's answer
    /// for the trusted client address (`None`: not in the database); a refusal is
    /// [`Deny::GeoBlocked`]. Defined here, beside the refusals, so that `geo` needs nothing of
    /// `deny`.
    pub fn check(&self, country: Option<Country>) -> Result<(), Deny> {
        if self.refuses(country) {
            Err(Deny::GeoBlocked {
                country,
                legal: self.legal,
                blocked_by: self.blocked_by.clone(),
            })
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::UnknownCountry;

    #[test]
    fn a_refused_country_is_geo_blocked_with_the_rule_s_status() {
        let c = |s| Country::parse(s);
        let rule = CountryRule {
            allow: Vec::new(),
            deny: c("KP").into_iter().collect(),
            unknown: UnknownCountry::Allow,
            legal: true,
            blocked_by: Some("https://example.org/court".into()),
            line: 1,
        };
        assert_eq!(rule.check(c("DE")), Ok(()));
        assert_eq!(rule.check(None), Ok(()));
        assert_eq!(
            rule.check(c("KP")),
            Err(Deny::GeoBlocked {
                country: c("KP"),
                legal: true,
                blocked_by: Some("https://example.org/court".into()),
            })
        );
    }
}
