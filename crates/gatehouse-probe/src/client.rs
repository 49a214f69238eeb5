//! The bounded HTTP client: one target, a timeout per request, a concurrency limit, a rate
//! limit and a request budget. Redirects are never followed (hyper's client does not
//! follow them; the probe reports them instead).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

use crate::spec::Target;

/// Bodies are read up to this many bytes (enough for a problem document).
const MAX_BODY: usize = 64 * 1024;

/// Limits on what the probe sends.
#[derive(Debug, Clone)]
pub struct Limits {
    pub concurrency: usize,
    /// Requests per second (at least 1).
    pub rate: u32,
    /// The most requests one run may send.
    pub max_requests: usize,
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            concurrency: 4,
            rate: 20,
            max_requests: 2000,
            timeout: Duration::from_secs(10),
        }
    }
}

/// A request the probe sends: always to the target, with a path from the spec.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub method: Method,
    pub path: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// A request body (sign-in steps only); its `Content-Type` is among `headers`.
    pub body: Bytes,
}

/// What came back.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// The problem document's `error` member (RFC 9457 extension used by Gatehouse and
    /// many others) when the body is JSON.
    pub fn error_code(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        v.get("error").and_then(|e| e.as_str()).map(str::to_owned)
    }

    /// The human-readable message of a JSON error body, whichever member carries it:
    /// RFC 9457 `detail` or `title`, OAuth's `error_description` (RFC 6749 §5.2), and the
    /// `message` / `msg` / `error.message` that frameworks use; else a string `error`.
    pub fn message(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        let s = |x: Option<&serde_json::Value>| x.and_then(|m| m.as_str()).map(str::to_owned);
        s(v.get("detail"))
            .or_else(|| s(v.get("error_description")))
            .or_else(|| s(v.get("message")))
            .or_else(|| s(v.get("msg")))
            .or_else(|| s(v.get("error").and_then(|e| e.get("message"))))
            .or_else(|| s(v.get("title")))
            .or_else(|| s(v.get("error")))
            // FastAPI / Starlette: `{"detail": [{"msg": …}]}`.
            .or_else(|| s(v.pointer("/detail/0/msg")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("the request budget of {0} is spent")]
    Budget(usize),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Transport(String),
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Sends requests to one target within the limits. Cheap to share (`Arc`).
pub struct Sender {
    target: Target,
    client: HttpsClient,
    limits: Limits,
    permits: Semaphore,
    next_slot: Mutex<Instant>,
    sent: AtomicUsize,
}

impl Sender {
    pub fn new(target: Target, limits: Limits) -> Arc<Self> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(limits.timeout));
        http.enforce_http(false);
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let connector = match builder.with_native_roots() {
            Ok(b) => b.https_or_http().enable_http1().wrap_connector(http),
            // No system roots: https targets will fail with a clear TLS error per request.
            Err(_) => hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                )
                .https_or_http()
                .enable_http1()
                .wrap_connector(http),
        };
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Arc::new(Self {
            target,
            client,
            permits: Semaphore::new(limits.concurrency.max(1)),
            next_slot: Mutex::new(Instant::now()),
            sent: AtomicUsize::new(0),
            limits,
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::Relaxed)
    }

    /// Waits for the next rate slot (a fixed interval of `1/rate` between request starts).
    async fn pace(&self) {
        let interval = Duration::from_secs_f64(1.0 / f64::from(self.limits.rate.max(1)));
        let at = {
            let mut next = self.next_slot.lock().await;
            let now = Instant::now();
            let at = (*next).max(now);
            *next = at + interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }

    pub async fn send(&self, out: &Outgoing) -> Result<Answer, SendError> {
        // Reserve from the budget first, so concurrent tasks never overspend it.
        let n = self.sent.fetch_add(1, Ordering::Relaxed);
        if n >= self.limits.max_requests {
            self.sent.fetch_sub(1, Ordering::Relaxed);
            return Err(SendError::Budget(self.limits.max_requests));
        }
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| SendError::Transport(e.to_string()))?;
        self.pace().await;
        let mut b = Request::builder()
            .method(out.method.clone())
            .uri(self.target.url(&out.path));
        for (n, v) in &out.headers {
            b = b.header(n, v);
        }
        let req = b
            .body(Full::new(out.body.clone()))
            .map_err(|e| SendError::Transport(e.to_string()))?;
        let timeout = self.limits.timeout;
        let fut = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| SendError::Transport(transport_message(&e)))?;
            let (parts, body) = resp.into_parts();
            // A body over the limit is cut, not an error: only its start matters here.
            let body = match Limited::new(body, MAX_BODY).collect().await {
                Ok(c) => c.to_bytes(),
                Err(_) => Bytes::new(),
            };
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(SendError::Timeout(timeout)),
        }
    }
}

fn transport_message(e: &hyper_util::client::legacy::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}
