//! The probe file (TOML): target, personas, endpoints. Every error is reported at once,
//! with its line, like `gatehouse check` does for the gateway's config.

use std::fmt;
use std::ops::Range;

use http::{HeaderName, HeaderValue, Method, Uri};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The name of the persona that sends no credentials; it always exists.
pub const ANONYMOUS: &str = "anonymous";

/// Where requests go: scheme, host and port, plus an optional base path. The probe
/// talks to nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub https: bool,
    /// `host:port` (port always explicit).
    pub authority: String,
    /// Prefix for every endpoint path, without a trailing `/` (often empty).
    pub base_path: String,
}

impl Target {
    /// Accepts `http://host[:port][/base]` and `https://…`; nothing else (no user info,
    /// query or fragment).
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(format!(
                    "`{url}`: the target must be an http:// or https:// URL"
                ));
            }
        };
        let auth = uri
            .authority()
            .ok_or_else(|| format!("`{url}` has no host"))?;
        if auth.as_str().contains('@') {
            return Err(format!(
                "`{url}`: user info in the target URL is not supported"
            ));
        }
        if uri.query().is_some() {
            return Err(format!("`{url}`: the target URL cannot have a query"));
        }
        let port = auth.port_u16().unwrap_or(if https { 443 } else { 80 });
        Ok(Self {
            https,
            authority: format!("{}:{port}", auth.host()),
            base_path: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    pub fn origin(&self) -> String {
        format!(
            "{}://{}",
            if self.https { "https" } else { "http" },
            self.authority
        )
    }

    /// The absolute URL for an endpoint path; the path was validated to start with one `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}{}", self.origin(), self.base_path, path)
    }
}

/// A named set of request headers. Values are credentials: never shown by `Debug`.
#[derive(Clone)]
pub struct Persona {
    pub name: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// A credential the target must refuse with 401 (expired, revoked, …).
    pub invalid: bool,
}

impl fmt::Debug for Persona {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Persona")
            .field("name", &self.name)
            .field("headers", &names)
            .field("invalid", &self.invalid)
            .finish()
    }
}

impl Persona {
    pub fn authorization(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == http::header::AUTHORIZATION)
            .and_then(|(_, v)| v.to_str().ok())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub method: Method,
    /// Starts with exactly one `/`; path parameters already filled in.
    pub path: String,
    /// Personas that must get through; every other must be refused.
    pub allow: Vec<String>,
    pub public: bool,
    /// Line in the probe file, for reports (SARIF locations).
    pub line: Option<usize>,
}

impl Endpoint {
    pub fn label(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Spec {
    pub target: Option<Target>,
    pub personas: Vec<Persona>,
    pub endpoints: Vec<Endpoint>,
}

/// One problem in a probe file or OpenAPI document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SpecError {
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Every error of a file, in line order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} error(s) in the spec", .0.len())]
pub struct SpecErrors(pub Vec<SpecError>);

/// An endpoint path from a spec: one leading `/`, no scheme or authority (so a spec cannot
/// point the probe at another host), no fragment.
pub fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') || path.starts_with("//") {
        return Err(format!("path `{path}` must start with a single `/`"));
    }
    if path.contains('#') || path.chars().any(|c| c.is_ascii_control() || c == ' ') {
        return Err(format!(
            "path `{path}` has a fragment, a space or a control character"
        ));
    }
    if path.parse::<http::uri::PathAndQuery>().is_err() {
        return Err(format!("path `{path}` is not a valid request target"));
    }
    Ok(())
}

type Span = Range<usize>;

struct Ctx<'s> {
    text: &'s str,
    errors: Vec<SpecError>,
}

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text
            .get(..offset)
            .map_or(1, |s| s.bytes().filter(|&b| b == b'\n').count() + 1)
    }

    fn error(&mut self, span: &Span, message: impl Into<String>) {
        let line = Some(self.line(span.start));
        self.errors.push(SpecError {
            line,
            message: message.into(),
        });
    }

    fn unknown_keys(&mut self, t: &DeTable<'_>, path: &str, known: &[&str]) {
        for (k, _) in t.iter() {
            let name: &str = k.get_ref().as_ref();
            if !known.contains(&name) {
                let expected: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
                self.error(
                    &k.span(),
                    format!(
                        "unknown key `{path}{name}`; expected one of {}",
                        expected.join(", ")
                    ),
                );
            }
        }
    }

    fn string<'a>(&mut self, v: &'a Spanned<DeValue<'_>>, key: &str) -> Option<&'a str> {
        let s = v.get_ref().as_str();
        if s.is_none() {
            self.error(&v.span(), format!("`{key}` must be a string"));
        }
        s
    }

    fn bool(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Option<bool> {
        let b = v.get_ref().as_bool();
        if b.is_none() {
            self.error(&v.span(), format!("`{key}` must be true or false"));
        }
        b
    }
}

/// Parses a probe file.
pub fn parse(text: &str) -> Result<Spec, SpecErrors> {
    let mut ctx = Ctx {
        text,
        errors: Vec::new(),
    };
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in syntax {
            let span = e.span().unwrap_or(0..0);
            ctx.error(&span, format!("invalid toml: {}", e.message().trim()));
        }
        return Err(SpecErrors(ctx.errors));
    }
    let root = doc.get_ref();
    ctx.unknown_keys(root, "", &["target", "personas", "endpoint"]);
    let mut spec = Spec::default();
    if let Some(v) = root.get("target")
        && let Some(s) = ctx.string(v, "target")
    {
        match Target::parse(s) {
            Ok(t) => spec.target = Some(t),
            Err(e) => ctx.error(&v.span(), e),
        }
    }
    if let Some(v) = root.get("personas") {
        match v.get_ref().as_table() {
            Some(t) => {
                // In file order, whatever order the map keeps.
                let mut entries: Vec<_> = t.iter().collect();
                entries.sort_by_key(|(k, _)| k.span().start);
                for (k, p) in entries {
                    if let Some(p) = persona(&mut ctx, k, p) {
                        spec.personas.push(p);
                    }
                }
            }
            None => ctx.error(&v.span(), "`personas` must be a table of `[personas.NAME]`"),
        }
    }
    if let Some(v) = root.get("endpoint") {
        match v.get_ref().as_array() {
            Some(items) => {
                for item in items {
                    if let Some(e) = endpoint(&mut ctx, item, &spec.personas) {
                        spec.endpoints.push(e);
                    }
                }
            }
            None => ctx.error(
                &v.span(),
                "`endpoint` must be an array of `[[endpoint]]` tables",
            ),
        }
    }
    if ctx.errors.is_empty() {
        Ok(spec)
    } else {
        ctx.errors.sort_by_key(|e| e.line);
        Err(SpecErrors(ctx.errors))
    }
}

fn persona(
    ctx: &mut Ctx<'_>,
    key: &Spanned<toml::de::DeString<'_>>,
    v: &Spanned<DeValue<'_>>,
) -> Option<Persona> {
    let name: &str = key.get_ref().as_ref();
    let path = format!("personas.{name}.");
    if name == ANONYMOUS {
        ctx.error(
            &key.span(),
            "`anonymous` is built in (no credentials); choose another name",
        );
        return None;
    }
    let Some(t) = v.get_ref().as_table() else {
        ctx.error(&v.span(), format!("`personas.{name}` must be a table"));
        return None;
    };
    ctx.unknown_keys(t, &path, &["headers", "invalid"]);
    let mut p = Persona {
        name: name.to_owned(),
        headers: Vec::new(),
        invalid: false,
    };
    let mut ok = true;
    match t.get("headers") {
        None => {
            ctx.error(&v.span(), format!("`personas.{name}` needs `headers`"));
            ok = false;
        }
        Some(h) => match h.get_ref().as_table() {
            None => {
                ctx.error(&h.span(), format!("`{path}headers` must be a table"));
                ok = false;
            }
            Some(h) => {
                for (hk, hv) in h.iter() {
                    let hname: &str = hk.get_ref().as_ref();
                    let Some(value) = ctx.string(hv, &format!("{path}headers.{hname}")) else {
                        ok = false;
                        continue;
                    };
                    match (HeaderName::try_from(hname), HeaderValue::try_from(value)) {
                        (Ok(n), Ok(mut val)) => {
                            val.set_sensitive(true);
                            p.headers.push((n, val));
                        }
                        (Err(_), _) => {
                            ctx.error(&hk.span(), format!("`{hname}` is not a header name"));
                            ok = false;
                        }
                        (_, Err(_)) => {
                            ctx.error(
                                &hv.span(),
                                format!("the value of `{hname}` is not a valid header value"),
                            );
                            ok = false;
                        }
                    }
                }
            }
        },
    }
    if let Some(i) = t.get("invalid") {
        p.invalid = ctx.bool(i, &format!("{path}invalid")).unwrap_or(false);
    }
    ok.then_some(p)
}

fn endpoint(ctx: &mut Ctx<'_>, v: &Spanned<DeValue<'_>>, personas: &[Persona]) -> Option<Endpoint> {
    let Some(t) = v.get_ref().as_table() else {
        ctx.error(&v.span(), "each `[[endpoint]]` must be a table");
        return None;
    };
    let line = ctx.line(v.span().start);
    ctx.unknown_keys(t, "endpoint.", &["method", "path", "allow", "public"]);
    let mut method = Method::GET;
    let mut ok = true;
    if let Some(m) = t.get("method")
        && let Some(s) = ctx.string(m, "method")
    {
        match Method::from_bytes(s.to_ascii_uppercase().as_bytes()) {
            Ok(parsed) => method = parsed,
            Err(_) => {
                ctx.error(&m.span(), format!("`{s}` is not an HTTP method"));
                ok = false;
            }
        }
    }
    let path = match t.get("path") {
        None => {
            ctx.error(&v.span(), "`[[endpoint]]` needs `path`");
            None
        }
        Some(p) => ctx.string(p, "path").and_then(|s| match check_path(s) {
            Ok(()) => Some(s.to_owned()),
            Err(e) => {
                ctx.error(&p.span(), e);
                None
            }
        }),
    };
    let public = t
        .get("public")
        .and_then(|p| ctx.bool(p, "public"))
        .unwrap_or(false);
    let mut allow = Vec::new();
    if let Some(a) = t.get("allow") {
        if public {
            ctx.error(
                &a.span(),
                "`allow` has no meaning on a `public` endpoint (everyone gets through)",
            );
            ok = false;
        }
        match a.get_ref().as_array() {
            None => {
                ctx.error(&a.span(), "`allow` must be an array of persona names");
                ok = false;
            }
            Some(items) => {
                for item in items {
                    let Some(name) = ctx.string(item, "allow[]") else {
                        ok = false;
                        continue;
                    };
                    if name == ANONYMOUS {
                        ctx.error(
                            &item.span(),
                            "`anonymous` in `allow`: write `public = true` instead",
                        );
                        ok = false;
                    } else if !personas.iter().any(|p| p.name == name) {
                        ctx.error(&item.span(), format!("unknown persona `{name}` in `allow`"));
                        ok = false;
                    } else if personas.iter().any(|p| p.name == name && p.invalid) {
                        ctx.error(
                            &item.span(),
                            format!("persona `{name}` is `invalid = true`: it cannot be allowed"),
                        );
                        ok = false;
                    } else {
                        allow.push(name.to_owned());
                    }
                }
            }
        }
    }
    Some(Endpoint {
        method,
        path: path?,
        allow,
        public,
        line: Some(line),
    })
    .filter(|_| ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
target = "http://127.0.0.1:8000"
[personas.user]
headers = { Authorization = "Basic YWxpY2U6YWxpY2Vwdw==" }
[personas.expired]
headers = { Authorization = "Bearer x.y.z" }
invalid = true

[[endpoint]]
method = "post"
path = "/api/items"
allow = ["user"]
[[endpoint]]
path = "/health"
public = true
"#;

    #[test]
    fn parses_the_example() {
        let s = parse(GOOD).unwrap();
        assert_eq!(s.target.unwrap().origin(), "http://127.0.0.1:8000");
        assert_eq!(s.personas.len(), 2);
        assert!(s.personas[1].invalid);
        assert_eq!(s.endpoints[0].method, Method::POST);
        assert_eq!(s.endpoints[0].line, Some(9));
        assert!(s.endpoints[1].public);
        assert_eq!(s.endpoints[1].method, Method::GET);
        // Credentials never reach Debug output.
        assert!(!format!("{:?}", s.personas).contains("YWxp"));
    }

    #[test]
    fn every_error_with_its_line() {
        let text = "target = \"ftp://x\"\n[personas.anonymous]\nheaders = {}\n[[endpoint]]\npath = \"//evil.example/x\"\nallow = [\"nobody\"]\nbogus = 1\n";
        let errs = parse(text).unwrap_err().0;
        let lines: Vec<Option<usize>> = errs.iter().map(|e| e.line).collect();
        assert_eq!(
            lines,
            vec![Some(1), Some(2), Some(5), Some(6), Some(7)],
            "{errs:?}"
        );
        assert!(errs[4].message.contains("unknown key `endpoint.bogus`"));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let errs = parse("target = \"http://x\"\n[[endpoint]\n").unwrap_err().0;
        assert_eq!(errs[0].line, Some(2));
    }

    #[test]
    fn targets() {
        let t = Target::parse("https://api.example/v1/").unwrap();
        assert_eq!(t.url("/items"), "https://api.example:443/v1/items");
        assert!(Target::parse("http://u:p@h/").is_err());
        assert!(Target::parse("file:///etc").is_err());
        assert!(check_path("/a?b=1").is_ok());
        assert!(check_path("http://other/").is_err());
    }
}
