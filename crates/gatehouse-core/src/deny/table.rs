//! The one table: everything about each refusal, one entry per [`Deny`] (design §2, §4).
//!
//! [`Deny::entry`] is the only `match` over the reasons that says what a reason *means*: its
//! stable code, its row, status, title and human text, its challenge, the extra members of
//! its body and its headers, whether row 20 may hide it, whether it counts as a failed
//! authentication (row 4), whether the tarpit holds it, which HTML page a browser gets, and
//! the audit text. Rendering ([`crate::render`]), the audit trail, the throttle and the
//! edge's prepared answers all read their part from here. Adding a reason is one variant of
//! [`Deny`] plus one arm below; the match is exhaustive, so a missed one does not compile.

use std::fmt;

use super::Deny;

/// Schemes a client may name in `Authorization` that are worth recording as such in an
/// audit record; anything else could be a bare secret sent without a scheme and is not
/// repeated ("unrecognised authorization scheme").
pub const KNOWN_SCHEMES: &[&str] = &[
    "basic",
    "bearer",
    "digest",
    "dpop",
    "gnap",
    "hoba",
    "mutual",
    "negotiate",
    "ntlm",
    "privatetoken",
    "concealed",
    "scram-sha-1",
    "scram-sha-256",
    "vapid",
    "aws4-hmac-sha256",
    "token",
    "apikey",
    "oauth",
    "session",
];

/// A fact spliced into a [`Text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fact<'a> {
    None,
    Str(&'a str),
    /// ASCII-lower-cased on display (a scheme word as presented).
    Lower(&'a str),
    Num(u64),
    /// Unix seconds, shown as RFC 3339.
    Time(i64),
    /// Items joined by the separator.
    Join(&'a [String], &'static str),
    /// `Some(n)` as a number, `None` as `-`.
    OptNum(Option<u64>),
    /// `Some(s)`, or `-`.
    OptStr(Option<&'a str>),
    /// The codes of unmet requirements, joined by `, `.
    Codes(&'a [crate::requirements::Unmet]),
}

/// A human text: fixed pieces around at most two facts, written without allocating until
/// someone needs it as a `String` (most texts are fixed: [`Text::as_static`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text<'a> {
    pieces: [&'static str; 3],
    facts: [Fact<'a>; 2],
}

impl<'a> Text<'a> {
    /// A fixed text.
    pub const fn fixed(s: &'static str) -> Self {
        Self {
            pieces: [s, "", ""],
            facts: [Fact::None, Fact::None],
        }
    }
    /// `before` `fact` `after`.
    pub const fn with(before: &'static str, fact: Fact<'a>, after: &'static str) -> Self {
        Self {
            pieces: [before, after, ""],
            facts: [fact, Fact::None],
        }
    }
    /// `a` `f` `b` `g` `c`.
    pub const fn with2(
        a: &'static str,
        f: Fact<'a>,
        b: &'static str,
        g: Fact<'a>,
        c: &'static str,
    ) -> Self {
        Self {
            pieces: [a, b, c],
            facts: [f, g],
        }
    }
    /// The text when it has no facts (no formatting needed).
    pub const fn as_static(&self) -> Option<&'static str> {
        match self.facts {
            [Fact::None, Fact::None] if self.pieces[1].is_empty() && self.pieces[2].is_empty() => {
                Some(self.pieces[0])
            }
            _ => None,
        }
    }
    /// The text as a `String`, copying a fixed one.
    pub fn to_text(&self) -> String {
        self.as_static()
            .map_or_else(|| self.to_string(), str::to_owned)
    }
}

impl fmt::Display for Fact<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => Ok(()),
            Self::Str(s) => f.write_str(s),
            Self::Lower(s) => {
                for c in s.chars() {
                    fmt::Write::write_char(f, c.to_ascii_lowercase())?;
                }
                Ok(())
            }
            Self::Num(n) => write!(f, "{n}"),
            Self::Time(t) => f.write_str(&crate::text::rfc3339(*t)),
            Self::Join(items, sep) => {
                for (i, s) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    f.write_str(s)?;
                }
                Ok(())
            }
            Self::OptNum(n) => match n {
                Some(n) => write!(f, "{n}"),
                None => f.write_str("-"),
            },
            Self::OptStr(s) => f.write_str(s.unwrap_or("-")),
            Self::Codes(unmet) => {
                for (i, u) in unmet.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(&u.code)?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c] = self.pieces;
        let [x, y] = self.facts;
        write!(f, "{a}{x}{b}{y}{c}")
    }
}

/// The `WWW-Authenticate` challenges of a refusal (RFC 9110 §11.6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge<'a> {
    /// No challenge.
    None,
    /// One challenge per scheme the route accepts, without error attributes (rows 5, 6, 11;
    /// RFC 6750 §3.1: no error code when the request lacked authentication).
    Accepted,
    /// Only the Digest challenges, with `stale=true` (row 12, RFC 7616 §3.3).
    StaleDigest,
    /// `Bearer error="invalid_request"`, only where Bearer is accepted (row 7, RFC 6750 §3.1).
    InvalidRequest,
    /// `Bearer error="invalid_token", error_description=…` (rows 8–10, RFC 6750 §3.1); the
    /// description's first letter is capitalized.
    InvalidToken(Text<'a>),
    /// `Bearer error="insufficient_user_authentication"` with `acr_values` and/or `max_age`
    /// (row 14, RFC 9470 §3); the description is the entry's detail without its full stop.
    StepUp {
        acr_values: Option<&'a str>,
        max_age: Option<u64>,
    },
    /// `Bearer error="insufficient_scope", scope="…"` unless `scope_challenge = false`
    /// (row 16, RFC 6750 §3.1).
    Scope(&'a [String]),
}

/// One extra member of the problem body (RFC 9457 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra<'a> {
    None,
    Str(&'static str, &'a str),
    /// Unix seconds as RFC 3339.
    Time(&'static str, i64),
    Num(&'static str, u64),
    List(&'static str, &'a [String]),
    /// A list shown only with `disclosure = "helpful"`.
    Disclosed(&'static str, &'a [String]),
    /// A string, or JSON `null` when the fact is unknown.
    OptStr(&'static str, Option<&'a str>),
    /// `accepted_schemes`: the route's schemes.
    AcceptedSchemes,
    /// `requirements`: the unmet requirements (row 25); messages and links only with
    /// `disclosure = "helpful"`, codes always.
    Requirements(&'a [crate::requirements::Unmet]),
}

/// Headers a refusal adds besides its challenges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Headers<'a> {
    /// `Retry-After` (RFC 9110 §10.2.3, RFC 6585 §4).
    pub retry_after: Option<u64>,
    /// `RateLimit-Limit/-Remaining/-Reset` with this limit (draft-ietf-httpapi-ratelimit-headers).
    pub rate_limit: Option<u32>,
    /// `Allow` (RFC 9110 §10.2.1).
    pub allow: Option<&'static str>,
    /// `Link: <…>; rel="blocked-by"` (RFC 7725 §3, with a 451).
    pub blocked_by: Option<&'a str>,
}

/// The HTML page a browser gets (design §2 "Browsers").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page<'a> {
    /// The sign-in form: a 401 that logging in can fix.
    SignIn,
    /// The second-factor form with this pending login's token.
    Code(&'a str),
    /// What is missing; `final_` adds "signing in again will not change this" (403 rows).
    Missing { final_: bool },
}

/// Everything about one refusal. Built by [`Deny::entry`] from the refusal's own facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The stable `error` code.
    pub code: &'static str,
    /// The row of design §2; `None` for Gatehouse's own endpoints' answers.
    pub row: Option<u8>,
    pub status: u16,
    pub title: &'static str,
    /// The body's `detail` (and `message`). Never names internal rules or secrets.
    pub detail: Text<'a>,
    pub challenge: Challenge<'a>,
    /// Extra body members, in order.
    pub extras: [Extra<'a>; 2],
    pub headers: Headers<'a>,
    /// A 401/403 that `hidden = true` turns into a 404 (row 20).
    pub hideable: bool,
    /// A wrong secret: counts towards row 4's lock (not expired or revoked tokens, whose
    /// holders were once legitimate, nor our own outages).
    pub counts_as_failure: bool,
    /// Row 4's tarpit holds this answer for at most this many seconds.
    pub tarpit: Option<u64>,
    /// Counts towards the 401/403 spike alert (design §6); by its true status, so a hidden
    /// 404 still counts.
    pub alerts: bool,
    pub page: Page<'a>,
    /// The reason's index among those whose answer on a route carries no facts of its own
    /// (the same for every request but for `timestamp` and `request_id`): the edge prepares
    /// these once per route. `None`: the answer depends on the refusal's facts.
    pub fixed: Option<u8>,
    /// The audit record's `detail`: from the decision's facts only. Never a credential,
    /// token, `mfa_token` or unrecognised scheme word.
    pub audit: Text<'a>,
    /// The `grpc-status` a gRPC client gets alongside the HTTP status (see [`grpc_code`]).
    pub grpc: u8,
}

/// The gRPC status code (gRPC `doc/statuscodes.md`; the HTTP equivalents of
/// `google/rpc/code.proto`) that means what an HTTP refusal status means: 401
/// UNAUTHENTICATED, 403 and 451 PERMISSION_DENIED, 404 NOT_FOUND (row 20 hides a resource),
/// 429 and 413 RESOURCE_EXHAUSTED, 400 INVALID_ARGUMENT, 405 UNIMPLEMENTED, 502 and 503
/// UNAVAILABLE, 504 DEADLINE_EXCEEDED; anything else UNKNOWN.
pub const fn grpc_code(status: u16) -> u8 {
    match status {
        400 => 3,
        401 => 16,
        // 451 (RFC 7725) has no equivalent in `code.proto`; a legal block is a refusal.
        403 | 451 => 7,
        404 => 5,
        405 => 12,
        413 | 429 => 8,
        502 | 503 => 14,
        504 => 4,
        _ => 2,
    }
}

/// How many reasons have a [`Entry::fixed`] index.
pub const FIXED: usize = 13;

impl<'a> Entry<'a> {
    /// An entry with the defaults: no challenge, extras or headers; hideable and the page
    /// by row, alerting by status; not a failure, no tarpit; facts of its own.
    const fn base(
        code: &'static str,
        row: Option<u8>,
        status: u16,
        title: &'static str,
        detail: Text<'a>,
        audit: Text<'a>,
    ) -> Self {
        Self {
            code,
            row,
            status,
            title,
            detail,
            challenge: Challenge::None,
            extras: [Extra::None, Extra::None],
            headers: Headers {
                retry_after: None,
                rate_limit: None,
                allow: None,
                blocked_by: None,
            },
            // Rows 5–19 and 25 are the 401/403 outcomes row 20 hides.
            hideable: matches!(row, Some(5..=19 | 25)),
            counts_as_failure: false,
            tarpit: None,
            alerts: matches!(status, 401 | 403),
            page: Page::Missing {
                final_: matches!(row, Some(2 | 3 | 13..=19 | 25)),
            },
            fixed: None,
            audit,
            grpc: grpc_code(status),
        }
    }
    const fn challenge(mut self, c: Challenge<'a>) -> Self {
        self.challenge = c;
        self
    }
    const fn extras(mut self, a: Extra<'a>, b: Extra<'a>) -> Self {
        self.extras = [a, b];
        self
    }
    const fn retry_after(mut self, s: u64) -> Self {
        self.headers.retry_after = Some(s);
        self
    }
    const fn sign_in(mut self) -> Self {
        self.page = Page::SignIn;
        self
    }
    const fn fixed(mut self, i: u8) -> Self {
        self.fixed = Some(i);
        self
    }
}

use Fact as F;
use Text as T;

impl Deny {
    /// This refusal's entry of the table.
    pub fn entry(&self) -> Entry<'_> {
        match self {
            Self::ForbiddenPath => Entry::base(
                "forbidden_path",
                Some(2),
                403,
                "Forbidden",
                T::fixed("This path is not accessible."),
                T::fixed("route is `deny`"),
            )
            .fixed(0),
            Self::IpBlocked => Entry::base(
                "ip_blocked",
                Some(3),
                403,
                "Forbidden",
                T::fixed("Requests from your network are not allowed here."),
                T::fixed("client address not allowed on this route"),
            )
            .fixed(1),
            Self::TooManyAttempts { retry_after } => Entry {
                tarpit: Some(*retry_after),
                ..Entry::base(
                    "too_many_attempts",
                    Some(4),
                    429,
                    "Too many attempts",
                    T::with(
                        "Too many failed authentication attempts. Try again in ",
                        F::Num(*retry_after),
                        " seconds.",
                    ),
                    T::with(
                        "too many failed authentications; locked for ",
                        F::Num(*retry_after),
                        " s",
                    ),
                )
                .extras(Extra::Num("retry_after", *retry_after), Extra::None)
                .retry_after(*retry_after)
            },
            Self::MissingCredentials => Entry::base(
                "missing_credentials",
                Some(5),
                401,
                "Authentication required",
                T::fixed("This resource requires authentication."),
                T::fixed("no credentials"),
            )
            .challenge(Challenge::Accepted)
            .extras(Extra::AcceptedSchemes, Extra::None)
            .sign_in()
            .fixed(2),
            Self::UnsupportedScheme { presented } => Entry::base(
                "unsupported_scheme",
                Some(6),
                401,
                "Authentication required",
                T::with(
                    "The `",
                    F::Str(presented),
                    "` authentication scheme is not accepted here.",
                ),
                if is_known_scheme(presented) {
                    T::with(
                        "scheme `",
                        F::Lower(presented),
                        "` not accepted on this route",
                    )
                } else {
                    T::fixed("unrecognised authorization scheme")
                },
            )
            .challenge(Challenge::Accepted)
            .extras(Extra::AcceptedSchemes, Extra::None)
            .sign_in(),
            Self::InvalidRequest { detail } => Entry::base(
                "invalid_request",
                Some(7),
                400,
                "Bad request",
                T::with("", F::Str(detail), "."),
                T::with("", F::Str(detail), ""),
            )
            .challenge(Challenge::InvalidRequest)
            .sign_in(),
            Self::InvalidToken { detail } => Entry {
                counts_as_failure: true,
                ..Entry::base(
                    "invalid_token",
                    Some(8),
                    401,
                    "Invalid token",
                    T::with("The access token is invalid: ", F::Str(detail), "."),
                    T::with("token rejected: ", F::Str(detail), ""),
                )
                .challenge(Challenge::InvalidToken(T::with("", F::Str(detail), "")))
                .sign_in()
            },
            Self::TokenExpired { expired_at } => Entry::base(
                "token_expired",
                Some(9),
                401,
                "Token expired",
                T::fixed("The access token expired."),
                T::with("token expired at ", F::Time(*expired_at), ""),
            )
            .challenge(Challenge::InvalidToken(T::fixed(
                "The access token expired",
            )))
            .extras(Extra::Time("expired_at", *expired_at), Extra::None)
            .sign_in(),
            Self::TokenRevoked => Entry::base(
                "token_revoked",
                Some(10),
                401,
                "Token revoked",
                T::fixed("The access token has been revoked."),
                T::fixed("token or session revoked"),
            )
            .challenge(Challenge::InvalidToken(T::fixed(
                "The access token has been revoked",
            )))
            .sign_in()
            .fixed(3),
            Self::InvalidCredentials => Entry {
                counts_as_failure: true,
                ..Entry::base(
                    "invalid_credentials",
                    Some(11),
                    401,
                    "Invalid credentials",
                    T::fixed("The credentials are not valid."),
                    T::fixed("wrong credentials"),
                )
                .challenge(Challenge::Accepted)
                .extras(Extra::AcceptedSchemes, Extra::None)
                .sign_in()
                .fixed(4)
            },
            Self::StaleNonce => Entry::base(
                "stale_nonce",
                Some(12),
                401,
                "Stale nonce",
                T::fixed("The Digest nonce expired; retry with the new nonce."),
                T::fixed("digest nonce expired"),
            )
            .challenge(Challenge::StaleDigest),
            Self::AccountSuspended {
                suspended_at,
                reason,
            } => Entry::base(
                "account_suspended",
                Some(13),
                403,
                "Account suspended",
                T::fixed("This account is suspended."),
                T::with("account suspended: ", F::Str(reason), ""),
            )
            .extras(
                Extra::Time("suspended_at", *suspended_at),
                Extra::Str("reason", reason),
            ),
            Self::InsufficientUserAuthentication {
                acr_values,
                max_age,
            } => Entry::base(
                "insufficient_user_authentication",
                Some(14),
                401,
                "Stronger authentication required",
                match (acr_values, max_age) {
                    (Some(_), Some(age)) => T::with(
                        "This resource requires multi-factor authentication within the last ",
                        F::Num(*age),
                        " seconds.",
                    ),
                    (Some(_), None) => {
                        T::fixed("This resource requires multi-factor authentication.")
                    }
                    (None, Some(age)) => T::with(
                        "This resource requires an authentication within the last ",
                        F::Num(*age),
                        " seconds.",
                    ),
                    (None, None) => T::fixed("This resource requires a stronger authentication."),
                },
                T::with2(
                    "step-up needed (acr_values ",
                    F::OptStr(acr_values.as_deref()),
                    ", max_age ",
                    F::OptNum(*max_age),
                    ")",
                ),
            )
            .challenge(Challenge::StepUp {
                acr_values: acr_values.as_deref(),
                max_age: *max_age,
            })
            .extras(
                match acr_values {
                    Some(a) => Extra::Str("acr_values", a),
                    None => Extra::None,
                },
                match max_age {
                    Some(a) => Extra::Num("max_age", *a),
                    None => Extra::None,
                },
            )
            .sign_in(),
            Self::InsufficientRole { required } => Entry::base(
                "insufficient_role",
                Some(15),
                403,
                "Forbidden",
                T::fixed("You do not have a role that may access this resource."),
                T::with("lacks any of roles [", F::Join(required, ", "), "]"),
            )
            .extras(Extra::Disclosed("required_roles", required), Extra::None),
            // Scopes are part of the RFC 6750 challenge anyway, so they are always disclosed.
            Self::InsufficientScope { required } => Entry::base(
                "insufficient_scope",
                Some(16),
                403,
                "Insufficient scope",
                T::fixed("The credential lacks a scope this resource requires."),
                T::with("lacks scopes [", F::Join(required, " "), "]"),
            )
            .challenge(Challenge::Scope(required))
            .extras(Extra::List("required_scopes", required), Extra::None),
            Self::TenantMismatch => Entry::base(
                "tenant_mismatch",
                Some(17),
                403,
                "Forbidden",
                T::fixed("This resource belongs to another tenant."),
                T::fixed("path tenant is not the principal's"),
            )
            .fixed(5),
            Self::NotOwner => Entry::base(
                "not_owner",
                Some(18),
                403,
                "Forbidden",
                T::fixed("This resource belongs to another user."),
                T::fixed("path owner is not the subject"),
            )
            .fixed(6),
            Self::ReadOnly => Entry::base(
                "read_only",
                Some(19),
                403,
                "Forbidden",
                T::fixed("This credential is read-only; the method is not allowed."),
                T::fixed("read-only credential on an unsafe method"),
            )
            .fixed(7),
            // Row 25: no challenge — signing in again will not help; the user must act.
            Self::RequirementNotMet { unmet } => Entry::base(
                "requirement_not_met",
                Some(25),
                403,
                "Forbidden",
                T::fixed("A requirement of this resource is not met."),
                T::with("unmet requirements [", F::Codes(unmet), "]"),
            )
            .extras(Extra::Requirements(unmet), Extra::None),
            Self::UpstreamUnavailable => Entry::base(
                "upstream_unavailable",
                Some(21),
                502,
                "Bad gateway",
                T::fixed("The upstream service is unavailable."),
                T::fixed("upstream unreachable"),
            )
            .fixed(8),
            Self::UpstreamTimeout => Entry::base(
                "upstream_timeout",
                Some(21),
                504,
                "Gateway timeout",
                T::fixed("The upstream service did not answer in time."),
                T::fixed("upstream timed out"),
            )
            .fixed(9),
            Self::AuthUnavailable { retry_after } => Entry::base(
                "auth_unavailable",
                Some(22),
                503,
                "Service unavailable",
                T::fixed("Authentication is temporarily unavailable. Try again later."),
                T::fixed("an authentication dependency is unavailable"),
            )
            .extras(Extra::Num("retry_after", *retry_after), Extra::None)
            .retry_after(*retry_after),
            Self::RateLimited { retry_after, limit } => Entry {
                headers: Headers {
                    retry_after: Some(*retry_after),
                    rate_limit: Some(*limit),
                    allow: None,
                    blocked_by: None,
                },
                ..Entry::base(
                    "rate_limited",
                    Some(24),
                    429,
                    "Too many requests",
                    T::with(
                        "The request quota is exhausted. Try again in ",
                        F::Num(*retry_after),
                        " seconds.",
                    ),
                    T::with2(
                        "over the quota of ",
                        F::Num(u64::from(*limit)),
                        " requests; retry in ",
                        F::Num(*retry_after),
                        " s",
                    ),
                )
                .extras(Extra::Num("retry_after", *retry_after), Extra::None)
            },
            Self::InvalidPath { detail } => Entry::base(
                "invalid_path",
                None,
                400,
                "Bad request",
                T::with("The request path is not valid: ", F::Str(detail), "."),
                T::with("", F::Str(detail), ""),
            ),
            Self::MethodNotAllowed { allow } => Entry {
                headers: Headers {
                    retry_after: None,
                    rate_limit: None,
                    allow: Some(allow),
                    blocked_by: None,
                },
                ..Entry::base(
                    "method_not_allowed",
                    None,
                    405,
                    "Method not allowed",
                    T::fixed("This method is not allowed here."),
                    T::fixed("method not allowed"),
                )
            },
            Self::PayloadTooLarge => Entry::base(
                "payload_too_large",
                None,
                413,
                "Payload too large",
                T::fixed("The request body is too large."),
                T::fixed("request body too large"),
            )
            .fixed(10),
            Self::NotFound => Entry::base(
                "not_found",
                None,
                404,
                "Not found",
                T::fixed("Nothing is here."),
                T::fixed("nothing here"),
            )
            .fixed(11),
            // `mfa_required` is a 401 (RFC 9110 §15.5.2 wants a challenge): the accepted ones.
            // A step of a successful login, not a refusal: no alert.
            Self::MfaRequired { mfa_token } => Entry {
                page: Page::Code(mfa_token),
                alerts: false,
                ..Entry::base(
                    "mfa_required",
                    None,
                    401,
                    "Second factor required",
                    T::fixed("Enter the code from your authenticator app to finish signing in."),
                    T::fixed("password accepted; second factor required"),
                )
                .challenge(Challenge::Accepted)
                .extras(Extra::Str("mfa_token", mfa_token), Extra::None)
            },
            Self::CsrfRejected => Entry::base(
                "csrf_rejected",
                None,
                403,
                "Forbidden",
                T::fixed(
                    "This request did not come from this site; reload the page and try again.",
                ),
                T::fixed("cross-site request on a session cookie"),
            )
            .fixed(12),
            // OAuth's own code for a refused authorization (RFC 6749 §4.1.2.1).
            Self::SignInRefused { reason } => Entry::base(
                "access_denied",
                None,
                403,
                "Sign-in refused",
                T::fixed("Your identity provider account may not sign in here."),
                T::with("sign-in refused: ", F::Str(reason), ""),
            )
            .extras(Extra::Str("reason", reason), Extra::None),
            Self::GeoBlocked {
                country,
                legal,
                blocked_by,
            } => geo_blocked(
                country.as_ref().map(crate::geo::Country::as_str),
                *legal,
                blocked_by.as_deref(),
            ),
        }
    }
}

/// Row 26's entry: 403, or 451 for a legal block (RFC 7725 §3: "Unavailable For Legal
/// Reasons", with `Link: <…>; rel="blocked-by"` naming who requires it). Decided before
/// credentials, like row 3, so row 20 does not hide it and signing in cannot change it.
fn geo_blocked<'a>(
    country: Option<&'a str>,
    legal: bool,
    blocked_by: Option<&'a str>,
) -> Entry<'a> {
    let (status, title) = if legal {
        (451, "Unavailable for legal reasons")
    } else {
        (403, "Forbidden")
    };
    let (detail, audit) = match (country, legal) {
        (Some(c), false) => (
            T::with(
                "This resource is not available in your country (",
                F::Str(c),
                ").",
            ),
            T::with("client country `", F::Str(c), "` not allowed on this route"),
        ),
        (Some(c), true) => (
            T::with(
                "This resource is not available in your country (",
                F::Str(c),
                ") for legal reasons.",
            ),
            T::with(
                "client country `",
                F::Str(c),
                "` legally blocked on this route",
            ),
        ),
        (None, _) => (
            T::fixed("This resource is not available where your country cannot be determined."),
            T::fixed("client country unknown; not allowed on this route"),
        ),
    };
    Entry {
        page: Page::Missing { final_: true },
        headers: Headers {
            blocked_by: if legal { blocked_by } else { None },
            ..Headers::default()
        },
        ..Entry::base("geo_blocked", Some(26), status, title, detail, audit)
            .extras(Extra::OptStr("country", country), Extra::None)
    }
}

/// A scheme word Gatehouse may name in an audit record ([`KNOWN_SCHEMES`]).
fn is_known_scheme(presented: &str) -> bool {
    KNOWN_SCHEMES
        .iter()
        .any(|k| k.eq_ignore_ascii_case(presented))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One refusal of each kind. The match makes this list fail to compile when a reason is
    /// added without being listed here.
    fn one_of_each() -> Vec<Deny> {
        let all = vec![
            Deny::ForbiddenPath,
            Deny::IpBlocked,
            Deny::TooManyAttempts { retry_after: 7 },
            Deny::MissingCredentials,
            Deny::UnsupportedScheme {
                presented: "Negotiate".into(),
            },
            Deny::InvalidRequest {
                detail: "two credentials".into(),
            },
            Deny::InvalidToken {
                detail: "signature does not match".into(),
            },
            Deny::TokenExpired { expired_at: 60 },
            Deny::TokenRevoked,
            Deny::InvalidCredentials,
            Deny::StaleNonce,
            Deny::AccountSuspended {
                suspended_at: 60,
                reason: "left".into(),
            },
            Deny::InsufficientUserAuthentication {
                acr_values: Some("mfa".into()),
                max_age: Some(600),
            },
            Deny::InsufficientRole {
                required: vec!["admin".into()],
            },
            Deny::InsufficientScope {
                required: vec!["a:b".into()],
            },
            Deny::TenantMismatch,
            Deny::NotOwner,
            Deny::ReadOnly,
            Deny::UpstreamUnavailable,
            Deny::UpstreamTimeout,
            Deny::AuthUnavailable { retry_after: 5 },
            Deny::RateLimited {
                retry_after: 9,
                limit: 100,
            },
            Deny::InvalidPath {
                detail: "`..` segment".into(),
            },
            Deny::MethodNotAllowed { allow: "POST" },
            Deny::PayloadTooLarge,
            Deny::NotFound,
            Deny::MfaRequired {
                mfa_token: "secret-mfa-token".into(),
            },
            Deny::CsrfRejected,
            Deny::SignInRefused {
                reason: "outside the allowed domains".into(),
            },
            Deny::GeoBlocked {
                country: crate::geo::Country::parse("KP"),
                legal: true,
                blocked_by: Some("https://authority.example/order".into()),
            },
            Deny::RequirementNotMet {
                unmet: vec![crate::requirements::condition_error()],
            },
        ];
        for d in &all {
            match d {
                Deny::ForbiddenPath
                | Deny::IpBlocked
                | Deny::TooManyAttempts { .. }
                | Deny::MissingCredentials
                | Deny::UnsupportedScheme { .. }
                | Deny::InvalidRequest { .. }
                | Deny::InvalidToken { .. }
                | Deny::TokenExpired { .. }
                | Deny::TokenRevoked
                | Deny::InvalidCredentials
                | Deny::StaleNonce
                | Deny::AccountSuspended { .. }
                | Deny::InsufficientUserAuthentication { .. }
                | Deny::InsufficientRole { .. }
                | Deny::InsufficientScope { .. }
                | Deny::TenantMismatch
                | Deny::NotOwner
                | Deny::ReadOnly
                | Deny::UpstreamUnavailable
                | Deny::UpstreamTimeout
                | Deny::AuthUnavailable { .. }
                | Deny::RateLimited { .. }
                | Deny::InvalidPath { .. }
                | Deny::MethodNotAllowed { .. }
                | Deny::PayloadTooLarge
                | Deny::NotFound
                | Deny::MfaRequired { .. }
                | Deny::CsrfRejected
                | Deny::SignInRefused { .. }
                | Deny::GeoBlocked { .. }
                | Deny::RequirementNotMet { .. } => {}
            }
        }
        all
    }

    #[test]
    fn every_refusing_row_of_the_contract_has_an_entry() {
        let all = one_of_each();
        // Rows 1 and 23 pass, row 20 rewrites another row.
        for row in (2..=19).chain([21, 22, 24, 25, 26]) {
            assert!(
                all.iter().any(|d| d.entry().row == Some(row)),
                "row {row} has no entry"
            );
        }
        let mut codes: Vec<_> = all.iter().map(|d| d.entry().code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len(), "a code is used twice");
    }

    #[test]
    fn hideable_is_exactly_rows_5_to_19_and_25() {
        for d in one_of_each() {
            let e = d.entry();
            let refusal_row = e.row.is_some_and(|r| (5..=19).contains(&r) || r == 25);
            assert_eq!(e.hideable, refusal_row, "{d:?}");
            if e.hideable {
                assert!(matches!(e.status, 400 | 401 | 403), "{d:?}");
            }
        }
    }

    #[test]
    fn fixed_answers_have_no_facts_and_distinct_slots() {
        let mut seen = [false; FIXED];
        for d in one_of_each() {
            let e = d.entry();
            let Some(i) = e.fixed else { continue };
            let i = usize::from(i);
            assert!(!seen[i], "{d:?} shares slot {i}");
            seen[i] = true;
            assert!(e.detail.as_static().is_some(), "{d:?}");
            assert!(e.audit.as_static().is_some(), "{d:?}");
            assert!(
                e.extras
                    .iter()
                    .all(|x| matches!(x, Extra::None | Extra::AcceptedSchemes)),
                "{d:?}"
            );
            assert_eq!(e.headers, Headers::default(), "{d:?}");
        }
        assert!(seen.iter().all(|s| *s), "a slot is unused");
    }

    #[test]
    fn only_wrong_secrets_count_and_only_locks_are_held() {
        for d in one_of_each() {
            let e = d.entry();
            assert_eq!(
                e.counts_as_failure,
                matches!(e.code, "invalid_credentials" | "invalid_token"),
                "{d:?}"
            );
            assert_eq!(e.tarpit.is_some(), e.row == Some(4), "{d:?}");
        }
    }

    #[test]
    fn audit_texts_carry_no_secret_and_no_unknown_scheme_word() {
        for d in one_of_each() {
            let audit = d.entry().audit.to_text();
            assert!(!audit.contains("secret-mfa-token"), "{audit}");
            assert!(!audit.is_empty(), "{d:?}");
        }
        let bare = Deny::UnsupportedScheme {
            presented: "c2VjcmV0".into(),
        };
        assert_eq!(
            bare.entry().audit.to_text(),
            "unrecognised authorization scheme"
        );
        let known = Deny::UnsupportedScheme {
            presented: "NeGoTiate".into(),
        };
        assert_eq!(
            known.entry().audit.to_text(),
            "scheme `negotiate` not accepted on this route"
        );
    }

    #[test]
    fn texts_splice_their_facts() {
        let t = Text::with2("a ", Fact::Num(3), " b ", Fact::OptStr(None), ".");
        assert_eq!(t.to_text(), "a 3 b -.");
        assert_eq!(t.as_static(), None);
        assert_eq!(Text::fixed("x").as_static(), Some("x"));
        let roles = ["a".to_owned(), "b".to_owned()];
        assert_eq!(
            Text::with("[", Fact::Join(&roles, ", "), "]").to_text(),
            "[a, b]"
        );
    }
}
