//! The session cookie (`session` scheme): `Cookie` header lines → the cookie's value →
//! the seal, the shape and the expiry (`gatehouse_core::session_cookie`, RFC 6265 §5.4).
//!
//! Two halves, chosen by the first byte:
//! - even: the rest is `Cookie` lines (split at `\n`); nothing the fuzzer writes opens with
//!   the key (it does not hold it: any acceptance is a forged session);
//! - odd: the rest makes up a session's fields (user, times, and cookies around ours); the
//!   harness seals it with the key, and the cookie found among the lines opens to exactly
//!   those fields, until its expiry and never after it.
#![no_main]

use gatehouse_core::session_cookie::{COOKIE, SessionCookie, find, open, value};
use libfuzzer_sys::fuzz_target;

const KEY: [u8; 32] = *b"a fuzzing session-cookie key....";
const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    if first & 1 == 0 {
        let text = String::from_utf8_lossy(rest);
        if let Some(v) = find(text.split('\n')) {
            assert!(!v.is_empty());
            assert!(!v.contains(';'), "a value runs past its pair: {v:?}");
            assert_eq!(open(&KEY, v, NOW), None, "a forged cookie opened");
        }
        return;
    }
    // Fields: 8 bytes of times, then the user name, `\0`, then cookies before ours.
    if rest.len() < 8 {
        return;
    }
    let (times, tail) = rest.split_at(8);
    let auth_time = i64::from(i32::from_le_bytes([times[0], times[1], times[2], times[3]]));
    let ttl = i64::from(u32::from_le_bytes([times[4], times[5], times[6], times[7]]));
    let text = String::from_utf8_lossy(tail);
    let (user, rest) = text.split_once('\0').unwrap_or((&text, ""));
    // A third field, when there is one, names the login provider the session came from.
    let (before, provider) = match rest.split_once('\0') {
        Some((b, p)) => (b, Some(p)),
        None => (rest, None),
    };
    let expires_at = NOW - 1000 + ttl;
    let v = value(&KEY, "sid-1", user, "pwd", auth_time, expires_at, provider);
    // Cookies the browser sent before ours: only well-formed other pairs (a browser never
    // sends ours twice, nor a pair that runs into ours).
    let others: Vec<&str> = before
        .split(';')
        .map(str::trim)
        .filter(|p| p.split_once('=').is_some_and(|(n, _)| !n.is_empty() && n != COOKIE))
        .collect();
    let line = others
        .iter()
        .copied()
        .chain(std::iter::once(format!("{COOKIE}={v}").as_str()))
        .collect::<Vec<_>>()
        .join("; ");
    let found = find([line.as_str()]);
    assert_eq!(found, Some(v.as_str()), "the cookie is found in {line:?}");
    let opened = open(&KEY, &v, NOW);
    if expires_at > NOW {
        assert_eq!(
            opened,
            Some(SessionCookie {
                session_id: "sid-1".into(),
                user: user.to_owned(),
                acr: "pwd".into(),
                auth_time,
                expires_at,
                provider: provider.map(str::to_owned),
            })
        );
    } else {
        assert_eq!(opened, None, "an expired cookie opened");
    }
    // One byte changed anywhere: it no longer opens.
    let mut bytes = v.clone().into_bytes();
    let i = usize::try_from(ttl).unwrap_or(0) % bytes.len();
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    if let Ok(t) = String::from_utf8(bytes) {
        if t != v && expires_at > NOW {
            // Base64url's last character has spare bits: a change there may decode the same.
            let last = t.len() - 1;
            if i != last {
                assert_eq!(open(&KEY, &t, NOW), None, "a tampered cookie opened");
            }
        }
    }
});
