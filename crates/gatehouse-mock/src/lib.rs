//! `gatehouse mock`: a stand-in server for client developers (design §7).
//!
//! A request is answered by, in this order:
//! 1. the first matching stub of the stub file (lowest `priority` number first, then file
//!    order) — a stub is an explicit answer for a request, so it wins;
//! 2. the first `--preset` (command-line order) whose `@PATH` matches (a preset without
//!    `@PATH` matches every path) — rendered through core's one table ([`render`]), so it is
//!    byte-for-byte the refusal `gatehouse serve` gives in that situation (but for the
//!    per-response `timestamp`, `request_id` and Digest nonce);
//! 3. otherwise a 404 with `error: "no_stub_matched"`.
//!
//! Every request (but the journal's own) is recorded in the journal, readable at
//! `GET /__gatehouse/requests` and cleared with `DELETE /__gatehouse/requests`. The stub file
//! is polled every [`POLL_INTERVAL`]; a changed file is reloaded, and a reload that fails
//! keeps the stubs that were running and logs the error.

pub mod journal;
pub mod presets;
mod scan;
pub mod stubs;
mod wire;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_core::config::{Disclosure, Scheme, ServerConfig};
use gatehouse_core::credential::Extracted;
use gatehouse_core::deny::Deny;
use gatehouse_core::digest::{DigestChallenge, make_nonce, make_opaque};
use gatehouse_core::render::{RenderCtx, render, rfc3339};
use http::{HeaderValue, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::wire::{RequestIds, json_response, now, random_bytes, rendered_response};
pub use journal::{AnsweredBy, Entry, Journal};
pub use presets::{PresetError, PresetSpec};
pub use stubs::{Stub, StubError};

/// How often the stub file is checked for changes.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// The journal's endpoint.
pub const JOURNAL_PATH: &str = "/__gatehouse/requests";
/// Request bodies beyond this are refused with 413 (and journaled without their body).
pub const MAX_BODY: usize = 1024 * 1024;

/// What `gatehouse mock` was started with.
#[derive(Debug, Clone)]
pub struct MockOptions {
    pub stubs: Option<PathBuf>,
    pub presets: Vec<PresetSpec>,
    /// `realm` of the challenges (default `api`, as `gatehouse serve`).
    pub realm: String,
    /// Accepted schemes, in challenge order (default `bearer`).
    pub schemes: Vec<Scheme>,
    pub journal_limit: usize,
}

impl MockOptions {
    /// Serves `presets` (each `NAME[=ARG][@PATH]`, as `--preset` takes them) with the
    /// challenges of `schemes`, everything else at its default.
    pub fn with_presets(presets: &[&str], schemes: &[Scheme]) -> Result<Self, PresetError> {
        Ok(Self {
            presets: presets
                .iter()
                .map(|p| PresetSpec::parse(p))
                .collect::<Result<_, _>>()?,
            schemes: schemes.to_vec(),
            ..Self::default()
        })
    }
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            stubs: None,
            presets: Vec::new(),
            realm: "api".to_owned(),
            schemes: vec![Scheme::Bearer],
            journal_limit: journal::DEFAULT_LIMIT,
        }
    }
}

/// Why stubs could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("`{path}`: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Stubs {
        path: String,
        errors: Vec<StubError>,
    },
}

/// Reads and compiles a stub file.
pub fn load_stubs(path: &Path) -> Result<Vec<Stub>, MockError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| MockError::Read {
        path: name.clone(),
        source,
    })?;
    stubs::parse(&text).map_err(|errors| MockError::Stubs { path: name, errors })
}

/// The file's modification time and length: a change in either triggers a reload.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// A running mock's state.
pub struct Mock {
    opts: MockOptions,
    stubs: RwLock<Arc<Vec<Stub>>>,
    stamp: Mutex<Option<(SystemTime, u64)>>,
    journal: Journal,
    ids: RequestIds,
    /// Signs this process's Digest nonces (they are never verified: a mock takes no
    /// credentials, but the challenge has the same shape as the gateway's).
    digest_key: [u8; 32],
}

impl std::fmt::Debug for Mock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mock")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Mock {
    /// Loads the stub file (if any); an error names every bad line.
    pub fn new(opts: MockOptions) -> Result<Arc<Self>, MockError> {
        let (stubs, stamp) = match &opts.stubs {
            Some(p) => {
                let st = stamp(p);
                (load_stubs(p)?, st)
            }
            None => (Vec::new(), None),
        };
        Ok(Arc::new(Self {
            journal: Journal::new(opts.journal_limit),
            opts,
            stubs: RwLock::new(Arc::new(stubs)),
            stamp: Mutex::new(stamp),
            ids: RequestIds::new(),
            digest_key: random_bytes::<32>(),
        }))
    }

    /// The stubs now in force, in matching order.
    pub fn stubs(&self) -> Arc<Vec<Stub>> {
        Arc::clone(
            &self
                .stubs
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Reloads the stub file if it changed since the last look. `Ok(true)`: new stubs are in
    /// force; `Err`: the file changed but is bad, and the old stubs stay.
    pub fn reload_if_changed(&self) -> Result<bool, MockError> {
        let Some(path) = &self.opts.stubs else {
            return Ok(false);
        };
        let now_stamp = stamp(path);
        {
            let mut last = self
                .stamp
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *last == now_stamp {
                return Ok(false);
            }
            // Recorded even when the load fails: a bad file is reported once, not every poll.
            *last = now_stamp;
        }
        let stubs = load_stubs(path)?;
        *self
            .stubs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(stubs);
        Ok(true)
    }

    /// Polls the stub file every [`POLL_INTERVAL`] until `stop` turns true.
    pub async fn watch(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        if self.opts.stubs.is_none() {
            return;
        }
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            match self.reload_if_changed() {
                Ok(true) => tracing::info!(stubs = self.stubs().len(), "stub file reloaded"),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "stub file not reloaded; the previous stubs stay in force")
                }
            }
        }
    }

    /// The mock's HTTP routes: the journal, and every other path answered by stubs/presets.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(
                JOURNAL_PATH,
                axum::routing::get(journal_get).delete(journal_delete),
            )
            .fallback(answer)
            .with_state(Arc::clone(self))
    }

    /// Renders preset `p` for a request, as the gateway renders the same refusal.
    fn preset_response(&self, p: &PresetSpec, req: &http::request::Parts) -> Response<Body> {
        let now = now();
        let header = |name| {
            req.headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        // The scheme the client presented, named by core's own extraction (as the gateway
        // names it in row 6's detail).
        let lines = |name| {
            req.headers
                .get_all(name)
                .iter()
                .map(HeaderValue::as_bytes)
                .collect::<Vec<_>>()
        };
        let presented = match gatehouse_core::credential::extract(
            &lines(http::header::AUTHORIZATION.as_str()),
            &lines("x-api-key"),
            req.uri.query(),
        ) {
            Extracted::Unsupported { scheme } => Some(scheme),
            Extracted::One(c) => Some(c.scheme().as_str().to_owned()),
            Extracted::None | Extracted::Malformed { .. } => None,
        };
        let mfa_token = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let (deny, hidden) = p.deny(now, presented.as_deref(), &mfa_token);
        let mut accepted = self.opts.schemes.clone();
        // Row 12 only happens on a route that takes Digest: its challenge is the answer.
        if deny == Deny::StaleNonce && !accepted.contains(&Scheme::Digest) {
            accepted.push(Scheme::Digest);
        }
        let realm = self.opts.realm.as_str();
        let digest = accepted.contains(&Scheme::Digest).then(|| DigestChallenge {
            nonce: make_nonce(&self.digest_key, now, &random_bytes::<16>()),
            opaque: make_opaque(&self.digest_key, realm),
            algorithms: ServerConfig::default().digest_algorithms,
            userhash: true,
        });
        let request_id = self.ids.next();
        let return_to = req.uri.path_and_query().map_or("/", |p| p.as_str());
        let ctx = RenderCtx {
            realm,
            accepted: &accepted,
            disclosure: Disclosure::Helpful,
            scope_challenge: true,
            html: header(http::header::ACCEPT).is_some_and(gatehouse_core::accept::prefers_html),
            request_id: &request_id,
            now,
            return_to,
            form_post: false,
            digest: digest.as_ref(),
            grpc: false,
            sign_in: gatehouse_core::render::SignInOptions::PASSWORD,
            problem_base: None,
            pages: None,
        };
        let mut resp = rendered_response(render(&deny, hidden, &ctx));
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            resp.headers_mut().insert("x-request-id", v);
        }
        resp
    }
}

async fn journal_get(State(mock): State<Arc<Mock>>) -> Response<Body> {
    let body = serde_json::to_string(&mock.journal.entries()).unwrap_or_else(|_| "[]".into());
    json_response(StatusCode::OK, body)
}

async fn journal_delete(State(mock): State<Arc<Mock>>) -> StatusCode {
    mock.journal.clear();
    StatusCode::NO_CONTENT
}

/// Answers any request but the journal's: stubs, then presets, then 404.
async fn answer(State(mock): State<Arc<Mock>>, req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let (body, too_large) = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => (String::from_utf8_lossy(&b).into_owned(), false),
        Err(_) => (String::new(), true),
    };
    let stubs = mock.stubs();
    let (resp, answered_by) = if too_large {
        (
            plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                &parts,
                &target,
            ),
            AnsweredBy::None,
        )
    } else if let Some(s) = stubs
        .iter()
        .find(|s| s.matches(&parts.method, &target, &parts.headers))
    {
        let mut r = Response::new(Body::from(s.body.clone()));
        *r.status_mut() = s.status;
        *r.headers_mut() = s.response_headers.clone();
        (
            r,
            AnsweredBy::Stub {
                name: s.name.clone(),
                line: s.line,
            },
        )
    } else if let Some(p) = mock
        .opts
        .presets
        .iter()
        .find(|p| p.applies(parts.uri.path()))
    {
        (
            mock.preset_response(p, &parts),
            AnsweredBy::Preset {
                name: p.name.to_owned(),
            },
        )
    } else {
        (
            plain(StatusCode::NOT_FOUND, "no_stub_matched", &parts, &target),
            AnsweredBy::None,
        )
    };
    mock.journal.push(Entry {
        seq: 0,
        time: rfc3339(now()),
        method: parts.method.to_string(),
        url: target,
        headers: journal::header_map(&parts.headers),
        body,
        answered_by,
        status: resp.status().as_u16(),
    });
    resp
}

/// The mock's own answers (not the contract's): a small JSON object.
fn plain(
    status: StatusCode,
    error: &str,
    parts: &http::request::Parts,
    target: &str,
) -> Response<Body> {
    let message = match error {
        "no_stub_matched" => format!(
            "No stub or preset matches `{} {target}`; see {JOURNAL_PATH} for what was received.",
            parts.method
        ),
        _ => format!("The request body is over {MAX_BODY} bytes."),
    };
    let body = serde_json::json!({ "error": error, "message": message }).to_string();
    json_response(status, body)
}

/// A mock serving on an ephemeral loopback port, stopped when dropped: the way to embed
/// one in a client's test suite (`Running::start(opts).await?.addr`).
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub mock: Arc<Mock>,
    stop: watch::Sender<bool>,
}

impl Running {
    /// Loads the stubs and serves on `127.0.0.1:0`.
    pub async fn start(opts: MockOptions) -> Result<Self, StartError> {
        let mock = Mock::new(opts)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, rx) = watch::channel(false);
        tokio::spawn(serve(Arc::clone(&mock), listener, rx));
        Ok(Self { addr, mock, stop })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Why [`Running::start`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Mock(#[from] MockError),
    #[error("cannot listen on 127.0.0.1: {0}")]
    Listen(#[from] std::io::Error),
}

/// Serves `mock` on `listener` (and watches its stub file) until `stop` turns true.
pub async fn serve(
    mock: Arc<Mock>,
    listener: TcpListener,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let watcher = tokio::spawn(Arc::clone(&mock).watch(stop.clone()));
    let mut rx = stop;
    let result = axum::serve(listener, mock.router())
        .with_graceful_shutdown(async move {
            let _ = rx.wait_for(|s| *s).await;
        })
        .await;
    watcher.abort();
    result
}
