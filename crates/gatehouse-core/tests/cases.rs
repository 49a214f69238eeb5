//! Decision cases as data: each file in `tests/cases/` holds a config and requests with
//! their expected answers, run through the core alone: core's pipeline (the one order of
//! design §2), then the table's rendering. Verification itself is IO-bound at the edge, so
//! a case states its outcome: the `principal` a credential proved, or the `verify_error` it
//! failed with.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;

use gatehouse_core::config::{self, Scheme};
use gatehouse_core::credential::extract;
use gatehouse_core::decision::{Decision, Policy};
use gatehouse_core::deny::Deny;
use gatehouse_core::path::normalize;
use gatehouse_core::pipeline::{Need, Next, Pipeline, Request};
use gatehouse_core::principal::{AccountState, Principal};
use gatehouse_core::render::{RenderCtx, render};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    config: String,
    #[serde(rename = "case")]
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default = "get")]
    method: String,
    path: String,
    #[serde(default)]
    query: Option<String>,
    #[serde(default = "localhost")]
    client_ip: IpAddr,
    #[serde(default)]
    headers: Vec<[String; 2]>,
    #[serde(default)]
    principal: Option<P>,
    #[serde(default)]
    verify_error: Option<String>,
    #[serde(default)]
    html: bool,
    /// Row 26: the country the edge's database gives the client address (absent: unknown).
    #[serde(default)]
    country: Option<String>,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct P {
    subject: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
    tenant: Option<String>,
    #[serde(default)]
    acr: Option<String>,
    /// Seconds before `NOW`.
    #[serde(default)]
    auth_age: Option<i64>,
    #[serde(default)]
    read_only: bool,
    #[serde(default)]
    suspended: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// `allow`, `public`, `preflight`, or an HTTP status.
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    www_authenticate: Option<Vec<String>>,
    /// Members the body must have with these values.
    #[serde(default)]
    body: Option<toml::Table>,
    /// Members the body must not have.
    #[serde(default)]
    absent: Vec<String>,
    /// Members the body must have as JSON `null` (TOML has no null).
    #[serde(default)]
    null: Vec<String>,
    /// Headers (lower-case name, value) the answer must carry.
    #[serde(default)]
    headers: Vec<[String; 2]>,
    /// Header names the answer must not carry.
    #[serde(default)]
    no_headers: Vec<String>,
}

fn get() -> String {
    "GET".into()
}
fn localhost() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

const NOW: i64 = 1_700_000_000;

fn verify_error(code: &str) -> Deny {
    match code {
        "invalid_token" => Deny::InvalidToken {
            detail: "signature does not match".into(),
        },
        "token_expired" => Deny::TokenExpired {
            expired_at: NOW - 60,
        },
        "token_revoked" => Deny::TokenRevoked,
        "invalid_credentials" => Deny::InvalidCredentials,
        "auth_unavailable" => Deny::AuthUnavailable { retry_after: 5 },
        other => panic!("unknown verify_error `{other}`"),
    }
}

/// The principal a case's credential proved.
fn principal(c: &Case, scheme: Scheme) -> Principal {
    let p = c.principal.as_ref().unwrap_or_else(|| {
        panic!(
            "{}: a credential was accepted; give `principal` or `verify_error`",
            c.name
        )
    });
    let mut pr = Principal::new(p.subject.clone(), scheme);
    pr.roles.clone_from(&p.roles);
    pr.scopes.clone_from(&p.scopes);
    pr.tenant.clone_from(&p.tenant);
    pr.acr.clone_from(&p.acr);
    pr.auth_time = p.auth_age.map(|a| NOW - a);
    pr.read_only = p.read_only;
    if let Some(reason) = &p.suspended {
        pr.account = AccountState::Suspended {
            at: NOW - 3600,
            reason: reason.clone(),
        };
    }
    pr
}

/// Drives core's pipeline, answering its questions from the case: no locks, no quota, the
/// credentials of the case's headers and query, and verification as the case states it.
fn run_case(policy: &Policy, c: &Case) -> (Decision, Option<usize>) {
    let path = match normalize(&c.path) {
        Ok(p) => p.decoded.into_owned(),
        Err(e) => {
            return (
                Decision::Deny {
                    reason: Deny::InvalidPath {
                        detail: e.to_string(),
                    },
                    hidden: false,
                },
                None,
            );
        }
    };
    let header = |name: &str| -> Vec<&[u8]> {
        c.headers
            .iter()
            .filter(|[n, _]| n.eq_ignore_ascii_case(name))
            .map(|[_, v]| v.as_bytes())
            .collect()
    };
    let request = Request {
        preflight: c.method == "OPTIONS" && !header("access-control-request-method").is_empty(),
        ..Request::new(&c.method, &path, c.client_ip, NOW)
    };
    let mut pipe = Pipeline::<Principal>::new(policy, request);
    while let Next::Need(need) = pipe.next() {
        match need {
            Need::Country => pipe.country(c.country.as_deref().map(|s| {
                gatehouse_core::geo::Country::parse(s)
                    .unwrap_or_else(|| panic!("{}: country `{s}`", c.name))
            })),
            Need::IpLock => pipe.ip_lock(None),
            Need::AccountLock => pipe.account_lock(None),
            Need::Cached => pipe.cached(None),
            Need::TokenLock => pipe.token_lock(None),
            Need::Credentials => pipe.credentials(extract(
                &header("authorization"),
                &header("x-api-key"),
                c.query.as_deref(),
            )),
            Need::SessionCookie => pipe.session_cookie(None),
            Need::Verify(cred) => pipe.verified(match &c.verify_error {
                Some(code) => Err(verify_error(code)),
                None => Ok(principal(c, cred.scheme())),
            }),
            Need::CountFailure | Need::CountSuccess | Need::CountTokenFailure => pipe.counted(),
            Need::SameOrigin => pipe.same_origin(true),
            Need::Requirements => pipe.requirement_facts(Default::default()),
            Need::Quota => pipe.quota(None),
        }
    }
    let done = pipe.finish();
    (done.decision, done.route)
}

fn toml_to_json(v: &toml::Value) -> Value {
    serde_json::to_value(v).unwrap()
}

#[test]
fn decision_cases() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cases");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut count = 0;
    let mut failures = Vec::new();
    for f in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
    {
        let file: File = toml::from_str(&std::fs::read_to_string(f).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let (cfg, _) =
            config::parse(&file.config).unwrap_or_else(|e| panic!("{}: config: {e}", f.display()));
        let policy = Policy::new(&cfg).unwrap();
        for c in &file.cases {
            count += 1;
            let (d, route) = run_case(&policy, c);
            let label = format!("{}: {}", f.file_name().unwrap().to_string_lossy(), c.name);
            let mut fail = |msg: String| failures.push(format!("{label}: {msg}"));
            let (outcome, rendered) = match &d {
                Decision::Allow(_) => ("allow".to_owned(), None),
                Decision::Public => ("public".to_owned(), None),
                Decision::Preflight => ("preflight".to_owned(), None),
                Decision::Deny { reason, hidden } => {
                    let accepted: &[Scheme] = route
                        .and_then(|i| policy.routes().get(i))
                        .map_or(&cfg.defaults.auth[..], |r| &r.config.auth[..]);
                    let ctx = RenderCtx {
                        realm: &policy.realm,
                        accepted,
                        disclosure: policy.disclosure,
                        scope_challenge: policy.scope_challenge,
                        html: c.html,
                        request_id: "case",
                        now: NOW,
                        return_to: &c.path,
                        form_post: false,
                        digest: None,
                        grpc: false,
                        sign_in: gatehouse_core::render::SignInOptions::PASSWORD,
                        problem_base: policy.problem_base.as_deref(),
                        pages: None,
                    };
                    let r = render(reason, *hidden, &ctx);
                    (r.status.to_string(), Some(r))
                }
            };
            let want_outcome = c
                .expect
                .outcome
                .clone()
                .or(c.expect.status.map(|s| s.to_string()));
            if let Some(w) = &want_outcome
                && *w != outcome
            {
                fail(format!("outcome {outcome}, expected {w} ({d:?})"));
                continue;
            }
            let Some(r) = rendered else { continue };
            let body: Value = if r.content_type.starts_with("application/") {
                serde_json::from_str(&r.body).unwrap()
            } else {
                Value::Null
            };
            if let Some(e) = &c.expect.error
                && r.error != e
            {
                fail(format!("error `{}`, expected `{e}`", r.error));
            }
            if let Some(w) = &c.expect.www_authenticate {
                let got: Vec<&str> = r
                    .headers
                    .iter()
                    .filter(|(n, _)| *n == "www-authenticate")
                    .map(|(_, v)| v.as_str())
                    .collect();
                if got != *w {
                    fail(format!("WWW-Authenticate {got:?}, expected {w:?}"));
                }
            }
            for (k, v) in c.expect.body.iter().flatten() {
                if body.get(k) != Some(&toml_to_json(v)) {
                    fail(format!(
                        "body member `{k}` is {:?}, expected {v}",
                        body.get(k)
                    ));
                }
            }
            for k in &c.expect.absent {
                if body.get(k).is_some() {
                    fail(format!("body member `{k}` should be absent"));
                }
            }
            for k in &c.expect.null {
                if body.get(k) != Some(&Value::Null) {
                    fail(format!(
                        "body member `{k}` is {:?}, expected null",
                        body.get(k)
                    ));
                }
            }
            for [name, value] in &c.expect.headers {
                if !r.headers.iter().any(|(n, v)| n == name && v == value) {
                    fail(format!("no header `{name}: {value}` in {:?}", r.headers));
                }
            }
            for name in &c.expect.no_headers {
                if r.headers.iter().any(|(n, _)| n == name) {
                    fail(format!("header `{name}` should be absent"));
                }
            }
        }
    }
    assert!(count >= 30, "only {count} cases ran");
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
