//! `WWW-Authenticate` parsing per RFC 9110 §11.6.1 and §11.2: a comma-separated list of
//! challenges, each an auth-scheme followed by either a token68 or a list of auth-params whose
//! values are tokens or quoted-strings (§5.6.2, §5.6.4). Several header lines are one list
//! (§5.3), so [`parse_all`] joins them.
//!
//! The parser is the workspace's one (`gatehouse-challenge`, which the probe uses too).

pub use gatehouse_challenge::{Challenge, ChallengeError};

/// Parses every `WWW-Authenticate` line of a response as one list.
pub fn parse_all<'a>(
    lines: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Challenge>, ChallengeError> {
    gatehouse_challenge::parse_list(lines.into_iter().map(str::as_bytes))
}

/// Parses one `WWW-Authenticate` field value into its challenges.
pub fn parse(s: &str) -> Result<Vec<Challenge>, ChallengeError> {
    gatehouse_challenge::parse(s.as_bytes())
}
