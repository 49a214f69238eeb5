//! The challenges of a response, read with the workspace's one `WWW-Authenticate` parser
//! (`gatehouse-challenge`), plus the one scheme rule the probe holds servers to.

pub use gatehouse_challenge::{Challenge, ChallengeError, parse};

/// Parses every `WWW-Authenticate` field of a response (several fields are one list,
/// RFC 9110 §5.3). Also applies the one scheme rule that makes a challenge unusable:
/// Basic needs `realm` (RFC 7617 §2).
pub fn parse_fields<'a>(
    fields: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<Challenge>, ChallengeError> {
    let out = gatehouse_challenge::parse_list(fields)?;
    if out.is_empty() {
        return Err(ChallengeError {
            offset: 0,
            message: "no challenge in the field".to_owned(),
        });
    }
    for c in &out {
        if c.is("Basic") && c.param("realm").is_none() {
            return Err(ChallengeError {
                offset: 0,
                message: "a `Basic` challenge without `realm` (RFC 7617 §2)".to_owned(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn basic_needs_a_realm_and_a_list_a_challenge() {
        assert!(parse_fields([b"Basic charset=\"UTF-8\"".as_slice()]).is_err());
        assert!(parse_fields([b" , ".as_slice()]).is_err());
        // `realm=` alone is a token68 (RFC 9110 §11.2 grammar), so Basic lacks `realm`.
        assert!(parse_fields([b"Basic realm=".as_slice()]).is_err());
        let both = parse_fields([b"Bearer".as_slice(), b"Basic realm=x".as_slice()]).unwrap();
        assert_eq!(both.len(), 2);
    }
}
