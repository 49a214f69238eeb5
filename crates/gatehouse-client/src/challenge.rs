//! `WWW-Authenticate` parsing per RFC 9110 §11.6.1 and §11.2: a comma-separated list of
//! challenges, each an auth-scheme followed by either a token68 or a list of auth-params whose
//! values are tokens or quoted-strings (§5.6.2, §5.6.4). Several header lines are one list
//! (§5.3), so [`parse_all`] joins them.

use thiserror::Error;

/// One challenge, e.g. `Bearer realm="api", error="invalid_token"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The auth-scheme as sent; compare case-insensitively (RFC 9110 §11.1).
    pub scheme: String,
    /// The token68 form (`Negotiate abc==`), if the challenge used it.
    pub token68: Option<String>,
    /// auth-params in order, quoted-strings unescaped.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of a parameter; names are case-insensitive (RFC 9110 §11.2).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the scheme is `scheme` (case-insensitive).
    pub fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }
}

/// A malformed `WWW-Authenticate` value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("malformed `WWW-Authenticate` at byte {at}: {what}")]
pub struct ChallengeError {
    pub at: usize,
    pub what: &'static str,
}

/// Parses every `WWW-Authenticate` line of a response as one list.
pub fn parse_all<'a>(
    lines: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Challenge>, ChallengeError> {
    let mut out = Vec::new();
    for line in lines {
        out.extend(parse(line)?);
    }
    Ok(out)
}

/// Parses one `WWW-Authenticate` field value into its challenges.
pub fn parse(s: &str) -> Result<Vec<Challenge>, ChallengeError> {
    let mut p = Parser {
        s: s.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        p.skip_list_separators();
        if p.done() {
            return Ok(out);
        }
        let scheme = p.token().ok_or(p.err("expected an auth-scheme"))?;
        let mut ch = Challenge {
            scheme,
            token68: None,
            params: Vec::new(),
        };
        let had_space = p.skip_ows();
        if p.done() || p.peek() == Some(b',') {
            out.push(ch);
            continue;
        }
        if !had_space {
            return Err(p.err("expected a space after the auth-scheme"));
        }
        if let Some(t) = p.try_token68() {
            ch.token68 = Some(t);
            out.push(ch);
            continue;
        }
        p.params(&mut ch.params)?;
        out.push(ch);
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

/// tchar, RFC 9110 §5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// token68 characters before the trailing `=`s, RFC 9110 §11.2.
fn is_token68(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn err(&self, what: &'static str) -> ChallengeError {
        ChallengeError { at: self.i, what }
    }
    /// OWS; returns whether anything was skipped.
    fn skip_ows(&mut self) -> bool {
        let start = self.i;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
        self.i > start
    }
    /// Empty list elements are allowed (RFC 9110 §5.6.1.2).
    fn skip_list_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    /// A token68 counts only when the list element ends right after it; otherwise
    /// `realm=x` would read as the token68 `realm=`.
    fn try_token68(&mut self) -> Option<String> {
        let start = self.i;
        let mut j = self.i;
        while self.s.get(j).copied().is_some_and(is_token68) {
            j += 1;
        }
        if j == start {
            return None;
        }
        while self.s.get(j) == Some(&b'=') {
            j += 1;
        }
        let end = j;
        while matches!(self.s.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        if j < self.s.len() && self.s[j] != b',' {
            return None;
        }
        self.i = j;
        Some(String::from_utf8_lossy(&self.s[start..end]).into_owned())
    }
    /// Whether an auth-param (`token BWS "="`) starts here, as opposed to a new challenge.
    fn at_param(&self) -> bool {
        let mut j = self.i;
        while self.s.get(j).copied().is_some_and(is_tchar) {
            j += 1;
        }
        if j == self.i {
            return false;
        }
        while matches!(self.s.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        self.s.get(j) == Some(&b'=')
    }
    fn params(&mut self, out: &mut Vec<(String, String)>) -> Result<(), ChallengeError> {
        loop {
            let name = self.token().ok_or(self.err("expected a parameter name"))?;
            self.skip_ows();
            if self.peek() != Some(b'=') {
                return Err(self.err("expected `=` after a parameter name"));
            }
            self.i += 1;
            self.skip_ows();
            let value = if self.peek() == Some(b'"') {
                self.quoted()?
            } else {
                self.token()
                    .ok_or(self.err("expected a token or quoted-string"))?
            };
            out.push((name, value));
            self.skip_ows();
            if self.done() {
                return Ok(());
            }
            if self.peek() != Some(b',') {
                return Err(self.err("expected `,` between parameters"));
            }
            let comma = self.i;
            self.skip_list_separators();
            if self.done() || !self.at_param() {
                // The next list element is a new challenge; let the caller read it.
                self.i = comma;
                return Ok(());
            }
        }
    }
    /// quoted-string, RFC 9110 §5.6.4; obs-text (non-ASCII) is kept as UTF-8.
    fn quoted(&mut self) -> Result<String, ChallengeError> {
        self.i += 1;
        let mut v = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated quoted-string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&v).into_owned());
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(c) if c == b'\t' || c >= 0x20 && c != 0x7f => {
                            v.push(c);
                            self.i += 1;
                        }
                        _ => return Err(self.err("bad quoted-pair")),
                    }
                }
                Some(c) if c == b'\t' || c >= 0x20 && c != 0x7f => {
                    v.push(c);
                    self.i += 1;
                }
                Some(_) => return Err(self.err("control character in quoted-string")),
            }
        }
    }
}

#[cfg(test)]
#[path = "challenge/tests.rs"]
mod tests;
