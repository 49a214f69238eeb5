//! Reverse proxy to the upstream (rows 1 and allow, 21).
//!
//! Bodies stream both ways. Hop-by-hop headers (RFC 9110 §7.6.1) and every header named in
//! `Connection` are removed in both directions; `Upgrade` is never forwarded (h2c smuggling).
//! Credentials the gateway consumed (`Authorization`, `X-API-Key`) are not forwarded, and
//! the verified identity travels in the `X-Gatehouse-*` headers instead.

use std::net::IpAddr;
use std::time::Duration;

use axum::body::Body;
use gatehouse_core::config::UpstreamConfig;
use gatehouse_core::deny::Deny;
use gatehouse_core::principal::Principal;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>;

/// Identity headers set by the gateway; any arriving from a client are stripped.
pub const IDENTITY_HEADERS: [&str; 5] = [
    "x-gatehouse-user",
    "x-gatehouse-roles",
    "x-gatehouse-tenant",
    "x-gatehouse-scopes",
    "x-gatehouse-auth",
];

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

/// A configured upstream and its pooled client.
pub struct Upstream {
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    base_path: String,
    client: HttpsClient,
    timeout: Duration,
}

/// Builds the shared HTTP(S) client (rustls with the aws-lc-rs provider, native roots).
pub fn https_client(connect_timeout: Duration) -> HttpsClient {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let connector = match builder.with_native_roots() {
        Ok(b) => b.https_or_http().enable_http1().wrap_connector(http),
        Err(e) => {
            tracing::warn!(error = %e, "no system CA certificates: https upstreams will fail");
            let roots = rustls::RootCertStore::empty();
            let tls = rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http()
                .enable_http1()
                .wrap_connector(http)
        }
    };
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .build(connector)
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
        let base_path = uri.path().trim_end_matches('/').to_owned();
        Ok(Self {
            scheme,
            authority,
            base_path,
            client: https_client(cfg.connect_timeout),
            timeout: cfg.timeout,
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
        identity: Option<&Principal>,
    ) -> Result<Response<Body>, Deny> {
        let (mut parts, body) = req.into_parts();
        let mut pq = String::with_capacity(self.base_path.len() + path.len() + 32);
        pq.push_str(&self.base_path);
        pq.push_str(path);
        if let Some(q) = parts.uri.query() {
            pq.push('?');
            pq.push_str(q);
        }
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
            .map_err(|_| Deny::UpstreamUnavailable)?;
        let original_host = parts.headers.get(http::header::HOST).cloned();
        let proto = if peer_trusted {
            parts.headers.get("x-forwarded-proto").cloned()
        } else {
            None
        };
        let headers = &mut parts.headers;
        strip_hop_by_hop(headers);
        for h in IDENTITY_HEADERS {
            headers.remove(h);
        }
        if identity.is_some() {
            headers.remove(http::header::AUTHORIZATION);
            headers.remove("x-api-key");
        }
        // X-Forwarded-For: keep a trusted proxy's chain, otherwise start it here.
        let ip = client_ip.to_string();
        let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prev) if peer_trusted => format!("{prev}, {ip}"),
            _ => ip,
        };
        set(headers, "x-forwarded-for", &xff);
        match proto {
            Some(p) => {
                headers.insert("x-forwarded-proto", p);
            }
            None => set(headers, "x-forwarded-proto", "http"),
        }
        if let Some(h) = original_host {
            headers.insert("x-forwarded-host", h);
        }
        if let Ok(v) = HeaderValue::from_str(self.authority.as_str()) {
            headers.insert(http::header::HOST, v);
        }
        if let Some(p) = identity {
            identity_headers(headers, p);
        }
        parts.uri = uri;
        parts.version = http::Version::HTTP_11;
        let out = Request::from_parts(parts, body);
        let resp = match tokio::time::timeout(self.timeout, self.client.request(out)).await {
            Err(_) => return Err(Deny::UpstreamTimeout),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, upstream = %self.authority, "upstream request failed");
                return Err(if is_timeout(&e) {
                    Deny::UpstreamTimeout
                } else {
                    Deny::UpstreamUnavailable
                });
            }
            Ok(Ok(r)) => r,
        };
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, Body::new(body)))
    }
}

fn is_timeout(e: &hyper_util::client::legacy::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::TimedOut;
        }
        src = s.source();
    }
    false
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    // from_bytes: UTF-8 user names are legal header bytes (obs-text), from_str would drop them.
    if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
        headers.insert(name, v);
    }
}

/// Removes hop-by-hop headers and every header the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for h in HOP_BY_HOP {
        headers.remove(h);
    }
}

/// Writes the `X-Gatehouse-*` identity headers (same in proxy and forward-auth modes).
pub fn identity_headers(headers: &mut HeaderMap, p: &Principal) {
    set(headers, "x-gatehouse-user", &p.subject);
    set(headers, "x-gatehouse-roles", &p.roles.join(","));
    if let Some(t) = &p.tenant {
        set(headers, "x-gatehouse-tenant", t);
    }
    set(headers, "x-gatehouse-scopes", &p.scopes.join(" "));
    set(headers, "x-gatehouse-auth", p.scheme.as_str());
}
