//! Config parsing end to end: whole files in, `Config` or every error out.

use std::net::SocketAddr;
use std::time::Duration;

use gatehouse_core::config::{
    Access, ConfigError, Disclosure, ForwardAuthBody, IssuerKeys, Scheme, parse,
};
use gatehouse_core::digest::Algorithm as DigestAlgorithm;
use jsonwebtoken::Algorithm;

/// Design §3's example, minus `[cluster]`; the admin route's path carries the `{tenant}` and
/// `{user_id}` parameters its `tenant_param` / `owner_param` name.
const FULL: &str = r#"
[server]
listen = "127.0.0.1:8080"
admin_listen = "127.0.0.1:9090"     # dashboard, admin API, /metrics
realm = "api.example.com"
trusted_proxies = ["127.0.0.1/32", "::1"]
disclosure = "minimal"
scope_challenge = false
forward_auth_body = "empty"
max_body_bytes = 1_048_576

[upstream]
url = "http://127.0.0.1:3000"
connect_timeout = "2s"

[store]
url = "sqlite://gatehouse.db"

[tokens]
issuer = "https://api.example.com"
audience = "api"
access_ttl = "15m"
refresh_ttl = "30d"

[[issuers]]
name = "corp-sso"
issuer = "https://sso.example.com"
audience = "api"
jwks_url = "https://sso.example.com/.well-known/jwks.json"
algorithms = ["RS256"]
roles_claim = "realm_access.roles"
scopes_claim = "scope"
tenant_claim = "org_id"

[[issuers]]
name = "partner"
issuer = "https://partner.example.com"
audience = ["api", "api2"]
secret = "0123456789abcdef0123456789abcdef"
algorithms = ["HS256"]
leeway = "10s"

[throttle]
failed_per_ip = { max = 20, per = "1m" }
failed_per_account = { max = 5, per = "15m" }
tarpit = "500ms"

[audit]
file = "audit.jsonl"
log_allowed = false

[cors]
allowed_origins = ["https://App.example.com", "http://localhost:5173"]
allow_credentials = true
max_age = "10m"

[defaults]
access = "authenticated"
auth = ["bearer", "api_key"]

[[route]]
name = "admin"
path = "/tenants/{tenant}/users/{user_id}/**"
methods = ["GET", "post", "PUT", "DELETE"]
auth = ["bearer", "api_key", "basic", "digest", "session"]
roles = ["admin"]
scopes = ["admin:read"]
mfa = true
max_age = "10m"
tenant_param = "tenant"
owner_param = "user_id"
networks = ["10.0.0.0/8"]
deny_networks = []
hidden = false
access = "authenticated"
quota = { max = 100, per = "1m" }

[[route]]
name = "health"
path = "/health"
access = "public"
"#;

fn errors(text: &str) -> Vec<ConfigError> {
    match parse(text) {
        Ok((c, _)) => panic!("expected errors, got {c:?}"),
        Err(e) => e.0,
    }
}

/// `(line, key)` pairs, with the message kept for assertion output.
fn located(errs: &[ConfigError]) -> Vec<(usize, &str)> {
    errs.iter()
        .map(|e| (e.line.unwrap_or(0), e.key.as_str()))
        .collect()
}

#[test]
fn full_config_parses_to_expected_values() {
    let (c, warnings) = parse(FULL).unwrap();
    let s = &c.server;
    assert_eq!(s.listen, "127.0.0.1:8080".parse::<SocketAddr>().unwrap());
    assert_eq!(s.admin_listen, Some("127.0.0.1:9090".parse().unwrap()));
    assert_eq!(s.realm, "api.example.com");
    let proxies: Vec<String> = s.trusted_proxies.iter().map(ToString::to_string).collect();
    assert_eq!(proxies, ["127.0.0.1/32", "::1/128"]);
    assert_eq!(s.disclosure, Disclosure::Minimal);
    assert!(!s.scope_challenge);
    assert_eq!(s.forward_auth_body, ForwardAuthBody::Empty);
    assert_eq!(s.max_body_bytes, 1_048_576);

    let u = c.upstream.as_ref().unwrap();
    assert_eq!(u.url, "http://127.0.0.1:3000");
    assert_eq!(u.connect_timeout, Duration::from_secs(2));
    assert_eq!(u.timeout, Duration::from_secs(30));
    assert_eq!(c.store.url, "sqlite://gatehouse.db");
    assert_eq!(c.tokens.issuer, "https://api.example.com");
    assert_eq!(c.tokens.access_ttl, Duration::from_secs(900));
    assert_eq!(c.tokens.refresh_ttl, Duration::from_secs(30 * 86_400));
    assert_eq!(c.tokens.leeway, Duration::from_secs(30));

    assert_eq!(c.issuers.len(), 2);
    let sso = &c.issuers[0];
    assert_eq!(sso.name, "corp-sso");
    assert_eq!(sso.audience, ["api"]);
    assert!(matches!(&sso.keys, IssuerKeys::JwksUrl(u) if u.ends_with("/jwks.json")));
    assert_eq!(sso.algorithms, [Algorithm::RS256]);
    assert_eq!(sso.roles_claim, "realm_access.roles");
    assert_eq!(sso.tenant_claim, "org_id");
    assert_eq!(sso.subject_claim, "sub");
    let partner = &c.issuers[1];
    assert_eq!(partner.audience, ["api", "api2"]);
    assert!(
        matches!(&partner.keys, IssuerKeys::Secret(s) if s.expose() == b"0123456789abcdef0123456789abcdef")
    );
    assert_eq!(partner.roles_claim, "roles");
    assert_eq!(partner.scopes_claim, "scope");
    assert_eq!(partner.leeway, Duration::from_secs(10));
    // The secret never shows in Debug output.
    assert!(!format!("{c:?}").contains("0123456789abcdef"));

    let ip = c.throttle.failed_per_ip.unwrap();
    assert_eq!((ip.max, ip.per), (20, Duration::from_secs(60)));
    let acct = c.throttle.failed_per_account.unwrap();
    assert_eq!((acct.max, acct.per), (5, Duration::from_secs(900)));
    assert_eq!(c.throttle.tarpit, Duration::from_millis(500));
    assert_eq!(c.audit.file.as_deref(), Some("audit.jsonl".as_ref()));
    assert!(!c.audit.log_allowed);
    assert_eq!(
        c.cors.allowed_origins,
        ["https://app.example.com", "http://localhost:5173"]
    );
    assert!(c.cors.allow_credentials);
    assert_eq!(c.cors.max_age, Some(Duration::from_secs(600)));
    assert_eq!(c.cors.allowed_methods.len(), 5);
    assert_eq!(c.defaults.auth, [Scheme::Bearer, Scheme::ApiKey]);

    assert_eq!(c.routes.len(), 2);
    let admin = &c.routes[0];
    assert_eq!(admin.name, "admin");
    assert_eq!(admin.line, 61);
    assert_eq!(admin.methods, ["GET", "POST", "PUT", "DELETE"]);
    assert_eq!(
        admin.auth,
        [
            Scheme::Bearer,
            Scheme::ApiKey,
            Scheme::Basic,
            Scheme::Digest,
            Scheme::Session
        ]
    );
    assert_eq!(admin.roles, ["admin"]);
    assert_eq!(admin.scopes, ["admin:read"]);
    assert!(admin.mfa);
    assert_eq!(admin.max_age, Some(Duration::from_secs(600)));
    assert_eq!(admin.tenant_param.as_deref(), Some("tenant"));
    assert_eq!(admin.owner_param.as_deref(), Some("user_id"));
    assert_eq!(admin.networks[0].to_string(), "10.0.0.0/8");
    assert!(admin.deny_networks.is_empty());
    assert_eq!(admin.quota.unwrap().max, 100);
    let health = &c.routes[1];
    assert_eq!(health.access, Access::Public);
    assert_eq!(health.auth, [Scheme::Bearer, Scheme::ApiKey]);
    assert!(health.methods.is_empty());
    assert_eq!(health.line, 78);

    // Every section is enforced: nothing warns.
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn alerts_section_parses_with_defaults_and_checks() {
    let (c, warnings) = parse("").unwrap();
    assert!(warnings.is_empty());
    assert_eq!(c.alerts, gatehouse_core::config::AlertsConfig::default());
    assert_eq!(
        (
            c.alerts.min_per_minute,
            c.alerts.factor,
            c.alerts.baseline_minutes,
            c.alerts.ip_burst_per_minute
        ),
        (50, 3, 10, 30)
    );
    assert!(c.alerts.webhook_url.is_none());

    let (c, warnings) = parse(
        "[alerts]\nwebhook_url = \"https://hooks.example/T0/abc\"\nmin_per_minute = 5\nfactor = 2\nbaseline = \"30m\"\nip_burst_per_minute = 7\n",
    )
    .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        c.alerts.webhook_url.as_deref(),
        Some("https://hooks.example/T0/abc")
    );
    assert_eq!(
        (
            c.alerts.min_per_minute,
            c.alerts.factor,
            c.alerts.baseline_minutes,
            c.alerts.ip_burst_per_minute
        ),
        (5, 2, 30, 7)
    );

    // Plain http to a remote host warns; loopback does not.
    let (_, warnings) = parse("[alerts]\nwebhook_url = \"http://hooks.example/x\"\n").unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].line, Some(2));
    let (_, warnings) = parse("[alerts]\nwebhook_url = \"http://127.0.0.1:9/x\"\n").unwrap();
    assert!(warnings.is_empty());

    let errors = parse(
        "[alerts]\nwebhook_url = \"ftp://x\"\nfactor = 0\nbaseline = \"90s\"\nthreshold = 3\n",
    )
    .unwrap_err();
    let text = errors.to_string();
    assert_eq!(errors.0.len(), 4, "{text}");
    for needle in [
        "webhook_url",
        "`factor` must be at least 1",
        "whole minutes",
        "unknown key `threshold`",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}

#[test]
fn postgres_store_urls_are_accepted() {
    for url in [
        "postgres://gate:pw@db:5432/gatehouse",
        "postgresql://gate@127.0.0.1/gatehouse?sslmode=require",
    ] {
        let (c, _) = parse(&format!("[store]\nurl = \"{url}\"")).unwrap();
        assert_eq!(c.store.url, url);
    }
}

#[test]
fn empty_file_is_all_defaults() {
    let (c, warnings) = parse("").unwrap();
    assert!(warnings.is_empty());
    assert_eq!(
        c.server.listen,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(c.server.admin_listen, None);
    assert_eq!(c.server.realm, "api");
    assert!(c.server.trusted_proxies.is_empty());
    assert_eq!(c.server.disclosure, Disclosure::Helpful);
    assert!(c.server.scope_challenge);
    assert_eq!(c.server.forward_auth_body, ForwardAuthBody::Auto);
    assert_eq!(c.server.max_body_bytes, 10 * 1024 * 1024);
    assert_eq!(
        c.server.digest_algorithms,
        [DigestAlgorithm::Sha256, DigestAlgorithm::Md5]
    );
    assert!(c.upstream.is_none());
    assert_eq!(c.store.url, "sqlite://gatehouse.db");
    assert_eq!(c.tokens.issuer, "gatehouse");
    assert_eq!(c.tokens.audience, "api");
    assert_eq!(c.tokens.access_ttl, Duration::from_secs(15 * 60));
    assert_eq!(c.tokens.refresh_ttl, Duration::from_secs(30 * 86_400));
    assert_eq!(c.tokens.leeway, Duration::from_secs(30));
    assert_eq!(c.tokens.key_sync, Duration::from_secs(2));
    assert!(c.issuers.is_empty() && c.routes.is_empty());
    // Throttling is on by default (deny by default): 20/min per IP, 5/15 min per account.
    let ip = c.throttle.failed_per_ip.unwrap();
    assert_eq!((ip.max, ip.per), (20, Duration::from_secs(60)));
    let account = c.throttle.failed_per_account.unwrap();
    assert_eq!((account.max, account.per), (5, Duration::from_secs(900)));
    // A locked client's 429 is held for a second.
    assert_eq!(c.throttle.tarpit, Duration::from_secs(1));
    assert!(c.audit.file.is_none() && !c.audit.log_allowed);
    assert!(c.cors.allowed_origins.is_empty());
    assert_eq!(
        c.cors.allowed_methods,
        ["GET", "POST", "PUT", "PATCH", "DELETE"]
    );
    assert_eq!(
        c.cors.allowed_headers,
        ["Authorization", "Content-Type", "X-API-Key"]
    );
    assert!(!c.cors.allow_credentials && c.cors.max_age.is_none());
    assert_eq!(c.defaults.access, Access::Authenticated);
    assert_eq!(c.defaults.auth, [Scheme::Bearer, Scheme::ApiKey]);
    // Comments and blank lines only: the same.
    assert!(parse("# nothing here\n\n").is_ok());
}

#[test]
fn defaults_apply_when_keys_are_absent() {
    let text = r#"
[server]
realm = "r"
[upstream]
url = "https://backend.internal"
[defaults]
auth = ["basic"]
[[issuers]]
name = "i"
issuer = "https://i"
audience = "a"
jwks_file = "jwks.json"
algorithms = ["ES256", "EdDSA"]
[[route]]
name = "r"
path = "/x"
"#;
    let (c, _) = parse(text).unwrap();
    assert_eq!(c.server.listen.port(), 8080);
    let u = c.upstream.unwrap();
    assert_eq!(u.connect_timeout, Duration::from_secs(5));
    assert_eq!(u.timeout, Duration::from_secs(30));
    assert!(!u.http2, "HTTP/1.1 to the upstream unless asked");
    let i = &c.issuers[0];
    assert!(matches!(&i.keys, IssuerKeys::JwksFile(p) if p.as_os_str() == "jwks.json"));
    assert_eq!(
        (
            i.roles_claim.as_str(),
            i.scopes_claim.as_str(),
            i.tenant_claim.as_str(),
            i.subject_claim.as_str()
        ),
        ("roles", "scope", "tenant", "sub")
    );
    assert_eq!(i.leeway, Duration::from_secs(30));
    let r = &c.routes[0];
    assert_eq!(r.access, Access::Authenticated);
    assert_eq!(
        r.auth,
        [Scheme::Basic],
        "route auth defaults to [defaults].auth"
    );
    assert!(r.methods.is_empty() && r.roles.is_empty() && r.scopes.is_empty());
    assert!(!r.mfa && !r.hidden && r.max_age.is_none() && r.quota.is_none());
    assert_eq!(r.line, 14);
}

#[test]
fn every_error_is_reported_with_its_line() {
    let text = r#"[server]
listen = "127.0.0.1:8080"
lisen = "0.0.0.0:80"

[tokens]
access_ttl = "15 minutes"

[[issuers]]
name = "sso"
issuer = "https://sso.example.com"
audience = "api"
jwks_url = "https://sso.example.com/jwks.json"
algorithms = ["HS256"]

[[route]]
name = "a"
path = "/a"

[[route]]
name = "b"
path = "/b"

[[route]]
name = "c"
path = "/c/**"
networks = ["10.0.0.0/8", "10.0.0.999/8"]

[[route]]
name = "a"
path = "/users/{id}"
tenant_param = "tenant"
"#;
    let errs = errors(text);
    let got = located(&errs);
    assert_eq!(
        got,
        [
            (3, "server.lisen"),
            (6, "tokens.access_ttl"),
            (13, "issuers[0].algorithms"),
            (26, "route[2].networks[1]"),
            (29, "route[3].name"),
            (31, "route[3].tenant_param"),
        ],
        "{errs:#?}"
    );
    let msg = |i: usize| errs[i].message.as_str();
    assert!(msg(0).contains("unknown key `lisen`"), "{}", msg(0));
    assert!(msg(1).contains("`15 minutes`"), "{}", msg(1));
    assert!(
        msg(2).contains("`HS256`") && msg(2).contains("`secret`"),
        "{}",
        msg(2)
    );
    assert!(msg(3).contains("`10.0.0.999/8`"), "{}", msg(3));
    assert!(
        msg(4).contains("`a`") && msg(4).contains("line 15"),
        "{}",
        msg(4)
    );
    assert!(
        msg(5).contains("`tenant`") && msg(5).contains("`/users/{id}`"),
        "{}",
        msg(5)
    );
    for e in &errs {
        assert!(!e.message.starts_with(char::is_uppercase), "{e:?}");
    }
    let shown = parse(text).unwrap_err().to_string();
    assert!(
        shown.starts_with("line 3: `server.lisen`: unknown key"),
        "{shown}"
    );
    assert_eq!(shown.lines().count(), 6);
}

#[test]
fn syntax_errors_carry_their_line() {
    let errs = errors("[server]\nlisten = \"127.0.0.1:8080\"\nrealm = \n");
    assert_eq!(errs[0].line, Some(3), "{errs:?}");
    assert!(errs[0].message.starts_with("invalid toml"), "{errs:?}");
    let errs = errors("[server]\nrealm = \"a\"\nrealm = \"b\"\n");
    assert_eq!(errs[0].line, Some(3), "{errs:?}");
    assert!(errs[0].message.contains("duplicate key"), "{errs:?}");
}

#[test]
fn wrong_types_and_values() {
    let cases: &[(&str, usize, &str, &str)] = &[
        (
            "[server]\nlisten = 8080",
            2,
            "server.listen",
            "expected a string, found integer `8080`",
        ),
        (
            "[server]\nlisten = \"localhost:8080\"",
            2,
            "server.listen",
            "`localhost:8080`",
        ),
        (
            "[server]\nrealm = 'a\"b'",
            2,
            "server.realm",
            "contains `\\\"`",
        ),
        (
            "[server]\ndisclosure = \"loud\"",
            2,
            "server.disclosure",
            "unknown value `loud`",
        ),
        (
            "[server]\nmax_body_bytes = -1",
            2,
            "server.max_body_bytes",
            "`-1`",
        ),
        (
            "[server]\nscope_challenge = \"yes\"",
            2,
            "server.scope_challenge",
            "`\"yes\"`",
        ),
        (
            "[server]\ntrusted_proxies = [\"10.1.0.0/8\"]",
            2,
            "server.trusted_proxies[0]",
            "`10.0.0.0/8`",
        ),
        (
            "[server]\nlisten = \"127.0.0.1:1\"\nadmin_listen = \"127.0.0.1:1\"",
            3,
            "server.admin_listen",
            "never share",
        ),
        (
            "[upstream]\nurl = \"ftp://x\"",
            2,
            "upstream.url",
            "`ftp://x`",
        ),
        (
            "[upstream]\ntimeout = \"1s\"",
            1,
            "upstream.url",
            "missing required key `url`",
        ),
        (
            "[upstream]\nurl = \"http://x\"\nhttp2 = \"yes\"",
            3,
            "upstream.http2",
            "`true` or `false`",
        ),
        ("[store]\nurl = \"mysql://x\"", 2, "store.url", "`mysql`"),
        (
            "[cluster]\nredis_url = \"http://127.0.0.1\"",
            2,
            "cluster.redis_url",
            "`http`",
        ),
        (
            "[cluster]\nredis_url = \"redis://\"",
            2,
            "cluster.redis_url",
            "needs a host",
        ),
        (
            "[cluster]\ntimeout = \"0s\"",
            2,
            "cluster.timeout",
            "greater than zero",
        ),
        (
            "[cluster]\ntimeout = \"1m\"",
            2,
            "cluster.timeout",
            "at most `10s`",
        ),
        (
            "[cluster]\nkey_prefix = \"a b\"",
            2,
            "cluster.key_prefix",
            "without spaces",
        ),
        (
            "[tokens]\naccess_ttl = \"1h\"\nrefresh_ttl = \"30m\"",
            3,
            "tokens.refresh_ttl",
            "longer than",
        ),
        (
            "[throttle]\nfailed_per_ip = { max = 0, per = \"1m\" }",
            2,
            "throttle.failed_per_ip.max",
            "`0`",
        ),
        (
            "[throttle]\nfailed_per_ip = { max = 3 }",
            2,
            "throttle.failed_per_ip.per",
            "missing required key",
        ),
        (
            "[throttle]\ntarpit = \"11s\"",
            2,
            "throttle.tarpit",
            "at most `10s`",
        ),
        (
            "[cors]\nallowed_origins = [\"https://a.com/app\"]",
            2,
            "cors.allowed_origins[0]",
            "`https://a.com/app`",
        ),
        (
            "[cors]\nallowed_origins = [\"*\"]\nallow_credentials = true",
            3,
            "cors.allow_credentials",
            "`*`",
        ),
        (
            "[defaults]\nauth = [\"bearer\", \"bearer\"]",
            2,
            "defaults.auth",
            "listed twice",
        ),
        (
            "[defaults]\nauth = [\"kerberos\"]",
            2,
            "defaults.auth[0]",
            "`kerberos`",
        ),
        (
            "[defaults]\naccess = \"open\"",
            2,
            "defaults.access",
            "`open`",
        ),
        ("[route]\nname = \"x\"", 1, "route", "`[[route]]`"),
        (
            "[[route]]\nname = \"a b\"\npath = \"/\"",
            2,
            "route[0].name",
            "`a b`",
        ),
        (
            "[[route]]\nname = \"a\"",
            1,
            "route[0].path",
            "missing required key `path`",
        ),
        (
            "[[route]]\nname = \"a\"\npath = \"api\"",
            3,
            "route[0].path",
            "must start with `/`",
        ),
        (
            "[[route]]\nname = \"a\"\npath = \"/**/x\"",
            3,
            "route[0].path",
            "last segment",
        ),
        (
            "[[route]]\nname = \"a\"\npath = \"/{a}/{a}\"",
            3,
            "route[0].path",
            "appears twice",
        ),
        (
            "[[route]]\nname = \"a\"\npath = \"/x\"\nmethods = [\"GE T\"]",
            4,
            "route[0].methods[0]",
            "`GE T`",
        ),
        (
            "[[route]]\nname = \"a\"\npath = \"/x\"\nmethods = []",
            4,
            "route[0].methods",
            "omit `methods`",
        ),
        (
            "[[route]]\nname = \"a\"\npath = \"/x\"\nauth = []",
            4,
            "route[0].auth",
            "at least one",
        ),
        (
            "[[route]]\nname = \"a\"\npath = \"/x\"\nscopes = [\"a b\"]",
            4,
            "route[0].scopes[0]",
            "`a b`",
        ),
        (
            "[[route]]\nname = \"a\"\npath = \"/x\"\nowner_param = \"u\"",
            4,
            "route[0].owner_param",
            "`u`",
        ),
        (
            "[[route]]\nname = \"a\"\npath = \"/x\"\nmax_age = \"0s\"",
            4,
            "route[0].max_age",
            "greater than zero",
        ),
        (
            "[[issuers]]\nname = \"i\"\naudience = \"a\"\njwks_file = \"k\"\nalgorithms = [\"RS256\"]",
            1,
            "issuers[0].issuer",
            "missing required key",
        ),
        (
            "[[issuers]]\nname = \"i\"\nissuer = \"x\"\naudience = []\nsecret = \"0123456789abcdef0123456789abcdef\"\nalgorithms = [\"HS256\"]",
            4,
            "issuers[0].audience",
            "at least one",
        ),
        (
            "[[issuers]]\nname = \"i\"\nissuer = \"x\"\naudience = \"a\"\nsecret = \"short\"\nalgorithms = [\"HS256\"]",
            5,
            "issuers[0].secret",
            "5 bytes",
        ),
        (
            "[[issuers]]\nname = \"i\"\nissuer = \"x\"\naudience = \"a\"\nsecret = \"0123456789abcdef0123456789abcdef\"\nalgorithms = [\"HS512\"]",
            5,
            "issuers[0].secret",
            "at least 64",
        ),
        (
            "[[issuers]]\nname = \"i\"\nissuer = \"x\"\naudience = \"a\"\nsecret = \"0123456789abcdef0123456789abcdef\"\nalgorithms = [\"RS256\"]",
            6,
            "issuers[0].algorithms",
            "`RS256`",
        ),
        (
            "[[issuers]]\nname = \"i\"\nissuer = \"x\"\naudience = \"a\"\njwks_file = \"k\"\nalgorithms = [\"none\"]",
            6,
            "issuers[0].algorithms[0]",
            "`none`",
        ),
        (
            "[[issuers]]\nname = \"i\"\nissuer = \"x\"\naudience = \"a\"\njwks_file = \"k\"\nalgorithms = []",
            6,
            "issuers[0].algorithms",
            "at least one",
        ),
        (
            "[[issuers]]\nname = \"i\"\nissuer = \"x\"\naudience = \"a\"\njwks_file = \"k\"\njwks_url = \"https://k\"\nalgorithms = [\"RS256\"]",
            1,
            "issuers[0]",
            "exclusive",
        ),
        (
            "[[issuers]]\nname = \"i\"\nissuer = \"x\"\naudience = \"a\"\nalgorithms = [\"RS256\"]",
            1,
            "issuers[0]",
            "exactly one of",
        ),
        ("[nope]\nx = 1", 1, "nope", "unknown key `nope`"),
        ("server = 1", 1, "server", "expected a table"),
    ];
    for (text, line, key, needle) in cases {
        let errs = errors(text);
        assert_eq!(errs.len(), 1, "{text}: {errs:#?}");
        let e = &errs[0];
        assert_eq!(
            (e.line, e.key.as_str()),
            (Some(*line), *key),
            "{text}: {e:?}"
        );
        assert!(e.message.contains(needle), "{text}: {e:?}");
    }
}

#[test]
fn secrets_never_appear_in_errors() {
    for text in [
        "[store]\nurl = \"mysql://u:hunter2@db/x\"",
        "[cluster]\nredis_url = \"redis2://:hunter2@r\"",
        "[[issuers]]\nname = \"i\"\nissuer = \"x\"\naudience = \"a\"\nsecret = \"hunter2\"\nalgorithms = [\"HS256\"]",
        "[upstream]\nurl = \"http://u:hunter2@h\"",
    ] {
        let shown = parse(text).unwrap_err().to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}

fn shadow_lines(text: &str) -> Vec<usize> {
    let (_, warnings) = parse(text).unwrap();
    warnings
        .iter()
        .filter(|w| w.message.contains("never reached"))
        .map(|w| w.line.unwrap_or(0))
        .collect()
}

#[test]
fn shadowed_routes_warn() {
    let text = r#"
[[route]]
name = "api"
path = "/api/**"

[[route]]
name = "admin"
path = "/api/admin/**"

[[route]]
name = "a-param"
path = "/a/{x}"
methods = ["GET", "POST"]

[[route]]
name = "a-b"
path = "/a/b"
methods = ["GET"]
"#;
    assert_eq!(shadow_lines(text), [6, 15]);
    let (_, w) = parse(text).unwrap();
    assert!(w[0].message.contains("`admin`") && w[0].message.contains("`api` (line 2)"));
}

#[test]
fn routes_that_can_still_match_do_not_warn() {
    let text = r#"
[[route]]
name = "admin"
path = "/api/admin/**"

[[route]]
name = "api"
path = "/api/**"

[[route]]
name = "a-b"
path = "/a/b"

[[route]]
name = "a-param"
path = "/a/{x}"

[[route]]
name = "get-only"
path = "/g/{x}"
methods = ["GET"]

[[route]]
name = "post-too"
path = "/g/y"
methods = ["GET", "POST"]

[[route]]
name = "star"
path = "/s/*"

[[route]]
name = "deeper"
path = "/s/**"

[[route]]
name = "specific-methods"
path = "/m"
methods = ["GET"]

[[route]]
name = "any-method"
path = "/m"
"#;
    assert_eq!(shadow_lines(text), Vec::<usize>::new());
}

#[test]
fn policy_on_public_routes_warns() {
    let text = "[[route]]\nname = \"p\"\npath = \"/p\"\naccess = \"public\"\nroles = [\"x\"]\n";
    let (_, w) = parse(text).unwrap();
    assert_eq!(w.len(), 1);
    assert!(w[0].message.contains("`roles`"), "{w:?}");
}

#[test]
fn plain_http_jwks_warns_unless_loopback() {
    let issuer = |url: &str| {
        format!(
            "[[issuers]]\nname = \"i\"\nissuer = \"x\"\naudience = \"a\"\njwks_url = \"{url}\"\nalgorithms = [\"RS256\"]\n"
        )
    };
    let (_, w) = parse(&issuer("http://keycloak:8080/certs")).unwrap();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].line, Some(5));
    let (_, w) = parse(&issuer("http://127.0.0.1:8080/certs")).unwrap();
    assert!(w.is_empty());
}

/// The complete example in `docs/config.md` stays valid.
#[test]
fn digest_algorithms_are_md5_and_sha256_strongest_first() {
    let (c, _) = parse("[server]\ndigest_algorithms = [\"md5\", \"SHA-256\", \"MD5\"]\n").unwrap();
    assert_eq!(
        c.server.digest_algorithms,
        [DigestAlgorithm::Sha256, DigestAlgorithm::Md5]
    );
    let (c, _) = parse("[server]\ndigest_algorithms = [\"MD5\"]\n").unwrap();
    assert_eq!(c.server.digest_algorithms, [DigestAlgorithm::Md5]);
    for (value, needle) in [
        ("[]", "at least one"),
        ("[\"MD5-sess\"]", "`-sess` variant"),
        ("[\"SHA-512-256\"]", "unsupported Digest algorithm"),
        ("[\"SHA1\"]", "unsupported Digest algorithm"),
        ("\"MD5\"", "array"),
    ] {
        let errs = errors(&format!("[server]\ndigest_algorithms = {value}\n"));
        assert_eq!(errs.len(), 1, "{value}: {errs:?}");
        assert_eq!(errs[0].line, Some(2), "{value}: {errs:?}");
        assert!(errs[0].to_string().contains(needle), "{value}: {errs:?}");
    }
}

#[test]
fn documented_example_parses() {
    let doc = include_str!("../../../docs/config.md");
    let example = doc
        .split("## Complete example")
        .nth(1)
        .and_then(|s| s.split("```toml\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("docs/config.md has a complete example");
    let (c, warnings) = parse(example).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.issuers.len(), 3);
    assert_eq!(c.routes.len(), 5);
    assert!(c.geoip.is_some());
    assert!(
        c.routes
            .iter()
            .any(|r| r.countries.as_ref().is_some_and(|g| g.legal))
    );
    assert!(c.upstream.is_some());
    assert_eq!(c.alerts.min_per_minute, 50);
    assert!(c.alerts.webhook_url.is_some());
    assert!(c.cluster.redis_url.is_some());
    // Every section is enforced: nothing warns.
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn cluster_is_optional_and_warns_about_a_shared_sqlite_file() {
    let (c, warnings) = parse("").unwrap();
    assert!(c.cluster.redis_url.is_none());
    assert_eq!(c.cluster.key_prefix, "gatehouse");
    assert_eq!(c.cluster.timeout, Duration::from_millis(250));
    assert!(warnings.is_empty());

    let text = "[store]\nurl = \"postgres://db/gatehouse\"\n[cluster]\nredis_url = \"redis://127.0.0.1:6379\"\nkey_prefix = \"gh-prod\"\ntimeout = \"100ms\"";
    let (c, warnings) = parse(text).unwrap();
    assert_eq!(
        c.cluster.redis_url.as_deref(),
        Some("redis://127.0.0.1:6379")
    );
    assert_eq!(c.cluster.key_prefix, "gh-prod");
    assert_eq!(c.cluster.timeout, Duration::from_millis(100));
    assert!(warnings.is_empty(), "{warnings:?}");

    let (_, warnings) = parse("[cluster]\nredis_url = \"rediss://:hunter2@r:6380\"").unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].line, Some(2));
    assert!(warnings[0].message.contains("SQLite"), "{warnings:?}");
    assert!(!warnings[0].message.contains("hunter2"));
}

#[test]
fn tokens_key_sync_is_a_positive_duration() {
    let (c, _) = parse("[tokens]\nkey_sync = \"1h\"\n").unwrap();
    assert_eq!(c.tokens.key_sync, Duration::from_secs(3600));
    let errs = errors("[tokens]\nkey_sync = \"0s\"\n");
    assert_eq!(located(&errs), [(2, "tokens.key_sync")], "{errs:?}");
}

#[test]
fn admin_section_names_the_administrators() {
    let (c, _) = parse("").unwrap();
    assert_eq!(c.admin.roles, ["admin"]);
    assert!(!c.admin.metrics_auth, "/metrics is scrapeable by default");
    assert_eq!(c.admin.stats_retention, Duration::from_secs(30 * 86_400));
    let (c, warnings) = parse(
        "[admin]\nroles = [\"ops\", \"sre\"]\nmetrics_auth = true\nstats_retention = \"7d\"\n",
    )
    .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.admin.stats_retention, Duration::from_secs(7 * 86_400));
    assert_eq!(c.admin.roles, ["ops", "sre"]);
    assert!(c.admin.metrics_auth);

    let errors =
        parse("[admin]\nroles = []\nmetrics_auth = \"yes\"\nusers = [\"alice\"]\n").unwrap_err();
    let text = errors.to_string();
    assert_eq!(errors.0.len(), 3, "{text}");
    assert_eq!(
        errors.0.iter().map(|e| e.line).collect::<Vec<_>>(),
        [Some(2), Some(3), Some(4)],
        "{text}"
    );
    for needle in ["at least one role", "metrics_auth", "unknown key `users`"] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}

#[test]
fn server_connection_limits_are_bounded() {
    let (c, _) = parse("[server]\nheader_timeout = \"2s\"\nmax_headers = 50\nmax_header_bytes = 16384\nmax_connections = 10\n").unwrap();
    assert_eq!(c.server.header_timeout, Duration::from_secs(2));
    assert_eq!(
        (
            c.server.max_headers,
            c.server.max_header_bytes,
            c.server.max_connections
        ),
        (50, 16384, 10)
    );
    let d = parse("").unwrap().0.server;
    assert_eq!(d.header_timeout, Duration::from_secs(10));
    assert_eq!(
        (d.max_headers, d.max_header_bytes, d.max_connections),
        (100, 32768, 4096)
    );
    let errs =
        errors("[server]\nmax_header_bytes = 100\nmax_connections = 0\nheader_timeout = \"0s\"\n");
    assert_eq!(
        located(&errs),
        [
            (2, "server.max_header_bytes"),
            (3, "server.max_connections"),
            (4, "server.header_timeout")
        ],
        "{errs:?}"
    );
}

#[test]
fn server_tls_names_both_files() {
    let (c, _) = parse("[server]\ntls = { cert = \"c.pem\", key = \"k.pem\" }\n").unwrap();
    let tls = c.server.tls.unwrap();
    assert_eq!(
        (tls.cert.to_str(), tls.key.to_str()),
        (Some("c.pem"), Some("k.pem"))
    );
    assert!(parse("").unwrap().0.server.tls.is_none());
    let errs = errors("[server]\ntls = { cert = \"c.pem\", chain = \"x\" }\n");
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert!(keys.contains(&"server.tls.chain"), "{errs:?}");
    assert!(
        errs.iter().any(|e| e.message.contains("key")),
        "the missing key is named: {errs:?}"
    );
}
