//! Reverse proxy to the upstream (rows 1 and allow, 21).
//!
//! Bodies stream both ways. Hop-by-hop headers (RFC 9110 §7.6.1) and every header named in
//! `Connection` are removed in both directions; `Upgrade` is never forwarded (h2c smuggling).
//! Credentials the gateway consumed (`Authorization`, `X-API-Key`) are not forwarded, and
//! the verified identity travels in the `X-Gatehouse-*` headers instead.

mod pool;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use gatehouse_core::config::UpstreamConfig;
use gatehouse_core::deny::Deny;
use gatehouse_core::principal::Principal;
use http::header::{HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{HeaderMap, Request, Response, Uri};
use hyper::client::conn::http1::SendRequest;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub use pool::{IDLE_TIMEOUT, Pool, Release};

use crate::verified::Verified;

pub type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>;
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Identity headers set by the gateway; any arriving from a client are stripped.
pub const IDENTITY_HEADERS: [&str; 5] = [
    "x-gatehouse-user",
    "x-gatehouse-roles",
    "x-gatehouse-tenant",
    "x-gatehouse-scopes",
    "x-gatehouse-auth",
];

const X_GATEHOUSE_USER: HeaderName = HeaderName::from_static("x-gatehouse-user");
const X_GATEHOUSE_ROLES: HeaderName = HeaderName::from_static("x-gatehouse-roles");
const X_GATEHOUSE_TENANT: HeaderName = HeaderName::from_static("x-gatehouse-tenant");
const X_GATEHOUSE_SCOPES: HeaderName = HeaderName::from_static("x-gatehouse-scopes");
const X_GATEHOUSE_AUTH: HeaderName = HeaderName::from_static("x-gatehouse-auth");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn is_hop_by_hop(name: &HeaderName) -> bool {
    // A `match` compiles to a switch on the length, then one comparison.
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

fn is_identity(name: &HeaderName) -> bool {
    let n = name.as_str();
    n.starts_with("x-gatehouse-") && IDENTITY_HEADERS.contains(&n)
}

/// Removes the identity headers a client sent. One pass over the names first: most requests
/// carry none, and then nothing is hashed or removed.
pub fn strip_identity(headers: &mut HeaderMap) {
    if headers.keys().any(is_identity) {
        for h in IDENTITY_HEADERS {
            headers.remove(h);
        }
    }
}

/// A configured upstream and its keep-alive connections.
pub struct Upstream {
    authority: http::uri::Authority,
    /// `Host` for the upstream (its authority), built once.
    host: Option<HeaderValue>,
    /// Where the connector connects (scheme and authority only).
    origin: Uri,
    base_path: String,
    connector: Connector,
    pool: Arc<Pool>,
    timeout: Duration,
    /// `[upstream] http2 = true`: the one multiplexed HTTP/2 connection, opened on first use
    /// and again when it closes. `None`: HTTP/1.1 over [`Self::pool`].
    h2: Option<tokio::sync::Mutex<Option<H2Sender>>>,
}

type H2Sender = hyper::client::conn::http2::SendRequest<Body>;

/// The rustls connector (aws-lc-rs provider, native roots) for HTTP and HTTPS; `http2`
/// offers only ALPN `h2` over TLS (RFC 9113 §3.2), otherwise only `http/1.1`.
fn connector(connect_timeout: Duration, http2: bool) -> Connector {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    match builder.with_native_roots() {
        Ok(b) if http2 => b.https_or_http().enable_http2().wrap_connector(http),
        Ok(b) => b.https_or_http().enable_http1().wrap_connector(http),
        Err(e) => {
            tracing::warn!(error = %e, "no system CA certificates: https upstreams will fail");
            let roots = rustls::RootCertStore::empty();
            let tls = rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            let b = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http();
            if http2 {
                b.enable_http2().wrap_connector(http)
            } else {
                b.enable_http1().wrap_connector(http)
            }
        }
    }
}

/// Builds the shared HTTP(S) client (JWKS fetches, alert webhooks).
pub fn https_client(connect_timeout: Duration) -> HttpsClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_max_idle_per_host(256)
        .build(connector(connect_timeout, false))
}

/// Why an exchange with the upstream failed, before the status is chosen.
enum Failure {
    Connect(Box<dyn std::error::Error + Send + Sync>),
    Handshake(hyper::Error),
    Exchange(hyper::Error),
}

impl Upstream {
    pub fn new(cfg: &UpstreamConfig) -> Result<Self, String> {
        let uri: Uri = cfg
            .url
            .parse()
            .map_err(|e| format!("upstream url `{}`: {e}", cfg.url))?;
        let scheme = uri
            .scheme()
            .cloned()
            .ok_or_else(|| format!("upstream url `{}` has no scheme", cfg.url))?;
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("upstream url `{}` has no host", cfg.url))?;
        let origin = Uri::builder()
            .scheme(scheme)
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| format!("upstream url `{}`: {e}", cfg.url))?;
        let base_path = uri.path().trim_end_matches('/').to_owned();
        Ok(Self {
            host: HeaderValue::from_str(authority.as_str()).ok(),
            authority,
            origin,
            base_path,
            connector: connector(cfg.connect_timeout, cfg.http2),
            pool: Arc::default(),
            timeout: cfg.timeout,
            h2: cfg.http2.then(tokio::sync::Mutex::default),
        })
    }

    /// Forwards a request. `path` is the normalized, re-encoded path (design §3: the
    /// upstream receives exactly what was matched).
    pub async fn forward(
        &self,
        req: Request<Body>,
        path: &str,
        client_ip: IpAddr,
        peer_trusted: bool,
        identity: Option<&Verified>,
    ) -> Result<Response<Body>, Deny> {
        let (mut parts, body) = req.into_parts();
        // HTTP/1.1 origin-form (RFC 9112 §3.2.1): the connection knows where it goes.
        let unchanged = self.base_path.is_empty() && parts.uri.path() == path;
        let pq = match parts.uri.path_and_query() {
            Some(pq) if unchanged => pq.clone(),
            _ => {
                let query = parts.uri.query();
                let mut pq = String::with_capacity(
                    self.base_path.len() + path.len() + query.map_or(0, |q| q.len() + 1),
                );
                pq.push_str(&self.base_path);
                pq.push_str(path);
                if let Some(q) = query {
                    pq.push('?');
                    pq.push_str(q);
                }
                PathAndQuery::try_from(pq).map_err(|_| Deny::UpstreamUnavailable)?
            }
        };
        let headers = &mut parts.headers;
        let original_host = headers.remove(http::header::HOST);
        let proto = if parts.extensions.get::<crate::tls::OverTls>().is_some() {
            // Over our own TLS, whatever a client claims.
            headers.remove(&X_FORWARDED_PROTO);
            Some(HeaderValue::from_static("https"))
        } else if peer_trusted {
            headers.remove(&X_FORWARDED_PROTO)
        } else {
            None
        };
        // gRPC sends `TE: trailers`, the one TE value HTTP/2 allows (RFC 9113 §8.2.2).
        let te_trailers = self.h2.is_some()
            && headers
                .get(http::header::TE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| {
                    v.split(',')
                        .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
                });
        strip_hop_by_hop(headers);
        if te_trailers {
            headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
        }
        strip_identity(headers);
        if identity.is_some() {
            headers.remove(http::header::AUTHORIZATION);
            headers.remove(&X_API_KEY);
        }
        // X-Forwarded-For: keep a trusted proxy's chain, otherwise start it here.
        let mut xff = String::with_capacity(48);
        if peer_trusted
            && let Some(prev) = headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok())
        {
            xff.push_str(prev);
            xff.push_str(", ");
        }
        crate::net::push_ip(&mut xff, client_ip);
        set_owned(headers, X_FORWARDED_FOR, xff);
        headers.insert(
            X_FORWARDED_PROTO,
            proto.unwrap_or(HeaderValue::from_static("http")),
        );
        if let Some(h) = original_host {
            headers.insert(X_FORWARDED_HOST, h);
        }
        if let Some(h) = &self.host {
            headers.insert(http::header::HOST, h.clone());
        }
        if let Some(p) = identity {
            identity_headers(headers, p);
        }
        if let Some(h2) = &self.h2 {
            // HTTP/2 names the target in `:scheme` and `:authority` (RFC 9113 §8.3.1), which
            // replace `Host`.
            headers.remove(http::header::HOST);
            let mut uri = self.origin.clone().into_parts();
            uri.path_and_query = Some(pq);
            parts.uri = Uri::from_parts(uri).map_err(|_| Deny::UpstreamUnavailable)?;
            parts.version = http::Version::HTTP_2;
            let out = Request::from_parts(parts, body);
            let resp = match tokio::time::timeout(self.timeout, self.exchange_h2(h2, out)).await {
                Err(_) => return Err(Deny::UpstreamTimeout),
                Ok(Err(f)) => return Err(self.failed(&f)),
                Ok(Ok(r)) => r,
            };
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            // The body's frames, trailers (gRPC's `grpc-status`) included, pass through.
            return Ok(Response::from_parts(parts, Body::new(body)));
        }
        parts.uri = Uri::from(pq);
        parts.version = http::Version::HTTP_11;
        let out = Request::from_parts(parts, body);
        let (resp, sender) = match tokio::time::timeout(self.timeout, self.exchange(out)).await {
            Err(_) => return Err(Deny::UpstreamTimeout),
            Ok(Err(f)) => return Err(self.failed(&f)),
            Ok(Ok(r)) => r,
        };
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let body = Release::new(body, sender, Arc::clone(&self.pool));
        Ok(Response::from_parts(parts, Body::new(body)))
    }

    /// Sends the request on an idle connection, or on a new one when none is idle or the idle
    /// one closed before it could take the request (it was not sent: retrying is safe).
    async fn exchange(
        &self,
        mut req: Request<Body>,
    ) -> Result<(Response<hyper::body::Incoming>, SendRequest<Body>), Failure> {
        if let Some(mut sender) = self.pool.take() {
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok((resp, sender)),
                Err(mut e) => match e.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(Failure::Exchange(e.into_error())),
                },
            }
        }
        // Boxed: the connect and TLS handshake futures are large and rarely needed, and
        // inline they would make every request's future (moved and allocated per request)
        // that much larger.
        let mut sender = Box::pin(self.connect()).await?;
        match sender.send_request(req).await {
            Ok(resp) => Ok((resp, sender)),
            Err(e) => Err(Failure::Exchange(e)),
        }
    }

    /// Sends the request on the HTTP/2 connection, opening it first when there is none or
    /// it has closed. Requests share the connection as streams (RFC 9113 §5).
    async fn exchange_h2(
        &self,
        h2: &tokio::sync::Mutex<Option<H2Sender>>,
        req: Request<Body>,
    ) -> Result<Response<hyper::body::Incoming>, Failure> {
        let mut sender = {
            let mut slot = h2.lock().await;
            match slot.as_ref() {
                Some(s) if !s.is_closed() => s.clone(),
                _ => {
                    let s = Box::pin(self.connect_h2()).await?;
                    *slot = Some(s.clone());
                    s
                }
            }
        };
        sender.ready().await.map_err(Failure::Exchange)?;
        sender.send_request(req).await.map_err(Failure::Exchange)
    }

    /// The connector's stream to the upstream (TCP, or TLS with the ALPN of [`connector`]).
    async fn dial(&self) -> Result<<Connector as tower::Service<Uri>>::Response, Failure> {
        use tower::ServiceExt as _;
        self.connector
            .clone()
            .oneshot(self.origin.clone())
            .await
            .map_err(Failure::Connect)
    }

    /// Opens the HTTP/2 connection and starts its task.
    async fn connect_h2(&self) -> Result<H2Sender, Failure> {
        let io = self.dial().await?;
        let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(Failure::Handshake)?;
        self.drive(conn);
        Ok(sender)
    }

    /// Opens a connection and starts its task (which ends when the connection closes).
    async fn connect(&self) -> Result<SendRequest<Body>, Failure> {
        let io = self.dial().await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(Failure::Handshake)?;
        self.drive(conn);
        Ok(sender)
    }

    /// Runs a connection's task until the connection closes.
    fn drive(&self, conn: impl Future<Output = Result<(), hyper::Error>> + Send + 'static) {
        let upstream = self.authority.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %upstream, "upstream connection ended");
            }
        });
    }

    /// Logs a failed exchange and picks its refusal: 504 for timeouts, 502 otherwise.
    fn failed(&self, f: &Failure) -> Deny {
        let (e, timeout): (&dyn std::error::Error, bool) = match f {
            Failure::Connect(e) => (e.as_ref(), is_timeout(e.as_ref())),
            Failure::Handshake(e) | Failure::Exchange(e) => (e, e.is_timeout() || is_timeout(e)),
        };
        tracing::warn!(error = %e, upstream = %self.authority, "upstream request failed");
        if timeout {
            Deny::UpstreamTimeout
        } else {
            Deny::UpstreamUnavailable
        }
    }
}

/// Whether an error or one of its sources is an I/O timeout (a connect timeout).
fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::TimedOut;
        }
        src = s.source();
    }
    false
}

/// Inserts a value built for the header: its bytes move in, no copy.
fn set_owned(headers: &mut HeaderMap, name: HeaderName, value: String) {
    if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(value)) {
        headers.insert(name, v);
    }
}

/// Removes hop-by-hop headers and every header the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names finds the hop-by-hop ones (at most the nine of the list); only
    // those are hashed and removed. Every header `Connection` names goes with it, so a
    // message without a hop-by-hop name costs just that pass. Most answers carry
    // `Connection: keep-alive`, which names nothing else: no allocation then either.
    let mut found: [Option<HeaderName>; HOP_BY_HOP.len()] = Default::default();
    let mut n = 0;
    for name in headers.keys() {
        if is_hop_by_hop(name)
            && let Some(slot) = found.get_mut(n)
        {
            *slot = Some(name.clone());
            n += 1;
        }
    }
    if n == 0 {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .filter(|n| !is_hop_by_hop(n))
        .collect();
    for name in found.iter().flatten().chain(&named) {
        headers.remove(name);
    }
}

/// The `X-Gatehouse-*` identity header values of a principal, rendered once (see
/// [`Verified`]): the subject, its roles joined by `,`, its tenant, its scopes joined by a
/// space and the scheme that proved it. A value a header cannot carry (a control character
/// in a name) is left out, as before; UTF-8 names are legal header bytes (obs-text).
#[derive(Clone)]
pub struct IdentityHeaders {
    user: Option<HeaderValue>,
    roles: Option<HeaderValue>,
    tenant: Option<HeaderValue>,
    scopes: Option<HeaderValue>,
    auth: HeaderValue,
}

impl IdentityHeaders {
    pub fn render(p: &Principal) -> Self {
        // from_bytes, not from_str: from_str would drop UTF-8 names.
        let value = |v: &str| HeaderValue::from_bytes(v.as_bytes()).ok();
        let owned = |v: String| HeaderValue::from_maybe_shared(bytes::Bytes::from(v)).ok();
        Self {
            user: value(&p.subject),
            roles: owned(p.roles.join(",")),
            tenant: p.tenant.as_deref().and_then(value),
            scopes: owned(p.scopes.join(" ")),
            auth: HeaderValue::from_static(p.scheme.as_str()),
        }
    }

    /// The same values for another subject with the same grants (the bearer cache keeps one
    /// rendering per grant set): the shared values are reference-counted clones.
    pub fn for_subject(&self, subject: &str) -> Self {
        Self {
            user: HeaderValue::from_bytes(subject.as_bytes()).ok(),
            ..self.clone()
        }
    }
}

/// Writes the `X-Gatehouse-*` identity headers (same in proxy and forward-auth modes): the
/// values rendered once per verified principal, each a reference-counted clone.
pub fn identity_headers(headers: &mut HeaderMap, v: &Verified) {
    let h = v.identity_headers();
    for (name, value) in [
        (X_GATEHOUSE_USER, &h.user),
        (X_GATEHOUSE_ROLES, &h.roles),
        (X_GATEHOUSE_TENANT, &h.tenant),
        (X_GATEHOUSE_SCOPES, &h.scopes),
    ] {
        if let Some(value) = value {
            headers.insert(name, value.clone());
        }
    }
    headers.insert(X_GATEHOUSE_AUTH, h.auth.clone());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hop_by_hop_match_is_the_list() {
        for h in HOP_BY_HOP {
            assert!(is_hop_by_hop(&HeaderName::from_static(h)), "{h}");
        }
        for h in [
            "host",
            "x-gatehouse-user",
            "content-length",
            "tes",
            "connections",
        ] {
            assert!(!is_hop_by_hop(&HeaderName::from_static(h)), "{h}");
        }
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = HeaderMap::new();
        h.insert("connection", "keep-alive, x-secret".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("x-secret", "1".parse().unwrap());
        h.insert("upgrade", "h2c".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
        let mut plain = HeaderMap::new();
        plain.insert("x-kept", "1".parse().unwrap());
        strip_hop_by_hop(&mut plain);
        assert_eq!(plain.len(), 1);
    }

    #[test]
    fn identity_headers_from_clients_go() {
        let mut h = HeaderMap::new();
        h.insert("x-gatehouse-user", "mallory".parse().unwrap());
        h.insert("x-gatehouse-roles", "admin".parse().unwrap());
        h.insert("x-gatehouse-other", "kept".parse().unwrap());
        strip_identity(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-gatehouse-other"));
    }
}
