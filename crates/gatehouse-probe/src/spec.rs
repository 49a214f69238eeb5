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
    /// The scheme it authenticates with, lowercase: `scheme` from the file, else `digest`
    /// for a Digest persona, else the `Authorization` scheme (`basic`, `bearer`, …), else
    /// `cookie` when it sends only a `Cookie`, else `None` (then it cannot be scoped by `auth`).
    pub scheme: Option<String>,
    /// RFC 7616 credentials: each request is answered to the target's Digest challenge.
    pub digest: Option<DigestCreds>,
    /// A sign-in request whose answer provides the credential (run before the probe).
    pub login: Option<Login>,
}

impl fmt::Debug for Persona {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Persona")
            .field("name", &self.name)
            .field("headers", &names)
            .field("invalid", &self.invalid)
            .field("scheme", &self.scheme)
            .field("digest", &self.digest)
            .field("login", &self.login)
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

    /// The scheme implied by the credentials alone (see [`Persona::scheme`]).
    fn inferred_scheme(&self) -> Option<String> {
        if self.digest.is_some() {
            return Some("digest".to_owned());
        }
        if let Some(l) = &self.login {
            return Some(match &l.take {
                Take::Cookie(_) => "cookie".to_owned(),
                Take::Token { prefix, .. } => prefix.trim().to_ascii_lowercase(),
            })
            .filter(|s| !s.is_empty());
        }
        if let Some(a) = self.authorization() {
            return a
                .split(' ')
                .next()
                .filter(|s| !s.is_empty())
                .map(str::to_ascii_lowercase);
        }
        if self.headers.iter().any(|(n, _)| n == http::header::COOKIE) {
            return Some("cookie".to_owned());
        }
        None
    }
}

/// A Digest persona's user and password (RFC 7616). The password is never shown.
#[derive(Clone)]
pub struct DigestCreds {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for DigestCreds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestCreds")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `[personas.NAME.login]`: one request to the target that yields the credential.
#[derive(Clone)]
pub struct Login {
    pub method: Method,
    pub path: String,
    pub body: LoginBody,
    pub take: Take,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("take", &self.take)
            .finish_non_exhaustive()
    }
}

/// The sign-in request's body; values may hold secrets (never shown).
#[derive(Clone)]
pub enum LoginBody {
    None,
    /// `application/x-www-form-urlencoded`.
    Form(Vec<(String, String)>),
    /// `application/json`: an object of string / boolean members.
    Json(serde_json::Map<String, serde_json::Value>),
}

/// Where the credential comes from in the sign-in answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Take {
    /// A string at a JSON pointer (RFC 6901) of the body, sent as `header: prefix + token`.
    Token {
        pointer: String,
        header: HeaderName,
        prefix: String,
    },
    /// A cookie set by `Set-Cookie`, sent back as `Cookie: name=value`.
    Cookie(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub method: Method,
    /// Starts with exactly one `/`; path parameters already filled in.
    pub path: String,
    /// Personas that must get through; every other must be refused.
    pub allow: Vec<String>,
    /// The personas sent to this endpoint (its scope: `personas`, or those whose scheme is
    /// in `auth`, or every persona). Personas outside it are not sent at all.
    pub personas: Vec<String>,
    pub public: bool,
    /// The path names a resource that does not exist, on purpose (so that a persona in
    /// `allow` changes nothing): a 404 or 410 for it, where others were refused at this
    /// path, is the expected answer rather than a `resource-not-found` note.
    pub absent: bool,
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
        && let Some(s) = ctx.env_string(v, "target")
    {
        match Target::parse(&s) {
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

/// Replaces every `${NAME}` with the environment variable `NAME`, so secrets stay out of
/// the probe file. `$${` is a literal `${`. An unset variable is an error.
pub fn expand_env(s: &str) -> Result<String, String> {
    expand_with(s, |k| std::env::var(k).ok())
}

fn expand_with(s: &str, get: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(lit) = after.strip_prefix("${") {
            out.push_str("${");
            rest = lit;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in `{s}`"))?;
            let name = &body[..end];
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!("`${{{name}}}` is not an environment variable name"));
            }
            let v =
                get(name).ok_or_else(|| format!("the environment variable `{name}` is not set"))?;
            out.push_str(&v);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

impl Ctx<'_> {
    /// A string value with `${ENV}` expanded.
    fn env_string(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Option<String> {
        let s = self.string(v, key)?;
        match expand_env(s) {
            Ok(x) => Some(x),
            Err(e) => {
                self.error(&v.span(), format!("`{key}`: {e}"));
                None
            }
        }
    }

    /// A table of string (or boolean) values, `${ENV}` expanded, in file order.
    fn string_table(
        &mut self,
        v: &Spanned<DeValue<'_>>,
        key: &str,
    ) -> Option<Vec<(String, serde_json::Value)>> {
        let Some(t) = v.get_ref().as_table() else {
            self.error(&v.span(), format!("`{key}` must be a table"));
            return None;
        };
        let mut entries: Vec<_> = t.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        let mut out = Vec::new();
        let mut ok = true;
        for (k, val) in entries {
            let name: &str = k.get_ref().as_ref();
            if let Some(b) = val.get_ref().as_bool() {
                out.push((name.to_owned(), serde_json::Value::Bool(b)));
            } else if let Some(x) = self.env_string(val, &format!("{key}.{name}")) {
                out.push((name.to_owned(), serde_json::Value::String(x)));
            } else {
                ok = false;
            }
        }
        ok.then_some(out)
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
    ctx.unknown_keys(
        t,
        &path,
        &["headers", "invalid", "scheme", "digest", "login"],
    );
    let mut p = Persona {
        name: name.to_owned(),
        headers: Vec::new(),
        invalid: false,
        scheme: None,
        digest: None,
        login: None,
    };
    let mut ok = true;
    if let Some(h) = t.get("headers") {
        match h.get_ref().as_table() {
            None => {
                ctx.error(&h.span(), format!("`{path}headers` must be a table"));
                ok = false;
            }
            Some(h) => {
                for (hk, hv) in h.iter() {
                    let hname: &str = hk.get_ref().as_ref();
                    let Some(value) = ctx.env_string(hv, &format!("{path}headers.{hname}")) else {
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
        }
    }
    if let Some(d) = t.get("digest") {
        match d.get_ref().as_table() {
            None => {
                ctx.error(
                    &d.span(),
                    format!(
                        "`{path}digest` must be a table `{{ user = \"…\", password = \"…\" }}`"
                    ),
                );
                ok = false;
            }
            Some(dt) => {
                ctx.unknown_keys(dt, &format!("{path}digest."), &["user", "password"]);
                let user = dt
                    .get("user")
                    .and_then(|u| ctx.env_string(u, &format!("{path}digest.user")));
                let password = dt
                    .get("password")
                    .and_then(|u| ctx.env_string(u, &format!("{path}digest.password")));
                match (user, password) {
                    (Some(user), Some(password)) => p.digest = Some(DigestCreds { user, password }),
                    _ => {
                        ctx.error(
                            &d.span(),
                            format!("`{path}digest` needs `user` and `password` strings"),
                        );
                        ok = false;
                    }
                }
            }
        }
    }
    if let Some(l) = t.get("login") {
        match login(ctx, l, &format!("{path}login")) {
            Some(x) => p.login = Some(x),
            None => ok = false,
        }
    }
    if let Some(i) = t.get("invalid") {
        p.invalid = ctx.bool(i, &format!("{path}invalid")).unwrap_or(false);
    }
    let sources = usize::from(!p.headers.is_empty() || t.get("headers").is_some())
        + usize::from(p.digest.is_some())
        + usize::from(p.login.is_some());
    if ok && p.digest.is_some() && p.login.is_some() {
        ctx.error(
            &v.span(),
            format!("`personas.{name}`: `digest` and `login` exclude each other"),
        );
        ok = false;
    }
    if ok && sources == 0 {
        ctx.error(
            &v.span(),
            format!("`personas.{name}` needs `headers`, `digest` or `login`"),
        );
        ok = false;
    }
    if ok && p.digest.is_some() && p.authorization().is_some() {
        ctx.error(
            &v.span(),
            format!("`personas.{name}`: a Digest persona cannot also send `Authorization`"),
        );
        ok = false;
    }
    p.scheme = match t.get("scheme") {
        Some(sv) => ctx
            .string(sv, &format!("{path}scheme"))
            .map(str::to_ascii_lowercase),
        None => p.inferred_scheme(),
    };
    ok.then_some(p)
}

/// `[personas.NAME.login]`: `method` (POST), `path`, `form` or `json`, and `token` (a JSON
/// pointer, with `header` and `prefix`) or `cookie` (a cookie name).
fn login(ctx: &mut Ctx<'_>, v: &Spanned<DeValue<'_>>, key: &str) -> Option<Login> {
    let Some(t) = v.get_ref().as_table() else {
        ctx.error(&v.span(), format!("`{key}` must be a table"));
        return None;
    };
    ctx.unknown_keys(
        t,
        &format!("{key}."),
        &[
            "method", "path", "form", "json", "token", "header", "prefix", "cookie",
        ],
    );
    let mut ok = true;
    let mut method = Method::POST;
    if let Some(m) = t.get("method")
        && let Some(s) = ctx.string(m, &format!("{key}.method"))
    {
        match Method::from_bytes(s.to_ascii_uppercase().as_bytes()) {
            Ok(x) => method = x,
            Err(_) => {
                ctx.error(&m.span(), format!("`{s}` is not an HTTP method"));
                ok = false;
            }
        }
    }
    let path = match t.get("path") {
        None => {
            ctx.error(&v.span(), format!("`{key}` needs `path`"));
            None
        }
        Some(pv) => ctx
            .env_string(pv, &format!("{key}.path"))
            .and_then(|s| match check_path(&s) {
                Ok(()) => Some(s),
                Err(e) => {
                    ctx.error(&pv.span(), e);
                    None
                }
            }),
    };
    let body = match (t.get("form"), t.get("json")) {
        (Some(_), Some(j)) => {
            ctx.error(
                &j.span(),
                format!("`{key}`: `form` and `json` exclude each other"),
            );
            ok = false;
            LoginBody::None
        }
        (Some(f), None) => match ctx.string_table(f, &format!("{key}.form")) {
            Some(items) => LoginBody::Form(
                items
                    .into_iter()
                    .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                    .collect(),
            ),
            None => {
                ok = false;
                LoginBody::None
            }
        },
        (None, Some(j)) => match ctx.string_table(j, &format!("{key}.json")) {
            Some(items) => LoginBody::Json(items.into_iter().collect()),
            None => {
                ok = false;
                LoginBody::None
            }
        },
        (None, None) => LoginBody::None,
    };
    let take = match (t.get("token"), t.get("cookie")) {
        (Some(tok), None) => {
            let pointer = ctx.string(tok, &format!("{key}.token")).map(str::to_owned);
            let header = t
                .get("header")
                .and_then(|h| ctx.string(h, &format!("{key}.header")))
                .unwrap_or("Authorization");
            let header = match HeaderName::try_from(header) {
                Ok(h) => Some(h),
                Err(_) => {
                    ctx.error(&tok.span(), format!("`{header}` is not a header name"));
                    None
                }
            };
            let prefix = t
                .get("prefix")
                .and_then(|h| ctx.string(h, &format!("{key}.prefix")))
                .map_or_else(
                    || {
                        if header.as_ref() == Some(&http::header::AUTHORIZATION) {
                            "Bearer ".to_owned()
                        } else {
                            String::new()
                        }
                    },
                    str::to_owned,
                );
            match (pointer, header) {
                (Some(p), Some(header)) if p.is_empty() || p.starts_with('/') => {
                    Some(Take::Token {
                        pointer: p,
                        header,
                        prefix,
                    })
                }
                (Some(p), Some(_)) => {
                    ctx.error(
                        &tok.span(),
                        format!(
                            "`{key}.token`: `{p}` is not a JSON pointer (e.g. `/access_token`)"
                        ),
                    );
                    None
                }
                _ => None,
            }
        }
        (None, Some(c)) => ctx
            .string(c, &format!("{key}.cookie"))
            .map(|c| Take::Cookie(c.to_owned())),
        (Some(_), Some(c)) => {
            ctx.error(
                &c.span(),
                format!("`{key}`: `token` and `cookie` exclude each other"),
            );
            None
        }
        (None, None) => {
            ctx.error(
                &v.span(),
                format!("`{key}` needs `token` (a JSON pointer) or `cookie` (a cookie name)"),
            );
            None
        }
    };
    match (path, take) {
        (Some(path), Some(take)) if ok => Some(Login {
            method,
            path,
            body,
            take,
        }),
        _ => None,
    }
}

fn endpoint(ctx: &mut Ctx<'_>, v: &Spanned<DeValue<'_>>, personas: &[Persona]) -> Option<Endpoint> {
    let Some(t) = v.get_ref().as_table() else {
        ctx.error(&v.span(), "each `[[endpoint]]` must be a table");
        return None;
    };
    let line = ctx.line(v.span().start);
    ctx.unknown_keys(
        t,
        "endpoint.",
        &[
            "method", "path", "allow", "public", "personas", "auth", "absent",
        ],
    );
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
        Some(p) => ctx
            .env_string(p, "path")
            .and_then(|s| match check_path(&s) {
                Ok(()) => Some(s),
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
    let absent = t
        .get("absent")
        .and_then(|a| ctx.bool(a, "absent"))
        .unwrap_or(false);
    if absent
        && public
        && let Some(a) = t.get("absent")
    {
        ctx.error(
            &a.span(),
            "`absent` has no meaning on a `public` endpoint (nobody is refused there)",
        );
        ok = false;
    }
    // The scope: which personas are sent here at all.
    let mut scope: Vec<String> = personas.iter().map(|p| p.name.clone()).collect();
    if let Some(list) = t.get("personas") {
        match names(ctx, list, "personas") {
            Some(items) => {
                scope.clear();
                for (name, span) in items {
                    if personas.iter().any(|p| p.name == name) {
                        scope.push(name);
                    } else {
                        ctx.error(&span, format!("unknown persona `{name}` in `personas`"));
                        ok = false;
                    }
                }
            }
            None => ok = false,
        }
        if t.get("auth").is_some() {
            ctx.error(
                &list.span(),
                "`personas` and `auth` exclude each other: pick one",
            );
            ok = false;
        }
    } else if let Some(list) = t.get("auth") {
        match names(ctx, list, "auth") {
            Some(items) => {
                let schemes: Vec<String> = items
                    .into_iter()
                    .map(|(n, _)| n.to_ascii_lowercase())
                    .collect();
                for p in personas.iter().filter(|p| p.scheme.is_none()) {
                    ctx.error(
                        &list.span(),
                        format!(
                            "persona `{}` has no scheme to match `auth` against: give it `scheme = \"…\"`",
                            p.name
                        ),
                    );
                    ok = false;
                }
                scope = personas
                    .iter()
                    .filter(|p| p.scheme.as_ref().is_some_and(|s| schemes.contains(s)))
                    .map(|p| p.name.clone())
                    .collect();
            }
            None => ok = false,
        }
    }
    let mut allow = Vec::new();
    match t.get("allow") {
        Some(a) if public => {
            ctx.error(
                &a.span(),
                "`allow` has no meaning on a `public` endpoint (everyone gets through)",
            );
            ok = false;
        }
        Some(a) => match names(ctx, a, "allow") {
            None => ok = false,
            Some(items) => {
                for (name, span) in items {
                    if name == ANONYMOUS {
                        ctx.error(
                            &span,
                            "`anonymous` in `allow`: write `public = true` instead",
                        );
                        ok = false;
                    } else if !personas.iter().any(|p| p.name == name) {
                        ctx.error(&span, format!("unknown persona `{name}` in `allow`"));
                        ok = false;
                    } else if personas.iter().any(|p| p.name == name && p.invalid) {
                        ctx.error(
                            &span,
                            format!("persona `{name}` is `invalid = true`: it cannot be allowed"),
                        );
                        ok = false;
                    } else if !scope.contains(&name) {
                        ctx.error(
                            &span,
                            format!("persona `{name}` is allowed but not sent here (outside `personas` / `auth`)"),
                        );
                        ok = false;
                    } else {
                        allow.push(name);
                    }
                }
            }
        },
        // Saying nothing must not mean "nobody": a forgotten `allow` would turn every
        // persona into a bypass finding on a correct server.
        None if !public => {
            ctx.error(
                &v.span(),
                "`[[endpoint]]` needs `allow = [...]` (write `allow = []` if no persona may pass) or `public = true`",
            );
            ok = false;
        }
        None => {}
    }
    Some(Endpoint {
        method,
        path: path?,
        allow,
        personas: scope,
        public,
        absent,
        line: Some(line),
    })
    .filter(|_| ok)
}

/// An array of strings, each with its span.
fn names(ctx: &mut Ctx<'_>, v: &Spanned<DeValue<'_>>, key: &str) -> Option<Vec<(String, Span)>> {
    let Some(items) = v.get_ref().as_array() else {
        ctx.error(&v.span(), format!("`{key}` must be an array of names"));
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for item in items {
        match ctx.string(item, &format!("{key}[]")) {
            Some(n) => out.push((n.to_owned(), item.span())),
            None => ok = false,
        }
    }
    ok.then_some(out)
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
