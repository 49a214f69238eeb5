//! What a condition may name, checked when the config loads (issue 13: `gatehouse check`
//! evaluates nothing at run time that it could catch at load): its free variables
//! (`principal`, `request`, `now`), the functions it calls — with the right call style
//! (`size(x)` or `x.size()`) and number of arguments — and no macro called wrongly.
//!
//! The `cel` crate compiles an expression without checking any of this: an unknown function
//! or a wrong number of arguments is an evaluation error, which would deny every request of
//! the route with `condition_error`. The walk below reads the parsed expression instead.

use std::sync::Arc;

use cel::common::ast::{EntryExpr, Expr, IdedExpr, operators};

use super::{ENV, VARIABLES};

/// The functions of CEL's standard library as `cel` 0.15 declares them (`Env::stdlib()`,
/// built without its `chrono` and `regex` features: no `timestamp`, `duration` or `matches`;
/// `now` is Unix seconds):
/// name, the numbers of arguments of its global overloads (`size(x)`), and of its member
/// overloads (`x.size()`, the target not counted). `cel` does not list them, so they are
/// written here; a test calls each one to keep the table honest.
const FUNCTIONS: &[(&str, &[usize], &[usize])] = &[
    ("bool", &[1], &[]),
    ("bytes", &[1], &[]),
    ("double", &[1], &[]),
    ("dyn", &[1], &[]),
    ("int", &[1], &[]),
    ("uint", &[1], &[]),
    ("string", &[1], &[]),
    ("type", &[1], &[]),
    ("size", &[1], &[0]),
    ("contains", &[], &[1]),
    ("endsWith", &[], &[1]),
    ("startsWith", &[], &[1]),
    ("optional.none", &[0], &[]),
    ("optional.of", &[1], &[]),
    ("optional.ofNonZeroValue", &[1], &[]),
    ("value", &[], &[0]),
    ("hasValue", &[], &[0]),
    ("or", &[], &[1]),
    ("orValue", &[], &[1]),
];

/// The macros: what remains a call after parsing was written with another number of
/// arguments than the macro takes.
const MACROS: &[(&str, &str)] = &[
    ("has", "has(x.field)"),
    ("all", "LIST.all(x, CONDITION)"),
    ("exists", "LIST.exists(x, CONDITION)"),
    ("exists_one", "LIST.exists_one(x, CONDITION)"),
    ("existsOne", "LIST.existsOne(x, CONDITION)"),
    ("map", "LIST.map(x, EXPR) or LIST.map(x, CONDITION, EXPR)"),
    ("filter", "LIST.filter(x, CONDITION)"),
    ("optMap", "OPTIONAL.optMap(x, EXPR)"),
    ("optFlatMap", "OPTIONAL.optFlatMap(x, EXPR)"),
];

const OPERATORS: &[&str] = &[
    operators::CONDITIONAL,
    operators::LOGICAL_AND,
    operators::LOGICAL_OR,
    operators::LOGICAL_NOT,
    operators::SUBSTRACT,
    operators::ADD,
    operators::MULTIPLY,
    operators::DIVIDE,
    operators::MODULO,
    operators::EQUALS,
    operators::NOT_EQUALS,
    operators::GREATER_EQUALS,
    operators::LESS_EQUALS,
    operators::GREATER,
    operators::LESS,
    operators::NEGATE,
    operators::INDEX,
    operators::OPT_INDEX,
    operators::OPT_SELECT,
    operators::NOT_STRICTLY_FALSE,
    operators::IN,
];

/// How a function may be called: `None` when the environment does not declare it.
fn signature(name: &str) -> Option<(&'static [usize], &'static [usize])> {
    if let Some((_, global, member)) = FUNCTIONS.iter().find(|(n, _, _)| *n == name) {
        return Some((global, member));
    }
    // Not in the table (a later `cel` may declare more): ask the environment itself. It has
    // no public list, but refuses a context function whose name one of its overloads has.
    let mut probe = cel::Context::with_env(Arc::clone(&ENV));
    probe
        .add_function(name, |a: i64| a)
        .is_err()
        .then_some((&[][..], &[][..]))
}

fn arguments(n: usize) -> String {
    match n {
        1 => "1 argument".to_owned(),
        n => format!("{n} arguments"),
    }
}

fn takes(counts: &[usize]) -> String {
    let list: Vec<String> = counts.iter().map(ToString::to_string).collect();
    match list.as_slice() {
        [one] if one == "1" => "1 argument".to_owned(),
        [one] => format!("{one} arguments"),
        _ => format!("{} arguments", list.join(" or ")),
    }
}

/// The dotted name an identifier and its field selections spell (`optional.none`).
fn qualified(e: &IdedExpr) -> Option<String> {
    match &e.expr {
        Expr::Ident(n) => Some(n.clone()),
        Expr::Select(s) if !s.test => Some(format!("{}.{}", qualified(&s.operand)?, s.field)),
        _ => None,
    }
}

struct Walk<'s> {
    source: &'s str,
    /// Variables bound by the comprehensions around the node (a macro's `x`).
    bound: Vec<String>,
}

impl Walk<'_> {
    fn expr(&mut self, e: &IdedExpr) -> Result<(), String> {
        match &e.expr {
            Expr::Ident(name) => self.ident(name),
            Expr::Select(s) => self.expr(&s.operand),
            Expr::Call(c) => {
                if OPERATORS.contains(&c.func_name.as_str()) {
                    return c.args.iter().try_for_each(|a| self.expr(a));
                }
                // `optional.of(x)`: a target spelling a namespace calls the qualified function.
                if let Some(target) = &c.target
                    && let Some(prefix) = qualified(target)
                    && let Some(root) = prefix.split('.').next()
                    && !self.bound.iter().any(|b| b == root)
                    && !VARIABLES.contains(&root)
                {
                    let name = format!("{prefix}.{}", c.func_name);
                    if signature(&name).is_some() {
                        self.call(&name, false, c.args.len())?;
                        return c.args.iter().try_for_each(|a| self.expr(a));
                    }
                }
                self.call(&c.func_name, c.target.is_some(), c.args.len())?;
                if let Some(t) = &c.target {
                    self.expr(t)?;
                }
                c.args.iter().try_for_each(|a| self.expr(a))
            }
            Expr::Comprehension(c) => {
                self.expr(&c.iter_range)?;
                self.expr(&c.accu_init)?;
                let outer = self.bound.len();
                self.bound.push(c.iter_var.clone());
                self.bound.extend(c.iter_var2.iter().cloned());
                self.bound.push(c.accu_var.clone());
                let inner = [&c.loop_cond, &c.loop_step, &c.result]
                    .into_iter()
                    .try_for_each(|x| self.expr(x));
                self.bound.truncate(outer);
                inner
            }
            Expr::List(l) => l.elements.iter().try_for_each(|x| self.expr(x)),
            Expr::Map(m) => m.entries.iter().try_for_each(|x| match &x.expr {
                EntryExpr::MapEntry(m) => {
                    self.expr(&m.key)?;
                    self.expr(&m.value)
                }
                EntryExpr::StructField(f) => self.expr(&f.value),
            }),
            Expr::Struct(s) => Err(format!(
                "unknown message type `{}` in `{}`: a condition builds no messages",
                s.type_name, self.source
            )),
            Expr::Literal(_) | Expr::Unspecified => Ok(()),
        }
    }

    fn ident(&self, name: &str) -> Result<(), String> {
        if VARIABLES.contains(&name)
            || self.bound.iter().any(|b| b == name)
            || ENV.types().find_type(name).is_some()
        {
            return Ok(());
        }
        Err(format!(
            "unknown variable `{name}` in `{}`: a condition reads `principal`, `request` and `now`",
            self.source
        ))
    }

    /// A call of `name` on a target (`member`) or not, with `n` arguments.
    fn call(&self, name: &str, member: bool, n: usize) -> Result<(), String> {
        let source = self.source;
        if let Some((_, usage)) = MACROS.iter().find(|(m, _)| *m == name) {
            return Err(format!(
                "`{name}` is a macro written `{usage}`, not with {} in `{source}`",
                arguments(n)
            ));
        }
        let Some((global, members)) = signature(name) else {
            let written = if member {
                format!("x.{name}(…)")
            } else {
                format!("{name}(…)")
            };
            return Err(format!(
                "unknown function `{name}` (`{written}`) in `{source}`: a condition calls the functions of CEL's standard library"
            ));
        };
        if global.is_empty() && members.is_empty() {
            // Declared, but not in the table: its arguments are checked when it runs.
            return Ok(());
        }
        let (allowed, _) = if member {
            (members, global)
        } else {
            (global, members)
        };
        if allowed.is_empty() {
            let how = if member {
                format!("`{name}(…)`, not on a value")
            } else {
                format!("on a value (`x.{name}(…)`)")
            };
            return Err(format!("`{name}` is called {how} in `{source}`"));
        }
        if !allowed.contains(&n) {
            let written = if member {
                format!("x.{name}(…)")
            } else {
                format!("{name}(…)")
            };
            return Err(format!(
                "`{written}` takes {}, not {} in `{source}`",
                takes(allowed),
                n
            ));
        }
        Ok(())
    }
}

/// Checks the parsed `program` of `source`; the error names the first mistake.
pub(super) fn check(source: &str, program: &cel::Program) -> Result<(), String> {
    Walk {
        source,
        bound: Vec::new(),
    }
    .expr(program.expression())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Each entry of [`FUNCTIONS`], called once: the environment runs it (no "undeclared
    /// reference", no "no matching overload").
    #[test]
    fn the_table_is_what_the_environment_declares() {
        let samples: &[(&str, bool, usize, &str)] = &[
            ("bool", false, 1, "bool('true')"),
            ("bytes", false, 1, "bytes('a')"),
            ("double", false, 1, "double(1)"),
            ("dyn", false, 1, "dyn(1)"),
            ("int", false, 1, "int('1')"),
            ("uint", false, 1, "uint(1)"),
            ("string", false, 1, "string(1)"),
            ("type", false, 1, "type(1)"),
            ("size", false, 1, "size('ab')"),
            ("size", true, 0, "'ab'.size()"),
            ("contains", true, 1, "'ab'.contains('a')"),
            ("endsWith", true, 1, "'ab'.endsWith('b')"),
            ("startsWith", true, 1, "'ab'.startsWith('a')"),
            ("optional.none", false, 0, "optional.none()"),
            ("optional.of", false, 1, "optional.of(1)"),
            (
                "optional.ofNonZeroValue",
                false,
                1,
                "optional.ofNonZeroValue(1)",
            ),
            ("value", true, 0, "optional.of(1).value()"),
            ("hasValue", true, 0, "optional.of(1).hasValue()"),
            ("or", true, 1, "optional.none().or(optional.of(1))"),
            ("orValue", true, 1, "optional.none().orValue(1)"),
        ];
        let calls: Vec<(String, bool, usize, String)> = samples
            .iter()
            .map(|(n, m, a, s)| ((*n).to_owned(), *m, *a, (*s).to_owned()))
            .collect();
        let ctx = cel::Context::with_env(Arc::clone(&ENV));
        for (_, _, _, src) in &calls {
            let program = ENV.compile(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert!(check(src, &program).is_ok(), "{src}");
            let r = program.execute(&ctx);
            assert!(r.is_ok(), "{src}: {r:?}");
        }
        let table: BTreeSet<(String, bool, usize)> = FUNCTIONS
            .iter()
            .flat_map(|(n, g, m)| {
                g.iter()
                    .map(|a| ((*n).to_owned(), false, *a))
                    .chain(m.iter().map(|a| ((*n).to_owned(), true, *a)))
            })
            .collect();
        let called: BTreeSet<(String, bool, usize)> =
            calls.into_iter().map(|(n, m, a, _)| (n, m, a)).collect();
        assert_eq!(table, called);
        // And every name is one the environment declares.
        for (name, _, _) in FUNCTIONS {
            let mut probe = cel::Context::with_env(Arc::clone(&ENV));
            assert!(probe.add_function(name, |a: i64| a).is_err(), "{name}");
        }
    }

    #[test]
    fn unknown_functions_and_wrong_calls_are_found() {
        let err = |src: &str| {
            let program = ENV.compile(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            check(src, &program).err().unwrap_or_default()
        };
        assert!(err("principal.foo.bar(1)").contains("unknown function `bar`"));
        assert!(err("nosuchfn(request.path)").contains("unknown function `nosuchfn`"));
        assert!(err("size(request.path, 1) > 0").contains("`size(…)` takes 1 argument, not 2"));
        assert!(err("request.path.startsWith('/a', 1)").contains("takes 1 argument, not 2"));
        assert!(err("startsWith(request.path, '/a')").contains("is called on a value"));
        assert!(err("principal.roles.all(r)").contains("`all` is a macro"));
        assert!(err("principal.roles.exists(r, r == x)").contains("unknown variable `x`"));
        assert!(err("acme.Thing{a: 1} == null").contains("unknown message type"));
        for ok in [
            "principal.roles.exists(r, r == 'x')",
            "principal.roles.map(r, r + '!').size() > 0",
            "[1, 2].all(i, [3].exists(j, i < j))",
            "type(now) == int",
            "optional.of(request.path).hasValue()",
            "now % 86400 < 64800",
            "has(principal.attributes.plan)",
            "{'a': principal.subject}.a == 'ann'",
        ] {
            assert_eq!(err(ok), "", "{ok}");
        }
    }
}
