//! The runtime configuration model.
//!
//! A TOML file is parsed by [`parse()`] into these types after every key and value was
//! validated; every problem in the file is collected with its line (see [`ConfigErrors`]).
//! Nothing here is optional-by-accident: defaults are applied during parsing so the rest of
//! the gateway reads plain values.

mod parse;

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;

pub use crate::scheme::Scheme;
pub use parse::{ConfigError, ConfigErrors, ConfigWarning, parse, parse_duration};

/// The whole validated configuration.
/// `Config::default()` is what an empty file parses to.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub server: ServerConfig,
    pub upstream: Option<UpstreamConfig>,
    pub store: StoreConfig,
    pub cluster: ClusterConfig,
    pub tokens: TokensConfig,
    pub issuers: Vec<IssuerConfig>,
    /// `[[login_providers]]`: OpenID Connect providers browsers sign in through.
    pub login_providers: Vec<LoginProviderConfig>,
    pub throttle: ThrottleConfig,
    pub audit: AuditConfig,
    pub alerts: AlertsConfig,
    pub admin: AdminConfig,
    pub telemetry: TelemetryConfig,
    pub cors: CorsConfig,
    pub defaults: DefaultsConfig,
    pub routes: Vec<RouteConfig>,
    /// `[geoip]`: the MaxMind DB that row 26 reads; `None` when no route uses countries.
    pub geoip: Option<GeoIpConfig>,
    /// `[problems]`: how problem bodies name their `type`.
    pub problems: ProblemsConfig,
    /// `[pages]`: the operator's HTML templates; `None`: the built-in pages.
    pub pages: Option<PagesConfig>,
}

/// `[pages]`: a directory of templates (`sign-in.html`, `403.html`, `404.html`, `429.html`,
/// `error.html`; each optional) that replace the built-in HTML pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagesConfig {
    pub dir: std::path::PathBuf,
    /// 1-based line of `dir`, for messages.
    pub line: usize,
}

/// `[problems]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProblemsConfig {
    /// Each problem's `type` is this followed by its `error` code (RFC 9457 §3.1.1), so
    /// clients can link to the operator's documentation; `None`:
    /// `urn:gatehouse:problem:<code>`.
    pub base_uri: Option<String>,
}

/// `[geoip]`: the country database (MaxMind DB format: GeoIP2/GeoLite2 Country or City).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeoIpConfig {
    /// The `.mmdb` file; reloaded on SIGHUP and when it changes.
    pub database: std::path::PathBuf,
    /// 1-based line of `database`, for messages.
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Public listener (proxied routes, `/auth/*`, forward-auth). Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Admin listener (dashboard, admin API, `/metrics`); `None` disables it.
    pub admin_listen: Option<SocketAddr>,
    /// Realm sent in every challenge. Default `"api"`.
    pub realm: String,
    /// Peers whose `X-Forwarded-For` / `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Default [`Disclosure::Helpful`].
    pub disclosure: Disclosure,
    /// Send `Bearer … error="insufficient_scope", scope="…"` with row 16 (RFC 6750 §3.1).
    pub scope_challenge: bool,
    /// How forward-auth denials carry their body (design §4).
    pub forward_auth_body: ForwardAuthBody,
    /// Largest request body accepted for proxying, bytes. Default 10 MiB.
    pub max_body_bytes: u64,
    /// Digest algorithms offered (one challenge each, strongest first) and accepted, with
    /// their `-sess` variants (RFC 7616 §3.3, §3.7). Default SHA-256 and MD5. An MD5-only
    /// list serves users imported from Apache htdigest files, who have no SHA-256 HA1:
    /// clients answer the first challenge they support, which would be SHA-256.
    pub digest_algorithms: Vec<crate::digest::Algorithm>,
    /// Time a client has to send a request's head (after connecting, and between requests
    /// on a keep-alive connection). Default 10 s.
    pub header_timeout: Duration,
    /// Header fields per request. Default 100.
    pub max_headers: usize,
    /// Bytes of a request's head, request line included (at least 8192). Default 32 KiB.
    pub max_header_bytes: usize,
    /// Connections open at once on the listener. Default 4096.
    pub max_connections: usize,
    /// TLS on `listen` and `admin_listen` (`tls = { cert, key }`); `None` = plain HTTP.
    pub tls: Option<TlsFiles>,
    /// The sign-in page shows the username/password form and `POST /auth/login` checks
    /// passwords. Default `true`; `false` leaves sign-in to `[[login_providers]]`.
    pub password_sign_in: bool,
}

/// PEM files of a listener's certificate chain and private key (`[server] tls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl Config {
    /// The claim paths route requirements name (`claim = "…"`), each once: the token
    /// verifiers keep these (issue 13).
    pub fn required_claims(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.routes.iter().flat_map(|r| &r.require) {
            if let crate::requirements::Source::Claim(c) = &r.source
                && !out.contains(c)
            {
                out.push(c.clone());
            }
        }
        out
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: None,
            realm: "api".to_owned(),
            trusted_proxies: Vec::new(),
            disclosure: Disclosure::Helpful,
            scope_challenge: true,
            forward_auth_body: ForwardAuthBody::Auto,
            max_body_bytes: 10 * 1024 * 1024,
            digest_algorithms: vec![
                crate::digest::Algorithm::Sha256,
                crate::digest::Algorithm::Md5,
            ],
            header_timeout: Duration::from_secs(10),
            max_headers: 100,
            max_header_bytes: 32 * 1024,
            max_connections: 4096,
            tls: None,
            password_sign_in: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disclosure {
    /// 403 bodies name what is missing (`required_roles`, `required_scopes`).
    Helpful,
    /// 403 bodies omit `required_roles` (scopes stay: RFC 6750 requires them in the challenge).
    Minimal,
}

/// nginx `auth_request` drops the keep-alive connection to the auth service when the auth
/// answer has a body, and discards the body anyway; Traefik and Caddy pass it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardAuthBody {
    /// Empty body when the request looks like nginx (`X-Original-URI` present, or no
    /// `X-Forwarded-Uri`), full problem body otherwise. The default.
    Auto,
    /// Always the full problem body.
    Full,
    /// Always an empty body; headers carry everything (`X-Gatehouse-Error`).
    Empty,
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// `http://host:port[/base]` or `https://…`.
    pub url: String,
    /// Connecting to the upstream. Default 5 s.
    pub connect_timeout: Duration,
    /// The whole upstream exchange up to the response head. Default 30 s (row 21: 504).
    pub timeout: Duration,
    /// Speak HTTP/2 to the upstream (prior knowledge for `http://`, ALPN `h2` for
    /// `https://`), e.g. for gRPC services. Default false: HTTP/1.1.
    pub http2: bool,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `sqlite://path` (created if missing) or `sqlite::memory:`.
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://gatehouse.db".to_owned(),
        }
    }
}

/// `[cluster]`: several nodes sharing throttling counters, quotas, Digest nonce counts and
/// revocation fan-out through Redis (design §5). Absent `redis_url` = one node.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `redis://host:port/db` or `rediss://…` (TLS). `None` runs as a single node.
    pub redis_url: Option<String>,
    /// Start of every Redis key and of the pub/sub channel, so several deployments (or test
    /// runs) can share one Redis. Default `"gatehouse"`.
    pub key_prefix: String,
    /// Bound on every Redis call; past it the node falls back to its local state. Default
    /// 250 ms.
    pub timeout: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            key_prefix: "gatehouse".to_owned(),
            timeout: Duration::from_millis(250),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TokensConfig {
    /// `iss` of tokens Gatehouse signs. Default `"gatehouse"`.
    pub issuer: String,
    /// `aud` of tokens Gatehouse signs. Default `"api"`.
    pub audience: String,
    /// Lifetime of issued access tokens. Default 15 min.
    pub access_ttl: Duration,
    /// Lifetime of a refresh-token family member. Default 30 days.
    pub refresh_ttl: Duration,
    /// Clock skew allowed for `exp` / `nbf` / `iat`. Default 30 s (RFC 8725 §3.10 spirit: small).
    pub leeway: Duration,
    /// How often each node re-reads the signing keys from the store (to sign with a key
    /// `keys rotate` added, and to stop verifying retired ones). Default 2 s. One of our
    /// tokens with an unknown `kid` makes a node re-read at once, whatever this says.
    pub key_sync: Duration,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            issuer: "gatehouse".to_owned(),
            audience: "api".to_owned(),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 86_400),
            leeway: Duration::from_secs(30),
            key_sync: Duration::from_secs(2),
        }
    }
}

/// One external token issuer (`[[issuers]]`).
#[derive(Clone)]
pub struct IssuerConfig {
    pub name: String,
    pub issuer: String,
    pub audience: Vec<String>,
    pub keys: IssuerKeys,
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    /// Dotted path into the claims, e.g. `realm_access.roles`. Default `roles`.
    pub roles_claim: String,
    /// Space-separated string or array. Default `scope`.
    pub scopes_claim: String,
    /// Default `tenant`.
    pub tenant_claim: String,
    /// Claim used as the subject. Default `sub`.
    pub subject_claim: String,
    /// `attributes = { email_verified = "email_verified", plan = "org.plan" }`: attribute
    /// name → dotted claim path (issue 13).
    pub attributes: Vec<(String, String)>,
    pub leeway: Duration,
}

impl fmt::Debug for IssuerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerConfig")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("keys", &self.keys)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

/// One OpenID Connect provider browsers sign in through (`[[login_providers]]`).
#[derive(Clone)]
pub struct LoginProviderConfig {
    /// `[a-z0-9_-]+`: the `{name}` of `/auth/oidc/{name}/…`.
    pub name: String,
    /// The button's label ("Sign in with …"). Default: `name`.
    pub display_name: String,
    /// The provider's issuer identifier; discovery reads
    /// `{issuer}/.well-known/openid-configuration` (OpenID Connect Discovery §4).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: ClientSecret,
    /// Always contains `openid`.
    pub scopes: Vec<String>,
    /// ID-token algorithms accepted (public-key only). Default `RS256` (OIDC Core §3.1.3.7
    /// step 7).
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    /// Claim naming the local user. Default `email`.
    pub username_claim: String,
    /// Dotted path to the roles; when set, the local account's roles follow it at each
    /// sign-in.
    pub roles_claim: Option<String>,
    /// Dotted path to the tenant; when set, the account's tenant follows it.
    pub tenant_claim: Option<String>,
    /// Attribute name → claim path, as `[[issuers]] attributes` (issue 13): the local
    /// account's attributes of these names follow the ID token at each sign-in.
    pub attributes: Vec<(String, String)>,
    /// Dotted path to the groups `required_groups` is checked against. Default `groups`.
    pub groups_claim: String,
    /// The user must be in one of these groups (empty: no requirement).
    pub required_groups: Vec<String>,
    /// The verified email's domain must be one of these (empty: any), lower-case.
    pub allowed_domains: Vec<String>,
    pub users: UserPolicy,
    /// The `acr` value the provider uses for multi-factor authentication: sent as
    /// `acr_values` on step-up, and an ID token carrying it (or an `amr` with `mfa`, `otp`,
    /// `hwk`, `swk`, `sc`, RFC 8176) makes the session `mfa`. Default `mfa`.
    pub mfa_acr: String,
    pub leeway: Duration,
    /// Absolute callback URL registered at the provider; `None`: built from the request's
    /// origin (`…/auth/oidc/{name}/callback`).
    pub redirect_uri: Option<String>,
    /// Where the provider sends the browser after RP-initiated logout; `None`: the origin's `/`.
    pub post_logout_redirect_uri: Option<String>,
}

impl fmt::Debug for LoginProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginProviderConfig")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("users", &self.users)
            .finish_non_exhaustive()
    }
}

/// Where a login provider's client secret comes from; resolved by the edge.
#[derive(Clone)]
pub enum ClientSecret {
    /// A public client (PKCE only, `token_endpoint_auth_method = none`).
    None,
    Value(crate::secret::SecretString),
    /// `client_secret_file`: the file's content, trailing newline removed.
    File(std::path::PathBuf),
    /// `client_secret = "${NAME}"`: the environment variable `NAME`.
    Env(String),
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Value(_) => f.write_str("Value(<redacted>)"),
            Self::File(p) => f.debug_tuple("File").field(p).finish(),
            Self::Env(n) => f.debug_tuple("Env").field(n).finish(),
        }
    }
}

/// `users =`: which accounts a provider sign-in may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserPolicy {
    /// Create a local user named by `username_claim` on first sign-in.
    Provision,
    /// Only an existing user whose name is the provider's verified email.
    Link,
    /// Only an existing user named by `username_claim`.
    Existing,
}

/// Where an issuer's verification keys come from.
#[derive(Clone)]
pub enum IssuerKeys {
    JwksUrl(String),
    JwksFile(std::path::PathBuf),
    /// HS256/384/512 shared secret. Never printed.
    Secret(crate::secret::SecretBytes),
}

impl fmt::Debug for IssuerKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::JwksUrl(u) => f.debug_tuple("JwksUrl").field(u).finish(),
            Self::JwksFile(p) => f.debug_tuple("JwksFile").field(p).finish(),
            Self::Secret(_) => f.write_str("Secret(<redacted>)"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub max: u32,
    pub per: Duration,
}

/// `[throttle]`: failed-authentication limits (row 4). On by default: 20 password failures
/// a minute per client IP, 5 per 15 minutes per account, 100 failed token verifications a
/// minute per client IP; a locked client's 429 is held for a second.
#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    pub failed_per_ip: Option<Window>,
    pub failed_per_account: Option<Window>,
    /// Failed verifications of bearer tokens, API keys and session cookies per client IP
    /// (CPU protection; never counted toward `failed_per_ip`). Over it, unknown ones from
    /// that address are refused without verifying; ones the gateway knows still pass.
    pub failed_tokens_per_ip: Option<Window>,
    /// How long a locked client's `too_many_attempts` answer is held before it is sent
    /// (never past its `Retry-After`); zero answers at once.
    pub tarpit: Duration,
}

/// The longest `[throttle] tarpit` accepted: every held answer keeps a connection open.
pub const MAX_TARPIT: Duration = Duration::from_secs(10);

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            failed_per_ip: Some(Window {
                max: 20,
                per: Duration::from_secs(60),
            }),
            failed_per_account: Some(Window {
                max: 5,
                per: Duration::from_secs(900),
            }),
            failed_tokens_per_ip: Some(Window {
                max: 100,
                per: Duration::from_secs(60),
            }),
            tarpit: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct AuditConfig {
    /// JSON-lines file receiving every audit record (besides the store's table).
    pub file: Option<std::path::PathBuf>,
    /// Also record allowed requests, not only refusals.
    pub log_allowed: bool,
}

/// `[alerts]`: when a minute's 401/403 count is an alert (docs/operations.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertsConfig {
    /// Receives each alert as a JSON `POST`; `None`: log and audit record only.
    pub webhook_url: Option<String>,
    /// A minute needs at least this many 401/403 answers to alert. Default 50.
    pub min_per_minute: u64,
    /// …and more than `factor` times the baseline. Default 3.
    pub factor: u64,
    /// The baseline is the mean per minute over this many previous minutes. Default 10.
    pub baseline_minutes: u64,
    /// 401/403 answers to one client IP within a minute that make a burst. Default 30.
    pub ip_burst_per_minute: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            webhook_url: None,
            min_per_minute: 50,
            factor: 3,
            baseline_minutes: 10,
            ip_burst_per_minute: 30,
        }
    }
}

/// `[telemetry]`: W3C Trace Context and the export of spans over OTLP/HTTP (design §6).
/// `traceparent` is propagated to the upstream whether or not spans are exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// The OTLP/HTTP base URL (as `OTEL_EXPORTER_OTLP_ENDPOINT`): spans are `POST`ed as
    /// OTLP JSON to `<otlp_endpoint>/v1/traces`. `None`: nothing is exported.
    pub otlp_endpoint: Option<String>,
    /// The resource's `service.name`. Default `gatehouse`.
    pub service_name: String,
    /// Spans are sent at least this often (and whenever 512 are waiting). Default 5 s.
    pub export_interval: Duration,
    /// Spans waiting for export at most; beyond it new spans are dropped (and counted), so
    /// a slow collector never holds a request. Default 2048.
    pub max_queue: usize,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "gatehouse".to_owned(),
            export_interval: Duration::from_secs(5),
            max_queue: 2048,
        }
    }
}

/// `[admin]`: who may use the admin port's console and API (design §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// A principal with any of these roles is an administrator (Bearer token or session).
    /// Default `["admin"]`. API keys need the scope `gatehouse:admin` instead.
    pub roles: Vec<String>,
    /// `/metrics` asks for the same credentials as the admin API. Default `false`: scrapeable
    /// without credentials (the admin port is not public).
    pub metrics_auth: bool,
    /// How long the per-minute decision rollups (the console's charts) are kept. Default
    /// 30 days.
    pub stats_retention: Duration,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            roles: vec!["admin".to_owned()],
            metrics_auth: false,
            stats_retention: Duration::from_secs(30 * 86_400),
        }
    }
}

/// `[cors]`: answers preflights on protected routes without credentials (row 23).
#[derive(Debug, Clone)]
pub struct CorsConfig {
    /// Exact origins, or `"*"`. Empty: preflights get 204 with no `Access-Control-Allow-*`
    /// headers, which browsers treat as a refusal.
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub allow_credentials: bool,
    pub max_age: Option<Duration>,
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            allowed_methods: ["GET", "POST", "PUT", "PATCH", "DELETE"]
                .map(str::to_owned)
                .to_vec(),
            allowed_headers: ["Authorization", "Content-Type", "X-API-Key"]
                .map(str::to_owned)
                .to_vec(),
            allow_credentials: false,
            max_age: None,
        }
    }
}

/// `[defaults]`: what unmatched paths get, and the schemes routes accept unless they say.
#[derive(Debug, Clone)]
pub struct DefaultsConfig {
    /// Default [`Access::Authenticated`].
    pub access: Access,
    /// Default `["bearer", "api_key"]`.
    pub auth: Vec<Scheme>,
}

impl Default for DefaultsConfig {
    fn default() -> Self {
        Self {
            access: Access::Authenticated,
            auth: vec![Scheme::Bearer, Scheme::ApiKey],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Authenticated,
    Deny,
}

/// One `[[route]]`.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub name: String,
    /// Pattern: `/api/admin/**`, `/tenants/{tenant}/**`, `/users/{user_id}`.
    pub path: String,
    /// Upper-case methods; empty means any method.
    pub methods: Vec<String>,
    pub access: Access,
    pub auth: Vec<Scheme>,
    /// Any of.
    pub roles: Vec<String>,
    /// All of.
    pub scopes: Vec<String>,
    pub mfa: bool,
    pub max_age: Option<Duration>,
    pub tenant_param: Option<String>,
    pub owner_param: Option<String>,
    pub networks: Vec<IpNet>,
    pub deny_networks: Vec<IpNet>,
    pub hidden: bool,
    pub quota: Option<Window>,
    /// Row 26: `countries`, `deny_countries` and their companions; `None` = any country.
    pub countries: Option<crate::geo::CountryRule>,
    /// `[[route.require]]` (row 25), in file order.
    pub require: Vec<crate::requirements::Requirement>,
    /// `when = '…'`: a CEL condition the request must meet (row 25).
    pub when: Option<std::sync::Arc<crate::requirements::Condition>>,
    /// 1-based line of the `[[route]]` header, for messages.
    pub line: usize,
}
