//! `gatehouse explain`: decide one request without a socket and show the steps, the row of
//! the contract, and the exact response.

use std::net::IpAddr;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use gatehouse_core::accept::prefers_html;
use gatehouse_core::decision::Decision;
use gatehouse_core::deny::Deny;
use gatehouse_core::path::normalize;
use gatehouse_server::gateway::{RenderArgs, RequestView};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::load_config;
use crate::cli::ConfigArg;

pub async fn explain(
    config: &ConfigArg,
    method: &str,
    url: &str,
    headers: &[String],
    client_ip: IpAddr,
) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config)?;
    let mut map = HeaderMap::new();
    for h in headers {
        let Some((name, value)) = h.split_once(':') else {
            bail!("header `{h}` is not `Name: value`");
        };
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .with_context(|| format!("header name `{}` is not valid", name.trim()))?;
        let value = HeaderValue::from_str(value.trim())
            .with_context(|| format!("header value of `{name}` is not valid"))?;
        map.append(name, value);
    }
    let target = match url.find("://") {
        Some(i) => url[i + 3..].find('/').map_or("/", |j| &url[i + 3 + j..]),
        None => url,
    };
    let (raw_path, query) = target
        .split_once('?')
        .map_or((target, None), |(p, q)| (p, Some(q)));
    let method = method.to_ascii_uppercase();
    let gw = gatehouse_server::build(cfg).await?;
    let rt = gw.runtime();
    let now = gatehouse_server::ids::now();
    let html = map
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(prefers_html);
    println!("request: {method} {target} from {client_ip}");
    let mut trace = Vec::new();
    let (route, deny, hidden) = match normalize(raw_path) {
        Err(e) => {
            println!("  1. path: refused: {e}");
            (
                None,
                Some(Deny::InvalidPath {
                    detail: e.to_string(),
                }),
                false,
            )
        }
        Ok(path) => {
            if path.decoded != raw_path {
                println!("  path normalized to `{}`", path.decoded);
            }
            let view = RequestView {
                method: &method,
                path: &path.decoded,
                target,
                query,
                headers: &map,
                client_ip,
                now,
            };
            let outcome = gw.decide(&rt, &view, Some(&mut trace)).await;
            for (i, s) in trace.iter().enumerate() {
                println!("  {}. {}: {}", i + 1, s.step, s.note);
            }
            match outcome.decision {
                Decision::Deny { reason, hidden } => (outcome.route, Some(reason), hidden),
                Decision::Allow(p) => {
                    let identity = format!(
                        "X-Gatehouse-User: {}, X-Gatehouse-Roles: {}, X-Gatehouse-Auth: {}",
                        p.subject,
                        p.roles.join(","),
                        p.scheme.as_str()
                    );
                    match &rt.config.upstream {
                        Some(u) => println!(
                            "\nanswer: forwarded to the upstream `{}` ({identity})",
                            u.url
                        ),
                        None => println!(
                            "\nanswer: allowed: forward-auth answers 200 ({identity}); without an [upstream], a direct request is answered 404 `not_found`"
                        ),
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                Decision::Public => {
                    match &rt.config.upstream {
                        Some(u) => println!(
                            "\nanswer: forwarded to the upstream `{}` without identity (row 1: public)",
                            u.url
                        ),
                        None => println!(
                            "\nanswer: allowed without identity (row 1: public): forward-auth answers 200; without an [upstream], a direct request is answered 404 `not_found`"
                        ),
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                Decision::Preflight => {
                    println!("\nanswer: CORS preflight answered per [cors] (row 23)");
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    };
    let Some(deny) = deny else {
        return Ok(ExitCode::SUCCESS);
    };
    let r = gw.render(
        &rt,
        &RenderArgs {
            route,
            form_post: false,
            html,
            request_id: "explain",
            now,
            return_to: target,
        },
        &deny,
        hidden,
    );
    let row = if hidden && deny.hideable() {
        format!("row {} hidden by row 20", deny.row().unwrap_or(0))
    } else {
        deny.row()
            .map_or_else(|| "outside the table".to_owned(), |r| format!("row {r}"))
    };
    println!(
        "\nanswer: {} `{}` ({row} of the semantics contract)",
        r.status,
        deny.code()
    );
    // The status line with its reason phrase, as the client would see it (RFC 9112 §4).
    let reason = http::StatusCode::from_u16(r.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    println!("HTTP/1.1 {} {reason}", r.status);
    for (n, v) in &r.headers {
        println!("{n}: {v}");
    }
    println!("content-type: {}\n", r.content_type);
    if r.content_type.starts_with("application/") {
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null);
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or(r.body));
    } else {
        println!("{}", r.body);
    }
    Ok(ExitCode::SUCCESS)
}
