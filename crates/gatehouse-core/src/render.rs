//! The one table: a refusal → status, challenges, headers and body (design §2).
//!
//! This is the only place in Gatehouse where a status code for a refusal is chosen. Bodies
//! are `application/problem+json` (RFC 9457) with the members `type`, `title`, `status`,
//! `detail`, `error`, `message`, `timestamp`, `request_id` and the row's extra members; or an
//! HTML page for browsers (design §2 "Browsers").

mod html;

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::config::{Disclosure, Scheme};
use crate::deny::Deny;
use crate::digest::DigestChallenge;

pub use html::escape_html;

/// Everything besides the refusal that shapes the response.
#[derive(Debug, Clone, Copy)]
pub struct RenderCtx<'a> {
    pub realm: &'a str,
    /// Accepted schemes of the matched route, in config order.
    pub accepted: &'a [Scheme],
    pub disclosure: Disclosure,
    pub scope_challenge: bool,
    /// The client prefers `text/html` (see [`crate::accept::prefers_html`]).
    pub html: bool,
    pub request_id: &'a str,
    /// Unix seconds.
    pub now: i64,
    /// The original request target, for the sign-in page's return URL (same origin only).
    pub return_to: &'a str,
    /// A fresh nonce and the realm's opaque for Digest challenges, computed by the edge per
    /// response (core reads no randomness). `None`: no Digest challenge is emitted.
    pub digest: Option<&'a DigestChallenge>,
}

/// A rendered refusal. Header names are lower-case; `www-authenticate` may repeat (one
/// challenge per accepted scheme, RFC 9110 §11.6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub status: u16,
    /// The `error` code shown (`not_found` when row 20 hid the true one).
    pub error: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub content_type: &'static str,
    pub body: String,
}

/// Status of a refusal; `hidden` applies row 20.
pub const fn status(deny: &Deny, hidden: bool) -> u16 {
    if hidden && deny.hideable() {
        return 404;
    }
    match deny {
        Deny::ForbiddenPath | Deny::IpBlocked => 403,
        Deny::TooManyAttempts { .. } | Deny::RateLimited { .. } => 429,
        Deny::MissingCredentials
        | Deny::UnsupportedScheme { .. }
        | Deny::InvalidToken { .. }
        | Deny::TokenExpired { .. }
        | Deny::TokenRevoked
        | Deny::InvalidCredentials
        | Deny::StaleNonce
        | Deny::InsufficientUserAuthentication { .. } => 401,
        Deny::InvalidRequest { .. } | Deny::InvalidPath { .. } => 400,
        Deny::AccountSuspended { .. }
        | Deny::InsufficientRole { .. }
        | Deny::InsufficientScope { .. }
        | Deny::TenantMismatch
        | Deny::NotOwner
        | Deny::ReadOnly => 403,
        Deny::UpstreamUnavailable => 502,
        Deny::UpstreamTimeout => 504,
        Deny::AuthUnavailable { .. } => 503,
        Deny::MethodNotAllowed { .. } => 405,
        Deny::PayloadTooLarge => 413,
        Deny::NotFound => 404,
        Deny::MfaRequired { .. } => 401,
        Deny::CsrfRejected => 403,
    }
}

/// Title and human text of each code. Texts never name internal rules or secrets.
fn title_detail(deny: &Deny) -> (&'static str, String) {
    match deny {
        Deny::ForbiddenPath => ("Forbidden", "This path is not accessible.".into()),
        Deny::IpBlocked => (
            "Forbidden",
            "Requests from your network are not allowed here.".into(),
        ),
        Deny::TooManyAttempts { retry_after } => (
            "Too many attempts",
            format!("Too many failed authentication attempts. Try again in {retry_after} seconds."),
        ),
        Deny::MissingCredentials => (
            "Authentication required",
            "This resource requires authentication.".into(),
        ),
        Deny::UnsupportedScheme { presented } => (
            "Authentication required",
            format!("The `{presented}` authentication scheme is not accepted here."),
        ),
        Deny::InvalidRequest { detail } => ("Bad request", format!("{detail}.")),
        Deny::InvalidToken { detail } => (
            "Invalid token",
            format!("The access token is invalid: {detail}."),
        ),
        Deny::TokenExpired { .. } => ("Token expired", "The access token expired.".into()),
        Deny::TokenRevoked => ("Token revoked", "The access token has been revoked.".into()),
        Deny::InvalidCredentials => (
            "Invalid credentials",
            "The credentials are not valid.".into(),
        ),
        Deny::StaleNonce => (
            "Stale nonce",
            "The Digest nonce expired; retry with the new nonce.".into(),
        ),
        Deny::AccountSuspended { .. } => ("Account suspended", "This account is suspended.".into()),
        Deny::InsufficientUserAuthentication {
            acr_values,
            max_age,
        } => (
            "Stronger authentication required",
            match (acr_values, max_age) {
                (Some(_), Some(age)) => format!(
                    "This resource requires multi-factor authentication within the last {age} seconds."
                ),
                (Some(_), None) => "This resource requires multi-factor authentication.".into(),
                (None, Some(age)) => {
                    format!(
                        "This resource requires an authentication within the last {age} seconds."
                    )
                }
                (None, None) => "This resource requires a stronger authentication.".into(),
            },
        ),
        Deny::InsufficientRole { .. } => (
            "Forbidden",
            "You do not have a role that may access this resource.".into(),
        ),
        Deny::InsufficientScope { .. } => (
            "Insufficient scope",
            "The credential lacks a scope this resource requires.".into(),
        ),
        Deny::TenantMismatch => (
            "Forbidden",
            "This resource belongs to another tenant.".into(),
        ),
        Deny::NotOwner => ("Forbidden", "This resource belongs to another user.".into()),
        Deny::ReadOnly => (
            "Forbidden",
            "This credential is read-only; the method is not allowed.".into(),
        ),
        Deny::UpstreamUnavailable => ("Bad gateway", "The upstream service is unavailable.".into()),
        Deny::UpstreamTimeout => (
            "Gateway timeout",
            "The upstream service did not answer in time.".into(),
        ),
        Deny::AuthUnavailable { .. } => (
            "Service unavailable",
            "Authentication is temporarily unavailable. Try again later.".into(),
        ),
        Deny::RateLimited { retry_after, .. } => (
            "Too many requests",
            format!("The request quota is exhausted. Try again in {retry_after} seconds."),
        ),
        Deny::InvalidPath { detail } => (
            "Bad request",
            format!("The request path is not valid: {detail}."),
        ),
        Deny::MethodNotAllowed { .. } => (
            "Method not allowed",
            "This method is not allowed here.".into(),
        ),
        Deny::PayloadTooLarge => ("Payload too large", "The request body is too large.".into()),
        Deny::NotFound => ("Not found", "Nothing is here.".into()),
        Deny::MfaRequired { .. } => (
            "Second factor required",
            "Enter the code from your authenticator app to finish signing in.".into(),
        ),
        Deny::CsrfRejected => (
            "Forbidden",
            "This request did not come from this site; reload the page and try again.".into(),
        ),
    }
}

/// `type` member: a stable URN per code (RFC 9457 §3.1.1 allows any URI).
fn type_uri(code: &str) -> String {
    format!("urn:gatehouse:problem:{code}")
}

/// Appends `name="value"` with RFC 9110 §5.6.4 quoted-string escaping.
pub(crate) fn push_param(out: &mut String, name: &str, value: &str) {
    if !out.ends_with(' ') {
        out.push_str(", ");
    }
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// The challenge of one scheme without error attributes (rows 5, 6, 11).
pub fn plain_challenge(scheme: Scheme, realm: &str) -> Option<String> {
    let mut c = String::with_capacity(48);
    match scheme {
        Scheme::Bearer => {
            c.push_str("Bearer ");
            push_param(&mut c, "realm", realm);
        }
        // RFC 7617 §2.1: announce UTF-8.
        Scheme::Basic => {
            c.push_str("Basic ");
            push_param(&mut c, "realm", realm);
            push_param(&mut c, "charset", "UTF-8");
        }
        // API keys have no registered scheme; this names the header so a client can act.
        Scheme::ApiKey => {
            c.push_str("ApiKey ");
            push_param(&mut c, "realm", realm);
            push_param(&mut c, "header", "X-API-Key");
        }
        // Digest challenges carry a fresh nonce: see [`RenderCtx::digest`]. Sessions are
        // cookies and have no challenge.
        Scheme::Digest | Scheme::Session => return None,
    }
    Some(c)
}

/// `Bearer realm=…, error=…[, error_description=…]` (RFC 6750 §3).
fn bearer_error(realm: &str, error: &str, description: Option<&str>) -> String {
    let mut c = String::from("Bearer ");
    push_param(&mut c, "realm", realm);
    push_param(&mut c, "error", error);
    if let Some(d) = description {
        push_param(&mut c, "error_description", d);
    }
    c
}

/// The `WWW-Authenticate` values of a refusal (empty for rows without a challenge).
pub fn challenges(deny: &Deny, ctx: &RenderCtx<'_>) -> Vec<String> {
    let bearer = ctx.accepted.contains(&Scheme::Bearer);
    let realm = ctx.realm;
    match deny {
        // Rows 5, 6, 11: one challenge per accepted scheme, no error attribute
        // (RFC 6750 §3.1: no error code when the request lacked authentication).
        // `mfa_required` is a 401 too (RFC 9110 §15.5.2 wants a challenge): the same ones.
        Deny::MissingCredentials
        | Deny::UnsupportedScheme { .. }
        | Deny::InvalidCredentials
        | Deny::MfaRequired { .. } => {
            let mut out = Vec::with_capacity(ctx.accepted.len() + 1);
            for &scheme in ctx.accepted {
                match (scheme, ctx.digest) {
                    // SHA-256 before MD5 when both are allowed (RFC 7616 §3.7).
                    (Scheme::Digest, Some(d)) => out.extend(d.render(realm, false)),
                    _ => out.extend(plain_challenge(scheme, realm)),
                }
            }
            out
        }
        // Row 12: the client spoke Digest with an expired nonce; only Digest challenges,
        // marked `stale=true` so it retries without asking the user (RFC 7616 §3.3).
        Deny::StaleNonce => match ctx.digest {
            Some(d) if ctx.accepted.contains(&Scheme::Digest) => d.render(realm, true),
            _ => Vec::new(),
        },
        // Row 7 (RFC 6750 §3.1 invalid_request), only where Bearer is accepted.
        Deny::InvalidRequest { .. } if bearer => vec![bearer_error(realm, "invalid_request", None)],
        Deny::InvalidToken { detail } => {
            vec![bearer_error(
                realm,
                "invalid_token",
                Some(&capitalize(detail)),
            )]
        }
        Deny::TokenExpired { .. } => vec![bearer_error(
            realm,
            "invalid_token",
            Some("The access token expired"),
        )],
        Deny::TokenRevoked => vec![bearer_error(
            realm,
            "invalid_token",
            Some("The access token has been revoked"),
        )],
        // Row 14, RFC 9470 §3.
        Deny::InsufficientUserAuthentication {
            acr_values,
            max_age,
        } => {
            let (_, detail) = title_detail(deny);
            let mut c = bearer_error(
                realm,
                "insufficient_user_authentication",
                Some(detail.trim_end_matches('.')),
            );
            if let Some(acr) = acr_values {
                push_param(&mut c, "acr_values", acr);
            }
            if let Some(age) = max_age {
                // RFC 9470 §3 shows max_age as a token, unquoted.
                let _ = write!(c, ", max_age={age}");
            }
            vec![c]
        }
        // Row 16, RFC 6750 §3.1.
        Deny::InsufficientScope { required } if ctx.scope_challenge => {
            let mut c = bearer_error(realm, "insufficient_scope", None);
            push_param(&mut c, "scope", &required.join(" "));
            vec![c]
        }
        _ => Vec::new(),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// RFC 3339 UTC timestamp of unix seconds.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// The problem body's members (RFC 9457), including the row's extra members.
pub fn problem(deny: &Deny, hidden: bool, ctx: &RenderCtx<'_>) -> Map<String, Value> {
    let shown = if hidden && deny.hideable() {
        &Deny::NotFound
    } else {
        deny
    };
    let (title, detail) = title_detail(shown);
    let code = shown.code();
    let mut m = Map::with_capacity(12);
    m.insert("type".into(), Value::String(type_uri(code)));
    m.insert("title".into(), Value::String(title.into()));
    m.insert("status".into(), json!(status(shown, false)));
    m.insert("detail".into(), Value::String(detail.clone()));
    m.insert("error".into(), Value::String(code.into()));
    m.insert("message".into(), Value::String(detail));
    m.insert("timestamp".into(), Value::String(rfc3339(ctx.now)));
    m.insert("request_id".into(), Value::String(ctx.request_id.into()));
    match shown {
        Deny::TokenExpired { expired_at } => {
            m.insert("expired_at".into(), Value::String(rfc3339(*expired_at)));
        }
        Deny::AccountSuspended {
            suspended_at,
            reason,
        } => {
            m.insert("suspended_at".into(), Value::String(rfc3339(*suspended_at)));
            m.insert("reason".into(), Value::String(reason.clone()));
        }
        Deny::InsufficientRole { required } if ctx.disclosure == Disclosure::Helpful => {
            m.insert("required_roles".into(), json!(required));
        }
        // Scopes are part of the RFC 6750 challenge anyway, so they are always disclosed.
        Deny::InsufficientScope { required } => {
            m.insert("required_scopes".into(), json!(required));
        }
        Deny::InsufficientUserAuthentication {
            acr_values,
            max_age,
        } => {
            if let Some(a) = acr_values {
                m.insert("acr_values".into(), Value::String(a.clone()));
            }
            if let Some(a) = max_age {
                m.insert("max_age".into(), json!(a));
            }
        }
        Deny::TooManyAttempts { retry_after }
        | Deny::RateLimited { retry_after, .. }
        | Deny::AuthUnavailable { retry_after } => {
            m.insert("retry_after".into(), json!(retry_after));
        }
        Deny::UnsupportedScheme { .. } | Deny::MissingCredentials | Deny::InvalidCredentials => {
            let schemes: Vec<&str> = ctx.accepted.iter().map(|s| s.as_str()).collect();
            m.insert("accepted_schemes".into(), json!(schemes));
        }
        Deny::MfaRequired { mfa_token } => {
            m.insert("mfa_token".into(), Value::String(mfa_token.clone()));
        }
        _ => {}
    }
    m
}

/// Renders a refusal completely. `hidden` applies row 20.
pub fn render(deny: &Deny, hidden: bool, ctx: &RenderCtx<'_>) -> Rendered {
    let hide = hidden && deny.hideable();
    let status = status(deny, hide);
    let mut headers: Vec<(&'static str, String)> = Vec::with_capacity(4);
    if !hide {
        for c in challenges(deny, ctx) {
            headers.push(("www-authenticate", c));
        }
        if let Deny::TooManyAttempts { retry_after }
        | Deny::RateLimited { retry_after, .. }
        | Deny::AuthUnavailable { retry_after } = deny
        {
            // RFC 9110 §10.2.3 / RFC 6585 §4.
            headers.push(("retry-after", retry_after.to_string()));
        }
        if let Deny::RateLimited { retry_after, limit } = deny {
            // draft-ietf-httpapi-ratelimit-headers (the widely deployed -Limit/-Remaining/-Reset form).
            headers.push(("ratelimit-limit", limit.to_string()));
            headers.push(("ratelimit-remaining", "0".to_owned()));
            headers.push(("ratelimit-reset", retry_after.to_string()));
        }
        if let Deny::MethodNotAllowed { allow } = deny {
            headers.push(("allow", (*allow).to_owned()));
        }
    }
    // Refusals are personal and must not be cached by shared caches.
    headers.push(("cache-control", "no-store".to_owned()));
    let body = problem(deny, hidden, ctx);
    let error = if hide {
        Deny::NotFound.code()
    } else {
        deny.code()
    };
    if ctx.html {
        let page = html::page(deny, hide, &body, ctx);
        return Rendered {
            status,
            error,
            headers,
            content_type: "text/html; charset=utf-8",
            body: page,
        };
    }
    Rendered {
        status,
        error,
        headers,
        content_type: "application/problem+json",
        body: Value::Object(body).to_string(),
    }
}

#[cfg(test)]
mod tests;
