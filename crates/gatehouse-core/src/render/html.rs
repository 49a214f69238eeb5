//! HTML bodies for browsers (design §2 "Browsers"): a sign-in page for the 401 rows that
//! logging in can fix, a page that says what is missing for 403 rows — never a redirect to
//! sign-in, which loops — and a plain page for everything else.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::{PageKind, RenderCtx};
use crate::deny::{Deny, Page};

/// Escapes text for HTML element content and quoted attribute values (the one escaper of
/// the workspace).
pub use gatehouse_challenge::markup::escape as escape_html;

const STYLE: &str = "*{box-sizing:border-box}\
body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;background:#f3f4f7;color:#1d2330;margin:0}\
main{max-width:25rem;margin:10vh auto 2rem;background:#fff;padding:2rem 2.25rem 1.5rem;border-radius:12px;\
border:1px solid #e3e6ec;box-shadow:0 1px 2px rgba(16,24,40,.04),0 8px 24px rgba(16,24,40,.06)}\
h1{font-size:1.3rem;line-height:1.3;margin:0 0 .4rem}p{margin:.5rem 0;color:#3a4150}\
label{display:block;margin:1rem 0 .35rem;font-size:.9rem;font-weight:600}\
input{width:100%;padding:.6rem .7rem;border:1px solid #c8ccd6;border-radius:8px;font:inherit}\
input:focus{outline:0;border-color:#2456d3;box-shadow:0 0 0 3px rgba(36,86,211,.18)}\
button{margin-top:1.4rem;width:100%;padding:.65rem;border:1px solid #2456d3;border-radius:8px;\
background:#2456d3;color:#fff;font:inherit;font-weight:600;cursor:pointer}button:hover{background:#1c46b0}\
a.provider{display:block;margin-top:1rem;padding:.65rem;border:1px solid #c8ccd6;border-radius:8px;\
text-align:center;color:#1d2330;text-decoration:none;font-weight:600}a.provider:hover{background:#f3f4f7}\
button.secondary{background:#fff;color:#1d2330;border-color:#c8ccd6}button.secondary:hover{background:#f3f4f7}\
ul{margin:.4rem 0 .8rem;padding-left:1.2rem}\
code{font:.85em ui-monospace,SFMono-Regular,Menlo,monospace;background:#eef1f6;padding:.1em .35em;border-radius:4px}\
.code{margin:1.6rem 0 0;padding-top:.9rem;border-top:1px solid #eceef2;\
font:.75rem/1.5 ui-monospace,SFMono-Regular,Menlo,monospace;color:#6b7280;overflow-wrap:anywhere}";

fn shell(title: &str, inner: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{t}</title><style>{STYLE}</style></head><body><main>{inner}</main></body></html>",
        t = escape_html(title)
    )
}

/// Only a same-origin path may be a return target (no `//host`, no scheme).
fn safe_return(to: &str) -> &str {
    if to.starts_with('/') && !to.starts_with("//") && !to.contains('\\') {
        to
    } else {
        "/"
    }
}

/// The template kind of a refusal's page; `None` for the second-factor form, which stays
/// built in.
fn kind(deny: &Deny, hidden: bool) -> Option<PageKind> {
    let e = deny.entry();
    Some(match (hidden && e.hideable, e.page, e.status) {
        (true, _, _) | (false, _, 404) => PageKind::NotFound,
        (false, Page::Code(_), _) => return None,
        (false, Page::SignIn, _) => PageKind::SignIn,
        (false, _, 403) => PageKind::Forbidden,
        (false, _, 429) => PageKind::TooMany,
        (false, _, _) => PageKind::Error,
    })
}

pub(super) fn page(
    deny: &Deny,
    hidden: bool,
    body: &Map<String, Value>,
    ctx: &RenderCtx<'_>,
) -> String {
    if let Some(pages) = ctx.pages
        && let Some(kind) = kind(deny, hidden)
        && let Some(branded) = pages.page(kind, body, safe_return(ctx.return_to))
    {
        return branded;
    }
    let title = body.get("title").and_then(Value::as_str).unwrap_or("Error");
    let detail = body.get("detail").and_then(Value::as_str).unwrap_or("");
    let code = body.get("error").and_then(Value::as_str).unwrap_or("");
    let mut inner = String::with_capacity(1024);
    let _ = write!(
        inner,
        "<h1>{}</h1><p>{}</p>",
        escape_html(title),
        escape_html(detail)
    );
    let page = deny.entry().page;
    if let Page::Code(mfa_token) = page {
        let _ = write!(
            inner,
            "<form method=\"post\" action=\"/auth/mfa\">\
<input type=\"hidden\" name=\"mfa_token\" value=\"{tok}\">\
<input type=\"hidden\" name=\"return_to\" value=\"{rt}\">\
<label for=\"code\">Code</label><input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9]{{6}}\" maxlength=\"6\" required autofocus>\
<button type=\"submit\">Verify</button></form>",
            tok = escape_html(mfa_token),
            rt = escape_html(safe_return(ctx.return_to))
        );
    } else if !hidden && page == Page::SignIn {
        // Provider buttons only where a session (which is what they give) opens the route.
        if ctx.accepted.contains(&crate::scheme::Scheme::Session) {
            for p in ctx.sign_in.providers {
                let _ = write!(
                    inner,
                    "<a class=\"provider\" href=\"/auth/oidc/{name}/start?return_to={rt}\">Sign in with {label}</a>",
                    name = escape_html(&p.name),
                    rt = escape_html(&crate::oidc::form_encode(safe_return(ctx.return_to))),
                    label = escape_html(&p.display_name)
                );
            }
        }
        if ctx.sign_in.password {
            let _ = write!(
                inner,
                "<form method=\"post\" action=\"/auth/login\">\
<input type=\"hidden\" name=\"return_to\" value=\"{rt}\">\
<label for=\"username\">Username</label><input id=\"username\" name=\"username\" autocomplete=\"username\" required>\
<label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
<button type=\"submit\">Sign in</button></form>",
                rt = escape_html(safe_return(ctx.return_to))
            );
        }
    } else if !hidden {
        let mut missing = String::new();
        for (key, label) in [
            ("required_roles", "One of these roles"),
            ("required_scopes", "All of these scopes"),
        ] {
            if let Some(Value::Array(items)) = body.get(key) {
                let list: Vec<String> = items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|s| format!("<code>{}</code>", escape_html(s)))
                    .collect();
                let _ = write!(missing, "<li>{label}: {}</li>", list.join(", "));
            }
        }
        // Row 25: each unmet requirement's message (its code with `disclosure = "minimal"`),
        // linked to its remedy.
        if let Some(Value::Array(items)) = body.get("requirements") {
            for item in items {
                let text = item
                    .get("message")
                    .or_else(|| item.get("code"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match item.get("remedy_url").and_then(Value::as_str) {
                    Some(url) => {
                        let _ = write!(
                            missing,
                            "<li>{} <a href=\"{}\">Fix this</a></li>",
                            escape_html(text),
                            escape_html(url)
                        );
                    }
                    None => {
                        let _ = write!(missing, "<li>{}</li>", escape_html(text));
                    }
                }
            }
        }
        if let Some(Value::String(reason)) = body.get("reason") {
            let _ = write!(missing, "<li>Reason: {}</li>", escape_html(reason));
        }
        if !missing.is_empty() {
            let _ = write!(inner, "<p>What is needed:</p><ul>{missing}</ul>");
        }
        if page == (Page::Missing { final_: true }) && body.contains_key("requirements") {
            // Row 25: the user can fix it; signing in again cannot.
            inner.push_str(
                "<p>Signing in again will not change this: do what is listed above, then try \
again.</p>",
            );
        } else if page == (Page::Missing { final_: true }) {
            inner.push_str(
                "<p>Signing in again will not change this. Ask an administrator for access, \
quoting the request id below.</p>\
<form method=\"post\" action=\"/auth/logout\"><button type=\"submit\" class=\"secondary\">Sign out</button></form>",
            );
        }
    }
    let _ = write!(
        inner,
        "<p class=\"code\">error: {} · request id: {}</p>",
        escape_html(code),
        escape_html(ctx.request_id)
    );
    shell(title, &inner)
}
