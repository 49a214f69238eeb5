//! `[[issuers]]`: external token issuers (OIDC providers) whose JWTs are accepted.

use std::time::Duration;

use jsonwebtoken::{Algorithm, AlgorithmFamily};

use super::fields::{algorithms, attribute_map, named_tables};
use super::{Ctx, Field, Table, values};
use crate::config::{IssuerConfig, IssuerKeys};
use crate::secret::SecretBytes;

const KEYS: &[&str] = &[
    "name",
    "issuer",
    "audience",
    "jwks_url",
    "jwks_file",
    "secret",
    "algorithms",
    "roles_claim",
    "scopes_claim",
    "tenant_claim",
    "subject_claim",
    "leeway",
    "attributes",
];

pub(super) fn issuers(ctx: &mut Ctx<'_>, f: &Field<'_, '_>) -> Vec<IssuerConfig> {
    named_tables(ctx, f, "issuer", one)
}

/// One `[[issuers]]` table; `None` when anything in it is wrong (errors recorded).
fn one(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Option<IssuerConfig> {
    ctx.unknown_keys(t, KEYS);
    let errors_before = ctx.errors.len();
    ctx.require(t, "name");
    ctx.require(t, "issuer");
    ctx.require(t, "audience");
    ctx.require(t, "algorithms");
    let name = t
        .get("name")
        .and_then(|f| ctx.parsed(&f, values::non_empty));
    let issuer = t
        .get("issuer")
        .and_then(|f| ctx.parsed(&f, values::non_empty));
    let audience = t.get("audience").and_then(|f| audience(ctx, &f));
    let keys = keys(ctx, t);
    let algorithms = t.get("algorithms").and_then(|f| algorithms(ctx, &f));
    if let (Some(keys), Some(algs)) = (&keys, &algorithms) {
        check_keys_match_algorithms(ctx, t, keys, algs);
    }
    let claim = |ctx: &mut Ctx<'_>, key: &str, default: &str| {
        t.get(key)
            .and_then(|f| ctx.parsed(&f, values::claim_path))
            .unwrap_or_else(|| default.to_owned())
    };
    let roles_claim = claim(ctx, "roles_claim", "roles");
    let scopes_claim = claim(ctx, "scopes_claim", "scope");
    let tenant_claim = claim(ctx, "tenant_claim", "tenant");
    let subject_claim = claim(ctx, "subject_claim", "sub");
    let attributes = t
        .get("attributes")
        .and_then(|f| attribute_map(ctx, &f))
        .unwrap_or_default();
    let leeway = t
        .get("leeway")
        .and_then(|f| ctx.duration(&f))
        .unwrap_or(Duration::from_secs(30));
    if ctx.errors.len() != errors_before {
        return None;
    }
    Some(IssuerConfig {
        name: name?,
        issuer: issuer?,
        audience: audience?,
        keys: keys?,
        algorithms: algorithms?,
        roles_claim,
        scopes_claim,
        tenant_claim,
        subject_claim,
        attributes,
        leeway,
    })
}

/// A string or a non-empty array of strings.
fn audience(ctx: &mut Ctx<'_>, f: &Field<'_, '_>) -> Option<Vec<String>> {
    let list = if f.val.is_str() {
        vec![ctx.parsed(f, values::non_empty)?]
    } else if f.val.is_array() {
        ctx.list(f, values::non_empty)?
    } else {
        ctx.type_error(f, "a string or an array of strings");
        return None;
    };
    if list.is_empty() {
        ctx.error(&f.span, &f.key, "must name at least one audience");
        return None;
    }
    Some(list)
}

/// Exactly one of `jwks_url`, `jwks_file`, `secret`.
fn keys(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Option<IssuerKeys> {
    let given: Vec<&str> = ["jwks_url", "jwks_file", "secret"]
        .into_iter()
        .filter(|k| t.map.contains_key(*k))
        .collect();
    match given.as_slice() {
        [] => {
            ctx.error(
                &t.span,
                &t.path,
                "needs exactly one of `jwks_url`, `jwks_file` or `secret`",
            );
            None
        }
        ["jwks_url"] => {
            let f = t.get("jwks_url")?;
            let url = ctx.parsed(&f, |s| values::http_url(s).map(|u| (u, s.to_owned())))?;
            if !url.0.https && !url.0.is_loopback() {
                let line = ctx.line(f.span.start);
                ctx.warn(
                    Some(line),
                    format!(
                        "`{}` fetches signing keys over plain http from `{}`; anyone on the path can replace them, use https",
                        f.key, url.0.host
                    ),
                );
            }
            Some(IssuerKeys::JwksUrl(url.1))
        }
        ["jwks_file"] => {
            let f = t.get("jwks_file")?;
            let path = ctx.parsed(&f, values::non_empty)?;
            Some(IssuerKeys::JwksFile(path.into()))
        }
        ["secret"] => {
            let f = t.get("secret")?;
            // Never echo the value, not even in a type error.
            let Some(s) = f.val.as_str() else {
                let msg = format!("expected a string, found {}", f.val.type_str());
                ctx.error(&f.span, &f.key, msg);
                return None;
            };
            Some(IssuerKeys::Secret(SecretBytes::new(s.as_bytes().to_vec())))
        }
        many => {
            let names = many
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(" and ");
            ctx.error(
                &t.span,
                &t.path,
                format!("{names} are exclusive: give exactly one key source"),
            );
            None
        }
    }
}

/// HMAC algorithms only with a shared `secret`, public-key algorithms only with a JWKS:
/// otherwise a public key could be used as an HMAC secret (RFC 8725 §2.1, §3.1).
fn check_keys_match_algorithms(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    keys: &IssuerKeys,
    algs: &[Algorithm],
) {
    let span = t.get("algorithms").map_or(t.span.clone(), |f| f.span);
    let key = t.key("algorithms");
    let is_hmac = |a: &Algorithm| a.family() == AlgorithmFamily::Hmac;
    match keys {
        IssuerKeys::Secret(secret) => {
            if let Some(a) = algs.iter().find(|a| !is_hmac(a)) {
                ctx.error(
                    &span,
                    &key,
                    format!("algorithm `{a:?}` needs `jwks_url` or `jwks_file`; `secret` only works with `HS256`, `HS384`, `HS512`"),
                );
                return;
            }
            // RFC 7518 §3.2: the key must be at least as long as the hash output.
            let need = algs
                .iter()
                .map(|a| match a {
                    Algorithm::HS384 => 48,
                    Algorithm::HS512 => 64,
                    _ => 32,
                })
                .max()
                .unwrap_or(32);
            let have = secret.expose().len();
            if have < need {
                let secret_span = t.get("secret").map_or(t.span.clone(), |f| f.span);
                ctx.error(
                    &secret_span,
                    &t.key("secret"),
                    format!("secret is {have} bytes; the listed algorithms need at least {need} (RFC 7518 §3.2)"),
                );
            }
        }
        IssuerKeys::JwksUrl(_) | IssuerKeys::JwksFile(_) => {
            if let Some(a) = algs.iter().find(|a| is_hmac(a)) {
                ctx.error(
                    &span,
                    &key,
                    format!("algorithm `{a:?}` is an hmac algorithm and needs `secret`; a jwks only holds public keys (RFC 8725 §2.1)"),
                );
            }
        }
    }
}
