//! One pass over a JWT Claims Set (RFC 7519 §4) that keeps only the claims an issuer maps,
//! borrowed from the decoded payload where the JSON has no escapes. Which claims to keep is a
//! small tree built once per issuer from its config (`roles_claim = "realm_access.roles"`
//! descends into `realm_access`); every other member is skipped without being materialized.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::jws::CowStr;

/// A claim the verifier reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Iss,
    Aud,
    Exp,
    Nbf,
    Iat,
    Jti,
    /// `sid`: the session the token belongs to (OpenID Connect Front/Back-Channel Logout).
    Sid,
    Acr,
    AuthTime,
    Subject,
    Roles,
    Scopes,
    /// `scp`: the array form of scopes several providers use, read as a fallback.
    Scp,
    Tenant,
}

const TARGETS: usize = 14;

/// A claim value, as far as Gatehouse cares about its type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val<'a> {
    Str(Cow<'a, str>),
    /// An array whose elements are all strings.
    List(Vec<Cow<'a, str>>),
    /// A JSON number; NumericDate values (RFC 7519 §2) may be fractional and are floored.
    Num(i64),
    /// `null`: treated as absent.
    Null,
    /// An object or a boolean.
    Other,
}

struct Node {
    key: String,
    targets: Vec<Target>,
    children: Vec<Node>,
}

/// Which members of a claims set to keep, and where they go.
pub(crate) struct ClaimTree {
    top: Vec<Node>,
}

impl ClaimTree {
    /// The registered claims plus the issuer's mapped ones. A mapped name containing `/` or `:`
    /// is one literal claim name (a collision-resistant URI name, RFC 7519 §4.2, such as
    /// `https://example.com/roles`); otherwise `.` separates the steps of a path into nested
    /// objects.
    pub(crate) fn for_issuer(subject: &str, roles: &str, scopes: &str, tenant: &str) -> Self {
        let mut tree = Self { top: Vec::new() };
        for (name, target) in [
            ("iss", Target::Iss),
            ("aud", Target::Aud),
            ("exp", Target::Exp),
            ("nbf", Target::Nbf),
            ("iat", Target::Iat),
            ("jti", Target::Jti),
            ("sid", Target::Sid),
            ("acr", Target::Acr),
            ("auth_time", Target::AuthTime),
        ] {
            tree.insert_path(&[name], target);
        }
        for (name, target) in [
            (subject, Target::Subject),
            (roles, Target::Roles),
            (scopes, Target::Scopes),
            (tenant, Target::Tenant),
        ] {
            tree.insert(name, target);
        }
        if scopes != "scp" {
            tree.insert_path(&["scp"], Target::Scp);
        }
        tree
    }

    fn insert(&mut self, name: &str, target: Target) {
        self.insert_path(&claim_steps(name), target);
    }

    fn insert_path(&mut self, steps: &[&str], target: Target) {
        let mut level = &mut self.top;
        let Some((last, parents)) = steps.split_last() else {
            return;
        };
        for step in parents {
            let at = match level.iter().position(|n| n.key == *step) {
                Some(i) => i,
                None => {
                    level.push(Node::new(step));
                    level.len() - 1
                }
            };
            let Some(node) = level.get_mut(at) else {
                return;
            };
            level = &mut node.children;
        }
        match level.iter_mut().find(|n| n.key == *last) {
            Some(node) => node.targets.push(target),
            None => {
                let mut node = Node::new(last);
                node.targets.push(target);
                level.push(node);
            }
        }
    }
}

/// The steps of a mapped claim name (`roles_claim` and the like): a name containing `/` or
/// `:` is one literal claim name (a collision-resistant URI name, RFC 7519 §4.2); otherwise
/// `.` separates the steps of a path into nested objects. One rule for `[[issuers]]` and
/// `[[login_providers]]`.
pub fn claim_steps(name: &str) -> Vec<&str> {
    if name.contains(['/', ':']) {
        vec![name]
    } else {
        name.split('.').collect()
    }
}

impl Node {
    fn new(key: &str) -> Self {
        Self {
            key: key.to_owned(),
            targets: Vec::new(),
            children: Vec::new(),
        }
    }
}

/// The kept claims of one token.
pub(crate) struct Claims<'a> {
    slots: [Option<Val<'a>>; TARGETS],
}

impl<'a> Claims<'a> {
    /// The claim, `None` when absent or `null`.
    pub(crate) fn take(&mut self, target: Target) -> Option<Val<'a>> {
        match self.slots.get_mut(target as usize).and_then(Option::take) {
            Some(Val::Null) | None => None,
            Some(v) => Some(v),
        }
    }
}

/// Parses a claims set (a JSON object, RFC 7519 §7.2 step 10) keeping what `tree` names. A kept
/// claim given twice is an error (RFC 7519 §4 allows rejecting duplicate names), as is any
/// JSON error, a non-object, or a kept array holding anything but strings.
pub(crate) fn parse<'a>(tree: &ClaimTree, json: &'a [u8]) -> Result<Claims<'a>, ()> {
    let mut claims = Claims {
        slots: Default::default(),
    };
    let mut de = serde_json::Deserializer::from_slice(json);
    ObjectSeed {
        nodes: &tree.top,
        out: &mut claims,
    }
    .deserialize(&mut de)
    .map_err(|_| ())?;
    de.end().map_err(|_| ())?;
    Ok(claims)
}

struct ObjectSeed<'n, 'o, 'a> {
    nodes: &'n [Node],
    out: &'o mut Claims<'a>,
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(key) = map.next_key::<CowStr<'de>>()? {
            match self.nodes.iter().find(|n| n.key == key.0) {
                Some(node) => map.next_value_seed(NodeSeed {
                    node,
                    out: &mut *self.out,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct NodeSeed<'n, 'o, 'a> {
    node: &'n Node,
    out: &'o mut Claims<'a>,
}

impl<'a> NodeSeed<'_, '_, 'a> {
    fn assign<E: de::Error>(mut self, val: Val<'a>) -> Result<(), E> {
        let Some((last, others)) = self.node.targets.split_last() else {
            return Ok(());
        };
        for target in others {
            self.put(*target, val.clone())?;
        }
        self.put(*last, val)
    }

    fn put<E: de::Error>(&mut self, target: Target, val: Val<'a>) -> Result<(), E> {
        let slot = self
            .out
            .slots
            .get_mut(target as usize)
            .ok_or_else(|| E::custom("claim slot"))?;
        if slot.is_some() {
            return Err(E::custom("duplicate claim"));
        }
        *slot = Some(val);
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a claim value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
        self.assign(Val::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.assign(Val::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.assign(Val::Num(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.assign(Val::Num(i64::try_from(v).unwrap_or(i64::MAX)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        // `as` saturates: 1e300 becomes i64::MAX.
        self.assign(Val::Num(v.floor() as i64))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.assign(Val::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.assign(Val::Null)
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        if self.node.targets.is_empty() {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4).min(64));
        while let Some(item) = seq.next_element::<CowStr<'de>>()? {
            items.push(item.0);
        }
        self.assign(Val::List(items))
    }
    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<(), M::Error> {
        let Self { node, out } = self;
        ObjectSeed {
            nodes: &node.children,
            out: &mut *out,
        }
        .visit_map(map)?;
        NodeSeed { node, out }.assign(Val::Other)
    }
}

/// The `iss` claim only: the first, unverified look that picks the issuer. It stops reading at
/// `iss`; the full [`parse`] after the signature check reads the whole document (and rejects a
/// second `iss`, so the one found here is the only one).
pub(crate) fn issuer(json: &[u8]) -> Result<Option<Cow<'_, str>>, ()> {
    let mut found = None;
    let mut de = serde_json::Deserializer::from_slice(json);
    let done = IssSeek { out: &mut found }.deserialize(&mut de);
    match found {
        Some(iss) => Ok(Some(iss)),
        None => {
            done.map_err(|_| ())?;
            de.end().map_err(|_| ())?;
            Ok(None)
        }
    }
}

struct IssSeek<'o, 'a> {
    out: &'o mut Option<Cow<'a, str>>,
}

impl<'de> DeserializeSeed<'de> for IssSeek<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for IssSeek<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(key) = map.next_key::<CowStr<'de>>()? {
            if key.0 == "iss" {
                *self.out = Some(map.next_value::<CowStr<'de>>()?.0);
                // Stop here: nothing else is needed before the signature is checked.
                return Err(de::Error::custom("found"));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> ClaimTree {
        ClaimTree::for_issuer("sub", "realm_access.roles", "scope", "org.id")
    }

    #[test]
    fn keeps_mapped_and_registered_claims_only() {
        let json = br#"{"iss":"https://sso","sub":"ann","aud":["api","x"],"exp":1.9e9,"nbf":10,
            "realm_access":{"roles":["admin","ops"],"other":{"deep":[1,{"x":2}]}},
            "org":{"id":"acme"},"scope":"read write","ignored":{"a":[1,2,3]},"jti":"j\u0031"}"#;
        let mut c = parse(&tree(), json).unwrap();
        assert_eq!(c.take(Target::Iss), Some(Val::Str("https://sso".into())));
        assert_eq!(c.take(Target::Subject), Some(Val::Str("ann".into())));
        assert_eq!(
            c.take(Target::Aud),
            Some(Val::List(vec!["api".into(), "x".into()]))
        );
        assert_eq!(c.take(Target::Exp), Some(Val::Num(1_900_000_000)));
        assert_eq!(c.take(Target::Nbf), Some(Val::Num(10)));
        assert_eq!(
            c.take(Target::Roles),
            Some(Val::List(vec!["admin".into(), "ops".into()]))
        );
        assert_eq!(c.take(Target::Tenant), Some(Val::Str("acme".into())));
        assert_eq!(c.take(Target::Scopes), Some(Val::Str("read write".into())));
        assert_eq!(c.take(Target::Jti), Some(Val::Str("j1".into())));
        assert_eq!(c.take(Target::Acr), None);
    }

    #[test]
    fn uri_claim_names_are_not_paths() {
        let tree = ClaimTree::for_issuer("sub", "https://example.com/roles", "scope", "tenant");
        let mut c = parse(&tree, br#"{"https://example.com/roles":["a"]}"#).unwrap();
        assert_eq!(c.take(Target::Roles), Some(Val::List(vec!["a".into()])));
    }

    #[test]
    fn rejects_duplicates_bad_arrays_and_non_objects() {
        for bad in [
            &br#"{"exp":1,"exp":2}"#[..],
            br#"{"realm_access":{"roles":[]},"realm_access":{"roles":[]}}"#,
            br#"{"aud":["api",7]}"#,
            br#"["iss"]"#,
            br#"{"iss":"a"} trailing"#,
            br#"{"iss":"a""#,
        ] {
            assert!(
                parse(&tree(), bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // Unkept members may repeat and hold anything.
        assert!(parse(&tree(), br#"{"x":1,"x":[true,{}]}"#).is_ok());
    }

    #[test]
    fn null_is_absent_and_objects_are_other() {
        let mut c = parse(&tree(), br#"{"acr":null,"sub":{"id":1},"realm_access":7}"#).unwrap();
        assert_eq!(c.take(Target::Acr), None);
        assert_eq!(c.take(Target::Subject), Some(Val::Other));
        assert_eq!(c.take(Target::Roles), None);
    }

    #[test]
    fn issuer_reads_iss_only() {
        assert_eq!(issuer(br#"{"sub":1,"iss":"a"}"#), Ok(Some("a".into())));
        assert_eq!(
            issuer(br#"{"sub":1,"iss":"a\/b","x":"#),
            Ok(Some("a/b".into()))
        );
        assert_eq!(issuer(br#"{"sub":1}"#), Ok(None));
        for bad in [
            &br#"{"iss":5}"#[..],
            br#"{"sub":1"#,
            br#"{"sub":1} x"#,
            b"[]",
        ] {
            assert_eq!(issuer(bad), Err(()), "{}", String::from_utf8_lossy(bad));
        }
    }
}
