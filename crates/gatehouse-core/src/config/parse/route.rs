//! `[[route]]`: path patterns, per-route policy, and the shadowed-route warning.
//!
//! Pattern semantics (shared with the matcher): segments are literals, `*` (exactly one
//! segment), `{name}` (one segment, captured) or a final `**` (zero or more segments); a
//! trailing `/` is ignored.

use super::fields::{ACCESS, named_tables, schemes};
use super::{Ctx, Field, Table, geo, values};
use crate::config::{Access, DefaultsConfig, RouteConfig};
use crate::route::Pattern;

const KEYS: &[&str] = &[
    "name",
    "path",
    "methods",
    "access",
    "auth",
    "roles",
    "scopes",
    "mfa",
    "max_age",
    "tenant_param",
    "owner_param",
    "networks",
    "deny_networks",
    "hidden",
    "quota",
    "require",
    "when",
];

pub(super) fn routes(
    ctx: &mut Ctx<'_>,
    f: &Field<'_, '_>,
    defaults: &DefaultsConfig,
) -> Vec<RouteConfig> {
    // Route names must be unique (`named_tables` reports a repeated one).
    let parsed: Vec<(RouteConfig, Pattern)> =
        named_tables(ctx, f, "route", |ctx, t| one(ctx, t, defaults));
    shadow_warnings(ctx, &parsed);
    parsed.into_iter().map(|(r, _)| r).collect()
}

/// One `[[route]]` table; `None` when anything in it is wrong (errors recorded).
fn one(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    defaults: &DefaultsConfig,
) -> Option<(RouteConfig, Pattern)> {
    ctx.unknown_keys(t, &[KEYS, geo::ROUTE_KEYS].concat());
    let errors_before = ctx.errors.len();
    let line = t.line(ctx);
    ctx.require(t, "name");
    ctx.require(t, "path");
    let name = t
        .get("name")
        .and_then(|f| ctx.parsed(&f, values::route_name));
    let pattern = t.get("path").and_then(|f| ctx.parsed(&f, pattern));
    let path = t
        .get("path")
        .and_then(|f| f.val.as_str().map(str::to_owned));
    let methods = t.get("methods").and_then(|f| methods(ctx, &f));
    let access = t.get("access").and_then(|f| ctx.choice(&f, ACCESS));
    let auth = t.get("auth").and_then(|f| schemes(ctx, &f));
    let roles = t.get("roles").and_then(|f| ctx.list(&f, values::non_empty));
    let scopes = t.get("scopes").and_then(|f| ctx.list(&f, values::scope));
    let mfa = t.get("mfa").and_then(|f| ctx.bool(&f));
    let max_age = t.get("max_age").and_then(|f| ctx.duration(&f));
    let tenant_param = param_ref(ctx, t, "tenant_param", pattern.as_ref());
    let owner_param = param_ref(ctx, t, "owner_param", pattern.as_ref());
    let networks = t.get("networks").and_then(|f| ctx.list(&f, values::cidr));
    let deny_networks = t
        .get("deny_networks")
        .and_then(|f| ctx.list(&f, values::cidr));
    let hidden = t.get("hidden").and_then(|f| ctx.bool(&f));
    let quota = t.get("quota").and_then(|f| ctx.window(&f));
    let countries = geo::route_rule(ctx, t);
    let require = t
        .get("require")
        .and_then(|f| super::require::requirements(ctx, &f));
    let when = t.get("when").and_then(|f| super::require::when(ctx, &f));
    if ctx.errors.len() != errors_before {
        return None;
    }
    let route = RouteConfig {
        name: name?,
        path: path?,
        methods: methods.unwrap_or_default(),
        access: access.unwrap_or(Access::Authenticated),
        auth: auth.unwrap_or_else(|| defaults.auth.clone()),
        roles: roles.unwrap_or_default(),
        scopes: scopes.unwrap_or_default(),
        mfa: mfa.unwrap_or(false),
        max_age,
        tenant_param,
        owner_param,
        networks: networks.unwrap_or_default(),
        deny_networks: deny_networks.unwrap_or_default(),
        hidden: hidden.unwrap_or(false),
        quota,
        countries,
        require: require.unwrap_or_default(),
        when,
        line,
    };
    unused_policy_warning(ctx, t, &route);
    Some((route, pattern?))
}

/// Upper-cased, distinct HTTP methods; an empty list is an error (omit the key for "any").
fn methods(ctx: &mut Ctx<'_>, f: &Field<'_, '_>) -> Option<Vec<String>> {
    let list = ctx.list(f, values::method)?;
    ctx.distinct(
        f,
        list,
        "`methods = []` would match nothing; omit `methods` to match any method",
        |m| format!("method `{m}`"),
    )
}

/// `tenant_param` / `owner_param`: must name a `{param}` of the path. Not judged when the
/// path itself is invalid (that error is already reported).
fn param_ref(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    key: &str,
    pattern: Option<&Pattern>,
) -> Option<String> {
    let f = t.get(key)?;
    let name = ctx.str(&f)?;
    let pattern = pattern?;
    if pattern.has_param(name) {
        return Some(name.to_owned());
    }
    let path = t
        .get("path")
        .and_then(|p| p.val.as_str().map(str::to_owned))
        .unwrap_or_default();
    ctx.error(
        &f.span,
        &f.key,
        format!(
            "`{name}` is not a parameter of path `{path}`; write it as `{{{name}}}` in the path"
        ),
    );
    None
}

/// Policy keys on a `public` or `deny` route are never consulted: say so.
fn unused_policy_warning(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, route: &RouteConfig) {
    let access = match route.access {
        Access::Public => "public",
        Access::Deny => "deny",
        Access::Authenticated => return,
    };
    let unused: Vec<String> = [
        "roles",
        "scopes",
        "mfa",
        "max_age",
        "tenant_param",
        "owner_param",
        "require",
        "when",
    ]
    .iter()
    .filter(|k| t.map.contains_key(**k))
    .map(|k| format!("`{k}`"))
    .collect();
    if !unused.is_empty() {
        ctx.warn(
            Some(route.line),
            format!(
                "route `{}` has `access = \"{access}\"`, so its {} are never checked",
                route.name,
                unused.join(", ")
            ),
        );
    }
}

/// Parses a route path pattern with the matcher's own parser (one implementation).
fn pattern(path: &str) -> Result<Pattern, String> {
    Pattern::parse(path).map_err(|e| e.to_string())
}

/// Does `a`'s method list accept every method `b`'s does? Empty means any method.
fn methods_cover(a: &[String], b: &[String]) -> bool {
    a.is_empty() || (!b.is_empty() && b.iter().all(|m| a.contains(m)))
}

/// Routes match in file order, first match wins (design §3): warn about a route that an
/// earlier one always takes first.
fn shadow_warnings(ctx: &mut Ctx<'_>, routes: &[(RouteConfig, Pattern)]) {
    for (i, (later, later_pat)) in routes.iter().enumerate() {
        let earlier = routes[..i]
            .iter()
            .find(|(r, pat)| pat.covers(later_pat) && methods_cover(&r.methods, &later.methods));
        if let Some((r, _)) = earlier {
            ctx.warn(
                Some(later.line),
                format!(
                    "route `{}` is never reached: route `{}` (line {}) comes first and matches every request it would",
                    later.name, r.name, r.line
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_coverage() {
        assert!(methods_cover(&[], &["GET".into()]));
        assert!(!methods_cover(&["GET".into()], &[]));
        assert!(methods_cover(
            &["GET".into(), "POST".into()],
            &["POST".into()]
        ));
        assert!(!methods_cover(
            &["GET".into()],
            &["GET".into(), "POST".into()]
        ));
    }

    #[test]
    fn pattern_errors_name_the_path() {
        for bad in [
            "api", "", "/a//b", "/**/x", "/a*", "/{1x}", "/{a}/{a}", "/{}", "/a/../b", "/a?b",
            "/{a-b}", "/x{a}",
        ] {
            let e = pattern(bad).unwrap_err();
            assert!(e.contains('`'), "{bad}: {e}");
        }
    }
}
