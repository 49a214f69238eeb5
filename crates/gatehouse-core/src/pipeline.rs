//! The decision as one pure pipeline (sans-IO, in the manner of rustls): the order of
//! design §2 exists here and nowhere else.
//!
//! ```text
//!  route match ─▶ 2 deny ─▶ 3 network ─▶ 26 country? ─▶ 23 preflight ─▶ 1 public
//!    ─▶ credentials? (7, 5, 6; the session cookie only when nothing else was presented)
//!    ├ password (Basic, Digest): 4 throttle (IP)? ─▶ 4 throttle (account)?
//!    │    ─▶ verify? (8–12, 22) ─▶ count failure/success?
//!    └ token (Bearer, API key, session): cached? ─▶ 4 verification budget (IP)?
//!         ─▶ verify? (8–12, 22) ─▶ count failed verification?
//!    ─▶ CSRF (cookie sessions: same origin?) ─▶ 13 account ─▶ 14 strength ─▶ 15–19 authorization
//!    ─▶ 25 requirements (attributes? — only routes with requirements ask)
//!    ─▶ 24 quota? ─▶ allow                      row 20 rewrites a refusal on a hidden route
//! ```
//! A `?` marks a fact the pipeline asks the edge for ([`Need`]): the edge does the IO (a
//! lock table, a store lookup, a password hash, a Redis counter) and hands the answer back;
//! the pipeline itself reads no clock, no randomness and no network.
//!
//! Row 4 is two locks by address, so that one misbehaving client behind a NAT or a load
//! balancer cannot lock out its neighbours' valid credentials. Passwords can be guessed and
//! cost a hash: they meet the address's failure lock (and the account's) before any
//! hashing. A bearer token, an API key or a session cookie cannot be guessed: a valid one
//! the edge already knows (its cache) is never refused for its address; an unknown one is
//! verified only while the address's budget of failed verifications lasts (CPU
//! protection), and its failure counts toward that budget, never toward the password lock. The proxy, forward-auth,
//! `gatehouse explain`, the core's decision cases and the benchmarks all drive this one
//! machine:
//!
//! ```
//! # use gatehouse_core::pipeline::{Need, Next, Pipeline, Request};
//! # use gatehouse_core::credential::Extracted;
//! # use gatehouse_core::decision::{Decision, Policy};
//! # let (cfg, _) = gatehouse_core::config::parse("").unwrap();
//! # let policy = Policy::new(&cfg).unwrap();
//! let req = Request::new("GET", "/api/posts", [127, 0, 0, 1].into(), 1_700_000_000);
//! let mut pipe = Pipeline::<gatehouse_core::Principal>::new(&policy, req);
//! while let Next::Need(need) = pipe.next() {
//!     match need {
//!         Need::IpLock => pipe.ip_lock(None),
//!         Need::Credentials => pipe.credentials(Extracted::None),
//!         // … the other questions: verification, counting, quota
//!         _ => {}
//!     }
//! }
//! let done = pipe.finish();
//! let Decision::Deny { reason, .. } = done.decision else { panic!() };
//! assert_eq!(reason.code(), "missing_credentials");
//! ```
//! Each step's note is recorded when tracing is on ([`Pipeline::traced`]; `explain`): the hot
//! path formats nothing and allocates nothing for it.

use std::net::IpAddr;
use std::sync::Arc;

use crate::credential::Extracted;
use crate::decision::{self, Decision, Gate, Policy, RequestFacts, RouteMatch};
use crate::deny::{Credential, Deny};
use crate::geo::Country;
use crate::principal::Principal;
use crate::scheme::Scheme;
use crate::secret::SecretString;
use crate::throttle::QuotaState;

/// How a verified principal is held: by value, or shared by the edge's caches.
pub trait Proven {
    fn principal(&self) -> &Principal;
}

impl Proven for Principal {
    fn principal(&self) -> &Principal {
        self
    }
}

impl<T: Proven + ?Sized> Proven for &T {
    fn principal(&self) -> &Principal {
        (**self).principal()
    }
}

impl<T: Proven + ?Sized> Proven for Arc<T> {
    fn principal(&self) -> &Principal {
        (**self).principal()
    }
}

/// What the edge knows about a request before the pipeline starts.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// Normalized, decoded path.
    pub path: &'a str,
    pub client_ip: IpAddr,
    /// Unix seconds.
    pub now: i64,
    /// `OPTIONS` with `Access-Control-Request-Method` (row 23).
    pub preflight: bool,
}

impl<'a> Request<'a> {
    pub const fn new(method: &'a str, path: &'a str, client_ip: IpAddr, now: i64) -> Self {
        Self {
            method,
            path,
            client_ip,
            now,
            preflight: false,
        }
    }
}

/// A question the pipeline asks the edge; answer it with the method named before calling
/// [`Pipeline::next`] again. A question left unanswered ends the decision with row 22
/// (`auth_unavailable`): the edge failed, and that is never a 401/403.
#[derive(Debug)]
pub enum Need {
    /// Row 26: the country of the trusted client address, from the MaxMind DB (`None`: the
    /// database does not know it) → [`Pipeline::country`]. Asked only on routes with a
    /// country rule.
    Country,
    /// Row 4 by address, for a password: is this client locked, for how many seconds?
    /// → [`Pipeline::ip_lock`].
    IpLock,
    /// A token-class credential ([`Pipeline::presented`]: Bearer, API key, session cookie):
    /// does the edge know it already (its cache, or a check as cheap)? → [`Pipeline::cached`].
    Cached,
    /// Row 4 by address, for a token-class credential not in the edge's cache: is the
    /// address over its budget of failed verifications, and the credential unknown (never
    /// verified before, as far as the edge remembers)? → [`Pipeline::token_lock`].
    TokenLock,
    /// The credentials the request presents (headers, query) → [`Pipeline::credentials`].
    Credentials,
    /// Nothing else was presented and the route takes sessions: the session cookie, if any
    /// → [`Pipeline::session_cookie`].
    SessionCookie,
    /// Row 4 by account ([`Pipeline::account`]), asked before any password is hashed
    /// → [`Pipeline::account_lock`].
    AccountLock,
    /// Verify this credential (rows 8–12, 22) → [`Pipeline::verified`].
    Verify(Credential),
    /// A wrong secret: count a failure for the address and [`Pipeline::account`]
    /// → [`Pipeline::counted`].
    CountFailure,
    /// The account proved its secret: clear its failures → [`Pipeline::counted`].
    CountSuccess,
    /// A token-class credential failed verification: count it toward the address's
    /// verification budget (not the password lock) → [`Pipeline::counted`].
    CountTokenFailure,
    /// An unsafe request on a cookie session: did it come from our own origin?
    /// → [`Pipeline::same_origin`].
    SameOrigin,
    /// Row 25, only on a route with requirements or a `when`: the principal's current
    /// attributes (a local user's, as of the last second) and, for `when` conditions, the
    /// request's other facts → [`Pipeline::requirement_facts`].
    Requirements,
    /// Row 24: the route's quota after this request of [`Pipeline::subject`]
    /// → [`Pipeline::quota`].
    Quota,
}

/// What the edge tells the requirements step (row 25) beyond the principal.
#[derive(Debug, Clone, Default)]
pub struct RequirementFacts {
    /// A local user's current attributes; `None` keeps the principal's own (an external
    /// token's mapped claims).
    pub attributes: Option<Arc<crate::attributes::Attributes>>,
    /// Request headers for `when` conditions ([`Pipeline::conditions`]): lower-case names,
    /// never credentials.
    pub headers: Vec<(String, String)>,
    /// The client's country (ISO 3166-1 alpha-2), when known.
    pub country: Option<String>,
}

impl Need {
    /// The step of the trace this question belongs to.
    pub const fn step(&self) -> &'static str {
        match self {
            Self::Country => "country",
            Self::IpLock | Self::AccountLock | Self::TokenLock => "throttle",
            Self::Credentials | Self::SessionCookie => "credentials",
            Self::Cached
            | Self::Verify(_)
            | Self::CountFailure
            | Self::CountSuccess
            | Self::CountTokenFailure => "verify",
            Self::SameOrigin => "authorize",
            Self::Requirements => "requirements",
            Self::Quota => "quota",
        }
    }
}

/// What [`Pipeline::next`] says.
#[derive(Debug)]
pub enum Next {
    Need(Need),
    /// Decided: take the result with [`Pipeline::finish`].
    Done,
}

/// One step of a decision, for `gatehouse explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceStep {
    pub step: &'static str,
    pub note: String,
}

/// Where the pipeline is: the question it waits on, or what it does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Gate,
    Country,
    IpLock,
    Credentials,
    SessionCookie,
    AccountLock,
    Cached,
    TokenLock,
    Verify,
    CountFailure,
    CountSuccess,
    CountTokenFailure,
    Csrf,
    SameOrigin,
    Authorize,
    Requirements,
    Quota,
    Done,
}

/// The decision of one request, step by step.
///
/// Kept small and answered in place: the edge's answers advance the steps at once, the
/// question to hand out is the stage itself (no slot holding a [`Need`]), and a refusal held
/// while its failure is counted waits in the decision's own slot. The state is moved only
/// by [`Pipeline::finish`].
pub struct Pipeline<'p, P = Principal> {
    m: RouteMatch<'p>,
    req: Request<'p>,
    /// Where the pipeline is: a step to run, or the question it waits on.
    stage: Stage,
    /// The question of `stage` is still to be handed out by [`Pipeline::next`].
    asking: bool,
    scheme: Option<Scheme>,
    credential: Option<Credential>,
    /// The account the credential names (row 4 by account).
    account: Option<String>,
    /// The verified principal, while authorization runs; kept on a refusal (audit).
    principal: Option<P>,
    quota: Option<QuotaState>,
    /// Row 26: the client's country, once the edge answered [`Need::Country`].
    country: Option<Country>,
    /// The decision; while a failure is counted, the refusal it will be.
    decision: Option<Decision<P>>,
    trace: Option<Vec<TraceStep>>,
    condition_error: Option<String>,
}

/// What a finished pipeline decided, and what the edge records about it.
#[derive(Debug)]
pub struct Finished<P> {
    pub decision: Decision<P>,
    /// Index of the matched route; `None` = `[defaults]`.
    pub route: Option<usize>,
    /// Scheme of the presented credential, once one was extracted (audit).
    pub scheme: Option<Scheme>,
    /// The principal of a request refused after verification (audit); an allowed one is in
    /// [`Decision::Allow`].
    pub refused_principal: Option<P>,
    /// The route's quota after this request (`RateLimit-*` headers on allowed answers).
    pub quota: Option<QuotaState>,
    /// The steps, when traced.
    pub trace: Vec<TraceStep>,
    /// Why a `when` condition could not be evaluated (row 25's `condition_error`), for the
    /// edge's log; never in a body.
    pub condition_error: Option<String>,
}

impl<'p, P: Proven> Pipeline<'p, P> {
    /// Starts the decision of `req` on `policy`: matches the route (first match in file order).
    pub fn new(policy: &'p Policy, req: Request<'p>) -> Self {
        Self {
            m: policy.route(req.method, req.path),
            req,
            stage: Stage::Gate,
            asking: false,
            scheme: None,
            credential: None,
            account: None,
            principal: None,
            quota: None,
            country: None,
            decision: None,
            trace: None,
            condition_error: None,
        }
    }

    /// Records a note per step (for `gatehouse explain`).
    #[must_use]
    pub fn traced(mut self) -> Self {
        let m = &self.m;
        let note = match m.index {
            Some(i) => format!(
                "matched route `{}` (#{}, line {}) by pattern `{}`",
                m.name(),
                i + 1,
                m.route.config.line,
                m.route.config.path
            ),
            None => "no route matched: [defaults] apply".to_owned(),
        };
        self.trace = Some(vec![TraceStep {
            step: "route",
            note,
        }]);
        self
    }

    /// The matched route.
    pub fn route(&self) -> &RouteMatch<'p> {
        &self.m
    }

    /// The account a credential names (Basic, Digest without `userhash`), for per-account
    /// throttling (row 4).
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }

    /// The subject proven so far.
    pub fn subject(&self) -> Option<&str> {
        self.principal
            .as_ref()
            .map(|p| p.principal().subject.as_str())
    }

    /// The principal proven so far.
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref().map(Proven::principal)
    }

    /// Whether the route has `when` conditions (which read the request's headers).
    pub fn conditions(&self) -> bool {
        let r = &self.m.route.config;
        r.when.is_some() || r.require.iter().any(|q| q.when.is_some())
    }

    /// Answers [`Need::Requirements`] (row 25).
    pub fn requirement_facts(&mut self, facts: RequirementFacts) {
        if self.stage != Stage::Requirements {
            return;
        }
        let Some(p) = self.principal.as_ref() else {
            self.deny(Deny::InvalidCredentials);
            return;
        };
        let p = p.principal();
        let r = &self.m.route.config;
        let attributes = facts.attributes.as_ref().unwrap_or(&p.attributes);
        let f = crate::requirements::Facts {
            principal: p,
            attributes,
            method: self.req.method,
            path: self.req.path,
            params: &self.m.params,
            client_ip: self.req.client_ip,
            // The country row 26 looked up, else the edge's.
            country: self
                .country
                .as_ref()
                .map(Country::as_str)
                .or(facts.country.as_deref()),
            headers: &facts.headers,
            now: self.req.now,
        };
        match crate::requirements::check(r.when.as_deref(), &r.require, &f) {
            Ok(()) => self.after_requirements(),
            Err((unmet, error)) => {
                self.note("requirements", |_| {
                    let codes: Vec<&str> = unmet.iter().map(|u| u.code.as_str()).collect();
                    match &error {
                        Some(e) => format!("unmet: [{}]; could not evaluate {e}", codes.join(", ")),
                        None => format!("unmet: [{}]", codes.join(", ")),
                    }
                });
                self.condition_error = error;
                self.deny(Deny::RequirementNotMet { unmet });
            }
        }
    }

    /// The credential's scheme, once extracted.
    pub const fn scheme(&self) -> Option<Scheme> {
        self.scheme
    }

    /// The client's country, when the route asked for it ([`Need::Country`]) and the
    /// database knows the address.
    pub const fn client_country(&self) -> Option<Country> {
        self.country
    }

    /// Answers [`Need::Country`] (row 26): the database's country for the client address.
    pub fn country(&mut self, country: Option<Country>) {
        if self.stage != Stage::Country {
            return;
        }
        self.country = country;
        let Some(rule) = self.m.route.config.countries.as_ref() else {
            return self.gated(decision::pass(&self.m, &self.facts()));
        };
        let verdict = rule.check(country);
        self.note("country", |p| {
            let rule =
                p.m.route
                    .config
                    .countries
                    .as_ref()
                    .map(|r| r.describe())
                    .unwrap_or_default();
            let found = match country {
                Some(c) => format!("the client address is in country `{c}`"),
                None => "the country database does not know the client address".to_owned(),
            };
            let outcome = if verdict.is_ok() {
                "allowed"
            } else {
                "refused"
            };
            format!("{found} (MaxMind DB, `[geoip] database`): {outcome} by {rule}")
        });
        match verdict {
            Err(d) => self.deny(d),
            Ok(()) => self.gated(decision::pass(&self.m, &self.facts())),
        }
    }

    /// Answers [`Need::IpLock`]: seconds the address's lock still holds.
    pub fn ip_lock(&mut self, retry_after: Option<u64>) {
        if self.stage != Stage::IpLock {
            return;
        }
        match retry_after {
            // Row 4 by address.
            Some(retry_after) => {
                self.note("throttle", |_| {
                    "too many failures from this address".to_owned()
                });
                self.deny(Deny::TooManyAttempts { retry_after });
            }
            None if self.account.is_some() => self.ask(Stage::AccountLock),
            None => self.ask_verify(),
        }
    }

    /// The credential presented, while [`Need::Cached`] and [`Need::TokenLock`] are asked.
    pub const fn presented(&self) -> Option<&Credential> {
        self.credential.as_ref()
    }

    /// Answers [`Need::Cached`]: `Some` with the edge's answer when it knows the credential
    /// (a cache hit, or a check as cheap as one), `None` when only a verification can tell.
    pub fn cached(&mut self, known: Option<Result<P, Deny>>) {
        if self.stage != Stage::Cached {
            return;
        }
        match known {
            Some(result) => {
                self.stage = Stage::Verify;
                self.verified(result);
            }
            None => self.ask(Stage::TokenLock),
        }
    }

    /// Answers [`Need::TokenLock`]: seconds the address's verification budget stays spent.
    pub fn token_lock(&mut self, retry_after: Option<u64>) {
        if self.stage != Stage::TokenLock {
            return;
        }
        match retry_after {
            // Row 4 by address: refused without verifying (CPU protection).
            Some(retry_after) => {
                self.note("throttle", |_| {
                    "too many failed verifications from this address".to_owned()
                });
                self.deny(Deny::TooManyAttempts { retry_after });
            }
            None => self.ask_verify(),
        }
    }

    /// Answers [`Need::AccountLock`]: seconds the account's lock still holds.
    pub fn account_lock(&mut self, retry_after: Option<u64>) {
        if self.stage != Stage::AccountLock {
            return;
        }
        match retry_after {
            // Row 4 by account: refused before any password is hashed.
            Some(retry_after) => {
                self.note("throttle", |_| {
                    "too many failures for this account".to_owned()
                });
                self.deny(Deny::TooManyAttempts { retry_after });
            }
            None => self.ask_verify(),
        }
    }

    /// Answers [`Need::Credentials`]. The browser session cookie is ambient: it counts only
    /// when nothing else was presented and the route takes sessions.
    pub fn credentials(&mut self, extracted: Extracted) {
        if self.stage != Stage::Credentials {
            return;
        }
        if matches!(extracted, Extracted::None) && self.m.accepted().contains(&Scheme::Session) {
            self.ask(Stage::SessionCookie);
        } else {
            self.select(extracted);
        }
    }

    /// Answers [`Need::SessionCookie`].
    pub fn session_cookie(&mut self, cookie: Option<SecretString>) {
        if self.stage != Stage::SessionCookie {
            return;
        }
        let extracted = cookie.map_or(Extracted::None, |c| Extracted::One(Credential::Session(c)));
        self.select(extracted);
    }

    /// Answers [`Need::Verify`] (rows 8–12, 22).
    pub fn verified(&mut self, result: Result<P, Deny>) {
        if self.stage != Stage::Verify {
            return;
        }
        match result {
            Err(d) => {
                self.note("verify", |_| format!("verification failed: {}", d.code()));
                if d.entry().counts_as_failure {
                    // Held in the decision's slot while its failure is counted.
                    self.decision = Some(Decision::deny(&self.m, d));
                    if self.scheme.is_some_and(is_password) {
                        self.ask(Stage::CountFailure);
                    } else {
                        self.ask(Stage::CountTokenFailure);
                    }
                } else {
                    self.deny(d);
                }
            }
            Ok(p) => {
                self.note("verify", |_| {
                    let p = p.principal();
                    format!(
                        "verified `{}` (roles [{}], scopes [{}], tenant {})",
                        p.subject,
                        p.roles.join(", "),
                        p.scopes.join(" "),
                        p.tenant.as_deref().unwrap_or("-")
                    )
                });
                self.principal = Some(p);
                if self.account.is_some() {
                    self.ask(Stage::CountSuccess);
                } else {
                    self.stage = Stage::Csrf;
                }
            }
        }
    }

    /// Answers [`Need::CountFailure`], [`Need::CountSuccess`] and
    /// [`Need::CountTokenFailure`].
    pub fn counted(&mut self) {
        match self.stage {
            Stage::CountFailure | Stage::CountTokenFailure => match self.decision.take() {
                Some(Decision::Deny { reason, .. }) => self.deny(reason),
                // Unreachable by construction; deny by default.
                _ => self.deny(Deny::InvalidCredentials),
            },
            Stage::CountSuccess => self.stage = Stage::Csrf,
            _ => {}
        }
    }

    /// Answers [`Need::SameOrigin`].
    pub fn same_origin(&mut self, same: bool) {
        if self.stage != Stage::SameOrigin {
            return;
        }
        if same {
            self.stage = Stage::Authorize;
        } else {
            self.note("authorize", |_| {
                "cross-site request on a cookie session".to_owned()
            });
            self.deny(Deny::CsrfRejected);
        }
    }

    /// Answers [`Need::Quota`] (row 24: the route's quota, per authenticated subject).
    pub fn quota(&mut self, state: Option<QuotaState>) {
        if self.stage != Stage::Quota {
            return;
        }
        self.quota = state;
        match state {
            Some(q) if q.exceeded => {
                self.note("quota", |_| {
                    format!("over the quota of {} requests", q.limit)
                });
                self.deny(Deny::RateLimited {
                    retry_after: q.reset,
                    limit: q.limit,
                });
            }
            _ => self.allow(),
        }
    }

    fn note(&mut self, step: &'static str, text: impl FnOnce(&Self) -> String) {
        if self.trace.is_some() {
            let note = text(self);
            if let Some(t) = self.trace.as_mut() {
                t.push(TraceStep { step, note });
            }
        }
    }

    fn decide(&mut self, d: Decision<P>) {
        if self.trace.is_some()
            && let Decision::Deny { reason, hidden } = &d
        {
            let (code, row, hidden) = (reason.code(), reason.row(), *hidden);
            self.note("result", |_| {
                format!(
                    "deny: `{code}` (row {}){}",
                    row.map_or_else(|| "-".to_owned(), |r| r.to_string()),
                    if hidden {
                        ", rewritten to 404 because the route is hidden (row 20)"
                    } else {
                        ""
                    }
                )
            });
        }
        self.decision = Some(d);
        self.stage = Stage::Done;
    }

    fn deny(&mut self, reason: Deny) {
        let d = Decision::deny(&self.m, reason);
        self.decide(d);
    }

    fn ask(&mut self, stage: Stage) {
        self.stage = stage;
        self.asking = true;
    }

    /// The question the pipeline waits on at `stage`; `None` at a step that asks nothing.
    fn question(&mut self) -> Option<Need> {
        Some(match self.stage {
            Stage::Country => Need::Country,
            Stage::IpLock => Need::IpLock,
            Stage::Credentials => Need::Credentials,
            Stage::SessionCookie => Need::SessionCookie,
            Stage::AccountLock => Need::AccountLock,
            Stage::Cached => Need::Cached,
            Stage::TokenLock => Need::TokenLock,
            Stage::Verify => Need::Verify(self.credential.take()?),
            Stage::CountFailure => Need::CountFailure,
            Stage::CountSuccess => Need::CountSuccess,
            Stage::CountTokenFailure => Need::CountTokenFailure,
            Stage::SameOrigin => Need::SameOrigin,
            Stage::Requirements => Need::Requirements,
            Stage::Quota => Need::Quota,
            Stage::Gate | Stage::Csrf | Stage::Authorize | Stage::Done => return None,
        })
    }

    fn facts(&self) -> RequestFacts<'p> {
        RequestFacts {
            method: self.req.method,
            client_ip: self.req.client_ip,
            preflight: self.req.preflight,
        }
    }

    /// Runs the steps until the next question or the decision.
    #[expect(
        clippy::should_implement_trait,
        reason = "a question needs its answer before the next one: not an iterator"
    )]
    pub fn next(&mut self) -> Next {
        loop {
            if self.asking {
                self.asking = false;
                match self.question() {
                    Some(need) => return Next::Need(need),
                    // Deny by default: a question without its facts (unreachable by
                    // construction).
                    None => self.deny(Deny::MissingCredentials),
                }
            }
            match self.stage {
                Stage::Done => return Next::Done,
                // Rows 2, 3, 26, 23 and 1, in that order; then row 4 by address.
                Stage::Gate => self.gated(decision::gate(&self.m, &self.facts())),
                // CSRF: an unsafe request riding on a cookie must come from our own origin.
                Stage::Csrf => {
                    let on_cookie = self
                        .principal
                        .as_ref()
                        .is_some_and(|p| p.principal().scheme == Scheme::Session);
                    if on_cookie && !decision::is_safe_method(self.req.method) {
                        self.ask(Stage::SameOrigin);
                    } else {
                        self.authorize();
                    }
                }
                Stage::Authorize => self.authorize(),
                // Asked and not answered: the edge failed, our own fault, so row 22 and
                // never a 401/403 (deny by default).
                Stage::Country
                | Stage::IpLock
                | Stage::Credentials
                | Stage::SessionCookie
                | Stage::AccountLock
                | Stage::Cached
                | Stage::TokenLock
                | Stage::Verify
                | Stage::CountFailure
                | Stage::CountSuccess
                | Stage::CountTokenFailure
                | Stage::SameOrigin
                | Stage::Requirements
                | Stage::Quota => self.unanswered(),
            }
        }
    }

    #[cold]
    fn unanswered(&mut self) {
        self.note("result", |_| "a question went unanswered".to_owned());
        self.deny(unanswered());
    }

    /// Acts on the gate's outcome (rows 2, 3, 26, 23, 1).
    fn gated(&mut self, gate: Gate) {
        match gate {
            Gate::Deny(d) => {
                self.note("gate", |_| "refused before credentials".into());
                self.deny(d);
            }
            Gate::Country => self.ask(Stage::Country),
            Gate::Preflight => {
                self.note("gate", |_| {
                    "CORS preflight: answered without credentials (row 23)".into()
                });
                self.decide(Decision::Preflight);
            }
            Gate::Public => {
                self.note("gate", |_| {
                    "public route: no credentials needed (row 1)".into()
                });
                self.decide(Decision::Public);
            }
            Gate::Authenticate => self.ask(Stage::Credentials),
        }
    }

    /// Rows 13, 14 and 15–19, then the quota (24) or allow.
    fn authorize(&mut self) {
        let Some(p) = self.principal.as_ref() else {
            // Unreachable by construction; deny by default.
            self.deny(Deny::InvalidCredentials);
            return;
        };
        if let Err(d) = decision::authorize(&self.m, p.principal(), &self.facts(), self.req.now) {
            self.note("authorize", |_| format!("refused: {}", d.code()));
            self.deny(d);
            return;
        }
        let r = &self.m.route.config;
        if r.require.is_empty() && r.when.is_none() {
            self.after_requirements();
        } else {
            self.ask(Stage::Requirements);
        }
    }

    /// Row 24 or allow.
    fn after_requirements(&mut self) {
        if self.m.route.config.quota.is_some() {
            self.ask(Stage::Quota);
        } else {
            self.allow();
        }
    }

    /// Rows 7, 5, 6 on what was presented; then row 4: a password meets the address's
    /// failure lock and the account's, a token-class credential the edge's cache and the
    /// address's verification budget.
    fn select(&mut self, extracted: Extracted) {
        match decision::select_credential(&self.m, extracted) {
            Err(d) => {
                self.note("credentials", |_| {
                    format!("credential extraction failed: {}", d.code())
                });
                self.deny(d);
            }
            Ok(c) => {
                let scheme = c.scheme();
                self.scheme = Some(scheme);
                self.account = account_of(&c);
                self.note("credentials", |_| {
                    format!("one `{}` credential presented", scheme.as_str())
                });
                self.credential = Some(c);
                if is_password(scheme) {
                    self.ask(Stage::IpLock);
                } else {
                    self.ask(Stage::Cached);
                }
            }
        }
    }

    fn ask_verify(&mut self) {
        if self.credential.is_some() {
            self.ask(Stage::Verify);
        } else {
            self.deny(Deny::MissingCredentials);
        }
    }

    fn allow(&mut self) {
        self.note("authorize", |_| {
            "all requirements of the route hold: allow".into()
        });
        match self.principal.take() {
            Some(p) => self.decide(Decision::Allow(p)),
            None => self.deny(Deny::InvalidCredentials),
        }
    }

    /// The decision, the facts the edge records, and the trace. A pipeline finished before
    /// it decided denies (deny by default: the edge stopped asking).
    pub fn finish(self) -> Finished<P> {
        let decided = if self.stage == Stage::Done {
            self.decision
        } else {
            None
        };
        let decision = decided.unwrap_or(Decision::Deny {
            reason: unanswered(),
            hidden: false,
        });
        Finished {
            decision,
            route: self.m.index,
            scheme: self.scheme,
            refused_principal: self.principal,
            quota: self.quota,
            trace: self.trace.unwrap_or_default(),
            condition_error: self.condition_error,
        }
    }

    /// The decision so far (`None` until [`Next::Done`]).
    pub fn decision(&self) -> Option<&Decision<P>> {
        self.decision.as_ref().filter(|_| self.stage == Stage::Done)
    }
}

/// The refusal of a pipeline the edge stopped answering: our own fault (row 22).
const fn unanswered() -> Deny {
    Deny::AuthUnavailable {
        retry_after: RETRY_AFTER_UNAVAILABLE,
    }
}

/// Row 22: clients may retry our own outages after this many seconds.
pub const RETRY_AFTER_UNAVAILABLE: u64 = 5;

/// Password-class schemes: guessable secrets that cost a hash to check. Only these meet
/// the address's failure lock (row 4); the other schemes carry secrets too long to guess.
pub const fn is_password(scheme: Scheme) -> bool {
    matches!(scheme, Scheme::Basic | Scheme::Digest)
}

/// The account name a credential carries, for counting after its secret went to be verified.
fn account_of(c: &Credential) -> Option<String> {
    match c {
        Credential::Basic { username, .. } => Some(username.clone()),
        Credential::Digest(p) if !p.userhash => Some(p.username.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::extract;

    const NOW: i64 = 1_700_000_000;

    fn policy(text: &str) -> Policy {
        let (cfg, _) = crate::config::parse(text).unwrap_or_else(|e| panic!("{e}"));
        Policy::new(&cfg).unwrap_or_else(|(r, e)| panic!("{r}: {e}"))
    }

    const CONFIG: &str = r#"
[[route]]
name = "app"
path = "/app/**"
auth = ["basic", "session"]
quota = { max = 1, per = "1m" }
"#;

    /// Drives a pipeline, answering from `answer`, and returns the questions and the result.
    fn run(
        p: &Policy,
        method: &str,
        mut answer: impl FnMut(&Need, &mut Pipeline<'_, Principal>),
    ) -> (Vec<&'static str>, Finished<Principal>) {
        let mut pipe = Pipeline::new(
            p,
            Request::new(method, "/app/x", [127, 0, 0, 1].into(), NOW),
        );
        let mut asked = Vec::new();
        while let Next::Need(need) = pipe.next() {
            asked.push(match &need {
                Need::Country => "country",
                Need::IpLock => "ip",
                Need::Credentials => "credentials",
                Need::SessionCookie => "cookie",
                Need::AccountLock => "account",
                Need::Verify(_) => "verify",
                Need::CountFailure => "failure",
                Need::CountSuccess => "success",
                Need::Cached => "cached",
                Need::TokenLock => "token_lock",
                Need::CountTokenFailure => "token_failure",
                Need::SameOrigin => "origin",
                Need::Requirements => "requirements",
                Need::Quota => "quota",
            });
            answer(&need, &mut pipe);
        }
        (asked, pipe.finish())
    }

    fn code(d: &Decision<Principal>) -> &'static str {
        match d {
            Decision::Deny { reason, .. } => reason.code(),
            Decision::Allow(_) => "allow",
            Decision::Public | Decision::Preflight => "pass",
        }
    }

    fn basic(pipe: &mut Pipeline<'_, Principal>) {
        // "bob:pw"
        pipe.credentials(extract(&[b"Basic Ym9iOnB3"], &[], None));
    }

    #[test]
    fn basic_login_asks_in_the_order_of_the_contract() {
        let p = policy(CONFIG);
        let (asked, done) = run(&p, "GET", |need, pipe| match need {
            Need::IpLock => pipe.ip_lock(None),
            Need::AccountLock => pipe.account_lock(None),
            Need::Credentials => basic(pipe),
            Need::Verify(c) => pipe.verified(Ok(Principal::new("bob", c.scheme()))),
            Need::CountSuccess | Need::CountFailure => pipe.counted(),
            Need::Quota => pipe.quota(None),
            _ => {}
        });
        assert_eq!(
            asked,
            ["credentials", "ip", "account", "verify", "success", "quota"]
        );
        assert_eq!(code(&done.decision), "allow");
    }

    #[test]
    fn a_locked_account_is_refused_before_verification() {
        let p = policy(CONFIG);
        let (asked, done) = run(&p, "GET", |need, pipe| match need {
            Need::IpLock => pipe.ip_lock(None),
            Need::AccountLock => pipe.account_lock(Some(30)),
            Need::Credentials => basic(pipe),
            _ => {}
        });
        assert_eq!(asked, ["credentials", "ip", "account"]);
        assert_eq!(code(&done.decision), "too_many_attempts");
    }

    #[test]
    fn wrong_secrets_are_counted_expired_tokens_are_not() {
        let p = policy(CONFIG);
        for (deny, counted) in [
            (Deny::InvalidCredentials, true),
            (Deny::TokenExpired { expired_at: 1 }, false),
        ] {
            let code_of = deny.code();
            let mut deny = Some(deny);
            let (asked, done) = run(&p, "GET", |need, pipe| match need {
                Need::IpLock => pipe.ip_lock(None),
                Need::AccountLock => pipe.account_lock(None),
                Need::Credentials => basic(pipe),
                Need::Verify(_) => pipe.verified(Err(deny.take().unwrap_or(Deny::NotFound))),
                Need::CountFailure => pipe.counted(),
                _ => {}
            });
            assert_eq!(asked.contains(&"failure"), counted, "{asked:?}");
            assert_eq!(code(&done.decision), code_of);
        }
    }

    #[test]
    fn cookie_sessions_are_asked_for_last_and_checked_for_csrf() {
        let p = policy(CONFIG);
        let (asked, done) = run(&p, "POST", |need, pipe| match need {
            Need::IpLock => pipe.ip_lock(None),
            Need::Credentials => pipe.credentials(Extracted::None),
            Need::SessionCookie => pipe.session_cookie(Some(SecretString::new("c".into()))),
            Need::Cached => pipe.cached(None),
            Need::TokenLock => pipe.token_lock(None),
            Need::Verify(c) => pipe.verified(Ok(Principal::new("bob", c.scheme()))),
            Need::SameOrigin => pipe.same_origin(false),
            _ => {}
        });
        assert_eq!(
            asked,
            [
                "credentials",
                "cookie",
                "cached",
                "token_lock",
                "verify",
                "origin"
            ]
        );
        assert_eq!(code(&done.decision), "csrf_rejected");
        assert_eq!(
            done.refused_principal.map(|p| p.subject),
            Some("bob".into())
        );
    }

    #[test]
    fn an_unanswered_question_is_our_own_failure_not_a_401() {
        let p = policy(CONFIG);
        let (asked, done) = run(&p, "GET", |_, _| {});
        assert_eq!(asked, ["credentials"]);
        assert_eq!(code(&done.decision), "auth_unavailable");
        // Finished before deciding: the same.
        let pipe =
            Pipeline::<Principal>::new(&p, Request::new("GET", "/x", [127, 0, 0, 1].into(), NOW));
        assert_eq!(code(&pipe.finish().decision), "auth_unavailable");
    }

    #[test]
    fn the_trace_is_recorded_only_when_asked() {
        let p = policy(CONFIG);
        let req = Request::new("GET", "/app/x", [127, 0, 0, 1].into(), NOW);
        let mut quiet = Pipeline::<Principal>::new(&p, req);
        let mut traced = Pipeline::<Principal>::new(&p, req).traced();
        for pipe in [&mut quiet, &mut traced] {
            while let Next::Need(need) = pipe.next() {
                match need {
                    Need::Credentials => basic(pipe),
                    Need::IpLock => pipe.ip_lock(Some(9)),
                    _ => {}
                }
            }
        }
        assert!(quiet.finish().trace.is_empty());
        let steps: Vec<_> = traced.finish().trace.iter().map(|s| s.step).collect();
        assert_eq!(steps, ["route", "credentials", "throttle", "result"]);
    }

    const TOKENS: &str = r#"
[[route]]
name = "api"
path = "/app/**"
auth = ["bearer", "api_key", "basic"]
"#;

    fn bearer(pipe: &mut Pipeline<'_, Principal>) {
        pipe.credentials(extract(&[b"Bearer abc.def.ghi"], &[], None));
    }

    #[test]
    fn a_known_token_passes_even_when_its_address_is_locked() {
        let p = policy(TOKENS);
        // Both address locks are on; the edge knows the token (its cache).
        let (asked, done) = run(&p, "GET", |need, pipe| match need {
            Need::IpLock => pipe.ip_lock(Some(60)),
            Need::TokenLock => pipe.token_lock(Some(60)),
            Need::Credentials => bearer(pipe),
            Need::Cached => pipe.cached(Some(Ok(Principal::new("ann", Scheme::Bearer)))),
            _ => {}
        });
        assert_eq!(asked, ["credentials", "cached"]);
        assert_eq!(code(&done.decision), "allow");
    }

    #[test]
    fn an_unknown_token_meets_the_verification_budget_not_the_password_lock() {
        let p = policy(TOKENS);
        // Over budget: refused without verifying.
        let (asked, done) = run(&p, "GET", |need, pipe| match need {
            Need::IpLock => pipe.ip_lock(Some(60)),
            Need::Credentials => bearer(pipe),
            Need::Cached => pipe.cached(None),
            Need::TokenLock => pipe.token_lock(Some(7)),
            _ => {}
        });
        assert_eq!(asked, ["credentials", "cached", "token_lock"]);
        let Decision::Deny { reason, .. } = &done.decision else {
            panic!("{:?}", done.decision)
        };
        assert_eq!(reason, &Deny::TooManyAttempts { retry_after: 7 });
        assert_eq!(reason.row(), Some(4));
        // Within budget: verified; its failure counts toward the budget only.
        let (asked, done) = run(&p, "GET", |need, pipe| match need {
            Need::Credentials => bearer(pipe),
            Need::Cached => pipe.cached(None),
            Need::TokenLock => pipe.token_lock(None),
            Need::Verify(_) => pipe.verified(Err(Deny::InvalidToken {
                detail: "bad signature".into(),
            })),
            Need::CountFailure | Need::CountTokenFailure => pipe.counted(),
            _ => {}
        });
        assert_eq!(
            asked,
            [
                "credentials",
                "cached",
                "token_lock",
                "verify",
                "token_failure"
            ]
        );
        assert_eq!(code(&done.decision), "invalid_token");
    }

    #[test]
    fn a_cached_refusal_is_counted_like_a_verified_one() {
        let p = policy(TOKENS);
        let (asked, done) = run(&p, "GET", |need, pipe| match need {
            Need::Credentials => pipe.credentials(extract(&[], &[b"gh_x_y"], None)),
            Need::Cached => pipe.cached(Some(Err(Deny::InvalidCredentials))),
            Need::CountTokenFailure => pipe.counted(),
            _ => {}
        });
        assert_eq!(asked, ["credentials", "cached", "token_failure"]);
        assert_eq!(code(&done.decision), "invalid_credentials");
    }

    #[test]
    fn passwords_meet_the_address_lock_before_any_verification() {
        let p = policy(TOKENS);
        let (asked, done) = run(&p, "GET", |need, pipe| match need {
            Need::Credentials => basic(pipe),
            Need::IpLock => pipe.ip_lock(Some(30)),
            _ => {}
        });
        assert_eq!(asked, ["credentials", "ip"]);
        assert_eq!(code(&done.decision), "too_many_attempts");
        assert!(is_password(Scheme::Basic) && is_password(Scheme::Digest));
        assert!(
            ![Scheme::Bearer, Scheme::ApiKey, Scheme::Session]
                .into_iter()
                .any(is_password)
        );
    }

    const COUNTRIES: &str = r#"
[geoip]
database = "/x.mmdb"
[[route]]
name = "eu"
path = "/app/**"
auth = ["basic"]
countries = ["DE"]
"#;

    #[test]
    fn the_country_is_asked_after_the_network_and_before_credentials() {
        let p = policy(COUNTRIES);
        let de = crate::geo::Country::parse("DE");
        let (asked, done) = run(&p, "GET", |need, pipe| match need {
            Need::Country => pipe.country(de),
            Need::Credentials => pipe.credentials(Extracted::None),
            _ => {}
        });
        assert_eq!(asked, ["country", "credentials"]);
        assert_eq!(code(&done.decision), "missing_credentials");
        let (asked, done) = run(&p, "GET", |need, pipe| {
            if let Need::Country = need {
                pipe.country(crate::geo::Country::parse("US"));
            }
        });
        assert_eq!(asked, ["country"]);
        assert_eq!(code(&done.decision), "geo_blocked");
        // Unanswered (the edge's lookup failed): our own fault, row 22, never an allow.
        let (_, done) = run(&p, "GET", |_, _| {});
        assert_eq!(code(&done.decision), "auth_unavailable");
        // A route without a country rule never asks.
        let (asked, _) = run(&policy(CONFIG), "GET", |need, pipe| {
            if let Need::Credentials = need {
                pipe.credentials(Extracted::None);
            }
        });
        assert!(!asked.contains(&"country"), "{asked:?}");
    }
}
