//! `gatehouse explain`: decide one request without a socket and show the steps, the row of
//! the contract, and the exact response.

use std::net::IpAddr;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use std::time::Duration;

use gatehouse_core::Principal;
use gatehouse_core::accept::prefers_html;
use gatehouse_core::config::Config;
use gatehouse_core::decision::{Decision, Policy};
use gatehouse_core::deny::Deny;
use gatehouse_core::path::normalize;
use gatehouse_core::pipeline::{Need, Next, Pipeline, Proven, Request, TraceStep};
use gatehouse_core::render::{RenderCtx, Rendered, render};
use gatehouse_server::gateway::{RenderArgs, RequestView, extract_from};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::load_config;
use crate::cli::ConfigArg;

/// How long `explain` waits for the store before explaining without it.
const STORE_WAIT: Duration = Duration::from_secs(10);

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
    let html = map
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(prefers_html);
    let now = gatehouse_server::clock::now();
    // The store answers verification (users, keys, sessions, our signing keys). When it
    // cannot be opened, core's pipeline still explains every step before verification.
    let url = cfg.store.url.clone();
    let gw = match tokio::time::timeout(STORE_WAIT, gatehouse_server::build(cfg.clone())).await {
        Ok(Ok(gw)) => Some(gw),
        Ok(Err(gatehouse_server::StartError::Config(e))) => {
            println!("gateway: cannot start ({e}): explaining without it");
            None
        }
        Ok(Err(e)) => {
            println!("store: `{url}` cannot be opened ({e}): explaining without it");
            None
        }
        Err(_) => {
            println!(
                "store: `{url}` did not answer within {} s: explaining without it",
                STORE_WAIT.as_secs()
            );
            None
        }
    };
    println!("request: {method} {target} from {client_ip}");
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
            let (decision, route) = match &gw {
                Some(gw) => {
                    let rt = gw.runtime();
                    // Suspensions and attributes as a running gateway knows them (rows 13, 25).
                    gw.suspended.refresh(gw.store.as_ref()).await;
                    let mut trace = Vec::new();
                    let outcome = gw.decide(&rt, &view, Some(&mut trace)).await;
                    print_trace(&trace);
                    (
                        outcome.decision.map_principal(|p| p.principal().clone()),
                        outcome.route,
                    )
                }
                None => match decide_offline(&cfg, &view)? {
                    Some(decided) => decided,
                    None => return Ok(ExitCode::SUCCESS),
                },
            };
            match decision {
                Decision::Deny { reason, hidden } => (route, Some(reason), hidden),
                Decision::Allow(p) => {
                    let identity = format!(
                        "X-Gatehouse-User: {}, X-Gatehouse-Roles: {}, X-Gatehouse-Auth: {}",
                        p.subject,
                        p.roles.join(","),
                        p.scheme.as_str()
                    );
                    match &cfg.upstream {
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
                    match &cfg.upstream {
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
    let r = match &gw {
        Some(gw) => gw.render(
            &gw.runtime(),
            &RenderArgs {
                route,
                form_post: false,
                grpc: false,
                html,
                request_id: "explain",
                now,
                return_to: target,
            },
            &deny,
            hidden,
        ),
        None => render_offline(&cfg, route, &deny, hidden, html, now, target)?,
    };
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

fn print_trace(trace: &[TraceStep]) {
    for (i, s) in trace.iter().enumerate() {
        println!("  {}. {}: {}", i + 1, s.step, s.note);
    }
}

/// Drives core's pipeline without the store: every step before verification is decided as
/// the gateway would (locks and quotas are the running gateway's and count as clear). `None`
/// when the answer needs the store: the step that would read it was printed.
fn decide_offline(
    cfg: &Config,
    view: &RequestView<'_>,
) -> anyhow::Result<Option<(Decision<Principal>, Option<usize>)>> {
    let policy = Policy::new(cfg).map_err(|(route, e)| anyhow::anyhow!("route `{route}`: {e}"))?;
    let request = Request {
        preflight: view.method == "OPTIONS"
            && view.headers.contains_key("access-control-request-method"),
        ..Request::new(view.method, view.path, view.client_ip, view.now)
    };
    let mut pipe = Pipeline::<Principal>::new(&policy, request).traced();
    let mut needs_store = None;
    let mut needs_geoip = None;
    while let Next::Need(need) = pipe.next() {
        match need {
            // Row 26 reads the country database, not the store: open it here.
            Need::Country => match country_offline(cfg, view.client_ip) {
                Ok(country) => pipe.country(country),
                Err(e) => {
                    needs_geoip = Some(e);
                    break;
                }
            },
            // Throttling state lives in the running gateways: not locked, as far as we know.
            Need::IpLock => pipe.ip_lock(None),
            Need::AccountLock => pipe.account_lock(None),
            Need::Cached => pipe.cached(None),
            Need::TokenLock => pipe.token_lock(None),
            Need::Credentials => pipe.credentials(extract_from(view.headers, view.query)),
            Need::SessionCookie => pipe.session_cookie(
                gatehouse_server::auth::session::cookie_from(view.headers)
                    .map(|c| gatehouse_core::secret::SecretString::new(c.to_owned())),
            ),
            Need::Verify(c) => {
                needs_store = Some(c.scheme());
                break;
            }
            Need::CountFailure | Need::CountSuccess | Need::CountTokenFailure => pipe.counted(),
            Need::SameOrigin => {
                pipe.same_origin(gatehouse_server::auth::session::same_origin(view.headers));
            }
            // Only reached after verification, which needs the store (above).
            Need::Requirements => pipe.requirement_facts(Default::default()),
            Need::Quota => pipe.quota(None),
        }
    }
    let done = pipe.finish();
    print_trace(&done.trace);
    if let Some(e) = needs_geoip {
        println!(
            "  {}. country: needs the country database (`[geoip] database`): {e}",
            done.trace.len() + 1
        );
        println!(
            "\nanswer: needs the country database: route `{}` decides by the client's country (row 26)",
            pipe_route_name(&policy, done.route)
        );
        return Ok(None);
    }
    if let Some(scheme) = needs_store {
        println!(
            "  {}. verify: needs the store: verifying the `{}` credential (rows 8–13, 22) reads it",
            done.trace.len() + 1,
            scheme.as_str()
        );
        println!(
            "\nanswer: needs the store: every step before verification lets the request through; \
             the answer depends on the credential (rows 8–19, 24)"
        );
        return Ok(None);
    }
    Ok(Some((done.decision, done.route)))
}

/// The client address's country from `[geoip] database`, read without the gateway.
fn country_offline(
    cfg: &Config,
    ip: IpAddr,
) -> Result<Option<gatehouse_core::geo::Country>, String> {
    let geoip = cfg
        .geoip
        .as_ref()
        .ok_or_else(|| "no `[geoip] database` is set".to_owned())?;
    gatehouse_server::geoip::GeoIp::open(geoip)?.country(ip)
}

fn pipe_route_name(policy: &Policy, route: Option<usize>) -> String {
    route
        .and_then(|i| policy.routes().get(i))
        .map_or_else(|| "default".to_owned(), |r| r.name().to_owned())
}

/// Renders a refusal through core's table without the gateway: no Digest challenge (its nonce
/// is sealed with the cluster's secret, which lives in the store).
fn render_offline(
    cfg: &Config,
    route: Option<usize>,
    deny: &Deny,
    hidden: bool,
    html: bool,
    now: i64,
    return_to: &str,
) -> anyhow::Result<Rendered> {
    let policy = Policy::new(cfg).map_err(|(route, e)| anyhow::anyhow!("route `{route}`: {e}"))?;
    let accepted = route
        .and_then(|i| policy.routes().get(i))
        .map_or(&cfg.defaults.auth[..], |r| &r.config.auth[..]);
    if accepted.contains(&gatehouse_core::Scheme::Digest) {
        println!("  (a Digest challenge needs the store's secret for its nonce: not shown)");
    }
    let ctx = RenderCtx {
        realm: &policy.realm,
        accepted,
        disclosure: policy.disclosure,
        scope_challenge: policy.scope_challenge,
        html,
        request_id: "explain",
        now,
        return_to,
        form_post: false,
        digest: None,
        grpc: false,
        sign_in: gatehouse_core::render::SignInOptions::PASSWORD,
        problem_base: policy.problem_base.as_deref(),
        pages: None,
    };
    Ok(render(deny, hidden, &ctx))
}
