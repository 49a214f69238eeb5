//! Stub files of `gatehouse mock`: the simple form client teams already write and a subset
//! of WireMock's JSON mappings, compiled into a list ordered by priority then file order.
//!
//! Every stub is parsed from its own slice of the file, so an error names the line where
//! the problem is (the stub's first line for checks made after parsing).

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::scan::{Span, element_spans, line_of};

/// WireMock's default priority (lower wins); also used for simple stubs without one.
pub const DEFAULT_PRIORITY: i64 = 5;

/// An error in a stub file, with the 1-based line it is on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct StubError {
    pub line: usize,
    pub message: String,
}

/// How a stub matches the request target.
#[derive(Debug, Clone)]
pub enum UrlMatch {
    Any,
    /// Path and query, exactly (WireMock `url`; a simple `url` with a `?`).
    Exact(String),
    /// The path alone, whatever the query (WireMock `urlPath`; a simple `url` without `?`).
    Path(String),
    /// A regular expression over the whole path and query (WireMock `urlPattern`).
    Pattern(regex_lite::Regex),
    /// A regular expression over the whole path (WireMock `urlPathPattern`).
    PathPattern(regex_lite::Regex),
}

/// A header condition (WireMock `equalTo` / `contains` / `matches` / `absent`).
#[derive(Debug, Clone)]
pub enum HeaderTest {
    EqualTo {
        value: String,
        case_insensitive: bool,
    },
    Contains(String),
    Matches(regex_lite::Regex),
    Absent,
}

/// One compiled stub.
#[derive(Debug, Clone)]
pub struct Stub {
    /// `name` (or `id`) from the file, else `stub N` (1-based position in the file).
    pub name: String,
    /// Line of the stub's opening `{`.
    pub line: usize,
    pub priority: i64,
    /// `None`: any method.
    pub method: Option<Method>,
    pub url: UrlMatch,
    pub headers: Vec<(HeaderName, HeaderTest)>,
    pub status: StatusCode,
    pub response_headers: HeaderMap,
    pub body: String,
}

impl Stub {
    /// Whether this stub answers `method` on `target` (path and optional query).
    pub fn matches(&self, method: &Method, target: &str, headers: &HeaderMap) -> bool {
        if self.method.as_ref().is_some_and(|m| m != method) {
            return false;
        }
        let path = target.split_once('?').map_or(target, |(p, _)| p);
        let url_ok = match &self.url {
            UrlMatch::Any => true,
            UrlMatch::Exact(u) => u == target,
            UrlMatch::Path(p) => p == path,
            UrlMatch::Pattern(r) => full_match(r, target),
            UrlMatch::PathPattern(r) => full_match(r, path),
        };
        url_ok
            && self.headers.iter().all(|(name, test)| {
                // Repeated headers are tested as one value joined by ", " (RFC 9110 §5.3).
                let values: Vec<&str> = headers
                    .get_all(name)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                let joined = values.join(", ");
                match test {
                    HeaderTest::Absent => values.is_empty(),
                    _ if values.is_empty() => false,
                    HeaderTest::EqualTo {
                        value,
                        case_insensitive: true,
                    } => joined.eq_ignore_ascii_case(value),
                    HeaderTest::EqualTo { value, .. } => &joined == value,
                    HeaderTest::Contains(s) => joined.contains(s.as_str()),
                    HeaderTest::Matches(r) => full_match(r, &joined),
                }
            })
    }
}

/// Patterns are compiled anchored (see [`Builder::regex`]): WireMock's patterns must match
/// the whole value, not a part of it.
fn full_match(r: &regex_lite::Regex, s: &str) -> bool {
    r.is_match(s)
}

/// Parses a stub file: one stub object, an array of them, or `{"mappings": [...]}`.
/// Every error is collected; the stubs come back ordered by priority, then file order.
pub fn parse(text: &str) -> Result<Vec<Stub>, Vec<StubError>> {
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        return Err(vec![StubError {
            line: e.line().max(1),
            message: format!("not valid JSON: {}", strip_position(&e)),
        }]);
    }
    let spans = element_spans(text).map_err(|message| {
        vec![StubError {
            line: 1,
            message: message.to_owned(),
        }]
    })?;
    let mut stubs = Vec::with_capacity(spans.len());
    let mut errors = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        match stub(text, *span, i + 1) {
            Ok(s) => stubs.push(s),
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // A stable sort keeps file order among equal priorities.
    stubs.sort_by_key(|s| s.priority);
    Ok(stubs)
}

/// serde_json's message without its " at line L column C" suffix (we report our own line).
fn strip_position(e: &serde_json::Error) -> String {
    let m = e.to_string();
    match m.rfind(" at line ") {
        Some(i) => m[..i].to_owned(),
        None => m,
    }
}

fn stub(text: &str, span: Span, n: usize) -> Result<Stub, Vec<StubError>> {
    let slice = &text[span.start..span.end];
    let line = line_of(text, span.start);
    let at = |e: serde_json::Error| {
        vec![StubError {
            line: line + e.line().saturating_sub(1),
            message: format!("stub {n}: {}", strip_position(&e)),
        }]
    };
    let value: Value = serde_json::from_str(slice).map_err(at)?;
    let Value::Object(obj) = &value else {
        return Err(vec![StubError {
            line,
            message: format!("stub {n}: expected a JSON object"),
        }]);
    };
    let mut b = Builder {
        line,
        n,
        errors: Vec::new(),
    };
    let wiremock = obj.contains_key("request") || obj.contains_key("response");
    let stub = if wiremock {
        b.mapping(typed(slice, line, n)?)
    } else {
        b.simple(typed(slice, line, n)?)
    };
    match stub {
        Some(s) if b.errors.is_empty() => Ok(s),
        _ => Err(b.errors),
    }
}

/// Deserializes one stub's slice; a value of the wrong type is reported with the field's
/// path (`status`, `response.status`) and the line the value is on.
fn typed<T: serde::de::DeserializeOwned>(
    slice: &str,
    line: usize,
    n: usize,
) -> Result<T, Vec<StubError>> {
    let mut de = serde_json::Deserializer::from_str(slice);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = if path == "." || path.is_empty() {
            String::new()
        } else {
            format!("`{path}`: ")
        };
        vec![StubError {
            line: line + inner.line().saturating_sub(1),
            message: format!("stub {n}: {field}{}", strip_position(&inner)),
        }]
    })
}

/// `{"method", "url", "status", "headers", "body"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Simple {
    name: Option<String>,
    method: Option<String>,
    url: Option<String>,
    status: Option<u16>,
    headers: Option<Map<String, Value>>,
    body: Option<Value>,
    priority: Option<i64>,
}

/// A WireMock mapping (the subset documented in the README).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Mapping {
    request: WmRequest,
    response: WmResponse,
    priority: Option<i64>,
    // Bookkeeping members WireMock exports; accepted and (but for the name) ignored.
    id: Option<String>,
    uuid: Option<String>,
    name: Option<String>,
    #[serde(rename = "persistent")]
    _persistent: Option<bool>,
    #[serde(rename = "metadata")]
    _metadata: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WmRequest {
    method: Option<String>,
    url: Option<String>,
    url_path: Option<String>,
    url_pattern: Option<String>,
    url_path_pattern: Option<String>,
    headers: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WmHeader {
    equal_to: Option<String>,
    contains: Option<String>,
    matches: Option<String>,
    absent: Option<bool>,
    case_insensitive: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WmResponse {
    status: Option<u16>,
    headers: Option<Map<String, Value>>,
    json_body: Option<Value>,
    body: Option<String>,
}

/// Checks made after parsing; errors carry the stub's first line.
struct Builder {
    line: usize,
    n: usize,
    errors: Vec<StubError>,
}

impl Builder {
    fn err(&mut self, message: String) {
        self.errors.push(StubError {
            line: self.line,
            message: format!("stub {}: {message}", self.n),
        });
    }

    fn simple(&mut self, s: Simple) -> Option<Stub> {
        let method = self.method(s.method.as_deref());
        let url = match s.url {
            Some(u) if u.contains('?') => UrlMatch::Exact(u),
            Some(u) => UrlMatch::Path(u),
            None => UrlMatch::Any,
        };
        let mut response_headers = self.response_headers(s.headers.as_ref());
        let body = match s.body {
            None => String::new(),
            Some(Value::String(t)) => t,
            Some(v) => {
                default_json(&mut response_headers);
                v.to_string()
            }
        };
        Some(Stub {
            name: s.name.unwrap_or_else(|| format!("stub {}", self.n)),
            line: self.line,
            priority: s.priority.unwrap_or(DEFAULT_PRIORITY),
            method: method?,
            url,
            headers: Vec::new(),
            status: self.status(s.status)?,
            response_headers,
            body,
        })
    }

    fn mapping(&mut self, m: Mapping) -> Option<Stub> {
        let r = m.request;
        let method = self.method(r.method.as_deref());
        let given = [
            r.url.is_some(),
            r.url_path.is_some(),
            r.url_pattern.is_some(),
            r.url_path_pattern.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            self.err(
                "`request` takes one of `url`, `urlPath`, `urlPattern`, `urlPathPattern`".into(),
            );
        }
        let url = if let Some(u) = r.url {
            UrlMatch::Exact(u)
        } else if let Some(p) = r.url_path {
            UrlMatch::Path(p)
        } else if let Some(p) = r.url_pattern {
            UrlMatch::Pattern(self.regex("urlPattern", &p)?)
        } else if let Some(p) = r.url_path_pattern {
            UrlMatch::PathPattern(self.regex("urlPathPattern", &p)?)
        } else {
            UrlMatch::Any
        };
        let mut headers = Vec::new();
        for (name, v) in r.headers.iter().flatten() {
            let Ok(hn) = HeaderName::from_bytes(name.as_bytes()) else {
                self.err(format!("`{name}` is not a header name"));
                continue;
            };
            let h: WmHeader = match serde_json::from_value(v.clone()) {
                Ok(h) => h,
                Err(e) => {
                    self.err(format!("header `{name}`: {}", strip_position(&e)));
                    continue;
                }
            };
            let test = match (h.equal_to, h.contains, h.matches, h.absent) {
                (Some(value), None, None, None) => HeaderTest::EqualTo {
                    value,
                    case_insensitive: h.case_insensitive.unwrap_or(false),
                },
                (None, Some(s), None, None) => HeaderTest::Contains(s),
                (None, None, Some(p), None) => HeaderTest::Matches(self.regex(name, &p)?),
                (None, None, None, Some(true)) => HeaderTest::Absent,
                _ => {
                    self.err(format!(
                        "header `{name}` needs exactly one of `equalTo`, `contains`, `matches`, `absent: true`"
                    ));
                    continue;
                }
            };
            headers.push((hn, test));
        }
        let resp = m.response;
        let mut response_headers = self.response_headers(resp.headers.as_ref());
        let body = match (resp.json_body, resp.body) {
            (Some(_), Some(_)) => {
                self.err("`response` takes `jsonBody` or `body`, not both".into());
                String::new()
            }
            (Some(v), None) => {
                default_json(&mut response_headers);
                v.to_string()
            }
            (None, Some(t)) => t,
            (None, None) => String::new(),
        };
        Some(Stub {
            name: m
                .name
                .or(m.id)
                .or(m.uuid)
                .unwrap_or_else(|| format!("stub {}", self.n)),
            line: self.line,
            priority: m.priority.unwrap_or(DEFAULT_PRIORITY),
            method: method?,
            url,
            headers,
            status: self.status(resp.status)?,
            response_headers,
            body,
        })
    }

    /// `None` (error recorded) for a bad method; `Some(None)` for any method.
    fn method(&mut self, m: Option<&str>) -> Option<Option<Method>> {
        match m {
            None => Some(None),
            Some(m) if m.eq_ignore_ascii_case("ANY") => Some(None),
            Some(m) => match Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
                Ok(m) => Some(Some(m)),
                Err(_) => {
                    self.err(format!("`{m}` is not an HTTP method"));
                    None
                }
            },
        }
    }

    fn status(&mut self, s: Option<u16>) -> Option<StatusCode> {
        let s = s.unwrap_or(200);
        match StatusCode::from_u16(s) {
            Ok(c) if s >= 200 => Some(c),
            _ => {
                self.err(format!("status `{s}` is not a final HTTP status (200–999)"));
                None
            }
        }
    }

    /// Anchored at both ends: WireMock (Java `Matcher.matches`) matches the whole value.
    fn regex(&mut self, what: &str, p: &str) -> Option<regex_lite::Regex> {
        // Checked alone first: a valid pattern has balanced groups, so wrapping it cannot
        // change what it means.
        let anchored =
            regex_lite::Regex::new(p).and_then(|_| regex_lite::Regex::new(&format!("^(?:{p})$")));
        match anchored {
            Ok(r) => Some(r),
            Err(e) => {
                self.err(format!("`{what}` pattern `{p}` is not a valid regex: {e}"));
                None
            }
        }
    }

    /// Values are strings or arrays of strings (WireMock allows both).
    fn response_headers(&mut self, h: Option<&Map<String, Value>>) -> HeaderMap {
        let mut out = HeaderMap::new();
        for (name, v) in h.into_iter().flatten() {
            let Ok(hn) = HeaderName::from_bytes(name.as_bytes()) else {
                self.err(format!("`{name}` is not a header name"));
                continue;
            };
            let values: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                v => vec![v],
            };
            for v in values {
                match v.as_str().map(HeaderValue::from_str) {
                    Some(Ok(hv)) => {
                        out.append(hn.clone(), hv);
                    }
                    _ => self.err(format!(
                        "header `{name}` must be a string (or an array of strings) of visible characters"
                    )),
                }
            }
        }
        out
    }
}

/// A JSON body is served as `application/json` unless the stub says otherwise.
fn default_json(h: &mut HeaderMap) {
    if !h.contains_key(http::header::CONTENT_TYPE) {
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
}

#[cfg(test)]
mod tests;
