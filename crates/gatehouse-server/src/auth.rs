//! The token service (design §2 "Tokens and sessions"): `/auth/login`, `/auth/mfa`,
//! `/auth/refresh`, `/auth/logout`, and the browser session cookie.
//!
//! Refusals go through core's table like every other answer: wrong credentials are row 11,
//! a suspended account row 13, a bad refresh token row 8 (`invalid_token`), and a user with
//! MFA gets 401 `mfa_required` with an `mfa_token` to finish the login with a TOTP code.

mod body;
pub mod oidc;

/// The MFA step and the session cookie are services of the gateway's; the endpoints here
/// use them, and they keep their paths under `auth`.
pub use crate::{mfa, session};

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_core::deny::Deny;
use gatehouse_core::secret::SecretString;
use gatehouse_store::{NewSession, RotateOutcome, Session, User};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use sha2::{Digest as _, Sha256};

use crate::exchange::{Exchange, Seen};
use crate::gateway::{Gateway, Runtime};
use crate::tokens::{TokenRequest, issue};

/// How long a half-finished login (password right, TOTP code pending) stays open.
const MFA_TOKEN_TTL: i64 = 300;
const REFRESH_PREFIX: &str = "ghr_";

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

fn new_refresh_token() -> String {
    format!(
        "{REFRESH_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(crate::random::random_bytes::<32>())
    )
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

/// Where a browser goes after signing in: a same-origin path only (no `//host`, no scheme).
pub fn safe_return_to(to: Option<&str>) -> &str {
    match to {
        Some(t)
            if t.starts_with('/') && !t.starts_with("//") && !t.contains(['\\', '\r', '\n']) =>
        {
            t
        }
        _ => "/",
    }
}

/// Per-request context of an auth endpoint: its [`Exchange`] and what it saw. The endpoint's
/// steps share it by reference across their awaits, hence the lock around [`Seen`].
struct AuthCtx {
    x: Exchange,
    ip: IpAddr,
    seen: Mutex<Seen<'static>>,
}

impl AuthCtx {
    fn new(
        gw: Arc<Gateway>,
        headers: &HeaderMap,
        endpoint: &'static str,
        peer: std::net::SocketAddr,
    ) -> Self {
        let rt = gw.runtime();
        let ip = crate::net::client_ip(peer, headers, &rt.config.server.trusted_proxies);
        let mut x = Exchange::new(gw, rt, headers, None);
        // The sign-in endpoints keep the connection of a throttled client (only the
        // proxied routes close it).
        x.http1 = false;
        let mut seen = Seen::new(
            Instant::now(),
            Cow::Borrowed("POST"),
            Cow::Borrowed(endpoint),
        );
        seen.ip = Some(ip);
        // `/auth/login` is recorded as the route `auth/login`.
        seen.endpoint = Some(endpoint.trim_start_matches('/'));
        Self {
            x,
            ip,
            seen: Mutex::new(seen),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen<'static>> {
        match self.seen.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Records who the request proved to be (audit).
    fn identify(&self, subject: &str, scheme: Option<gatehouse_core::Scheme>) {
        let mut seen = self.seen();
        seen.subject = Some(subject.to_owned());
        seen.scheme = scheme;
    }

    /// Hands the finished request to the observer; `pass` labels a success.
    fn observe(&self, resp: &Response<Body>, pass: &'static str) {
        let mut seen = self.seen();
        seen.pass = pass;
        self.x.observe(&seen, resp);
    }

    /// Row 4's tarpit: a locked client's answer waits here, after it was observed.
    async fn tarpit(&self) {
        // A copy: the record's lock is not held across the wait.
        let deny = self.seen().deny.as_ref().map(|(d, _)| d.clone());
        self.x.tarpit(deny.as_ref()).await;
    }

    /// A refusal through core's table (the `[defaults]` schemes give the challenges).
    fn refuse(&self, deny: &Deny, return_to: &str) -> Response<Body> {
        self.x
            .refuse(&mut self.seen(), None, deny.clone(), false, return_to)
    }

    fn invalid_request(&self, detail: &str) -> Response<Body> {
        self.refuse(
            &Deny::InvalidRequest {
                detail: detail.to_owned(),
            },
            "/",
        )
    }

    fn unavailable(&self, e: &dyn std::fmt::Display) -> Response<Body> {
        tracing::error!(error = %e, request_id = %self.x.request_id, "store unavailable in the token service");
        self.refuse(
            &Deny::AuthUnavailable {
                retry_after: crate::unavailable::RETRY_AFTER_UNAVAILABLE,
            },
            "/",
        )
    }
}

/// The OAuth-shaped token response (RFC 6749 §5.1), `Cache-Control: no-store`.
fn token_response(ctx: &AuthCtx, access: &str, refresh: &str, scope: &str) -> Response<Body> {
    let mut body = serde_json::json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ctx.x.rt.config.tokens.access_ttl.as_secs(),
        "refresh_token": refresh,
    });
    if !scope.is_empty() {
        body["scope"] = serde_json::Value::String(scope.to_owned());
    }
    let mut resp = crate::exchange::json_response(StatusCode::OK, body.to_string());
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    ctx.x.stamp(resp.headers_mut());
    resp
}

/// How a session was signed in to, beyond the account.
struct SignIn<'a> {
    /// `pwd`, `mfa` or `sso`.
    acr: &'a str,
    /// When the user authenticated (the provider's `auth_time` for a provider sign-in).
    auth_time: i64,
    /// How (RFC 8176 values): ours for a local sign-in, the provider's `amr` for a provider
    /// sign-in. Kept with the session and put in the tokens minted from it.
    amr: Vec<String>,
    /// The `[[login_providers]]` entry, and the prefix of the session id that lets
    /// back-channel logout find the session (see [`oidc::session_prefix`]).
    provider: Option<(&'a str, String)>,
}

impl<'a> SignIn<'a> {
    /// A password sign-in (`pwd`), or one completed with a TOTP code (`mfa`: RFC 8176 `pwd`,
    /// `otp` and `mfa`).
    fn local(acr: &'a str, now: i64) -> Self {
        let amr: &[&str] = if acr == "mfa" {
            &["pwd", "otp", "mfa"]
        } else {
            &["pwd"]
        };
        Self {
            acr,
            auth_time: now,
            amr: amr.iter().map(|m| (*m).to_owned()).collect(),
            provider: None,
        }
    }
}

/// Starts a session for `user` and answers with tokens (JSON) or a cookie and a redirect
/// (HTML form).
async fn start_session(
    ctx: &AuthCtx,
    user: &User,
    how: &SignIn<'_>,
    form: bool,
    return_to: &str,
    secure: bool,
) -> Response<Body> {
    let (acr, auth_time) = (how.acr, how.auth_time);
    let tokens = &ctx.x.rt.config.tokens;
    let session_id = format!(
        "{}{}",
        how.provider
            .as_ref()
            .map_or("s_", |(_, prefix)| prefix.as_str()),
        URL_SAFE_NO_PAD.encode(crate::random::random_bytes::<18>())
    );
    let refresh = new_refresh_token();
    let expires_at = ctx.x.now + secs(tokens.refresh_ttl);
    let created = ctx
        .x
        .gw
        .store
        .create_session(
            NewSession {
                id: session_id.clone(),
                user: user.name.clone(),
                acr: acr.to_owned(),
                auth_time,
                amr: how.amr.clone(),
                expires_at,
                first_refresh: sha256(&refresh),
            },
            ctx.x.now,
        )
        .await;
    if let Err(e) = created {
        return ctx.unavailable(&e);
    }
    if form {
        let cookie = session::cookie_value(
            &ctx.x.gw.secrets,
            &session_id,
            &user.name,
            acr,
            auth_time,
            expires_at,
            how.provider.as_ref().map(|(name, _)| *name),
        );
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::SEE_OTHER;
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(return_to) {
            h.insert(http::header::LOCATION, v);
        }
        if let Ok(v) = HeaderValue::from_str(&session::set_cookie(
            &cookie,
            expires_at - ctx.x.now,
            secure,
        )) {
            h.insert(http::header::SET_COOKIE, v);
        }
        h.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        ctx.x.stamp(resp.headers_mut());
        return resp;
    }
    let scopes: Vec<String> = Vec::new();
    let access = issue(
        &ctx.x.gw.own_keys(),
        tokens,
        &TokenRequest {
            user,
            scopes: &scopes,
            acr,
            auth_time,
            amr: &how.amr,
            session_id: Some(&session_id),
            now: ctx.x.now,
            ttl: tokens.access_ttl,
        },
    );
    match access {
        Ok(a) => token_response(ctx, &a, &refresh, ""),
        Err(e) => ctx.unavailable(&e),
    }
}

/// Whether the browser reached us over https: directly (the request came over our TLS), or
/// per a trusted proxy's `X-Forwarded-Proto: https`.
fn is_secure(rt: &Runtime, peer: std::net::SocketAddr, parts: &http::request::Parts) -> bool {
    parts.extensions.get::<crate::tls::OverTls>().is_some()
        || crate::net::is_trusted(peer.ip(), &rt.config.server.trusted_proxies)
            && parts
                .headers
                .get("x-forwarded-proto")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// CORS preflight of the `/auth/*` endpoints (single-page apps on another origin log in
/// with `fetch`), answered per `[cors]` like row 23.
pub async fn preflight(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response<Body> {
    crate::cors::preflight(&gw.runtime().config.cors, req.headers())
}

/// Reads the body of a sign-in step (login or MFA): the fields and the same-origin
/// `return_to`; a browser's form post must come from our own origin (login CSRF).
async fn read_sign_in(
    ctx: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> Result<(body::Fields, String), Response<Body>> {
    let fields = body::read(headers, body)
        .await
        .map_err(|d| ctx.invalid_request(d))?;
    ctx.x.set_form_post(fields.form);
    let return_to = safe_return_to(fields.get("return_to")).to_owned();
    if fields.form && !session::same_origin(headers) {
        return Err(ctx.refuse(&Deny::CsrfRejected, &return_to));
    }
    Ok((fields, return_to))
}

/// `POST /auth/login` (JSON or form: `username`, `password`, `return_to`).
pub async fn login(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    req: Request<Body>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let ctx = AuthCtx::new(gw, &parts.headers, "/auth/login", peer);
    let resp = login_inner(&ctx, peer, parts, body).await;
    ctx.observe(&resp, "signed_in");
    ctx.tarpit().await;
    resp
}

async fn login_inner(
    ctx: &AuthCtx,
    peer: std::net::SocketAddr,
    parts: http::request::Parts,
    body: Body,
) -> Response<Body> {
    let (fields, return_to) = match read_sign_in(ctx, &parts.headers, body).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    if !ctx.x.rt.config.server.password_sign_in {
        // `[server] password_sign_in = false`: sign-in is left to the login providers.
        return ctx.refuse(&Deny::NotFound, &return_to);
    }
    let (Some(username), Some(password)) = (fields.get("username"), fields.get("password")) else {
        return ctx.invalid_request("`username` and `password` are required");
    };
    // Row 4: a locked client or account is refused before any password is hashed.
    let ip = ctx.ip;
    let defense = &ctx.x.rt.defense;
    let locked = match defense.ip_locked(ip, ctx.x.now) {
        Some(retry) => Some(retry),
        None => defense.account_locked(username, ip, ctx.x.now).await,
    };
    if let Some(retry_after) = locked {
        return ctx.refuse(&Deny::TooManyAttempts { retry_after }, &return_to);
    }
    let user = match ctx
        .x
        .gw
        .check_password(username, SecretString::new(password.to_owned()))
        .await
    {
        Ok(u) => {
            defense.success(ip, username, ctx.x.now);
            ctx.identify(&u.name, None);
            u
        }
        Err(d) => {
            if crate::gateway::counts_as_failure(&d) {
                defense.failure(ip, Some(username), ctx.x.now).await;
            }
            return ctx.refuse(&d, &return_to);
        }
    };
    if let gatehouse_core::AccountState::Suspended { at, reason } = &user.status {
        return ctx.refuse(
            &Deny::AccountSuspended {
                suspended_at: *at,
                reason: reason.clone(),
            },
            &return_to,
        );
    }
    if user.mfa_secret.is_some() {
        let token = mfa::mfa_token(&ctx.x.gw.secrets, &user.name, ctx.x.now + MFA_TOKEN_TTL);
        return ctx.refuse(&Deny::MfaRequired { mfa_token: token }, &return_to);
    }
    let secure = is_secure(&ctx.x.rt, peer, &parts);
    let how = SignIn::local("pwd", ctx.x.now);
    start_session(ctx, &user, &how, fields.form, &return_to, secure).await
}

/// `POST /auth/mfa` (`mfa_token`, `code`, `return_to`): finishes a login with a TOTP code.
pub async fn mfa_handler(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    req: Request<Body>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let ctx = AuthCtx::new(gw, &parts.headers, "/auth/mfa", peer);
    let resp = mfa_inner(&ctx, peer, parts, body).await;
    ctx.observe(&resp, "signed_in");
    ctx.tarpit().await;
    resp
}

async fn mfa_inner(
    ctx: &AuthCtx,
    peer: std::net::SocketAddr,
    parts: http::request::Parts,
    body: Body,
) -> Response<Body> {
    let (fields, return_to) = match read_sign_in(ctx, &parts.headers, body).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let (Some(token), Some(code)) = (fields.get("mfa_token"), fields.get("code")) else {
        return ctx.invalid_request("`mfa_token` and `code` are required");
    };
    let ip = ctx.ip;
    if let Some(retry_after) = ctx.x.rt.defense.ip_locked(ip, ctx.x.now) {
        return ctx.refuse(&Deny::TooManyAttempts { retry_after }, &return_to);
    }
    let gw = &ctx.x.gw;
    let user = match mfa::complete(
        &gw.secrets,
        &gw.mfa_attempts,
        gw.store.as_ref(),
        token,
        code,
        ctx.x.now,
    )
    .await
    {
        Ok(u) => {
            ctx.identify(&u.name, None);
            u
        }
        Err(d) => {
            if crate::gateway::counts_as_failure(&d) {
                ctx.x.rt.defense.failure(ip, None, ctx.x.now).await;
            }
            return ctx.refuse(&d, &return_to);
        }
    };
    let secure = is_secure(&ctx.x.rt, peer, &parts);
    let how = SignIn::local("mfa", ctx.x.now);
    start_session(ctx, &user, &how, fields.form, &return_to, secure).await
}

/// `POST /auth/refresh` (`refresh_token`): rotates the refresh token in one transaction.
pub async fn refresh(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    req: Request<Body>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let ctx = AuthCtx::new(gw, &parts.headers, "/auth/refresh", peer);
    let resp = refresh_inner(&ctx, parts, body).await;
    ctx.observe(&resp, "refreshed");
    resp
}

async fn refresh_inner(ctx: &AuthCtx, parts: http::request::Parts, body: Body) -> Response<Body> {
    let fields = match body::read(&parts.headers, body).await {
        Ok(f) => f,
        Err(d) => return ctx.invalid_request(d),
    };
    ctx.x.set_form_post(fields.form);
    let Some(presented) = fields.get("refresh_token") else {
        return ctx.invalid_request("`refresh_token` is required");
    };
    let bad = |detail: &str| Deny::InvalidToken {
        detail: detail.to_owned(),
    };
    if !presented.starts_with(REFRESH_PREFIX) {
        return ctx.refuse(&bad("refresh token is not valid"), "/");
    }
    let tokens = &ctx.x.rt.config.tokens;
    let next = new_refresh_token();
    let outcome = ctx
        .x
        .gw
        .store
        .rotate_refresh(
            sha256(presented),
            sha256(&next),
            ctx.x.now,
            ctx.x.now + secs(tokens.refresh_ttl),
        )
        .await;
    let session: Session = match outcome {
        Ok(RotateOutcome::Rotated(s)) => s,
        Ok(RotateOutcome::Reused { session }) => {
            tracing::warn!(
                session = %session.id,
                user = %session.user,
                request_id = %ctx.x.request_id,
                "refresh token reused: the whole session is revoked (suspected theft)"
            );
            ctx.x.gw.revoked(session.id.clone(), session.expires_at);
            return ctx.refuse(
                &bad("refresh token was already used; the session is revoked (suspected theft)"),
                "/",
            );
        }
        Ok(RotateOutcome::Expired) => return ctx.refuse(&bad("refresh token expired"), "/"),
        Ok(RotateOutcome::Revoked) => {
            return ctx.refuse(&bad("refresh token has been revoked"), "/");
        }
        Ok(RotateOutcome::Unknown) => return ctx.refuse(&bad("refresh token is not valid"), "/"),
        Err(e) => return ctx.unavailable(&e),
    };
    ctx.identify(&session.user, None);
    let user = match ctx.x.gw.store.get_user(&session.user).await {
        Ok(Some(u)) => u,
        Ok(None) => return ctx.refuse(&bad("refresh token is not valid"), "/"),
        Err(e) => return ctx.unavailable(&e),
    };
    if let gatehouse_core::AccountState::Suspended { at, reason } = &user.status {
        return ctx.refuse(
            &Deny::AccountSuspended {
                suspended_at: *at,
                reason: reason.clone(),
            },
            "/",
        );
    }
    let scopes: Vec<String> = Vec::new();
    let access = issue(
        &ctx.x.gw.own_keys(),
        tokens,
        &TokenRequest {
            user: &user,
            scopes: &scopes,
            acr: &session.acr,
            auth_time: session.auth_time,
            amr: &session.amr,
            session_id: Some(&session.id),
            now: ctx.x.now,
            ttl: tokens.access_ttl,
        },
    );
    match access {
        Ok(a) => token_response(ctx, &a, &next, ""),
        Err(e) => ctx.unavailable(&e),
    }
}

/// `POST /auth/logout`: revokes the session of the presented access token or session
/// cookie — its refresh family and, through the session id, every access token of it
/// (row 10 afterwards, on every node) — and the token's own `jti`.
pub async fn logout(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    req: Request<Body>,
) -> Response<Body> {
    let (parts, _body) = req.into_parts();
    let ctx = AuthCtx::new(gw, &parts.headers, "/auth/logout", peer);
    let resp = logout_inner(&ctx, peer, &parts).await;
    ctx.observe(&resp, "signed_out");
    resp
}

async fn logout_inner(
    ctx: &AuthCtx,
    peer: std::net::SocketAddr,
    parts: &http::request::Parts,
) -> Response<Body> {
    let auth: Vec<&[u8]> = parts
        .headers
        .get_all(http::header::AUTHORIZATION)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    let cookie = session::cookie_from(&parts.headers);
    let browser = auth.is_empty() && cookie.is_some();
    let mut provider = None;
    let (sid, jti, exp) = if browser {
        if !session::same_origin(&parts.headers) {
            return ctx.refuse(&Deny::CsrfRejected, "/");
        }
        match cookie.and_then(|c| session::open(&ctx.x.gw.secrets, c, ctx.x.now)) {
            Some(c) => {
                ctx.identify(&c.user, Some(gatehouse_core::Scheme::Session));
                provider = c.provider;
                (Some(c.session_id), None, c.expires_at)
            }
            // An expired or foreign cookie: nothing to revoke; clear it anyway.
            None => (None, None, ctx.x.now),
        }
    } else {
        let extracted = gatehouse_core::credential::extract(&auth, &[], None);
        let token = match extracted {
            gatehouse_core::credential::Extracted::One(gatehouse_core::Credential::Bearer(t)) => t,
            gatehouse_core::credential::Extracted::None => {
                return ctx.refuse(&Deny::MissingCredentials, "/");
            }
            gatehouse_core::credential::Extracted::Malformed { detail } => {
                return ctx.invalid_request(detail);
            }
            _ => {
                return ctx.refuse(
                    &Deny::UnsupportedScheme {
                        presented: "other".into(),
                    },
                    "/",
                );
            }
        };
        match ctx
            .x
            .gw
            .verify_token(&ctx.x.rt, token.expose(), ctx.x.now)
            .await
        {
            Ok(p) if p.issuer.as_deref() == Some(crate::tokens::OWN_ISSUER) => {
                ctx.identify(&p.subject, Some(gatehouse_core::Scheme::Bearer));
                if ctx
                    .x
                    .gw
                    .revocations
                    .is_revoked(p.token_id.as_deref(), p.session_id.as_deref())
                {
                    return ctx.refuse(&Deny::TokenRevoked, "/");
                }
                (p.session_id, p.token_id, p.expires_at.unwrap_or(ctx.x.now))
            }
            Ok(_) => {
                return ctx.invalid_request("only Gatehouse's own tokens can be logged out here");
            }
            Err(d) => return ctx.refuse(&d, "/"),
        }
    };
    if let Some(sid) = &sid {
        if let Err(e) = ctx
            .x
            .gw
            .store
            .revoke_session(sid, "logout", ctx.x.now)
            .await
        {
            return ctx.unavailable(&e);
        }
        ctx.x.gw.revoked(
            sid.clone(),
            ctx.x.now + secs(ctx.x.rt.config.tokens.refresh_ttl),
        );
    }
    if let Some(jti) = jti {
        let rev = gatehouse_store::Revocation {
            id: jti.clone(),
            kind: gatehouse_store::RevocationKind::Token,
            expires_at: exp,
            reason: "logout".to_owned(),
        };
        if let Err(e) = ctx.x.gw.store.revoke_token(rev, ctx.x.now).await {
            return ctx.unavailable(&e);
        }
        ctx.x.gw.revoked(jti, exp);
    }
    let secure = is_secure(&ctx.x.rt, peer, parts);
    let mut resp = Response::new(Body::empty());
    if browser {
        *resp.status_mut() = StatusCode::SEE_OTHER;
        // A provider sign-in also ends at the provider (RP-initiated logout), when it can.
        let location = match &provider {
            Some(p) => oidc::logout_location(ctx, p, parts, secure).await,
            None => None,
        };
        let location = location
            .and_then(|l| HeaderValue::from_str(&l).ok())
            .unwrap_or(HeaderValue::from_static("/"));
        resp.headers_mut().insert(http::header::LOCATION, location);
        if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(secure)) {
            resp.headers_mut().insert(http::header::SET_COOKIE, v);
        }
    } else {
        *resp.status_mut() = StatusCode::NO_CONTENT;
    }
    ctx.x.stamp(resp.headers_mut());
    resp
}
