//! Field readers that several section modules share: arrays of tables (named or not), the
//! `access` and `auth` choices of `[defaults]` and `[[route]]`, and the `algorithms` and
//! `attributes` keys of `[[issuers]]` and `[[login_providers]]`. It uses none of the section
//! modules, so they all can use it.

use std::collections::HashMap;

use jsonwebtoken::Algorithm;

use super::{Ctx, Field, Table, values};
use crate::config::Access;
use crate::scheme::Scheme;

/// The `access` choices of `[defaults]` and `[[route]]`.
pub(super) const ACCESS: &[(&str, Access)] = &[
    ("public", Access::Public),
    ("authenticated", Access::Authenticated),
    ("deny", Access::Deny),
];

/// An array of tables (`[[name]]`); a plain `[name]` table gets a pointed message.
pub(super) fn table_array<'a, 'i>(ctx: &mut Ctx<'_>, f: &Field<'a, 'i>) -> Vec<Table<'a, 'i>> {
    if f.val.is_table() {
        let msg = format!("`{0}` must be an array of tables: write `[[{0}]]`", f.key);
        ctx.error(&f.span, &f.key, msg);
        return Vec::new();
    }
    let Some(items) = ctx.array(f) else {
        return Vec::new();
    };
    items.iter().filter_map(|item| ctx.table(item)).collect()
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

/// A non-empty list of distinct scheme names, in challenge order.
pub(super) fn schemes(ctx: &mut Ctx<'_>, f: &Field<'_, '_>) -> Option<Vec<Scheme>> {
    let list = ctx.list(f, |s| {
        Scheme::from_name(s).ok_or_else(|| {
            format!(
                "unknown scheme `{s}`; expected one of `bearer`, `api_key`, `basic`, `digest`, `session`"
            )
        })
    })?;
    ctx.distinct(f, list, "must list at least one scheme", |s| {
        format!("scheme `{}`", s.as_str())
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

/// A non-empty list of distinct JWS algorithms; `none` is refused.
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
