//! Challenge lists as Gatehouse and other servers send them (the cases the client was
//! first tested with), and a round trip of generated lists.
#![allow(clippy::unwrap_used)]

use gatehouse_challenge::{Challenge, ChallengeError, parse_list};
use proptest::prelude::*;

fn parse(s: &str) -> Result<Vec<Challenge>, ChallengeError> {
    gatehouse_challenge::parse(s.as_bytes())
}

/// tchar, RFC 9110 §5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[test]
fn gateway_bearer_challenge() {
    let c = parse(
        r#"Bearer realm="api", error="insufficient_user_authentication", error_description="Needs \"MFA\"", acr_values="mfa", max_age=600"#,
    )
    .unwrap();
    assert_eq!(c.len(), 1);
    assert!(c[0].is("bearer"));
    assert_eq!(
        c[0].param("ERROR"),
        Some("insufficient_user_authentication")
    );
    assert_eq!(c[0].param("error_description"), Some("Needs \"MFA\""));
    assert_eq!(c[0].param("max_age"), Some("600"));
}

#[test]
fn several_challenges_and_token68() {
    // The example of RFC 9110 §11.6.1, plus a token68 challenge.
    let c = parse(
        r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple", Negotiate abc+/==, Digest nonce="x,y""#,
    )
    .unwrap();
    assert_eq!(c.len(), 4);
    assert_eq!(c[0].scheme, "Newauth");
    assert_eq!(c[0].param("type"), Some("1"));
    assert_eq!(c[0].param("title"), Some(r#"Login to "apps""#));
    assert_eq!(c[1].param("realm"), Some("simple"));
    assert_eq!(c[2].token68.as_deref(), Some("abc+/=="));
    assert_eq!(c[3].param("nonce"), Some("x,y"));
}

#[test]
fn bare_schemes_empty_elements_and_lines() {
    let c = parse_list([", Basic ,, Bearer".as_bytes(), b"Bearer realm = \"a\""]).unwrap();
    let schemes: Vec<_> = c.iter().map(|c| c.scheme.as_str()).collect();
    assert_eq!(schemes, ["Basic", "Bearer", "Bearer"]);
    assert_eq!(c[2].param("realm"), Some("a"));
}

#[test]
fn malformed_values_are_errors() {
    for bad in [
        "Bearer realm=\"open",
        // `Bearer realm` alone is a valid token68 challenge; two words are not.
        "Bearer realm x",
        "Bearer a=b, c=",
        "Bearer realm=\"a\" error=\"b\"",
        "=x",
        "Bearer a=\"\u{1}\"",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
}

fn quote(v: &str) -> String {
    let mut s = String::from("\"");
    for c in v.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

#[derive(Debug, Clone)]
enum Gen {
    Token68(String, String),
    Params(String, Vec<(String, String, bool)>),
}

fn challenge() -> impl Strategy<Value = Gen> {
    prop_oneof![
        (token(), "[A-Za-z0-9._~+/-]{1,20}={0,2}").prop_map(|(s, t)| Gen::Token68(s, t)),
        (
            token(),
            prop::collection::vec((token(), "[ -~\u{e9}\t]{0,16}", any::<bool>()), 1..5)
        )
            .prop_map(|(s, mut p)| {
                // Each parameter name occurs once per challenge (RFC 9110 §11.2).
                let mut seen: Vec<String> = Vec::new();
                p.retain(|(n, _, _)| {
                    let fresh = !seen.iter().any(|s| s.eq_ignore_ascii_case(n));
                    seen.push(n.clone());
                    fresh
                });
                Gen::Params(s, p)
            }),
    ]
}

proptest! {
    #[test]
    fn rendered_challenges_round_trip(cs in prop::collection::vec(challenge(), 1..5)) {
        let mut parts = Vec::new();
        for c in &cs {
            match c {
                Gen::Token68(s, t) => parts.push(format!("{s} {t}")),
                Gen::Params(s, ps) => {
                    let ps: Vec<String> = ps.iter().map(|(n, v, force_quote)| {
                        // A value that is a token may go unquoted.
                        if !force_quote && !v.is_empty() && v.bytes().all(is_tchar) {
                            format!("{n}={v}")
                        } else {
                            format!("{n}={}", quote(v))
                        }
                    }).collect();
                    parts.push(format!("{s} {}", ps.join(", ")));
                }
            }
        }
        let parsed = parse(&parts.join(", ")).unwrap();
        prop_assert_eq!(parsed.len(), cs.len());
        for (p, c) in parsed.iter().zip(&cs) {
            match c {
                Gen::Token68(s, t) => {
                    prop_assert_eq!(&p.scheme, s);
                    prop_assert_eq!(p.token68.as_deref(), Some(t.as_str()));
                }
                Gen::Params(s, ps) => {
                    prop_assert_eq!(&p.scheme, s);
                    let want: Vec<(String, String)> =
                        ps.iter().map(|(n, v, _)| (n.clone(), v.clone())).collect();
                    prop_assert_eq!(&p.params, &want);
                }
            }
        }
    }

    #[test]
    fn arbitrary_input_never_panics(s in "\\PC{0,64}") {
        let _ = parse(&s);
    }
}
