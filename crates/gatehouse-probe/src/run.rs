//! The probe run: which requests each endpoint gets, and how each answer is judged.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::challenge;
use crate::checks::Check;
use crate::client::{Answer, Limits, Outgoing, SendError, Sender};
use crate::jwt;
use crate::report::{Failure, Finding, Report};
use crate::spec::{ANONYMOUS, Endpoint, Persona, Spec, Target};

/// Failed attempts sent by the `no-throttling` check (`--aggressive`).
pub const THROTTLE_ATTEMPTS: usize = 30;

/// The origin sent in CORS preflights: a reserved name (RFC 6761), so no real site.
const PROBE_ORIGIN: &str = "https://gatehouse-probe.invalid";

/// One progress event: a request just answered (or failed).
#[derive(Debug, Clone)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub method: Method,
    pub path: String,
    pub persona: String,
    pub status: Option<u16>,
}

pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

#[derive(Clone, Default)]
pub struct Options {
    pub limits: Limits,
    /// Also run the checks that send many failing requests (`no-throttling`).
    pub aggressive: bool,
    pub progress: Option<ProgressFn>,
}

struct Ctx {
    sender: Arc<Sender>,
    personas: Vec<Persona>,
    done: AtomicUsize,
    total: AtomicUsize,
    progress: Option<ProgressFn>,
}

/// What one endpoint task found.
#[derive(Default)]
struct Out {
    findings: Vec<Finding>,
    failures: Vec<Failure>,
    throttled: usize,
}

/// Probes every endpoint of `spec` at `target`.
pub async fn run(spec: &Spec, target: Target, opts: Options) -> Report {
    let sender = Sender::new(target.clone(), opts.limits.clone());
    let valid = spec.personas.iter().filter(|p| !p.invalid).count();
    let derived = derived_sources(&spec.personas);
    let mut total = 0;
    for ep in &spec.endpoints {
        total += planned(ep, valid, spec.personas.len() - valid, &derived);
    }
    if opts.aggressive && throttle_endpoint(spec).is_some() {
        total += THROTTLE_ATTEMPTS;
    }
    let ctx = Arc::new(Ctx {
        sender: Arc::clone(&sender),
        personas: spec.personas.clone(),
        done: AtomicUsize::new(0),
        total: AtomicUsize::new(total),
        progress: opts.progress.clone(),
    });
    let mut set = JoinSet::new();
    for (i, ep) in spec.endpoints.iter().enumerate() {
        let ctx = Arc::clone(&ctx);
        let ep = ep.clone();
        set.spawn(async move { (i, probe_endpoint(&ctx, &ep).await) });
    }
    let mut outs: Vec<(usize, Out)> = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(o) => outs.push(o),
            Err(e) => outs.push((
                usize::MAX,
                Out {
                    failures: vec![Failure {
                        endpoint: String::new(),
                        persona: String::new(),
                        error: format!("probe task failed: {e}"),
                    }],
                    ..Out::default()
                },
            )),
        }
    }
    // Findings in spec order, whatever order the tasks finished in.
    outs.sort_by_key(|(i, _)| *i);
    let mut all = Out::default();
    for (_, o) in outs {
        all.findings.extend(o.findings);
        all.failures.extend(o.failures);
        all.throttled += o.throttled;
    }
    // Last, so its failures cannot throttle the other checks.
    if opts.aggressive
        && let Some(ep) = throttle_endpoint(spec)
    {
        no_throttling(&ctx, ep, &mut all).await;
    }
    let mut checks: Vec<Check> = Check::ALL.to_vec();
    if !opts.aggressive {
        checks.retain(|c| *c != Check::NoThrottling);
    }
    Report::new(
        &target,
        spec,
        all.findings,
        all.failures,
        sender.sent(),
        all.throttled,
        checks,
    )
}

/// Personas whose credentials the derived attacks start from: (Basic, JWT Bearer).
fn derived_sources(personas: &[Persona]) -> (Option<&Persona>, Option<&Persona>) {
    let valid = || personas.iter().filter(|p| !p.invalid);
    (
        valid().find(|p| p.authorization().and_then(jwt::basic_user).is_some()),
        valid().find(|p| p.authorization().and_then(jwt::bearer_jwt).is_some()),
    )
}

fn planned(
    ep: &Endpoint,
    valid: usize,
    invalid: usize,
    d: &(Option<&Persona>, Option<&Persona>),
) -> usize {
    if ep.public {
        return 1;
    }
    let derived = 1 + usize::from(d.0.is_some()) + 2 * usize::from(d.1.is_some());
    let preflight = usize::from(ep.method != Method::OPTIONS);
    let sibling = usize::from(valid > ep.allow.len());
    1 + valid + invalid + derived + preflight + sibling
}

fn throttle_endpoint(spec: &Spec) -> Option<&Endpoint> {
    spec.endpoints.iter().find(|e| !e.public)
}

/// A request with its label, ready to send and to show as evidence.
struct Probe {
    persona: String,
    out: Outgoing,
}

fn accept_json() -> (HeaderName, HeaderValue) {
    (header::ACCEPT, HeaderValue::from_static("application/json"))
}

fn request(ep: &Endpoint, persona: &str, creds: &[(HeaderName, HeaderValue)]) -> Probe {
    let mut headers = vec![accept_json()];
    headers.extend(creds.iter().cloned());
    Probe {
        persona: persona.to_owned(),
        out: Outgoing {
            method: ep.method.clone(),
            path: ep.path.clone(),
            headers,
        },
    }
}

/// The persona's headers with `Authorization` replaced.
fn with_authorization(p: &Persona, value: &str) -> Option<Vec<(HeaderName, HeaderValue)>> {
    let mut v: Vec<_> = p
        .headers
        .iter()
        .filter(|(n, _)| n != header::AUTHORIZATION)
        .cloned()
        .collect();
    let mut val = HeaderValue::try_from(value).ok()?;
    val.set_sensitive(true);
    v.push((header::AUTHORIZATION, val));
    Some(v)
}

impl Ctx {
    async fn ask(&self, p: &Probe, out: &mut Out, ep: &Endpoint) -> Option<Answer> {
        let r = self.sender.send(&p.out).await;
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(f) = &self.progress {
            f(&Progress {
                done,
                total: self.total.load(Ordering::Relaxed).max(done),
                method: p.out.method.clone(),
                path: p.out.path.clone(),
                persona: p.persona.clone(),
                status: r.as_ref().ok().map(|a| a.status.as_u16()),
            });
        }
        match r {
            Ok(a) => {
                if a.status == StatusCode::TOO_MANY_REQUESTS {
                    out.throttled += 1;
                }
                Some(a)
            }
            Err(e) => {
                if !matches!(e, SendError::Budget(_))
                    || !out.failures.iter().any(|f| f.error == e.to_string())
                {
                    out.failures.push(Failure {
                        endpoint: ep.label(),
                        persona: p.persona.clone(),
                        error: e.to_string(),
                    });
                }
                None
            }
        }
    }

    fn skip_planned(&self) {
        self.total.fetch_sub(1, Ordering::Relaxed);
    }
}

fn finding(
    check: Check,
    ep: &Endpoint,
    p: &Probe,
    a: &Answer,
    target: &Target,
    note: String,
) -> Finding {
    Finding::new(check, ep, &p.persona, note, evidence(p, a, target))
}

/// The request (credentials redacted) and the relevant parts of the answer.
fn evidence(p: &Probe, a: &Answer, target: &Target) -> Value {
    let mut req_headers = serde_json::Map::new();
    for (n, v) in &p.out.headers {
        let shown = if v.is_sensitive() {
            let s = v.to_str().unwrap_or("");
            match s.split_once(' ') {
                Some((scheme, _)) if *n == header::AUTHORIZATION => format!("{scheme} <redacted>"),
                _ => "<redacted>".to_owned(),
            }
        } else {
            v.to_str().unwrap_or("<binary>").to_owned()
        };
        req_headers.insert(n.to_string(), Value::String(shown));
    }
    let mut resp_headers = serde_json::Map::new();
    for name in [
        "www-authenticate",
        "location",
        "content-type",
        "retry-after",
        "access-control-allow-origin",
    ] {
        let vals: Vec<Value> = a
            .headers
            .get_all(name)
            .iter()
            .map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        if !vals.is_empty() {
            resp_headers.insert(name.to_owned(), Value::Array(vals));
        }
    }
    json!({
        "request": {
            "method": p.out.method.as_str(),
            "url": target.url(&p.out.path),
            "headers": req_headers,
        },
        "status": a.status.as_u16(),
        "headers": resp_headers,
        "error": a.error_code(),
    })
}

fn is_login_redirect(s: StatusCode) -> bool {
    // RFC 9110 §15.4.3/§15.4.4: the redirects a login flow uses.
    s == StatusCode::FOUND || s == StatusCode::SEE_OTHER
}

async fn probe_endpoint(ctx: &Ctx, ep: &Endpoint) -> Out {
    let mut out = Out::default();
    let target = ctx.sender.target().clone();
    let t = &target;
    if ep.public {
        let p = request(ep, ANONYMOUS, &[]);
        if let Some(a) = ctx.ask(&p, &mut out, ep).await
            && matches!(a.status.as_u16(), 401 | 403)
        {
            out.findings.push(finding(
                Check::AllowedRefused,
                ep,
                &p,
                &a,
                t,
                format!(
                    "the public endpoint answered {} without credentials",
                    a.status.as_u16()
                ),
            ));
        }
        return out;
    }

    // 1. No credentials: 401 with a challenge and no Bearer `error` (RFC 6750 §3.1).
    let p = request(ep, ANONYMOUS, &[]);
    if let Some(a) = ctx.ask(&p, &mut out, ep).await {
        match a.status.as_u16() {
            200..=299 => out.findings.push(finding(
                Check::AccessControlBypass,
                ep,
                &p,
                &a,
                t,
                format!("no credentials, answered {}", a.status.as_u16()),
            )),
            401 => challenge_checks(&mut out, ep, &p, &a, t, true),
            // 404 may be deliberate hiding (RFC 9110 §15.5.4); 429 is throttling.
            404 | 429 => {}
            _ if is_login_redirect(a.status) => out.findings.push(finding(
                Check::RedirectForApi,
                ep,
                &p,
                &a,
                t,
                format!(
                    "a {} redirect for `Accept: application/json`",
                    a.status.as_u16()
                ),
            )),
            s => out.findings.push(finding(
                Check::AnonymousNot401,
                ep,
                &p,
                &a,
                t,
                format!("no credentials, answered {s}; expected 401"),
            )),
        }
    }

    // 2. Every persona.
    let mut forbidden_as: Option<Probe> = None;
    for persona in &ctx.personas {
        let p = request(ep, &persona.name, &persona.headers);
        let Some(a) = ctx.ask(&p, &mut out, ep).await else {
            continue;
        };
        let s = a.status.as_u16();
        if persona.invalid {
            judge_invalid(&mut out, ep, &p, &a, t, Check::AccessControlBypass);
        } else if ep.allow.contains(&persona.name) {
            if s == 401 || s == 403 {
                out.findings.push(finding(
                    Check::AllowedRefused,
                    ep,
                    &p,
                    &a,
                    t,
                    format!("`{}` is in `allow` but was answered {s}", persona.name),
                ));
            }
        } else {
            match s {
                200..=299 => out.findings.push(finding(
                    Check::AccessControlBypass,
                    ep,
                    &p,
                    &a,
                    t,
                    format!("`{}` is not in `allow` but was answered {s}", persona.name),
                )),
                401 => {
                    out.findings.push(finding(Check::ForbiddenNot403, ep, &p, &a, t, format!("`{}` is known but not allowed: 403 fits better than 401 (RFC 9110 permits 401)", persona.name)));
                    challenge_checks(&mut out, ep, &p, &a, t, false);
                }
                403 => {
                    challenge_on_403(&mut out, ep, &p, &a, t);
                    if forbidden_as.is_none() {
                        forbidden_as = Some(request(ep, &persona.name, &persona.headers));
                    }
                }
                _ if is_login_redirect(a.status) => out.findings.push(finding(
                    Check::RedirectForApi,
                    ep,
                    &p,
                    &a,
                    t,
                    format!("a {s} redirect instead of 403"),
                )),
                _ => {}
            }
        }
    }

    // 3. Credentials derived from the personas: all must get 401.
    let mut garbage = vec![];
    if let Some(v) = with_authorization(
        &Persona {
            name: String::new(),
            headers: vec![],
            invalid: true,
        },
        "Bearer gatehouse-probe-garbage-token",
    ) {
        garbage = v;
    }
    let p = request(ep, "garbage-token", &garbage);
    if let Some(a) = ctx.ask(&p, &mut out, ep).await {
        judge_invalid(&mut out, ep, &p, &a, t, Check::AccessControlBypass);
    }
    let (basic, bearer) = derived_sources(&ctx.personas);
    if let Some(src) = basic
        && let Some(user) = src.authorization().and_then(jwt::basic_user)
        && let Some(h) = with_authorization(src, &jwt::wrong_password(&user))
    {
        let p = request(ep, &format!("wrong-password({})", src.name), &h);
        if let Some(a) = ctx.ask(&p, &mut out, ep).await {
            judge_invalid(&mut out, ep, &p, &a, t, Check::AccessControlBypass);
        }
    }
    if let Some(src) = bearer
        && let Some(tok) = src.authorization().and_then(jwt::bearer_jwt)
    {
        for (label, value, check) in [
            ("alg-none", tok.unsigned(), Check::TokenAcceptedUnsigned),
            ("tampered", tok.tampered(), Check::TokenAcceptedTampered),
        ] {
            let Some(h) = with_authorization(src, &format!("Bearer {value}")) else {
                continue;
            };
            let p = request(ep, &format!("{label}({})", src.name), &h);
            if let Some(a) = ctx.ask(&p, &mut out, ep).await {
                judge_invalid(&mut out, ep, &p, &a, t, check);
            }
        }
    }

    // 4. CORS preflight: no credentials are ever sent with one (Fetch standard).
    if ep.method != Method::OPTIONS {
        let mut headers = vec![(header::ORIGIN, HeaderValue::from_static(PROBE_ORIGIN))];
        if let Ok(m) = HeaderValue::try_from(ep.method.as_str()) {
            headers.push((header::ACCESS_CONTROL_REQUEST_METHOD, m));
        }
        headers.push((
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("authorization"),
        ));
        let p = Probe {
            persona: ANONYMOUS.to_owned(),
            out: Outgoing {
                method: Method::OPTIONS,
                path: ep.path.clone(),
                headers,
            },
        };
        if let Some(a) = ctx.ask(&p, &mut out, ep).await
            && matches!(a.status.as_u16(), 401 | 403)
        {
            out.findings.push(finding(
                Check::PreflightChallenged,
                ep,
                &p,
                &a,
                t,
                format!("the preflight was answered {}", a.status.as_u16()),
            ));
        }
    }

    // 5. Existence: a missing sibling asked by the same persona that got 403.
    let planned_sibling = ctx.personas.iter().filter(|p| !p.invalid).count() > ep.allow.len();
    match forbidden_as {
        Some(mut p) => {
            p.out.path = sibling(&ep.path);
            if let Some(a) = ctx.ask(&p, &mut out, ep).await
                && a.status == StatusCode::NOT_FOUND
            {
                out.findings.push(finding(
                    Check::ExistenceLeak,
                    ep,
                    &p,
                    &a,
                    t,
                    format!(
                        "`{}` got 403 here but 404 for the missing `{}`",
                        p.persona, p.out.path
                    ),
                ));
            }
        }
        None if planned_sibling => ctx.skip_planned(),
        None => {}
    }
    out
}

/// The path with its last segment replaced by a name that should not exist.
fn sibling(path: &str) -> String {
    let (path, query) = path
        .split_once('?')
        .map_or((path, None), |(p, q)| (p, Some(q)));
    let trimmed = path.trim_end_matches('/');
    let parent = trimmed.rsplit_once('/').map_or("", |(p, _)| p);
    let mut s = format!("{parent}/gatehouse-probe-missing-0");
    if let Some(q) = query {
        s.push('?');
        s.push_str(q);
    }
    s
}

/// An answer to credentials that must be refused with 401.
fn judge_invalid(
    out: &mut Out,
    ep: &Endpoint,
    p: &Probe,
    a: &Answer,
    t: &Target,
    on_success: Check,
) {
    let s = a.status.as_u16();
    match s {
        200..=299 => out.findings.push(finding(
            on_success,
            ep,
            p,
            a,
            t,
            format!("`{}` was accepted ({s})", p.persona),
        )),
        401 => challenge_checks(out, ep, p, a, t, false),
        404 | 429 => {}
        _ if is_login_redirect(a.status) => out.findings.push(finding(
            Check::RedirectForApi,
            ep,
            p,
            a,
            t,
            format!("a {s} redirect for invalid credentials"),
        )),
        _ => out.findings.push(finding(
            Check::InvalidCredentialsNot401,
            ep,
            p,
            a,
            t,
            format!("`{}` was answered {s}; expected 401", p.persona),
        )),
    }
}

/// A 401 must carry a parsable challenge (RFC 9110 §15.5.2, §11.6.1). Reported once per
/// endpoint, for the first request that shows it.
fn challenge_checks(
    out: &mut Out,
    ep: &Endpoint,
    p: &Probe,
    a: &Answer,
    t: &Target,
    no_credentials: bool,
) {
    let fields: Vec<&[u8]> = a
        .headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    let seen = |out: &Out, c: Check| out.findings.iter().any(|f| f.check == c);
    if fields.is_empty() {
        if !seen(out, Check::ChallengeMissing) {
            out.findings.push(finding(
                Check::ChallengeMissing,
                ep,
                p,
                a,
                t,
                "401 without `WWW-Authenticate`".to_owned(),
            ));
        }
        return;
    }
    match challenge::parse_fields(fields) {
        Err(e) => {
            if !seen(out, Check::ChallengeMalformed) {
                out.findings.push(finding(
                    Check::ChallengeMalformed,
                    ep,
                    p,
                    a,
                    t,
                    format!("`WWW-Authenticate` does not parse: {e}"),
                ));
            }
        }
        Ok(cs) => {
            if no_credentials
                && cs
                    .iter()
                    .any(|c| c.is("Bearer") && c.param("error").is_some())
            {
                out.findings.push(finding(
                    Check::BearerErrorOnMissing,
                    ep,
                    p,
                    a,
                    t,
                    "a Bearer `error` attribute although no token was sent".to_owned(),
                ));
            }
        }
    }
}

/// RFC 6750 §3.1: the only challenge that belongs on a 403 is Bearer `insufficient_scope`.
fn challenge_on_403(out: &mut Out, ep: &Endpoint, p: &Probe, a: &Answer, t: &Target) {
    let fields: Vec<&[u8]> = a
        .headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    if fields.is_empty() {
        return;
    }
    let ok = challenge::parse_fields(fields).is_ok_and(|cs| {
        cs.iter()
            .all(|c| c.is("Bearer") && c.param("error") == Some("insufficient_scope"))
    });
    if !ok {
        out.findings.push(finding(
            Check::ChallengeOn403,
            ep,
            p,
            a,
            t,
            "403 with a challenge other than Bearer `insufficient_scope`".to_owned(),
        ));
    }
}

/// `--aggressive`: many failed attempts in a row must meet a 429 (RFC 6585 §4) at some point.
async fn no_throttling(ctx: &Ctx, ep: &Endpoint, all: &mut Out) {
    let (basic, _) = derived_sources(&ctx.personas);
    let (label, creds) =
        match basic.and_then(|b| Some((b, b.authorization().and_then(jwt::basic_user)?))) {
            Some((src, user)) => (
                format!("wrong-password({})", src.name),
                with_authorization(src, &jwt::wrong_password(&user)),
            ),
            None => (
                "garbage-token".to_owned(),
                with_authorization(
                    &Persona {
                        name: String::new(),
                        headers: vec![],
                        invalid: true,
                    },
                    "Bearer gatehouse-probe-garbage-token",
                ),
            ),
        };
    let Some(creds) = creds else { return };
    let p = request(ep, &label, &creds);
    let mut out = Out::default();
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..THROTTLE_ATTEMPTS {
        let Some(a) = ctx.ask(&p, &mut out, ep).await else {
            break;
        };
        statuses.push(a.status.as_u16());
        let throttled = a.status == StatusCode::TOO_MANY_REQUESTS;
        last = Some(a);
        if throttled {
            break;
        }
    }
    if statuses.len() == THROTTLE_ATTEMPTS
        && !statuses.contains(&429)
        && let Some(a) = last
    {
        let mut f = finding(
            Check::NoThrottling,
            ep,
            &p,
            &a,
            ctx.sender.target(),
            format!("{THROTTLE_ATTEMPTS} failed attempts in a row, none answered 429"),
        );
        if let Some(o) = f.evidence.as_object_mut() {
            o.insert("attempts".to_owned(), json!(statuses.len()));
        }
        all.findings.push(f);
    }
    all.failures.extend(out.failures);
    all.throttled += out.throttled;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings() {
        assert_eq!(
            sibling("/api/items/1"),
            "/api/items/gatehouse-probe-missing-0"
        );
        assert_eq!(sibling("/api/admin/"), "/api/gatehouse-probe-missing-0");
        assert_eq!(sibling("/x?a=1"), "/gatehouse-probe-missing-0?a=1");
    }
}
