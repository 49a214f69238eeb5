//! `[[route.require]]` and `when = '…'` (issue 13, row 25): requirements as data and CEL
//! conditions, compiled here so that every mistake is a config error with its line.

use std::sync::Arc;

use toml::de::DeValue;

use super::fields::table_array;
use super::{Ctx, Field, Table};
use crate::attributes::{self, Value};
use crate::requirements::{Condition, Requirement, Source, Test};

const KEYS: &[&str] = &[
    "attribute",
    "claim",
    "when",
    "present",
    "equals",
    "in",
    "not_in",
    "code",
    "message",
    "remedy_url",
];

/// `when = '…'`: compiled now.
pub(super) fn when(ctx: &mut Ctx<'_>, f: &Field<'_, '_>) -> Option<Arc<Condition>> {
    ctx.parsed(f, Condition::compile).map(Arc::new)
}

/// The route's `require` array; `None` when anything in it is wrong (errors recorded).
pub(super) fn requirements(ctx: &mut Ctx<'_>, f: &Field<'_, '_>) -> Option<Vec<Requirement>> {
    let errors_before = ctx.errors.len();
    let tables = table_array(ctx, f);
    let mut out = Vec::with_capacity(tables.len());
    for t in &tables {
        if let Some(r) = one(ctx, t) {
            if let Some(first) = out.iter().find(|o: &&Requirement| o.code == r.code) {
                let msg = format!(
                    "requirement code `{}` is already used on line {}",
                    r.code, first.line
                );
                ctx.error(&t.span, &t.key("code"), msg);
            }
            out.push(r);
        }
    }
    (ctx.errors.len() == errors_before).then_some(out)
}

fn one(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Option<Requirement> {
    ctx.unknown_keys(t, KEYS);
    let errors_before = ctx.errors.len();
    let line = t.line(ctx);
    ctx.require(t, "code");
    let code = t.get("code").and_then(|f| ctx.parsed(&f, code));
    let message = t.get("message").and_then(|f| ctx.parsed(&f, message));
    let remedy_url = t.get("remedy_url").and_then(|f| ctx.parsed(&f, remedy_url));
    let when = t.get("when").and_then(|f| when(ctx, &f));
    let attribute = t
        .get("attribute")
        .and_then(|f| ctx.parsed(&f, |s| attributes::check_name(s).map(|()| s.to_owned())));
    let claim = t
        .get("claim")
        .and_then(|f| ctx.parsed(&f, super::values::claim_path));
    let source = match (attribute, claim) {
        (Some(a), None) => Some(Source::Attribute(a)),
        (None, Some(c)) => Some(Source::Claim(c)),
        (Some(_), Some(_)) => {
            ctx.error(&t.span, &t.path, "give `attribute` or `claim`, not both");
            None
        }
        (None, None) if t.map.contains_key("when") => Some(Source::Condition),
        (None, None) => {
            if !t.map.contains_key("attribute") && !t.map.contains_key("claim") {
                ctx.error(&t.span, &t.path, "needs `attribute`, `claim` or `when`");
            }
            None
        }
    };
    let tests: Vec<&str> = ["present", "equals", "in", "not_in"]
        .into_iter()
        .filter(|k| t.map.contains_key(*k))
        .collect();
    let test = match tests.as_slice() {
        [] => None,
        [k] => t.get(k).and_then(|f| test(ctx, k, &f)),
        _ => {
            ctx.error(
                &t.span,
                &t.path,
                format!(
                    "give one test of `present`, `equals`, `in` or `not_in`, not {}",
                    tests.join(" and ")
                ),
            );
            None
        }
    };
    let needs_test = matches!(source, Some(Source::Attribute(_) | Source::Claim(_)));
    if needs_test && tests.is_empty() {
        ctx.error(
            &t.span,
            &t.path,
            "needs a test: `present`, `equals`, `in` or `not_in`",
        );
    }
    if matches!(source, Some(Source::Condition)) && !tests.is_empty() {
        ctx.error(
            &t.span,
            &t.path,
            "a test needs the `attribute` or `claim` it checks",
        );
    }
    if ctx.errors.len() != errors_before {
        return None;
    }
    Some(Requirement {
        source: source?,
        test,
        when,
        code: code?,
        message,
        remedy_url,
        line,
    })
}

fn test(ctx: &mut Ctx<'_>, key: &str, f: &Field<'_, '_>) -> Option<Test> {
    match key {
        "present" => ctx.bool(f).map(Test::Present),
        "equals" => value(ctx, f).map(Test::Equals),
        _ => {
            let items = ctx.array(f)?;
            if items.is_empty() {
                ctx.error(&f.span, &f.key, format!("`{key} = []` names no value"));
                return None;
            }
            let values: Option<Vec<Value>> = items.iter().map(|i| value(ctx, i)).collect();
            let values = values?;
            Some(if key == "in" {
                Test::In(values)
            } else {
                Test::NotIn(values)
            })
        }
    }
}

/// A string, boolean, number or array of strings.
fn value(ctx: &mut Ctx<'_>, f: &Field<'_, '_>) -> Option<Value> {
    let v: Option<Value> = match f.val {
        DeValue::String(s) => Some(Value::Str(s.to_string())),
        DeValue::Boolean(b) => Some(Value::Bool(*b)),
        DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
            .ok()
            .map(|n| Value::Number(n.into())),
        DeValue::Float(x) => x
            .as_str()
            .replace('_', "")
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        DeValue::Array(items) => items
            .iter()
            .map(|i| i.get_ref().as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Value::List),
        _ => None,
    };
    if v.is_none() {
        ctx.type_error(f, "a string, boolean, number or array of strings");
    }
    v
}

/// A requirement code: the stable identifier clients act on, `[a-z0-9_]`, at most 64.
fn code(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err(format!(
            "invalid requirement code `{s}`: lower-case letters, digits and `_`, at most 64 characters"
        ));
    }
    if [
        crate::requirements::CONDITION_ERROR,
        crate::requirements::CONDITION_NOT_MET,
    ]
    .contains(&s)
    {
        return Err(format!("requirement code `{s}` is reserved for conditions"));
    }
    Ok(s.to_owned())
}

fn message(s: &str) -> Result<String, String> {
    if s.trim().is_empty() || s.len() > 500 || s.chars().any(char::is_control) {
        return Err("a message is one line of text, at most 500 bytes".to_owned());
    }
    Ok(s.to_owned())
}

/// A same-site path (`/account/billing`) or an absolute `https://` (or loopback `http://`) URL.
fn remedy_url(s: &str) -> Result<String, String> {
    let path_ok = s.starts_with('/')
        && !s.starts_with("//")
        && !s.contains('\\')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    if path_ok {
        return Ok(s.to_owned());
    }
    match super::values::http_url(s) {
        Ok(u) if u.https || u.is_loopback() => Ok(s.to_owned()),
        _ => Err(format!(
            "invalid remedy_url `{s}`: a path on this site (`/account/billing`) or an `https://` URL"
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use crate::config::parse::errors;

    /// Each of `needles` is in one of the errors of `text`.
    fn assert_errors(text: &str, needles: &[&str]) {
        let e = errors(text);
        for needle in needles {
            assert!(e.iter().any(|l| l.contains(needle)), "{needle}: {e:#?}");
        }
    }

    #[test]
    fn conditions_and_requirements_are_checked_at_load_with_their_lines() {
        let text = r#"
[[route]]
name = "a"
path = "/a/{id}/**"
when = 'principal.roles.exists(r, r == "x") && user.name == "y"'

[[route.require]]
attribute = "e-mail"
present = true
code = "x"

[[route.require]]
claim = "org.plan"
code = "Bad Code"

[[route.require]]
when = 'request.params.id =='
code = "y"
remedy_url = "javascript:alert(1)"

[[route.require]]
attribute = "plan"
equals = "pro"
in = ["a"]
code = "z"
"#;
        assert_errors(
            text,
            &[
                "line 5: `route[0].when`: unknown variable `user`",
                "line 8: `route[0].require[0].attribute`: invalid attribute name",
                "line 14: `route[0].require[1].code`: invalid requirement code",
                "line 12: `route[0].require[1]`: needs a test",
                "line 17: `route[0].require[2].when`: invalid expression",
                "line 19: `route[0].require[2].remedy_url`",
                "line 21: `route[0].require[3]`: give one test",
            ],
        );
    }

    #[test]
    fn unknown_functions_and_wrong_arities_are_config_errors_with_their_lines() {
        let text = r#"
[[route]]
name = "a"
path = "/a/{id}"
when = 'principal.foo.bar(1)'

[[route.require]]
when = 'nosuchfn(request.path)'
code = "x"

[[route.require]]
when = 'size(request.params.id, 2) == 1'
code = "y"

[[route.require]]
when = 'principal.roles.all(r)'
code = "z"
"#;
        assert_errors(
            text,
            &[
                "line 5: `route[0].when`: unknown function `bar` (`x.bar(…)`)",
                "line 8: `route[0].require[0].when`: unknown function `nosuchfn`",
                "line 12: `route[0].require[1].when`: `size(…)` takes 1 argument, not 2",
                "line 16: `route[0].require[2].when`: `all` is a macro",
            ],
        );
    }

    #[test]
    fn a_valid_storefront_parses() {
        let text = r#"
[[route]]
name = "checkout"
path = "/shop/{shop}/checkout"
when = 'request.params.shop != "closed"'

[[route.require]]
attribute = "payment_method"
present = true
code = "payment_method_required"
message = "Add a payment method."
remedy_url = "/account/billing"

[[route.require]]
claim = "org.plan"
not_in = ["free"]
code = "plan_required"
remedy_url = "https://example.com/upgrade"
"#;
        let (cfg, _) = parse(text).unwrap_or_else(|e| panic!("{e}"));
        let r = &cfg.routes[0];
        assert_eq!(r.require.len(), 2);
        assert!(r.when.is_some());
        assert_eq!(cfg.required_claims(), ["org.plan"]);
    }
}
