//! The one table: a refusal → status, challenges, headers and body (design §2).
//!
//! This is the only place in Gatehouse where a status code for a refusal is chosen. Bodies
//! are `application/problem+json` (RFC 9457) with the members `type`, `title`, `status`,
//! `detail`, `error`, `message`, `timestamp`, `request_id` and the row's extra members; or an
//! HTML page for browsers (design §2 "Browsers").

mod html;

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::config::Disclosure;
use crate::deny::{Challenge, Deny, Extra};
use crate::digest::DigestChallenge;
use crate::scheme::Scheme;
use crate::text::push_param;

pub use crate::text::rfc3339;
pub use html::escape_html;

/// Everything besides the refusal that shapes the response.
#[derive(Debug, Clone, Copy)]
pub struct RenderCtx<'a> {
    pub realm: &'a str,
    /// Accepted schemes of the matched route, in config order.
    pub accepted: &'a [Scheme],
    pub disclosure: Disclosure,
    pub scope_challenge: bool,
    /// The client prefers `text/html` (see [`crate::accept::prefers_html`]).
    pub html: bool,
    pub request_id: &'a str,
    /// Unix seconds.
    pub now: i64,
    /// The original request target, for the sign-in page's return URL (same origin only).
    pub return_to: &'a str,
    /// The request is the browser's own post of the sign-in or code form: its refusal must
    /// not open the browser's credentials dialog (see [`challenges`]).
    pub form_post: bool,
    /// A fresh nonce and the realm's opaque for Digest challenges, computed by the edge per
    /// response (core reads no randomness). `None`: no Digest challenge is emitted.
    pub digest: Option<&'a DigestChallenge>,
    /// The request is gRPC (`content-type: application/grpc[+…]`, see [`is_grpc`]): the
    /// refusal also carries `grpc-status` and `grpc-message`.
    pub grpc: bool,
    /// What the HTML sign-in page offers.
    pub sign_in: SignInOptions<'a>,
    /// `[problems] base_uri` ([`crate::decision::Policy::problem_base`]); see [`problem_type`].
    pub problem_base: Option<&'a str>,
    /// The operator's templates (`[pages]`), read by the edge; `None`: the built-in pages.
    pub pages: Option<&'a dyn Pages>,
}

/// Which HTML page a refusal gets (`[pages]` names one template per kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKind {
    /// `sign-in.html`: the 401s that signing in can fix.
    SignIn,
    /// `403.html`: what is missing.
    Forbidden,
    /// `404.html`: row 20 and unknown paths.
    NotFound,
    /// `429.html`.
    TooMany,
    /// `error.html`: everything else (400, 451, 5xx).
    Error,
}

/// Operator-branded HTML pages (`[pages] dir`), rendered by the edge from the same members
/// as the problem body. `None` from [`Pages::page`] keeps the built-in page (no template for
/// the kind, or the template failed: the edge logs why).
pub trait Pages: Send + Sync + std::fmt::Debug {
    /// `members` are the problem body's; `return_to` is the same-origin target a sign-in
    /// form returns to.
    fn page(&self, kind: PageKind, members: &Map<String, Value>, return_to: &str)
    -> Option<String>;
}

/// The ways in that the HTML sign-in page offers: "Sign in with …" buttons for the
/// `[[login_providers]]` (where the route takes the `session` scheme) and the password form
/// (unless `[server] password_sign_in = false`).
#[derive(Debug, Clone, Copy)]
pub struct SignInOptions<'a> {
    pub password: bool,
    pub providers: &'a [crate::config::LoginProviderConfig],
}

impl SignInOptions<'static> {
    /// The password form only (no login providers).
    pub const PASSWORD: Self = Self {
        password: true,
        providers: &[],
    };
}

/// Whether a `Content-Type` value is gRPC's: `application/grpc` or `application/grpc+…`
/// (gRPC `doc/PROTOCOL-HTTP2.md`, "Content-Type"), case-insensitive, parameters ignored.
pub fn is_grpc(content_type: &[u8]) -> bool {
    let essence = content_type
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let prefix = b"application/grpc";
    essence.len() >= prefix.len()
        && essence[..prefix.len()].eq_ignore_ascii_case(prefix)
        && matches!(essence.get(prefix.len()), None | Some(b'+'))
}

/// `grpc-message` is percent-encoded (gRPC `doc/PROTOCOL-HTTP2.md`, "Responses"): the
/// UTF-8 bytes outside `%x20-%x7E`, and `%` itself, become `%XX`.
pub fn grpc_message(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A rendered refusal. Header names are lower-case; `www-authenticate` may repeat (one
/// challenge per accepted scheme, RFC 9110 §11.6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub status: u16,
    /// The `error` code shown (`not_found` when row 20 hid the true one).
    pub error: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub content_type: &'static str,
    pub body: String,
}

/// Status of a refusal; `hidden` applies row 20.
pub fn status(deny: &Deny, hidden: bool) -> u16 {
    let e = deny.entry();
    if hidden && e.hideable { 404 } else { e.status }
}

/// The `type` member of a problem with this `error` code (RFC 9457 §3.1.1: a URI
/// reference; "about:blank" when absent): `base` followed by the code when the operator set
/// `[problems] base_uri` (a page per code in their docs), otherwise a stable URN.
pub fn problem_type(base: Option<&str>, code: &str) -> String {
    match base {
        Some(b) => format!("{b}{code}"),
        None => format!("urn:gatehouse:problem:{code}"),
    }
}

/// The challenge of one scheme without error attributes (rows 5, 6, 11).
pub fn plain_challenge(scheme: Scheme, realm: &str) -> Option<String> {
    let mut c = String::with_capacity(48);
    match scheme {
        Scheme::Bearer => {
            c.push_str("Bearer ");
            push_param(&mut c, "realm", realm);
        }
        // RFC 7617 §2.1: announce UTF-8.
        Scheme::Basic => {
            c.push_str("Basic ");
            push_param(&mut c, "realm", realm);
            push_param(&mut c, "charset", "UTF-8");
        }
        // API keys have no registered scheme; this names the header so a client can act.
        Scheme::ApiKey => {
            c.push_str("ApiKey ");
            push_param(&mut c, "realm", realm);
            push_param(&mut c, "header", "X-API-Key");
        }
        // Digest challenges carry a fresh nonce: see [`RenderCtx::digest`]. Sessions are
        // cookies and have no challenge.
        Scheme::Digest | Scheme::Session => return None,
    }
    Some(c)
}

/// `Bearer realm=…, error=…[, error_description=…]` (RFC 6750 §3).
fn bearer_error(realm: &str, error: &str, description: Option<&str>) -> String {
    let mut c = String::from("Bearer ");
    push_param(&mut c, "realm", realm);
    push_param(&mut c, "error", error);
    if let Some(d) = description {
        push_param(&mut c, "error_description", d);
    }
    c
}

/// The `WWW-Authenticate` values of a refusal (empty for rows without a challenge).
///
/// A browser that posted the sign-in (or code) form gets the page again on a refusal, never
/// the native credentials dialog a `Basic` or `Digest` challenge opens — answering it would
/// re-post the form with an `Authorization` header the token service ignores, and a wrong
/// password would loop. Such a 401 still names a challenge (RFC 9110 §15.5.2): `Bearer`,
/// what the token service issues.
pub fn challenges(deny: &Deny, ctx: &RenderCtx<'_>) -> Vec<String> {
    let mut out = table_challenges(deny, ctx);
    if ctx.html && ctx.form_post {
        out.retain(|c| {
            let scheme = c.split(' ').next().unwrap_or("");
            !scheme.eq_ignore_ascii_case("basic") && !scheme.eq_ignore_ascii_case("digest")
        });
        if status(deny, false) == 401 && out.is_empty() {
            out.extend(plain_challenge(Scheme::Bearer, ctx.realm));
        }
    }
    out
}

/// The challenges of the table, before the form-post rule of [`challenges`].
fn table_challenges(deny: &Deny, ctx: &RenderCtx<'_>) -> Vec<String> {
    let e = deny.entry();
    let realm = ctx.realm;
    match e.challenge {
        Challenge::None => Vec::new(),
        Challenge::Accepted => {
            let mut out = Vec::with_capacity(ctx.accepted.len() + 1);
            for &scheme in ctx.accepted {
                match (scheme, ctx.digest) {
                    // SHA-256 before MD5 when both are allowed (RFC 7616 §3.7).
                    (Scheme::Digest, Some(d)) => out.extend(d.render(realm, false)),
                    _ => out.extend(plain_challenge(scheme, realm)),
                }
            }
            out
        }
        Challenge::StaleDigest => match ctx.digest {
            Some(d) if ctx.accepted.contains(&Scheme::Digest) => d.render(realm, true),
            _ => Vec::new(),
        },
        Challenge::InvalidRequest if ctx.accepted.contains(&Scheme::Bearer) => {
            vec![bearer_error(realm, "invalid_request", None)]
        }
        Challenge::InvalidRequest => Vec::new(),
        Challenge::InvalidToken(description) => {
            let d = description
                .as_static()
                .map_or_else(|| capitalize(&description.to_string()), str::to_owned);
            vec![bearer_error(realm, "invalid_token", Some(&d))]
        }
        Challenge::StepUp {
            acr_values,
            max_age,
        } => {
            let detail = e.detail.to_text();
            let mut c = bearer_error(
                realm,
                "insufficient_user_authentication",
                Some(detail.trim_end_matches('.')),
            );
            if let Some(acr) = acr_values {
                push_param(&mut c, "acr_values", acr);
            }
            if let Some(age) = max_age {
                // RFC 9470 §3 shows max_age as a token, unquoted.
                let _ = write!(c, ", max_age={age}");
            }
            vec![c]
        }
        Challenge::Scope(required) if ctx.scope_challenge => {
            let mut c = bearer_error(realm, "insufficient_scope", None);
            push_param(&mut c, "scope", &required.join(" "));
            vec![c]
        }
        Challenge::Scope(_) => Vec::new(),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Where the problem members go: a JSON map (for HTML pages) or JSON text written directly
/// (the hot path of every refusal). One function decides the members for both.
trait Members {
    fn str(&mut self, key: &'static str, value: &str);
    fn num(&mut self, key: &'static str, value: u64);
    fn null(&mut self, key: &'static str);
    fn list(&mut self, key: &'static str, values: &mut dyn Iterator<Item = &str>);
    /// `requirements` (row 25): `[{code, message?, remedy_url?}]`; `helpful` keeps messages
    /// and links.
    fn requirements(&mut self, unmet: &[crate::requirements::Unmet], helpful: bool);
}

/// The members of one unmet requirement, in order.
fn unmet_members(
    u: &crate::requirements::Unmet,
    helpful: bool,
) -> impl Iterator<Item = (&'static str, &str)> {
    std::iter::once(("code", u.code.as_str())).chain(
        [("message", &u.message), ("remedy_url", &u.remedy_url)]
            .into_iter()
            .filter(move |_| helpful)
            .filter_map(|(k, v)| v.as_deref().map(|v| (k, v))),
    )
}

impl Members for Map<String, Value> {
    fn str(&mut self, key: &'static str, value: &str) {
        self.insert(key.into(), Value::String(value.into()));
    }
    fn num(&mut self, key: &'static str, value: u64) {
        self.insert(key.into(), json!(value));
    }
    fn null(&mut self, key: &'static str) {
        self.insert(key.into(), Value::Null);
    }
    fn list(&mut self, key: &'static str, values: &mut dyn Iterator<Item = &str>) {
        self.insert(
            key.into(),
            Value::Array(values.map(|v| Value::String(v.into())).collect()),
        );
    }
    fn requirements(&mut self, unmet: &[crate::requirements::Unmet], helpful: bool) {
        let items = unmet
            .iter()
            .map(|u| {
                Value::Object(
                    unmet_members(u, helpful)
                        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                        .collect(),
                )
            })
            .collect();
        self.insert("requirements".into(), Value::Array(items));
    }
}

/// JSON text (RFC 8259) written member by member.
struct JsonText(String);

impl JsonText {
    /// Member names are core's own identifiers (`[a-z_]`), which need no escaping.
    fn key(&mut self, key: &'static str) {
        debug_assert!(key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        self.0
            .push_str(if self.0.is_empty() { "{\"" } else { ",\"" });
        self.0.push_str(key);
        self.0.push_str("\":");
    }
}

/// A JSON string literal with the escapes RFC 8259 §7 requires. Runs of bytes that need no
/// escape (all of them, in most values) are copied whole.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut rest = s;
    while let Some(i) = rest
        .bytes()
        .position(|b| b == b'"' || b == b'\\' || b < 0x20)
    {
        // `i` is at an ASCII byte, so both halves are on character boundaries.
        let (run, tail) = rest.split_at(i);
        out.push_str(run);
        let mut chars = tail.chars();
        match chars.next() {
            Some('"') => out.push_str("\\\""),
            Some('\\') => out.push_str("\\\\"),
            Some('\n') => out.push_str("\\n"),
            Some('\r') => out.push_str("\\r"),
            Some('\t') => out.push_str("\\t"),
            Some(c) => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            None => {}
        }
        rest = chars.as_str();
    }
    out.push_str(rest);
    out.push('"');
}

impl Members for JsonText {
    fn str(&mut self, key: &'static str, value: &str) {
        self.key(key);
        push_json_str(&mut self.0, value);
    }
    fn num(&mut self, key: &'static str, value: u64) {
        self.key(key);
        let _ = write!(self.0, "{value}");
    }
    fn null(&mut self, key: &'static str) {
        self.key(key);
        self.0.push_str("null");
    }
    fn list(&mut self, key: &'static str, values: &mut dyn Iterator<Item = &str>) {
        self.key(key);
        self.0.push('[');
        for (i, v) in values.enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            push_json_str(&mut self.0, v);
        }
        self.0.push(']');
    }
    fn requirements(&mut self, unmet: &[crate::requirements::Unmet], helpful: bool) {
        self.key("requirements");
        self.0.push('[');
        for (i, u) in unmet.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            for (j, (k, v)) in unmet_members(u, helpful).enumerate() {
                self.0.push_str(if j == 0 { "{\"" } else { ",\"" });
                self.0.push_str(k);
                self.0.push_str("\":");
                push_json_str(&mut self.0, v);
            }
            self.0.push('}');
        }
        self.0.push(']');
    }
}

/// The problem body's members (RFC 9457) in order, including the row's extra members.
fn members(deny: &Deny, hidden: bool, ctx: &RenderCtx<'_>, m: &mut dyn Members) {
    let shown = if hidden && deny.hideable() {
        &Deny::NotFound
    } else {
        deny
    };
    let e = shown.entry();
    let owned;
    let detail = match e.detail.as_static() {
        Some(d) => d,
        None => {
            owned = e.detail.to_string();
            &owned
        }
    };
    m.str("type", &problem_type(ctx.problem_base, e.code));
    m.str("title", e.title);
    m.num("status", u64::from(e.status));
    m.str("detail", detail);
    m.str("error", e.code);
    m.str("message", detail);
    m.str("timestamp", &rfc3339(ctx.now));
    m.str("request_id", ctx.request_id);
    for extra in e.extras {
        match extra {
            Extra::None => {}
            Extra::Str(k, v) => m.str(k, v),
            Extra::OptStr(k, v) => match v {
                Some(v) => m.str(k, v),
                None => m.null(k),
            },
            Extra::Time(k, t) => m.str(k, &rfc3339(t)),
            Extra::Num(k, n) => m.num(k, n),
            Extra::List(k, items) => m.list(k, &mut items.iter().map(String::as_str)),
            Extra::Disclosed(k, items) => {
                if ctx.disclosure == Disclosure::Helpful {
                    m.list(k, &mut items.iter().map(String::as_str));
                }
            }
            Extra::Requirements(unmet) => {
                m.requirements(unmet, ctx.disclosure == Disclosure::Helpful);
            }
            Extra::AcceptedSchemes => m.list(
                "accepted_schemes",
                &mut ctx.accepted.iter().map(|s| s.as_str()),
            ),
        }
    }
}

/// The problem body's members as a JSON map (RFC 9457).
pub fn problem(deny: &Deny, hidden: bool, ctx: &RenderCtx<'_>) -> Map<String, Value> {
    let mut m = Map::with_capacity(12);
    members(deny, hidden, ctx, &mut m);
    m
}

/// The problem body as JSON text, written without an intermediate map.
pub fn problem_json(deny: &Deny, hidden: bool, ctx: &RenderCtx<'_>) -> String {
    let mut out = JsonText(String::with_capacity(384));
    members(deny, hidden, ctx, &mut out);
    out.0.push('}');
    out.0
}

/// Renders a refusal completely. `hidden` applies row 20.
pub fn render(deny: &Deny, hidden: bool, ctx: &RenderCtx<'_>) -> Rendered {
    let hide = hidden && deny.hideable();
    let status = status(deny, hide);
    let mut headers: Vec<(&'static str, String)> = Vec::with_capacity(4);
    if !hide {
        for c in challenges(deny, ctx) {
            headers.push(("www-authenticate", c));
        }
        let h = deny.entry().headers;
        if let Some(retry_after) = h.retry_after {
            // RFC 9110 §10.2.3 / RFC 6585 §4.
            headers.push(("retry-after", retry_after.to_string()));
        }
        if let Some(limit) = h.rate_limit {
            // draft-ietf-httpapi-ratelimit-headers (the widely deployed -Limit/-Remaining/-Reset form).
            headers.push(("ratelimit-limit", limit.to_string()));
            headers.push(("ratelimit-remaining", "0".to_owned()));
            headers.push((
                "ratelimit-reset",
                h.retry_after.unwrap_or_default().to_string(),
            ));
        }
        if let Some(allow) = h.allow {
            headers.push(("allow", allow.to_owned()));
        }
        if let Some(uri) = h.blocked_by {
            // RFC 7725 §3 with RFC 8288 §3: the entity that requires the legal block.
            headers.push(("link", format!("<{uri}>; rel=\"blocked-by\"")));
        }
    }
    if ctx.grpc {
        // Alongside the HTTP status, for gRPC clients (a Trailers-Only answer's status in
        // its headers): what the shown refusal means, from the table.
        let shown = if hide { &Deny::NotFound } else { deny }.entry();
        headers.push(("grpc-status", shown.grpc.to_string()));
        headers.push(("grpc-message", grpc_message(&shown.detail.to_text())));
    }
    // Refusals are personal and must not be cached by shared caches.
    headers.push(("cache-control", "no-store".to_owned()));
    let error = if hide {
        Deny::NotFound.code()
    } else {
        deny.code()
    };
    if ctx.grpc {
        // gRPC's Trailers-Only answer (gRPC doc/PROTOCOL-HTTP2.md, "Responses"): one
        // HEADERS frame that ends the stream, `content-type: application/grpc`. A body after
        // those headers would be read as the call's first message, and gRPC's own clients
        // then fail the call as UNKNOWN ("Stream removed") instead of reading grpc-status.
        // The code stays in `X-Gatehouse-Error`, the detail in `grpc-message`.
        return Rendered {
            status,
            error,
            headers,
            content_type: "application/grpc",
            body: String::new(),
        };
    }
    if ctx.html {
        // Only the HTML page reads the members as a map; JSON is written directly below.
        let body = problem(deny, hidden, ctx);
        let page = html::page(deny, hide, &body, ctx);
        return Rendered {
            status,
            error,
            headers,
            content_type: "text/html; charset=utf-8",
            body: page,
        };
    }
    Rendered {
        status,
        error,
        headers,
        content_type: "application/problem+json",
        body: problem_json(deny, hidden, ctx),
    }
}

#[cfg(test)]
mod tests;
