//! The admin API's endpoints (JSON under `/admin/api/`; the OpenAPI document in
//! [`super::openapi`] lists each with its parameters). Every handler runs after the guard:
//! the [`Actor`] is in the request's extensions, and each change is an audit record naming
//! it ([`AdminState::record_change`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Extension, Path, Query, State};
use axum::routing::{delete, get, post};
use gatehouse_core::decision::Decision;
use gatehouse_core::path::normalize;
use gatehouse_core::render::rfc3339;
use gatehouse_store::{AuditEntry, AuditKind, AuditQuery, NewUser, StoreError};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::keys::{KeyError, KeySpec};
use super::users::{key_json, session_json, user_json, valid_name};
use super::{Actor, AdminState};
use crate::cluster::{Event, LockKind, UserChange};
use crate::gateway::{Gateway, RequestView};

type St = State<Arc<AdminState>>;
type Answer = Result<Response<Body>, ApiError>;

/// The admin API's routes (the guard is layered on by [`super::router`]).
pub fn routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/admin/api/users", get(list_users).post(create_user))
        .route(
            "/admin/api/users/{name}",
            get(get_user).patch(change_user).delete(delete_user),
        )
        .route("/admin/api/users/{name}/suspend", post(suspend_user))
        .route("/admin/api/users/{name}/unsuspend", post(unsuspend_user))
        .route("/admin/api/users/{name}/reset-mfa", post(reset_mfa))
        .route("/admin/api/users/{name}/sign-out", post(sign_out_user))
        .route("/admin/api/keys", get(list_keys).post(create_key))
        .route("/admin/api/keys/revoke", post(revoke_key))
        .route("/admin/api/keys/{id}", delete(revoke_key_by_id))
        .route("/admin/api/sessions", get(list_sessions))
        .route("/admin/api/sessions/{id}", delete(revoke_session))
        .route("/admin/api/locks", get(list_locks))
        .route("/admin/api/locks/{kind}/{id}", delete(unlock))
        .route("/admin/api/audit", get(audit))
        .route("/admin/api/audit/export", get(audit_export))
        .route("/admin/api/stats", get(stats))
        .route("/admin/api/stats/top", get(top))
        .route("/admin/api/alerts", get(alerts))
        .route("/admin/api/alerts/{seq}/ack", post(ack_alert))
        .route("/admin/api/config", get(running_config))
        .route("/admin/api/explain", post(explain))
        .route("/admin/api/me", get(me))
        .route("/admin/api/live", get(live))
        .route("/admin", get(super::console::page))
        .route("/admin/", get(super::console::page))
        // Unknown paths are guarded too: a non-administrator learns nothing of what exists
        // (403 everywhere), an administrator gets a 404.
        .route("/admin/api/{*rest}", axum::routing::any(unknown))
}

async fn unknown() -> Answer {
    Err(ApiError::not_found("no such admin API endpoint"))
}

// --- answers ---------------------------------------------------------------------------

/// A failed admin operation (not a refusal: the caller is an administrator): an RFC 9457
/// problem with the members of design §2 but `request_id` (it is in `X-Request-Id`).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: &'static str,
    detail: String,
}

impl ApiError {
    fn invalid(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            detail: detail.into(),
        }
    }
    fn not_found(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            error: "not_found",
            detail: detail.into(),
        }
    }
    fn conflict(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            error: "conflict",
            detail: detail.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what, key } => Self::not_found(format!("no {what} `{key}`")),
            StoreError::Conflict { what, key } => {
                Self::conflict(format!("the {what} `{key}` exists already"))
            }
            e @ StoreError::Invalid { .. } => Self::invalid(e.to_string()),
            e => {
                tracing::error!(error = %e, "admin API: store failed");
                Self {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    error: "auth_unavailable",
                    detail: "The store is unavailable; try again shortly.".into(),
                }
            }
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::NoUser(u) => Self::not_found(format!("no user `{u}`")),
            KeyError::NoKey => Self::not_found("no API key matches"),
            KeyError::Store(e) => e.into(),
        }
    }
}

impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> Response<Body> {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = json!({
            "type": format!("urn:gatehouse:problem:{}", self.error),
            "title": title,
            "status": self.status.as_u16(),
            "detail": self.detail,
            "error": self.error,
            "message": self.detail,
            "timestamp": rfc3339(crate::clock::now()),
        });
        let mut r = Response::new(Body::from(body.to_string()));
        *r.status_mut() = self.status;
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        r
    }
}

fn json_with(status: StatusCode, v: &Value) -> Response<Body> {
    crate::exchange::json_response(status, v.to_string())
}

fn ok(v: &Value) -> Answer {
    Ok(json_with(StatusCode::OK, v))
}

/// A JSON body, or a 400 that says what is wrong with it.
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    let bytes = if bytes.is_empty() { &b"{}"[..] } else { bytes };
    serde_json::from_slice(bytes).map_err(|e| ApiError::invalid(format!("request body: {e}")))
}

/// A time in a query: unix seconds, an RFC 3339 time, or a duration back from `now`
/// (`15m`, `1h`, `7d`). Shared with `gatehouse audit query --since`.
pub fn parse_time(s: &str, now: i64) -> Result<i64, String> {
    if let Ok(t) = s.parse::<i64>() {
        return Ok(t);
    }
    if let Ok(d) = gatehouse_core::config::parse_duration(s) {
        let back = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        return Ok(now.saturating_sub(back));
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(time::OffsetDateTime::unix_timestamp)
        .map_err(|_| {
            format!(
                "`{s}`: expected unix seconds, an RFC 3339 time or a duration like `15m` back from now"
            )
        })
}

/// Tells this node (at once) and the other nodes of a cluster (over Redis) about a change
/// to an account that was written to the store.
fn user_changed(gw: &Gateway, name: &str, change: UserChange) {
    let event = Event::User {
        name: name.to_owned(),
        change,
    };
    gw.apply_event(&event, crate::clock::now());
    if let Some(c) = &gw.cluster {
        c.publish(&event);
    }
}

/// Records revoked sessions in memory here and on every node (their tokens die at once).
fn sessions_revoked(gw: &Gateway, ids: &[String], now: i64) {
    let ttl = gw.runtime().config.tokens.refresh_ttl.as_secs();
    let exp = now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX / 4));
    for id in ids {
        gw.revoked(id.clone(), exp);
    }
}

// --- users -----------------------------------------------------------------------------

#[derive(Deserialize)]
struct UserFilter {
    /// Part of the name, role or tenant.
    q: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

async fn list_users(State(st): St, Query(f): Query<UserFilter>) -> Answer {
    let limit = f.limit.unwrap_or(100).clamp(1, 1000);
    let offset = f.offset.unwrap_or(0);
    if let Some(s) = &f.status
        && s != "active"
        && s != "suspended"
    {
        return Err(ApiError::invalid("`status` is `active` or `suspended`"));
    }
    let users = st.gw.store.list_users().await?;
    let matching: Vec<Value> = users
        .iter()
        .filter(|u| {
            f.q.as_deref().is_none_or(|q| {
                u.name.contains(q)
                    || u.roles.iter().any(|r| r.contains(q))
                    || u.tenant.as_deref().is_some_and(|t| t.contains(q))
            })
        })
        .map(user_json)
        .filter(|u| f.status.as_deref().is_none_or(|s| u["status"] == s))
        .collect();
    let total = matching.len();
    let items: Vec<Value> = matching.into_iter().skip(offset).take(limit).collect();
    let next = (offset + items.len() < total).then_some(offset + items.len());
    ok(&json!({"items": items, "total": total, "next_offset": next}))
}

async fn get_user(State(st): St, Path(name): Path<String>) -> Answer {
    match st.gw.store.get_user(&name).await? {
        Some(u) => ok(&user_json(&u)),
        None => Err(ApiError::not_found(format!("no user `{name}`"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    name: String,
    password: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    tenant: Option<String>,
}

async fn hash_password(password: String) -> Result<String, ApiError> {
    if password.is_empty() {
        return Err(ApiError::invalid("`password` must not be empty"));
    }
    tokio::task::spawn_blocking(move || {
        let salt = crate::random::random_bytes::<16>();
        gatehouse_core::password::hash_password(password.as_bytes(), &salt)
    })
    .await
    .map_err(|_| ApiError::invalid("password hashing failed"))?
    .map_err(|e| ApiError::invalid(e.to_string()))
}

async fn create_user(State(st): St, Extension(actor): Extension<Actor>, b: Bytes) -> Answer {
    let req: NewUserBody = body(&b)?;
    valid_name(&req.name).map_err(ApiError::invalid)?;
    let password_hash = match req.password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    let user = st
        .gw
        .store
        .create_user(
            NewUser {
                name: req.name.clone(),
                password_hash,
                roles: req.roles,
                tenant: req.tenant,
            },
            crate::clock::now(),
        )
        .await?;
    st.record_change(&actor, 201, format!("created user `{}`", user.name));
    Ok(json_with(StatusCode::CREATED, &user_json(&user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserChangeBody {
    roles: Option<Vec<String>>,
    /// `null` clears the tenant; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    tenant: Option<Option<String>>,
    password: Option<String>,
    /// A JSON merge patch of the attributes (RFC 7396 §2): a member sets one, `null` removes
    /// it, the others are kept.
    attributes: Option<serde_json::Map<String, Value>>,
}

/// Tells an absent member (`None`) from `null` (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

async fn change_user(
    State(st): St,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    b: Bytes,
) -> Answer {
    let req: UserChangeBody = body(&b)?;
    if req.roles.is_none()
        && req.tenant.is_none()
        && req.password.is_none()
        && req.attributes.is_none()
    {
        return Err(ApiError::invalid(
            "nothing to change: give `roles`, `tenant`, `password` or `attributes`",
        ));
    }
    // Checked as `gatehouse user set`/`unset` check theirs, before anything is written.
    let attributes = req
        .attributes
        .as_ref()
        .map(gatehouse_core::attributes::change_from_json)
        .transpose()
        .map_err(ApiError::invalid)?;
    let store = &st.gw.store;
    if store.get_user(&name).await?.is_none() {
        return Err(ApiError::not_found(format!("no user `{name}`")));
    }
    let mut changed = Vec::new();
    if let Some(roles) = req.roles {
        changed.push(format!("roles [{}]", roles.join(", ")));
        store.set_roles(&name, roles).await?;
    }
    if let Some(tenant) = req.tenant {
        changed.push(format!("tenant {}", tenant.as_deref().unwrap_or("-")));
        store.set_tenant(&name, tenant).await?;
    }
    if let Some(p) = req.password {
        let hash = hash_password(p).await?;
        store.set_password(&name, Some(hash)).await?;
        // Cached Basic verifications of the old password must not outlive it.
        st.gw.basic_cache.remove_where(|u| u.name == name);
        changed.push("password".to_owned());
    }
    if let Some((set, unset)) = attributes {
        // Names only in the audit trail: a value may be personal data.
        let names: Vec<&str> = set.keys().map(String::as_str).collect();
        changed.push(format!(
            "attributes set [{}] unset [{}]",
            names.join(", "),
            unset.join(", ")
        ));
        let attributes = store.update_attributes(&name, set, unset).await?;
        // As `gatehouse user set`: every node sees the new set (checked on cache hits too).
        user_changed(&st.gw, &name, UserChange::Attributes { attributes });
    }
    st.record_change(
        &actor,
        200,
        format!("changed user `{name}`: {}", changed.join(", ")),
    );
    get_user(State(st), Path(name)).await
}

async fn delete_user(
    State(st): St,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> Answer {
    st.gw.store.delete_user(&name).await?;
    user_changed(&st.gw, &name, UserChange::Deleted);
    st.record_change(&actor, 200, format!("deleted user `{name}`"));
    ok(&json!({"deleted": name}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SuspendBody {
    reason: String,
}

async fn suspend_user(
    State(st): St,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    b: Bytes,
) -> Answer {
    let req: SuspendBody = body(&b)?;
    let reason = req.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::invalid("`reason` must not be empty"));
    }
    let now = crate::clock::now();
    let store = &st.gw.store;
    store.suspend_user(&name, reason, now).await?;
    // A suspended account keeps no session (as `gatehouse user suspend`).
    let revoked = store
        .revoke_user_sessions(&name, "account suspended", now)
        .await?;
    user_changed(
        &st.gw,
        &name,
        UserChange::Suspended {
            at: now,
            reason: reason.to_owned(),
        },
    );
    sessions_revoked(&st.gw, &revoked, now);
    st.record_change(
        &actor,
        200,
        format!(
            "suspended user `{name}` ({reason}); {} session(s) revoked",
            revoked.len()
        ),
    );
    get_user(State(st), Path(name)).await
}

async fn unsuspend_user(
    State(st): St,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> Answer {
    st.gw.store.unsuspend_user(&name).await?;
    user_changed(&st.gw, &name, UserChange::Active);
    st.record_change(&actor, 200, format!("unsuspended user `{name}`"));
    get_user(State(st), Path(name)).await
}

async fn reset_mfa(
    State(st): St,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> Answer {
    st.gw.store.set_mfa_secret(&name, None).await?;
    st.record_change(&actor, 200, format!("reset MFA of user `{name}`"));
    get_user(State(st), Path(name)).await
}

async fn sign_out_user(
    State(st): St,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> Answer {
    let store = &st.gw.store;
    if store.get_user(&name).await?.is_none() {
        return Err(ApiError::not_found(format!("no user `{name}`")));
    }
    let now = crate::clock::now();
    let ids = store
        .revoke_user_sessions(&name, "revoked by an administrator", now)
        .await?;
    sessions_revoked(&st.gw, &ids, now);
    st.record_change(
        &actor,
        200,
        format!(
            "signed out user `{name}` everywhere ({} session(s))",
            ids.len()
        ),
    );
    ok(&json!({"user": name, "revoked_sessions": ids}))
}

// --- API keys --------------------------------------------------------------------------

#[derive(Deserialize)]
struct KeyFilter {
    user: Option<String>,
}

async fn list_keys(State(st): St, Query(f): Query<KeyFilter>) -> Answer {
    let now = crate::clock::now();
    let keys = st.gw.store.list_api_keys(f.user.as_deref()).await?;
    let items: Vec<Value> = keys.iter().map(|k| key_json(k, now)).collect();
    ok(&json!({ "items": items }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKeyBody {
    user: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    read_only: bool,
    /// A duration from now, e.g. `90d`.
    expires: Option<String>,
    label: Option<String>,
}

async fn create_key(State(st): St, Extension(actor): Extension<Actor>, b: Bytes) -> Answer {
    let req: NewKeyBody = body(&b)?;
    let now = crate::clock::now();
    let expires_at = match &req.expires {
        Some(e) => {
            let d = gatehouse_core::config::parse_duration(e)
                .map_err(|m| ApiError::invalid(format!("`expires`: {m}")))?;
            Some(now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)))
        }
        None => None,
    };
    let spec = KeySpec {
        user: req.user,
        scopes: req.scopes,
        read_only: req.read_only,
        expires_at,
        label: req.label,
    };
    let (key, secret) = super::keys::create(st.gw.store.as_ref(), spec, now).await?;
    st.record_change(
        &actor,
        201,
        format!(
            "created API key `{}` for `{}` (scopes [{}])",
            key.id,
            key.user,
            key.scopes.join(" ")
        ),
    );
    let mut v = key_json(&key, now);
    // Shown once, here; only its hash is stored.
    v["key"] = Value::String(secret.expose().to_owned());
    Ok(json_with(StatusCode::CREATED, &v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    /// An id, a prefix, or the full key as printed.
    key: String,
}

async fn revoke_key(State(st): St, Extension(actor): Extension<Actor>, b: Bytes) -> Answer {
    let req: RevokeBody = body(&b)?;
    revoke(&st, &actor, &req.key).await
}

async fn revoke_key_by_id(
    State(st): St,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Answer {
    revoke(&st, &actor, &id).await
}

async fn revoke(st: &AdminState, actor: &Actor, given: &str) -> Answer {
    let now = crate::clock::now();
    let key = super::keys::revoke(st.gw.store.as_ref(), given, now).await?;
    // The record names the key by id: never the key that was pasted.
    st.record_change(
        actor,
        200,
        format!("revoked API key `{}` of `{}`", key.id, key.user),
    );
    let stored = st.gw.store.find_api_key(&key.prefix).await?.unwrap_or(key);
    ok(&key_json(&stored, now))
}

// --- sessions --------------------------------------------------------------------------

#[derive(Deserialize)]
struct SessionFilter {
    user: Option<String>,
    /// Also revoked sessions.
    #[serde(default)]
    all: bool,
}

async fn list_sessions(State(st): St, Query(f): Query<SessionFilter>) -> Answer {
    let now = crate::clock::now();
    let sessions = st.gw.store.list_sessions(f.user.as_deref(), f.all).await?;
    let items: Vec<Value> = sessions.iter().map(|s| session_json(s, now)).collect();
    ok(&json!({ "items": items }))
}

async fn revoke_session(
    State(st): St,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Answer {
    let now = crate::clock::now();
    let store = &st.gw.store;
    let Some(session) = store.get_session(&id).await? else {
        return Err(ApiError::not_found(format!("no session `{id}`")));
    };
    store
        .revoke_session(&id, "revoked by an administrator", now)
        .await?;
    sessions_revoked(&st.gw, std::slice::from_ref(&id), now);
    st.record_change(
        &actor,
        200,
        format!("revoked session `{id}` of `{}`", session.user),
    );
    let s = store.get_session(&id).await?.unwrap_or(session);
    ok(&session_json(&s, now))
}

// --- throttling locks ------------------------------------------------------------------

fn lock_kind(s: &str) -> Result<LockKind, ApiError> {
    match s {
        "ip" => Ok(LockKind::Ip),
        "account" => Ok(LockKind::Account),
        "tokens" => Ok(LockKind::Tokens),
        _ => Err(ApiError::invalid(
            "the lock kind is `ip`, `account` or `tokens`",
        )),
    }
}

async fn list_locks(State(st): St) -> Answer {
    let now = crate::clock::now();
    let items: Vec<Value> = st
        .gw
        .runtime()
        .defense
        .locks(now)
        .into_iter()
        .map(|(kind, id, until)| {
            json!({
                "kind": kind.as_str(),
                "id": id,
                "until": rfc3339(until),
                "retry_after": until - now,
            })
        })
        .collect();
    ok(&json!({ "items": items }))
}

async fn unlock(
    State(st): St,
    Extension(actor): Extension<Actor>,
    Path((kind, id)): Path<(String, String)>,
) -> Answer {
    let kind = lock_kind(&kind)?;
    if !st
        .gw
        .runtime()
        .defense
        .unlock(kind, &id, crate::clock::now())
    {
        return Err(ApiError::not_found(format!(
            "no {} lock on `{id}`",
            kind.as_str()
        )));
    }
    st.record_change(&actor, 200, format!("unlocked {} `{id}`", kind.as_str()));
    ok(&json!({"kind": kind.as_str(), "id": id, "unlocked": true}))
}

// --- audit -----------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct AuditFilter {
    since: Option<String>,
    until: Option<String>,
    status: Option<u16>,
    reason: Option<String>,
    route: Option<String>,
    user: Option<String>,
    client_ip: Option<String>,
    request_id: Option<String>,
    kind: Option<String>,
    /// The cursor: records before this sequence number (the previous page's `next`).
    before: Option<i64>,
    limit: Option<u32>,
    /// Export only: `jsonl` (default) or `csv`.
    format: Option<String>,
}

impl AuditFilter {
    fn query(&self, now: i64) -> Result<AuditQuery, ApiError> {
        let time = |s: &Option<String>| {
            s.as_deref()
                .map(|s| parse_time(s, now))
                .transpose()
                .map_err(ApiError::invalid)
        };
        let kind = match self.kind.as_deref() {
            None => None,
            Some(k) => Some(
                AuditKind::parse(k)
                    .ok_or_else(|| ApiError::invalid("`kind` is `request` or `alert`"))?,
            ),
        };
        Ok(AuditQuery {
            since: time(&self.since)?,
            until: time(&self.until)?,
            status: self.status,
            reason: self.reason.clone(),
            route: self.route.clone(),
            user: self.user.clone(),
            client_ip: self.client_ip.clone(),
            request_id: self.request_id.clone(),
            kind,
            before_seq: self.before,
            limit: self.limit.unwrap_or(100).clamp(1, 1000),
            ..AuditQuery::default()
        })
    }
}

fn entry_json(e: &AuditEntry) -> Value {
    let mut v = crate::observe::record_json(&e.record);
    v["seq"] = Value::from(e.seq);
    v
}

/// One page, newest first; `next` is the cursor of the following (older) page.
async fn audit(State(st): St, Query(f): Query<AuditFilter>) -> Answer {
    let q = f.query(crate::clock::now())?;
    let limit = q.limit as usize;
    let mut page = st.gw.store.query_audit(q).await?;
    page.reverse();
    let next = (page.len() == limit)
        .then(|| page.last().map(|e| e.seq))
        .flatten();
    let items: Vec<Value> = page.iter().map(entry_json).collect();
    ok(&json!({"items": items, "next": next}))
}

/// A streamed body fed by a channel (the export writes page after page into it).
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(http_body::Frame::data(b))))
    }
}

const CSV_COLUMNS: [&str; 14] = [
    "seq",
    "time",
    "kind",
    "request_id",
    "route",
    "method",
    "path",
    "client_ip",
    "principal",
    "scheme",
    "status",
    "error",
    "hidden",
    "detail",
];

/// One CSV field (RFC 4180 §2: quoted when it holds a comma, quote or line break). A field
/// a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) gets a leading
/// `'` (OWASP "CSV injection"): paths and details come from clients.
fn csv_field(out: &mut String, s: &str) {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = formula || s.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in s.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

fn csv_line(e: &AuditEntry) -> String {
    let r = &e.record;
    let fields = [
        e.seq.to_string(),
        rfc3339(r.time),
        r.kind.as_str().to_owned(),
        r.request_id.clone(),
        r.route.clone(),
        r.method.clone(),
        r.path.clone(),
        r.client_ip.clone().unwrap_or_default(),
        r.principal.clone().unwrap_or_default(),
        r.scheme.clone().unwrap_or_default(),
        r.status.to_string(),
        r.error.clone().unwrap_or_default(),
        r.hidden.to_string(),
        r.detail.clone(),
    ];
    let mut out = String::with_capacity(160);
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(&mut out, f);
    }
    out.push_str("\r\n");
    out
}

/// Every matching record, oldest first, streamed page by page as JSON lines or CSV.
async fn audit_export(State(st): St, Query(f): Query<AuditFilter>) -> Answer {
    let csv = match f.format.as_deref() {
        None | Some("jsonl") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::invalid("`format` is `jsonl` or `csv`")),
    };
    let mut q = f.query(crate::clock::now())?;
    q.oldest_first = true;
    q.limit = 1000;
    let store = Arc::clone(&st.gw.store);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        if csv {
            let mut head = CSV_COLUMNS.join(",");
            head.push_str("\r\n");
            if tx.send(Bytes::from(head)).await.is_err() {
                return;
            }
        }
        loop {
            let page = match store.query_audit(q.clone()).await {
                Ok(p) => p,
                Err(e) => {
                    // The status is sent: the stream ends short, which the reader sees as a
                    // truncated body (no trailing newline on the last record is not promised).
                    tracing::error!(error = %e, "audit export: store failed; export cut short");
                    return;
                }
            };
            let Some(last) = page.last() else { return };
            q.after_seq = Some(last.seq);
            let mut chunk = String::with_capacity(page.len() * 200);
            for e in &page {
                if csv {
                    chunk.push_str(&csv_line(e));
                } else {
                    chunk.push_str(&entry_json(e).to_string());
                    chunk.push('\n');
                }
            }
            if tx.send(Bytes::from(chunk)).await.is_err() {
                return;
            }
            if page.len() < q.limit as usize {
                return;
            }
        }
    });
    let mut resp = Response::new(Body::new(ChannelBody(rx)));
    let (ct, name) = if csv {
        ("text/csv; charset=utf-8", "audit.csv")
    } else {
        ("application/jsonl", "audit.jsonl")
    };
    resp.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        resp.headers_mut()
            .insert(http::header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

// --- stats -----------------------------------------------------------------------------

#[derive(Deserialize)]
struct StatsFilter {
    /// `hour` (default), `day` or `week`: the range back from now, and its default step.
    range: Option<String>,
    since: Option<String>,
    until: Option<String>,
    route: Option<String>,
    /// Seconds per bucket, a multiple of 60.
    step: Option<i64>,
    /// `refusals` (default: 4xx and 5xx answers only) or `all`.
    answers: Option<String>,
}

/// The range and the bucket width of a stats request.
fn stats_range(f: &StatsFilter, now: i64) -> Result<(i64, i64, i64), ApiError> {
    let (back, default_step) = match f.range.as_deref() {
        None | Some("hour") => (3_600, 60),
        Some("day") => (86_400, 900),
        Some("week") => (7 * 86_400, 3_600),
        Some(_) => return Err(ApiError::invalid("`range` is `hour`, `day` or `week`")),
    };
    let time = |s: &Option<String>, default: i64| {
        s.as_deref()
            .map_or(Ok(default), |s| parse_time(s, now))
            .map_err(ApiError::invalid)
    };
    let until = time(&f.until, now + 60)?;
    let since = time(&f.since, now - back)?;
    let step = f.step.unwrap_or(default_step);
    if step < 60 || step % 60 != 0 {
        return Err(ApiError::invalid("`step` is a multiple of 60 seconds"));
    }
    if since >= until || (until - since) / step > 10_000 {
        return Err(ApiError::invalid(
            "`since` is before `until`, with at most 10000 steps between",
        ));
    }
    Ok((since - since.rem_euclid(60), until, step))
}

/// The rollups of the range `f` asks for: `(since, until, step, rows)`.
async fn rollups(
    st: &AdminState,
    f: &StatsFilter,
) -> Result<(i64, i64, i64, Vec<gatehouse_store::StatRow>), ApiError> {
    let (since, until, step) = stats_range(f, crate::clock::now())?;
    let rows = st
        .gw
        .store
        .query_stats(gatehouse_store::StatsQuery {
            since,
            until,
            route: f.route.clone(),
        })
        .await?;
    Ok((since, until, step, rows))
}

/// Answers per bucket, by status and reason, from the per-minute rollups of every node.
async fn stats(State(st): St, Query(f): Query<StatsFilter>) -> Answer {
    let refusals_only = match f.answers.as_deref() {
        None | Some("refusals") => true,
        Some("all") => false,
        Some(_) => return Err(ApiError::invalid("`answers` is `refusals` or `all`")),
    };
    let (since, until, step, rows) = rollups(&st, &f).await?;
    // bucket → (status, reason) → count; and the totals per route.
    let mut buckets: std::collections::BTreeMap<
        i64,
        std::collections::BTreeMap<(u16, String), u64>,
    > = std::collections::BTreeMap::new();
    let mut routes: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for r in rows
        .into_iter()
        .filter(|r| !refusals_only || r.status >= 400)
    {
        let b = since + (r.minute - since) / step * step;
        *buckets
            .entry(b)
            .or_default()
            .entry((r.status, r.reason))
            .or_default() += r.count;
        *routes.entry(r.route).or_default() += r.count;
    }
    let series: Vec<Value> = buckets
        .into_iter()
        .map(|(t, counts)| {
            let counts: Vec<Value> = counts
                .into_iter()
                .map(|((status, reason), count)| {
                    json!({"status": status, "reason": reason, "count": count})
                })
                .collect();
            json!({"time": rfc3339(t), "counts": counts})
        })
        .collect();
    let by_route = ranked(routes, "route", usize::MAX);
    ok(&json!({
        "since": rfc3339(since),
        "until": rfc3339(until),
        "step": step,
        "buckets": series,
        "routes": by_route,
    }))
}

/// `{key: name, count}` objects, most first (ties by name), at most `n`.
fn ranked(m: impl IntoIterator<Item = (String, u64)>, key: &str, n: usize) -> Vec<Value> {
    let mut v: Vec<(String, u64)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.into_iter()
        .take(n)
        .map(|(k, count)| json!({ key: k, "count": count }))
        .collect()
}

/// Audit records read at most for the top users and addresses.
const TOP_SCAN: u32 = 10_000;

/// The most refused routes (from the rollups of every node), users and client addresses
/// (from the newest refusals in the audit trail, up to 10 000 records).
async fn top(State(st): St, Query(f): Query<StatsFilter>) -> Answer {
    let (since, until, _, rows) = rollups(&st, &f).await?;
    let mut routes: HashMap<String, u64> = HashMap::new();
    for r in rows
        .into_iter()
        .filter(|r| matches!(r.status, 401 | 403 | 404 | 429))
    {
        *routes.entry(r.route).or_default() += r.count;
    }
    let records = st
        .gw
        .store
        .query_audit(AuditQuery {
            since: Some(since),
            until: Some(until),
            kind: Some(AuditKind::Request),
            limit: TOP_SCAN,
            ..AuditQuery::default()
        })
        .await?;
    let scanned = records.len();
    let mut users: HashMap<String, u64> = HashMap::new();
    let mut addresses: HashMap<String, u64> = HashMap::new();
    for e in records
        .iter()
        .filter(|e| e.record.error.is_some() && matches!(e.record.status, 401 | 403 | 404 | 429))
    {
        if let Some(p) = &e.record.principal {
            *users.entry(p.clone()).or_default() += 1;
        }
        if let Some(ip) = &e.record.client_ip {
            *addresses.entry(ip.clone()).or_default() += 1;
        }
    }
    ok(&json!({
        "since": rfc3339(since),
        "until": rfc3339(until),
        "routes": ranked(routes, "route", 10),
        "users": ranked(users, "user", 10),
        "addresses": ranked(addresses, "address", 10),
        "audit_records_scanned": scanned,
    }))
}

// --- alerts ----------------------------------------------------------------------------

#[derive(Deserialize)]
struct AlertFilter {
    limit: Option<u32>,
}

async fn alerts(State(st): St, Query(f): Query<AlertFilter>) -> Answer {
    let q = AuditQuery {
        kind: Some(AuditKind::Alert),
        limit: f.limit.unwrap_or(50).clamp(1, 1000),
        ..AuditQuery::default()
    };
    let mut entries = st.gw.store.query_audit(q).await?;
    entries.reverse();
    let acked = super::lock(&st.acked).clone();
    let items: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut v = entry_json(e);
            v["acknowledged"] = match acked.get(&e.seq) {
                Some((by, at)) => json!({"by": by, "at": rfc3339(*at)}),
                None => Value::Null,
            };
            v
        })
        .collect();
    ok(&json!({ "items": items }))
}

async fn ack_alert(
    State(st): St,
    Extension(actor): Extension<Actor>,
    Path(seq): Path<i64>,
) -> Answer {
    let q = AuditQuery {
        kind: Some(AuditKind::Alert),
        after_seq: Some(seq - 1),
        before_seq: Some(seq + 1),
        limit: 1,
        ..AuditQuery::default()
    };
    if st.gw.store.query_audit(q).await?.is_empty() {
        return Err(ApiError::not_found(format!("no alert `{seq}`")));
    }
    let now = crate::clock::now();
    super::lock(&st.acked).insert(seq, (actor.subject.clone(), now));
    st.record_change(&actor, 200, format!("acknowledged alert `{seq}`"));
    ok(&json!({"seq": seq, "acknowledged": {"by": actor.subject, "at": rfc3339(now)}}))
}

// --- config and explain ----------------------------------------------------------------

async fn running_config(State(st): St) -> Answer {
    ok(&super::config_view::view(&st.gw.runtime()))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Headers {
    Map(serde_json::Map<String, Value>),
    List(Vec<(String, String)>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExplainBody {
    method: String,
    /// The path and query, e.g. `/api/posts?x=1`.
    path: String,
    headers: Option<Headers>,
    client_ip: Option<std::net::IpAddr>,
}

fn header_map(h: Option<Headers>) -> Result<HeaderMap, ApiError> {
    let pairs: Vec<(String, String)> = match h {
        None => Vec::new(),
        Some(Headers::List(l)) => l,
        Some(Headers::Map(m)) => m
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                _ => Err(ApiError::invalid(format!(
                    "header `{k}`: expected a string"
                ))),
            })
            .collect::<Result<_, _>>()?,
    };
    let mut map = HeaderMap::new();
    for (n, v) in pairs {
        let name = HeaderName::from_bytes(n.as_bytes())
            .map_err(|_| ApiError::invalid(format!("header name `{n}` is not valid")))?;
        let value = HeaderValue::from_str(&v)
            .map_err(|_| ApiError::invalid(format!("the value of header `{n}` is not valid")))?;
        map.append(name, value);
    }
    Ok(map)
}

/// How the running config decides a request, with the decision's trace. A runtime of its
/// own, built for this request (no cluster, empty counters), decides: explaining counts no
/// failure and spends no quota — and so ignores current throttling locks and quotas.
async fn explain(State(st): St, b: Bytes) -> Answer {
    let req: ExplainBody = body(&b)?;
    let method = req.method.to_ascii_uppercase();
    if method.is_empty() || !method.bytes().all(|c| c.is_ascii_alphabetic()) {
        return Err(ApiError::invalid("`method` is an HTTP method, e.g. `GET`"));
    }
    if !req.path.starts_with('/') {
        return Err(ApiError::invalid("`path` starts with `/`"));
    }
    let headers = header_map(req.headers)?;
    let client_ip = req
        .client_ip
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    let gw = &st.gw;
    let main = gw.runtime();
    let rt = crate::gateway::Runtime::new(main.config.clone(), &gw.own_keys(), None)
        .map_err(ApiError::invalid)?;
    let (raw_path, query) = req
        .path
        .split_once('?')
        .map_or((req.path.as_str(), None), |(p, q)| (p, Some(q)));
    let now = crate::clock::now();
    let path = match normalize(raw_path) {
        Ok(p) => p,
        Err(e) => {
            return ok(&json!({
                "steps": [{"step": "path", "note": format!("refused: {e}")}],
                "decision": "deny", "status": 400, "error": "invalid_path", "row": Value::Null,
                "hidden": false, "route": Value::Null, "subject": Value::Null,
            }));
        }
    };
    let view = RequestView {
        method: &method,
        path: &path.decoded,
        target: &req.path,
        query,
        headers: &headers,
        client_ip,
        now,
    };
    let mut trace = Vec::new();
    let outcome = gw.decide(&rt, &view, Some(&mut trace)).await;
    let steps: Vec<Value> = trace
        .iter()
        .map(|s| json!({"step": s.step, "note": s.note}))
        .collect();
    let route = outcome
        .route
        .and_then(|i| rt.policy.routes().get(i))
        .map_or(gatehouse_core::decision::DEFAULT_ROUTE, |r| r.name());
    let v = match &outcome.decision {
        Decision::Deny { reason, hidden } => json!({
            "decision": "deny",
            "status": gatehouse_core::render::status(reason, *hidden),
            "error": reason.code(),
            "row": reason.row(),
            "hidden": hidden,
            "subject": outcome.subject,
        }),
        Decision::Allow(p) => json!({
            "decision": "allow", "status": Value::Null, "error": Value::Null, "row": Value::Null,
            "hidden": false, "subject": p.subject,
        }),
        Decision::Public => json!({
            "decision": "public", "status": Value::Null, "error": Value::Null, "row": 1,
            "hidden": false, "subject": Value::Null,
        }),
        Decision::Preflight => json!({
            "decision": "preflight", "status": Value::Null, "error": Value::Null, "row": 23,
            "hidden": false, "subject": Value::Null,
        }),
    };
    let mut v = v;
    v["steps"] = Value::Array(steps);
    v["route"] = Value::String(route.to_owned());
    ok(&v)
}

// --- the console's own ---------------------------------------------------------------

/// Who is signed in.
async fn me(Extension(actor): Extension<Actor>) -> Answer {
    ok(&json!({"subject": actor.subject, "scheme": actor.scheme.as_str()}))
}

/// How often `/admin/api/live` looks for new refusals, and sends a keep-alive comment.
const LIVE_POLL: std::time::Duration = std::time::Duration::from_secs(1);
const LIVE_PING_EVERY: u32 = 15;

/// Refusals as they happen, as server-sent events (`event: refusal`, the audit record as
/// JSON): the audit trail read from the newest record on, every second, so every node's
/// refusals appear (they share the store), and nothing is added to the request path.
async fn live(State(st): St) -> Answer {
    let store = Arc::clone(&st.gw.store);
    let newest = store
        .query_audit(AuditQuery {
            limit: 1,
            ..AuditQuery::default()
        })
        .await?;
    let mut after = newest.last().map_or(0, |e| e.seq);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        // A first comment opens the stream at once (EventSource's `open`).
        if tx.send(Bytes::from_static(b": live\n\n")).await.is_err() {
            return;
        }
        let mut quiet = 0;
        loop {
            tokio::time::sleep(LIVE_POLL).await;
            let page = match store
                .query_audit(AuditQuery {
                    after_seq: Some(after),
                    kind: Some(AuditKind::Request),
                    limit: 500,
                    oldest_first: true,
                    ..AuditQuery::default()
                })
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "live refusals: store failed");
                    Vec::new()
                }
            };
            let mut chunk = String::new();
            for e in &page {
                after = after.max(e.seq);
                if e.record.error.is_some() && e.record.status >= 400 {
                    chunk.push_str("event: refusal\ndata: ");
                    chunk.push_str(&entry_json(e).to_string());
                    chunk.push_str("\n\n");
                }
            }
            quiet += 1;
            if chunk.is_empty() && quiet >= LIVE_PING_EVERY {
                chunk.push_str(": ping\n\n");
            }
            if !chunk.is_empty() {
                quiet = 0;
                // The browser went away: stop reading for it.
                if tx.send(Bytes::from(chunk)).await.is_err() {
                    return;
                }
            }
        }
    });
    let mut resp = Response::new(Body::new(ChannelBody(rx)));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    Ok(resp)
}

// --- /metrics --------------------------------------------------------------------------

/// `/metrics`: Prometheus text format 0.0.4; with `[admin] metrics_auth` behind the guard.
pub async fn metrics(
    State(st): St,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request<Body>,
) -> Response<Body> {
    let (parts, _body) = req.into_parts();
    if st.gw.runtime().config.admin.metrics_auth
        && let Err(refused) = super::guard::authorize(&st, peer, &parts).await
    {
        return refused;
    }
    let body = st.gw.render_metrics(crate::clock::now());
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}
