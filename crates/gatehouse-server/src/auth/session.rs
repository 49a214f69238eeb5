//! The browser session (`session` scheme): an HttpOnly, SameSite=Lax cookie that names the
//! login session, sealed with a key derived from the master secret. Each request checks the
//! seal, the expiry and the revocation list, then reads the account from the store (roles,
//! tenant and suspension are always current). Unsafe methods on cookie sessions must come
//! from the same origin (`Sec-Fetch-Site`, else `Origin` against `Host`): CSRF protection.

use gatehouse_core::Scheme;
use gatehouse_core::principal::Principal;
use http::HeaderMap;

use super::KEY_SESSION;
use super::signed::{field, seal, unfield};
use crate::keys::Secrets;

pub const COOKIE: &str = "gatehouse_session";

/// What a valid cookie says.
pub struct SessionCookie {
    pub session_id: String,
    pub user: String,
    pub acr: String,
    pub auth_time: i64,
    pub expires_at: i64,
    /// The `[[login_providers]]` entry the user signed in through (step-up at the provider,
    /// RP-initiated logout); `None` for a password sign-in.
    pub provider: Option<String>,
}

/// `v1.<sid>.<user>.<acr>.<auth_time>.<expires_at>` sealed.
pub fn cookie_value(
    secrets: &Secrets,
    sid: &str,
    user: &str,
    acr: &str,
    auth_time: i64,
    expires_at: i64,
    provider: Option<&str>,
) -> String {
    // `v1.<sid>.<user>.<acr>.<auth_time>.<expires_at>[.<provider>]`
    let mut payload = format!("v1.{sid}.{}.{acr}.{auth_time}.{expires_at}", field(user));
    if let Some(p) = provider {
        payload.push('.');
        payload.push_str(&field(p));
    }
    seal(&secrets.derive(KEY_SESSION), &payload)
}

pub fn set_cookie(value: &str, max_age: i64, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

pub fn clear_cookie(secure: bool) -> String {
    set_cookie("", 0, secure)
}

/// The session cookie's value, if the request has one.
pub fn cookie_from(headers: &HeaderMap) -> Option<&str> {
    cookie_named(headers, COOKIE)
}

/// The value of the cookie `name`, if the request has a non-empty one.
pub fn cookie_named<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// Opens a cookie: seal, shape and expiry (not revocation: that is the caller's).
pub fn open(secrets: &Secrets, value: &str, now: i64) -> Option<SessionCookie> {
    let payload = open_with(&secrets.derive(KEY_SESSION), value)?;
    let mut p = payload.split('.');
    let (Some("v1"), Some(sid), Some(user), Some(acr), Some(at), Some(exp), provider, None) = (
        p.next(),
        p.next(),
        p.next(),
        p.next(),
        p.next(),
        p.next(),
        p.next(),
        p.next(),
    ) else {
        return None;
    };
    let provider = match provider {
        Some(f) => Some(unfield(f)?),
        None => None,
    };
    let expires_at: i64 = exp.parse().ok()?;
    if expires_at <= now {
        return None;
    }
    Some(SessionCookie {
        session_id: sid.to_owned(),
        user: unfield(user)?,
        acr: acr.to_owned(),
        auth_time: at.parse().ok()?,
        expires_at,
        provider,
    })
}

fn open_with<'a>(key: &[u8; 32], value: &'a str) -> Option<&'a str> {
    super::signed::open(key, value)
}

/// A principal for a verified cookie, filled from the account.
pub fn principal(c: &SessionCookie, user: &gatehouse_store::User) -> Principal {
    let mut p = Principal::new(user.name.clone(), Scheme::Session);
    p.roles.clone_from(&user.roles);
    p.tenant.clone_from(&user.tenant);
    p.account = user.status.clone();
    p.acr = Some(c.acr.clone());
    p.auth_time = Some(c.auth_time);
    p.session_id = Some(c.session_id.clone());
    p.expires_at = Some(c.expires_at);
    p
}

/// CSRF check for unsafe requests that ride on the cookie: the browser must say the request
/// is same-origin (`Sec-Fetch-Site: same-origin` or `none`), or — for browsers without Fetch
/// Metadata — send an `Origin` whose host is the `Host` we were addressed by.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let get = |n| {
        headers
            .get(n)
            .and_then(|v: &http::HeaderValue| v.to_str().ok())
    };
    if let Some(site) = get("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    let (Some(origin), Some(host)) = (get("origin"), get("host")) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, h)| h.eq_ignore_ascii_case(host))
}
