//! `[[issuers]]`: external token issuers (OIDC providers) whose JWTs are accepted.

use std::collections::HashMap;
use std::time::Duration;

use jsonwebtoken::{Algorithm, AlgorithmFamily};

use super::sections::table_array;
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

/// The tables of an array of tables whose `name`s must be unique (`what` names them in the
/// error), each read by `one` (`None` when it has errors, which it recorded).
pub(super) fn named_tables<T>(
    ctx: &mut Ctx<'_>,
    f: &Field<'_, '_>,
    what: &str,
    one: impl Fn(&mut Ctx<'_>, &Table<'_, '_>) -> Option<T>,
) -> Vec<T> {
    let tables = table_array(ctx, f);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for t in &tables {
        // Judged on the raw name so a duplicate is reported even if the table has other errors.
        if let Some(f) = t.get("name")
            && let Some(name) = f.val.as_str()
        {
            let line = t.line(ctx);
            if let Some(first) = seen.get(name) {
                let msg = format!("{what} name `{name}` is already used on line {first}");
                ctx.error(&f.span, &f.key, msg);
            } else {
                seen.insert(name.to_owned(), line);
            }
        }
        if let Some(item) = one(ctx, t) {
            out.push(item);
        }
    }
    out
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

/// `attributes = { name = "claim.path", … }` (issue 13): attribute names as `user set`
/// takes them, claim paths as the other mappings. `[[login_providers]] attributes` too.
pub(super) fn attribute_map(ctx: &mut Ctx<'_>, f: &Field<'_, '_>) -> Option<Vec<(String, String)>> {
    let t = ctx.table(f)?;
    let mut out = Vec::new();
    let mut ok = true;
    for (k, _) in t.map.iter() {
        let name = k.get_ref().to_string();
        let Some(field) = t.get(&name) else { continue };
        if let Err(e) = crate::attributes::check_name(&name) {
            ctx.error(&field.span, &field.key, e);
            ok = false;
            continue;
        }
        match ctx.parsed(&field, values::claim_path) {
            Some(path) => out.push((name, path)),
            None => ok = false,
        }
    }
    ok.then_some(out)
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

pub(super) fn algorithms(ctx: &mut Ctx<'_>, f: &Field<'_, '_>) -> Option<Vec<Algorithm>> {
    let list = ctx.list(f, |s| {
        if s.eq_ignore_ascii_case("none") {
            // RFC 8725 §3.1: an unsecured JWT must never be accepted.
            return Err("algorithm `none` is never accepted (RFC 8725 §3.1)".to_owned());
        }
        s.parse::<Algorithm>().map_err(|_| {
            format!(
                "unknown algorithm `{s}`; expected one of `RS256`, `RS384`, `RS512`, `PS256`, `PS384`, `PS512`, `ES256`, `ES384`, `EdDSA`, `HS256`, `HS384`, `HS512`"
            )
        })
    })?;
    if list.is_empty() {
        ctx.error(&f.span, &f.key, "must list at least one algorithm");
        return None;
    }
    if let Some(dup) = list
        .iter()
        .enumerate()
        .find_map(|(i, a)| list[..i].contains(a).then_some(a))
    {
        ctx.error(
            &f.span,
            &f.key,
            format!("algorithm `{dup:?}` is listed twice"),
        );
        return None;
    }
    Some(list)
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
