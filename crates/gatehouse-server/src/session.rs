//! The browser session (`session` scheme): an HttpOnly, SameSite=Lax cookie that names the
//! login session, sealed with a key derived from the master secret. Each request checks the
//! seal, the expiry and the revocation list, then reads the account from the store (roles,
//! tenant and suspension are always current). Unsafe methods on cookie sessions must come
//! from the same origin (`Sec-Fetch-Site`, else `Origin` against `Host`): CSRF protection.

use gatehouse_core::Scheme;
use gatehouse_core::principal::Principal;
pub use gatehouse_core::session_cookie::{COOKIE, SessionCookie};
use http::HeaderMap;

use crate::keys::Secrets;

/// Purpose of the key (derived from the master secret) that seals the cookie.
pub const KEY_SESSION: &str = "gatehouse/session-cookie/v1";

/// `v1.<sid>.<user>.<acr>.<auth_time>.<expires_at>` sealed with the session key.
pub fn cookie_value(
    secrets: &Secrets,
    sid: &str,
    user: &str,
    acr: &str,
    auth_time: i64,
    expires_at: i64,
    provider: Option<&str>,
) -> String {
    gatehouse_core::session_cookie::value(
        &secrets.derive(KEY_SESSION),
        sid,
        user,
        acr,
        auth_time,
        expires_at,
        provider,
    )
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
    gatehouse_core::session_cookie::find_named(
        headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        name,
    )
}

/// Opens a cookie: seal, shape and expiry (not revocation: that is the caller's).
pub fn open(secrets: &Secrets, value: &str, now: i64) -> Option<SessionCookie> {
    gatehouse_core::session_cookie::open(&secrets.derive(KEY_SESSION), value, now)
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
