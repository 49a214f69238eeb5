//! Sign-in through an OpenID Connect provider (`[[login_providers]]`): the authorization
//! code flow with PKCE (RFC 7636, `S256`), `state` and `nonce` (OpenID Connect Core §3.1),
//! step-up at the provider for browsers (RFC 9470's `acr_values`/`max_age`, with
//! `prompt=login`), RP-initiated logout and back-channel logout.
//!
//! - `GET /auth/oidc/{name}/start?return_to=…` sends the browser to the provider with a
//!   fresh `state`, `nonce` and PKCE verifier, kept in a sealed, HttpOnly flow cookie.
//! - `GET /auth/oidc/{name}/callback` checks `state` against the cookie (and that it was not
//!   answered before), exchanges the code, verifies the ID token (core's
//!   [`verify_id_token`](gatehouse_core::oidc::verify_id_token)), admits the user and starts
//!   the same session as a password sign-in.
//! - `POST /auth/oidc/{name}/backchannel-logout` verifies a logout token and revokes the
//!   sessions it names on every node (the revocation fan-out).
//!
//! Errors follow the contract: the provider refusing, or a user outside `allowed_domains` /
//! the groups, is a 403 page (never a loop back to the provider); a bad or replayed `state`,
//! a wrong `nonce` or a used code is 400 `invalid_request`; the provider or its JWKS
//! unreachable is 503 `auth_unavailable` with `Retry-After`. Each is audited.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_core::config::{LoginProviderConfig, UserPolicy};
use gatehouse_core::deny::Deny;
use gatehouse_core::oidc::{self as core_oidc, TokenError, form_encode};
use gatehouse_store::{NewUser, StoreError};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use sha2::{Digest as _, Sha256};

use super::{AuthCtx, SignIn, is_secure, safe_return_to, start_session};
use crate::gateway::{Gateway, Runtime};
use crate::login_providers::{Exchange, Meta, Remote};
use gatehouse_core::sealed::{field, open, seal, unfield};

/// The flow cookie: one sign-in in progress per browser.
const FLOW_COOKIE: &str = "gatehouse_oidc";
/// Purpose of the key that seals it.
const KEY_FLOW: &str = "gatehouse/oidc-flow/v1";
/// A sign-in must come back from the provider within this many seconds.
const FLOW_TTL: i64 = 600;

/// `/auth/oidc/{name}/start`, `…/callback` or `…/backchannel-logout` (one segment of name,
/// as the router matches them).
pub fn is_oidc_path(path: &str) -> bool {
    path.strip_prefix("/auth/oidc/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(name, end)| {
            !name.is_empty() && matches!(end, "start" | "callback" | "backchannel-logout")
        })
}

fn random() -> String {
    URL_SAFE_NO_PAD.encode(crate::random::random_bytes::<32>())
}

/// What the flow cookie remembers between `start` and `callback`.
struct Flow {
    provider: String,
    state: String,
    nonce: String,
    verifier: String,
    return_to: String,
    redirect_uri: String,
    expires_at: i64,
    /// The step-up asked for: `mfa`, and a `max_age` in seconds.
    want_mfa: bool,
    max_age: Option<u64>,
}

impl Flow {
    fn seal(&self, gw: &Gateway) -> String {
        let payload = format!(
            "v1.{}.{}.{}.{}.{}.{}.{}.{}.{}",
            self.provider,
            self.state,
            self.nonce,
            self.verifier,
            field(&self.return_to),
            field(&self.redirect_uri),
            self.expires_at,
            u8::from(self.want_mfa),
            self.max_age
                .map_or_else(|| "-".to_owned(), |m| m.to_string()),
        );
        seal(&gw.secrets.derive(KEY_FLOW), &payload)
    }

    fn open(gw: &Gateway, value: &str, now: i64) -> Option<Self> {
        let key = gw.secrets.derive(KEY_FLOW);
        let payload = open(&key, value)?;
        let p: Vec<&str> = payload.split('.').collect();
        let [
            "v1",
            provider,
            state,
            nonce,
            verifier,
            return_to,
            redirect_uri,
            exp,
            mfa,
            max_age,
        ] = p.as_slice()
        else {
            return None;
        };
        let expires_at: i64 = exp.parse().ok()?;
        if expires_at <= now {
            return None;
        }
        Some(Self {
            provider: (*provider).to_owned(),
            state: (*state).to_owned(),
            nonce: (*nonce).to_owned(),
            verifier: (*verifier).to_owned(),
            return_to: unfield(return_to)?,
            redirect_uri: unfield(redirect_uri)?,
            expires_at,
            want_mfa: *mfa == "1",
            max_age: max_age.parse().ok(),
        })
    }
}

fn flow_cookie(value: &str, max_age: i64, secure: bool) -> String {
    format!(
        "{FLOW_COOKIE}={value}; Path=/auth/oidc/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

/// `scheme://host` the browser addressed us by (for the default redirect URIs).
fn origin(headers: &HeaderMap, secure: bool) -> Option<String> {
    let host = headers.get(http::header::HOST)?.to_str().ok()?;
    let ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    ok.then(|| format!("{}://{host}", if secure { "https" } else { "http" }))
}

fn query(parts: &http::request::Parts) -> std::collections::HashMap<String, String> {
    super::body::parse_form(parts.uri.query().unwrap_or("").as_bytes()).unwrap_or_default()
}

fn provider<'r>(rt: &'r Runtime, name: &str) -> Option<&'r LoginProviderConfig> {
    rt.config.login_providers.iter().find(|p| p.name == name)
}

fn see_other(location: &str) -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(http::header::LOCATION, v);
    }
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    resp
}

/// `authorization_endpoint` plus our parameters (its own query, if any, is kept: OpenID
/// Connect Core §3.1.2.1 uses RFC 6749 §3.1's rule).
fn with_query(endpoint: &str, params: &[(&str, &str)]) -> String {
    let mut url = endpoint.to_owned();
    let mut sep = if endpoint.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        url.push(sep);
        url.push_str(k);
        url.push('=');
        url.push_str(&form_encode(v));
        sep = '&';
    }
    url
}

impl AuthCtx {
    fn provider_unavailable(&self, e: &dyn std::fmt::Display) -> Response<Body> {
        tracing::error!(error = %e, request_id = %self.x.request_id, "login provider unavailable");
        self.refuse(
            &Deny::AuthUnavailable {
                retry_after: crate::unavailable::RETRY_AFTER_UNAVAILABLE,
            },
            "/",
        )
    }

    fn sign_in_refused(&self, reason: impl Into<String>, return_to: &str) -> Response<Body> {
        self.refuse(
            &Deny::SignInRefused {
                reason: reason.into(),
            },
            return_to,
        )
    }
}

/// The context of a `GET` endpoint (the browser follows redirects to them).
fn get_ctx(
    gw: Arc<Gateway>,
    parts: &http::request::Parts,
    endpoint: &'static str,
    peer: std::net::SocketAddr,
) -> AuthCtx {
    let ctx = AuthCtx::new(gw, &parts.headers, endpoint, peer);
    ctx.seen().method = std::borrow::Cow::Borrowed("GET");
    ctx
}

/// `GET /auth/oidc/{name}/start?return_to=…[&acr_values=mfa][&max_age=N]`.
pub async fn start(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Path(name): Path<String>,
    req: Request<Body>,
) -> Response<Body> {
    let (parts, _) = req.into_parts();
    let ctx = get_ctx(gw, &parts, "/auth/oidc/start", peer);
    let resp = start_inner(&ctx, peer, &name, &parts).await;
    ctx.observe(&resp, "sign_in_started");
    resp
}

async fn start_inner(
    ctx: &AuthCtx,
    peer: std::net::SocketAddr,
    name: &str,
    parts: &http::request::Parts,
) -> Response<Body> {
    let Some(p) = provider(&ctx.x.rt, name) else {
        return ctx.refuse(&Deny::NotFound, "/");
    };
    let q = query(parts);
    let return_to = safe_return_to(q.get("return_to").map(String::as_str)).to_owned();
    let want_mfa = q
        .get("acr_values")
        .is_some_and(|v| v.split(' ').any(|a| a == "mfa"));
    let max_age = match q.get("max_age") {
        Some(m) => match m.parse::<u64>() {
            Ok(m) => Some(m),
            Err(_) => return ctx.invalid_request("`max_age` must be a number of seconds"),
        },
        None => None,
    };
    let secure = is_secure(&ctx.x.rt, peer, parts);
    let redirect_uri = match &p.redirect_uri {
        Some(u) => u.clone(),
        None => match origin(&parts.headers, secure) {
            Some(o) => format!("{o}/auth/oidc/{name}/callback"),
            None => return ctx.invalid_request("the request has no usable `Host`"),
        },
    };
    let remote = ctx.x.gw.oidc.remote(p);
    let meta = match ctx.x.gw.oidc.meta(&remote).await {
        Ok(m) => m,
        Err(e) => return ctx.provider_unavailable(&format!("`{name}` discovery: {e}")),
    };
    let flow = Flow {
        provider: name.to_owned(),
        state: random(),
        nonce: random(),
        // 43 characters of 256 random bits (RFC 7636 §4.1).
        verifier: random(),
        return_to,
        redirect_uri,
        expires_at: ctx.x.now + FLOW_TTL,
        want_mfa,
        max_age,
    };
    let challenge = core_oidc::pkce_challenge(&flow.verifier);
    let scope = p.scopes.join(" ");
    let max_age_s = max_age.map(|m| m.to_string());
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", p.client_id.as_str()),
        ("redirect_uri", flow.redirect_uri.as_str()),
        ("scope", scope.as_str()),
        ("state", flow.state.as_str()),
        ("nonce", flow.nonce.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    // Step-up (RFC 9470 §4 for the browser): ask for the provider's MFA class and a fresh
    // authentication; `prompt=login` makes the provider authenticate again rather than
    // answer from its own session (OpenID Connect Core §3.1.2.1).
    if want_mfa {
        params.push(("acr_values", p.mfa_acr.as_str()));
    }
    if let Some(m) = &max_age_s {
        params.push(("max_age", m.as_str()));
    }
    if want_mfa || max_age.is_some() {
        params.push(("prompt", "login"));
    }
    let mut resp = see_other(&with_query(&meta.authorization_endpoint, &params));
    if let Ok(v) = HeaderValue::from_str(&flow_cookie(&flow.seal(&ctx.x.gw), FLOW_TTL, secure)) {
        resp.headers_mut().insert(http::header::SET_COOKIE, v);
    }
    ctx.x.stamp(resp.headers_mut());
    resp
}

/// `GET /auth/oidc/{name}/callback?code=…&state=…` (or `?error=…&state=…`).
pub async fn callback(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Path(name): Path<String>,
    req: Request<Body>,
) -> Response<Body> {
    let (parts, _) = req.into_parts();
    let ctx = get_ctx(gw, &parts, "/auth/oidc/callback", peer);
    let secure = is_secure(&ctx.x.rt, peer, &parts);
    let mut resp = callback_inner(&ctx, secure, &name, &parts).await;
    // The flow is over whatever the outcome: its cookie goes.
    if let Ok(v) = HeaderValue::from_str(&flow_cookie("", 0, secure)) {
        resp.headers_mut().append(http::header::SET_COOKIE, v);
    }
    ctx.observe(&resp, "signed_in");
    resp
}

async fn callback_inner(
    ctx: &AuthCtx,
    secure: bool,
    name: &str,
    parts: &http::request::Parts,
) -> Response<Body> {
    let Some(p) = provider(&ctx.x.rt, name) else {
        return ctx.refuse(&Deny::NotFound, "/");
    };
    let q = query(parts);
    let flow = crate::session::cookie_named(&parts.headers, FLOW_COOKIE)
        .and_then(|c| Flow::open(&ctx.x.gw, c, ctx.x.now))
        .filter(|f| f.provider == name);
    let Some(flow) = flow else {
        return ctx.invalid_request(
            "no sign-in is in progress here (it expired, or was already completed); start again",
        );
    };
    // RFC 6749 §10.12 / OpenID Connect Core §3.1.2.7: `state` binds the answer to this
    // browser's request.
    let state = q.get("state").map(String::as_str).unwrap_or("");
    if !gatehouse_core::secret::ct_eq(state.as_bytes(), flow.state.as_bytes()) {
        return ctx.invalid_request("the sign-in `state` does not match");
    }
    if !ctx
        .x
        .gw
        .oidc
        .consume_state(state, flow.expires_at, ctx.x.now)
    {
        return ctx.invalid_request("this sign-in response was already used");
    }
    // The provider's refusal (RFC 6749 §4.1.2.1): a page, never a loop back to it.
    if let Some(error) = q.get("error") {
        return match error.as_str() {
            "temporarily_unavailable" | "server_error" => {
                ctx.provider_unavailable(&format!("`{name}` answered `{error}`"))
            }
            "access_denied"
            | "login_required"
            | "consent_required"
            | "interaction_required"
            | "account_selection_required" => ctx.sign_in_refused(
                format!("{} refused the sign-in (`{error}`)", p.display_name),
                &flow.return_to,
            ),
            _ => ctx.invalid_request("the provider answered with an error"),
        };
    }
    let Some(code) = q.get("code").filter(|c| !c.is_empty()) else {
        return ctx.invalid_request("the provider's answer has no `code`");
    };
    let remote = ctx.x.gw.oidc.remote(p);
    let meta = match ctx.x.gw.oidc.meta(&remote).await {
        Ok(m) => m,
        Err(e) => return ctx.provider_unavailable(&format!("`{name}` discovery: {e}")),
    };
    let id_token = match ctx
        .x
        .gw
        .oidc
        .exchange(p, &meta, code, &flow.redirect_uri, &flow.verifier)
        .await
    {
        Ok(t) => t,
        Err(Exchange::InvalidGrant) => {
            return ctx.invalid_request(
                "the authorization code is not valid (already used, expired, or not ours)",
            );
        }
        Err(Exchange::Unavailable(e)) => {
            return ctx.provider_unavailable(&format!("`{name}` token endpoint: {e}"));
        }
    };
    let signed_in = match verify(ctx, p, &remote, &meta, id_token.expose(), &flow.nonce).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let user_name = match core_oidc::admit(p, &signed_in) {
        Ok(n) => n,
        Err(reason) => return ctx.sign_in_refused(reason, &flow.return_to),
    };
    ctx.identify(&user_name, Some(gatehouse_core::Scheme::Session));
    let user = match account(ctx, p, &user_name, &signed_in).await {
        Ok(u) => u,
        Err(resp) => return resp,
    };
    if let gatehouse_core::AccountState::Suspended { at, reason } = &user.status {
        return ctx.refuse(
            &Deny::AccountSuspended {
                suspended_at: *at,
                reason: reason.clone(),
            },
            &flow.return_to,
        );
    }
    let mfa = core_oidc::is_multi_factor(p, &signed_in);
    let auth_time = signed_in.auth_time.unwrap_or(ctx.x.now).min(ctx.x.now);
    // A step-up the provider did not perform is answered here, once, with the row-14 page
    // (sending the browser back again would loop).
    let stale = flow.max_age.is_some_and(|m| {
        ctx.x.now.saturating_sub(auth_time) > i64::try_from(m).unwrap_or(i64::MAX)
    });
    if (flow.want_mfa && !mfa) || stale {
        return ctx.refuse(
            &Deny::InsufficientUserAuthentication {
                acr_values: flow.want_mfa.then(|| "mfa".to_owned()),
                max_age: flow.max_age,
            },
            &flow.return_to,
        );
    }
    let how = SignIn {
        acr: if mfa { "mfa" } else { "sso" },
        auth_time,
        amr: signed_in.amr.clone(),
        provider: Some((
            name,
            session_prefix(name, signed_in.sid.as_deref(), &signed_in.subject),
        )),
    };
    start_session(ctx, &user, &how, true, &flow.return_to, secure).await
}

/// Verifies the ID token, refetching the provider's keys once for an unknown `kid`.
async fn verify(
    ctx: &AuthCtx,
    p: &LoginProviderConfig,
    remote: &Remote,
    meta: &Meta,
    token: &str,
    nonce: &str,
) -> Result<core_oidc::SignedIn, Response<Body>> {
    let check = core_oidc::IdTokenCheck {
        provider: p,
        nonce,
        now: ctx.x.now,
    };
    let mut refetch = false;
    loop {
        let keys = ctx
            .x
            .gw
            .oidc
            .keys(remote, meta, refetch)
            .await
            .map_err(|()| ctx.provider_unavailable(&format!("`{}` JWKS", p.name)))?;
        match core_oidc::verify_id_token(&keys, token, &check) {
            Ok(s) => return Ok(s),
            Err(TokenError::UnknownKid) if !refetch => refetch = true,
            Err(e) => {
                return Err(ctx.invalid_request(&format!("the ID token is not valid: {e}")));
            }
        }
    }
}

/// The local account for a sign-in, per the provider's `users` policy; mapped roles,
/// tenant and attributes are written to it (a provisioned account is created with them).
async fn account(
    ctx: &AuthCtx,
    p: &LoginProviderConfig,
    name: &str,
    s: &core_oidc::SignedIn,
) -> Result<gatehouse_store::User, Response<Body>> {
    let store = &ctx.x.gw.store;
    let existing = store
        .get_user(name)
        .await
        .map_err(|e| ctx.unavailable(&e))?;
    let user = match (existing, p.users) {
        (Some(u), _) => u,
        (None, UserPolicy::Provision) => {
            let new = NewUser {
                name: name.to_owned(),
                password_hash: None,
                roles: s.roles.clone().unwrap_or_default(),
                tenant: s.tenant.clone(),
            };
            match store.create_user(new, ctx.x.now).await {
                Ok(u) => {
                    tracing::info!(user = %name, provider = %p.name, "user provisioned by a login provider");
                    u
                }
                // Another node provisioned the same user a moment ago.
                Err(StoreError::Conflict { .. }) => store
                    .get_user(name)
                    .await
                    .map_err(|e| ctx.unavailable(&e))?
                    .ok_or_else(|| ctx.unavailable(&"user vanished after a conflict"))?,
                Err(e) => return Err(ctx.unavailable(&e)),
            }
        }
        (None, UserPolicy::Link | UserPolicy::Existing) => {
            return Err(ctx.sign_in_refused(
                format!("there is no account `{name}` here; ask an administrator to create it"),
                "/",
            ));
        }
    };
    let mut user = user;
    if let Some(roles) = &s.roles
        && *roles != user.roles
    {
        store
            .set_roles(name, roles.clone())
            .await
            .map_err(|e| ctx.unavailable(&e))?;
        user.roles.clone_from(roles);
    }
    if p.tenant_claim.is_some() && s.tenant != user.tenant {
        store
            .set_tenant(name, s.tenant.clone())
            .await
            .map_err(|e| ctx.unavailable(&e))?;
        user.tenant.clone_from(&s.tenant);
    }
    follow_attributes(ctx, p, &mut user, &s.attributes).await?;
    Ok(user)
}

/// Makes the account's attributes of the names the provider maps follow the ID token: a
/// mapped claim sets its attribute, one the token no longer carries removes it (the
/// provider is their source). Written through the store's attribute API and announced with
/// the cluster event `gatehouse user set` sends, so every node sees it; nothing is written
/// when nothing changed.
async fn follow_attributes(
    ctx: &AuthCtx,
    p: &LoginProviderConfig,
    user: &mut gatehouse_store::User,
    mapped: &gatehouse_core::attributes::Attributes,
) -> Result<(), Response<Body>> {
    // A claim too large to store is taken as absent (a sign-in is not refused for it).
    let fits = |(k, v): &(&String, &gatehouse_core::attributes::Value)| {
        let ok = gatehouse_core::attributes::check_size(k, v);
        if let Err(e) = &ok {
            tracing::warn!(provider = %p.name, user = %user.name, "mapped claim not stored: {e}");
        }
        ok.is_ok()
    };
    let kept: gatehouse_core::attributes::Attributes = mapped
        .iter()
        .filter(fits)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let set: gatehouse_core::attributes::Attributes = kept
        .iter()
        .filter(|(k, v)| user.attributes.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let unset: Vec<String> = p
        .attributes
        .iter()
        .map(|(name, _)| name)
        .filter(|name| !kept.contains_key(*name) && user.attributes.contains_key(*name))
        .cloned()
        .collect();
    if set.is_empty() && unset.is_empty() {
        return Ok(());
    }
    let attributes = ctx
        .x
        .gw
        .store
        .update_attributes(&user.name, set, unset)
        .await
        .map_err(|e| ctx.unavailable(&e))?;
    ctx.x
        .gw
        .attributes_changed(user.name.clone(), attributes.clone());
    user.attributes = attributes;
    Ok(())
}

/// 16 base64url characters naming `value` of provider `name` in session ids.
fn tag(name: &str, value: &str) -> String {
    let h = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([0])
        .chain_update(value.as_bytes())
        .finalize();
    let mut s = URL_SAFE_NO_PAD.encode(h);
    s.truncate(16);
    s
}

/// The start of the id of a session signed in through provider `name`:
/// `o_` + tag(provider session id) + tag(subject) + `_`. Back-channel logout finds the
/// sessions a logout token names by it, without a table of its own.
pub fn session_prefix(name: &str, sid: Option<&str>, subject: &str) -> String {
    format!(
        "o_{}{}_",
        tag(name, sid.unwrap_or("")),
        tag(name, &format!("sub:{subject}"))
    )
}

/// Where a browser signed in through provider `name` goes after `/auth/logout`: the
/// provider's `end_session_endpoint` (OpenID Connect RP-Initiated Logout 1.0 §2), when it
/// has one and it can be had now.
pub(super) async fn logout_location(
    ctx: &AuthCtx,
    name: &str,
    parts: &http::request::Parts,
    secure: bool,
) -> Option<String> {
    let p = provider(&ctx.x.rt, name)?;
    let remote = ctx.x.gw.oidc.remote(p);
    let meta = ctx.x.gw.oidc.meta(&remote).await.ok()?;
    let endpoint = meta.end_session_endpoint?;
    let back = match &p.post_logout_redirect_uri {
        Some(u) => u.clone(),
        None => format!("{}/", origin(&parts.headers, secure)?),
    };
    Some(with_query(
        &endpoint,
        &[
            ("client_id", p.client_id.as_str()),
            ("post_logout_redirect_uri", back.as_str()),
        ],
    ))
}

/// Step-up at the provider (RFC 9470, done for the browser): a browser whose provider
/// session lacks the route's `mfa` or `max_age` is sent back to that provider instead of
/// getting the row-14 page. Anything else (an API client, a password session, a hidden
/// route) is left to the contract's 401.
pub fn step_up(
    rt: &Runtime,
    headers: &HeaderMap,
    deny: &Deny,
    html: bool,
    hidden: bool,
    return_to: &str,
    gw: &Gateway,
) -> Option<Response<Body>> {
    let Deny::InsufficientUserAuthentication {
        acr_values,
        max_age,
    } = deny
    else {
        return None;
    };
    if !html || hidden || headers.contains_key(http::header::AUTHORIZATION) {
        return None;
    }
    let now = crate::clock::now();
    let session = crate::session::open(&gw.secrets, crate::session::cookie_from(headers)?, now)?;
    let name = session.provider?;
    provider(rt, &name)?;
    let mut url = format!(
        "/auth/oidc/{name}/start?return_to={}",
        form_encode(safe_return_to(Some(return_to)))
    );
    if let Some(a) = acr_values {
        url.push_str("&acr_values=");
        url.push_str(&form_encode(a));
    }
    if let Some(m) = max_age {
        url.push_str(&format!("&max_age={m}"));
    }
    Some(see_other(&url))
}

/// `POST /auth/oidc/{name}/backchannel-logout` (`logout_token=…`, OpenID Connect
/// Back-Channel Logout 1.0 §2.5): 200 once the sessions it names are revoked everywhere,
/// 400 for a token that does not verify (§2.8).
pub async fn backchannel_logout(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Path(name): Path<String>,
    req: Request<Body>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let ctx = AuthCtx::new(gw, &parts.headers, "/auth/oidc/backchannel-logout", peer);
    let mut resp = backchannel_inner(&ctx, &name, &parts.headers, body).await;
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    ctx.observe(&resp, "signed_out");
    resp
}

async fn backchannel_inner(
    ctx: &AuthCtx,
    name: &str,
    headers: &HeaderMap,
    body: Body,
) -> Response<Body> {
    let Some(p) = provider(&ctx.x.rt, name) else {
        return ctx.refuse(&Deny::NotFound, "/");
    };
    let fields = match super::body::read(headers, body).await {
        Ok(f) if f.form => f,
        Ok(_) => return ctx.invalid_request("send `logout_token` as a form"),
        Err(d) => return ctx.invalid_request(d),
    };
    let Some(token) = fields.get("logout_token") else {
        return ctx.invalid_request("`logout_token` is required");
    };
    let remote = ctx.x.gw.oidc.remote(p);
    let meta = match ctx.x.gw.oidc.meta(&remote).await {
        Ok(m) => m,
        Err(e) => return ctx.provider_unavailable(&format!("`{name}` discovery: {e}")),
    };
    let mut refetch = false;
    let logout = loop {
        let keys = match ctx.x.gw.oidc.keys(&remote, &meta, refetch).await {
            Ok(k) => k,
            Err(()) => return ctx.provider_unavailable(&format!("`{name}` JWKS")),
        };
        match core_oidc::verify_logout_token(&keys, token, p, ctx.x.now) {
            Ok(t) => break t,
            Err(TokenError::UnknownKid) if !refetch => refetch = true,
            Err(e) => {
                return ctx.invalid_request(&format!("the logout token is not valid: {e}"));
            }
        }
    };
    let sessions = match ctx.x.gw.store.list_sessions(None, false).await {
        Ok(s) => s,
        Err(e) => return ctx.unavailable(&e),
    };
    let by_sid = logout.sid.as_deref().map(|sid| tag(name, sid));
    let by_sub = logout
        .subject
        .as_deref()
        .map(|sub| tag(name, &format!("sub:{sub}")));
    // §2.5: a `sid` names that provider session; only a `sub` names all of the subject's.
    // A session whose ID token carried no `sid` is found by its subject.
    let no_sid = tag(name, "");
    let named = |id: &str| {
        let (Some(s), Some(u)) = (id.get(2..18), id.get(18..34)) else {
            return false;
        };
        id.starts_with("o_")
            && (by_sid.as_deref() == Some(s)
                || by_sub.as_deref() == Some(u) && (by_sid.is_none() || s == no_sid))
    };
    let mut revoked = 0u32;
    for s in sessions.iter().filter(|s| named(&s.id)) {
        if let Err(e) = ctx
            .x
            .gw
            .store
            .revoke_session(&s.id, "back-channel logout", ctx.x.now)
            .await
        {
            return ctx.unavailable(&e);
        }
        ctx.x.gw.revoked(s.id.clone(), s.expires_at);
        ctx.identify(&s.user, None);
        revoked += 1;
    }
    tracing::info!(provider = %name, sessions = revoked, request_id = %ctx.x.request_id, "back-channel logout");
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::OK;
    ctx.x.stamp(resp.headers_mut());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_prefixes_tell_provider_sessions_and_subjects_apart() {
        let a = session_prefix("corp", Some("sid-1"), "alice");
        assert_eq!(a.len(), 35);
        assert!(a.starts_with("o_") && a.ends_with('_'));
        assert_eq!(a.get(2..18), Some(tag("corp", "sid-1").as_str()));
        assert_ne!(a, session_prefix("corp", Some("sid-2"), "alice"));
        assert_ne!(a, session_prefix("other", Some("sid-1"), "alice"));
        assert_eq!(
            a.get(18..34),
            session_prefix("corp", None, "alice").get(18..34)
        );
    }

    #[test]
    fn authorization_urls_keep_the_endpoints_query() {
        assert_eq!(
            with_query("https://op/auth?x=1", &[("scope", "openid email")]),
            "https://op/auth?x=1&scope=openid+email"
        );
        assert_eq!(
            with_query("https://op/auth", &[("redirect_uri", "https://gw/cb")]),
            "https://op/auth?redirect_uri=https%3A%2F%2Fgw%2Fcb"
        );
    }
}
