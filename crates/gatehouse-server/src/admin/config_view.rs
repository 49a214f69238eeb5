//! The running config as the admin API shows it: every value, secrets redacted (an issuer's
//! shared secret; passwords in store, Redis and webhook URLs; a webhook's path and query,
//! which often carry its token), with a hash that changes whenever the config does.

use gatehouse_core::config::{Config, IssuerKeys, RouteConfig, Window};
use gatehouse_core::render::rfc3339;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::gateway::Runtime;

const REDACTED: &str = "<redacted>";

/// `{config, hash, loaded_at}` of a runtime.
pub fn view(rt: &Runtime) -> Value {
    json!({
        "config": redacted(&rt.config),
        "hash": hash(&rt.config),
        "loaded_at": rfc3339(rt.loaded_at),
    })
}

/// SHA-256 (hex) over every value of the config, secrets included (a digest reveals nothing
/// of a high-entropy secret, and a changed secret changes the hash).
pub fn hash(c: &Config) -> String {
    let mut h = Sha256::new();
    // `Debug` of the config prints every value but the issuers' secrets (redacted there).
    h.update(format!("{c:?}").as_bytes());
    for i in &c.issuers {
        if let IssuerKeys::Secret(s) = &i.keys {
            h.update(s.expose());
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A URL without its password (`scheme://user:<redacted>@host…`).
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:{REDACTED}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// A URL reduced to its scheme and host (webhooks carry their token in the path or query).
fn origin_only(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return REDACTED.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = rest[..authority_end]
        .rsplit_once('@')
        .map_or(&rest[..authority_end], |(_, h)| h);
    if authority_end == rest.len() {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{host}/{REDACTED}")
    }
}

fn secs(d: std::time::Duration) -> u64 {
    d.as_secs()
}

fn window(w: Option<&Window>) -> Value {
    w.map_or(
        Value::Null,
        |w| json!({"max": w.max, "per_seconds": secs(w.per)}),
    )
}

fn route(r: &RouteConfig) -> Value {
    json!({
        "name": r.name,
        "path": r.path,
        "methods": r.methods,
        "access": format!("{:?}", r.access).to_ascii_lowercase(),
        "auth": r.auth.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "roles": r.roles,
        "scopes": r.scopes,
        "mfa": r.mfa,
        "max_age_seconds": r.max_age.map(secs),
        "tenant_param": r.tenant_param,
        "owner_param": r.owner_param,
        "networks": r.networks.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "deny_networks": r.deny_networks.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "hidden": r.hidden,
        "quota": window(r.quota.as_ref()),
        "line": r.line,
    })
}

/// The config with its secrets redacted.
pub fn redacted(c: &Config) -> Value {
    let s = &c.server;
    json!({
        "server": {
            "listen": s.listen.to_string(),
            "admin_listen": s.admin_listen.map(|a| a.to_string()),
            "realm": s.realm,
            "trusted_proxies": s.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "disclosure": format!("{:?}", s.disclosure).to_ascii_lowercase(),
            "scope_challenge": s.scope_challenge,
            "forward_auth_body": format!("{:?}", s.forward_auth_body).to_ascii_lowercase(),
            "max_body_bytes": s.max_body_bytes,
            "digest_algorithms": s.digest_algorithms.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>(),
        },
        "upstream": c.upstream.as_ref().map(|u| json!({
            "url": without_password(&u.url),
            "connect_timeout_seconds": secs(u.connect_timeout),
            "timeout_seconds": secs(u.timeout),
            "http2": u.http2,
        })),
        "store": {"url": without_password(&c.store.url)},
        "cluster": {
            "redis_url": c.cluster.redis_url.as_deref().map(without_password),
            "key_prefix": c.cluster.key_prefix,
            "timeout_ms": c.cluster.timeout.as_millis(),
        },
        "tokens": {
            "issuer": c.tokens.issuer,
            "audience": c.tokens.audience,
            "access_ttl_seconds": secs(c.tokens.access_ttl),
            "refresh_ttl_seconds": secs(c.tokens.refresh_ttl),
            "leeway_seconds": secs(c.tokens.leeway),
        },
        "issuers": c.issuers.iter().map(|i| json!({
            "name": i.name,
            "issuer": i.issuer,
            "audience": i.audience,
            "keys": match &i.keys {
                IssuerKeys::JwksUrl(u) => json!({"jwks_url": without_password(u)}),
                IssuerKeys::JwksFile(p) => json!({"jwks_file": p.display().to_string()}),
                IssuerKeys::Secret(_) => json!({"secret": REDACTED}),
            },
            "algorithms": i.algorithms.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>(),
            "roles_claim": i.roles_claim,
            "scopes_claim": i.scopes_claim,
            "tenant_claim": i.tenant_claim,
            "subject_claim": i.subject_claim,
            "leeway_seconds": secs(i.leeway),
        })).collect::<Vec<_>>(),
        "throttle": {
            "failed_per_ip": window(c.throttle.failed_per_ip.as_ref()),
            "failed_per_account": window(c.throttle.failed_per_account.as_ref()),
            "failed_tokens_per_ip": window(c.throttle.failed_tokens_per_ip.as_ref()),
            "tarpit_ms": c.throttle.tarpit.as_millis(),
        },
        "audit": {
            "file": c.audit.file.as_ref().map(|p| p.display().to_string()),
            "log_allowed": c.audit.log_allowed,
        },
        "alerts": {
            "webhook_url": c.alerts.webhook_url.as_deref().map(origin_only),
            "min_per_minute": c.alerts.min_per_minute,
            "factor": c.alerts.factor,
            "baseline_minutes": c.alerts.baseline_minutes,
            "ip_burst_per_minute": c.alerts.ip_burst_per_minute,
        },
        "admin": {
            "roles": c.admin.roles,
            "metrics_auth": c.admin.metrics_auth,
        },
        "telemetry": {
            "otlp_endpoint": c.telemetry.otlp_endpoint.as_deref().map(origin_only),
            "service_name": c.telemetry.service_name,
            "export_interval_ms": c.telemetry.export_interval.as_millis(),
            "max_queue": c.telemetry.max_queue,
        },
        "cors": {
            "allowed_origins": c.cors.allowed_origins,
            "allowed_methods": c.cors.allowed_methods,
            "allowed_headers": c.cors.allowed_headers,
            "allow_credentials": c.cors.allow_credentials,
            "max_age_seconds": c.cors.max_age.map(secs),
        },
        "defaults": {
            "access": format!("{:?}", c.defaults.access).to_ascii_lowercase(),
            "auth": c.defaults.auth.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        },
        "routes": c.routes.iter().map(route).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_webhook_tokens_are_redacted() {
        assert_eq!(
            without_password("postgres://gh:hunter2@db:5432/gatehouse"),
            "postgres://gh:<redacted>@db:5432/gatehouse"
        );
        assert_eq!(
            without_password("redis://:hunter2@127.0.0.1:6379/0"),
            "redis://:<redacted>@127.0.0.1:6379/0"
        );
        assert_eq!(
            without_password("sqlite://gatehouse.db"),
            "sqlite://gatehouse.db"
        );
        assert_eq!(
            origin_only("https://hooks.example/services/T0/B0/secret?x=1"),
            "https://hooks.example/<redacted>"
        );
        assert_eq!(
            origin_only("https://u:p@hooks.example"),
            "https://hooks.example"
        );
    }

    #[test]
    fn the_hash_follows_every_value_and_the_view_holds_no_secret() {
        let text = r#"
[store]
url = "postgres://gh:hunter2@db/gatehouse"
[[issuers]]
name = "p"
issuer = "https://p.example"
audience = "api"
secret = "a-shared-secret-of-32-bytes-or-more!!"
algorithms = ["HS256"]
"#;
        let (a, _) = gatehouse_core::config::parse(text).unwrap();
        let (b, _) =
            gatehouse_core::config::parse(&text.replace("or-more!!", "or-more??")).unwrap();
        assert_ne!(hash(&a), hash(&b), "a changed secret changes the hash");
        assert_eq!(hash(&a), hash(&a.clone()));
        let shown = redacted(&a).to_string();
        assert!(
            !shown.contains("hunter2") && !shown.contains("or-more"),
            "{shown}"
        );
    }
}
