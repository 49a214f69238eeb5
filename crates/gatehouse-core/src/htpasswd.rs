//! Apache htpasswd files: `user:hash` per line.
//!
//! Every line is checked when the file is loaded, so a bad hash is reported once at start-up
//! (with its line number) instead of failing logins later. Supported hashes are those of
//! [`crate::password`]: bcrypt, `$apr1$`, `{SHA}` and argon2. Blank lines and `#` comments
//! are skipped, as Apache does.

use std::collections::HashMap;
use std::fmt;

use crate::password::{HashKind, PasswordError, check_hash};

/// One user of an htpasswd file.
#[derive(Clone, PartialEq, Eq)]
pub struct HtpasswdEntry {
    pub user: String,
    /// The stored hash, already checked by [`check_hash`].
    pub hash: String,
    pub kind: HashKind,
    /// 1-based line in the file.
    pub line: usize,
}

/// Hashes are offline-crackable material: never in `Debug`.
impl fmt::Debug for HtpasswdEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HtpasswdEntry")
            .field("user", &self.user)
            .field("kind", &self.kind)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

/// One problem in an htpasswd file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct HtpasswdError {
    /// 1-based line.
    pub line: usize,
    pub kind: HtpasswdErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HtpasswdErrorKind {
    #[error("expected `user:hash`")]
    MissingColon,
    #[error("empty user name")]
    EmptyUser,
    #[error("user name `{0}` contains whitespace or control characters")]
    InvalidUser(String),
    #[error("user `{user}` already defined on line {first_line}")]
    DuplicateUser { user: String, first_line: usize },
    #[error("user `{user}`: {source}")]
    Hash {
        user: String,
        #[source]
        source: PasswordError,
    },
}

/// Parses a whole htpasswd file, collecting every error with its line.
pub fn parse_htpasswd(text: &str) -> Result<Vec<HtpasswdEntry>, Vec<HtpasswdError>> {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let err = |kind| HtpasswdError { line, kind };
        // `lines` strips "\n" and "\r\n"; a lone trailing "\r" is dropped too.
        let content = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = content.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = content.split_once(':') else {
            errors.push(err(HtpasswdErrorKind::MissingColon));
            continue;
        };
        if user.is_empty() {
            errors.push(err(HtpasswdErrorKind::EmptyUser));
            continue;
        }
        if user.chars().any(|c| c.is_whitespace() || c.is_control()) {
            errors.push(err(HtpasswdErrorKind::InvalidUser(
                user.escape_debug().to_string(),
            )));
            continue;
        }
        if let Some(&first_line) = seen.get(user) {
            errors.push(err(HtpasswdErrorKind::DuplicateUser {
                user: user.to_owned(),
                first_line,
            }));
            continue;
        }
        seen.insert(user.to_owned(), line);
        match check_hash(hash) {
            Ok(kind) => entries.push(HtpasswdEntry {
                user: user.to_owned(),
                hash: hash.to_owned(),
                kind,
                line,
            }),
            Err(source) => errors.push(err(HtpasswdErrorKind::Hash {
                user: user.to_owned(),
                source,
            })),
        }
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::{hash_password, verify_password};

    const SUPPORTED: &str = include_str!("../testdata/htpasswd/supported.htpasswd");
    const UNSUPPORTED: &str = include_str!("../testdata/htpasswd/unsupported.htpasswd");

    #[test]
    fn generated_file_parses_and_verifies() {
        let entries = parse_htpasswd(SUPPORTED).unwrap();
        let users: Vec<&str> = entries.iter().map(|e| e.user.as_str()).collect();
        assert_eq!(
            users,
            [
                "alice",
                "apr-empty",
                "apr-long",
                "apr-utf8",
                "bob",
                "bob-cost4",
                "carol",
                "carol-utf8"
            ]
        );
        let alice = &entries[0];
        assert_eq!((alice.kind, alice.line), (HashKind::Apr1, 1));
        assert_eq!(verify_password(&alice.hash, b"correct horse"), Ok(true));
        assert_eq!(entries[4].kind, HashKind::Bcrypt);
        assert_eq!(entries[6].kind, HashKind::Sha1);
        assert_eq!(verify_password(&entries[6].hash, b"secret"), Ok(true));
    }

    #[test]
    fn unsupported_formats_are_rejected_with_their_lines() {
        let errors = parse_htpasswd(UNSUPPORTED).unwrap_err();
        let got: Vec<(usize, String)> = errors.iter().map(|e| (e.line, e.to_string())).collect();
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(errors[0].line, 1);
        assert!(
            got[0]
                .1
                .starts_with("line 1: user `des`: DES crypt hashes are not supported")
        );
        assert!(
            got[1]
                .1
                .starts_with("line 2: user `plain`: plaintext or unrecognized")
        );
        assert_eq!(
            got[2].1,
            "line 3: user `sha256`: sha-crypt (`$5$`, `$6$`) is not supported; re-hash with `htpasswd -B`"
        );
        assert!(got[3].1.starts_with("line 4: user `sha512`: sha-crypt"));
        // The plaintext password never appears in an error.
        assert!(got.iter().all(|(_, m)| !m.contains(":password")));
    }

    #[test]
    fn comments_blank_lines_crlf_and_argon2() {
        let argon = hash_password(b"pw", &[1; 16]).unwrap();
        let alice = SUPPORTED.lines().next().unwrap();
        let text = format!("# users\r\n\r\n   \n{alice}\r\n  # indented comment\ndave:{argon}\n");
        let entries = parse_htpasswd(&text).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!((entries[0].user.as_str(), entries[0].line), ("alice", 4));
        assert_eq!(entries[0].hash, alice.split_once(':').unwrap().1);
        assert_eq!((entries[1].kind, entries[1].line), (HashKind::Argon2, 6));
        assert_eq!(verify_password(&entries[1].hash, b"pw"), Ok(true));
    }

    #[test]
    fn every_error_is_collected() {
        let alice = SUPPORTED.lines().next().unwrap();
        let text = format!(
            "{alice}\nno-colon\n:{hash}\n{alice}\nbad user:{hash}\nx:$apr1$broken\n",
            hash = alice.split_once(':').unwrap().1
        );
        let errors = parse_htpasswd(&text).unwrap_err();
        let kinds: Vec<(usize, &HtpasswdErrorKind)> =
            errors.iter().map(|e| (e.line, &e.kind)).collect();
        assert_eq!(
            kinds,
            [
                (2, &HtpasswdErrorKind::MissingColon),
                (3, &HtpasswdErrorKind::EmptyUser),
                (
                    4,
                    &HtpasswdErrorKind::DuplicateUser {
                        user: "alice".into(),
                        first_line: 1
                    }
                ),
                (5, &HtpasswdErrorKind::InvalidUser("bad user".into())),
                (
                    6,
                    &HtpasswdErrorKind::Hash {
                        user: "x".into(),
                        source: PasswordError::Malformed {
                            kind: "apr1",
                            detail: "no `$` after the salt"
                        }
                    }
                ),
            ]
        );
        assert_eq!(
            errors[2].to_string(),
            "line 4: user `alice` already defined on line 1"
        );
    }

    #[test]
    fn empty_file_has_no_users() {
        assert_eq!(parse_htpasswd(""), Ok(vec![]));
        assert_eq!(parse_htpasswd("# nobody\n\n"), Ok(vec![]));
    }

    #[test]
    fn debug_hides_hashes() {
        let entries = parse_htpasswd(SUPPORTED).unwrap();
        let shown = format!("{entries:?}");
        assert!(shown.contains("alice"));
        assert!(!shown.contains("$apr1$"));
        assert!(!shown.contains("{SHA}"));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in "(?s).{0,200}") {
            // Argon2 parameters are not tried here (parsing only checks them).
            let _ = parse_htpasswd(&text);
        }

        #[test]
        fn parse_never_panics_on_line_shapes(
            lines in proptest::collection::vec("[a-z#: ]{0,6}(\\$2y\\$05\\$|\\$apr1\\$|\\{SHA\\}|\\$5\\$)?[./A-Za-z0-9$=]{0,60}", 0..6)
        ) {
            let _ = parse_htpasswd(&lines.join("\n"));
        }
    }
}
