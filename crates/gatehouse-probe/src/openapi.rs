//! Endpoints from an OpenAPI 3 document, JSON or YAML.
//!
//! Security requirements (OpenAPI 3.x "Security Requirement Object") decide which
//! operations need credentials: the operation's `security` overrides the document's; an
//! empty list, or a list holding an empty requirement `{}`, makes the operation public.
//!
//! They also decide which personas are sent to an operation (its scope): a persona is sent
//! when its `scheme` matches a security scheme named in any of the operation's requirements
//! — by the scheme's name in `components.securitySchemes` (`scheme = "bearerAuth"`) or by
//! its kind: `http` schemes by their `scheme` (`basic`, `bearer`, `digest`), `oauth2` and
//! `openIdConnect` as `bearer`, `apiKey` as `apikey` (`cookie` when `in: cookie`). A name
//! not defined under `securitySchemes` is its own kind. Personas without a scheme are sent
//! everywhere. A protected operation allows every valid persona in its scope unless it
//! names them in the extension `x-probe-allow: ["admin"]`. An operation marked
//! `x-probe-absent: true` names, on purpose, a resource that does not exist (so that an
//! allowed persona changes nothing): a 404 or 410 for an allowed persona there is expected
//! where others were refused (see [`Endpoint::absent`]).
//!
//! Path parameters take the parameter's `example`, the first of `examples`,
//! `schema.example`, `schema.default` or `schema.enum[0]`, else `1`.

use http::Method;
use serde_json::Value;

use crate::spec::{Endpoint, Persona, SpecError, SpecErrors, check_path};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Parses an OpenAPI document: JSON when it starts with `{`, else YAML (1.2, through a
/// maintained panic-free parser).
pub fn parse_document(text: &str) -> Result<Value, SpecErrors> {
    let one = |line: Option<usize>, message: String| SpecErrors(vec![SpecError { line, message }]);
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text)
            .map_err(|e| one(Some(e.line()), format!("invalid OpenAPI JSON: {e}")))
    } else {
        serde_saphyr::from_str::<Value>(text).map_err(|e| {
            let msg = e.to_string();
            let line = msg
                .split("line ")
                .nth(1)
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok());
            one(
                line,
                format!("invalid OpenAPI YAML: {}", msg.lines().next().unwrap_or("")),
            )
        })
    }
}

/// The kind a security scheme stands for (see the module documentation).
fn scheme_kind(name: &str, doc: &Value) -> String {
    let Some(def) = doc.pointer(&format!(
        "/components/securitySchemes/{}",
        name.replace('~', "~0").replace('/', "~1")
    )) else {
        return name.to_ascii_lowercase();
    };
    let def = resolve(def, doc);
    match def.get("type").and_then(Value::as_str) {
        Some("http") => def
            .get("scheme")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase(),
        Some("oauth2" | "openIdConnect") => "bearer".to_owned(),
        Some("apiKey") if def.get("in").and_then(Value::as_str) == Some("cookie") => {
            "cookie".to_owned()
        }
        Some("apiKey") => "apikey".to_owned(),
        Some(other) => other.to_ascii_lowercase(),
        None => name.to_ascii_lowercase(),
    }
}

/// Whether `p` is sent to an operation whose requirements name `schemes`.
fn in_scope(p: &Persona, schemes: &[(String, String)]) -> bool {
    match &p.scheme {
        None => true,
        Some(s) => schemes
            .iter()
            .any(|(name, kind)| name.eq_ignore_ascii_case(s) || kind == s),
    }
}

/// Reads the endpoints of an OpenAPI 3 document (JSON or YAML).
pub fn endpoints(text: &str, personas: &[Persona]) -> Result<Vec<Endpoint>, SpecErrors> {
    let doc = parse_document(text)?;
    let mut errors = Vec::new();
    let err = |errors: &mut Vec<SpecError>, message: String| {
        errors.push(SpecError {
            line: None,
            message,
        });
    };
    match doc.get("openapi").and_then(Value::as_str) {
        Some(v) if v.starts_with("3.") => {}
        _ => err(
            &mut errors,
            "not an OpenAPI 3 document (`openapi: \"3.x\"` missing)".to_owned(),
        ),
    }
    let global = doc.get("security");
    let mut out = Vec::new();
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        err(&mut errors, "the document has no `paths` object".to_owned());
        return Err(SpecErrors(errors));
    };
    for (template, item) in paths {
        let shared = item.get("parameters");
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            let at = format!("`{} {template}`", m.to_ascii_uppercase());
            let path = match fill_path(template, shared, op.get("parameters"), &doc) {
                Ok(p) => p,
                Err(e) => {
                    err(&mut errors, format!("{at}: {e}"));
                    continue;
                }
            };
            if let Err(e) = check_path(&path) {
                err(&mut errors, format!("{at}: {e}"));
                continue;
            }
            let security = op.get("security").or(global);
            let public = match security.and_then(Value::as_array) {
                None => true,
                Some(reqs) => {
                    reqs.is_empty()
                        || reqs
                            .iter()
                            .any(|r| r.as_object().is_some_and(serde_json::Map::is_empty))
                }
            };
            let schemes: Vec<(String, String)> = security
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .flat_map(|r| r.keys())
                .map(|name| (name.clone(), scheme_kind(name, &doc)))
                .collect();
            let scope: Vec<&Persona> = personas
                .iter()
                .filter(|p| public || in_scope(p, &schemes))
                .collect();
            let allow = if public {
                Vec::new()
            } else if let Some(names) = op.get("x-probe-allow").and_then(Value::as_array) {
                let mut v = Vec::new();
                for n in names {
                    let name = n.as_str().unwrap_or_default();
                    if scope.iter().any(|p| p.name == name && !p.invalid) {
                        v.push(name.to_owned());
                    } else {
                        err(
                            &mut errors,
                            format!(
                                "{at}: unknown or invalid persona `{name}` in `x-probe-allow`, or its scheme is not one of the operation's"
                            ),
                        );
                    }
                }
                v
            } else {
                scope
                    .iter()
                    .filter(|p| !p.invalid)
                    .map(|p| p.name.clone())
                    .collect()
            };
            out.push(Endpoint {
                method: Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .unwrap_or(Method::GET),
                path,
                allow,
                personas: scope.iter().map(|p| p.name.clone()).collect(),
                public,
                absent: !public && op.get("x-probe-absent").and_then(Value::as_bool) == Some(true),
                line: None,
            });
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(SpecErrors(errors))
    }
}

/// Resolves a local `$ref` (`#/components/parameters/x`).
fn resolve<'a>(v: &'a Value, doc: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) if r.starts_with("#/") => doc.pointer(&r[1..]).unwrap_or(v),
        _ => v,
    }
}

fn example(p: &Value) -> Option<String> {
    let schema = p.get("schema");
    let v = p
        .get("example")
        .or_else(|| {
            p.get("examples")
                .and_then(Value::as_object)
                .and_then(|m| m.values().next())
                .and_then(|e| e.get("value"))
        })
        .or_else(|| schema.and_then(|s| s.get("example")))
        .or_else(|| schema.and_then(|s| s.get("default")))
        .or_else(|| schema.and_then(|s| s.get("enum")).and_then(|e| e.get(0)))?;
    Some(match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// Percent-encodes everything but unreserved characters (RFC 3986 §2.3) for one segment.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn fill_path(
    template: &str,
    shared: Option<&Value>,
    own: Option<&Value>,
    doc: &Value,
) -> Result<String, String> {
    let params: Vec<&Value> = [own, shared]
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .map(|p| resolve(p, doc))
        .filter(|p| p.get("in").and_then(Value::as_str) == Some("path"))
        .collect();
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .ok_or_else(|| format!("unclosed `{{` in `{template}`"))?;
        out.push_str(&rest[..open]);
        let name = &rest[open + 1..close];
        // Operation-level parameters come first, so they override path-item ones.
        let value = params
            .iter()
            .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
            .and_then(|p| example(p))
            .unwrap_or_else(|| "1".to_owned());
        out.push_str(&encode_segment(&value));
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn persona(name: &str, invalid: bool) -> Persona {
        Persona {
            name: name.to_owned(),
            headers: Vec::new(),
            invalid,
            scheme: None,
            digest: None,
            login: None,
        }
    }

    #[test]
    fn security_and_parameters() {
        let doc = r##"{
          "openapi": "3.0.3",
          "security": [{"bearer": []}],
          "components": {"parameters": {"Id": {"name": "id", "in": "path", "schema": {"type": "integer", "default": 7}}}},
          "paths": {
            "/health": {"get": {"security": []}},
            "/items/{id}": {
              "parameters": [{"$ref": "#/components/parameters/Id"}],
              "get": {},
              "delete": {"x-probe-allow": ["admin"], "x-probe-absent": true}
            },
            "/users/{name}/posts/{post}": {"get": {"parameters": [
              {"name": "name", "in": "path", "example": "a b"},
              {"name": "post", "in": "path", "examples": {"one": {"value": "p1"}}}
            ]}},
            "/opt": {"get": {"security": [{}, {"bearer": []}]}},
            "/bare/{x}": {"post": {}}
          }
        }"##;
        let ps = [
            persona("user", false),
            persona("admin", false),
            persona("expired", true),
        ];
        let eps = endpoints(doc, &ps).unwrap();
        let labels: Vec<String> = eps
            .iter()
            .map(|e| {
                let absent = if e.absent { " absent" } else { "" };
                format!("{} {} {} {:?}{absent}", e.method, e.path, e.public, e.allow)
            })
            .collect();
        assert_eq!(
            labels,
            vec![
                "GET /health true []",
                "GET /items/7 false [\"user\", \"admin\"]",
                "DELETE /items/7 false [\"admin\"] absent",
                "GET /users/a%20b/posts/p1 false [\"user\", \"admin\"]",
                "GET /opt true []",
                "POST /bare/1 false [\"user\", \"admin\"]",
            ]
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            endpoints("{\n\"openapi\": ", &[]).unwrap_err().0[0].line,
            Some(2)
        );
        assert!(endpoints(r#"{"openapi":"2.0","paths":{}}"#, &[]).is_err());
        let bad = r#"{"openapi":"3.1.0","security":[{"b":[]}],"paths":{"/a":{"get":{"x-probe-allow":["ghost"]}}}}"#;
        assert!(
            endpoints(bad, &[]).unwrap_err().0[0]
                .message
                .contains("ghost")
        );
    }
}
