use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;

use super::*;
use crate::scheme::Scheme;

fn auth(value: &str) -> Extracted {
    extract(&[value.as_bytes()], &[], None)
}

fn detail(e: &Extracted) -> &'static str {
    match e {
        Extracted::Malformed { detail } => detail,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn basic(e: Extracted) -> (String, String) {
    match e {
        Extracted::One(Credential::Basic { username, password }) => {
            (username, password.expose().to_owned())
        }
        other => panic!("expected Basic, got {other:?}"),
    }
}

fn secret(e: Extracted, scheme: Scheme) -> String {
    match e {
        Extracted::One(c) => {
            assert_eq!(c.scheme(), scheme);
            match c {
                Credential::Bearer(s) | Credential::ApiKey(s) => s.expose().to_owned(),
                Credential::Basic { .. } => panic!("unexpected Basic"),
                Credential::Digest(_) => panic!("unexpected Digest"),
                Credential::Session(_) => panic!("unexpected Session"),
            }
        }
        other => panic!("expected One, got {other:?}"),
    }
}

#[test]
fn no_credential_at_all() {
    assert!(matches!(extract(&[], &[], None), Extracted::None));
    assert!(matches!(
        extract(&[], &[], Some("a=1&b=2")),
        Extracted::None
    ));
    assert!(matches!(
        extract(&[], &[], Some("access_tokens=1&my_access_token=2")),
        Extracted::None
    ));
}

#[test]
fn rfc7617_section_2_example() {
    let (user, password) = basic(auth("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="));
    assert_eq!(user, "Aladdin");
    assert_eq!(password, "open sesame");
}

#[test]
fn rfc7617_section_2_1_utf8_example() {
    let (user, password) = basic(auth("Basic dGVzdDoxMjPCow=="));
    assert_eq!(user, "test");
    assert_eq!(password, "123£");
}

#[test]
fn basic_password_may_contain_colons_and_be_empty() {
    let value = format!("Basic {}", STANDARD.encode("u:a:b"));
    assert_eq!(basic(auth(&value)), ("u".into(), "a:b".into()));
    let value = format!("Basic {}", STANDARD.encode("u:"));
    assert_eq!(basic(auth(&value)), ("u".into(), String::new()));
}

#[test]
fn scheme_is_case_insensitive_and_spaces_are_tolerated() {
    let (user, _) = basic(auth("bAsIc   QWxhZGRpbjpvcGVuIHNlc2FtZQ=="));
    assert_eq!(user, "Aladdin");
    assert_eq!(
        secret(auth("BEARER abc.def-_~+/=="), Scheme::Bearer),
        "abc.def-_~+/=="
    );
    assert_eq!(secret(auth("  bearer  tok  "), Scheme::Bearer), "tok");
}

#[test]
fn api_key_in_authorization_and_x_api_key() {
    assert_eq!(
        secret(auth("ApiKey gh_abc_def"), Scheme::ApiKey),
        "gh_abc_def"
    );
    assert_eq!(
        secret(extract(&[], &[b" gh_abc_def\t"], None), Scheme::ApiKey),
        "gh_abc_def"
    );
}

#[test]
fn other_schemes_are_unsupported_and_lower_cased() {
    for (value, scheme) in [
        ("Negotiate YIIBhgYGKwYBBQUCoIIBejCCAXag", "negotiate"),
        (
            "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==",
            "ntlm",
        ),
        ("HOBA result=\"a.b.c\"", "hoba"),
    ] {
        match auth(value) {
            Extracted::Unsupported { scheme: s } => assert_eq!(s, scheme),
            other => panic!("{value}: expected Unsupported, got {other:?}"),
        }
    }
}

#[test]
fn more_than_one_credential() {
    let two = "more than one credential";
    let b = b"Bearer abc".as_slice();
    assert_eq!(detail(&extract(&[b, b], &[], None)), two);
    assert_eq!(detail(&extract(&[b], &[b"key"], None)), two);
    assert_eq!(detail(&extract(&[], &[b"k1", b"k2"], None)), two);
    assert_eq!(detail(&extract(&[b], &[], Some("access_token=x"))), two);
    assert_eq!(detail(&extract(&[], &[b"k"], Some("access_token=x"))), two);
    assert_eq!(detail(&extract(&[], &[b"k1, k2"], None)), two);
    for joined in [
        "Bearer abc, Bearer def",
        "Bearer abc,Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==, Bearer abc",
        "Bearer abc==, ApiKey k",
        r#"Digest username="a", realm="r", Bearer abc"#,
        "Negotiate abc, Basic def",
        "Bearer abc, Digest",
    ] {
        assert_eq!(detail(&auth(joined)), two, "{joined}");
    }
}

#[test]
fn commas_inside_quoted_strings_and_param_lists_are_not_a_second_credential() {
    let value = format!(r#"Digest username="a, Bearer x", realm="r" , qop=auth, {DIGEST_REST}"#);
    assert_eq!(digest(auth(&value)).username, "a, Bearer x");
}

/// The parameters of a well-formed Digest credential besides username, realm and qop.
const DIGEST_REST: &str =
    r#"uri="/", nonce="n", nc=00000001, cnonce="c", response="8ca523f5e9506fed4657c9700eebdbec""#;

fn digest(e: Extracted) -> crate::digest::DigestParams {
    match e {
        Extracted::One(Credential::Digest(p)) => *p,
        other => panic!("expected Digest, got {other:?}"),
    }
}

#[test]
fn digest_credentials_are_parsed() {
    // RFC 7616 §3.9.1, folded onto one line.
    let value = r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="8ca523f5e9506fed4657c9700eebdbec", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
    let e = auth(value);
    let Extracted::One(c) = &e else {
        panic!("expected One, got {e:?}");
    };
    assert_eq!(c.scheme(), Scheme::Digest);
    let p = digest(e);
    assert_eq!(p.username, "Mufasa");
    assert_eq!(p.uri, "/dir/index.html");
    // Scheme names are case-insensitive (RFC 9110 §11.1).
    let lower = format!(r#"dIgEsT  username="u", realm="r", qop=auth, {DIGEST_REST}"#);
    assert_eq!(digest(auth(&lower)).username, "u");
}

#[test]
fn digest_may_carry_utf8_in_quoted_strings() {
    let value = format!(r#"Digest username="Jäsøn Doe", realm="r", qop=auth, {DIGEST_REST}"#);
    assert_eq!(digest(auth(&value)).username, "Jäsøn Doe");
    // Other schemes stay ASCII-only, and the octets must be UTF-8.
    assert_eq!(
        detail(&auth("Bearer Jäsøn")),
        "the Authorization header is not visible ASCII"
    );
    let mut latin1 = br#"Digest username="J"#.to_vec();
    latin1.push(0xe4);
    latin1.extend_from_slice(br#"", realm="r""#);
    assert_eq!(
        detail(&extract(&[&latin1], &[], None)),
        "the Authorization header is not visible ASCII"
    );
}

#[test]
fn malformed_digest_is_invalid_request() {
    assert_eq!(
        detail(&auth("Digest")),
        "the Digest scheme requires parameters"
    );
    assert_eq!(
        detail(&auth(
            r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html""#
        )),
        "the Digest credentials lack `qop`"
    );
    assert_eq!(
        detail(&auth("Digest abc==")),
        "a Digest parameter has an invalid value"
    );
    let dup = format!(r#"Digest username="u", realm="r", qop=auth, {DIGEST_REST}, realm="r""#);
    assert_eq!(
        detail(&auth(&dup)),
        "the Digest credentials repeat a parameter"
    );
    let auth_int = format!(r#"Digest username="u", realm="r", qop=auth-int, {DIGEST_REST}"#);
    assert_eq!(
        detail(&auth(&auth_int)),
        "the Digest qop `auth-int` is not supported"
    );
    // Two credentials are still two, Digest or not.
    let one = format!(r#"Digest username="u", realm="r", qop=auth, {DIGEST_REST}"#);
    assert_eq!(
        detail(&extract(&[one.as_bytes(), one.as_bytes()], &[], None)),
        "more than one credential"
    );
    assert_eq!(
        detail(&extract(&[one.as_bytes()], &[b"key"], None)),
        "more than one credential"
    );
}

#[test]
fn digest_debug_shows_no_full_response() {
    let value = format!(r#"Digest username="u", realm="r", qop=auth, {DIGEST_REST}"#);
    let d = format!("{:?}", auth(&value));
    assert!(d.contains("username: \"u\""), "{d}");
    assert!(!d.contains("8ca523f5e9506fed4657c9700eebdbec"), "{d}");
}

#[test]
fn access_token_in_query_is_refused() {
    for q in [
        "access_token=abc",
        "a=1&access_token=abc",
        "access_token",
        "access_token=",
        "access%5Ftoken=abc",
        "%61ccess_token=abc",
    ] {
        assert_eq!(
            detail(&extract(&[], &[], Some(q))),
            "send the access token in the Authorization header, not in the URL",
            "{q}"
        );
    }
}

#[test]
fn malformed_authorization_values() {
    for (value, expected) in [
        ("", "the Authorization header is empty"),
        ("   ", "the Authorization header is empty"),
        ("Bearer", "the Bearer scheme requires a token"),
        ("Bearer   ", "the Bearer scheme requires a token"),
        ("Bearer a b", "the Bearer token contains invalid characters"),
        ("Bearer a=b", "the Bearer token contains invalid characters"),
        ("Bearer ===", "the Bearer token contains invalid characters"),
        (
            "Bearer a\"b",
            "the Bearer token contains invalid characters",
        ),
        ("Bearer\tabc", "the auth scheme contains invalid characters"),
        ("Bearer:abc", "the auth scheme contains invalid characters"),
        (
            " =abc",
            "the Authorization header does not start with an auth scheme",
        ),
        ("Basic", "the Basic scheme requires credentials"),
        (
            "Basic a b",
            "the Basic credentials contain invalid characters",
        ),
        (
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ",
            "the Basic credentials are not valid base64",
        ),
        (
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=",
            "the Basic credentials are not valid base64",
        ),
        (
            "Basic QWxh-GRpbjpvcGVuIHNlc2FtZQ==",
            "the Basic credentials are not valid base64",
        ),
        ("Basic QR==", "the Basic credentials are not valid base64"),
        ("Basic /w==", "the Basic credentials are not UTF-8"),
        ("ApiKey", "the ApiKey scheme requires a key"),
        ("ApiKey a b", "the API key contains invalid characters"),
        (
            "Negotiate\u{7f}",
            "the Authorization header is not visible ASCII",
        ),
        (
            "Bearer tök",
            "the Authorization header is not visible ASCII",
        ),
        (
            "Averyveryveryveryveryveryverylongscheme abc",
            "the auth scheme is too long",
        ),
    ] {
        assert_eq!(detail(&auth(value)), expected, "{value:?}");
    }
}

#[test]
fn malformed_basic_contents() {
    let enc = |s: &[u8]| format!("Basic {}", STANDARD.encode(s));
    for (raw, expected) in [
        (
            b"Aladdin".as_slice(),
            "the Basic credentials have no `:` between user-id and password",
        ),
        (b"", "the Basic scheme requires credentials"),
        (
            b"Ala\x01ddin:pw",
            "the Basic user-id contains control characters",
        ),
        (
            b"Ala\x7fddin:pw",
            "the Basic user-id contains control characters",
        ),
        (
            "Ala\u{85}ddin:pw".as_bytes(),
            "the Basic user-id contains control characters",
        ),
        (
            b"Aladdin:p\nw",
            "the Basic password contains control characters",
        ),
        (b"\xc3\x28:pw", "the Basic credentials are not UTF-8"),
    ] {
        assert_eq!(detail(&auth(&enc(raw))), expected, "{raw:?}");
    }
}

#[test]
fn malformed_x_api_key() {
    assert_eq!(
        detail(&extract(&[], &[b"  "], None)),
        "the X-API-Key header is empty"
    );
    assert_eq!(
        detail(&extract(&[], &[b"a b"], None)),
        "the API key contains invalid characters"
    );
    assert_eq!(
        detail(&extract(&[], &[b"k\xff"], None)),
        "the X-API-Key header is not visible ASCII"
    );
}

#[test]
fn details_never_contain_the_secret() {
    let secret_values = [
        "Bearer s3cr3t s3cr3t",
        "Basic s3cr3t!",
        "ApiKey s3cr3t s3cr3t",
    ];
    for v in secret_values {
        assert!(!detail(&auth(v)).contains("s3cr3t"), "{v}");
    }
}

#[test]
fn debug_output_redacts_secrets() {
    let e = auth("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    let shown = format!("{e:?}");
    assert!(shown.contains("Aladdin"));
    assert!(!shown.contains("open sesame"));
    let shown = format!("{:?}", auth("Bearer topsecret"));
    assert!(!shown.contains("topsecret"));
}

#[test]
fn into_result_maps_rows_6_and_7() {
    assert!(matches!(Extracted::None.into_result(), Ok(None)));
    assert!(matches!(
        auth("Bearer t").into_result(),
        Ok(Some(Credential::Bearer(_)))
    ));
    assert_eq!(
        auth("Negotiate x").into_result().err(),
        Some(Deny::UnsupportedScheme {
            presented: "negotiate".into()
        })
    );
    assert_eq!(
        auth("Bearer").into_result().err(),
        Some(Deny::InvalidRequest {
            detail: "the Bearer scheme requires a token".into()
        })
    );
}

/// A user-id: no ':' and no control characters (RFC 7617 §2), any other Unicode.
fn user_id() -> impl Strategy<Value = String> {
    "[^:\\p{Cc}]{0,24}"
}

/// A password: anything but control characters, ':' allowed.
fn password() -> impl Strategy<Value = String> {
    "[^\\p{Cc}]{0,32}"
}

proptest! {
    #[test]
    fn extract_never_panics(
        auths in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..3),
        keys in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..2),
        query in proptest::option::of(".{0,64}"),
    ) {
        let auths: Vec<&[u8]> = auths.iter().map(Vec::as_slice).collect();
        let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let _ = extract(&auths, &keys, query.as_deref());
    }

    #[test]
    fn extract_never_panics_on_scheme_like_values(
        scheme in "(Basic|Bearer|ApiKey|Digest|[A-Za-z]{1,40})",
        spaces in " {0,3}",
        rest in "[ -~]{0,80}",
    ) {
        let value = format!("{scheme}{spaces}{rest}");
        let _ = auth(&value);
    }

    #[test]
    fn valid_basic_pairs_round_trip(user in user_id(), pw in password()) {
        let value = format!("Basic {}", STANDARD.encode(format!("{user}:{pw}")));
        let (u, p) = basic(auth(&value));
        prop_assert_eq!(u, user);
        prop_assert_eq!(p, pw);
    }

    #[test]
    fn valid_bearer_tokens_round_trip(token in "[A-Za-z0-9._~+/-]{1,64}={0,2}") {
        prop_assert_eq!(secret(auth(&format!("Bearer {token}")), Scheme::Bearer), token);
    }
}

proptest::proptest! {
    /// The one-pass Bearer path never disagrees with the general parser.
    #[test]
    fn fast_bearer_agrees_with_the_general_path(
        prefix in proptest::sample::select(vec!["Bearer ", "bearer  ", "BEARER ", "Bearer\t", "Basic "]),
        token in "[A-Za-z0-9._~+/=, \"-]{0,40}",
    ) {
        let raw = format!("{prefix}{token}");
        if let Some(Extracted::One(Credential::Bearer(fast))) = fast_bearer(raw.as_bytes()) {
            match parse_authorization(raw.as_bytes()) {
                Extracted::One(Credential::Bearer(general)) => {
                    proptest::prop_assert_eq!(fast.expose(), general.expose());
                }
                other => proptest::prop_assert!(false, "general path said {:?}", other),
            }
        }
    }
}
