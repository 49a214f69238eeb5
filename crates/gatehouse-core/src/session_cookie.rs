//! The browser session cookie's value (the `session` scheme): found among `Cookie` header
//! lines (RFC 6265 §5.4: `name=value` pairs separated by `;`), then opened — the seal
//! ([`crate::sealed`]), the shape `v1.<sid>.<user>.<acr>.<auth_time>.<expires_at>[.<provider>]`
//! and the expiry. Revocation and the account are the edge's (they need the store).

use crate::sealed::{field, open as open_sealed, seal, unfield};

/// The cookie's name.
pub const COOKIE: &str = "gatehouse_session";

/// What a valid cookie says.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// The sealed value for a session (`sid` and `acr` are ours: no `.`; `user` and `provider`
/// may be any text, they are base64url-encoded).
pub fn value(
    key: &[u8; 32],
    sid: &str,
    user: &str,
    acr: &str,
    auth_time: i64,
    expires_at: i64,
    provider: Option<&str>,
) -> String {
    let mut payload = format!("v1.{sid}.{}.{acr}.{auth_time}.{expires_at}", field(user));
    if let Some(p) = provider {
        payload.push('.');
        payload.push_str(&field(p));
    }
    seal(key, &payload)
}

/// The session cookie's value among the `Cookie` header lines, if one is there and not
/// empty (the first such pair wins).
pub fn find<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    find_named(lines, COOKIE)
}

/// The value of the cookie `name` among the `Cookie` header lines, if one is there and not
/// empty (the first such pair wins).
pub fn find_named<'a>(lines: impl IntoIterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    lines
        .into_iter()
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// Opens a cookie value: seal, shape and expiry (not revocation: that is the caller's).
pub fn open(key: &[u8; 32], value: &str, now: i64) -> Option<SessionCookie> {
    let payload = open_sealed(key, value)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [3; 32];

    #[test]
    fn a_sealed_cookie_opens_until_it_expires() {
        let v = value(&KEY, "s1", "ann.o'neil", "pwd", 100, 200, None);
        let line = format!("theme=dark; {COOKIE}={v}; other=1");
        let found = find([line.as_str()]);
        assert_eq!(found, Some(v.as_str()));
        let c = open(&KEY, &v, 150);
        assert_eq!(
            c,
            Some(SessionCookie {
                session_id: "s1".into(),
                user: "ann.o'neil".into(),
                acr: "pwd".into(),
                auth_time: 100,
                expires_at: 200,
                provider: None,
            })
        );
        assert_eq!(open(&KEY, &v, 200), None, "expired");
        assert_eq!(open(&[4; 32], &v, 150), None, "another key");
        let v = value(&KEY, "s2", "bo", "sso", 100, 200, Some("corp.idp"));
        let c = open(&KEY, &v, 150).map(|c| c.provider);
        assert_eq!(
            c,
            Some(Some("corp.idp".into())),
            "the provider survives its dot"
        );
    }

    #[test]
    fn empty_missing_and_lookalike_cookies_are_not_found() {
        assert_eq!(find([format!("{COOKIE}=").as_str()]), None);
        assert_eq!(find(["a=1; b=2"]), None);
        assert_eq!(find([format!("x{COOKIE}=v").as_str()]), None);
        assert_eq!(find(["a=1", &format!("{COOKIE}=v")]), Some("v"));
    }
}
