use super::*;

fn ctx(accepted: &[Scheme]) -> RenderCtx<'_> {
    RenderCtx {
        realm: "api",
        accepted,
        disclosure: Disclosure::Helpful,
        scope_challenge: true,
        html: false,
        request_id: "req-1",
        now: 1_700_000_000,
        return_to: "/api/x",
        form_post: false,
        digest: None,
        grpc: false,
        sign_in: crate::render::SignInOptions::PASSWORD,
        problem_base: None,
        pages: None,
    }
}

fn body(r: &Rendered) -> Value {
    serde_json::from_str(&r.body).unwrap()
}

fn www(r: &Rendered) -> Vec<&str> {
    r.headers
        .iter()
        .filter(|(n, _)| *n == "www-authenticate")
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn missing_credentials_one_challenge_per_scheme_without_error() {
    let accepted = [Scheme::Bearer, Scheme::Basic, Scheme::ApiKey];
    let r = render(&Deny::MissingCredentials, false, &ctx(&accepted));
    assert_eq!(r.status, 401);
    assert_eq!(
        www(&r),
        [
            "Bearer realm=\"api\"",
            "Basic realm=\"api\", charset=\"UTF-8\"",
            "ApiKey realm=\"api\", header=\"X-API-Key\""
        ]
    );
    let b = body(&r);
    assert_eq!(b["error"], "missing_credentials");
    assert_eq!(b["status"], 401);
    assert_eq!(b["type"], "urn:gatehouse:problem:missing_credentials");
    assert_eq!(b["detail"], b["message"]);
    assert_eq!(b["request_id"], "req-1");
    assert_eq!(b["timestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(r.content_type, "application/problem+json");
}

#[test]
fn invalid_token_and_expiry_challenges() {
    let accepted = [Scheme::Bearer, Scheme::Basic];
    let r = render(
        &Deny::InvalidToken {
            detail: "signature does not match".into(),
        },
        false,
        &ctx(&accepted),
    );
    assert_eq!(
        www(&r),
        [
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"Signature does not match\""
        ]
    );
    let r = render(
        &Deny::TokenExpired {
            expired_at: 1_699_999_000,
        },
        false,
        &ctx(&accepted),
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        www(&r),
        [
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"The access token expired\""
        ]
    );
    assert_eq!(body(&r)["expired_at"], "2023-11-14T21:56:40Z");
    assert_eq!(body(&r)["error"], "token_expired");
}

#[test]
fn invalid_request_challenge_only_with_bearer() {
    let d = Deny::InvalidRequest {
        detail: "more than one credential".into(),
    };
    let r = render(&d, false, &ctx(&[Scheme::Bearer]));
    assert_eq!(r.status, 400);
    assert_eq!(www(&r), ["Bearer realm=\"api\", error=\"invalid_request\""]);
    let r = render(&d, false, &ctx(&[Scheme::Basic]));
    assert!(www(&r).is_empty());
}

#[test]
fn step_up_follows_rfc9470() {
    let d = Deny::InsufficientUserAuthentication {
        acr_values: Some("mfa".into()),
        max_age: Some(600),
    };
    let r = render(&d, false, &ctx(&[Scheme::Bearer]));
    assert_eq!(r.status, 401);
    let c = www(&r);
    assert_eq!(c.len(), 1);
    assert!(c[0].starts_with(
        "Bearer realm=\"api\", error=\"insufficient_user_authentication\", error_description=\""
    ));
    assert!(c[0].ends_with(", acr_values=\"mfa\", max_age=600"));
}

#[test]
fn forbidden_rows_have_no_challenge_except_scope() {
    let accepted = [Scheme::Bearer];
    for d in [
        Deny::ForbiddenPath,
        Deny::IpBlocked,
        Deny::InsufficientRole {
            required: vec!["admin".into()],
        },
        Deny::TenantMismatch,
        Deny::NotOwner,
        Deny::ReadOnly,
        Deny::AccountSuspended {
            suspended_at: 1,
            reason: "r".into(),
        },
    ] {
        let r = render(&d, false, &ctx(&accepted));
        assert_eq!(r.status, 403, "{d:?}");
        assert!(www(&r).is_empty(), "{d:?}");
    }
    let r = render(
        &Deny::InsufficientScope {
            required: vec!["posts:write".into(), "posts:read".into()],
        },
        false,
        &ctx(&accepted),
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        www(&r),
        ["Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"posts:write posts:read\""]
    );
    assert_eq!(
        body(&r)["required_scopes"],
        json!(["posts:write", "posts:read"])
    );
    let mut c = ctx(&accepted);
    c.scope_challenge = false;
    let r = render(
        &Deny::InsufficientScope {
            required: vec!["a".into()],
        },
        false,
        &c,
    );
    assert!(www(&r).is_empty());
}

#[test]
fn disclosure_minimal_hides_roles() {
    let d = Deny::InsufficientRole {
        required: vec!["admin".into()],
    };
    let r = render(&d, false, &ctx(&[Scheme::Bearer]));
    assert_eq!(body(&r)["required_roles"], json!(["admin"]));
    let mut c = ctx(&[Scheme::Bearer]);
    c.disclosure = Disclosure::Minimal;
    let r = render(&d, false, &c);
    assert!(body(&r).get("required_roles").is_none());
}

#[test]
fn requirements_listed_escaped_and_minimal_keeps_codes() {
    use crate::requirements::Unmet;
    let d = Deny::RequirementNotMet {
        unmet: vec![
            Unmet {
                code: "payment_method_required".into(),
                message: Some("Add a <b>payment</b> method \"now\".".into()),
                remedy_url: Some("/account/billing?a=1&b=\"2\"".into()),
            },
            Unmet {
                code: "email_unverified".into(),
                message: None,
                remedy_url: None,
            },
        ],
    };
    let r = render(&d, false, &ctx(&[Scheme::Bearer]));
    assert_eq!(r.status, 403);
    assert!(
        www(&r).is_empty(),
        "no challenge: signing in again will not help"
    );
    let expect = json!([
        {"code": "payment_method_required", "message": "Add a <b>payment</b> method \"now\".",
         "remedy_url": "/account/billing?a=1&b=\"2\""},
        {"code": "email_unverified"}
    ]);
    assert_eq!(body(&r)["requirements"], expect);
    // The map form (HTML pages) says the same.
    assert_eq!(problem(&d, false, &ctx(&[]))["requirements"], expect);
    let mut c = ctx(&[Scheme::Bearer]);
    c.disclosure = Disclosure::Minimal;
    assert_eq!(
        body(&render(&d, false, &c))["requirements"],
        json!([{"code": "payment_method_required"}, {"code": "email_unverified"}])
    );
    c.html = true;
    c.disclosure = Disclosure::Helpful;
    let page = render(&d, false, &c).body;
    assert!(
        page.contains("<li>Add a &lt;b&gt;payment&lt;/b&gt; method &quot;now&quot;. <a href=\"/account/billing?a=1&amp;b=&quot;2&quot;\">Fix this</a></li>"),
        "{page}"
    );
    assert!(page.contains("<li>email_unverified</li>"), "{page}");
    assert!(!page.contains("action=\"/auth/login\""), "{page}");
    // Row 20 hides it.
    let r = render(&d, true, &ctx(&[Scheme::Bearer]));
    assert_eq!((r.status, r.error), (404, "not_found"));
}

#[test]
fn suspended_body() {
    let r = render(
        &Deny::AccountSuspended {
            suspended_at: 1_700_000_000,
            reason: "Terms of Service violation".into(),
        },
        false,
        &ctx(&[Scheme::Basic]),
    );
    let b = body(&r);
    assert_eq!(b["error"], "account_suspended");
    assert_eq!(b["reason"], "Terms of Service violation");
    assert_eq!(b["suspended_at"], "2023-11-14T22:13:20Z");
}

#[test]
fn hidden_route_rewrites_to_plain_404() {
    let r = render(
        &Deny::InsufficientRole {
            required: vec!["admin".into()],
        },
        true,
        &ctx(&[Scheme::Bearer]),
    );
    assert_eq!(r.status, 404);
    assert!(www(&r).is_empty());
    let b = body(&r);
    assert_eq!(b["error"], "not_found");
    assert!(b.get("required_roles").is_none());
    let r = render(&Deny::MissingCredentials, true, &ctx(&[Scheme::Bearer]));
    assert_eq!(r.status, 404);
    assert!(www(&r).is_empty());
    // Row 20 only rewrites 401/403 rows: a deny path stays 403.
    let r = render(&Deny::ForbiddenPath, true, &ctx(&[Scheme::Bearer]));
    assert_eq!(r.status, 403);
}

#[test]
fn retry_after_on_429_and_503() {
    let r = render(
        &Deny::AuthUnavailable { retry_after: 5 },
        false,
        &ctx(&[Scheme::Bearer]),
    );
    assert_eq!(r.status, 503);
    assert!(r.headers.contains(&("retry-after", "5".into())));
    let r = render(
        &Deny::RateLimited {
            retry_after: 30,
            limit: 100,
        },
        false,
        &ctx(&[Scheme::Bearer]),
    );
    assert_eq!(r.status, 429);
    assert!(r.headers.contains(&("retry-after", "30".into())));
    assert!(r.headers.contains(&("ratelimit-limit", "100".into())));
    assert!(r.headers.contains(&("ratelimit-remaining", "0".into())));
    assert!(r.headers.contains(&("ratelimit-reset", "30".into())));
}

#[test]
fn html_bodies_sign_in_for_401_and_explain_403() {
    let mut c = ctx(&[Scheme::Bearer]);
    c.html = true;
    c.return_to = "/api/x?a=<b>";
    let r = render(&Deny::MissingCredentials, false, &c);
    assert_eq!(r.status, 401);
    assert_eq!(www(&r), ["Bearer realm=\"api\""]);
    assert_eq!(r.content_type, "text/html; charset=utf-8");
    assert!(r.body.contains("action=\"/auth/login\""));
    assert!(r.body.contains("value=\"/api/x?a=&lt;b&gt;\""));
    let r = render(
        &Deny::InsufficientRole {
            required: vec!["admin".into()],
        },
        false,
        &c,
    );
    assert_eq!(r.status, 403);
    assert!(!r.body.contains("/auth/login"));
    assert!(r.body.contains("<code>admin</code>"));
    c.return_to = "//evil.example/";
    let r = render(&Deny::MissingCredentials, false, &c);
    assert!(r.body.contains("name=\"return_to\" value=\"/\""));
}

#[test]
fn quoted_string_escaping() {
    let r = render(
        &Deny::MissingCredentials,
        false,
        &RenderCtx {
            realm: "a\"b\\c",
            ..ctx(&[Scheme::Bearer])
        },
    );
    assert_eq!(www(&r), ["Bearer realm=\"a\\\"b\\\\c\""]);
}

fn digest_challenge() -> DigestChallenge {
    DigestChallenge {
        nonce: "NONCE".into(),
        opaque: "OPAQUE".into(),
        // Given weakest first: rendering still puts SHA-256 first (RFC 7616 §3.7).
        algorithms: vec![
            crate::digest::Algorithm::Md5,
            crate::digest::Algorithm::Sha256,
        ],
        userhash: false,
    }
}

const DIGEST_SHA256: &str = "Digest realm=\"api\", qop=\"auth\", algorithm=SHA-256, nonce=\"NONCE\", opaque=\"OPAQUE\", charset=UTF-8";
const DIGEST_MD5: &str = "Digest realm=\"api\", qop=\"auth\", algorithm=MD5, nonce=\"NONCE\", opaque=\"OPAQUE\", charset=UTF-8";

#[test]
fn digest_challenges_in_scheme_order_sha256_first() {
    let d = digest_challenge();
    let accepted = [Scheme::Basic, Scheme::Digest, Scheme::Bearer];
    for deny in [
        Deny::MissingCredentials,
        Deny::UnsupportedScheme {
            presented: "negotiate".into(),
        },
        Deny::InvalidCredentials,
    ] {
        let r = render(
            &deny,
            false,
            &RenderCtx {
                digest: Some(&d),
                ..ctx(&accepted)
            },
        );
        assert_eq!(r.status, 401);
        assert_eq!(
            www(&r),
            [
                "Basic realm=\"api\", charset=\"UTF-8\"",
                DIGEST_SHA256,
                DIGEST_MD5,
                "Bearer realm=\"api\"",
            ],
            "{deny:?}"
        );
    }
    // Without the edge's nonce there is no Digest challenge (core has no randomness).
    let r = render(&Deny::MissingCredentials, false, &ctx(&accepted));
    assert_eq!(
        www(&r),
        [
            "Basic realm=\"api\", charset=\"UTF-8\"",
            "Bearer realm=\"api\""
        ]
    );
    // A nonce is never offered on a route that does not accept Digest.
    let r = render(
        &Deny::MissingCredentials,
        false,
        &RenderCtx {
            digest: Some(&d),
            ..ctx(&[Scheme::Bearer])
        },
    );
    assert_eq!(www(&r), ["Bearer realm=\"api\""]);
}

#[test]
fn stale_nonce_answers_digest_challenges_with_stale_true() {
    let d = digest_challenge();
    let c = RenderCtx {
        digest: Some(&d),
        ..ctx(&[Scheme::Bearer, Scheme::Digest])
    };
    let r = render(&Deny::StaleNonce, false, &c);
    assert_eq!(r.status, 401);
    assert_eq!(
        www(&r),
        [
            format!("{DIGEST_SHA256}, stale=true"),
            format!("{DIGEST_MD5}, stale=true"),
        ]
    );
    assert_eq!(body(&r)["error"], "stale_nonce");
    // Hidden routes still hide it (row 20).
    let r = render(&Deny::StaleNonce, true, &c);
    assert_eq!(r.status, 404);
    assert!(www(&r).is_empty());
}

#[test]
fn direct_json_equals_the_map() {
    let accepted = [Scheme::Bearer, Scheme::Basic];
    let c = ctx(&accepted);
    let cases = [
        Deny::MissingCredentials,
        Deny::InvalidToken { detail: "x".into() },
        Deny::TokenExpired { expired_at: 5 },
        Deny::AccountSuspended {
            suspended_at: 9,
            reason: "quote \" backslash \\ newline \n tab \t bell \u{7} é 漢".into(),
        },
        Deny::InsufficientRole {
            required: vec!["a\"b".into(), "c".into()],
        },
        Deny::InsufficientScope { required: vec![] },
        Deny::InsufficientUserAuthentication {
            acr_values: Some("mfa".into()),
            max_age: Some(60),
        },
        Deny::RateLimited {
            retry_after: 3,
            limit: 9,
        },
        Deny::MfaRequired {
            mfa_token: "t.o.k".into(),
        },
        Deny::NotOwner,
    ];
    for d in &cases {
        for hidden in [false, true] {
            let text = problem_json(d, hidden, &c);
            let parsed: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
            assert_eq!(parsed, Value::Object(problem(d, hidden, &c)), "{d:?}");
            // Member order is the RFC 9457 order the map keeps too.
            assert!(text.starts_with("{\"type\":"), "{text}");
        }
    }
}

proptest::proptest! {
    #[test]
    fn direct_json_escapes_anything(reason in "\\PC*|[\\x00-\\x1f\"\\\\]*") {
        let accepted = [Scheme::Basic];
        let d = Deny::AccountSuspended { suspended_at: 1, reason };
        let text = problem_json(&d, false, &ctx(&accepted));
        let parsed: Value = serde_json::from_str(&text).unwrap();
        proptest::prop_assert_eq!(parsed, Value::Object(problem(&d, false, &ctx(&accepted))));
    }
}

#[test]
fn refused_sign_in_form_posts_open_no_credentials_dialog() {
    let accepted = [Scheme::Basic, Scheme::Bearer];
    let mut c = ctx(&accepted);
    c.html = true;
    c.form_post = true;
    let r = render(&Deny::InvalidCredentials, false, &c);
    assert_eq!(r.status, 401);
    assert_eq!(www(&r), ["Bearer realm=\"api\""]);
    let basic_only = [Scheme::Basic];
    let mut c = ctx(&basic_only);
    c.html = true;
    c.form_post = true;
    let r = render(
        &Deny::MfaRequired {
            mfa_token: "t".into(),
        },
        false,
        &c,
    );
    assert_eq!(
        www(&r),
        ["Bearer realm=\"api\""],
        "a 401 always names a challenge"
    );
    // Not a form post: the table's challenges as they are.
    c.form_post = false;
    let r = render(&Deny::InvalidCredentials, false, &c);
    assert_eq!(www(&r), ["Basic realm=\"api\", charset=\"UTF-8\""]);
}

fn header<'r>(r: &'r Rendered, name: &str) -> Option<&'r str> {
    r.headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn grpc_requests_get_grpc_status_beside_the_http_status() {
    let accepted = [Scheme::Bearer];
    let grpc = RenderCtx {
        grpc: true,
        sign_in: crate::render::SignInOptions::PASSWORD,
        ..ctx(&accepted)
    };
    let cases: [(Deny, bool, u16, &str); 7] = [
        (Deny::MissingCredentials, false, 401, "16"),
        (
            Deny::InsufficientRole {
                required: vec!["admin".into()],
            },
            false,
            403,
            "7",
        ),
        (Deny::MissingCredentials, true, 404, "5"),
        (
            Deny::RateLimited {
                retry_after: 3,
                limit: 10,
            },
            false,
            429,
            "8",
        ),
        (Deny::AuthUnavailable { retry_after: 5 }, false, 503, "14"),
        (Deny::UpstreamTimeout, false, 504, "4"),
        (
            Deny::InvalidPath {
                detail: "bad".into(),
            },
            false,
            400,
            "3",
        ),
    ];
    for (deny, hidden, status, code) in cases {
        let r = render(&deny, hidden, &grpc);
        assert_eq!(r.status, status, "{deny:?}");
        assert_eq!(header(&r, "grpc-status"), Some(code), "{deny:?}");
        let shown = if hidden { &Deny::NotFound } else { &deny };
        assert_eq!(
            header(&r, "grpc-message").map(str::to_owned),
            Some(grpc_message(&shown.entry().detail.to_text())),
        );
        // Same status, challenges and code as the HTTP answer, but Trailers-Only: no body.
        let plain = render(&deny, hidden, &ctx(&accepted));
        assert_eq!(www(&r), www(&plain));
        assert_eq!(r.error, plain.error);
        assert_eq!(header(&plain, "grpc-status"), None);
        assert_eq!((r.content_type, r.body.as_str()), ("application/grpc", ""));
        assert_eq!(plain.content_type, "application/problem+json");
    }
}

#[test]
fn grpc_message_is_percent_encoded() {
    assert_eq!(grpc_message("Sign in: 100% ok."), "Sign in: 100%25 ok.");
    assert_eq!(grpc_message("caf\u{e9}\n"), "caf%C3%A9%0A");
}

#[test]
fn grpc_content_types() {
    for yes in [
        "application/grpc",
        "application/grpc+proto",
        "Application/GRPC+json; charset=utf-8",
    ] {
        assert!(is_grpc(yes.as_bytes()), "{yes}");
    }
    for no in [
        "application/grpc-web",
        "application/json",
        "",
        "application/grp",
    ] {
        assert!(!is_grpc(no.as_bytes()), "{no}");
    }
}

#[test]
fn problem_types_are_urns_or_the_operators_base_plus_the_code() {
    let accepted = [Scheme::Bearer];
    let base = RenderCtx {
        problem_base: Some("https://docs.example.com/errors/"),
        pages: None,
        ..ctx(&accepted)
    };
    let r = render(&Deny::MissingCredentials, false, &base);
    assert_eq!(
        body(&r)["type"],
        "https://docs.example.com/errors/missing_credentials"
    );
    // Row 20 shows `not_found`, and so does its type.
    let r = render(&Deny::MissingCredentials, true, &base);
    assert_eq!(
        body(&r)["type"],
        "https://docs.example.com/errors/not_found"
    );
    let r = render(&Deny::MissingCredentials, false, &ctx(&accepted));
    assert_eq!(
        body(&r)["type"],
        "urn:gatehouse:problem:missing_credentials"
    );
}
