//! Row 25: requirements of a route (issue 13) — the identity is proven and authorized, but
//! the user must *do* something first: verify an email, add a payment method. Each
//! requirement is data (`[[route.require]]`: an attribute or claim and a test) or a CEL
//! condition (`when = '…'`, on a requirement or on the route); every unmet one is listed in
//! the 403 `requirement_not_met`, with its code, message and remedy link.
//!
//! Conditions are compiled when the config loads ([`Condition::compile`]), so a syntax error
//! or an unknown variable is a config error with its line. At run time an evaluation error
//! (a missing key, a type mismatch) never allows: it is the unmet requirement
//! `condition_error`, logged and audited like any refusal.

use std::fmt;
use std::sync::{Arc, LazyLock};

use crate::attributes::{Attributes, Value};
use crate::principal::Principal;

/// Where a requirement reads its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `attribute = "payment_method"`: the principal's attributes.
    Attribute(String),
    /// `claim = "org.plan"`: a claim of the token, by dotted path.
    Claim(String),
    /// Only a `when` condition.
    Condition,
}

/// What the value must satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    /// `present = true`: set (and not `false`, `""` or `[]`); `present = false`: not set.
    Present(bool),
    /// `equals = …`.
    Equals(Value),
    /// `in = […]`: equal to one of these (a list value: shares one with them).
    In(Vec<Value>),
    /// `not_in = […]`: equal to none of these (a list value: shares none); an absent
    /// value passes.
    NotIn(Vec<Value>),
}

/// One `[[route.require]]`.
#[derive(Debug, Clone)]
pub struct Requirement {
    pub source: Source,
    /// `None` with [`Source::Condition`].
    pub test: Option<Test>,
    pub when: Option<Arc<Condition>>,
    /// The stable code clients act on (`payment_method_required`).
    pub code: String,
    pub message: Option<String>,
    /// A same-site path or an `https://` URL where the user can fix it.
    pub remedy_url: Option<String>,
    /// 1-based line of the `[[route.require]]` header.
    pub line: usize,
}

/// An unmet requirement as the 403 lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    pub code: String,
    pub message: Option<String>,
    pub remedy_url: Option<String>,
}

/// The code of the unmet requirement an evaluation error gives (issue 13).
pub const CONDITION_ERROR: &str = "condition_error";
/// The code of a route's own `when` that is false.
pub const CONDITION_NOT_MET: &str = "condition_not_met";

/// Variables a condition may name.
pub const VARIABLES: &[&str] = &["principal", "request", "now"];

mod declared;
mod vars;

/// CEL's standard environment (functions, macros), built once: building it per evaluation
/// cost ≈ 19 µs (`Context::default` does).
static ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));

/// A compiled CEL expression (the Common Expression Language, as Envoy RBAC and Kubernetes
/// use it).
pub struct Condition {
    pub source: String,
    /// The parsed expression, with field reads on the records made direct
    /// ([`vars::direct`]).
    expr: cel::IdedExpr,
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Condition").field(&self.source).finish()
    }
}

impl Condition {
    /// Parses `source` and checks what it names; an error says what is wrong (a syntax
    /// error, a variable that is not `principal`, `request` or `now`, a function the
    /// environment does not declare or one called with the wrong number of arguments).
    pub fn compile(source: &str) -> Result<Self, String> {
        let program = ENV.compile(source).map_err(|e| {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("syntax error").trim();
            let first = first.replace("ERROR: <input>:", "at ");
            format!("invalid expression `{source}`: {first}")
        })?;
        declared::check(source, &program)?;
        let mut expr = program.expression().clone();
        vars::direct(&mut expr);
        Ok(Self {
            source: source.to_owned(),
            expr,
        })
    }

    /// Evaluates the condition: `Ok(true)` holds, `Ok(false)` does not, `Err` could not be
    /// evaluated (never an allow). The variables are lent to CEL as they are read
    /// ([`vars::Vars`]): nothing is built for what the expression does not read.
    pub fn eval(&self, facts: &Facts<'_>) -> Result<bool, String> {
        let vars = vars::Vars::new(*facts);
        let mut ctx = cel::Context::with_env(Arc::clone(&ENV));
        ctx.set_variable_resolver(&vars);
        match cel::Value::resolve(&self.expr, &ctx) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("the expression gave {other:?}, not a boolean")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// What a requirement is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub principal: &'a Principal,
    /// The principal's current attributes (a local user's, as of the last second).
    pub attributes: &'a Attributes,
    pub method: &'a str,
    pub path: &'a str,
    pub params: &'a [(&'a str, &'a str)],
    pub client_ip: std::net::IpAddr,
    /// ISO 3166-1 alpha-2 of the client, when known.
    pub country: Option<&'a str>,
    /// Request headers, lower-case names, without credentials (`authorization`, `cookie`,
    /// `proxy-authorization`, `x-api-key`).
    pub headers: &'a [(String, String)],
    /// Unix seconds.
    pub now: i64,
}

/// Does a present value count as set?
fn is_set(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Str(s) => !s.is_empty(),
        Value::List(l) => !l.is_empty(),
        Value::Number(_) => true,
    }
}

fn one_of(v: &Value, set: &[Value]) -> bool {
    match v {
        Value::List(items) => items
            .iter()
            .any(|i| set.iter().any(|s| matches!(s, Value::Str(s) if s == i))),
        _ => set.iter().any(|s| s.same_as(v)),
    }
}

impl Test {
    /// Whether `value` (`None`: absent) passes.
    pub fn holds(&self, value: Option<&Value>) -> bool {
        match self {
            Self::Present(want) => value.is_some_and(is_set) == *want,
            Self::Equals(e) => value.is_some_and(|v| v.same_as(e)),
            Self::In(set) => value.is_some_and(|v| one_of(v, set)),
            Self::NotIn(set) => !value.is_some_and(|v| one_of(v, set)),
        }
    }
}

impl Requirement {
    fn value<'f>(&self, f: &Facts<'f>) -> Option<&'f Value> {
        match &self.source {
            Source::Attribute(name) => f.attributes.get(name),
            Source::Claim(path) => f.principal.claims.get(path),
            Source::Condition => None,
        }
    }

    /// `Ok(())` when met; the unmet entry otherwise (an evaluation error: `condition_error`).
    pub fn check(&self, f: &Facts<'_>) -> Result<(), Unmet> {
        if let Some(test) = &self.test
            && !test.holds(self.value(f))
        {
            return Err(self.unmet());
        }
        match self.when.as_ref().map(|c| c.eval(f)) {
            None | Some(Ok(true)) => Ok(()),
            Some(Ok(false)) => Err(self.unmet()),
            Some(Err(_)) => Err(condition_error()),
        }
    }

    fn unmet(&self) -> Unmet {
        Unmet {
            code: self.code.clone(),
            message: self.message.clone(),
            remedy_url: self.remedy_url.clone(),
        }
    }
}

/// The unmet entry of a condition that could not be evaluated.
pub fn condition_error() -> Unmet {
    Unmet {
        code: CONDITION_ERROR.to_owned(),
        message: Some("A condition of this resource could not be evaluated.".to_owned()),
        remedy_url: None,
    }
}

/// Checks a route's own `when` and then every requirement; every unmet one is listed, in
/// file order, the route's own condition first. An evaluation error also returns its text
/// (for the log; never in the body).
pub fn check(
    when: Option<&Condition>,
    requirements: &[Requirement],
    f: &Facts<'_>,
) -> Result<(), (Vec<Unmet>, Option<String>)> {
    let mut unmet = Vec::new();
    let mut error = None;
    if let Some(c) = when {
        match c.eval(f) {
            Ok(true) => {}
            Ok(false) => unmet.push(Unmet {
                code: CONDITION_NOT_MET.to_owned(),
                message: Some("A condition of this resource is not met.".to_owned()),
                remedy_url: None,
            }),
            Err(e) => {
                error = Some(format!("`{}`: {e}", c.source));
                unmet.push(condition_error());
            }
        }
    }
    for r in requirements {
        if let Err(u) = r.check(f) {
            if u.code == CONDITION_ERROR
                && error.is_none()
                && let Some(c) = &r.when
                && let Err(e) = c.eval(f)
            {
                error = Some(format!("`{}`: {e}", c.source));
            }
            unmet.push(u);
        }
    }
    if unmet.is_empty() {
        Ok(())
    } else {
        Err((unmet, error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::Scheme;

    fn facts<'a>(
        p: &'a Principal,
        attrs: &'a Attributes,
        params: &'a [(&'a str, &'a str)],
    ) -> Facts<'a> {
        Facts {
            principal: p,
            attributes: attrs,
            method: "GET",
            path: "/shop/42/checkout",
            params,
            client_ip: [127, 0, 0, 1].into(),
            country: None,
            headers: &[],
            now: 1_700_000_000,
        }
    }

    #[test]
    fn tests_on_values() {
        let s = |x: &str| Value::Str(x.into());
        assert!(Test::Present(true).holds(Some(&Value::Bool(true))));
        assert!(!Test::Present(true).holds(Some(&Value::Bool(false))));
        assert!(!Test::Present(true).holds(Some(&s(""))));
        assert!(!Test::Present(true).holds(None));
        assert!(Test::Present(false).holds(None));
        assert!(
            Test::Equals(Value::Number(1.into())).holds(Some(&Value::Number(
                serde_json::Number::from_f64(1.0).unwrap_or_else(|| 0.into())
            )))
        );
        assert!(Test::In(vec![s("pro"), s("team")]).holds(Some(&s("pro"))));
        assert!(!Test::In(vec![s("pro")]).holds(Some(&s("free"))));
        assert!(Test::In(vec![s("beta")]).holds(Some(&Value::List(vec!["beta".into()]))));
        assert!(Test::NotIn(vec![s("banned")]).holds(None));
        assert!(!Test::NotIn(vec![s("banned")]).holds(Some(&Value::List(vec!["banned".into()]))));
    }

    #[test]
    fn conditions_compile_and_evaluate() {
        let mut p = Principal::new("ann", Scheme::Bearer);
        p.roles = vec!["buyer".into()];
        let mut attrs = Attributes::new();
        attrs.insert("plan".into(), Value::Str("pro".into()));
        let params = [("shop", "42")];
        let f = facts(&p, &attrs, &params);
        for (src, want) in [
            ("principal.attributes.plan == 'pro'", Ok(true)),
            ("request.params.shop == '42'", Ok(true)),
            ("now >= 1600000000 && now < 1800000000", Ok(true)),
            ("principal.roles.exists(r, r == 'buyer')", Ok(true)),
            ("has(principal.attributes.vip)", Ok(false)),
            ("request.country == null", Ok(true)),
            // The records behave as the maps they stand for.
            ("'buyer' in principal.roles", Ok(true)),
            ("principal.attributes == {'plan': 'pro'}", Ok(true)),
            ("{'plan': 'pro'} == principal.attributes", Ok(true)),
            (
                "has(principal.tenant) && principal.tenant == null",
                Ok(true),
            ),
            ("'tenant' in principal && !('x' in principal)", Ok(true)),
            ("size(principal) == 9 && size(request) == 6", Ok(true)),
            ("principal.exists(k, k == 'auth_time')", Ok(true)),
            ("[principal][0].subject == 'ann'", Ok(true)),
            (
                "request['method'] == 'GET' && request.ip == '127.0.0.1'",
                Ok(true),
            ),
            (
                "principal.scheme == 'bearer' && request.path.startsWith('/shop/')",
                Ok(true),
            ),
            ("has(principal.nickname)", Ok(false)),
            (
                "has(principal.attributes.plan) && principal['attributes'].plan == 'pro'",
                Ok(true),
            ),
            (
                "principal.attributes.?vip.orValue(false) == false",
                Ok(true),
            ),
            // A macro's variable may shadow a record.
            ("[1].exists(principal, principal == 1)", Ok(true)),
            (
                "has(request.params.shop) && !has(request.params.nope)",
                Ok(true),
            ),
            (
                "principal.roles[0] == 'buyer' && request.headers == {}",
                Ok(true),
            ),
        ] {
            let c = Condition::compile(src).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(c.eval(&f), want, "{src}");
        }
        // Evaluation errors: a missing key, not a boolean.
        for src in [
            "principal.attributes.vip == true",
            "1 + 1",
            "principal.nickname == 'x'",
            "request.params.nope == 'x'",
            "request[1] == 'x'",
            "principal.subject.size == 3",
        ] {
            let c = Condition::compile(src).unwrap_or_else(|e| panic!("{e}"));
            assert!(c.eval(&f).is_err(), "{src}");
        }
        // Load-time errors.
        for src in [
            "principal.roles.exists(",
            "user.name == 'x'",
            "1 +",
            "nosuchfn(request.path)",
            "principal.foo.bar(1)",
            "size(request.path, 2) > 1",
        ] {
            assert!(Condition::compile(src).is_err(), "{src}");
        }
    }

    #[test]
    fn every_unmet_requirement_is_listed_and_errors_never_pass() {
        let p = Principal::new("ann", Scheme::Basic);
        let attrs = Attributes::new();
        let f = facts(&p, &attrs, &[]);
        let req = |code: &str, when: Option<&str>| Requirement {
            source: if when.is_some() {
                Source::Condition
            } else {
                Source::Attribute(code.into())
            },
            test: when.is_none().then_some(Test::Present(true)),
            when: when.map(|w| Arc::new(Condition::compile(w).unwrap_or_else(|e| panic!("{e}")))),
            code: code.into(),
            message: None,
            remedy_url: None,
            line: 1,
        };
        let reqs = [
            req("email_verified", None),
            req("payment_method", None),
            req("broken", Some("principal.attributes.x > 1")),
        ];
        let Err((unmet, error)) = check(None, &reqs, &f) else {
            panic!("met")
        };
        let codes: Vec<&str> = unmet.iter().map(|u| u.code.as_str()).collect();
        assert_eq!(codes, ["email_verified", "payment_method", CONDITION_ERROR]);
        assert!(error.is_some());
    }
}
