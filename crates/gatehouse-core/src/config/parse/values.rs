//! Validators for single config values. Each returns the parsed value or a lowercase
//! message that names the offending input in backticks; the walker adds line and key.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

/// Units of a duration, largest first; each may appear at most once, in this order.
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses `"250ms"`, `"30s"`, `"15m"`, `"1h30m"`, `"30d"`: one or more `<digits><unit>`
/// pairs with units `d`, `h`, `m`, `s`, `ms` from largest to smallest, each at most once.
/// The total must be greater than zero. No signs, spaces or fractions.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration_or_zero(s)?;
    if d.is_zero() {
        return Err(format!("invalid duration `{s}`: must be greater than zero"));
    }
    Ok(d)
}

/// As [`parse_duration`], where zero (`"0s"`) is allowed: for settings that zero turns off.
pub(crate) fn parse_duration_or_zero(s: &str) -> Result<Duration, String> {
    let hint = "expected a number and a unit (`ms`, `s`, `m`, `h`, `d`), e.g. `30s` or `1h30m`";
    if s.is_empty() {
        return Err(format!("invalid duration ``: {hint}"));
    }
    let mut rest = s;
    let mut total: u64 = 0;
    // Index into UNITS of the previous unit; the next must be strictly smaller.
    let mut last_unit: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("invalid duration `{s}`: {hint}"));
        }
        let (num, after) = rest.split_at(digits);
        let letters = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(letters);
        if unit.is_empty() {
            return Err(format!(
                "invalid duration `{s}`: `{num}` has no unit; {hint}"
            ));
        }
        let Some(idx) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(format!(
                "invalid duration `{s}`: unknown unit `{unit}`; {hint}"
            ));
        };
        if last_unit.is_some_and(|prev| idx <= prev) {
            return Err(format!(
                "invalid duration `{s}`: units must go from largest to smallest, each at most once"
            ));
        }
        last_unit = Some(idx);
        let too_large = || format!("invalid duration `{s}`: too large");
        let n: u64 = num.parse().map_err(|_| too_large())?;
        let ms = n.checked_mul(UNITS[idx].1).ok_or_else(too_large)?;
        total = total.checked_add(ms).ok_or_else(too_large)?;
        rest = after;
    }
    Ok(Duration::from_millis(total))
}

/// `127.0.0.1:8080` or `[::1]:8080`. Host names are not resolved here.
pub(crate) fn socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| {
        format!("invalid socket address `{s}`: expected `ip:port`, e.g. `127.0.0.1:8080` or `[::1]:8080`")
    })
}

/// A CIDR block; a bare address means a single host (`/32` or `/128`). Host bits set in a
/// block (`10.1.2.3/8`) are an error: the intended block is ambiguous.
pub(crate) fn cidr(s: &str) -> Result<IpNet, String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    let net: IpNet = s.parse().map_err(|_| {
        format!("invalid network `{s}`: expected a CIDR block like `10.0.0.0/8` or an address")
    })?;
    if net.trunc() != net {
        return Err(format!(
            "invalid network `{s}`: host bits are set; did you mean `{}`?",
            net.trunc()
        ));
    }
    Ok(net)
}

/// The parts of an `http(s)://` URL the config needs to judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpUrl {
    pub https: bool,
    pub host: String,
}

impl HttpUrl {
    /// `localhost`, `127.0.0.0/8` or `::1`: plain http cannot be intercepted on the wire.
    pub(crate) fn is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// `http://host[:port][/path]` or `https://…` with a host, no user info, query or fragment.
pub(crate) fn http_url(s: &str) -> Result<HttpUrl, String> {
    let lower = s.to_ascii_lowercase();
    let (https, rest) = if lower.starts_with("https://") {
        (true, &s["https://".len()..])
    } else if lower.starts_with("http://") {
        (false, &s["http://".len()..])
    } else {
        return Err(format!(
            "invalid url `{s}`: expected `http://host[:port][/path]` or `https://…`"
        ));
    };
    if s.contains(['?', '#']) {
        return Err(format!(
            "invalid url `{s}`: a query or fragment is not allowed"
        ));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "invalid url `{s}`: contains whitespace or control characters"
        ));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        // Credentials in a URL end up in logs; RFC 9110 §4.2.4 deprecates them.
        return Err("invalid url: user info (`user:password@`) is not allowed".to_owned());
    }
    let (host, port) = split_host_port(authority)
        .ok_or_else(|| format!("invalid url `{s}`: host or port is not valid"))?;
    if host.is_empty() {
        return Err(format!("invalid url `{s}`: no host"));
    }
    if let Some(p) = port
        && p.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(format!("invalid url `{s}`: port `{p}` is not valid"));
    }
    Ok(HttpUrl {
        https,
        host: host.to_owned(),
    })
}

/// Splits `host`, `host:port`, `[v6]`, `[v6]:port`. `None` when the shape is wrong.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if let Some(v6) = authority.strip_prefix('[') {
        let end = v6.find(']')?;
        v6[..end].parse::<std::net::Ipv6Addr>().ok()?;
        let host = &authority[..end + 2];
        return match &authority[end + 2..] {
            "" => Some((host, None)),
            p => Some((host, Some(p.strip_prefix(':')?))),
        };
    }
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    let host_ok = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    host_ok.then_some((host, port))
}

/// A CORS origin `scheme://host[:port]` (RFC 6454 §6.2 serialization), lower-cased
/// (RFC 6454 §4: scheme and host compare case-insensitively), or `"*"`.
pub(crate) fn origin(s: &str) -> Result<String, String> {
    if s == "*" {
        return Ok(s.to_owned());
    }
    let bad = || {
        format!(
            "invalid origin `{s}`: expected `scheme://host[:port]` without a path, e.g. `https://app.example.com`"
        )
    };
    let (scheme, rest) = s.split_once("://").ok_or_else(bad)?;
    // RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok || rest.contains(['/', '?', '#', '@']) {
        return Err(bad());
    }
    let (host, port) = split_host_port(rest).ok_or_else(bad)?;
    if host.is_empty() || port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Err(bad());
    }
    Ok(s.to_ascii_lowercase())
}

/// RFC 9110 §5.6.2: `token = 1*tchar`. Methods (§9.1) and header names (§5.1) are tokens.
pub(crate) fn is_token(s: &str) -> bool {
    gatehouse_challenge::grammar::is_token(s)
}

/// The realm goes inside a quoted-string in every challenge (RFC 9110 §11.5), so it must
/// not need escaping: printable ASCII without `"` and `\`.
pub(crate) fn realm(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("realm must not be empty".to_owned());
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_graphic() || *c == ' ') || matches!(c, '"' | '\\'))
    {
        return Err(format!(
            "realm `{}` contains `{}`; it is quoted in challenges, so only printable ascii without `\"` and `\\` is allowed",
            s.escape_debug(),
            c.escape_debug()
        ));
    }
    Ok(s.to_owned())
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`. Scopes are echoed in
/// `scope="…"` of the insufficient-scope challenge (RFC 6750 §3).
pub(crate) fn scope(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "invalid scope `{}`: a scope is printable ascii without spaces, `\"` or `\\` (RFC 6749 §3.3)",
            s.escape_debug()
        ))
    }
}

/// A route name: ASCII letters, digits, `-`, `_`, `.`.
pub(crate) fn route_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "invalid route name `{}`: use ascii letters, digits, `-`, `_` and `.`",
            s.escape_debug()
        ))
    }
}

/// A dotted path into JWT claims (`realm_access.roles`): non-empty segments.
pub(crate) fn claim_path(s: &str) -> Result<String, String> {
    if s.split('.').any(str::is_empty) {
        Err(format!(
            "invalid claim path `{s}`: expected names separated by `.`, e.g. `realm_access.roles`"
        ))
    } else {
        Ok(s.to_owned())
    }
}

/// A string that must not be empty.
pub(crate) fn non_empty(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(s.to_owned())
    }
}

/// A Digest algorithm whose HA1 the store keeps: `SHA-256` or `MD5` (RFC 7616 §6.1 tokens,
/// case-insensitive). Their `-sess` variants come with them (same stored HA1, §3.4.2).
pub(crate) fn digest_algorithm(s: &str) -> Result<crate::digest::Algorithm, String> {
    use crate::digest::Algorithm;
    match Algorithm::from_name(s) {
        Some(a @ (Algorithm::Sha256 | Algorithm::Md5)) => Ok(a),
        Some(a) if a.is_sess() => Err(format!(
            "`{s}` is a `-sess` variant; list `{}` (its `-sess` variant is accepted with it)",
            a.base()
        )),
        _ => Err(format!(
            "unsupported Digest algorithm `{}`; expected `SHA-256` or `MD5`",
            s.escape_debug()
        )),
    }
}

/// An HTTP method (RFC 9110 §9.1: a token), upper-cased.
pub(crate) fn method(s: &str) -> Result<String, String> {
    if is_token(s) {
        Ok(s.to_ascii_uppercase())
    } else {
        Err(format!("invalid http method `{}`", s.escape_debug()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(
            parse_duration("1d2h3m4s5ms"),
            Ok(Duration::from_millis(93_784_005))
        );
        for bad in [
            "",
            "0s",
            "0h0m",
            "15",
            "m",
            "1x",
            "1.5s",
            "-1s",
            "1 s",
            " 1s",
            "30m1h",
            "1m1m",
            "1s1m",
            "1ms1s",
            "99999999999999999999s",
            "18446744073709551615d",
        ] {
            let e = parse_duration(bad).expect_err(bad);
            assert!(e.starts_with("invalid duration `"), "{e}");
        }
        assert!(
            parse_duration("30m1h")
                .unwrap_err()
                .contains("largest to smallest")
        );
        assert!(
            parse_duration("0s")
                .unwrap_err()
                .contains("greater than zero")
        );
        assert!(
            parse_duration("5y")
                .unwrap_err()
                .contains("unknown unit `y`")
        );
        // Where zero turns a setting off, it is a value; nothing else changes.
        assert_eq!(parse_duration_or_zero("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration_or_zero("0h0m"), Ok(Duration::ZERO));
        assert_eq!(parse_duration_or_zero("1s"), Ok(Duration::from_secs(1)));
        for bad in ["", "0", "-1s", "1x", "1m1m"] {
            assert!(parse_duration_or_zero(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn duration_never_panics(s in "\\PC{0,24}") {
            let _ = parse_duration(&s);
        }

        #[test]
        fn duration_never_panics_on_near_misses(s in "[0-9dhms ]{0,16}") {
            let _ = parse_duration(&s);
        }

        /// Any non-empty, in-order selection of units with small counts parses to their sum.
        #[test]
        fn duration_round_trips(parts in proptest::collection::vec(proptest::option::of(0u64..100_000), 5)) {
            let mut text = String::new();
            let mut want = 0u64;
            for ((unit, ms), n) in UNITS.iter().zip(&parts) {
                if let Some(n) = n {
                    text.push_str(&format!("{n}{unit}"));
                    want += n * ms;
                }
            }
            let got = parse_duration(&text);
            if text.is_empty() || want == 0 {
                prop_assert!(got.is_err());
            } else {
                prop_assert_eq!(got, Ok(Duration::from_millis(want)));
            }
        }
    }

    #[test]
    fn cidrs() {
        assert_eq!(cidr("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(cidr("127.0.0.1").unwrap().to_string(), "127.0.0.1/32");
        assert_eq!(cidr("::1").unwrap().to_string(), "::1/128");
        assert_eq!(cidr("fd00::/8").unwrap().to_string(), "fd00::/8");
        assert!(cidr("10.0.0.0/33").is_err());
        assert!(cidr("10.0.0.300").is_err());
        assert!(cidr("10.1.2.3/8").unwrap_err().contains("`10.0.0.0/8`"));
    }

    #[test]
    fn urls() {
        let u = http_url("http://127.0.0.1:3000").unwrap();
        assert!(!u.https && u.is_loopback());
        assert!(
            http_url("https://sso.example.com/.well-known/jwks.json")
                .unwrap()
                .https
        );
        assert!(http_url("http://[::1]:8080/base").unwrap().is_loopback());
        assert!(!http_url("http://keycloak:8080").unwrap().is_loopback());
        for bad in [
            "ftp://x",
            "http://",
            "http://:80",
            "http://h:0",
            "http://h:99999",
            "http://u:p@h",
            "http://h/?q",
            "http://h h",
            "localhost:3000",
            "http://[zz]:1",
        ] {
            assert!(http_url(bad).is_err(), "{bad}");
        }
        assert!(
            !http_url("http://u:hunter2@h")
                .unwrap_err()
                .contains("hunter2")
        );
    }

    #[test]
    fn origins_tokens_realms_scopes() {
        assert_eq!(
            origin("https://App.Example.com").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            origin("http://localhost:5173").unwrap(),
            "http://localhost:5173"
        );
        assert_eq!(origin("*").unwrap(), "*");
        for bad in [
            "https://a.com/",
            "https://a.com/x",
            "a.com",
            "https://",
            "1x://a",
            "https://a:b",
        ] {
            assert!(origin(bad).is_err(), "{bad}");
        }
        assert!(is_token("GET") && is_token("X-API-Key") && !is_token("GE T") && !is_token(""));
        assert!(realm("api.example.com").is_ok());
        for bad in ["", "a\"b", "a\\b", "a\nb", "é"] {
            assert!(realm(bad).is_err(), "{bad}");
        }
        assert!(scope("admin:read").is_ok());
        assert!(scope("a b").is_err() && scope("a\"b").is_err() && scope("").is_err());
        assert!(route_name("admin.v2-x_y").is_ok() && route_name("a b").is_err());
        assert!(claim_path("realm_access.roles").is_ok() && claim_path("a..b").is_err());
    }
}
