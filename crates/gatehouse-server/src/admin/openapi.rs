//! The admin API's OpenAPI 3.1 document, served at `/admin/api/openapi.json` without
//! credentials (it describes the API; it holds nothing secret). Every operation needs an
//! administrator (`security`), and says so to `gatehouse probe` (`x-probe-allow: ["admin"]`);
//! path parameters carry harmless examples (names that do not exist, which the operation
//! says with `x-probe-absent: true`), so a probe run as an administrator changes nothing and
//! its 404 for such a name is the expected answer, not a note.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::State;
use http::{HeaderValue, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::AdminState;

/// One operation: method, path, summary, path parameters with their examples, query
/// parameters, whether it takes a JSON body, the success status.
struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    params: &'static [(&'static str, &'static str)],
    query: &'static [(&'static str, &'static str)],
    body: bool,
    ok: u16,
}

const fn op(method: &'static str, path: &'static str, summary: &'static str) -> Op {
    Op {
        method,
        path,
        summary,
        params: &[],
        query: &[],
        body: false,
        ok: 200,
    }
}

const USER: &[(&str, &str)] = &[("name", "probe-example-user")];

const AUDIT_QUERY: &[(&str, &str)] = &[
    (
        "since",
        "Unix seconds, RFC 3339, or a duration back from now (`1h`)",
    ),
    (
        "until",
        "Unix seconds, RFC 3339, or a duration back from now",
    ),
    ("status", "The status sent"),
    ("reason", "The `error` code"),
    ("route", "The route name"),
    ("user", "The principal"),
    ("client_ip", "The client address"),
    ("request_id", "The request id"),
    ("kind", "`request` or `alert`"),
    ("before", "Cursor: the `next` of the previous page"),
    ("limit", "At most this many records (1–1000, default 100)"),
];

const STATS_QUERY: &[(&str, &str)] = &[
    ("range", "`hour` (default), `day` or `week` back from now"),
    (
        "since",
        "Instead of `range`: unix seconds, RFC 3339 or a duration back from now",
    ),
    (
        "until",
        "Unix seconds, RFC 3339 or a duration back from now (default: now)",
    ),
    ("route", "Only this route"),
    (
        "step",
        "Seconds per bucket, a multiple of 60 (default 60, 900 for a day, 3600 for a week)",
    ),
    ("answers", "`refusals` (default: 4xx and 5xx) or `all`"),
];

fn ops() -> Vec<Op> {
    vec![
        Op {
            query: &[
                ("q", "Part of the name, a role or the tenant"),
                ("status", "`active` or `suspended`"),
                ("limit", "1–1000, default 100"),
                ("offset", "The `next_offset` of the previous page"),
            ],
            ..op("get", "/admin/api/users", "List users")
        },
        Op {
            body: true,
            ok: 201,
            ..op(
                "post",
                "/admin/api/users",
                "Create a user: {name, password?, roles?, tenant?}",
            )
        },
        Op {
            params: USER,
            ..op("get", "/admin/api/users/{name}", "One user")
        },
        Op {
            params: USER,
            body: true,
            ..op(
                "patch",
                "/admin/api/users/{name}",
                "Change roles, tenant (null clears), password or attributes (a JSON merge patch, RFC 7396: {\"plan\": \"pro\"} sets, {\"plan\": null} removes)",
            )
        },
        Op {
            params: USER,
            ..op(
                "delete",
                "/admin/api/users/{name}",
                "Delete a user with their keys and sessions",
            )
        },
        Op {
            params: USER,
            body: true,
            ..op(
                "post",
                "/admin/api/users/{name}/suspend",
                "Suspend (row 13): {reason}; revokes their sessions",
            )
        },
        Op {
            params: USER,
            ..op(
                "post",
                "/admin/api/users/{name}/unsuspend",
                "Make the account active again",
            )
        },
        Op {
            params: USER,
            ..op(
                "post",
                "/admin/api/users/{name}/reset-mfa",
                "Remove the user's TOTP enrolment",
            )
        },
        Op {
            params: USER,
            ..op(
                "post",
                "/admin/api/users/{name}/sign-out",
                "Revoke every session of the user",
            )
        },
        Op {
            query: &[("user", "Only this user's keys")],
            ..op(
                "get",
                "/admin/api/keys",
                "List API keys (never their secrets)",
            )
        },
        Op {
            body: true,
            ok: 201,
            ..op(
                "post",
                "/admin/api/keys",
                "Create an API key: {user, scopes?, read_only?, expires?, label?}; the key is in the answer, once",
            )
        },
        Op {
            body: true,
            ..op(
                "post",
                "/admin/api/keys/revoke",
                "Revoke a key: {key} is its id, its prefix, or the full key as printed",
            )
        },
        Op {
            params: &[("id", "key_probeexample")],
            ..op(
                "delete",
                "/admin/api/keys/{id}",
                "Revoke a key by id or prefix",
            )
        },
        Op {
            query: &[
                ("user", "Only this user's sessions"),
                ("all", "`true`: revoked sessions too"),
            ],
            ..op("get", "/admin/api/sessions", "List sign-in sessions")
        },
        Op {
            params: &[("id", "probe-example-session")],
            ..op(
                "delete",
                "/admin/api/sessions/{id}",
                "Revoke a session (its tokens answer `token_revoked`)",
            )
        },
        op(
            "get",
            "/admin/api/locks",
            "Client addresses and accounts locked by throttling (row 4) on this node",
        ),
        Op {
            params: &[("kind", "ip"), ("id", "192.0.2.1")],
            ..op(
                "delete",
                "/admin/api/locks/{kind}/{id}",
                "Unlock an address's password lock (`ip`), an account (`account`) or an address's verification budget (`tokens`) on this node",
            )
        },
        Op {
            query: AUDIT_QUERY,
            ..op(
                "get",
                "/admin/api/audit",
                "Audit records, newest first, one page; `next` is the cursor",
            )
        },
        Op {
            query: AUDIT_QUERY,
            ..op(
                "get",
                "/admin/api/audit/export",
                "Every matching record, oldest first, streamed: `format=jsonl` (default) or `csv`",
            )
        },
        Op {
            query: STATS_QUERY,
            ..op(
                "get",
                "/admin/api/stats",
                "Answers per bucket by status and reason, from every node's per-minute rollups; totals per route",
            )
        },
        Op {
            query: STATS_QUERY,
            ..op(
                "get",
                "/admin/api/stats/top",
                "The most refused routes, users and client addresses",
            )
        },
        Op {
            query: &[("limit", "1–1000, default 50")],
            ..op("get", "/admin/api/alerts", "Alert events, newest first")
        },
        Op {
            params: &[("seq", "0")],
            ..op(
                "post",
                "/admin/api/alerts/{seq}/ack",
                "Acknowledge an alert (on this node)",
            )
        },
        op(
            "get",
            "/admin/api/me",
            "Who is signed in: {subject, scheme}",
        ),
        op(
            "get",
            "/admin/api/config",
            "The running config (secrets redacted), its hash and when it was loaded",
        ),
        Op {
            body: true,
            ..op(
                "post",
                "/admin/api/explain",
                "How the running config decides a request: {method, path, headers?, client_ip?} → the decision and its trace",
            )
        },
    ]
}

fn param(name: &str, location: &str, text: &str, example: Option<&str>) -> Value {
    let mut p = json!({
        "name": name,
        "in": location,
        "required": location == "path",
        "description": text,
        "schema": {"type": "string"},
    });
    if let Some(e) = example {
        p["example"] = Value::String(e.to_owned());
    }
    p
}

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    })
}

/// The document (built once).
pub fn build() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for o in ops() {
        let mut params: Vec<Value> = o
            .params
            .iter()
            .map(|(n, ex)| param(n, "path", n, Some(ex)))
            .collect();
        params.extend(
            o.query
                .iter()
                .map(|(n, text)| param(n, "query", text, None)),
        );
        let mut responses = Map::new();
        responses.insert(
            o.ok.to_string(),
            json!({"description": "Done", "content": {"application/json": {"schema": {"type": "object"}}}}),
        );
        for (code, text) in [
            ("400", "Invalid input"),
            (
                "401",
                "No valid credentials (one challenge per accepted scheme)",
            ),
            (
                "403",
                "Not an administrator, or a cross-site form on the session cookie",
            ),
            ("404", "No such record"),
            ("429", "Too many failed authentications"),
        ] {
            responses.insert(code.to_owned(), problem(text));
        }
        let mut operation = json!({
            "summary": o.summary,
            "parameters": params,
            "responses": responses,
            "x-probe-allow": ["admin"],
        });
        if !o.params.is_empty() {
            operation["x-probe-absent"] = Value::Bool(true);
        }
        if o.body {
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": {"type": "object"}}},
            });
        }
        let item = paths
            .entry(o.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        item[o.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Gatehouse admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "On the admin port only. An administrator is a principal with any of `[admin] roles` (Bearer token or the admin port's sign-in session) or an API key with the scope `gatehouse:admin`. Unsafe methods on the session cookie must come from the admin port's own origin. Every change is an audit record naming its actor.",
        },
        "security": [{"bearer": []}, {"apiKey": []}, {"session": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "session": {"type": "apiKey", "in": "cookie", "name": crate::auth::session::COOKIE},
            },
            "schemas": {
                "Problem": {
                    "type": "object",
                    "description": "RFC 9457 problem details",
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "error": {"type": "string"},
                        "message": {"type": "string"},
                        "timestamp": {"type": "string"},
                        "request_id": {"type": "string"},
                    },
                },
            },
        },
    })
}

/// `GET /admin/api/openapi.json`.
pub async fn document(State(_): State<Arc<AdminState>>) -> Response<Body> {
    static DOC: OnceLock<String> = OnceLock::new();
    let text = DOC.get_or_init(|| build().to_string());
    let mut r = Response::new(Body::from(text.clone()));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
