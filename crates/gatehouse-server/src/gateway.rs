//! The gateway: one shared state and the request pipeline (design §2 order, §4 flow).
//!
//! ```text
//! normalize path → route → gate (2, 3, 23, 1, 4) → extract credential (7, 5, 6)
//!   → verify (8–12, 22) → authorize (13–19) → allow → proxy (21)
//! ```
//! The edge only gathers facts and performs IO (store lookups, JWKS fetches, password
//! hashing on its own low-priority threads); every verdict comes from `gatehouse-core`.

mod verify;

pub use verify::RETRY_AFTER_UNAVAILABLE;

use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use gatehouse_core::config::Config;
use gatehouse_core::credential::{Extracted, extract};
use gatehouse_core::decision::{self, Decision, Gate, Policy, RequestFacts, RouteMatch};
use gatehouse_core::deny::Deny;
use gatehouse_core::render::{RenderCtx, Rendered, render};
use gatehouse_store::Store;
use http::HeaderMap;

use crate::ids::RequestIds;
use crate::keys::OwnKeys;
use crate::proxy::Upstream;
use crate::tokens::Verifiers;
use crate::verified::Identity;

/// Everything derived from one config file; replaced whole on reload.
pub struct Runtime {
    pub config: Config,
    pub policy: Policy,
    pub upstream: Option<Upstream>,
    pub verifiers: Verifiers,
    /// Throttling and quota counters (rows 4, 24).
    pub defense: crate::defense::Defense,
    /// Answers to the refusals without facts of their own, per route.
    pub refusals: crate::refusals::Prepared,
    /// When this config was loaded (unix seconds; the admin API shows it).
    pub loaded_at: i64,
}

impl Runtime {
    /// `cluster` is the gateway's (it outlives config reloads; `[cluster]` changes need a
    /// restart).
    pub fn new(
        config: Config,
        own_keys: &OwnKeys,
        cluster: Option<Arc<crate::cluster::Cluster>>,
    ) -> Result<Self, String> {
        let policy = Policy::new(&config).map_err(|(route, e)| format!("route `{route}`: {e}"))?;
        let upstream = match &config.upstream {
            Some(u) => Some(Upstream::new(u)?),
            None => None,
        };
        let verifiers = Verifiers::new(&config, own_keys)?;
        let defense = crate::defense::Defense::new(&config, cluster);
        let refusals = crate::refusals::Prepared::new(policy.routes().len());
        Ok(Self {
            config,
            policy,
            upstream,
            verifiers,
            defense,
            refusals,
            loaded_at: crate::ids::now(),
        })
    }
}

/// Shared state of a running gateway.
pub struct Gateway {
    runtime: RwLock<Arc<Runtime>>,
    pub store: Arc<dyn Store>,
    own_keys: RwLock<Arc<OwnKeys>>,
    /// Forced re-reads of our signing keys after an unknown `kid` (see `keys.rs`).
    pub own_key_reload: crate::refetch::Refetch,
    /// The cluster-wide master secret and its derived keys (session cookies, MFA).
    pub secrets: crate::keys::Secrets,
    /// Revoked `jti`s and sessions (row 10).
    pub revocations: crate::revocations::Revocations,
    /// Wrong-code counters of pending MFA logins.
    pub mfa_attempts: crate::auth::mfa::Attempts,
    /// Verified bearer tokens, keyed by SHA-256 of the token.
    pub bearer_cache: crate::cache::TtlCache<Identity>,
    /// Verified Basic pairs, keyed by an HMAC of `user\0password` under `basic_key`.
    pub basic_cache: crate::cache::TtlCache<gatehouse_store::User>,
    /// Basic verifications in flight, by the same key: concurrent requests with one pair
    /// share one password check instead of each hashing (single flight on a cache miss).
    pub basic_inflight: crate::gateway::verify::InFlight,
    /// HMAC key (random per process) of the Basic cache keys, built once.
    basic_key: aws_lc_rs::hmac::Key,
    pub cache_stats: crate::cache::CacheStats,
    /// Highest Digest `nc` per nonce (replay protection).
    pub nonce_counts: crate::digest::NonceCounts,
    pub ids: RequestIds,
    /// Password hashing: one thread per usable CPU at the lowest CPU priority, behind a
    /// bounded queue (argon2 is CPU- and memory-heavy).
    pub hasher: crate::hashing::Hasher,
    /// Locked clients' answers held now (row 4's tarpit, `[throttle] tarpit`).
    pub tarpit: crate::defense::tarpit::Tarpit,
    /// Password hashes computed so far (metrics; proves throttled requests hash nothing).
    pub hashes_started: std::sync::atomic::AtomicU64,
    pub suspended: crate::suspended::SuspendedUsers,
    /// Metrics, alerts and the audit trail (design §6).
    pub observer: crate::observe::Observer,
    /// Redis shared by the nodes of a cluster (`[cluster] redis_url`); `None` on one node.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// Entries each credential cache holds at most.
const CACHE_CAPACITY: usize = 200_000;

/// The account a credential names, for per-account throttling (row 4).
fn account_name(c: &gatehouse_core::Credential) -> Option<String> {
    match c {
        gatehouse_core::Credential::Basic { username, .. } => Some(username.clone()),
        gatehouse_core::Credential::Digest(p) if !p.userhash => Some(p.username.clone()),
        _ => None,
    }
}

/// Failures that count towards row 4: wrong secrets, not expired or revoked tokens (their
/// holders were once legitimate) and not our own outages.
pub fn counts_as_failure(d: &Deny) -> bool {
    matches!(d, Deny::InvalidCredentials | Deny::InvalidToken { .. })
}

/// What a refusal's rendering needs besides the refusal.
pub struct RenderArgs<'a> {
    pub route: Option<usize>,
    pub html: bool,
    /// The browser's own post of the sign-in or code form (no credentials dialog).
    pub form_post: bool,
    pub request_id: &'a str,
    pub now: i64,
    pub return_to: &'a str,
}

/// One step of a decision, for `gatehouse explain`.
#[derive(Debug, Clone)]
pub struct TraceStep {
    pub step: &'static str,
    pub note: String,
}

/// A request as the pipeline sees it.
pub struct RequestView<'a> {
    pub method: &'a str,
    /// Normalized, decoded path.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub client_ip: IpAddr,
    pub now: i64,
    /// The raw request-target (path and query as sent), which Digest signs.
    pub target: &'a str,
}

/// The decision plus what rendering, audit and forwarding need.
pub struct Outcome {
    pub decision: Decision<Identity>,
    /// Index of the matched route; `None` = `[defaults]`.
    pub route: Option<usize>,
    /// The route's quota after this request (for `RateLimit-*` headers on allowed answers).
    pub quota: Option<gatehouse_core::throttle::QuotaState>,
    /// Scheme of the presented credential, once one was extracted (audit).
    pub scheme: Option<gatehouse_core::Scheme>,
    /// The proven subject of a request refused after verification (audit); for an allowed
    /// request it is in the [`Decision::Allow`] principal.
    pub subject: Option<String>,
}

/// Who a request turned out to be, as far as the pipeline got (audit).
#[derive(Debug, Default)]
struct Who {
    scheme: Option<gatehouse_core::Scheme>,
    subject: Option<String>,
}

impl Gateway {
    pub fn new(
        runtime: Runtime,
        store: Arc<dyn Store>,
        own_keys: OwnKeys,
        secrets: crate::keys::Secrets,
        cluster: Option<Arc<crate::cluster::Cluster>>,
    ) -> Self {
        Self {
            runtime: RwLock::new(Arc::new(runtime)),
            store,
            own_keys: RwLock::new(Arc::new(own_keys)),
            own_key_reload: crate::refetch::Refetch::new(crate::keys::RELOAD_FLOOR),
            secrets,
            revocations: crate::revocations::Revocations::default(),
            mfa_attempts: crate::auth::mfa::Attempts::default(),
            nonce_counts: crate::digest::NonceCounts::default(),
            bearer_cache: crate::cache::TtlCache::new(CACHE_CAPACITY),
            basic_cache: crate::cache::TtlCache::new(CACHE_CAPACITY),
            basic_inflight: crate::gateway::verify::InFlight::default(),
            basic_key: aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA256,
                &crate::ids::random_bytes::<32>(),
            ),
            cache_stats: crate::cache::CacheStats::default(),
            ids: RequestIds::new(),
            hasher: crate::hashing::Hasher::default(),
            tarpit: crate::defense::tarpit::Tarpit::default(),
            hashes_started: std::sync::atomic::AtomicU64::new(0),
            suspended: crate::suspended::SuspendedUsers::default(),
            observer: crate::observe::Observer::default(),
            cluster,
        }
    }

    /// The cache key of a Basic pair: HMAC-SHA256 under a per-process random key, so the
    /// cache never holds anything a password could be recovered or replayed from.
    pub fn basic_cache_key(&self, user: &str, password: &str) -> [u8; 32] {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.basic_key);
        ctx.update(user.as_bytes());
        ctx.update(&[0]);
        ctx.update(password.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// Our signing keys (the newest signs; all verify).
    pub fn own_keys(&self) -> Arc<OwnKeys> {
        match self.own_keys.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// Replaces our signing keys (after `gatehouse keys rotate` in any process) and lets
    /// every runtime verify with them.
    pub fn replace_own_keys(&self, keys: OwnKeys) {
        let keys = Arc::new(keys);
        self.runtime().verifiers.set_own_keys(&keys);
        match self.own_keys.write() {
            Ok(mut g) => *g = keys,
            Err(p) => *p.into_inner() = keys,
        }
    }

    pub fn runtime(&self) -> Arc<Runtime> {
        match self.runtime.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// Swaps in a new runtime (config reload); requests in flight keep the old one.
    pub fn replace_runtime(&self, rt: Runtime) {
        match self.runtime.write() {
            Ok(mut g) => *g = Arc::new(rt),
            Err(p) => *p.into_inner() = Arc::new(rt),
        }
    }

    /// Runs the whole decision for one request. `trace` collects the steps for `explain`.
    pub async fn decide(
        &self,
        rt: &Runtime,
        req: &RequestView<'_>,
        mut trace: Option<&mut Vec<TraceStep>>,
    ) -> Outcome {
        // Notes are built only when someone asks (`explain`): the hot path formats nothing.
        let mut note = |step: &'static str, text: &dyn Fn() -> String| {
            if let Some(t) = trace.as_deref_mut() {
                t.push(TraceStep { step, note: text() });
            }
        };
        let m = rt.policy.route(req.method, req.path);
        note("route", &|| match m.index {
            Some(i) => format!(
                "matched route `{}` (#{}, line {}) by pattern `{}`",
                m.name(),
                i + 1,
                m.route.config.line,
                m.route.config.path
            ),
            None => "no route matched: [defaults] apply".to_owned(),
        });
        let facts = RequestFacts {
            method: req.method,
            client_ip: req.client_ip,
            preflight: req.method == "OPTIONS"
                && req.headers.contains_key("access-control-request-method"),
            throttled: rt.defense.ip_locked(req.client_ip, req.now),
        };
        let route = m.index;
        let mut who = Who::default();
        let (decision, quota) = self
            .decide_matched(rt, &m, &facts, req, &mut who, &mut note)
            .await;
        if let Decision::Deny { reason, hidden } = &decision {
            note("result", &|| {
                format!(
                    "deny: `{}` (row {}){}",
                    reason.code(),
                    reason
                        .row()
                        .map_or_else(|| "-".to_owned(), |r| r.to_string()),
                    if *hidden {
                        ", rewritten to 404 because the route is hidden (row 20)"
                    } else {
                        ""
                    }
                )
            });
        }
        Outcome {
            decision,
            route,
            quota,
            scheme: who.scheme,
            subject: who.subject,
        }
    }

    async fn decide_matched(
        &self,
        rt: &Runtime,
        m: &RouteMatch<'_>,
        facts: &RequestFacts<'_>,
        req: &RequestView<'_>,
        who: &mut Who,
        note: &mut impl FnMut(&'static str, &dyn Fn() -> String),
    ) -> (
        Decision<Identity>,
        Option<gatehouse_core::throttle::QuotaState>,
    ) {
        match decision::gate(m, facts) {
            Gate::Deny(d) => {
                note("gate", &|| "refused before credentials".into());
                return (Decision::deny(m, d), None);
            }
            Gate::Preflight => {
                note("gate", &|| {
                    "CORS preflight: answered without credentials (row 23)".into()
                });
                return (Decision::Preflight, None);
            }
            Gate::Public => {
                note("gate", &|| {
                    "public route: no credentials needed (row 1)".into()
                });
                return (Decision::Public, None);
            }
            Gate::Authenticate => {}
        }
        let auth: Vec<&[u8]> = req
            .headers
            .get_all(http::header::AUTHORIZATION)
            .iter()
            .map(http::HeaderValue::as_bytes)
            .collect();
        let keys: Vec<&[u8]> = req
            .headers
            .get_all("x-api-key")
            .iter()
            .map(http::HeaderValue::as_bytes)
            .collect();
        let mut extracted: Extracted = extract(&auth, &keys, req.query);
        // The browser session cookie is ambient: it counts only when nothing else was
        // presented and the route takes sessions.
        if matches!(extracted, Extracted::None)
            && m.accepted().contains(&gatehouse_core::Scheme::Session)
            && let Some(c) = crate::auth::session::cookie_from(req.headers)
        {
            extracted = Extracted::One(gatehouse_core::Credential::Session(
                gatehouse_core::secret::SecretString::new(c.to_owned()),
            ));
        }
        let credential = match decision::select_credential(m, extracted) {
            Ok(c) => c,
            Err(d) => {
                note("credentials", &|| {
                    format!("credential extraction failed: {}", d.code())
                });
                return (Decision::deny(m, d), None);
            }
        };
        who.scheme = Some(credential.scheme());
        note("credentials", &|| {
            format!(
                "one `{}` credential presented",
                credential.scheme().as_str()
            )
        });
        // Row 4 by account: refused before any password is hashed.
        let account = account_name(&credential);
        if let Some(a) = &account
            && let Some(retry_after) = rt.defense.account_locked(a, req.client_ip, req.now).await
        {
            note("throttle", &|| {
                "too many failures for this account".to_owned()
            });
            return (
                Decision::deny(m, Deny::TooManyAttempts { retry_after }),
                None,
            );
        }
        let principal = match self.verify(rt, credential, req).await {
            Ok(p) => p,
            Err(d) => {
                if counts_as_failure(&d) {
                    rt.defense
                        .failure(req.client_ip, account.as_deref(), req.now)
                        .await;
                }
                note("verify", &|| format!("verification failed: {}", d.code()));
                return (Decision::deny(m, d), None);
            }
        };
        if let Some(a) = &account {
            rt.defense.success(req.client_ip, a, req.now);
        }
        note("verify", &|| {
            format!(
                "verified `{}` (roles [{}], scopes [{}], tenant {})",
                principal.subject,
                principal.roles.join(", "),
                principal.scopes.join(" "),
                principal.tenant.as_deref().unwrap_or("-")
            )
        });
        // CSRF: an unsafe request riding on a cookie must come from our own origin.
        if principal.scheme == gatehouse_core::Scheme::Session
            && !decision::is_safe_method(req.method)
            && !crate::auth::session::same_origin(req.headers)
        {
            note("authorize", &|| {
                "cross-site request on a cookie session".to_owned()
            });
            who.subject = Some(principal.subject.clone());
            return (Decision::deny(m, Deny::CsrfRejected), None);
        }
        if let Err(d) = decision::authorize(m, &principal, facts, req.now) {
            note("authorize", &|| format!("refused: {}", d.code()));
            who.subject = Some(principal.subject.clone());
            return (Decision::deny(m, d), None);
        }
        // Row 24: the route's quota, per authenticated subject.
        let quota = rt.defense.quota(m.index, &principal.subject, req.now).await;
        if let Some(q) = quota
            && q.exceeded
        {
            note("quota", &|| {
                format!("over the quota of {} requests", q.limit)
            });
            let deny = Deny::RateLimited {
                retry_after: q.reset,
                limit: q.limit,
            };
            who.subject = Some(principal.subject.clone());
            return (Decision::deny(m, deny), quota);
        }
        note("authorize", &|| {
            "all requirements of the route hold: allow".into()
        });
        (Decision::Allow(principal), quota)
    }

    /// Renders a refusal on route `args.route` (or `[defaults]`) through core's table.
    pub fn render(
        &self,
        rt: &Runtime,
        args: &RenderArgs<'_>,
        deny: &Deny,
        hidden: bool,
    ) -> Rendered {
        let accepted = args
            .route
            .and_then(|i| rt.policy.routes().get(i))
            .map_or(&rt.config.defaults.auth[..], |r| &r.config.auth[..]);
        // A fresh nonce per challenge, only where the route takes Digest.
        let digest = accepted.contains(&gatehouse_core::Scheme::Digest).then(|| {
            crate::digest::challenge(
                self,
                &rt.policy.realm,
                &rt.config.server.digest_algorithms,
                args.now,
            )
        });
        let ctx = RenderCtx {
            realm: &rt.policy.realm,
            accepted,
            disclosure: rt.policy.disclosure,
            scope_challenge: rt.policy.scope_challenge,
            html: args.html,
            request_id: args.request_id,
            now: args.now,
            return_to: args.return_to,
            form_post: args.form_post,
            digest: digest.as_ref(),
        };
        render(deny, hidden, &ctx)
    }
}
