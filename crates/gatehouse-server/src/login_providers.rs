//! A login provider as seen over the network: its discovery document (OpenID Connect
//! Discovery §4), its JWKS (fetched on first use and again on an unknown `kid`, single
//! flight, at most once per `REFETCH_FLOOR`) and the token endpoint. The HTTP client is
//! the one the issuers' JWKS fetch uses (rustls on aws-lc-rs).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use gatehouse_core::config::{ClientSecret, LoginProviderConfig};
use gatehouse_core::secret::SecretString;
use gatehouse_core::token::KeySet;
use http_body_util::{BodyExt as _, Limited};

use crate::proxy::{HttpsClient, https_client};
use crate::refetch::Refetch;

/// Every exchange with a provider (discovery, JWKS, token endpoint) gets this long.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Provider documents larger than this are refused.
const MAX_BYTES: usize = 1024 * 1024;
/// The discovery document is re-read once it is this old.
const META_MAX_AGE: Duration = Duration::from_secs(600);
/// At most one forced JWKS refetch per provider in this interval (forged `kid`s must not
/// hammer the provider).
const REFETCH_FLOOR: Duration = Duration::from_secs(10);

/// The endpoints of the discovery document that the sign-in uses.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Meta {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

/// One provider's cached documents.
pub struct Remote {
    issuer: String,
    meta: tokio::sync::Mutex<Option<(Meta, Instant)>>,
    keys: RwLock<Arc<KeySet>>,
    key_refetch: Refetch,
}

/// Every login provider's remote state; survives config reloads (by name and issuer).
pub struct Providers {
    client: HttpsClient,
    remotes: Mutex<HashMap<String, Arc<Remote>>>,
    /// SHA-256 of each `state` already answered, with when it stops mattering (replays of a
    /// callback are refused even by a client that kept the flow cookie).
    used_states: Mutex<HashMap<[u8; 32], i64>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Providers")
    }
}

impl Default for Providers {
    fn default() -> Self {
        Self {
            client: https_client(TIMEOUT),
            remotes: Mutex::new(HashMap::new()),
            used_states: Mutex::new(HashMap::new()),
        }
    }
}

/// What went wrong talking to a provider: its fault or the network's (503), or a refusal of
/// the code (400).
#[derive(Debug)]
pub enum Exchange {
    Unavailable(String),
    /// The token endpoint answered `invalid_grant` (RFC 6749 §5.2): the code was used,
    /// expired, or issued for another redirect URI or verifier.
    InvalidGrant,
}

impl Providers {
    /// The remote state of `p`, fresh when its issuer changed.
    pub fn remote(&self, p: &LoginProviderConfig) -> Arc<Remote> {
        let mut map = self.remotes.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(&p.name) {
            Some(r) if r.issuer == p.issuer => Arc::clone(r),
            _ => {
                let r = Arc::new(Remote {
                    issuer: p.issuer.clone(),
                    meta: tokio::sync::Mutex::new(None),
                    keys: RwLock::new(Arc::new(KeySet::default())),
                    key_refetch: Refetch::new(REFETCH_FLOOR),
                });
                map.insert(p.name.clone(), Arc::clone(&r));
                r
            }
        }
    }

    /// Records `state` as answered; `false` if it already was (a replayed callback).
    pub fn consume_state(&self, state: &str, until: i64, now: i64) -> bool {
        use sha2::{Digest as _, Sha256};
        let key: [u8; 32] = Sha256::digest(state.as_bytes()).into();
        let mut used = self
            .used_states
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        used.retain(|_, exp| *exp > now);
        used.insert(key, until).is_none()
    }

    async fn get(&self, url: &str) -> Result<Bytes, String> {
        let req = http::Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .body(Body::empty())
            .map_err(|e| e.to_string())?;
        let (status, body) = self.send(req).await?;
        if !status.is_success() {
            return Err(format!("`{url}` answered {status}"));
        }
        Ok(body)
    }

    async fn send(&self, req: http::Request<Body>) -> Result<(http::StatusCode, Bytes), String> {
        let resp = tokio::time::timeout(TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let body =
            tokio::time::timeout(TIMEOUT, Limited::new(resp.into_body(), MAX_BYTES).collect())
                .await
                .map_err(|_| "timed out reading the body".to_owned())?
                .map_err(|e| e.to_string())?
                .to_bytes();
        Ok((status, body))
    }

    /// The discovery document, read again once it is `META_MAX_AGE` old. Its `issuer`
    /// must be the configured one exactly (OpenID Connect Discovery §4.3).
    pub async fn meta(&self, remote: &Remote) -> Result<Meta, String> {
        let mut cached = remote.meta.lock().await;
        if let Some((m, at)) = cached.as_ref()
            && at.elapsed() < META_MAX_AGE
        {
            return Ok(m.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            remote.issuer.trim_end_matches('/')
        );
        let body = self.get(&url).await?;
        let meta: Meta = serde_json::from_slice(&body)
            .map_err(|e| format!("the discovery document is not valid: {e}"))?;
        if meta.issuer != remote.issuer {
            return Err(format!(
                "the discovery document names the issuer `{}`, not `{}`",
                meta.issuer, remote.issuer
            ));
        }
        *cached = Some((meta.clone(), Instant::now()));
        Ok(meta)
    }

    /// The provider's keys: fetched when there are none yet, or when `refetch` (an unknown
    /// `kid`) and no fetch ran within `REFETCH_FLOOR`. `Err` when no keys can be had.
    pub async fn keys(
        &self,
        remote: &Remote,
        meta: &Meta,
        refetch: bool,
    ) -> Result<Arc<KeySet>, ()> {
        let current = Arc::clone(&remote.keys.read().unwrap_or_else(PoisonError::into_inner));
        if !current.is_empty() && !refetch {
            return Ok(current);
        }
        let ok = remote
            .key_refetch
            .run(|| async {
                match self.get(&meta.jwks_uri).await.and_then(|b| {
                    KeySet::from_jwks_json(&b).map_err(|e| e.to_string())
                }) {
                    Ok(keys) => {
                        *remote.keys.write().unwrap_or_else(PoisonError::into_inner) =
                            Arc::new(keys);
                        true
                    }
                    Err(e) => {
                        tracing::warn!(issuer = %remote.issuer, error = %e, "login provider JWKS fetch failed");
                        false
                    }
                }
            })
            .await;
        let keys = Arc::clone(&remote.keys.read().unwrap_or_else(PoisonError::into_inner));
        if ok || !keys.is_empty() {
            Ok(keys)
        } else {
            Err(())
        }
    }

    /// Exchanges an authorization code at the token endpoint (RFC 6749 §4.1.3, with the PKCE
    /// `code_verifier` of RFC 7636 §4.5) and returns the `id_token`.
    pub async fn exchange(
        &self,
        p: &LoginProviderConfig,
        meta: &Meta,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<SecretString, Exchange> {
        use gatehouse_core::oidc::form_encode;
        let mut body = format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
            form_encode(code),
            form_encode(redirect_uri),
            form_encode(verifier)
        );
        let mut req = http::Request::post(&meta.token_endpoint)
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            );
        match client_secret(&p.client_secret).map_err(Exchange::Unavailable)? {
            // `client_secret_basic` (RFC 6749 §2.3.1): both parts form-encoded first.
            Some(secret) => {
                use base64::Engine as _;
                let pair = format!(
                    "{}:{}",
                    form_encode(&p.client_id),
                    form_encode(secret.expose())
                );
                let basic = base64::engine::general_purpose::STANDARD.encode(pair.as_bytes());
                let mut value = http::HeaderValue::from_str(&format!("Basic {basic}"))
                    .map_err(|e| Exchange::Unavailable(e.to_string()))?;
                value.set_sensitive(true);
                req = req.header(http::header::AUTHORIZATION, value);
            }
            // A public client names itself (RFC 6749 §4.1.3).
            None => {
                body.push_str("&client_id=");
                body.push_str(&form_encode(&p.client_id));
            }
        }
        let req = req
            .body(Body::from(body))
            .map_err(|e| Exchange::Unavailable(e.to_string()))?;
        let (status, bytes) = self.send(req).await.map_err(Exchange::Unavailable)?;
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if !status.is_success() {
            let error = json.get("error").and_then(|e| e.as_str()).unwrap_or("");
            if status == http::StatusCode::BAD_REQUEST && error == "invalid_grant" {
                return Err(Exchange::InvalidGrant);
            }
            return Err(Exchange::Unavailable(format!(
                "the token endpoint answered {status} `{error}`"
            )));
        }
        json.get("id_token")
            .and_then(|t| t.as_str())
            .map(|t| SecretString::new(t.to_owned()))
            .ok_or_else(|| Exchange::Unavailable("the token response has no `id_token`".into()))
    }
}

/// The client secret, read now from where the config says it is.
fn client_secret(s: &ClientSecret) -> Result<Option<SecretString>, String> {
    match s {
        ClientSecret::None => Ok(None),
        ClientSecret::Value(v) => Ok(Some(v.clone())),
        ClientSecret::Env(name) => std::env::var(name)
            .map(|v| Some(SecretString::new(v)))
            .map_err(|_| format!("the environment variable `{name}` (client_secret) is not set")),
        ClientSecret::File(path) => std::fs::read_to_string(path)
            .map(|v| {
                Some(SecretString::new(
                    v.trim_end_matches(['\r', '\n']).to_owned(),
                ))
            })
            .map_err(|e| format!("cannot read client_secret_file `{}`: {e}", path.display())),
    }
}
