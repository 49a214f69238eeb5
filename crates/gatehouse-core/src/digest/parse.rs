//! The `#auth-param` list of a Digest `Authorization` value (RFC 9110 §11.2, §5.6) and the
//! RFC 8187 `ext-value` of `username*`.
//!
//! ```text
//! auth-param    = token BWS "=" BWS ( token / quoted-string )
//! quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
//! qdtext        = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
//! quoted-pair   = "\" ( HTAB / SP / VCHAR / obs-text )
//! ```
//!
//! Lists accept empty elements (`a=1, , b=2`, RFC 9110 §5.6.1.2). Since the gateway announces
//! `charset=UTF-8` (RFC 7616 §3.3), obs-text is read as UTF-8: the input is a `&str`.

use super::ParseError;
use gatehouse_challenge::grammar::{is_qdtext as is_qdtext_byte, is_quoted_pair_char, is_tchar};

/// Upper bound on parameters, so duplicate detection stays cheap on hostile input.
const MAX_PARAMS: usize = 32;

/// One parsed `auth-param`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Param<'a> {
    /// As sent; compare case-insensitively (RFC 9110 §11.2).
    pub name: &'a str,
    /// With quoted-pairs resolved.
    pub value: String,
    /// Whether the value was a quoted-string rather than a token.
    pub quoted: bool,
}

/// Parses `#auth-param`. Duplicate names (case-insensitive) are an error: RFC 9110 §11.2 says
/// each parameter name MUST only occur once.
pub(super) fn auth_params(s: &str) -> Result<Vec<Param<'_>>, ParseError> {
    let mut out: Vec<Param<'_>> = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let name_len = rest.bytes().take_while(|&b| is_tchar(b)).count();
        if name_len == 0 {
            return Err(ParseError(
                "the Digest credentials are not a parameter list",
            ));
        }
        let (name, after) = rest.split_at(name_len);
        let Some(after) = after.trim_start_matches([' ', '\t']).strip_prefix('=') else {
            return Err(ParseError("a Digest parameter has no value"));
        };
        let after = after.trim_start_matches([' ', '\t']);
        let (value, quoted, after) = if let Some(q) = after.strip_prefix('"') {
            let (v, a) = quoted_string(q)?;
            (v, true, a)
        } else {
            let len = after.bytes().take_while(|&b| is_tchar(b)).count();
            if len == 0 {
                return Err(ParseError("a Digest parameter has an invalid value"));
            }
            let (v, a) = after.split_at(len);
            (v.to_owned(), false, a)
        };
        if out.iter().any(|p| p.name.eq_ignore_ascii_case(name)) {
            return Err(ParseError("the Digest credentials repeat a parameter"));
        }
        if out.len() == MAX_PARAMS {
            return Err(ParseError(
                "the Digest credentials have too many parameters",
            ));
        }
        out.push(Param {
            name,
            value,
            quoted,
        });
        let after = after.trim_start_matches([' ', '\t']);
        if !(after.is_empty() || after.starts_with(',')) {
            return Err(ParseError("Digest parameters must be separated by commas"));
        }
        rest = after;
    }
    Ok(out)
}

/// Reads a quoted-string whose opening quote is already consumed; returns the unescaped
/// value and the input after the closing quote.
fn quoted_string(s: &str) -> Result<(String, &str), ParseError> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, s.get(i + 1..).unwrap_or(""))),
            '\\' => match chars.next() {
                Some((_, e)) if is_qpair_char(e) => value.push(e),
                _ => return Err(ParseError("a Digest quoted string has an invalid escape")),
            },
            c if is_qdtext(c) => value.push(c),
            _ => return Err(ParseError("a Digest quoted string has invalid characters")),
        }
    }
    Err(ParseError("a Digest quoted string is not closed"))
}

/// `qdtext`; any non-ASCII character stands for obs-text (the input is UTF-8).
fn is_qdtext(c: char) -> bool {
    u8::try_from(c).map_or(true, is_qdtext_byte)
}

/// `HTAB / SP / VCHAR / obs-text`; any non-ASCII character stands for obs-text.
fn is_qpair_char(c: char) -> bool {
    u8::try_from(c).map_or(true, is_quoted_pair_char)
}

/// RFC 8187 §3.2: `ext-value = charset "'" [ language ] "'" value-chars`, with
/// `value-chars = *( pct-encoded / attr-char )`. Only the UTF-8 charset is accepted: RFC 7616
/// §3.4 has `username*` carry UTF-8 (the server announced `charset=UTF-8`).
pub(super) fn ext_value(s: &str) -> Result<String, ParseError> {
    let bad = ParseError("the Digest `username*` is not a valid RFC 8187 ext-value");
    let mut parts = s.splitn(3, '\'');
    let (Some(charset), Some(language), Some(chars)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad);
    };
    if !charset.eq_ignore_ascii_case("utf-8") {
        return Err(ParseError(
            "the Digest `username*` must use the UTF-8 charset",
        ));
    }
    if !language
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(bad);
    }
    let bytes = chars.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let h = bytes.get(i + 1).and_then(|&h| hex_val(h));
            let l = bytes.get(i + 2).and_then(|&l| hex_val(l));
            let (Some(h), Some(l)) = (h, l) else {
                return Err(bad);
            };
            out.push(h << 4 | l);
            i += 3;
        } else if is_attr_char(b) {
            out.push(b);
            i += 1;
        } else {
            return Err(bad);
        }
    }
    String::from_utf8(out).map_err(|_| ParseError("the Digest `username*` is not UTF-8"))
}

/// RFC 8187 §3.2.1 `attr-char`: ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "." /
/// "^" / "_" / "`" / "|" / "~".
const fn is_attr_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#' | b'$' | b'&' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        )
}

pub(super) const fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_values(s: &str) -> Vec<(String, String, bool)> {
        auth_params(s)
            .unwrap()
            .into_iter()
            .map(|p| (p.name.to_owned(), p.value, p.quoted))
            .collect()
    }

    #[test]
    fn tokens_quoted_strings_and_escapes() {
        assert_eq!(
            names_values(r#"a=1, B="x y",c = "q\"uo\\te" ,d=tok-en"#),
            [
                ("a".into(), "1".into(), false),
                ("B".into(), "x y".into(), true),
                ("c".into(), "q\"uo\\te".into(), true),
                ("d".into(), "tok-en".into(), false),
            ]
        );
    }

    #[test]
    fn empty_list_elements_are_accepted() {
        assert_eq!(names_values(", a=1,, ,b=2,").len(), 2);
        assert!(names_values("").is_empty());
    }

    #[test]
    fn commas_inside_quotes_do_not_split() {
        assert_eq!(
            names_values(r#"u="a, b=c""#),
            [("u".into(), "a, b=c".into(), true)]
        );
    }

    #[test]
    fn obs_text_is_read_as_utf8() {
        assert_eq!(
            names_values("u=\"Jäsøn\""),
            [("u".into(), "Jäsøn".into(), true)]
        );
    }

    #[test]
    fn errors() {
        for (s, why) in [
            ("a", "a Digest parameter has no value"),
            ("a=", "a Digest parameter has an invalid value"),
            ("a=/x", "a Digest parameter has an invalid value"),
            ("a=1 b=2", "Digest parameters must be separated by commas"),
            (r#"a="1"x"#, "Digest parameters must be separated by commas"),
            (r#"a="open"#, "a Digest quoted string is not closed"),
            (
                "a=\"x\u{1}\"",
                "a Digest quoted string has invalid characters",
            ),
            (
                "a=\"x\\\u{1}\"",
                "a Digest quoted string has an invalid escape",
            ),
            ("a=\"x\\", "a Digest quoted string has an invalid escape"),
            ("a=1, A=2", "the Digest credentials repeat a parameter"),
            ("=1", "the Digest credentials are not a parameter list"),
            ("abc==", "a Digest parameter has an invalid value"),
        ] {
            assert_eq!(auth_params(s).unwrap_err().0, why, "{s}");
        }
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=1")).collect();
        assert_eq!(
            auth_params(&many.join(",")).unwrap_err().0,
            "the Digest credentials have too many parameters"
        );
    }

    #[test]
    fn ext_values() {
        assert_eq!(
            ext_value("UTF-8''J%C3%A4s%C3%B8n%20Doe").unwrap(),
            "Jäsøn Doe"
        );
        assert_eq!(ext_value("utf-8'en'abc").unwrap(), "abc");
        assert!(ext_value("ISO-8859-1''%E4").is_err());
        assert!(ext_value("UTF-8''%C3").is_err());
        assert!(ext_value("UTF-8''%G1").is_err());
        assert!(ext_value("UTF-8''a b").is_err());
        assert!(ext_value("UTF-8'abc").is_err());
        assert!(ext_value("abc").is_err());
    }
}
