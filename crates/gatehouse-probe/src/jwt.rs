//! Attack tokens derived from a persona's JWT (RFC 7519 §3, JWS compact form RFC 7515 §7.1).
//! No key is needed: the point is to see whether the target verifies at all.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// The parts of a compact JWS whose header and payload are JSON objects.
#[derive(Debug, Clone, PartialEq)]
pub struct Jwt {
    pub header: Map<String, Value>,
    pub payload: Map<String, Value>,
    header_b64: String,
    payload_b64: String,
    signature_b64: String,
}

/// base64url without padding (RFC 7515 §2); tolerates padding on input.
fn b64_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

fn b64_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn object(part: &str) -> Option<Map<String, Value>> {
    match serde_json::from_slice(&b64_decode(part)?).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

impl Jwt {
    /// Parses `header.payload.signature`; `None` for anything that is not a JWS-shaped JWT.
    pub fn parse(token: &str) -> Option<Self> {
        let mut it = token.split('.');
        let (h, p, s) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() {
            return None;
        }
        Some(Self {
            header: object(h)?,
            payload: object(p)?,
            header_b64: h.to_owned(),
            payload_b64: p.to_owned(),
            signature_b64: s.to_owned(),
        })
    }

    /// The same claims with `alg: none` and the signature stripped (the RFC 7519 §6
    /// "Unsecured JWT" a verifier must refuse, RFC 8725 §3.1).
    pub fn unsigned(&self) -> String {
        let mut header = self.header.clone();
        header.insert("alg".to_owned(), Value::String("none".to_owned()));
        header.remove("kid");
        format!(
            "{}.{}.",
            b64_encode(Value::Object(header).to_string().as_bytes()),
            self.payload_b64
        )
    }

    /// The original header and signature over a changed payload: one added claim, so a
    /// target that skips verification still sees a token it would accept.
    pub fn tampered(&self) -> String {
        let mut payload = self.payload.clone();
        payload.insert(
            "gatehouse_probe".to_owned(),
            Value::String("tampered".to_owned()),
        );
        format!(
            "{}.{}.{}",
            self.header_b64,
            b64_encode(Value::Object(payload).to_string().as_bytes()),
            self.signature_b64
        )
    }
}

/// The JWT carried by an `Authorization: Bearer …` value, if it is one.
pub fn bearer_jwt(authorization: &str) -> Option<Jwt> {
    let (scheme, rest) = authorization.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    Jwt::parse(rest.trim())
}

/// The user name of an `Authorization: Basic …` value (RFC 7617 §2), if it is one.
pub fn basic_user(authorization: &str) -> Option<String> {
    let (scheme, rest) = authorization.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, _) = text.split_once(':')?;
    Some(user.to_owned())
}

/// `Basic` credentials for `user` with a password nobody has.
pub fn wrong_password(user: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{user}:gatehouse-probe-wrong-password"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TOKEN: &str = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.c2lnbmF0dXJl";

    #[test]
    fn unsigned_strips_signature_and_sets_none() {
        let t = Jwt::parse(TOKEN).unwrap();
        assert_eq!(t.payload["sub"], "alice");
        let u = t.unsigned();
        assert!(u.ends_with('.'));
        let back = Jwt::parse(&u).unwrap();
        assert_eq!(back.header["alg"], "none");
        assert!(!back.header.contains_key("kid"));
        assert_eq!(back.payload, t.payload);
    }

    #[test]
    fn tampered_keeps_header_and_signature() {
        let t = Jwt::parse(TOKEN).unwrap();
        let m = t.tampered();
        let parts: Vec<&str> = m.split('.').collect();
        let orig: Vec<&str> = TOKEN.split('.').collect();
        assert_eq!(parts[0], orig[0]);
        assert_eq!(parts[2], orig[2]);
        assert_ne!(parts[1], orig[1]);
        assert_eq!(
            Jwt::parse(&m).unwrap().payload["gatehouse_probe"],
            "tampered"
        );
    }

    #[test]
    fn recognises_credentials() {
        assert!(bearer_jwt(&format!("Bearer {TOKEN}")).is_some());
        assert!(bearer_jwt("Bearer opaque-token").is_none());
        assert!(bearer_jwt(&format!("Basic {TOKEN}")).is_none());
        assert_eq!(
            basic_user("Basic YWxpY2U6YWxpY2Vwdw==").as_deref(),
            Some("alice")
        );
        assert_eq!(basic_user(&wrong_password("bob")).as_deref(), Some("bob"));
        // Padded base64url is tolerated.
        assert!(Jwt::parse(&format!("{}=", TOKEN.replace(".c2ln", "=.c2ln"))).is_some());
    }

    proptest! {
        #[test]
        fn derivations_roundtrip(sub in "\\PC{0,20}", n in any::<i64>()) {
            let h = b64_encode(br#"{"alg":"RS256"}"#);
            let p = b64_encode(serde_json::json!({"sub": sub, "n": n}).to_string().as_bytes());
            let t = Jwt::parse(&format!("{h}.{p}.sig")).unwrap();
            prop_assert_eq!(&Jwt::parse(&t.unsigned()).unwrap().payload, &t.payload);
            let tampered = Jwt::parse(&t.tampered()).unwrap();
            prop_assert_eq!(&tampered.payload["sub"], &t.payload["sub"]);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = Jwt::parse(&s);
        }
    }
}
