//! One request's exchange with a client: the request id, the clock reading, the client's
//! address and HTML preference, and what the gateway saw on the way ([`Seen`]), with the four
//! things every answer goes through — [`Exchange::refuse`] (core's table), [`Exchange::finish`]
//! (request id, CORS), [`Exchange::observe`] (audit, metrics, alerts) and
//! [`Exchange::tarpit`] (row 4). The proxy, forward-auth and the `/auth/*` endpoints all answer
//! through it, so they cannot drift apart.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use gatehouse_core::accept::prefers_html;
use gatehouse_core::deny::Deny;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Response, StatusCode};

use crate::gateway::{Gateway, Runtime};
use crate::observe::{RequestRecord, Verdict};
use crate::rendered::RenderArgs;
pub use crate::rendered::rendered_response;
use crate::telemetry::Trace;
use crate::verified::Identity;

/// The request id, sent on every answer and taken from a trusted proxy's forward-auth
/// subrequest.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// One request and its answer.
pub struct Exchange {
    pub gw: Arc<Gateway>,
    /// The runtime the request is decided with (a config reload does not change it midway).
    pub rt: Arc<Runtime>,
    pub request_id: String,
    /// Unix seconds, read once.
    pub now: i64,
    /// `Accept` prefers HTML: refusals are pages.
    pub html: bool,
    /// `content-type: application/grpc[+…]`: refusals carry `grpc-status` too.
    pub grpc: bool,
    /// `Origin` of a cross-origin call, for CORS headers per `[cors]`.
    pub origin: Option<HeaderValue>,
    /// The connection is HTTP/1.x with the client itself (where `Connection: close` is
    /// meaningful; not forward-auth, whose peer is the proxy).
    pub http1: bool,
    /// Refusals carry their body (`false` for nginx forward-auth, which drops it).
    pub with_body: bool,
    /// The browser's own post of the sign-in or code form (`/auth/*`; known once the body
    /// is read, see [`Exchange::set_form_post`]).
    form_post: AtomicBool,
}

/// What the gateway learnt about a request on its way, for [`Exchange::observe`].
pub struct Seen<'a> {
    pub started: Instant,
    pub method: Cow<'a, str>,
    /// Normalized path (raw while it could not be normalized); never the query.
    pub path: Cow<'a, str>,
    pub ip: Option<IpAddr>,
    /// The matched route of the policy.
    pub route: Option<usize>,
    /// Gatehouse's own endpoint (`auth/login` …), recorded as the route.
    pub endpoint: Option<&'static str>,
    pub scheme: Option<gatehouse_core::Scheme>,
    /// The proven subject of a request refused after verification.
    pub subject: Option<String>,
    /// Who an allowed request was (its subject is the record's).
    pub allowed: Option<Identity>,
    /// The refusal sent, and whether row 20 hid it.
    pub deny: Option<(Deny, bool)>,
    /// The pass label when nothing was refused.
    pub pass: &'static str,
    pub decided: Option<Duration>,
    pub upstream: Option<Duration>,
    /// Its W3C trace context (`crate::telemetry`).
    pub trace: Option<Trace>,
}

impl<'a> Seen<'a> {
    pub fn new(started: Instant, method: Cow<'a, str>, path: Cow<'a, str>) -> Self {
        Self {
            started,
            method,
            path,
            ip: None,
            route: None,
            endpoint: None,
            scheme: None,
            subject: None,
            allowed: None,
            deny: None,
            pass: "allowed",
            decided: None,
            upstream: None,
            trace: None,
        }
    }
}

impl Exchange {
    /// A new exchange for a request with `headers`, decided with `rt` (the gateway's
    /// runtime when the request came in); its request id is a fresh one unless `request_id`
    /// is given.
    pub fn new(
        gw: Arc<Gateway>,
        rt: Arc<Runtime>,
        headers: &HeaderMap,
        request_id: Option<String>,
    ) -> Self {
        Self {
            request_id: request_id.unwrap_or_else(|| gw.ids.next()),
            gw,
            rt,
            now: crate::clock::now(),
            html: wants_html(headers),
            grpc: is_grpc_request(headers),
            origin: headers.get(http::header::ORIGIN).cloned(),
            http1: true,
            with_body: true,
            form_post: AtomicBool::new(false),
        }
    }

    /// Marks the request as the browser's own post of the sign-in or code form: its
    /// refusals are pages that say what to fix, not a credentials dialog.
    pub fn set_form_post(&self, form: bool) {
        self.form_post.store(form, Ordering::Relaxed);
    }

    /// The answer to a refusal on `route` (`None` = `[defaults]`) through core's table,
    /// recorded in `seen`. Refusals without facts of their own are copied from a prepared
    /// answer ([`crate::prepared_refusals`]).
    pub fn refuse(
        &self,
        seen: &mut Seen<'_>,
        route: Option<usize>,
        deny: Deny,
        hidden: bool,
        return_to: &str,
    ) -> Response<Body> {
        let (gw, rt) = (&*self.gw, &*self.rt);
        let args = RenderArgs {
            route,
            form_post: self.form_post.load(Ordering::Relaxed),
            grpc: self.grpc,
            html: self.html,
            request_id: &self.request_id,
            now: self.now,
            return_to,
        };
        let prepared = if self.with_body {
            rt.refusals.response(gw, rt, &args, &deny, hidden)
        } else {
            None
        };
        let mut resp = prepared.unwrap_or_else(|| {
            rendered_response(gw.render(rt, &args, &deny, hidden), self.with_body)
        });
        // A client locked out by the throttle (row 4) does not keep its keep-alive
        // connection: a flood then pays a TCP handshake per attempt instead of riding a
        // cheap stream of 429s (transport management only; status and body are the table's).
        if self.http1 && deny.entry().tarpit.is_some() {
            resp.headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        seen.route = route;
        seen.deny = Some((deny, hidden));
        self.finish(resp)
    }

    /// Headers every answer gets: the request id and, for allowed origins, CORS.
    pub fn finish(&self, mut resp: Response<Body>) -> Response<Body> {
        self.stamp(resp.headers_mut());
        resp
    }

    /// [`Exchange::finish`] on an answer's headers.
    pub fn stamp(&self, headers: &mut HeaderMap) {
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            headers.insert(X_REQUEST_ID, v);
        }
        if let Some(origin) = &self.origin {
            crate::cors::actual_response_headers(&self.rt.config.cors, origin, headers);
        }
    }

    /// Hands the finished request to the observer (audit, metrics, alerts).
    pub fn observe(&self, seen: &Seen<'_>, resp: &Response<Body>) {
        let route = seen.endpoint.or_else(|| {
            seen.route
                .and_then(|i| self.rt.policy.routes().get(i))
                .map(|r| r.name())
        });
        let verdict = match &seen.deny {
            Some((deny, hidden)) => Verdict::Refused {
                deny,
                hidden: *hidden,
            },
            None => Verdict::Passed(seen.pass),
        };
        let record = RequestRecord {
            time: self.now,
            request_id: &self.request_id,
            route,
            method: &seen.method,
            path: &seen.path,
            client_ip: seen.ip,
            subject: seen
                .allowed
                .as_ref()
                .map(|v| v.subject.as_str())
                .or(seen.subject.as_deref()),
            scheme: seen.scheme,
            status: resp.status().as_u16(),
            verdict,
            decision: seen.decided.unwrap_or_else(|| seen.started.elapsed()),
            upstream: seen.upstream,
        };
        // With the runtime the request was decided with (held here: no second read of the
        // gateway's current one on every request).
        self.gw
            .observer
            .observe(&record, &self.rt.config, &self.gw.ids);
        if let Some(t) = &seen.trace {
            t.finish(
                &self.rt.config.telemetry,
                &self.gw.observer.spans,
                &record,
                seen.started,
            );
        }
    }

    /// Row 4's tarpit: a locked client's answer waits here, after it was observed (so a
    /// client that hangs up meanwhile is still in the audit trail).
    pub async fn tarpit(&self, deny: Option<&Deny>) {
        self.gw
            .tarpit
            .delay(self.rt.config.throttle.tarpit, deny)
            .await;
    }
}

/// Whether `Accept` prefers HTML (a browser): refusals are then pages.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(prefers_html)
}

/// A gRPC request (`content-type: application/grpc[+…]`): its refusals carry `grpc-status`.
fn is_grpc_request(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| gatehouse_core::render::is_grpc(v.as_bytes()))
}

/// A JSON answer (health, JWKS, the token endpoints, the admin API).
pub fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
