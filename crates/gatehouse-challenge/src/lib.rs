//! A parser for `WWW-Authenticate` field values (RFC 9110 §11.6.1, grammar in §11.1–§11.2).
//!
//! ```text
//! WWW-Authenticate = #challenge
//! challenge   = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//! auth-param  = token BWS "=" BWS ( token / quoted-string )
//! token68     = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//! ```
//!
//! The comma separates both challenges and the parameters inside one, so after a comma
//! the parser looks ahead: `token BWS "="` continues the current challenge's parameters,
//! anything else starts a new challenge. Empty list elements are skipped (§5.6.1.2).
//! The parser works on bytes: a quoted-string may carry obs-text.
//!
//! The one parser of the workspace: the client (`gatehouse-client`) reads the challenges of
//! the answers it gets with it, the probe (`gatehouse-probe`) audits other APIs' with it.
//! The crate also holds the pure text pieces that core, the client and the probe share:
//! the RFC 9110 token / quoted-string grammar ([`grammar`]) and one HTML/XML escaper
//! ([`markup`]).

use std::fmt;

pub mod grammar;
pub mod markup;

use grammar::{is_qdtext, is_quoted_pair_char, is_tchar, is_token68_char, push_quoted};

/// One challenge: a scheme with a token68 or a list of parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The auth-scheme as sent (compare case-insensitively, §11.1).
    pub scheme: String,
    pub token68: Option<String>,
    /// Parameters in order; names as sent, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// A parameter by case-insensitive name (§11.2).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }
}

/// Why a field value is not a valid challenge list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at byte {offset}")]
pub struct ChallengeError {
    pub offset: usize,
    pub message: String,
}

/// Parses every `WWW-Authenticate` field of a response as one list (several fields are one
/// list, RFC 9110 §5.3).
pub fn parse_list<'a>(
    fields: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<Challenge>, ChallengeError> {
    let mut out = Vec::new();
    for f in fields {
        out.extend(parse(f)?);
    }
    Ok(out)
}

/// Parses one field value into its challenges.
pub fn parse(input: &[u8]) -> Result<Vec<Challenge>, ChallengeError> {
    let mut p = Parser { s: input, i: 0 };
    let mut out = Vec::new();
    loop {
        p.skip_list_separators();
        if p.at_end() {
            break;
        }
        out.push(p.challenge()?);
        p.ows();
        if p.at_end() {
            break;
        }
        if p.peek() != Some(b',') {
            return Err(p.err("expected `,` or the end after a challenge"));
        }
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, message: &str) -> ChallengeError {
        ChallengeError {
            offset: self.i,
            message: message.to_owned(),
        }
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn peek_at(&self, i: usize) -> Option<u8> {
        self.s.get(i).copied()
    }

    /// OWS / BWS = *( SP / HTAB )
    fn ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_list_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    fn token_end(&self, from: usize) -> usize {
        let mut j = from;
        while self.peek_at(j).is_some_and(is_tchar) {
            j += 1;
        }
        j
    }

    fn token(&mut self, what: &str) -> Result<String, ChallengeError> {
        let end = self.token_end(self.i);
        if end == self.i {
            return Err(self.err(&format!("expected {what}")));
        }
        let t = String::from_utf8_lossy(&self.s[self.i..end]).into_owned();
        self.i = end;
        Ok(t)
    }

    fn challenge(&mut self) -> Result<Challenge, ChallengeError> {
        let scheme = self.token("an auth-scheme")?;
        let mut c = Challenge {
            scheme,
            token68: None,
            params: Vec::new(),
        };
        // Only SP separates the scheme from what follows (`1*SP`).
        let before = self.i;
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
        let had_space = self.i > before;
        self.ows();
        match self.peek() {
            None | Some(b',') => return Ok(c),
            Some(_) if !had_space => {
                return Err(self.err("expected a space after the auth-scheme"));
            }
            Some(_) => {}
        }
        if let Some(t) = self.try_token68() {
            c.token68 = Some(t);
            return Ok(c);
        }
        self.params(&mut c)?;
        Ok(c)
    }

    /// token68 followed by OWS and then a comma or the end; otherwise leaves `i` alone.
    fn try_token68(&mut self) -> Option<String> {
        let start = self.i;
        let mut j = start;
        while self.peek_at(j).is_some_and(is_token68_char) {
            j += 1;
        }
        if j == start {
            return None;
        }
        while self.peek_at(j) == Some(b'=') {
            j += 1;
        }
        let end = j;
        while matches!(self.peek_at(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        if matches!(self.peek_at(j), None | Some(b',')) {
            self.i = end;
            return Some(String::from_utf8_lossy(&self.s[start..end]).into_owned());
        }
        None
    }

    /// `#auth-param`, stopping before a comma that starts the next challenge.
    fn params(&mut self, c: &mut Challenge) -> Result<(), ChallengeError> {
        loop {
            let name = self.token("a parameter name")?;
            self.ows();
            if self.peek() != Some(b'=') {
                return Err(self.err(&format!("expected `=` after parameter `{name}`")));
            }
            self.i += 1;
            self.ows();
            let value = match self.peek() {
                Some(b'"') => self.quoted_string()?,
                _ => self.token("a token or a quoted-string as the parameter value")?,
            };
            if c.param(&name).is_some() {
                // §11.2: "Each parameter name MUST only occur once per challenge."
                return Err(self.err(&format!("parameter `{name}` occurs twice")));
            }
            c.params.push((name, value));
            self.ows();
            match self.peek() {
                None => return Ok(()),
                Some(b',') => {}
                Some(_) => {
                    return Err(self.err("expected `,` or the end after a parameter value"));
                }
            }
            // Look past the comma(s): another `name =` continues this challenge.
            let save = self.i;
            self.skip_list_separators();
            let end = self.token_end(self.i);
            let mut j = end;
            while matches!(self.peek_at(j), Some(b' ' | b'\t')) {
                j += 1;
            }
            if end > self.i && self.peek_at(j) == Some(b'=') {
                continue;
            }
            self.i = save;
            return Ok(());
        }
    }

    /// quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE (RFC 9110 §5.6.4)
    fn quoted_string(&mut self) -> Result<String, ChallengeError> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated quoted-string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => match self.peek_at(self.i + 1) {
                    Some(b) if is_quoted_pair_char(b) => {
                        out.push(b);
                        self.i += 2;
                    }
                    _ => return Err(self.err("invalid quoted-pair")),
                },
                Some(b) if is_qdtext(b) => {
                    out.push(b);
                    self.i += 1;
                }
                Some(_) => return Err(self.err("control character in a quoted-string")),
            }
        }
    }
}

impl fmt::Display for Challenge {
    /// Renders the challenge canonically: parameter values always quoted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        if let Some(t) = &self.token68 {
            return write!(f, " {t}");
        }
        for (i, (n, v)) in self.params.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ", " })?;
            let mut quoted = String::with_capacity(v.len() + 2);
            push_quoted(&mut quoted, v);
            write!(f, "{n}={quoted}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Result<Vec<Challenge>, ChallengeError> {
        parse(s.as_bytes())
    }

    #[test]
    fn gatehouse_challenges() {
        let c = p(r#"Bearer realm="api", error="invalid_token", error_description="x, y", Basic realm="api", charset="UTF-8""#).unwrap();
        assert_eq!(c.len(), 2);
        assert!(c[0].is("bearer"));
        assert_eq!(c[0].param("ERROR"), Some("invalid_token"));
        assert_eq!(c[0].param("error_description"), Some("x, y"));
        assert!(c[1].is("Basic"));
        assert_eq!(c[1].param("charset"), Some("UTF-8"));
    }

    #[test]
    fn token68_and_bare_schemes() {
        let c = p("Negotiate, NTLM abc+/=, Bearer").unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[1].token68.as_deref(), Some("abc+/="));
        assert!(c[2].params.is_empty());
        let c = p("Basic realm=api").unwrap();
        assert_eq!(c[0].param("realm"), Some("api"));
        let c = p("Digest realm = \"x\" ,, qop=auth , algorithm=SHA-256").unwrap();
        assert_eq!(c[0].params.len(), 3);
    }

    #[test]
    fn malformed() {
        for bad in [
            "Basic realm=my api",
            "Basic realm=\"unterminated",
            "Bearer realm=\"a\" error=\"x\"",
            "Bearer realm=\"a\", realm=\"b\"",
            "=x",
            "Basic\trealm=\"x\"",
            "Bearer realm=\"a\u{1}\"",
        ] {
            assert!(p(bad).is_err(), "{bad} should not parse");
        }
        // `realm=` alone is a token68 (RFC 9110 §11.2 grammar), so Basic lacks `realm`.
        assert_eq!(
            p("Bearer realm=").unwrap()[0].token68.as_deref(),
            Some("realm=")
        );
        let both = parse_list([b"Bearer".as_slice(), b"Basic realm=x".as_slice()]).unwrap();
        assert_eq!(both.len(), 2);
        assert!(parse_list([b" , ".as_slice()]).unwrap().is_empty());
    }

    fn token() -> impl Strategy<Value = String> {
        "[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,8}"
    }

    fn challenge() -> impl Strategy<Value = Challenge> {
        (
            token(),
            prop::collection::vec((token(), "[ -~]{0,12}"), 0..4),
        )
            .prop_map(|(scheme, params)| {
                let mut seen: Vec<(String, String)> = Vec::new();
                for (n, v) in params {
                    if !seen.iter().any(|(s, _)| s.eq_ignore_ascii_case(&n)) {
                        seen.push((n, v));
                    }
                }
                Challenge {
                    scheme,
                    token68: None,
                    params: seen,
                }
            })
    }

    proptest! {
        #[test]
        fn rendered_lists_parse_back(cs in prop::collection::vec(challenge(), 1..4)) {
            let text = cs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            prop_assert_eq!(parse(text.as_bytes()).unwrap(), cs);
        }

        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn token68_parses(scheme in token(), t in "[A-Za-z0-9._~+/-]{1,20}={0,2}") {
            let c = parse(format!("{scheme} {t}").as_bytes()).unwrap();
            prop_assert_eq!(c[0].token68.as_deref(), Some(t.as_str()));
        }
    }
}
