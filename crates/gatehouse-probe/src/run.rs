//! The probe run: which requests each endpoint gets, and how each answer is judged.
//!
//! The plan of an endpoint is fixed before the first request (so the progress total never
//! moves): anonymous; every persona in the endpoint's scope; a garbage token; the first
//! Basic (or Digest) persona's user with a wrong password; `alg: none` and tampered tokens
//! from every JWT persona in scope; a CORS preflight; the first persona refused here on a
//! missing child path. A Digest persona's request is two: one for a fresh challenge, one
//! answering it. Every planned request that got no answer (or a 429) makes the endpoint
//! `incomplete`, and an incomplete endpoint fails the run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::challenge;
use crate::checks::Check;
use crate::client::{Answer, Limits, Outgoing, SendError, Sender};
use crate::digest;
use crate::jwt;
use crate::leaks;
use crate::report::{EndpointResult, Failure, Finding, Outcome, Report};
use crate::spec::{ANONYMOUS, DigestCreds, Endpoint, LoginBody, Persona, Spec, Take, Target};

/// Failed attempts sent by the `no-throttling` check (`--aggressive`).
pub const THROTTLE_ATTEMPTS: usize = 30;

/// The origin sent in CORS preflights: a reserved name (RFC 6761), so no real site.
const PROBE_ORIGIN: &str = "https://gatehouse-probe.invalid";

/// The credential no server issued.
const GARBAGE: &str = "Bearer gatehouse-probe-garbage-token";

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

/// A persona ready to send: its spec, and why it cannot be sent (a failed sign-in).
struct Ready {
    persona: Persona,
    unusable: Option<String>,
}

struct Ctx {
    sender: Arc<Sender>,
    personas: Vec<Ready>,
    done: AtomicUsize,
    total: usize,
    progress: Option<ProgressFn>,
    /// Some answer carried `Access-Control-Allow-Origin`: the target does CORS.
    cors_seen: AtomicBool,
    cnonce: AtomicU32,
}

/// What one endpoint task found.
#[derive(Default)]
struct Out {
    findings: Vec<Finding>,
    failures: Vec<Failure>,
    throttled: usize,
    planned: usize,
    /// Planned requests without an answer the checks could judge (failures and 429s).
    unjudged: usize,
    /// The preflight and its answer, judged once the whole run shows whether the target
    /// does CORS at all.
    preflight: Option<(Probe, Answer)>,
}

/// Probes every endpoint of `spec` at `target`.
pub async fn run(spec: &Spec, target: Target, opts: Options) -> Report {
    let sender = Sender::new(target.clone(), opts.limits.clone());
    let logins = spec.personas.iter().filter(|p| p.login.is_some()).count();
    let mut total = logins;
    for ep in &spec.endpoints {
        total += plan(ep, &spec.personas).len_requests();
    }
    if opts.aggressive && throttle_endpoint(spec).is_some() {
        total += THROTTLE_ATTEMPTS;
    }
    let mut ctx = Ctx {
        sender: Arc::clone(&sender),
        personas: Vec::new(),
        done: AtomicUsize::new(0),
        total,
        progress: opts.progress.clone(),
        cors_seen: AtomicBool::new(false),
        cnonce: AtomicU32::new(1),
    };
    let mut all = Out::default();
    for p in &spec.personas {
        let ready = match &p.login {
            None => Ready {
                persona: p.clone(),
                unusable: None,
            },
            Some(_) => match sign_in(&ctx, p).await {
                Ok(persona) => Ready {
                    persona,
                    unusable: None,
                },
                Err(e) => {
                    all.failures.push(Failure {
                        endpoint: "sign-in".to_owned(),
                        persona: p.name.clone(),
                        error: e.clone(),
                    });
                    Ready {
                        persona: p.clone(),
                        unusable: Some(format!("sign-in failed: {e}")),
                    }
                }
            },
        };
        ctx.personas.push(ready);
    }
    let ctx = Arc::new(ctx);
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
                    unjudged: 1,
                    ..Out::default()
                },
            )),
        }
    }
    // Findings in spec order, whatever order the tasks finished in.
    outs.sort_by_key(|(i, _)| *i);
    once_per_run(&mut outs);
    let cors = ctx.cors_seen.load(Ordering::Relaxed);
    let mut results = Vec::new();
    for (i, mut o) in outs {
        if let Some(ep) = spec.endpoints.get(i) {
            if let Some((p, a)) = o.preflight.take() {
                judge_preflight(&mut o, ep, &p, &a, ctx.sender.target(), cors);
            }
            group(&mut o.findings);
            let outcome = if o.unjudged > 0 {
                Outcome::Incomplete
            } else if o.findings.is_empty() {
                Outcome::Ok
            } else {
                Outcome::Finding
            };
            results.push(EndpointResult {
                endpoint: ep.label(),
                outcome,
                planned: o.planned,
                unanswered: o.unjudged,
            });
        }
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
        results,
        sender.sent(),
        all.throttled,
        checks,
    )
}

/// A server-wide root cause (`internals-leaked`, `version-disclosed`) is one finding: the
/// first in spec order (so the report does not depend on which task answered first).
fn once_per_run(outs: &mut [(usize, Out)]) {
    for check in [Check::InternalsLeaked, Check::VersionDisclosed] {
        let mut seen = false;
        for (_, o) in outs.iter_mut() {
            o.findings.retain(|f| {
                if f.check != check {
                    return true;
                }
                let keep = !seen;
                seen = true;
                keep
            });
        }
    }
}

/// Runs a persona's sign-in step and returns the persona with the credential it yielded.
async fn sign_in(ctx: &Ctx, p: &Persona) -> Result<Persona, String> {
    let Some(l) = &p.login else {
        return Ok(p.clone());
    };
    let mut headers = vec![accept_json()];
    let body = match &l.body {
        LoginBody::None => Bytes::new(),
        LoginBody::Form(items) => {
            headers.push((
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            ));
            let pairs: Vec<String> = items
                .iter()
                .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
                .collect();
            Bytes::from(pairs.join("&"))
        }
        LoginBody::Json(m) => {
            headers.push((
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ));
            Bytes::from(Value::Object(m.clone()).to_string())
        }
    };
    let out = Outgoing {
        method: l.method.clone(),
        path: l.path.clone(),
        headers,
        body,
    };
    let r = ctx.sender.send(&out).await;
    ctx.tick(&out, &p.name, r.as_ref().ok());
    let a = r.map_err(|e| e.to_string())?;
    if !a.status.is_success() && !a.status.is_redirection() {
        return Err(format!(
            "`{} {}` answered {}",
            l.method,
            l.path,
            a.status.as_u16()
        ));
    }
    let (name, value) = match &l.take {
        Take::Token {
            pointer,
            header,
            prefix,
        } => {
            let v: Value = serde_json::from_slice(&a.body)
                .map_err(|_| format!("`{} {}` did not answer JSON", l.method, l.path))?;
            let tok = v
                .pointer(pointer)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("no string at `{pointer}` in the sign-in answer"))?;
            (header.clone(), format!("{prefix}{tok}"))
        }
        Take::Cookie(name) => {
            let found = a
                .headers
                .get_all(header::SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(|v| v.split(';').next())
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| k.trim() == name)
                .map(|(k, v)| format!("{}={}", k.trim(), v.trim()))
                .ok_or_else(|| format!("the sign-in answer set no cookie `{name}`"))?;
            (header::COOKIE, found)
        }
    };
    let mut value =
        HeaderValue::try_from(value).map_err(|_| "the credential is not a header value")?;
    value.set_sensitive(true);
    let mut persona = p.clone();
    persona.headers.retain(|(n, _)| *n != name);
    persona.headers.push((name, value));
    Ok(persona)
}

/// `application/x-www-form-urlencoded` (WHATWG URL §5.2): unreserved bytes kept, space as
/// `+`, the rest percent-encoded.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char);
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Who asks, with what.
#[derive(Clone)]
enum Creds {
    Headers(Vec<(HeaderName, HeaderValue)>),
    /// Answer a fresh Digest challenge (two requests), keeping the persona's other headers.
    Digest(Vec<(HeaderName, HeaderValue)>, DigestCreds),
}

/// What a planned request is for, which decides how its answer is judged.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Anonymous,
    /// Index into the plan's personas.
    Persona,
    Garbage,
    WrongPassword,
    Unsigned,
    Tampered,
    Preflight,
    Sibling,
}

#[derive(Clone)]
struct Step {
    role: Role,
    /// The label shown (persona name, `wrong-password(user)`, …).
    label: String,
    /// The persona this credential belongs to or was derived from.
    source: Option<String>,
    creds: Creds,
}

impl Step {
    fn requests(&self) -> usize {
        match self.creds {
            Creds::Digest(..) => 2,
            Creds::Headers(_) => 1,
        }
    }
}

struct Plan {
    steps: Vec<Step>,
}

impl Plan {
    fn len_requests(&self) -> usize {
        self.steps.iter().map(Step::requests).sum()
    }
}

fn creds_of(p: &Persona) -> Creds {
    match &p.digest {
        Some(d) => Creds::Digest(p.headers.clone(), d.clone()),
        None => Creds::Headers(p.headers.clone()),
    }
}

/// The persona's headers with `Authorization` replaced.
fn with_authorization(
    headers: &[(HeaderName, HeaderValue)],
    value: &str,
) -> Option<Vec<(HeaderName, HeaderValue)>> {
    let mut v: Vec<_> = headers
        .iter()
        .filter(|(n, _)| n != header::AUTHORIZATION)
        .cloned()
        .collect();
    let mut val = HeaderValue::try_from(value).ok()?;
    val.set_sensitive(true);
    v.push((header::AUTHORIZATION, val));
    Some(v)
}

/// Every request an endpoint gets, decided before any is sent.
fn plan(ep: &Endpoint, personas: &[Persona]) -> Plan {
    let step = |role, label: &str, source: Option<&str>, creds| Step {
        role,
        label: label.to_owned(),
        source: source.map(str::to_owned),
        creds,
    };
    let mut steps = vec![step(
        Role::Anonymous,
        ANONYMOUS,
        None,
        Creds::Headers(vec![]),
    )];
    if ep.public {
        return Plan { steps };
    }
    let scope: Vec<&Persona> = personas
        .iter()
        .filter(|p| ep.personas.contains(&p.name))
        .collect();
    for p in &scope {
        steps.push(step(Role::Persona, &p.name, Some(&p.name), creds_of(p)));
    }
    if let Some(h) = with_authorization(&[], GARBAGE) {
        steps.push(step(
            Role::Garbage,
            "garbage-token",
            None,
            Creds::Headers(h),
        ));
    }
    let valid = || scope.iter().filter(|p| !p.invalid);
    // A wrong password for the first Basic or Digest persona (one is enough: more would
    // only feed the target's failure counters).
    if let Some(p) = valid()
        .find(|p| p.digest.is_some() || p.authorization().and_then(jwt::basic_user).is_some())
    {
        let label = format!("wrong-password({})", p.name);
        match &p.digest {
            Some(d) => steps.push(step(
                Role::WrongPassword,
                &label,
                Some(&p.name),
                Creds::Digest(
                    p.headers.clone(),
                    DigestCreds {
                        user: d.user.clone(),
                        password: "gatehouse-probe-wrong-password".to_owned(),
                    },
                ),
            )),
            None => {
                if let Some(user) = p.authorization().and_then(jwt::basic_user)
                    && let Some(h) = with_authorization(&p.headers, &jwt::wrong_password(&user))
                {
                    steps.push(step(
                        Role::WrongPassword,
                        &label,
                        Some(&p.name),
                        Creds::Headers(h),
                    ));
                }
            }
        }
    }
    // Forged tokens from every JWT persona (each may be verified by a different issuer).
    let mut seen_tokens = Vec::new();
    for p in valid() {
        let Some(tok) = p.authorization().and_then(jwt::bearer_jwt) else {
            continue;
        };
        let unsigned = tok.unsigned();
        if seen_tokens.contains(&unsigned) {
            continue;
        }
        for (role, label, value) in [
            (Role::Unsigned, "alg-none", unsigned.clone()),
            (Role::Tampered, "tampered", tok.tampered()),
        ] {
            if let Some(h) = with_authorization(&p.headers, &format!("Bearer {value}")) {
                steps.push(step(
                    role,
                    &format!("{label}({})", p.name),
                    Some(&p.name),
                    Creds::Headers(h),
                ));
            }
        }
        seen_tokens.push(unsigned);
    }
    if ep.method != Method::OPTIONS {
        steps.push(step(
            Role::Preflight,
            ANONYMOUS,
            None,
            Creds::Headers(vec![]),
        ));
    }
    // Existence: the first persona that must be refused here, on a missing child path.
    if let Some(p) = valid().find(|p| !ep.allow.contains(&p.name)) {
        steps.push(step(Role::Sibling, &p.name, Some(&p.name), creds_of(p)));
    }
    Plan { steps }
}

fn throttle_endpoint(spec: &Spec) -> Option<&Endpoint> {
    spec.endpoints.iter().find(|e| !e.public)
}

/// A request with its label, ready to send and to show as evidence.
#[derive(Clone)]
struct Probe {
    persona: String,
    out: Outgoing,
}

fn accept_json() -> (HeaderName, HeaderValue) {
    (header::ACCEPT, HeaderValue::from_static("application/json"))
}

fn outgoing(method: Method, path: &str, creds: &[(HeaderName, HeaderValue)]) -> Outgoing {
    let mut headers = vec![accept_json()];
    headers.extend(creds.iter().cloned());
    Outgoing {
        method,
        path: path.to_owned(),
        headers,
        body: Bytes::new(),
    }
}

impl Ctx {
    fn tick(&self, out: &Outgoing, persona: &str, a: Option<&Answer>) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(f) = &self.progress {
            f(&Progress {
                done,
                total: self.total.max(done),
                method: out.method.clone(),
                path: out.path.clone(),
                persona: persona.to_owned(),
                status: a.map(|a| a.status.as_u16()),
            });
        }
    }

    async fn send_one(&self, out: &Outgoing, persona: &str) -> Result<Answer, SendError> {
        let r = self.sender.send(out).await;
        self.tick(out, persona, r.as_ref().ok());
        if let Ok(a) = &r
            && a.headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        {
            self.cors_seen.store(true, Ordering::Relaxed);
        }
        r
    }

    fn fail(&self, out: &mut Out, ep: &Endpoint, persona: &str, error: String) {
        out.unjudged += 1;
        if !out.failures.iter().any(|f| f.error == error) || !error.contains("budget") {
            out.failures.push(Failure {
                endpoint: ep.label(),
                persona: persona.to_owned(),
                error,
            });
        }
    }

    /// Sends a planned step (answering a Digest challenge first where needed). `None` when
    /// nothing judgeable came back; the endpoint is then incomplete.
    async fn ask(
        &self,
        p: &Probe,
        digest: Option<&DigestCreds>,
        out: &mut Out,
        ep: &Endpoint,
    ) -> Option<(Probe, Answer)> {
        let mut p = p.clone();
        if let Some(d) = digest {
            let first = match self.send_one(&p.out, &p.persona).await {
                Ok(a) => a,
                Err(e) => {
                    // The answer step is not sent either: count it as done.
                    self.tick(&p.out, &p.persona, None);
                    self.fail(out, ep, &p.persona, e.to_string());
                    return None;
                }
            };
            let fields = first
                .headers
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .map(HeaderValue::as_bytes);
            let cs = challenge::parse_fields(fields).unwrap_or_default();
            let n = self.cnonce.fetch_add(1, Ordering::Relaxed);
            let cnonce = format!("gatehouse-probe-{n:08x}");
            let target = self.sender.target();
            let uri = format!("{}{}", target.base_path, p.out.path);
            let Some(v) = digest::pick(&cs)
                .and_then(|c| digest::authorization(d, c, p.out.method.as_str(), &uri, &cnonce, 1))
            else {
                self.tick(&p.out, &p.persona, None);
                self.fail(
                    out,
                    ep,
                    &p.persona,
                    format!(
                        "no Digest challenge (MD5 or SHA-256) to answer: the first request got {}",
                        first.status.as_u16()
                    ),
                );
                return None;
            };
            if let Ok(mut hv) = HeaderValue::try_from(v) {
                hv.set_sensitive(true);
                p.out.headers.retain(|(n, _)| n != header::AUTHORIZATION);
                p.out.headers.push((header::AUTHORIZATION, hv));
            }
        }
        match self.send_one(&p.out, &p.persona).await {
            Ok(a) => {
                self.body_checks(out, ep, &p, &a);
                if a.status == StatusCode::TOO_MANY_REQUESTS {
                    out.throttled += 1;
                    out.unjudged += 1;
                    return None;
                }
                Some((p, a))
            }
            Err(e) => {
                self.fail(out, ep, &p.persona, e.to_string());
                None
            }
        }
    }

    /// Internals and versions in any answer (kept once per run by [`once_per_run`]).
    fn body_checks(&self, out: &mut Out, ep: &Endpoint, p: &Probe, a: &Answer) {
        for (check, found) in [
            (Check::InternalsLeaked, leaks::internals(a)),
            (Check::VersionDisclosed, leaks::version(a)),
        ] {
            if let Some(what) = found
                && !out.findings.iter().any(|f| f.check == check)
            {
                out.findings
                    .push(finding(check, ep, p, a, self.sender.target(), what));
            }
        }
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
        "server",
        "x-powered-by",
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
        "message": a.message(),
    })
}

fn is_login_redirect(s: StatusCode) -> bool {
    // RFC 9110 §15.4.3/§15.4.4: the redirects a login flow uses.
    s == StatusCode::FOUND || s == StatusCode::SEE_OTHER
}

/// Statuses that say the request got past authentication and authorization and was then
/// judged on its content (the probe sends no body), so they count as "let through".
fn reached_handler(s: u16) -> bool {
    matches!(s, 400 | 409 | 412 | 415 | 422)
}

async fn probe_endpoint(ctx: &Ctx, ep: &Endpoint) -> Out {
    let mut out = Out::default();
    let target = ctx.sender.target().clone();
    let t = &target;
    let personas: Vec<Persona> = ctx.personas.iter().map(|r| r.persona.clone()).collect();
    let plan = plan(ep, &personas);
    out.planned = plan.len_requests();
    // What each source persona and the garbage token were answered (for forged tokens).
    let mut answered: Vec<(String, u16)> = Vec::new();
    let mut garbage_status = None;
    let mut forbidden: Vec<String> = Vec::new();
    // Whether anyone was refused (401/403) at this very path: then it is guarded, and a 404
    // for a persona in `allow` is about the resource, not a missing endpoint.
    let mut guarded = false;
    for st in &plan.steps {
        if let Some(r) = st
            .source
            .as_ref()
            .and_then(|s| ctx.personas.iter().find(|r| &r.persona.name == s))
            && let Some(why) = &r.unusable
        {
            for _ in 0..st.requests() {
                ctx.tick(&outgoing(ep.method.clone(), &ep.path, &[]), &st.label, None);
            }
            ctx.fail(&mut out, ep, &st.label, why.clone());
            continue;
        }
        let (headers, digest) = match &st.creds {
            Creds::Headers(h) => (h.clone(), None),
            Creds::Digest(h, d) => (h.clone(), Some(d)),
        };
        let probe = match st.role {
            Role::Preflight => {
                let mut headers = vec![(header::ORIGIN, HeaderValue::from_static(PROBE_ORIGIN))];
                if let Ok(m) = HeaderValue::try_from(ep.method.as_str()) {
                    headers.push((header::ACCESS_CONTROL_REQUEST_METHOD, m));
                }
                headers.push((
                    header::ACCESS_CONTROL_REQUEST_HEADERS,
                    HeaderValue::from_static("authorization"),
                ));
                Probe {
                    persona: st.label.clone(),
                    out: Outgoing {
                        method: Method::OPTIONS,
                        path: ep.path.clone(),
                        headers,
                        body: Bytes::new(),
                    },
                }
            }
            Role::Sibling => Probe {
                persona: st.label.clone(),
                out: outgoing(ep.method.clone(), &child(&ep.path), &headers),
            },
            _ => Probe {
                persona: st.label.clone(),
                out: outgoing(ep.method.clone(), &ep.path, &headers),
            },
        };
        let Some((p, a)) = ctx.ask(&probe, digest, &mut out, ep).await else {
            continue;
        };
        let s = a.status.as_u16();
        if matches!(s, 401 | 403) && !matches!(st.role, Role::Sibling | Role::Preflight) {
            guarded = true;
        }
        match st.role {
            Role::Anonymous if ep.public => judge_allowed(&mut out, ep, &p, &a, t),
            Role::Anonymous => judge_anonymous(&mut out, ep, &p, &a, t),
            Role::Persona => {
                let name = &st.label;
                answered.push((name.clone(), s));
                let invalid = personas.iter().any(|x| &x.name == name && x.invalid);
                if invalid {
                    judge_invalid(&mut out, ep, &p, &a, t, Check::AccessControlBypass);
                } else if ep.allow.contains(name) {
                    judge_allowed(&mut out, ep, &p, &a, t);
                } else {
                    if s == 403 {
                        forbidden.push(name.clone());
                    }
                    judge_refused(&mut out, ep, &p, &a, t);
                }
            }
            Role::Garbage => {
                garbage_status = Some(s);
                judge_invalid(&mut out, ep, &p, &a, t, Check::AccessControlBypass);
            }
            Role::WrongPassword => {
                judge_invalid(&mut out, ep, &p, &a, t, Check::AccessControlBypass)
            }
            Role::Unsigned | Role::Tampered => {
                let check = if st.role == Role::Unsigned {
                    Check::TokenAcceptedUnsigned
                } else {
                    Check::TokenAcceptedTampered
                };
                // A 403 for the forged token, where its persona got 403 too and a token
                // nobody issued got 401, means the forgery was authenticated as that
                // persona and then refused by role: it was accepted.
                let source_forbidden = st
                    .source
                    .as_ref()
                    .is_some_and(|src| answered.iter().any(|(n, code)| n == src && *code == 403));
                if s == 403 && source_forbidden && garbage_status == Some(401) {
                    out.findings.push(finding(
                        check,
                        ep,
                        &p,
                        &a,
                        t,
                        format!(
                            "`{}` was authenticated: refused 403 like its persona, while a garbage token got 401",
                            p.persona
                        ),
                    ));
                } else {
                    judge_invalid(&mut out, ep, &p, &a, t, check);
                }
            }
            Role::Preflight => out.preflight = Some((p, a)),
            Role::Sibling => {
                if a.status == StatusCode::NOT_FOUND && forbidden.contains(&st.label) {
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
        }
    }
    if guarded {
        // Declared absent: the 404 is the answer the endpoint's author expects, and the
        // refusals of the others at this very path show that the persona was let through.
        if ep.absent {
            out.findings.retain(|f| {
                !(f.check == Check::EndpointMissing
                    && matches!(f.evidence["status"].as_u64(), Some(404 | 410)))
            });
        }
        for f in &mut out.findings {
            let status = f.evidence["status"].as_u64();
            if f.check == Check::EndpointMissing && matches!(status, Some(404 | 410)) {
                f.check = Check::ResourceNotFound;
                f.severity = Check::ResourceNotFound.severity();
                f.message = format!(
                    "`{}` is in `allow` and was let through (others were refused here), but got {}: the resource this path names does not exist, so access to an existing one was not shown",
                    f.persona,
                    status.unwrap_or(404)
                );
            }
        }
    }
    out
}

/// A path below `path` that should not exist: the access rule that covers `path` covers
/// it too (prefix rules), so a 404 for it next to a 403 for `path` shows existence.
fn child(path: &str) -> String {
    let (path, query) = path
        .split_once('?')
        .map_or((path, None), |(p, q)| (p, Some(q)));
    let mut s = path.trim_end_matches('/').to_owned();
    s.push_str("/gatehouse-probe-missing-0");
    if let Some(q) = query {
        s.push('?');
        s.push_str(q);
    }
    s
}

/// A request without credentials to a protected endpoint: 401 with a challenge and no
/// Bearer `error` (RFC 6750 §3.1).
fn judge_anonymous(out: &mut Out, ep: &Endpoint, p: &Probe, a: &Answer, t: &Target) {
    let s = a.status.as_u16();
    match s {
        200..=299 => out.findings.push(finding(
            Check::AccessControlBypass,
            ep,
            p,
            a,
            t,
            format!("no credentials, answered {s}"),
        )),
        401 => challenge_checks(out, ep, p, a, t, true),
        // 404 may be deliberate hiding (RFC 9110 §15.5.4).
        404 => {}
        _ if is_login_redirect(a.status) => out.findings.push(finding(
            Check::RedirectForApi,
            ep,
            p,
            a,
            t,
            format!("a {s} redirect for `Accept: application/json`"),
        )),
        _ => out.findings.push(finding(
            Check::AnonymousNot401,
            ep,
            p,
            a,
            t,
            format!("no credentials, answered {s}; expected 401"),
        )),
    }
}

/// A persona in `allow`, or anonymous on a public endpoint: it must get through. Only a
/// 2xx (or a 4xx about the empty request body the probe sends) shows that it did.
fn judge_allowed(out: &mut Out, ep: &Endpoint, p: &Probe, a: &Answer, t: &Target) {
    let s = a.status.as_u16();
    let who = if ep.public {
        "the public endpoint".to_owned()
    } else {
        format!("`{}` is in `allow` but", p.persona)
    };
    let (check, msg) = match s {
        200..=299 => return,
        _ if reached_handler(s) => return,
        401 | 403 => (Check::AllowedRefused, format!("{who} was answered {s}")),
        _ if is_login_redirect(a.status) => (
            Check::AllowedRefused,
            format!("{who} was redirected ({s}) to sign in"),
        ),
        404 | 405 | 301 | 307 | 308 | 410 => (
            Check::EndpointMissing,
            format!(
                "{who} was answered {s}: the endpoint is not at this method and path, so nothing else here was tested"
            ),
        ),
        500..=599 => (Check::ServerError, format!("{who} was answered {s}")),
        _ => (Check::AllowedRefused, format!("{who} was answered {s}")),
    };
    out.findings.push(finding(check, ep, p, a, t, msg));
}

/// A valid persona outside `allow`.
fn judge_refused(out: &mut Out, ep: &Endpoint, p: &Probe, a: &Answer, t: &Target) {
    let s = a.status.as_u16();
    match s {
        200..=299 => out.findings.push(finding(
            Check::AccessControlBypass,
            ep,
            p,
            a,
            t,
            format!("`{}` is not in `allow` but was answered {s}", p.persona),
        )),
        401 => {
            out.findings.push(finding(
                Check::ForbiddenNot403,
                ep,
                p,
                a,
                t,
                format!(
                    "`{}` is known but not allowed: 403 fits better than 401 (RFC 9110 permits 401)",
                    p.persona
                ),
            ));
            challenge_checks(out, ep, p, a, t, false);
        }
        403 => challenge_on_403(out, ep, p, a, t),
        _ if is_login_redirect(a.status) => out.findings.push(finding(
            Check::RedirectForApi,
            ep,
            p,
            a,
            t,
            format!("a {s} redirect instead of 403"),
        )),
        500..=599 => out.findings.push(finding(
            Check::ServerError,
            ep,
            p,
            a,
            t,
            format!("`{}` was answered {s}", p.persona),
        )),
        _ => {}
    }
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
        401 => {
            challenge_checks(out, ep, p, a, t, false);
            invalid_token_error(out, ep, p, a, t);
        }
        404 => {}
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

/// RFC 6750 §3.1: a refused Bearer token SHOULD get `error="invalid_token"`. Only judged
/// when the request sent a Bearer token and the 401 offers a Bearer challenge at all.
fn invalid_token_error(out: &mut Out, ep: &Endpoint, p: &Probe, a: &Answer, t: &Target) {
    let sent_bearer = p.out.headers.iter().any(|(n, v)| {
        n == header::AUTHORIZATION
            && v.to_str()
                .is_ok_and(|s| s.len() > 7 && s[..7].eq_ignore_ascii_case("bearer "))
    });
    if !sent_bearer
        || out
            .findings
            .iter()
            .any(|f| f.check == Check::InvalidTokenNoError)
    {
        return;
    }
    let fields = a
        .headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .map(HeaderValue::as_bytes);
    let Ok(cs) = challenge::parse_fields(fields) else {
        return;
    };
    let bearer: Vec<_> = cs.iter().filter(|c| c.is("Bearer")).collect();
    if !bearer.is_empty()
        && !bearer
            .iter()
            .any(|c| c.param("error") == Some("invalid_token"))
    {
        out.findings.push(finding(
            Check::InvalidTokenNoError,
            ep,
            p,
            a,
            t,
            "401 for a bad Bearer token without `error=\"invalid_token\"`".to_owned(),
        ));
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

/// The preflight, judged against the whole run: only a target that does CORS somewhere
/// (an `Access-Control-Allow-Origin` on any answer) must answer preflights, and then with
/// a 2xx that carries `Access-Control-Allow-Origin` (Fetch standard, CORS-preflight fetch:
/// a preflight without credentials that fails, or lacks the header, blocks the browser).
fn judge_preflight(out: &mut Out, ep: &Endpoint, p: &Probe, a: &Answer, t: &Target, cors: bool) {
    if !cors {
        return;
    }
    let s = a.status.as_u16();
    let allowed = a.headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN);
    let msg = if matches!(s, 401 | 403) {
        format!("the preflight was answered {s}")
    } else if !(200..300).contains(&s) {
        format!("the preflight was answered {s}; a browser fails it")
    } else if !allowed {
        format!(
            "the preflight was answered {s} without `Access-Control-Allow-Origin`, which the target sends elsewhere; a browser fails it"
        )
    } else {
        return;
    };
    out.findings
        .push(finding(Check::PreflightChallenged, ep, p, a, t, msg));
}

/// One finding per root cause within an endpoint: the same check fired for several
/// personas becomes one finding with each persona's evidence, and refusing every failed
/// authentication with the same wrong status (anonymous, garbage, wrong password all
/// 403) is one `invalid-credentials-not-401`.
fn group(findings: &mut Vec<Finding>) {
    let status = |f: &Finding| f.evidence["status"].as_u64();
    let anon: Vec<usize> = findings
        .iter()
        .enumerate()
        .filter(|(_, f)| f.check == Check::AnonymousNot401)
        .map(|(i, _)| i)
        .collect();
    if let [ai] = anon[..]
        && let Some(inv) = findings
            .iter()
            .position(|f| f.check == Check::InvalidCredentialsNot401)
        && findings
            .iter()
            .filter(|f| f.check == Check::InvalidCredentialsNot401)
            .all(|f| status(f) == status(&findings[ai]))
    {
        let a = findings.remove(ai);
        let inv = if ai < inv { inv - 1 } else { inv };
        let s = status(&a).unwrap_or(0);
        let target = &mut findings[inv];
        target
            .more
            .insert(0, (target.persona.clone(), target.evidence.clone()));
        target.persona = a.persona;
        target.evidence = a.evidence;
        target.message = format!(
            "every failed authentication, from no credentials on, was answered {s}; expected 401"
        );
    }
    let mut out: Vec<Finding> = Vec::with_capacity(findings.len());
    for f in findings.drain(..) {
        match out
            .iter_mut()
            .find(|g| g.check == f.check && g.endpoint == f.endpoint)
        {
            Some(g) => {
                g.more.push((f.persona, f.evidence));
                g.more.extend(f.more);
            }
            None => out.push(f),
        }
    }
    *findings = out;
}

/// `--aggressive`: many failed attempts in a row must meet a 429 (RFC 6585 §4) at some point.
async fn no_throttling(ctx: &Ctx, ep: &Endpoint, all: &mut Out) {
    let personas: Vec<Persona> = ctx.personas.iter().map(|r| r.persona.clone()).collect();
    let basic = personas
        .iter()
        .filter(|p| !p.invalid && ep.personas.contains(&p.name))
        .find_map(|p| Some((p, p.authorization().and_then(jwt::basic_user)?)));
    let (label, creds) = match basic {
        Some((src, user)) => (
            format!("wrong-password({})", src.name),
            with_authorization(&src.headers, &jwt::wrong_password(&user)),
        ),
        None => ("garbage-token".to_owned(), with_authorization(&[], GARBAGE)),
    };
    let Some(creds) = creds else { return };
    let p = Probe {
        persona: label,
        out: outgoing(ep.method.clone(), &ep.path, &creds),
    };
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..THROTTLE_ATTEMPTS {
        let r = ctx.send_one(&p.out, &p.persona).await;
        let a = match r {
            Ok(a) => a,
            Err(e) => {
                all.failures.push(Failure {
                    endpoint: ep.label(),
                    persona: p.persona.clone(),
                    error: e.to_string(),
                });
                break;
            }
        };
        statuses.push(a.status.as_u16());
        let throttled = a.status == StatusCode::TOO_MANY_REQUESTS;
        if throttled {
            all.throttled += 1;
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children() {
        assert_eq!(
            child("/api/items/1"),
            "/api/items/1/gatehouse-probe-missing-0"
        );
        assert_eq!(child("/admin/"), "/admin/gatehouse-probe-missing-0");
        assert_eq!(child("/admin"), "/admin/gatehouse-probe-missing-0");
        assert_eq!(child("/x?a=1"), "/x/gatehouse-probe-missing-0?a=1");
    }

    #[test]
    fn form_encoding() {
        assert_eq!(form_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }
}
