//! Two small text writers of the refusal path that modules on several levels share: the
//! `name="value"` auth-param of a challenge (Digest's and the rendered ones) and the RFC 3339
//! timestamp of a refusal's body and of its audit text. Nothing here imports the crate.

/// Appends `name="value"` with RFC 9110 §5.6.4 quoted-string escaping.
pub(crate) fn push_param(out: &mut String, name: &str, value: &str) {
    if !out.ends_with(' ') {
        out.push_str(", ");
    }
    out.push_str(name);
    out.push('=');
    gatehouse_challenge::grammar::push_quoted(out, value);
}

/// RFC 3339 UTC timestamp of unix seconds (`2026-11-27T07:14:04Z`), written directly: it is
/// in every refusal's body, so it avoids the general formatter.
pub fn rfc3339(unix: i64) -> String {
    // Days to civil date: Howard Hinnant's algorithm (proleptic Gregorian, exact for all i64
    // days in range of the year type used here).
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return "1970-01-01T00:00:00Z".to_owned();
    }
    // Written digit by digit: every refusal's body has one.
    let mut out = String::with_capacity(20);
    let mut two = |sep: Option<char>, v: i64| {
        if let Some(c) = sep {
            out.push(c);
        }
        for d in [v / 10 % 10, v % 10] {
            out.push(char::from(b'0' + u8::try_from(d).unwrap_or(0)));
        }
    };
    two(None, year / 100);
    two(None, year % 100);
    two(Some('-'), month);
    two(Some('-'), day);
    two(Some('T'), secs / 3600);
    two(Some(':'), secs % 3600 / 60);
    two(Some(':'), secs % 60);
    out.push('Z');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn rfc3339_matches_the_time_crate(unix in 0i64..253_402_300_799) {
            let expected = time::OffsetDateTime::from_unix_timestamp(unix)
                .unwrap()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap();
            proptest::prop_assert_eq!(rfc3339(unix), expected);
        }
    }
}
