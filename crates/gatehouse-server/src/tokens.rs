//! Bearer tokens at the edge: the core verifier plus the IO it needs — fetching external
//! issuers' JWKS on first use and on an unknown `kid` (single-flight, rate-limited; row 22
//! when the JWKS cannot be had), reading `jwks_file`s — and issuing our own tokens.

use std::future::Future;
use std::time::Duration;

use gatehouse_core::config::{Config, IssuerKeys, TokensConfig};
use gatehouse_core::deny::Deny;
use gatehouse_core::principal::Principal;
use gatehouse_core::token::{
    AccessClaims, IssuerVerifier, KeySet, TokenVerifier, VerifyError, sign_access_token,
};
use gatehouse_store::User;
use http_body_util::{BodyExt as _, Limited};

use crate::keys::OwnKeys;
use crate::proxy::{HttpsClient, https_client};

pub use gatehouse_core::token::OWN_ISSUER_NAME as OWN_ISSUER;

/// Our own issuer's index among the verifier's issuers (it is always the first).
const OWN_INDEX: usize = 0;

/// At most one forced JWKS refetch per issuer in this interval (forged `kid`s must not
/// hammer the identity provider).
const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Keys are refreshed in the background once they are this old.
const JWKS_MAX_AGE: Duration = Duration::from_secs(600);
/// JWKS documents larger than this are refused.
const JWKS_MAX_BYTES: usize = 1024 * 1024;
const JWKS_TIMEOUT: Duration = Duration::from_secs(5);

struct Remote {
    url: String,
    /// Forced fetches of this issuer's JWKS (single flight, at most one per
    /// [`REFETCH_INTERVAL`]).
    refetch: crate::refetch::Refetch,
}

/// Verifies bearer tokens of our own issuer (index 0) and every `[[issuers]]` entry.
pub struct Verifiers {
    verifier: TokenVerifier,
    /// Per issuer index: where to refetch keys from.
    remotes: Vec<Option<Remote>>,
    client: HttpsClient,
}

impl Verifiers {
    pub fn new(config: &Config, own: &OwnKeys) -> Result<Self, String> {
        let own_keys = own_key_set(own)?;
        // Our own issuer first, at [`OWN_INDEX`].
        let claims = config.required_claims();
        let mut issuers =
            vec![IssuerVerifier::own(&config.tokens, own_keys).keeping_claims(claims.clone())];
        let mut remotes = vec![None];
        for ic in &config.issuers {
            let (keys, remote) = match &ic.keys {
                IssuerKeys::Secret(s) => (
                    KeySet::from_hmac_secret(s)
                        .map_err(|e| format!("issuer `{}`: {e}", ic.name))?,
                    None,
                ),
                IssuerKeys::JwksFile(path) => {
                    let bytes = std::fs::read(path).map_err(|e| {
                        format!(
                            "issuer `{}`: cannot read `{}`: {e}",
                            ic.name,
                            path.display()
                        )
                    })?;
                    (
                        KeySet::from_jwks_json(&bytes).map_err(|e| {
                            format!("issuer `{}`: `{}`: {e}", ic.name, path.display())
                        })?,
                        None,
                    )
                }
                IssuerKeys::JwksUrl(url) => (
                    KeySet::default(),
                    Some(Remote {
                        url: url.clone(),
                        refetch: crate::refetch::Refetch::new(REFETCH_INTERVAL),
                    }),
                ),
            };
            issuers.push(IssuerVerifier::from_config(ic, keys).keeping_claims(claims.clone()));
            remotes.push(remote);
        }
        let verifier = TokenVerifier::new(issuers).map_err(|e| e.to_string())?;
        Ok(Self {
            verifier,
            remotes,
            client: https_client(JWKS_TIMEOUT),
        })
    }

    /// Lets our own issuer (index 0) verify with `keys` (after a rotation).
    pub fn set_own_keys(&self, keys: &OwnKeys) {
        match own_key_set(keys) {
            Ok(set) => {
                if let Some(own) = self.verifier.issuers().get(OWN_INDEX) {
                    own.set_keys(set);
                }
            }
            Err(e) => tracing::error!(error = %e, "own signing keys could not be loaded"),
        }
    }

    /// Rows 8, 9 and 22 for bearer tokens. A `kid` an issuer does not know makes it re-read
    /// its keys once before the token is refused: an external issuer's JWKS is refetched, and
    /// for our own issuer `reload_own` re-reads the store (another node, or `keys rotate`,
    /// may have added the key since we loaded ours). Only a `kid` unknown after that is
    /// `invalid_token`; a failed re-read is row 22.
    pub async fn verify<F, Fut>(
        &self,
        token: &str,
        now: i64,
        reload_own: F,
    ) -> Result<Principal, Deny>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), Deny>>,
    {
        match self.verifier.verify(token, now) {
            Ok(p) => Ok(p),
            Err(VerifyError::UnknownKid { issuer }) => {
                if issuer == OWN_INDEX {
                    reload_own().await?;
                } else {
                    self.refetch(issuer).await?;
                }
                self.verifier.verify(token, now).map_err(|e| e.to_deny())
            }
            Err(e) => Err(e.to_deny()),
        }
    }

    /// Refetches the JWKS of issuer `index` after an unknown `kid`.
    pub async fn refetch(&self, index: usize) -> Result<(), Deny> {
        let unknown = Deny::InvalidToken {
            detail: gatehouse_core::token::msg::UNKNOWN_KEY.to_owned(),
        };
        let Some(Some(remote)) = self.remotes.get(index) else {
            return Err(unknown);
        };
        let ok = remote
            .refetch
            .run(|| async {
                match self.fetch(&remote.url).await {
                    Ok(keys) => {
                        if let Some(iv) = self.verifier.issuers().get(index) {
                            iv.set_keys(keys);
                        }
                        true
                    }
                    Err(e) => {
                        tracing::warn!(url = %remote.url, error = %e, "JWKS fetch failed");
                        false
                    }
                }
            })
            .await;
        if ok { Ok(()) } else { Err(unavailable()) }
    }

    async fn fetch(&self, url: &str) -> Result<KeySet, String> {
        let req = http::Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .body(axum::body::Body::empty())
            .map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(JWKS_TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("status {}", resp.status()));
        }
        let body = tokio::time::timeout(
            JWKS_TIMEOUT,
            Limited::new(resp.into_body(), JWKS_MAX_BYTES).collect(),
        )
        .await
        .map_err(|_| "timed out reading the body".to_owned())?
        .map_err(|e| e.to_string())?
        .to_bytes();
        KeySet::from_jwks_json(&body).map_err(|e| e.to_string())
    }

    /// Refreshes every issuer whose keys are older than [`JWKS_MAX_AGE`], so keys an issuer
    /// withdrew stop verifying even when no unknown `kid` comes along.
    pub async fn refresh_stale(&self) {
        for i in self.stale() {
            let _ = self.refetch(i).await;
        }
    }

    /// Issuers whose keys are older than [`JWKS_MAX_AGE`] (for a background refresh).
    pub fn stale(&self) -> Vec<usize> {
        self.remotes
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                r.as_ref()?
                    .refetch
                    .last_ok()
                    .is_some_and(|t| t.elapsed() > JWKS_MAX_AGE)
                    .then_some(i)
            })
            .collect()
    }
}

fn own_key_set(own: &OwnKeys) -> Result<KeySet, String> {
    KeySet::from_ed25519_public_keys(
        own.keys
            .iter()
            .map(|k| (k.kid.as_str(), k.public.as_slice())),
    )
    .map_err(|e| format!("own signing keys: {e}"))
}

fn unavailable() -> Deny {
    Deny::AuthUnavailable {
        retry_after: crate::unavailable::RETRY_AFTER_UNAVAILABLE,
    }
}

/// What an access token says about a local user.
pub struct TokenRequest<'a> {
    pub user: &'a User,
    pub scopes: &'a [String],
    /// `pwd` or `mfa`.
    pub acr: &'a str,
    /// When the user authenticated (RFC 9470 `max_age` reads it).
    pub auth_time: i64,
    /// How (RFC 8176 `amr` values): the session's, or none for a token not minted from a
    /// sign-in.
    pub amr: &'a [String],
    /// The login session, for logout and revocation (row 10).
    pub session_id: Option<&'a str>,
    pub now: i64,
    pub ttl: Duration,
}

/// Issues an access token for a local user, signed with our current key.
pub fn issue(
    keys: &OwnKeys,
    tokens: &TokensConfig,
    req: &TokenRequest<'_>,
) -> Result<String, String> {
    use base64::Engine as _;
    let key = keys.current().ok_or("no signing key")?;
    let jti = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(crate::random::random_bytes::<16>());
    let claims = AccessClaims {
        iss: tokens.issuer.clone(),
        aud: tokens.audience.clone(),
        sub: req.user.name.clone(),
        roles: req.user.roles.clone(),
        scope: req.scopes.join(" "),
        tenant: req.user.tenant.clone(),
        acr: req.acr.to_owned(),
        auth_time: req.auth_time,
        amr: req.amr.to_vec(),
        jti,
        sid: req.session_id.map(str::to_owned),
        iat: req.now,
        exp: req.now + i64::try_from(req.ttl.as_secs()).unwrap_or(i64::MAX / 2),
    };
    sign_access_token(&claims, &key.kid, key.private_pkcs8()).map_err(|e| e.to_string())
}
