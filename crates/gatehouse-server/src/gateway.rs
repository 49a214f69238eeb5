//! The gateway: one shared state, and the IO that answers core's decision pipeline
//! ([`gatehouse_core::pipeline`], where the order of design §2 lives).
//!
//! The edge only gathers facts and performs IO (store lookups, JWKS fetches, password
//! hashing on its own low-priority threads); every verdict comes from `gatehouse-core`.
//!
//! [`Gateway`] composes the services (keys, revocations, caches, defense, cluster, observer
//! …), which know nothing of it; its methods that read several of them are here and in
//! the files beside this one: credential verification (`verify.rs`), the cluster's events
//! (`events.rs`), observation and `/metrics` (`observe.rs`).

mod events;
mod observe;
mod verify;

pub use crate::rendered::RenderArgs;
pub use crate::unavailable::RETRY_AFTER_UNAVAILABLE;

use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use gatehouse_core::config::Config;
use gatehouse_core::credential::{Extracted, extract};
use gatehouse_core::decision::{Decision, Policy};
use gatehouse_core::deny::Deny;
use gatehouse_core::pipeline::{Need, Next, Pipeline, Request};
use gatehouse_core::render::{RenderCtx, Rendered, render};
use gatehouse_store::Store;
use http::HeaderMap;

use crate::keys::OwnKeys;
use crate::prepared_refusals::Prepared;
use crate::proxy::Upstream;
use crate::request_id::RequestIds;
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
    pub refusals: Prepared,
    /// When this config was loaded (unix seconds; the admin API shows it).
    pub loaded_at: i64,
    /// Row 26's country database (`[geoip]`).
    pub geoip: Option<crate::geoip::GeoIp>,
    /// The operator's HTML templates (`[pages]`).
    pub pages: Option<crate::pages::Branded>,
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
        let refusals = Prepared::new(policy.routes().len());
        let geoip = config
            .geoip
            .as_ref()
            .map(crate::geoip::GeoIp::open)
            .transpose()?;
        let pages = config
            .pages
            .as_ref()
            .map(crate::pages::Branded::load)
            .transpose()
            .map_err(|e| e.join("\n"))?;
        Ok(Self {
            config,
            policy,
            upstream,
            verifiers,
            defense,
            refusals,
            loaded_at: crate::clock::now(),
            geoip,
            pages,
        })
    }
}

/// Shared state of a running gateway.
pub struct Gateway {
    runtime: RwLock<Arc<Runtime>>,
    pub store: Arc<dyn Store>,
    own_keys: RwLock<Arc<OwnKeys>>,
    /// Forced re-reads of our signing keys after an unknown `kid` (see [`Self::verify_token`]).
    pub own_key_reload: crate::refetch::Refetch,
    /// Login providers' discovery documents, keys and answered `state`s.
    pub oidc: crate::login_providers::Providers,
    /// The cluster-wide master secret and its derived keys (session cookies, MFA).
    pub secrets: crate::keys::Secrets,
    /// Revoked `jti`s and sessions (row 10).
    pub revocations: crate::revocations::Revocations,
    /// Wrong-code counters of pending MFA logins.
    pub mfa_attempts: crate::mfa::Attempts,
    /// Verified bearer tokens, keyed by SHA-256 of the token.
    pub bearer_cache: crate::cache::BearerCache,
    /// Bearer verifications in flight, by the same key: concurrent requests with one
    /// uncached token share one verification (single flight on a cache miss).
    pub bearer_inflight: crate::inflight::InFlight<Identity>,
    /// Bearer tokens verified so far (cache misses that ran a verification).
    pub bearer_verifications: std::sync::atomic::AtomicU64,
    /// Bearer tokens and API keys verified within the last day (SHA-256, as the caches):
    /// once their cache entry ends they are verified again even while their address is over
    /// its verification budget (row 4: only unknown credentials are refused unverified).
    pub known_good: crate::cache::TtlCache<()>,
    /// Verified Basic pairs, keyed by an HMAC of `user\0password` under `basic_key`.
    pub basic_cache: crate::cache::TtlCache<gatehouse_store::User>,
    /// Basic verifications in flight, by the same key: concurrent requests with one pair
    /// share one password check instead of each hashing (single flight on a cache miss).
    pub basic_inflight: crate::inflight::InFlight<gatehouse_store::User>,
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

/// Entries the Basic and known-good caches hold at most.
const CACHE_CAPACITY: usize = 200_000;
/// Bearer tokens the cache holds at least: 2^20 (≈ 95 MiB when full, `examples/cache_memory.rs`).
const BEARER_CACHE_CAPACITY: usize = 1 << 20;

/// The credentials a request presents: `Authorization` headers, `X-API-Key` headers and the
/// query (rows 5–7 decide on what this finds).
pub fn extract_from(headers: &HeaderMap, query: Option<&str>) -> Extracted {
    let auth: Vec<&[u8]> = headers
        .get_all(http::header::AUTHORIZATION)
        .iter()
        .map(http::HeaderValue::as_bytes)
        .collect();
    let keys: Vec<&[u8]> = headers
        .get_all("x-api-key")
        .iter()
        .map(http::HeaderValue::as_bytes)
        .collect();
    extract(&auth, &keys, query)
}

/// Failures that count towards row 4 (their entry of core's table says so).
pub fn counts_as_failure(d: &Deny) -> bool {
    d.entry().counts_as_failure
}

/// One step of a decision, for `gatehouse explain` (recorded by core's pipeline).
pub use gatehouse_core::pipeline::TraceStep;

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
            oidc: crate::login_providers::Providers::default(),
            secrets,
            revocations: crate::revocations::Revocations::default(),
            mfa_attempts: crate::mfa::Attempts::default(),
            nonce_counts: crate::digest::NonceCounts::default(),
            bearer_cache: crate::cache::BearerCache::new(BEARER_CACHE_CAPACITY),
            bearer_inflight: crate::inflight::InFlight::default(),
            bearer_verifications: std::sync::atomic::AtomicU64::new(0),
            known_good: crate::cache::TtlCache::new(CACHE_CAPACITY),
            basic_cache: crate::cache::TtlCache::new(CACHE_CAPACITY),
            basic_inflight: crate::inflight::InFlight::default(),
            basic_key: aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA256,
                &crate::random::random_bytes::<32>(),
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

    /// Takes `keys` (freshly read from the store) if they differ from ours.
    pub fn adopt_own_keys(&self, keys: OwnKeys) {
        let kids = |k: &OwnKeys| k.keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>();
        if kids(&self.own_keys()) != kids(&keys) {
            tracing::info!(keys = keys.keys.len(), "signing keys changed");
            self.replace_own_keys(keys);
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

    /// Runs the whole decision for one request: drives core's pipeline
    /// ([`gatehouse_core::pipeline`]), answering its questions with this gateway's IO.
    /// `trace` collects the steps for `explain`.
    pub async fn decide(
        &self,
        rt: &Runtime,
        req: &RequestView<'_>,
        trace: Option<&mut Vec<TraceStep>>,
    ) -> Outcome {
        let request = Request {
            method: req.method,
            path: req.path,
            client_ip: req.client_ip,
            now: req.now,
            preflight: req.method == "OPTIONS"
                && req.headers.contains_key("access-control-request-method"),
        };
        let mut pipe = Pipeline::<Identity>::new(&rt.policy, request);
        if trace.is_some() {
            pipe = pipe.traced();
        }
        while let Next::Need(need) = pipe.next() {
            match need {
                Need::Country => match rt.geoip.as_ref().map(|db| db.country(req.client_ip)) {
                    Some(Ok(country)) => pipe.country(country),
                    // Left unanswered, the pipeline refuses with row 22: a broken database
                    // is our own fault, never an allow and never a 403.
                    Some(Err(e)) => {
                        tracing::error!(error = %e, client_ip = %req.client_ip, "country lookup failed");
                    }
                    None => {}
                },
                Need::IpLock => pipe.ip_lock(rt.defense.ip_locked(req.client_ip, req.now)),
                Need::Cached => {
                    let known = self.known(pipe.presented(), req.now).await;
                    pipe.cached(known);
                }
                Need::TokenLock => {
                    // A credential verified before is no guess: it is verified again.
                    let locked = rt
                        .defense
                        .token_locked(req.client_ip, req.now)
                        .filter(|_| !self.known_good(pipe.presented(), req.now));
                    pipe.token_lock(locked);
                }
                Need::Credentials => pipe.credentials(extract_from(req.headers, req.query)),
                Need::SessionCookie => pipe.session_cookie(
                    crate::session::cookie_from(req.headers)
                        .map(|c| gatehouse_core::secret::SecretString::new(c.to_owned())),
                ),
                Need::AccountLock => {
                    let locked = match pipe.account() {
                        Some(a) => rt.defense.account_locked(a, req.client_ip, req.now).await,
                        None => None,
                    };
                    pipe.account_lock(locked);
                }
                Need::Verify(credential) => {
                    let verified = self.verify(rt, credential, req).await;
                    pipe.verified(verified);
                }
                Need::CountFailure => {
                    rt.defense
                        .failure(req.client_ip, pipe.account(), req.now)
                        .await;
                    pipe.counted();
                }
                Need::CountTokenFailure => {
                    rt.defense.token_failure(req.client_ip, req.now).await;
                    pipe.counted();
                }
                Need::CountSuccess => {
                    if let Some(a) = pipe.account() {
                        rt.defense.success(req.client_ip, a, req.now);
                    }
                    pipe.counted();
                }
                Need::SameOrigin => pipe.same_origin(crate::session::same_origin(req.headers)),
                Need::Requirements => {
                    let mut facts = crate::requirements::requirement_facts(
                        &self.suspended,
                        pipe.principal(),
                        pipe.conditions(),
                        req.headers,
                    );
                    // A `when` may read the country on a route that has no country rule (row
                    // 26 did not look it up): ask the database, if there is one.
                    if pipe.conditions() && pipe.client_country().is_none() {
                        facts.country = rt
                            .geoip
                            .as_ref()
                            .and_then(|db| db.country(req.client_ip).ok().flatten())
                            .map(|c| c.as_str().to_owned());
                    }
                    pipe.requirement_facts(facts);
                }
                Need::Quota => {
                    let route = pipe.route().index;
                    let quota = match pipe.subject() {
                        Some(subject) => rt.defense.quota(route, subject, req.now).await,
                        None => None,
                    };
                    pipe.quota(quota);
                }
            }
        }
        let done = pipe.finish();
        if let Some(e) = &done.condition_error {
            // Row 25: an expression that could not be evaluated denies; say why in the log.
            tracing::warn!(route = ?done.route, error = %e, "a `when` condition could not be evaluated: denied");
        }
        if let Some(t) = trace {
            *t = done.trace;
        }
        Outcome {
            decision: done.decision,
            route: done.route,
            quota: done.quota,
            scheme: done.scheme,
            subject: done.refused_principal.map(|p| p.subject.clone()),
        }
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
                &self.secrets,
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
            grpc: args.grpc,
            sign_in: gatehouse_core::render::SignInOptions {
                password: rt.config.server.password_sign_in,
                providers: &rt.config.login_providers,
            },
            problem_base: rt.policy.problem_base.as_deref(),
            pages: rt
                .pages
                .as_ref()
                .map(|p| p as &dyn gatehouse_core::render::Pages),
        };
        render(deny, hidden, &ctx)
    }
}

impl Prepared {
    /// The answer [`Gateway::render`] would give with the same arguments, when it can be
    /// prepared; `None`: render it (HTML pages and sign-in form posts never are).
    pub fn response(
        &self,
        gw: &Gateway,
        rt: &Runtime,
        args: &RenderArgs<'_>,
        deny: &Deny,
        hidden: bool,
    ) -> Option<axum::response::Response> {
        self.answer(args, deny, hidden, |a| gw.render(rt, a, deny, hidden))
    }
}
