//! The admin port (`[server] admin_listen`): the admin JSON API under `/admin/api/` with its
//! OpenAPI 3 document, the sign-in endpoints for the admin's browser, `/metrics` and health.
//!
//! The admin API is a Gatehouse-guarded service like any other (design §4): every request
//! goes through the gateway's own decision ([`guard`]) on a one-route policy that takes a
//! Bearer token, an API key or the session cookie, and every refusal is rendered by core's
//! table. This module adds no decision logic beyond naming who counts as an administrator
//! (`[admin] roles`, or an API key with the scope `gatehouse:admin`), and every change made
//! through the API is an audit record naming its actor.

pub mod api;
pub mod config_view;
pub mod console;
pub mod guard;
pub mod keys;
pub mod openapi;
pub mod stats;
pub mod users;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::{get, post};
use gatehouse_store::{AuditKind, AuditRecord};

use crate::gateway::Gateway;

pub use guard::{ADMIN_SCOPE, Actor};

/// The admin port's shared state.
pub struct AdminState {
    pub gw: Arc<Gateway>,
    /// The guard's one-route runtime, rebuilt when the config or signing keys change.
    guard: guard::RuntimeCache,
    /// Acknowledged alerts on this node: audit sequence number → (actor, unix seconds).
    acked: Mutex<HashMap<i64, (String, i64)>>,
}

impl AdminState {
    pub fn new(gw: Arc<Gateway>) -> Arc<Self> {
        Arc::new(Self {
            gw,
            guard: guard::RuntimeCache::default(),
            acked: Mutex::new(HashMap::new()),
        })
    }

    /// Writes the audit record of a change made through the API: the actor is the record's
    /// principal, `detail` says what changed (never a secret).
    pub fn record_change(&self, actor: &Actor, status: u16, detail: String) {
        let now = crate::clock::now();
        self.gw.observer.audit.push(
            AuditRecord {
                time: now,
                kind: AuditKind::Request,
                request_id: actor.request_id.clone(),
                route: guard::ROUTE_NAME.to_owned(),
                method: actor.method.clone(),
                path: actor.path.clone(),
                client_ip: Some(crate::net::ip_text(actor.client_ip)),
                principal: Some(actor.subject.clone()),
                scheme: Some(actor.scheme.as_str().to_owned()),
                status,
                error: None,
                hidden: false,
                detail: format!("admin: {detail}"),
            },
            now,
        );
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// The admin port's router.
pub fn router(gw: Arc<Gateway>) -> Router {
    let state = AdminState::new(Arc::clone(&gw));
    let api = api::routes().route_layer(axum::middleware::from_fn_with_state(
        Arc::clone(&state),
        guard::middleware,
    ));
    Router::new()
        .route("/admin/api/openapi.json", get(openapi::document))
        .route("/admin/assets/console.js", get(console::script))
        .route("/admin/assets/console.css", get(console::style))
        .route("/metrics", get(api::metrics))
        .merge(api)
        .with_state(state)
        .merge(sign_in_routes(gw))
}

/// Health, and `/auth/login`, `/auth/mfa`, `/auth/logout` on the admin port: the admin's browser signs in here
/// (the sign-in page of a 401 posts to `/auth/login` on its own origin).
fn sign_in_routes(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/healthz", get(crate::edge::healthz))
        .route("/readyz", get(crate::edge::readyz))
        .route("/auth/login", post(crate::auth::login))
        .route("/auth/mfa", post(crate::auth::mfa_handler))
        .route("/auth/logout", post(crate::auth::logout))
        .with_state(gw)
}
