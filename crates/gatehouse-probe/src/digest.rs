//! Digest personas (RFC 7616): the `Authorization` answering a target's Digest challenge,
//! for MD5 and SHA-256 (and their `-sess` variants), with `qop=auth` or without `qop`
//! (the RFC 2069 form some old servers still send).

use gatehouse_challenge::grammar::quoted;
use md5::Md5;
use sha2::{Digest as _, Sha256};

use crate::challenge::Challenge;
use crate::spec::DigestCreds;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    fn hash(self, s: &str) -> String {
        let bytes = match self {
            Self::Md5 => Md5::digest(s.as_bytes()).to_vec(),
            Self::Sha256 => Sha256::digest(s.as_bytes()).to_vec(),
        };
        let mut out = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }
}

/// `(algorithm, session)` of a challenge's `algorithm` parameter (RFC 7616 §3.3: absent
/// means MD5); `None` for an algorithm this client does not know.
fn algorithm(c: &Challenge) -> Option<(Algorithm, bool)> {
    let a = c.param("algorithm").unwrap_or("MD5");
    let (base, sess) = match a.len().checked_sub(5) {
        Some(i) if a.is_char_boundary(i) && a[i..].eq_ignore_ascii_case("-sess") => (&a[..i], true),
        _ => (a, false),
    };
    if base.eq_ignore_ascii_case("MD5") {
        Some((Algorithm::Md5, sess))
    } else if base.eq_ignore_ascii_case("SHA-256") {
        Some((Algorithm::Sha256, sess))
    } else {
        None
    }
}

/// The Digest challenge to answer: SHA-256 before MD5 (RFC 7616 §3.7: a client uses the
/// strongest it supports), the first of equals.
pub fn pick(challenges: &[Challenge]) -> Option<&Challenge> {
    challenges
        .iter()
        .filter(|c| c.is("Digest") && c.param("nonce").is_some())
        .filter_map(|c| algorithm(c).map(|(a, _)| (a, c)))
        .max_by_key(|(a, _)| match a {
            Algorithm::Sha256 => 1,
            Algorithm::Md5 => 0,
        })
        .map(|(_, c)| c)
}

/// The `Authorization` value for `method uri` (RFC 7616 §3.4). `cnonce` is the client
/// nonce, `nc` the nonce count (1 for a fresh nonce).
pub fn authorization(
    creds: &DigestCreds,
    c: &Challenge,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
) -> Option<String> {
    let (alg, sess) = algorithm(c)?;
    let realm = c.param("realm").unwrap_or("");
    let nonce = c.param("nonce")?;
    let qop_auth = c
        .param("qop")
        .is_some_and(|q| q.split(',').any(|x| x.trim().eq_ignore_ascii_case("auth")));
    let nc = format!("{nc:08x}");
    let mut ha1 = alg.hash(&format!("{}:{realm}:{}", creds.user, creds.password));
    if sess {
        ha1 = alg.hash(&format!("{ha1}:{nonce}:{cnonce}"));
    }
    let ha2 = alg.hash(&format!("{method}:{uri}"));
    let response = if qop_auth {
        alg.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
    } else {
        alg.hash(&format!("{ha1}:{nonce}:{ha2}"))
    };
    let mut v = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response={}",
        quoted(&creds.user),
        quoted(realm),
        quoted(nonce),
        quoted(uri),
        quoted(&response)
    );
    if let Some(a) = c.param("algorithm") {
        v.push_str(&format!(", algorithm={a}"));
    }
    if qop_auth {
        v.push_str(&format!(", qop=auth, nc={nc}, cnonce={}", quoted(cnonce)));
    }
    if let Some(o) = c.param("opaque") {
        v.push_str(&format!(", opaque={}", quoted(o)));
    }
    Some(v)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn creds() -> DigestCreds {
        DigestCreds {
            user: "Mufasa".to_owned(),
            password: "Circle of Life".to_owned(),
        }
    }

    fn response(v: &str) -> &str {
        v.split("response=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
    }

    /// RFC 7616 §3.9.1, both algorithms.
    #[test]
    fn rfc_7616_examples() {
        let text = r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let cs = crate::challenge::parse(text.as_bytes()).unwrap();
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let v = authorization(&creds(), &cs[0], "GET", "/dir/index.html", cnonce, 1).unwrap();
        assert_eq!(
            response(&v),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert!(v.contains("nc=00000001") && v.contains("qop=auth,"), "{v}");
        let md5 = text.replace("algorithm=SHA-256", "algorithm=MD5");
        let cs = crate::challenge::parse(md5.as_bytes()).unwrap();
        let v = authorization(&creds(), &cs[0], "GET", "/dir/index.html", cnonce, 1).unwrap();
        assert_eq!(response(&v), "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn sha256_is_preferred_and_unknown_algorithms_skipped() {
        let cs = crate::challenge::parse(
            br#"Digest realm="a", nonce="n", algorithm=MD5, Digest realm="a", nonce="n", algorithm=SHA-256, Digest realm="a", nonce="n", algorithm=SHA-512-256"#,
        )
        .unwrap();
        assert_eq!(pick(&cs).unwrap().param("algorithm"), Some("SHA-256"));
    }
}
