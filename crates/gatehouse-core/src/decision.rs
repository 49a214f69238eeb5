//! The decision's pure steps: the policy, route matching, the gate (rows 2, 3, 23, 1),
//! credential selection (7, 5, 6) and authorization (13–19). Their order is
//! [`crate::pipeline`]'s, which alone runs them.
//!
//! Each step returns facts or a [`Deny`]; nothing here knows about HTTP status codes, which
//! are the table's ([`Deny::entry`]).

use std::net::IpAddr;
use std::sync::Arc;

use crate::config::{Access, Config, CorsConfig, Disclosure, RouteConfig};
use crate::credential::Extracted;
use crate::deny::{Credential, Deny};
use crate::principal::{AccountState, Principal};
use crate::route::{Params, Pattern, PatternError};
use crate::scheme::Scheme;

/// A route ready for matching.
#[derive(Debug, Clone)]
pub struct CompiledRoute {
    pub config: RouteConfig,
    pub pattern: Pattern,
}

impl CompiledRoute {
    pub fn name(&self) -> &str {
        &self.config.name
    }
    fn allows_method(&self, method: &str) -> bool {
        self.config.methods.is_empty() || self.config.methods.iter().any(|m| m == method)
    }
}

/// The compiled policy: routes in file order plus the defaults for unmatched paths.
#[derive(Debug, Clone)]
pub struct Policy {
    routes: Vec<CompiledRoute>,
    default: CompiledRoute,
    pub realm: Arc<str>,
    pub disclosure: Disclosure,
    pub scope_challenge: bool,
    pub cors: CorsConfig,
    /// `[problems] base_uri`.
    pub problem_base: Option<Arc<str>>,
}

/// The route a request matched and its captured parameters.
#[derive(Debug, Clone)]
pub struct RouteMatch<'p> {
    pub route: &'p CompiledRoute,
    pub params: Params<'p>,
    /// `None` when no route matched and `[defaults]` apply.
    pub index: Option<usize>,
}

impl RouteMatch<'_> {
    pub fn name(&self) -> &str {
        self.route.name()
    }
    pub fn accepted(&self) -> &[Scheme] {
        &self.route.config.auth
    }
    pub fn hidden(&self) -> bool {
        self.route.config.hidden
    }
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

/// Name of the pseudo-route used for paths no route matches.
pub const DEFAULT_ROUTE: &str = "default";

impl Policy {
    pub fn new(config: &Config) -> Result<Self, (String, PatternError)> {
        let routes = config
            .routes
            .iter()
            .map(|r| {
                Pattern::parse(&r.path)
                    .map(|pattern| CompiledRoute {
                        config: r.clone(),
                        pattern,
                    })
                    .map_err(|e| (r.name.clone(), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let default = CompiledRoute {
            config: RouteConfig {
                name: DEFAULT_ROUTE.to_owned(),
                path: "/**".to_owned(),
                methods: Vec::new(),
                access: config.defaults.access,
                auth: config.defaults.auth.clone(),
                roles: Vec::new(),
                scopes: Vec::new(),
                mfa: false,
                max_age: None,
                tenant_param: None,
                owner_param: None,
                networks: Vec::new(),
                deny_networks: Vec::new(),
                hidden: false,
                quota: None,
                countries: None,
                require: Vec::new(),
                when: None,
                line: 0,
            },
            pattern: Pattern::parse("/**").map_err(|e| (DEFAULT_ROUTE.to_owned(), e))?,
        };
        Ok(Self {
            routes,
            default,
            realm: config.server.realm.as_str().into(),
            disclosure: config.server.disclosure,
            scope_challenge: config.server.scope_challenge,
            cors: config.cors.clone(),
            problem_base: config.problems.base_uri.as_deref().map(Into::into),
        })
    }

    pub fn routes(&self) -> &[CompiledRoute] {
        &self.routes
    }

    /// First route (file order) whose pattern and methods match; `[defaults]` otherwise.
    pub fn route<'p>(&'p self, method: &str, path: &'p str) -> RouteMatch<'p> {
        let mut buf = [""; crate::route::MAX_SEGMENTS];
        // Paths too deep to split match no route; `[defaults]` decide.
        let Some(segs) = crate::route::split_path(path, &mut buf) else {
            return RouteMatch {
                route: &self.default,
                params: Vec::new(),
                index: None,
            };
        };
        for (i, r) in self.routes.iter().enumerate() {
            if !r.allows_method(method) {
                continue;
            }
            if let Some(params) = r.pattern.matches_segments(segs) {
                return RouteMatch {
                    route: r,
                    params,
                    index: Some(i),
                };
            }
        }
        RouteMatch {
            route: &self.default,
            params: Vec::new(),
            index: None,
        }
    }
}

/// What the edge knows about a request before credentials are looked at.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub method: &'a str,
    pub client_ip: IpAddr,
    /// `OPTIONS` with `Access-Control-Request-Method` (row 23).
    pub preflight: bool,
}

/// The outcome of the steps before credentials (rows 2, 3, 26, 23, 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Deny(Deny),
    /// Row 26: the route has a country rule; the edge looks the client address up, then
    /// [`crate::geo::CountryRule::check`] and [`pass`] decide.
    Country,
    /// Answer the CORS preflight per `[cors]`; no credentials needed.
    Preflight,
    /// Pass to the upstream without identity.
    Public,
    /// Credentials are needed: extract and verify them.
    Authenticate,
}

/// Rows 2, 3, 26, 23 and 1, in that order (row 4 follows: [`crate::pipeline`] asks the
/// edge). Row 26 needs the edge's database: [`Gate::Country`] stops here, and [`pass`] goes
/// on once the country passed.
pub fn gate(m: &RouteMatch<'_>, facts: &RequestFacts<'_>) -> Gate {
    let r = &m.route.config;
    if r.access == Access::Deny {
        return Gate::Deny(Deny::ForbiddenPath);
    }
    let ip = facts.client_ip.to_canonical();
    let outside = !r.networks.is_empty() && !r.networks.iter().any(|n| n.contains(&ip));
    if outside || r.deny_networks.iter().any(|n| n.contains(&ip)) {
        return Gate::Deny(Deny::IpBlocked);
    }
    if r.countries.is_some() {
        return Gate::Country;
    }
    pass(m, facts)
}

/// Rows 23 and 1, after rows 2, 3 and 26 let the request through.
pub fn pass(m: &RouteMatch<'_>, facts: &RequestFacts<'_>) -> Gate {
    let r = &m.route.config;
    if facts.preflight {
        return Gate::Preflight;
    }
    if r.access == Access::Public {
        return Gate::Public;
    }
    Gate::Authenticate
}

/// Rows 7, 5 and 6: exactly one well-formed credential in an accepted scheme.
pub fn select_credential(m: &RouteMatch<'_>, extracted: Extracted) -> Result<Credential, Deny> {
    match extracted {
        Extracted::Malformed { detail } => Err(Deny::InvalidRequest {
            detail: detail.to_string(),
        }),
        Extracted::None => Err(Deny::MissingCredentials),
        Extracted::Unsupported { scheme } => Err(Deny::UnsupportedScheme { presented: scheme }),
        Extracted::One(c) if m.accepted().contains(&c.scheme()) => Ok(c),
        Extracted::One(c) => Err(Deny::UnsupportedScheme {
            presented: c.scheme().as_str().to_owned(),
        }),
    }
}

/// RFC 9110 §9.2.1: safe methods.
pub fn is_safe_method(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE")
}

/// Rows 13 (account state), 14 (authentication strength) and 15–19 (authorization), in
/// that order (the pipeline calls it after verification and the CSRF step). `now` is unix seconds.
pub fn authorize(
    m: &RouteMatch<'_>,
    p: &Principal,
    facts: &RequestFacts<'_>,
    now: i64,
) -> Result<(), Deny> {
    let r = &m.route.config;
    if let AccountState::Suspended { at, reason } = &p.account {
        return Err(Deny::AccountSuspended {
            suspended_at: *at,
            reason: reason.clone(),
        });
    }
    // Row 14, RFC 9470 §3: say which `acr` and/or `max_age` would satisfy the route.
    let needs_mfa = r.mfa && p.acr.as_deref() != Some("mfa");
    let too_old = r.max_age.and_then(|max| {
        let max = max.as_secs();
        let fresh = p
            .auth_time
            .is_some_and(|t| now.saturating_sub(t) <= i64::try_from(max).unwrap_or(i64::MAX));
        (!fresh).then_some(max)
    });
    if needs_mfa || too_old.is_some() {
        return Err(Deny::InsufficientUserAuthentication {
            acr_values: r.mfa.then(|| "mfa".to_owned()),
            max_age: too_old,
        });
    }
    if !r.roles.is_empty() && !r.roles.iter().any(|need| p.roles.contains(need)) {
        return Err(Deny::InsufficientRole {
            required: r.roles.clone(),
        });
    }
    // Scopes restrict delegated credentials (tokens, API keys); a user proving their own
    // password (Basic, Digest, session) is not scope-limited (design §2 row 16).
    let scoped = matches!(p.scheme, Scheme::Bearer | Scheme::ApiKey);
    if scoped && !r.scopes.iter().all(|need| p.scopes.contains(need)) {
        return Err(Deny::InsufficientScope {
            required: r.scopes.clone(),
        });
    }
    if let Some(param) = &r.tenant_param {
        let want = m.param(param);
        if want.is_none() || want != p.tenant.as_deref() {
            return Err(Deny::TenantMismatch);
        }
    }
    if let Some(param) = &r.owner_param
        && m.param(param) != Some(p.subject.as_str())
    {
        return Err(Deny::NotOwner);
    }
    if p.read_only && !is_safe_method(facts.method) {
        return Err(Deny::ReadOnly);
    }
    Ok(())
}

/// The final decision for one request. `P` is how the allowed principal is held: by value
/// here, shared (`Arc`, with its identity headers rendered once) by the server, whose
/// verified-credential cache hands out the same principal to every request of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<P = Principal> {
    Allow(P),
    Public,
    Preflight,
    /// `hidden` = the route is `hidden` and the reason is a 401/403 (row 20): the response
    /// is a 404 while audit keeps the true reason.
    Deny {
        reason: Deny,
        hidden: bool,
    },
}

impl<P> Decision<P> {
    /// The same decision with the principal held another way.
    pub fn map_principal<Q>(self, f: impl FnOnce(P) -> Q) -> Decision<Q> {
        match self {
            Self::Allow(p) => Decision::Allow(f(p)),
            Self::Public => Decision::Public,
            Self::Preflight => Decision::Preflight,
            Self::Deny { reason, hidden } => Decision::Deny { reason, hidden },
        }
    }

    /// Wraps a refusal, applying row 20 for hidden routes.
    pub fn deny(m: &RouteMatch<'_>, reason: Deny) -> Self {
        let hidden = m.hidden() && reason.hideable();
        Self::Deny { reason, hidden }
    }
}
