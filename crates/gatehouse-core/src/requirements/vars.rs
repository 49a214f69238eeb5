//! The variables of a `when` condition — `principal`, `request` and `now` — handed to CEL by
//! a [`VariableResolver`] over the borrowed [`Facts`]: an evaluation builds nothing up front,
//! only the members the expression reads, when it reads them, as the same CEL values the
//! whole maps held (strings borrowed, not copied).
//!
//! `principal` and `request` behave as the maps they were: a member is a field
//! (`principal.tenant`), an index (`request['params']`), in `in`, `has()` and `size()`; an
//! operation on the whole record (iterating it, `principal == {…}`, copying it into a list)
//! builds the whole map once per evaluation and answers with it. One thing differs: a map
//! literal on the *left* of `==` compares unequal to the whole record (`cel` recognizes its
//! own maps only, and telling it ours is one would have it build the map on every member
//! read); the members themselves are `cel`'s own values and compare either way.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use cel::ExecutionError;
use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::common::traits::{Container, Indexer, Iterable, Sizer};
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, MAP_TYPE, Type,
};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;

use super::Facts;
use crate::attributes::{Attributes, Value};

static MAP: Type = MAP_TYPE;

/// The members of `principal`.
pub(super) const PRINCIPAL_MEMBERS: [&str; 9] = [
    "subject",
    "roles",
    "scopes",
    "tenant",
    "attributes",
    "claims",
    "scheme",
    "acr",
    "auth_time",
];
/// The members of `request`.
pub(super) const REQUEST_MEMBERS: [&str; 6] =
    ["method", "path", "params", "ip", "country", "headers"];

/// The variables of one evaluation.
pub(super) struct Vars<'a> {
    principal: Record<'a>,
    request: Record<'a>,
    now: CelInt,
}

impl<'a> Vars<'a> {
    pub(super) fn new(facts: Facts<'a>) -> Self {
        Self {
            principal: Record::new(facts, Kind::Principal),
            request: Record::new(facts, Kind::Request),
            now: CelInt::from(facts.now),
        }
    }
}

impl VariableResolver for Vars<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        match variable {
            "principal" => Some(CowVal::Borrowed(&self.principal)),
            "request" => Some(CowVal::Borrowed(&self.request)),
            "now" => Some(CowVal::Borrowed(&self.now)),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Principal,
    Request,
}

/// `principal` or `request`: a map whose members are made when read.
struct Record<'a> {
    facts: Facts<'a>,
    kind: Kind,
    /// The whole map, for what a member lookup cannot answer.
    whole: OnceLock<Box<dyn Val + 'a>>,
}

impl fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The facts are request data: name the record only.
        f.write_str(match self.kind {
            Kind::Principal => "principal",
            Kind::Request => "request",
        })
    }
}

fn string(s: &str) -> Box<dyn Val + '_> {
    Box::new(CelString::from(s))
}

fn opt_string(s: Option<&str>) -> Box<dyn Val + '_> {
    s.map_or_else(|| Box::new(CelNull) as Box<dyn Val>, string)
}

fn strings(l: &[String]) -> Box<dyn Val + '_> {
    Box::new(CelList::from(
        l.iter().map(|s| string(s)).collect::<Vec<_>>(),
    ))
}

fn value(v: &Value) -> Box<dyn Val + '_> {
    match v {
        Value::Bool(b) => Box::new(CelBool::from(*b)),
        Value::Str(s) => string(s),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Box::new(CelInt::from(i)),
            None => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::List(l) => strings(l),
    }
}

fn map<'a>(entries: impl Iterator<Item = (&'a str, Box<dyn Val + 'a>)>) -> Box<dyn Val + 'a> {
    Box::new(CelMap::from(
        entries
            .map(|(k, v)| (CelMapKey::from(k), v))
            .collect::<HashMap<_, _>>(),
    ))
}

fn attributes(a: &Attributes) -> Box<dyn Val + '_> {
    map(a.iter().map(|(k, v)| (k.as_str(), value(v))))
}

impl<'a> Record<'a> {
    const fn new(facts: Facts<'a>, kind: Kind) -> Self {
        Self {
            facts,
            kind,
            whole: OnceLock::new(),
        }
    }

    const fn members(&self) -> &'static [&'static str] {
        match self.kind {
            Kind::Principal => &PRINCIPAL_MEMBERS,
            Kind::Request => &REQUEST_MEMBERS,
        }
    }

    /// The member `name`, as a CEL value; `None` when there is no such member.
    fn member(&self, name: &str) -> Option<Box<dyn Val + 'a>> {
        let f = self.facts;
        let p = f.principal;
        Some(match (self.kind, name) {
            (Kind::Principal, "subject") => string(&p.subject),
            (Kind::Principal, "roles") => strings(&p.roles),
            (Kind::Principal, "scopes") => strings(&p.scopes),
            (Kind::Principal, "tenant") => opt_string(p.tenant.as_deref()),
            (Kind::Principal, "attributes") => attributes(f.attributes),
            (Kind::Principal, "claims") => attributes(&p.claims),
            (Kind::Principal, "scheme") => string(p.scheme.as_str()),
            (Kind::Principal, "acr") => opt_string(p.acr.as_deref()),
            (Kind::Principal, "auth_time") => match p.auth_time {
                Some(t) => Box::new(CelInt::from(t)),
                None => Box::new(CelNull),
            },
            (Kind::Request, "method") => string(f.method),
            (Kind::Request, "path") => string(f.path),
            (Kind::Request, "params") => map(f.params.iter().map(|(k, v)| (*k, string(v)))),
            (Kind::Request, "ip") => {
                Box::new(CelString::from(f.client_ip.to_canonical().to_string()))
            }
            (Kind::Request, "country") => opt_string(f.country),
            (Kind::Request, "headers") => {
                map(f.headers.iter().map(|(k, v)| (k.as_str(), string(v))))
            }
            _ => return None,
        })
    }

    fn whole(&self) -> &(dyn Val + 'a) {
        self.whole
            .get_or_init(|| {
                map(self
                    .members()
                    .iter()
                    .filter_map(|m| Some((*m, self.member(m)?))))
            })
            .as_ref()
    }
}

impl<'a> Val for Record<'a> {
    fn get_type(&self) -> &Type {
        &MAP
    }

    fn cel_type() -> &'static Type
    where
        Self: Sized,
    {
        &MAP
    }

    fn as_indexer<'b, 'v>(&'b self) -> Option<&'b (dyn Indexer + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn as_container(&self) -> Option<&dyn Container> {
        Some(self)
    }

    fn as_sizer(&self) -> Option<&dyn Sizer> {
        Some(self)
    }

    fn as_iterable<'b, 'v>(&'b self) -> Option<&'b (dyn Iterable + 'v)>
    where
        Self: 'v,
    {
        self.whole().as_iterable()
    }

    fn equals(&self, other: &dyn Val) -> bool {
        self.whole().equals(other)
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v>
    where
        Self: 'v,
    {
        self.whole().clone_as_boxed()
    }
}

impl Indexer for Record<'_> {
    fn get<'b, 'v>(&'b self, idx: &dyn Val) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        let Some(name) = idx.downcast_ref::<CelString>() else {
            // Not a member name: whatever the map answers (a missing key or a type error).
            return match self.whole().as_indexer() {
                Some(i) => i.get(idx),
                None => Err(ExecutionError::no_such_key("?")),
            };
        };
        match self.member(name.inner()) {
            Some(v) => Ok(CowVal::Owned(v)),
            None => Err(ExecutionError::no_such_key(name.inner())),
        }
    }

    fn steal<'v>(self: Box<Self>, idx: &dyn Val) -> Result<Box<dyn Val + 'v>, ExecutionError>
    where
        Self: 'v,
    {
        self.get(idx).map(CowVal::into_owned)
    }
}

impl Container for Record<'_> {
    fn contains(&self, key: &dyn Val) -> Result<bool, ExecutionError> {
        match key.downcast_ref::<CelString>() {
            Some(name) => Ok(self.members().contains(&name.inner())),
            None => match self.whole().as_container() {
                Some(c) => c.contains(key),
                None => Ok(false),
            },
        }
    }
}

impl Sizer for Record<'_> {
    fn size(&self) -> CelInt {
        CelInt::from(i64::try_from(self.members().len()).unwrap_or(i64::MAX))
    }
}

/// Rewrites each field read on `principal` or `request` (`request.params.id`) into the index
/// read it amounts to (`request["params"]["id"]`): `cel` resolves a dotted name by trying
/// every prefix of it as a variable or a type name first (`request.params.id`, then
/// `request.params`, then `request`, each joined into a new string), which cost more than
/// the rest of the evaluation. A field read and an index read of a map with a string key
/// are the same lookup (`cel` answers both with its `index_into`), so the value and a
/// missing member's error are unchanged; presence tests (`has(…)`) and optional reads
/// (`.?`) stay as they are.
pub(super) fn direct(e: &mut IdedExpr) {
    use cel::common::ast::{CallExpr, LiteralValue, operators};
    let id = e.id;
    let rewrite = matches!(&e.expr, Expr::Select(s) if !s.test && rooted_at_record(&s.operand));
    if rewrite && let Expr::Select(s) = std::mem::take(&mut e.expr) {
        let field = IdedExpr {
            id,
            expr: Expr::Literal(LiteralValue::String(CelString::from(s.field))),
        };
        e.expr = Expr::Call(CallExpr {
            func_name: operators::INDEX.to_owned(),
            target: None,
            args: vec![*s.operand, field],
        });
    }
    match &mut e.expr {
        Expr::Select(s) => direct(&mut s.operand),
        Expr::Call(c) => {
            if let Some(t) = &mut c.target {
                direct(t);
            }
            c.args.iter_mut().for_each(direct);
        }
        Expr::Comprehension(c) => {
            // A comprehension's own variable may be called `principal`: leave its body alone.
            let shadows = [Some(&c.iter_var), c.iter_var2.as_ref(), Some(&c.accu_var)]
                .into_iter()
                .flatten()
                .any(|v| v == "principal" || v == "request");
            direct(&mut c.iter_range);
            direct(&mut c.accu_init);
            if !shadows {
                direct(&mut c.loop_cond);
                direct(&mut c.loop_step);
                direct(&mut c.result);
            }
        }
        Expr::List(l) => l.elements.iter_mut().for_each(direct),
        Expr::Map(m) => {
            for entry in &mut m.entries {
                match &mut entry.expr {
                    EntryExpr::MapEntry(m) => {
                        direct(&mut m.key);
                        direct(&mut m.value);
                    }
                    EntryExpr::StructField(f) => direct(&mut f.value),
                }
            }
        }
        Expr::Struct(_) | Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// `principal`, `request`, or field reads (already rewritten or not) on them.
fn rooted_at_record(e: &IdedExpr) -> bool {
    use cel::common::ast::operators;
    match &e.expr {
        Expr::Ident(n) => n == "principal" || n == "request",
        Expr::Select(s) => !s.test && rooted_at_record(&s.operand),
        Expr::Call(c) if c.func_name == operators::INDEX && c.target.is_none() => {
            c.args.first().is_some_and(rooted_at_record)
                && matches!(c.args.get(1).map(|a| &a.expr), Some(Expr::Literal(_)))
        }
        _ => false,
    }
}
