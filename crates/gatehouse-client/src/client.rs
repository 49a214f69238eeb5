//! The client: attaches credentials, refreshes once (single flight), retries once, and maps
//! 401/403/429/503 answers to typed errors.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use http::{HeaderValue, StatusCode, header};
use reqwest::{Method, Response, Url};
use serde::Deserialize;

use crate::challenge::{self, Challenge};
use crate::error::Error;
use crate::problem::Problem;
use crate::retry::retry_after;
use crate::store::{TokenStore, Tokens};

/// How the client authenticates. `Debug` hides secrets.
#[derive(Clone)]
pub enum Credentials {
    /// Bearer access tokens from a store, renewed with the refresh token at `/auth/refresh`.
    Bearer(Arc<dyn TokenStore>),
    /// HTTP Basic (RFC 7617).
    Basic {
        user: String,
        password: String,
    },
    /// An API key in `X-API-Key`.
    ApiKey(String),
    None,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bearer(_) => f.write_str("Bearer(<store>)"),
            Self::Basic { user, .. } => write!(f, "Basic({user}, <redacted>)"),
            Self::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
            Self::None => f.write_str("None"),
        }
    }
}

/// Builds a [`Client`].
#[derive(Debug)]
pub struct ClientBuilder {
    base: String,
    credentials: Credentials,
    refresh_path: String,
    max_retry_after: Duration,
    http: Option<reqwest::Client>,
}

impl ClientBuilder {
    pub fn credentials(mut self, c: Credentials) -> Self {
        self.credentials = c;
        self
    }
    /// Path of the refresh endpoint, `/auth/refresh` by default.
    pub fn refresh_path(mut self, p: impl Into<String>) -> Self {
        self.refresh_path = p.into();
        self
    }
    /// The longest `Retry-After` the client waits before its one retry (default 10 s);
    /// longer waits come back as [`Error::RateLimited`] / [`Error::Unavailable`].
    pub fn max_retry_after(mut self, d: Duration) -> Self {
        self.max_retry_after = d;
        self
    }
    /// A preconfigured `reqwest::Client` (proxies, timeouts, roots).
    pub fn http_client(mut self, c: reqwest::Client) -> Self {
        self.http = Some(c);
        self
    }
    pub fn build(self) -> Result<Client, Error> {
        let base = Url::parse(&self.base).map_err(|_| Error::InvalidUrl(self.base.clone()))?;
        let http = match self.http {
            Some(h) => h,
            None => reqwest::Client::builder().build()?,
        };
        let tokens = match &self.credentials {
            Credentials::Bearer(s) => s.load()?,
            _ => None,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                credentials: self.credentials,
                refresh_path: self.refresh_path,
                max_retry_after: self.max_retry_after,
                current: RwLock::new(Snapshot {
                    generation: 0,
                    tokens,
                }),
                refresh: tokio::sync::Mutex::new(RefreshState::default()),
            }),
        })
    }
}

/// The tokens in use and their generation (bumped by every refresh or sign-in).
struct Snapshot {
    generation: u64,
    tokens: Option<Tokens>,
}

#[derive(Default)]
struct RefreshState {
    /// The generation whose refresh was refused: waiters that saw it fail too, without
    /// presenting the same refresh token again (which the server treats as theft).
    failed: Option<u64>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    credentials: Credentials,
    refresh_path: String,
    max_retry_after: Duration,
    current: RwLock<Snapshot>,
    refresh: tokio::sync::Mutex<RefreshState>,
}

/// A cheap-to-clone handle; clones share tokens and the single-flight refresh.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base.as_str())
            .field("credentials", &self.inner.credentials)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
}

impl Client {
    /// A builder for the gateway at `base` (e.g. `https://api.example`).
    pub fn builder(base: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base: base.into(),
            credentials: Credentials::None,
            refresh_path: "/auth/refresh".to_owned(),
            max_retry_after: Duration::from_secs(10),
            http: None,
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let rb = self
            .inner
            .base
            .join(path)
            .map_err(|_| Error::InvalidUrl(path.to_owned()))
            .map(|url| self.inner.http.request(method, url));
        RequestBuilder {
            client: self.clone(),
            rb,
        }
    }
    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }
    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }
    pub fn put(&self, path: &str) -> RequestBuilder {
        self.request(Method::PUT, path)
    }
    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.request(Method::DELETE, path)
    }

    /// Signs in with a password at `/auth/login` and stores the tokens (Bearer only).
    /// A refusal comes back as the usual typed error (401 → [`Error::Unauthorized`],
    /// 403 → [`Error::Forbidden`], ...).
    pub async fn sign_in(&self, user: &str, password: &str) -> Result<(), Error> {
        let url = self
            .inner
            .base
            .join("/auth/login")
            .map_err(|_| Error::InvalidUrl("/auth/login".into()))?;
        let resp = self
            .inner
            .http
            .post(url)
            .json(&serde_json::json!({"username": user, "password": password}))
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(self.classify_failure(resp).await);
        }
        let t: TokenResponse = resp.json().await?;
        self.set_tokens(Tokens::new(t.access_token, t.refresh_token))
    }

    /// Replaces the tokens (after a sign-in done elsewhere, or a step-up).
    pub fn set_tokens(&self, tokens: Tokens) -> Result<(), Error> {
        if let Credentials::Bearer(store) = &self.inner.credentials {
            store.save(&tokens)?;
        }
        let mut cur = self
            .inner
            .current
            .write()
            .map_err(|_| crate::store::StoreError::Poisoned)?;
        cur.generation += 1;
        cur.tokens = Some(tokens);
        Ok(())
    }

    /// Adds the credentials; returns the token generation used.
    fn authorize(&self, req: &mut reqwest::Request) -> Result<u64, Error> {
        let value = match &self.inner.credentials {
            Credentials::Bearer(_) => {
                let cur = self
                    .inner
                    .current
                    .read()
                    .map_err(|_| crate::store::StoreError::Poisoned)?;
                let generation = cur.generation;
                if let Some(t) = &cur.tokens {
                    let v = HeaderValue::try_from(format!("Bearer {}", t.access_token))
                        .map_err(|_| Error::InvalidHeader("access token"))?;
                    set_secret(req, header::AUTHORIZATION, v);
                }
                return Ok(generation);
            }
            Credentials::Basic { user, password } => {
                use base64::Engine as _;
                let b64 =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                (header::AUTHORIZATION, format!("Basic {b64}"))
            }
            Credentials::ApiKey(k) => (header::HeaderName::from_static("x-api-key"), k.clone()),
            Credentials::None => return Ok(0),
        };
        let v = HeaderValue::try_from(value.1).map_err(|_| Error::InvalidHeader("credential"))?;
        set_secret(req, value.0, v);
        Ok(0)
    }

    /// One refresh for all requests that saw generation `seen` fail; later callers find
    /// the generation moved on and just retry with the new token.
    async fn refresh(&self, seen: u64) -> Result<(), Error> {
        let Credentials::Bearer(store) = &self.inner.credentials else {
            return Err(Error::SignInRequired { problem: None });
        };
        let mut state = self.inner.refresh.lock().await;
        let (generation, refresh_token) = {
            let cur = self
                .inner
                .current
                .read()
                .map_err(|_| crate::store::StoreError::Poisoned)?;
            (
                cur.generation,
                cur.tokens.as_ref().and_then(|t| t.refresh_token.clone()),
            )
        };
        if generation != seen {
            return Ok(());
        }
        if state.failed == Some(seen) {
            return Err(Error::SignInRequired { problem: None });
        }
        let Some(refresh_token) = refresh_token else {
            state.failed = Some(seen);
            return Err(Error::SignInRequired { problem: None });
        };
        let url = self
            .inner
            .base
            .join(&self.inner.refresh_path)
            .map_err(|_| Error::InvalidUrl(self.inner.refresh_path.clone()))?;
        tracing::debug!("refreshing the access token");
        let resp = self
            .inner
            .http
            .post(url)
            .json(&serde_json::json!({ "refresh_token": refresh_token }))
            .send()
            .await?;
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            // Throttled, not refused: the refresh token is still good for a later try.
            return Err(Error::RateLimited {
                retry_after: retry_after(resp.headers(), SystemTime::now()),
            });
        }
        if status.is_client_error() {
            // Refused (expired, revoked, or reused: RFC 9700 §4.14.2 revokes the family).
            state.failed = Some(seen);
            let body = resp.bytes().await.unwrap_or_default();
            let _ = store.clear();
            // Keep the generation: `failed` must go on matching it.
            if let Ok(mut cur) = self.inner.current.write() {
                cur.tokens = None;
            }
            return Err(Error::SignInRequired {
                problem: Some(Box::new(Problem::from_body(status.as_u16(), &body))),
            });
        }
        if !status.is_success() {
            return Err(Error::TokenEndpoint(format!("refresh answered {status}")));
        }
        let t: TokenResponse = resp
            .json()
            .await
            .map_err(|e| Error::TokenEndpoint(e.to_string()))?;
        // RFC 6749 §6: without a new refresh token the old one stays valid.
        let tokens = Tokens::new(t.access_token, t.refresh_token.or(Some(refresh_token)));
        self.set_tokens(tokens)
    }

    /// Maps a refused sign-in to the matching error.
    async fn classify_failure(&self, resp: Response) -> Error {
        let status = resp.status();
        let challenges = challenges_of(&resp);
        let after = retry_after(resp.headers(), SystemTime::now());
        let problem = Box::new(Problem::from_body(
            status.as_u16(),
            &read_capped(resp).await,
        ));
        match status {
            StatusCode::FORBIDDEN => Error::Forbidden(problem),
            StatusCode::UNAUTHORIZED => Error::Unauthorized {
                challenges,
                problem,
            },
            StatusCode::TOO_MANY_REQUESTS => Error::RateLimited { retry_after: after },
            StatusCode::SERVICE_UNAVAILABLE => Error::Unavailable { retry_after: after },
            _ => Error::TokenEndpoint(format!("sign-in answered {status}: {problem}")),
        }
    }
}

/// Marks credentials sensitive so `Debug` of the request and HTTP/2 HPACK keep them out.
fn set_secret(req: &mut reqwest::Request, name: header::HeaderName, mut v: HeaderValue) {
    v.set_sensitive(true);
    req.headers_mut().insert(name, v);
}

fn challenges_of(resp: &Response) -> Vec<Challenge> {
    let lines = resp
        .headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    // A malformed header is no reason to lose the status: keep what parsed line by line.
    lines
        .flat_map(|l| challenge::parse(l).unwrap_or_default())
        .collect()
}

/// Error bodies are small; cap them so a hostile server cannot make us buffer much.
async fn read_capped(mut resp: Response) -> Vec<u8> {
    const CAP: usize = 64 * 1024;
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        out.extend_from_slice(&chunk[..chunk.len().min(CAP - out.len())]);
        if out.len() >= CAP {
            break;
        }
    }
    out
}

/// The error code of a 401: the Bearer challenge's `error` attribute (RFC 6750 §3), else
/// the problem body's `error` member.
fn error_code<'a>(challenges: &'a [Challenge], problem: &'a Problem) -> Option<&'a str> {
    challenges
        .iter()
        .filter(|c| c.is("bearer"))
        .find_map(|c| c.param("error"))
        .or_else(|| problem.error())
}

/// A request being built; `send` applies the retry rules.
pub struct RequestBuilder {
    client: Client,
    rb: Result<reqwest::RequestBuilder, Error>,
}

impl std::fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBuilder").finish_non_exhaustive()
    }
}

impl RequestBuilder {
    fn map(mut self, f: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder) -> Self {
        self.rb = self.rb.map(f);
        self
    }
    pub fn header(self, name: &str, value: &str) -> Self {
        let (n, v) = (name.to_owned(), value.to_owned());
        self.map(|rb| rb.header(n, v))
    }
    pub fn json<T: serde::Serialize + ?Sized>(self, v: &T) -> Self {
        self.map(|rb| rb.json(v))
    }
    /// A body; buffered bodies are replayed on retry, streams
    /// (`reqwest::Body::wrap_stream`) are not ([`Error::BodyNotReplayable`]).
    pub fn body(self, b: impl Into<reqwest::Body>) -> Self {
        self.map(|rb| rb.body(b))
    }
    pub fn timeout(self, d: Duration) -> Self {
        self.map(|rb| rb.timeout(d))
    }

    /// Sends the request. Success and statuses without a rule here (404, 500, ...) come
    /// back as `Ok(response)`; 401, 403, 429 and 503 follow the crate's rules.
    pub async fn send(self) -> Result<Response, Error> {
        let client = self.client;
        let mut next = Some(self.rb?.build()?);
        let mut refreshed = false;
        let mut waited = false;
        loop {
            let Some(mut req) = next.take() else {
                return Err(Error::TokenEndpoint("no request to send".into()));
            };
            let spare = req.try_clone();
            let generation = client.authorize(&mut req)?;
            let resp = client.inner.http.execute(req).await?;
            let status = resp.status();
            match status {
                StatusCode::UNAUTHORIZED => {
                    let challenges = challenges_of(&resp);
                    let problem = Box::new(Problem::from_body(
                        status.as_u16(),
                        &read_capped(resp).await,
                    ));
                    let code = error_code(&challenges, &problem).map(str::to_owned);
                    if code.as_deref() == Some("insufficient_user_authentication") {
                        let c = challenges.iter().find(|c| {
                            c.is("bearer")
                                && c.param("error") == Some("insufficient_user_authentication")
                        });
                        return Err(Error::StepUpRequired {
                            acr_values: c.and_then(|c| c.param("acr_values")).map(str::to_owned),
                            max_age: c
                                .and_then(|c| c.param("max_age"))
                                .and_then(|v| v.parse().ok()),
                        });
                    }
                    let bearer = matches!(client.inner.credentials, Credentials::Bearer(_));
                    if !bearer || refreshed {
                        return Err(Error::Unauthorized {
                            challenges,
                            problem,
                        });
                    }
                    match code.as_deref() {
                        Some("invalid_token" | "token_expired") => {}
                        // No token, or one the gateway will not take back: sign in.
                        _ => {
                            return Err(Error::SignInRequired {
                                problem: Some(problem),
                            });
                        }
                    }
                    client.refresh(generation).await?;
                    refreshed = true;
                    next = Some(spare.ok_or(Error::BodyNotReplayable { status })?);
                }
                StatusCode::FORBIDDEN => {
                    let problem = Box::new(Problem::from_body(
                        status.as_u16(),
                        &read_capped(resp).await,
                    ));
                    return Err(Error::Forbidden(problem));
                }
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                    let after = retry_after(resp.headers(), SystemTime::now());
                    let fail = |retry_after| {
                        if status == StatusCode::TOO_MANY_REQUESTS {
                            Error::RateLimited { retry_after }
                        } else {
                            Error::Unavailable { retry_after }
                        }
                    };
                    match after {
                        Some(d) if !waited && d <= client.inner.max_retry_after => {
                            let Some(spare) = spare else {
                                return Err(Error::BodyNotReplayable { status });
                            };
                            drop(resp);
                            tokio::time::sleep(d).await;
                            waited = true;
                            next = Some(spare);
                        }
                        _ => return Err(fail(after)),
                    }
                }
                _ => return Ok(resp),
            }
        }
    }
}
