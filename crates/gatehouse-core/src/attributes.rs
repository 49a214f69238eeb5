//! Attributes of a principal (issue 13): facts about an account that requirements
//! (row 25) and `when` expressions read — a verified email, a payment method on file, a
//! plan. Local users carry them in the store (`gatehouse user set NAME KEY=VALUE…`); an
//! external issuer's token carries them as claims mapped by `[[issuers]] attributes`.
//!
//! A value is a string, a boolean, a number or a list of strings: what a claim or a CLI
//! argument can say without a schema.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

use serde::{Deserialize, Serialize};

/// One attribute value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Number(serde_json::Number),
    Str(String),
    List(Vec<String>),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Number(n) => write!(f, "{n}"),
            Self::Str(s) => f.write_str(s),
            Self::List(l) => write!(f, "[{}]", l.join(", ")),
        }
    }
}

impl Value {
    /// The value of a JSON document, when it has one of the four shapes (an object, `null`
    /// or a list holding anything but strings has none).
    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        Some(match v {
            serde_json::Value::Bool(b) => Self::Bool(*b),
            serde_json::Value::Number(n) => Self::Number(n.clone()),
            serde_json::Value::String(s) => Self::Str(s.clone()),
            serde_json::Value::Array(items) => Self::List(
                items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned))
                    .collect::<Option<_>>()?,
            ),
            serde_json::Value::Null | serde_json::Value::Object(_) => return None,
        })
    }

    /// Equality across representations: numbers compare by value (`1` = `1.0`).
    pub fn same_as(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Number(a), Self::Number(b)) => a.as_f64() == b.as_f64(),
            _ => self == other,
        }
    }
}

/// Attributes by name, in name order (stable JSON, stable `user list`).
pub type Attributes = BTreeMap<String, Value>;

/// Longest attribute name.
pub const MAX_NAME: usize = 64;
/// Largest value (a string, or a list's strings together), bytes.
pub const MAX_VALUE: usize = 1024;

static EMPTY: LazyLock<Arc<Attributes>> = LazyLock::new(Arc::default);

/// A shared empty set: principals without attributes allocate nothing for them.
pub fn empty() -> Arc<Attributes> {
    Arc::clone(&EMPTY)
}

/// An attribute name: a letter or `_`, then letters, digits or `_` (so that a `when`
/// expression can name it as `principal.attributes.NAME`), at most [`MAX_NAME`] bytes.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') || name.len() > MAX_NAME {
        return Err(format!(
            "invalid attribute name `{name}`: a letter or `_`, then letters, digits or `_`, at most {MAX_NAME} characters"
        ));
    }
    Ok(())
}

/// A value fits: a string, or a list's strings together, of at most [`MAX_VALUE`] bytes.
pub fn check_size(name: &str, v: &Value) -> Result<(), String> {
    let size = match v {
        Value::Str(s) => s.len(),
        Value::List(l) => l.iter().map(String::len).sum(),
        Value::Bool(_) | Value::Number(_) => 0,
    };
    if size > MAX_VALUE {
        return Err(format!(
            "the value of `{name}` is too long: at most {MAX_VALUE} bytes"
        ));
    }
    Ok(())
}

/// Parses one `KEY=VALUE` argument of `gatehouse user set`:
/// `true`/`false` are booleans, a JSON number is a number, `[…]` a JSON array of strings,
/// `"…"` a JSON string (to keep `"true"` or `"42"` a string), anything else the string as
/// written.
pub fn parse_assignment(arg: &str) -> Result<(String, Value), String> {
    let Some((name, raw)) = arg.split_once('=') else {
        return Err(format!(
            "`{arg}` is not `KEY=VALUE` (e.g. `email_verified=true`)"
        ));
    };
    check_name(name)?;
    let value = match raw {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ if raw.starts_with('[') => serde_json::from_str::<Vec<String>>(raw)
            .map(Value::List)
            .map_err(|_| {
                format!("the value of `{name}` is not a JSON array of strings: `{raw}`")
            })?,
        _ if raw.starts_with('"') => serde_json::from_str::<String>(raw)
            .map(Value::Str)
            .map_err(|_| format!("the value of `{name}` is not a JSON string: `{raw}`"))?,
        _ => match serde_json::from_str::<serde_json::Number>(raw) {
            Ok(n) => Value::Number(n),
            Err(_) => Value::Str(raw.to_owned()),
        },
    };
    check_size(name, &value)?;
    Ok((name.to_owned(), value))
}

/// Checks a whole set read back from a store or a copy.
pub fn check(attrs: &Attributes) -> Result<(), String> {
    for (name, value) in attrs {
        check_name(name)?;
        check_size(name, value)?;
    }
    Ok(())
}

/// Checks a change to a user's attributes — the set to add or replace, the names to
/// remove — as `gatehouse user set`/`unset` and the admin API make it.
pub fn check_change(set: &Attributes, unset: &[String]) -> Result<(), String> {
    check(set)?;
    for name in unset {
        check_name(name)?;
        if set.contains_key(name) {
            return Err(format!("`{name}` is both set and unset"));
        }
    }
    Ok(())
}

/// A change given as a JSON object, as the admin API takes it (a JSON merge patch, RFC 7396
/// §2: a member set to `null` is removed): the set and the names to remove, checked by
/// [`check_change`].
pub fn change_from_json(
    patch: &serde_json::Map<String, serde_json::Value>,
) -> Result<(Attributes, Vec<String>), String> {
    let mut set = Attributes::new();
    let mut unset = Vec::new();
    for (name, v) in patch {
        if v.is_null() {
            unset.push(name.clone());
            continue;
        }
        let value = Value::from_json(v).ok_or_else(|| {
            format!(
                "the value of `{name}` is not a string, a boolean, a number or a list of strings (`null` removes it)"
            )
        })?;
        set.insert(name.clone(), value);
    }
    check_change(&set, &unset)?;
    Ok((set, unset))
}

/// Follows a dotted path (`org.plan`) into a JSON document, as the claim mappings of
/// `[[issuers]]` do; a name with `/` or `:` is one literal member (a collision-resistant
/// claim name, RFC 7519 §4.2).
pub fn json_path<'a>(doc: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    if path.contains(['/', ':']) {
        return doc.get(path);
    }
    path.split('.').try_fold(doc, |v, step| v.get(step))
}

/// The attributes a mapping (attribute name → claim path, `[[issuers]] attributes` and
/// `[[login_providers]] attributes`) reads from a verified claims set. A claim that is
/// absent, or of another shape (an object, `null`, a list of non-strings), maps nothing.
pub fn map_claims(doc: &serde_json::Value, mapping: &[(String, String)]) -> Attributes {
    mapping
        .iter()
        .filter_map(|(name, path)| {
            json_path(doc, path)
                .and_then(Value::from_json)
                .map(|v| (name.clone(), v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_take_the_four_shapes() {
        let v = |a: &str| parse_assignment(a).map(|(_, v)| v);
        assert_eq!(v("email_verified=true"), Ok(Value::Bool(true)));
        assert_eq!(v("credits=10"), Ok(Value::Number(10.into())));
        assert_eq!(v("plan=pro"), Ok(Value::Str("pro".into())));
        assert_eq!(v("zip=01234"), Ok(Value::Str("01234".into())));
        assert_eq!(v(r#"flag="true""#), Ok(Value::Str("true".into())));
        assert_eq!(
            v(r#"groups=["a","b"]"#),
            Ok(Value::List(vec!["a".into(), "b".into()]))
        );
        assert_eq!(v("empty="), Ok(Value::Str(String::new())));
        for bad in ["noequals", "1x=2", "a-b=1", "=1", r"g=[1,2]", r#"s="open"#] {
            assert!(parse_assignment(bad).is_err(), "{bad}");
        }
        let long = format!("k={}", "x".repeat(MAX_VALUE + 1));
        assert!(parse_assignment(&long).is_err());
    }

    #[test]
    fn a_change_is_checked_whether_from_the_cli_or_json() {
        let json = |t: &str| {
            let v: serde_json::Value = serde_json::from_str(t).unwrap_or_default();
            change_from_json(v.as_object().unwrap_or(&serde_json::Map::new()))
        };
        let (set, unset) =
            json(r#"{"plan": "pro", "n": 2, "trial": null}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(set.get("plan"), Some(&Value::Str("pro".into())));
        assert_eq!(unset, ["trial"]);
        for bad in [r#"{"a-b": 1}"#, r#"{"o": {"x": 1}}"#, r#"{"l": [1]}"#] {
            assert!(json(bad).is_err(), "{bad}");
        }
        let mut set = Attributes::new();
        set.insert("plan".into(), Value::Bool(true));
        assert!(check_change(&set, &["plan".into()]).is_err());
        assert!(check_change(&set, &["bad name".into()]).is_err());
        assert!(check_change(&set, &["trial".into()]).is_ok());
    }

    #[test]
    fn json_round_trip_keeps_the_shape() {
        let mut a = Attributes::new();
        for arg in ["b=true", "n=2.5", "s=x", r#"l=["y"]"#, r#"q="1""#] {
            let (k, v) = parse_assignment(arg).unwrap_or_else(|e| panic!("{e}"));
            a.insert(k, v);
        }
        let text = serde_json::to_string(&a).unwrap_or_default();
        let back: Attributes = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(a, back);
    }

    #[test]
    fn dotted_paths_descend_uri_names_do_not() {
        let doc = serde_json::json!({"org": {"plan": "pro"}, "https://x.io/a.b": 1});
        assert_eq!(json_path(&doc, "org.plan"), Some(&serde_json::json!("pro")));
        assert_eq!(
            json_path(&doc, "https://x.io/a.b"),
            Some(&serde_json::json!(1))
        );
        assert_eq!(json_path(&doc, "org.none"), None);
    }

    #[test]
    fn mappings_keep_the_claims_of_the_four_shapes() {
        let doc =
            serde_json::json!({"org": {"plan": "pro", "seats": {"n": 1}}, "ok": true, "n": null});
        let map = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect();
            map_claims(&doc, &pairs)
        };
        let got = map(&[
            ("plan", "org.plan"),
            ("verified", "ok"),
            ("seats", "org.seats"),
            ("n", "n"),
            ("gone", "x.y"),
        ]);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got["plan"], Value::Str("pro".into()));
        assert_eq!(got["verified"], Value::Bool(true));
    }
}
