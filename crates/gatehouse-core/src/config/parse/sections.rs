//! The top level and the single-table sections: `[server]`, `[upstream]`, `[store]`,
//! `[cluster]`, `[tokens]`, `[throttle]`, `[audit]`, `[alerts]`, `[cors]`, `[defaults]`
//! (`[telemetry]` has its own module).

use super::fields::{ACCESS, schemes};
use super::{Ctx, Field, Table, brand, geo, issuers, login_providers, route, telemetry, values};
use crate::config::{
    AdminConfig, AlertsConfig, AuditConfig, ClusterConfig, Config, CorsConfig, DefaultsConfig,
    Disclosure, ForwardAuthBody, ServerConfig, StoreConfig, ThrottleConfig, TokensConfig,
    UpstreamConfig,
};

const SECTIONS: &[&str] = &[
    "server",
    "upstream",
    "store",
    "cluster",
    "tokens",
    "issuers",
    "login_providers",
    "throttle",
    "audit",
    "alerts",
    "admin",
    "telemetry",
    "cors",
    "defaults",
    "route",
    "geoip",
    "problems",
    "pages",
];

/// Walks the whole document; defaults stand in wherever a value is absent or invalid (in
/// the invalid case an error was recorded, so the result is discarded anyway).
pub(super) fn document(ctx: &mut Ctx<'_>, root: &Table<'_, '_>) -> Config {
    ctx.unknown_keys(root, SECTIONS);
    let mut config = Config::default();
    if let Some(t) = section(ctx, root, "server") {
        config.server = server(ctx, &t);
    }
    if let Some(t) = section(ctx, root, "upstream") {
        config.upstream = upstream(ctx, &t);
    }
    if let Some(t) = section(ctx, root, "store") {
        config.store = store(ctx, &t);
    }
    if let Some(t) = section(ctx, root, "cluster") {
        config.cluster = cluster(ctx, &t, &config.store);
    }
    if let Some(t) = section(ctx, root, "tokens") {
        config.tokens = tokens(ctx, &t);
    }
    if let Some(t) = section(ctx, root, "throttle") {
        config.throttle = throttle(ctx, &t);
    }
    if let Some(t) = section(ctx, root, "audit") {
        config.audit = audit(ctx, &t);
    }
    if let Some(t) = section(ctx, root, "alerts") {
        config.alerts = alerts(ctx, &t);
    }
    if let Some(t) = section(ctx, root, "admin") {
        config.admin = admin(ctx, &t);
    }
    if let Some(t) = section(ctx, root, "telemetry") {
        config.telemetry = telemetry::telemetry(ctx, &t);
    }
    if let Some(t) = section(ctx, root, "cors") {
        config.cors = cors(ctx, &t);
    }
    if let Some(t) = section(ctx, root, "defaults") {
        config.defaults = defaults(ctx, &t);
    }
    if let Some(f) = root.get("issuers") {
        config.issuers = issuers::issuers(ctx, &f);
    }
    if let Some(f) = root.get("login_providers") {
        config.login_providers = login_providers::login_providers(ctx, &f);
    }
    if let Some(f) = root.get("route") {
        config.routes = route::routes(ctx, &f, &config.defaults);
    }
    if let Some(t) = section(ctx, root, "geoip") {
        config.geoip = geo::section(ctx, &t);
    }
    geo::needs_database(ctx, &config);
    if let Some(t) = section(ctx, root, "problems") {
        config.problems = brand::problems(ctx, &t);
    }
    if let Some(t) = section(ctx, root, "pages") {
        config.pages = brand::pages(ctx, &t);
    }
    config
}

/// A `[name]` section, or `None` when absent or not a table (the latter reported).
fn section<'a, 'i>(ctx: &mut Ctx<'_>, root: &Table<'a, 'i>, name: &str) -> Option<Table<'a, 'i>> {
    let f = root.get(name)?;
    ctx.table(&f)
}

fn server(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> ServerConfig {
    ctx.unknown_keys(
        t,
        &[
            "listen",
            "admin_listen",
            "realm",
            "trusted_proxies",
            "disclosure",
            "scope_challenge",
            "forward_auth_body",
            "max_body_bytes",
            "digest_algorithms",
            "header_timeout",
            "max_headers",
            "max_header_bytes",
            "max_connections",
            "tls",
            "password_sign_in",
        ],
    );
    let mut s = ServerConfig::default();
    if let Some(v) = t
        .get("listen")
        .and_then(|f| ctx.parsed(&f, values::socket_addr))
    {
        s.listen = v;
    }
    s.admin_listen = t
        .get("admin_listen")
        .and_then(|f| ctx.parsed(&f, values::socket_addr));
    if s.admin_listen == Some(s.listen) {
        let f = t.get("admin_listen");
        let span = f.as_ref().map_or(t.span.clone(), |f| f.span.clone());
        ctx.error(
            &span,
            &t.key("admin_listen"),
            format!(
                "`{}` is also `listen`; the admin listener must never share the public port",
                s.listen
            ),
        );
    }
    if let Some(v) = t.get("realm").and_then(|f| ctx.parsed(&f, values::realm)) {
        s.realm = v;
    }
    if let Some(v) = t
        .get("trusted_proxies")
        .and_then(|f| ctx.list(&f, values::cidr))
    {
        s.trusted_proxies = v;
    }
    let disclosure = [
        ("helpful", Disclosure::Helpful),
        ("minimal", Disclosure::Minimal),
    ];
    if let Some(v) = t
        .get("disclosure")
        .and_then(|f| ctx.choice(&f, &disclosure))
    {
        s.disclosure = v;
    }
    if let Some(v) = t.get("scope_challenge").and_then(|f| ctx.bool(&f)) {
        s.scope_challenge = v;
    }
    if let Some(v) = t.get("password_sign_in").and_then(|f| ctx.bool(&f)) {
        s.password_sign_in = v;
    }
    let body = [
        ("auto", ForwardAuthBody::Auto),
        ("full", ForwardAuthBody::Full),
        ("empty", ForwardAuthBody::Empty),
    ];
    if let Some(v) = t
        .get("forward_auth_body")
        .and_then(|f| ctx.choice(&f, &body))
    {
        s.forward_auth_body = v;
    }
    if let Some(v) = t.get("max_body_bytes").and_then(|f| ctx.u64(&f)) {
        s.max_body_bytes = v;
    }
    if let Some(f) = t.get("tls") {
        s.tls = tls_files(ctx, &f);
    }
    if let Some(v) = t.get("header_timeout").and_then(|f| ctx.duration(&f)) {
        s.header_timeout = v;
    }
    // Connection limits: at least 1, and a head of at least 8 KiB (the HTTP/1 parser's
    // smallest buffer; RFC 9112 §3 recommends supporting request lines of 8000 octets).
    for (key, least, slot) in [
        ("max_headers", 1, &mut s.max_headers),
        ("max_header_bytes", 8192, &mut s.max_header_bytes),
        ("max_connections", 1, &mut s.max_connections),
    ] {
        if let Some(f) = t.get(key)
            && let Some(v) = ctx.u64(&f)
        {
            match usize::try_from(v) {
                Ok(v) if v >= least => *slot = v,
                _ => ctx.error(&f.span, &f.key, format!("expected at least {least}")),
            }
        }
    }
    if let Some(f) = t.get("digest_algorithms")
        && let Some(v) = ctx.list(&f, values::digest_algorithm)
    {
        if v.is_empty() {
            let msg = "list at least one Digest algorithm (`SHA-256`, `MD5`); \
                       routes choose whether Digest is accepted with `auth`";
            ctx.error(&f.span, &f.key, msg);
        } else {
            let mut v = v;
            v.sort_by_key(|a| a.strength_rank());
            v.dedup();
            s.digest_algorithms = v;
        }
    }
    s
}

fn upstream(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Option<UpstreamConfig> {
    ctx.unknown_keys(t, &["url", "connect_timeout", "timeout", "http2"]);
    ctx.require(t, "url");
    let url = t.get("url").and_then(|f| {
        ctx.parsed(&f, |s| {
            values::http_url(s)?;
            Ok(s.to_owned())
        })
    });
    let connect_timeout = t.get("connect_timeout").and_then(|f| ctx.duration(&f));
    let timeout = t.get("timeout").and_then(|f| ctx.duration(&f));
    let http2 = t.get("http2").and_then(|f| ctx.bool(&f));
    Some(UpstreamConfig {
        url: url?,
        connect_timeout: connect_timeout.unwrap_or(std::time::Duration::from_secs(5)),
        timeout: timeout.unwrap_or(std::time::Duration::from_secs(30)),
        http2: http2.unwrap_or(false),
    })
}

fn store(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> StoreConfig {
    ctx.unknown_keys(t, &["url"]);
    let url = t.get("url").and_then(|f| ctx.parsed(&f, store_url));
    url.map_or_else(StoreConfig::default, |url| StoreConfig { url })
}

/// `sqlite://path` or `sqlite::memory:`. The URL is not echoed in errors: a postgres URL
/// may carry a password.
fn store_url(s: &str) -> Result<String, String> {
    if s == "sqlite::memory:" {
        return Ok(s.to_owned());
    }
    if let Some(path) = s.strip_prefix("sqlite://") {
        return if path.is_empty() {
            Err("`sqlite://` needs a file path, e.g. `sqlite://gatehouse.db`".to_owned())
        } else {
            Ok(s.to_owned())
        };
    }
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        // Host, credentials and options are checked when the store connects (design §5).
        return Ok(s.to_owned());
    }
    let scheme = s.split_once(':').map_or(s, |(scheme, _)| scheme);
    Err(format!(
        "unsupported store url scheme `{scheme}`: expected `sqlite://path`, `sqlite::memory:` \
         or `postgres://...`"
    ))
}

/// `[cluster]`: the Redis that nodes share (design §5). The URL is checked for its scheme
/// only (host and credentials are checked when the node connects) and never echoed: it may
/// carry a password.
fn cluster(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, store: &StoreConfig) -> ClusterConfig {
    ctx.unknown_keys(t, &["redis_url", "key_prefix", "timeout"]);
    let mut c = ClusterConfig::default();
    if let Some(f) = t.get("redis_url") {
        c.redis_url = ctx.parsed(&f, redis_url);
        if c.redis_url.is_some() && store.url.starts_with("sqlite") {
            let line = ctx.line(f.span.start);
            ctx.warn(
                Some(line),
                "`cluster.redis_url` is set but `[store] url` is SQLite: nodes on different machines cannot share a SQLite file; use `postgres://...` for several nodes",
            );
        }
    }
    if let Some(f) = t.get("key_prefix") {
        c.key_prefix = ctx
            .parsed(&f, |s| {
                if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_graphic()) {
                    Err("expected 1 to 64 printable characters without spaces, e.g. `gatehouse-prod`".to_owned())
                } else {
                    Ok(s.to_owned())
                }
            })
            .unwrap_or(c.key_prefix);
    }
    if let Some(f) = t.get("timeout") {
        match ctx.duration(&f) {
            Some(d) if d > std::time::Duration::from_secs(10) => {
                let msg = "expected at most `10s` (a bound on every redis call), e.g. `250ms`";
                ctx.error(&f.span, &f.key, msg);
            }
            Some(d) => c.timeout = d,
            None => {}
        }
    }
    c
}

/// `redis://…` or `rediss://…` (TLS) with a host.
fn redis_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("redis://")
        .or_else(|| s.strip_prefix("rediss://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(s.to_owned()),
        Some(_) => Err("the redis url needs a host, e.g. `redis://127.0.0.1:6379`".to_owned()),
        None => {
            let scheme = s.split_once(':').map_or("", |(scheme, _)| scheme);
            Err(format!(
                "unsupported redis url scheme `{scheme}`: expected `redis://host:port` or `rediss://host:port` (TLS)"
            ))
        }
    }
}

/// `tls = { cert = "cert.pem", key = "key.pem" }`: both paths, non-empty. (The files are
/// read when the listener starts; a bad file fails the start with its name.)
fn tls_files(ctx: &mut Ctx<'_>, f: &Field<'_, '_>) -> Option<crate::config::TlsFiles> {
    let t = ctx.table(f)?;
    ctx.unknown_keys(&t, &["cert", "key"]);
    let has_cert = ctx.require(&t, "cert");
    let has_key = ctx.require(&t, "key");
    let path = |ctx: &mut Ctx<'_>, k: &str| {
        t.get(k)
            .and_then(|f| ctx.parsed(&f, values::non_empty))
            .map(std::path::PathBuf::from)
    };
    let cert = path(ctx, "cert");
    let key = path(ctx, "key");
    (has_cert && has_key).then_some(())?;
    Some(crate::config::TlsFiles {
        cert: cert?,
        key: key?,
    })
}

fn tokens(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> TokensConfig {
    ctx.unknown_keys(
        t,
        &[
            "issuer",
            "audience",
            "access_ttl",
            "refresh_ttl",
            "leeway",
            "key_sync",
        ],
    );
    let mut k = TokensConfig::default();
    if let Some(v) = t
        .get("issuer")
        .and_then(|f| ctx.parsed(&f, values::non_empty))
    {
        k.issuer = v;
    }
    if let Some(v) = t
        .get("audience")
        .and_then(|f| ctx.parsed(&f, values::non_empty))
    {
        k.audience = v;
    }
    let access = t.get("access_ttl").and_then(|f| ctx.duration(&f));
    let refresh_field = t.get("refresh_ttl");
    let refresh = refresh_field.as_ref().and_then(|f| ctx.duration(f));
    if let Some(v) = access {
        k.access_ttl = v;
    }
    if let Some(v) = refresh {
        k.refresh_ttl = v;
    }
    if let Some(v) = t.get("leeway").and_then(|f| ctx.duration(&f)) {
        k.leeway = v;
    }
    if let Some(v) = t.get("key_sync").and_then(|f| ctx.duration(&f)) {
        k.key_sync = v;
    }
    // Only judged when both were given or valid, so one bad value is not reported twice.
    let both_valid = t.get("access_ttl").is_none_or(|_| access.is_some())
        && t.get("refresh_ttl").is_none_or(|_| refresh.is_some());
    if both_valid && k.refresh_ttl <= k.access_ttl {
        let span = refresh_field.map_or_else(
            || t.get("access_ttl").map_or(t.span.clone(), |f| f.span),
            |f| f.span,
        );
        ctx.error(
            &span,
            &t.key("refresh_ttl"),
            "`refresh_ttl` must be longer than `access_ttl`, or refreshing could never help",
        );
    }
    k
}

fn throttle(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> ThrottleConfig {
    ctx.unknown_keys(
        t,
        &[
            "failed_per_ip",
            "failed_per_account",
            "failed_tokens_per_ip",
            "tarpit",
        ],
    );
    let d = ThrottleConfig::default();
    let tarpit = match t.get("tarpit") {
        None => d.tarpit,
        Some(f) => match ctx.parsed(&f, values::parse_duration_or_zero) {
            Some(v) if v > crate::config::MAX_TARPIT => {
                let msg = "expected at most `10s` (each held answer keeps a connection open), \
                           e.g. `1s`, or `0s` to answer at once";
                ctx.error(&f.span, &f.key, msg);
                d.tarpit
            }
            Some(v) => v,
            None => d.tarpit,
        },
    };
    ThrottleConfig {
        failed_per_ip: t
            .get("failed_per_ip")
            .map_or(d.failed_per_ip, |f| ctx.window(&f)),
        failed_per_account: t
            .get("failed_per_account")
            .map_or(d.failed_per_account, |f| ctx.window(&f)),
        failed_tokens_per_ip: t
            .get("failed_tokens_per_ip")
            .map_or(d.failed_tokens_per_ip, |f| ctx.window(&f)),
        tarpit,
    }
}

fn audit(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> AuditConfig {
    ctx.unknown_keys(t, &["file", "log_allowed"]);
    AuditConfig {
        file: t
            .get("file")
            .and_then(|f| ctx.parsed(&f, values::non_empty))
            .map(Into::into),
        log_allowed: t
            .get("log_allowed")
            .and_then(|f| ctx.bool(&f))
            .unwrap_or(false),
    }
}

fn alerts(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> AlertsConfig {
    ctx.unknown_keys(
        t,
        &[
            "webhook_url",
            "min_per_minute",
            "factor",
            "baseline",
            "ip_burst_per_minute",
        ],
    );
    let d = AlertsConfig::default();
    let webhook_url = t.get("webhook_url").and_then(|f| {
        let url = ctx.parsed(&f, |s| values::http_url(s).map(|u| (u, s.to_owned())))?;
        if !url.0.https && !url.0.is_loopback() {
            let line = ctx.line(f.span.start);
            ctx.warn(
                Some(line),
                "`alerts.webhook_url` posts alerts over plain http to a non-loopback host; use https",
            );
        }
        Some(url.1)
    });
    let mut positive = |key: &str, default: u64| {
        let Some(f) = t.get(key) else {
            return default;
        };
        match ctx.u64(&f) {
            Some(0) => {
                ctx.error(&f.span, &f.key, format!("`{key}` must be at least 1"));
                default
            }
            Some(n) => n,
            None => default,
        }
    };
    let min_per_minute = positive("min_per_minute", d.min_per_minute);
    let factor = positive("factor", d.factor);
    let ip_burst_per_minute = positive("ip_burst_per_minute", d.ip_burst_per_minute);
    let baseline_minutes =
        t.get("baseline")
            .map_or(d.baseline_minutes, |f| match ctx.duration(&f) {
                Some(v)
                    if v.as_secs() >= 60 && v.as_secs() % 60 == 0 && v.as_secs() <= 1440 * 60 =>
                {
                    v.as_secs() / 60
                }
                Some(_) => {
                    ctx.error(
                        &f.span,
                        &f.key,
                        "`baseline` must be whole minutes, from `1m` to `1d`",
                    );
                    d.baseline_minutes
                }
                None => d.baseline_minutes,
            });
    AlertsConfig {
        webhook_url,
        min_per_minute,
        factor,
        baseline_minutes,
        ip_burst_per_minute,
    }
}

fn admin(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> AdminConfig {
    ctx.unknown_keys(t, &["roles", "metrics_auth", "stats_retention"]);
    let d = AdminConfig::default();
    let roles = match t.get("roles") {
        None => d.roles,
        Some(f) => match ctx.list(&f, values::non_empty) {
            Some(r) if r.is_empty() => {
                // An empty list would make nobody an administrator by role: say so.
                ctx.error(
                    &f.span,
                    &f.key,
                    "expected at least one role, e.g. [\"admin\"]",
                );
                d.roles
            }
            Some(r) => r,
            None => d.roles,
        },
    };
    AdminConfig {
        roles,
        metrics_auth: t
            .get("metrics_auth")
            .and_then(|f| ctx.bool(&f))
            .unwrap_or(d.metrics_auth),
        stats_retention: t
            .get("stats_retention")
            .and_then(|f| ctx.duration(&f))
            .unwrap_or(d.stats_retention),
    }
}

fn cors(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> CorsConfig {
    ctx.unknown_keys(
        t,
        &[
            "allowed_origins",
            "allowed_methods",
            "allowed_headers",
            "allow_credentials",
            "max_age",
        ],
    );
    let mut c = CorsConfig::default();
    let origins_field = t.get("allowed_origins");
    if let Some(v) = origins_field
        .as_ref()
        .and_then(|f| ctx.list(f, values::origin))
    {
        c.allowed_origins = v;
    }
    let wildcard = c.allowed_origins.iter().any(|o| o == "*");
    if let Some(f) = origins_field.as_ref()
        && wildcard
        && c.allowed_origins.len() > 1
    {
        ctx.error(
            &f.span,
            &f.key,
            "`*` allows every origin; it cannot be combined with other origins",
        );
    }
    if let Some(v) = t
        .get("allowed_methods")
        .and_then(|f| ctx.list(&f, values::method))
    {
        c.allowed_methods = v;
    }
    if let Some(v) = t.get("allowed_headers").and_then(|f| {
        ctx.list(&f, |s| {
            if values::is_token(s) {
                Ok(s.to_owned())
            } else {
                Err(format!("invalid header name `{}`", s.escape_debug()))
            }
        })
    }) {
        c.allowed_headers = v;
    }
    if let Some(f) = t.get("allow_credentials") {
        if let Some(v) = ctx.bool(&f) {
            c.allow_credentials = v;
        }
        // Fetch standard, CORS protocol: `Access-Control-Allow-Origin: *` is never honoured
        // for credentialed requests.
        if c.allow_credentials && wildcard {
            ctx.error(
                &f.span,
                &f.key,
                "`allow_credentials = true` cannot be used with the origin `*`; list the origins",
            );
        }
    }
    c.max_age = t.get("max_age").and_then(|f| ctx.duration(&f));
    c
}

fn defaults(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> DefaultsConfig {
    ctx.unknown_keys(t, &["access", "auth"]);
    let mut d = DefaultsConfig::default();
    if let Some(v) = t.get("access").and_then(|f| ctx.choice(&f, ACCESS)) {
        d.access = v;
    }
    if let Some(v) = t.get("auth").and_then(|f| schemes(ctx, &f)) {
        d.auth = v;
    }
    d
}
