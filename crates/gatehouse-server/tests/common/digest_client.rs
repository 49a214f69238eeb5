//! A Digest client (RFC 7616 §3.4, qop `auth`) computed independently of the server, for
//! hand-made requests (replays, wrong `uri`, stale nonces).
#![allow(dead_code, clippy::unwrap_used)]

use gatehouse_core::digest::{Algorithm, ha1, userhash};
use gatehouse_store::{DigestAlgorithm, DigestHa1, Store};

/// Stores `user`'s Digest secrets for both algorithms, as `gatehouse user add --digest` does.
pub async fn enable(store: &dyn Store, user: &str, realm: &str, pw: &str) {
    for (alg, stored) in [
        (Algorithm::Sha256, DigestAlgorithm::Sha256),
        (Algorithm::Md5, DigestAlgorithm::Md5),
    ] {
        store
            .set_digest_ha1(
                user,
                realm,
                stored,
                Some(DigestHa1 {
                    ha1: ha1(alg, user, realm, pw),
                    userhash: userhash(alg, user, realm),
                }),
            )
            .await
            .unwrap();
    }
}

/// `H(s)` for a string with at least one `:` — core's `userhash` hashes `a ":" b`.
pub fn hash(alg: Algorithm, s: &str) -> String {
    let (a, b) = s.split_once(':').unwrap();
    userhash(alg, a, b)
}

/// What a client needs to answer.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub alg: Algorithm,
    pub user: &'a str,
    pub pw: &'a str,
    pub realm: &'a str,
    pub method: &'a str,
    pub uri: &'a str,
    pub nonce: String,
    pub opaque: String,
    pub nc: u32,
    pub cnonce: &'a str,
    pub userhash: bool,
}

impl Request<'_> {
    /// RFC 7616 §3.4.1–§3.4.2 with qop `auth`, computed independently of the server.
    pub fn response(&self) -> String {
        let alg = self.alg;
        let mut a1 = ha1(alg, self.user, self.realm, self.pw);
        if alg.is_sess() {
            a1 = hash(alg, &format!("{a1}:{}:{}", self.nonce, self.cnonce));
        }
        let a2 = hash(alg, &format!("{}:{}", self.method, self.uri));
        hash(
            alg,
            &format!(
                "{a1}:{}:{:08x}:{}:auth:{a2}",
                self.nonce, self.nc, self.cnonce
            ),
        )
    }

    pub fn header(&self) -> String {
        let username = if self.userhash {
            userhash(self.alg, self.user, self.realm)
        } else {
            self.user.to_owned()
        };
        format!(
            r#"Digest username="{username}", realm="{}", uri="{}", algorithm={}, nonce="{}", nc={:08x}, cnonce="{}", qop=auth, response="{}", opaque="{}", userhash={}"#,
            self.realm,
            self.uri,
            self.alg,
            self.nonce,
            self.nc,
            self.cnonce,
            self.response(),
            self.opaque,
            self.userhash
        )
    }
}

/// The value of `name` in one challenge (`name="v"` or `name=v`).
pub fn param(challenge: &str, name: &str) -> Option<String> {
    challenge.split(", ").find_map(|p| {
        let p = p.strip_prefix("Digest ").unwrap_or(p);
        let v = p.strip_prefix(name)?.strip_prefix('=')?;
        Some(v.trim_matches('"').to_owned())
    })
}
