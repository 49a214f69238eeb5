//! The HTTP edge: turns requests into [`RequestView`]s, runs the pipeline, and turns the
//! outcome into a response — proxying, forward-auth answers, CORS preflights, refusals
//! (each through one [`Exchange`]); and the health and JWKS endpoints.

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use gatehouse_core::config::ForwardAuthBody;
use gatehouse_core::decision::Decision;
use gatehouse_core::deny::Deny;
use gatehouse_core::path::normalize;
use http::header::HeaderValue;
use http::{HeaderMap, Request, Response, StatusCode};

use crate::exchange::{Exchange, Seen, X_REQUEST_ID, json_response};
use crate::gateway::{Gateway, Outcome, RequestView, Runtime};
use crate::net::{client_ip, is_trusted};
use crate::proxy::strip_identity;
use crate::telemetry::Trace;
use crate::verified::{Identity, identity_headers};

/// The reverse-proxy handler: every path that is not one of Gatehouse's own endpoints.
pub async fn proxy_handler(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request<Body>,
) -> Response<Body> {
    match proxy_request(gw, peer, req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

/// [`proxy_handler`] without the router's extractors: the future the public port's server
/// boxes for every path that is not one of Gatehouse's own endpoints (its output is already
/// the service's `Result`, so nothing wraps it): [`guard`] with the upstream.
pub fn proxy_request(
    gw: Arc<Gateway>,
    peer: SocketAddr,
    req: Request<Body>,
) -> impl Future<Output = Result<Response<Body>, Infallible>> + Send + 'static {
    guard(gw, peer, req, ToUpstream)
}

/// Where a request the pipeline let through goes: the upstream (reverse proxy) or the
/// application a [`crate::layer::GatehouseLayer`] guards. Everything before (the decision,
/// refusals, CORS, the request id) and after (audit, metrics, the tarpit) is [`guard`]'s, so
/// both answer the same.
pub trait Pass: Send + 'static {
    /// `false`: nothing to pass to (forward-auth only), answered 404 `not_found`.
    fn ready(&self, rt: &Runtime) -> bool;
    /// Hands on an allowed (or public) request; a [`Deny`] is answered through the table.
    fn pass(
        self,
        rt: &Runtime,
        req: Request<Body>,
        to: Passed<'_>,
    ) -> impl Future<Output = Result<Response<Body>, Deny>> + Send;
}

/// What [`Pass::pass`] is told about an allowed request.
pub struct Passed<'a> {
    /// The normalized path, percent-encoded again (what was checked is what is passed).
    pub path: &'a str,
    pub client_ip: IpAddr,
    /// The peer is a trusted proxy (its `X-Forwarded-*` are kept).
    pub peer_trusted: bool,
    /// Who it is; `None` on a public route.
    pub identity: Option<&'a Identity>,
}

/// The reverse proxy's [`Pass`]: the configured upstream.
pub struct ToUpstream;

impl Pass for ToUpstream {
    fn ready(&self, rt: &Runtime) -> bool {
        rt.upstream.is_some()
    }

    async fn pass(
        self,
        rt: &Runtime,
        req: Request<Body>,
        to: Passed<'_>,
    ) -> Result<Response<Body>, Deny> {
        let Some(upstream) = &rt.upstream else {
            return Err(Deny::NotFound);
        };
        let limit = usize::try_from(rt.config.server.max_body_bytes).unwrap_or(usize::MAX);
        upstream
            .forward(
                req.map(|b| Body::new(http_body_util::Limited::new(b, limit))),
                to.path,
                to.client_ip,
                to.peer_trusted,
                to.identity.map(|i| &**i),
            )
            .await
    }
}

/// The public port's answer to one request, for the proxy and the tower Layer alike:
/// normalize → core's pipeline → a refusal through the table, a CORS preflight, or `pass`.
///
/// One async block rather than nested `async fn`s: this future is allocated and moved for
/// every request (finding 11), and each `async fn` level would keep its own copies of the
/// request (240 bytes: the argument, and the local it is moved into), and the decision's
/// request view would stay in it while the upstream answers.
#[expect(
    clippy::manual_async_fn,
    reason = "an `async fn` would keep a second copy of the request in the future"
)]
pub fn guard<T: Pass>(
    gw: Arc<Gateway>,
    peer: SocketAddr,
    mut req: Request<Body>,
    target: T,
) -> impl Future<Output = Result<Response<Body>, Infallible>> + Send + 'static {
    async move {
        let started = Instant::now();
        let rt = gw.runtime();
        let mut ctx = Exchange::new(gw, rt, req.headers(), None);
        ctx.http1 = req.version() <= http::Version::HTTP_11;
        let (gw, rt, now) = (&ctx.gw, &ctx.rt, ctx.now);
        strip_identity(req.headers_mut());
        let raw_path = req.uri().path().to_owned();
        let method = req.method().clone();
        let mut seen = Seen::new(
            started,
            Cow::Borrowed(method.as_str()),
            Cow::Borrowed(&raw_path),
        );
        seen.trace = Some(Trace::start(req.headers()));
        let resp = 'answer: {
            let trusted = &rt.config.server.trusted_proxies;
            let ip = client_ip(peer, req.headers(), trusted);
            seen.ip = Some(ip);
            let peer_trusted = is_trusted(peer.ip(), trusted);
            let return_to = req
                .uri()
                .path_and_query()
                .map_or("/", |pq| pq.as_str())
                .to_owned();
            let path = match normalize(&raw_path) {
                Ok(p) => p,
                Err(e) => {
                    let deny = Deny::InvalidPath {
                        detail: e.to_string(),
                    };
                    break 'answer ctx.refuse(&mut seen, None, deny, false, &return_to);
                }
            };
            let declared = req
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|len| len > rt.config.server.max_body_bytes) {
                break 'answer ctx.refuse(
                    &mut seen,
                    None,
                    Deny::PayloadTooLarge,
                    false,
                    &return_to,
                );
            }
            let Outcome {
                decision,
                route,
                quota,
                scheme,
                subject,
            } = {
                let view = RequestView {
                    method: &seen.method,
                    path: &path.decoded,
                    target: &return_to,
                    query: req.uri().query(),
                    headers: req.headers(),
                    client_ip: ip,
                    now,
                };
                gw.decide(rt, &view, None).await
            };
            seen.decided = Some(seen.started.elapsed());
            seen.path = path.decoded;
            seen.route = route;
            seen.scheme = scheme;
            seen.subject = subject;
            let principal = match decision {
                Decision::Deny { reason, hidden } => {
                    // A browser signed in through a login provider steps up there.
                    let up = crate::auth::oidc::step_up(
                        rt,
                        req.headers(),
                        &reason,
                        ctx.html,
                        hidden,
                        &return_to,
                        gw,
                    );
                    if let Some(resp) = up {
                        seen.route = route;
                        seen.deny = Some((reason, hidden));
                        break 'answer ctx.finish(resp);
                    }
                    break 'answer ctx.refuse(&mut seen, route, reason, hidden, &return_to);
                }
                Decision::Preflight => {
                    seen.pass = "preflight";
                    break 'answer ctx
                        .finish(crate::cors::preflight(&rt.config.cors, req.headers()));
                }
                Decision::Public => {
                    seen.pass = "public";
                    None
                }
                Decision::Allow(p) => Some(p),
            };
            if !target.ready(rt) {
                // Forward-auth only: nothing to proxy to.
                break 'answer ctx.refuse(&mut seen, route, Deny::NotFound, false, &return_to);
            }
            if let Some(t) = &mut seen.trace {
                t.propagate(req.headers_mut());
            }
            let sent = Instant::now();
            let forwarded = target
                .pass(
                    rt,
                    req,
                    Passed {
                        path: &path.encoded,
                        client_ip: ip,
                        peer_trusted,
                        identity: principal.as_ref(),
                    },
                )
                .await;
            seen.upstream = Some(sent.elapsed());
            seen.allowed = principal;
            match forwarded {
                Ok(mut resp) => {
                    if let Some(q) = quota {
                        ratelimit_headers(resp.headers_mut(), q);
                    }
                    ctx.finish(resp)
                }
                Err(d) => ctx.refuse(&mut seen, route, d, false, &return_to),
            }
        };
        ctx.observe(&seen, &resp);
        ctx.tarpit(seen.deny.as_ref().map(|(d, _)| d)).await;
        Ok(resp)
    }
}

/// `RateLimit-Limit/-Remaining/-Reset` on answers of routes with a `quota` (row 24).
pub fn ratelimit_headers(h: &mut HeaderMap, q: gatehouse_core::throttle::QuotaState) {
    h.insert("ratelimit-limit", HeaderValue::from(q.limit));
    h.insert("ratelimit-remaining", HeaderValue::from(q.remaining));
    h.insert("ratelimit-reset", HeaderValue::from(q.reset));
}

/// `/_gatehouse/forward-auth` for nginx `auth_request`, Traefik ForwardAuth and Caddy
/// `forward_auth` (design §4). The original request comes from `X-Forwarded-Method` /
/// `X-Forwarded-Uri` (Traefik, Caddy) or `X-Original-Method` / `X-Original-URI` (nginx
/// convention), read only from trusted proxies.
#[expect(
    clippy::manual_async_fn,
    reason = "an `async fn` would keep a second copy of the request in the future"
)]
pub fn forward_auth_handler(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request<Body>,
) -> impl Future<Output = Response<Body>> + Send {
    // An async block, not an `async fn`: it holds the request once, not also as the local
    // an `async fn` moves its argument into (the future is allocated per request).
    async move {
        let started = Instant::now();
        // Identity headers from the client never count (stripped in place: no copy of the map).
        strip_identity(req.headers_mut());
        let headers = req.headers();
        let rt = gw.runtime();
        // A trusted proxy's request id is kept (one id across the proxy's and our logs).
        let forwarded_id = headers
            .get(X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|_| is_trusted(peer.ip(), &rt.config.server.trusted_proxies))
            .filter(|id| id.len() <= 128)
            .map(str::to_owned);
        // nginx drops the body of an `auth_request` answer; Traefik and Caddy pass it on.
        let nginx_style =
            headers.contains_key("x-original-uri") || !headers.contains_key("x-forwarded-uri");
        let with_body = match rt.config.server.forward_auth_body {
            ForwardAuthBody::Full => true,
            ForwardAuthBody::Empty => false,
            ForwardAuthBody::Auto => !nginx_style,
        };
        let mut ctx = Exchange::new(gw, rt, headers, forwarded_id);
        // The peer is the proxy, not the flooding client: keep its connection; and the
        // proxy, not we, answers the browser's CORS.
        ctx.http1 = false;
        ctx.origin = None;
        ctx.with_body = with_body;
        // Until the original request is known, the record names the subrequest itself.
        let mut seen = Seen::new(
            started,
            Cow::Borrowed(req.method().as_str()),
            Cow::Borrowed(req.uri().path()),
        );
        seen.ip = Some(peer.ip());
        seen.trace = Some(Trace::start(headers));
        let resp = forward_auth(&ctx, &mut seen, peer, headers).await;
        ctx.observe(&seen, &resp);
        ctx.tarpit(seen.deny.as_ref().map(|(d, _)| d)).await;
        resp
    }
}

async fn forward_auth<'h>(
    ctx: &Exchange,
    seen: &mut Seen<'h>,
    peer: SocketAddr,
    headers: &'h HeaderMap,
) -> Response<Body> {
    let (gw, rt, now) = (&ctx.gw, &ctx.rt, ctx.now);
    let trusted = &rt.config.server.trusted_proxies;
    let respond = |seen: &mut Seen<'h>, route, deny: Deny, hidden, return_to: &str| {
        ctx.refuse(seen, route, deny, hidden, return_to)
    };
    if !is_trusted(peer.ip(), trusted) {
        let deny = Deny::InvalidRequest {
            detail: "forward-auth requests are only accepted from trusted proxies".into(),
        };
        return respond(seen, None, deny, false, "/");
    }
    let (method, uri) = match original_request(headers) {
        Ok(found) => found,
        Err(detail) => {
            return respond(seen, None, Deny::InvalidRequest { detail }, false, "/");
        }
    };
    let (raw_path, query) = uri
        .split_once('?')
        .map_or((uri, None), |(p, q)| (p, Some(q)));
    seen.method = Cow::Owned(method);
    seen.path = Cow::Borrowed(raw_path);
    let path = match normalize(raw_path) {
        Ok(p) => p,
        Err(e) => {
            let deny = Deny::InvalidPath {
                detail: e.to_string(),
            };
            return respond(seen, None, deny, false, uri);
        }
    };
    let ip = client_ip(peer, headers, trusted);
    seen.ip = Some(ip);
    let view = RequestView {
        method: &seen.method,
        path: &path.decoded,
        target: uri,
        query,
        headers,
        client_ip: ip,
        now,
    };
    let outcome = gw.decide(rt, &view, None).await;
    seen.decided = Some(seen.started.elapsed());
    seen.path = path.decoded;
    seen.route = outcome.route;
    seen.scheme = outcome.scheme;
    seen.subject = outcome.subject;
    match outcome.decision {
        Decision::Deny { reason, hidden } => respond(seen, outcome.route, reason, hidden, uri),
        Decision::Allow(p) => {
            let mut resp = Response::new(Body::empty());
            identity_headers(resp.headers_mut(), &p);
            if let Some(q) = outcome.quota {
                ratelimit_headers(resp.headers_mut(), q);
            }
            seen.allowed = Some(p);
            ctx.finish(resp)
        }
        Decision::Public => {
            seen.pass = "public";
            ctx.finish(Response::new(Body::empty()))
        }
        Decision::Preflight => {
            seen.pass = "preflight";
            ctx.finish(Response::new(Body::empty()))
        }
    }
}

/// The original request's method and URI, from exactly one header convention.
///
/// Traefik and Caddy overwrite `X-Forwarded-Method` / `X-Forwarded-Uri` with their own
/// values. nginx passes the client's headers to the `auth_request` subrequest and only
/// replaces the `X-Original-*` headers its config sets, so a client could add
/// `X-Forwarded-Uri: /public/x` beside them: a request naming the original request in both
/// conventions is refused, never guessed. The method is required because the subrequest
/// itself is always a `GET`; defaulting would check a `POST` against `GET` routes.
fn original_request(headers: &HeaderMap) -> Result<(String, &str), String> {
    let (uri_name, method_name) = match (
        headers.contains_key("x-forwarded-uri"),
        headers.contains_key("x-original-uri"),
    ) {
        (true, true) => {
            return Err("forward-auth request names the original request twice \
                 (`X-Forwarded-Uri` and `X-Original-URI`)"
                .into());
        }
        (true, false) => ("X-Forwarded-Uri", "X-Forwarded-Method"),
        (false, true) => ("X-Original-URI", "X-Original-Method"),
        (false, false) => {
            return Err(
                "forward-auth request without `X-Forwarded-Uri` or `X-Original-URI`".into(),
            );
        }
    };
    let uri = headers
        .get(uri_name)
        .and_then(|v| v.to_str().ok())
        .filter(|u| u.starts_with('/'))
        .ok_or_else(|| format!("`{uri_name}` is not an origin-form request target"))?;
    let method = headers
        .get(method_name)
        .and_then(|v| v.to_str().ok())
        .filter(|m| !m.is_empty() && http::Method::from_bytes(m.as_bytes()).is_ok())
        .ok_or_else(|| format!("forward-auth request without a valid `{method_name}`"))?;
    Ok((method.to_ascii_uppercase(), uri))
}

/// `/healthz`: the process answers.
pub async fn healthz() -> Response<Body> {
    json_response(StatusCode::OK, r#"{"status":"ok"}"#.to_owned())
}

/// `/readyz`: the store answers too (503 otherwise, so load balancers drain this node).
pub async fn readyz(State(gw): State<Arc<Gateway>>) -> Response<Body> {
    match gw.store.ping().await {
        Ok(()) => json_response(StatusCode::OK, r#"{"status":"ready"}"#.to_owned()),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"status":"unavailable","reason":"store"}"#.to_owned(),
            )
        }
    }
}

/// `/.well-known/jwks.json`: our public signing keys.
pub async fn jwks(State(gw): State<Arc<Gateway>>) -> Response<Body> {
    let mut r = json_response(StatusCode::OK, gw.own_keys().jwks_json());
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}
