//! The admin API's guard: a small adapter that runs the gateway's own decision
//! ([`Gateway::decide`]) on a one-route policy and renders every refusal with core's table.
//!
//! The route takes `bearer`, `api_key` and `session` (the admin port's sign-in page). After
//! the decision allows a principal, one more requirement names who administers:
//! - a Bearer token or a session whose principal has any of `[admin] roles` (else row 15,
//!   `insufficient_role`);
//! - an API key with the scope `gatehouse:admin` — a key is a delegated credential, so its
//!   scopes, not its owner's roles, say what it may do (else row 16, `insufficient_scope`,
//!   with the RFC 6750 §3.1 challenge).
//!
//! CSRF: an unsafe method riding on the session cookie must come from the admin port's own
//! origin; the decision refuses it otherwise (`csrf_rejected`).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::middleware::Next;
use gatehouse_core::config::{Access, AdminConfig, Config, Scheme};
use gatehouse_core::decision::Decision;
use gatehouse_core::deny::Deny;
use gatehouse_core::path::normalize;
use gatehouse_core::principal::Principal;
use http::{HeaderValue, Request, Response};

use super::AdminState;
use crate::gateway::{Gateway, RenderArgs, RequestView, Runtime};
use crate::observe::{RequestRecord, Verdict};

/// The scope an API key needs to use the admin API.
pub const ADMIN_SCOPE: &str = "gatehouse:admin";
/// The admin API's route name in the audit trail and the metrics.
pub const ROUTE_NAME: &str = "admin-api";
/// The schemes the admin API takes.
const SCHEMES: [Scheme; 3] = [Scheme::Bearer, Scheme::ApiKey, Scheme::Session];

/// Who is calling the admin API (inserted into the request's extensions by [`middleware`]).
#[derive(Debug, Clone)]
pub struct Actor {
    pub subject: String,
    pub scheme: Scheme,
    pub client_ip: IpAddr,
    pub request_id: String,
    pub method: String,
    /// Normalized path, without the query.
    pub path: String,
}

/// A runtime derived from the gateway's (the guard's one-route policy), rebuilt when the
/// gateway's runtime (a reload) or its signing keys (a rotation) change.
#[derive(Default)]
pub struct RuntimeCache {
    cached: Mutex<Option<Cached>>,
}

struct Cached {
    main: usize,
    keys: usize,
    rt: Arc<Runtime>,
}

/// The admin route, in the config file's own terms (parsed by the one config parser).
const ADMIN_ROUTE: &str = r#"
[[route]]
name = "admin-api"
path = "/**"
auth = ["bearer", "api_key", "session"]
"#;

/// The running config with the admin route as its only route (and as `[defaults]`).
pub fn admin_config(main: &Config) -> Result<Config, String> {
    let (parsed, _) = gatehouse_core::config::parse(ADMIN_ROUTE).map_err(|e| e.to_string())?;
    let mut cfg = main.clone();
    cfg.upstream = None;
    cfg.defaults.access = Access::Authenticated;
    cfg.defaults.auth = SCHEMES.to_vec();
    cfg.routes = parsed.routes;
    Ok(cfg)
}

impl RuntimeCache {
    /// The runtime of `make(config)` for the gateway's current runtime; with `cluster` it
    /// shares the gateway's cluster (throttling counted cluster-wide), else it counts alone.
    pub fn get(
        &self,
        gw: &Gateway,
        main: &Arc<Runtime>,
        make: fn(&Config) -> Result<Config, String>,
        cluster: bool,
    ) -> Result<Arc<Runtime>, String> {
        let keys = gw.own_keys();
        let (main_id, keys_id) = (Arc::as_ptr(main) as usize, Arc::as_ptr(&keys) as usize);
        let mut cached = super::lock(&self.cached);
        if let Some(c) = cached.as_ref()
            && c.main == main_id
            && c.keys == keys_id
        {
            return Ok(Arc::clone(&c.rt));
        }
        let cluster = if cluster { gw.cluster.clone() } else { None };
        let rt = Arc::new(Runtime::new(make(&main.config)?, &keys, cluster)?);
        *cached = Some(Cached {
            main: main_id,
            keys: keys_id,
            rt: Arc::clone(&rt),
        });
        Ok(rt)
    }
}

/// What keeps an allowed principal out of the admin API, if anything (see the module docs).
pub fn admin_refusal(p: &Principal, admin: &AdminConfig) -> Option<Deny> {
    match p.scheme {
        Scheme::ApiKey => {
            (!p.scopes.iter().any(|s| s == ADMIN_SCOPE)).then(|| Deny::InsufficientScope {
                required: vec![ADMIN_SCOPE.to_owned()],
            })
        }
        _ => (!p.roles.iter().any(|r| admin.roles.contains(r))).then(|| Deny::InsufficientRole {
            required: admin.roles.clone(),
        }),
    }
}

/// Runs the guard on a request: the administrator, or the answer to send (a refusal from
/// core's table, or a CORS preflight).
pub async fn authorize(
    st: &AdminState,
    peer: SocketAddr,
    req: &http::request::Parts,
) -> Result<Actor, Response<Body>> {
    let started = Instant::now();
    let gw = &st.gw;
    let main = gw.runtime();
    let now = crate::clock::now();
    let request_id = gw.ids.next();
    let ip = crate::net::client_ip(peer, &req.headers, &main.config.server.trusted_proxies);
    let html = req
        .headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(gatehouse_core::accept::prefers_html);
    let return_to = req
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let method = req.method.as_str().to_owned();
    let raw_path = req.uri.path().to_owned();
    let rt = match st.guard.get(gw, &main, admin_config, true) {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "the admin guard could not be built");
            let deny = Deny::AuthUnavailable { retry_after: 5 };
            let args = render_args(&request_id, now, html, &return_to);
            let resp =
                crate::exchange::rendered_response(gw.render(&main, &args, &deny, false), true);
            return Err(with_request_id(resp, &request_id));
        }
    };
    let refuse =
        |deny: Deny, hidden: bool, path: &str, scheme: Option<Scheme>, subject: Option<&str>| {
            let args = render_args(&request_id, now, html, &return_to);
            let resp =
                crate::exchange::rendered_response(gw.render(&rt, &args, &deny, hidden), true);
            let resp = with_request_id(resp, &request_id);
            gw.observe(&RequestRecord {
                time: now,
                request_id: &request_id,
                route: Some(ROUTE_NAME),
                method: &method,
                path,
                client_ip: Some(ip),
                subject,
                scheme,
                status: resp.status().as_u16(),
                verdict: Verdict::Refused {
                    deny: &deny,
                    hidden,
                },
                decision: started.elapsed(),
                upstream: None,
            });
            (resp, deny)
        };
    let path = match normalize(&raw_path) {
        Ok(p) => p,
        Err(e) => {
            let deny = Deny::InvalidPath {
                detail: e.to_string(),
            };
            return Err(refuse(deny, false, &raw_path, None, None).0);
        }
    };
    let view = RequestView {
        method: &method,
        path: &path.decoded,
        target: &return_to,
        query: req.uri.query(),
        headers: &req.headers,
        client_ip: ip,
        now,
    };
    let outcome = gw.decide(&rt, &view, None).await;
    let (deny, hidden, subject) = match outcome.decision {
        Decision::Allow(p) => match admin_refusal(&p, &main.config.admin) {
            None => {
                return Ok(Actor {
                    subject: p.subject.clone(),
                    scheme: p.scheme,
                    client_ip: ip,
                    request_id,
                    method,
                    path: path.decoded.to_string(),
                });
            }
            Some(d) => (d, false, Some(p.subject.clone())),
        },
        Decision::Deny { reason, hidden } => (reason, hidden, outcome.subject),
        Decision::Preflight => {
            let resp = crate::cors::preflight(&rt.config.cors, &req.headers);
            return Err(with_request_id(resp, &request_id));
        }
        // The admin route is never public.
        Decision::Public => (Deny::MissingCredentials, false, None),
    };
    let (resp, deny) = refuse(
        deny,
        hidden,
        &path.decoded,
        outcome.scheme,
        subject.as_deref(),
    );
    // Row 4's tarpit holds a locked client's answer, as on the public port.
    gw.tarpit
        .delay(main.config.throttle.tarpit, Some(&deny))
        .await;
    Err(resp)
}

fn render_args<'a>(
    request_id: &'a str,
    now: i64,
    html: bool,
    return_to: &'a str,
) -> RenderArgs<'a> {
    RenderArgs {
        route: Some(0),
        html,
        form_post: false,
        grpc: false,
        request_id,
        now,
        return_to,
    }
}

pub fn with_request_id(mut resp: Response<Body>, request_id: &str) -> Response<Body> {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert(crate::exchange::X_REQUEST_ID, v);
    }
    resp
}

/// The guard as a route layer: the administrator goes into the request's extensions.
pub async fn middleware(
    State(st): State<Arc<AdminState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request<Body>,
    next: Next,
) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    match authorize(&st, peer, &parts).await {
        Ok(actor) => {
            let id = actor.request_id.clone();
            parts.extensions.insert(actor);
            let req = Request::from_parts(parts, body);
            let mut resp = with_request_id(next.run(req).await, &id);
            // Admin answers are never cached (RFC 9111 §5.2.2.5).
            resp.headers_mut().insert(
                http::header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            );
            resp
        }
        Err(resp) => resp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_route_is_the_only_one_and_takes_the_three_schemes() {
        let (main, _) = gatehouse_core::config::parse(
            "[upstream]\nurl = \"http://127.0.0.1:9\"\n[[route]]\nname = \"open\"\npath = \"/**\"\naccess = \"public\"\n",
        )
        .unwrap();
        let cfg = admin_config(&main).unwrap();
        assert!(cfg.upstream.is_none());
        assert_eq!(cfg.routes.len(), 1);
        let r = &cfg.routes[0];
        assert_eq!(r.name, ROUTE_NAME);
        assert_eq!(r.access, Access::Authenticated);
        assert_eq!(r.auth, SCHEMES);
        assert!(r.roles.is_empty() && r.scopes.is_empty() && !r.hidden);
    }

    #[test]
    fn keys_need_the_admin_scope_and_the_rest_an_admin_role() {
        let admin = AdminConfig::default();
        let mut p = Principal::new("alice", Scheme::ApiKey);
        p.roles = vec!["admin".into()];
        assert!(matches!(
            admin_refusal(&p, &admin),
            Some(Deny::InsufficientScope { .. })
        ));
        p.scopes = vec![ADMIN_SCOPE.into()];
        assert!(admin_refusal(&p, &admin).is_none());
        for scheme in [Scheme::Bearer, Scheme::Session] {
            let mut p = Principal::new("bob", scheme);
            p.scopes = vec![ADMIN_SCOPE.into()];
            assert!(matches!(
                admin_refusal(&p, &admin),
                Some(Deny::InsufficientRole { .. })
            ));
            p.roles = vec!["admin".into()];
            assert!(admin_refusal(&p, &admin).is_none());
        }
    }
}
