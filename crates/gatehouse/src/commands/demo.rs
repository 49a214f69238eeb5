//! `gatehouse demo`: a demo upstream and gateway with seeded users, keys and tokens, and a
//! tour of `curl` commands showing each 401/403 case and what it teaches.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use gatehouse_core::apikey::generate_api_key;
use gatehouse_core::password::hash_password;
use gatehouse_core::totp;
use gatehouse_server::auth::mfa::seal_totp_secret;
use gatehouse_server::clock::now;
use gatehouse_server::random::random_bytes;
use gatehouse_server::tokens::{TokenRequest, issue};
use gatehouse_server::{admin_router, bind, build, serve_on, serve_public};
use gatehouse_store::{NewApiKey, NewUser, Store};

use super::parse_config;
use upstream::{demo_config, upstream_router};

mod upstream;

struct Seeded {
    alice: String,
    alice_mfa: String,
    bob: String,
    expired: String,
    bob_key: String,
    /// Dave's TOTP secret (base32), for an authenticator app or `oathtool`.
    dave_totp: String,
}

async fn seed(gw: &gatehouse_server::Gateway) -> anyhow::Result<Seeded> {
    let store: &dyn Store = gw.store.as_ref();
    let t = now();
    for (name, pw, roles, tenant) in [
        (
            "alice",
            "alice-password",
            vec!["admin", "ops", "editor"],
            "acme",
        ),
        ("bob", "bob-password", vec!["editor"], "globex"),
        ("carol", "carol-password", vec!["editor"], "acme"),
        ("dave", "dave-password", vec!["editor"], "acme"),
    ] {
        let pw = pw.to_owned();
        let hash = tokio::task::spawn_blocking(move || {
            hash_password(pw.as_bytes(), &random_bytes::<16>())
        })
        .await?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        store
            .create_user(
                NewUser {
                    name: name.to_owned(),
                    password_hash: Some(hash),
                    roles: roles.into_iter().map(str::to_owned).collect(),
                    tenant: Some(tenant.to_owned()),
                },
                t,
            )
            .await?;
    }
    store
        .suspend_user("carol", "Terms of Service violation", t)
        .await?;
    gw.suspended.refresh(store).await;
    let dave_secret = totp::generate_secret(&random_bytes::<{ totp::SECRET_LEN }>());
    let sealed =
        seal_totp_secret(&gw.secrets, "dave", &dave_secret).map_err(|e| anyhow::anyhow!(e))?;
    store.set_mfa_secret("dave", Some(sealed)).await?;
    let rt = gw.runtime();
    let tokens = &rt.config.tokens;
    let user = |n: &str| {
        let n = n.to_owned();
        async move { store.get_user(&n).await?.context("seeded user missing") }
    };
    let alice = user("alice").await?;
    let bob = user("bob").await?;
    let hour = Duration::from_secs(3600);
    let scopes = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let sign = |user, s: &[&str], acr: &str, at: i64, ttl| {
        let scopes = scopes(s);
        let req = TokenRequest {
            user,
            scopes: &scopes,
            acr,
            auth_time: at,
            amr: &[],
            session_id: None,
            now: at,
            ttl,
        };
        issue(&gw.own_keys(), tokens, &req).map_err(|e| anyhow::anyhow!("{e}"))
    };
    let generated = generate_api_key(&random_bytes::<37>());
    store
        .create_api_key(
            NewApiKey {
                id: format!("key_{}", generated.prefix),
                prefix: generated.prefix.clone(),
                hash: generated.hash,
                user: "bob".to_owned(),
                scopes: scopes(&["posts:read", "posts:write"]),
                read_only: true,
                expires_at: None,
                label: Some("bob's read-only key".to_owned()),
            },
            t,
        )
        .await?;
    Ok(Seeded {
        alice: sign(&alice, &["posts:read", "posts:write"], "pwd", t, hour)?,
        alice_mfa: sign(&alice, &["posts:read", "posts:write"], "mfa", t, hour)?,
        bob: sign(&bob, &["posts:read"], "pwd", t, hour)?,
        expired: sign(&bob, &["posts:read"], "pwd", t - 7200, hour)?,
        bob_key: generated.display.expose().to_owned(),
        dave_totp: totp::base32_encode(&dave_secret),
    })
}

fn tour(base: &str, s: &Seeded) -> String {
    let steps: [(&str, String, &str); 20] = [
        (
            "No credentials: 401 + one challenge per accepted scheme (row 5)",
            format!("curl -i {base}/api/posts"),
            "401 missing_credentials — who are you?",
        ),
        (
            "Garbage token: 401 invalid_token with an RFC 6750 error (row 8)",
            format!("curl -i -H 'Authorization: Bearer not.a.jwt' {base}/api/posts"),
            "401 invalid_token",
        ),
        (
            "Expired token: refresh and retry (row 9)",
            format!(
                "curl -i -H 'Authorization: Bearer {}' {base}/api/posts",
                s.expired
            ),
            "401 token_expired + expired_at",
        ),
        (
            "Wrong password: 401, same answer whether the user exists or not (row 11)",
            format!("curl -i -u alice:wrong {base}/api/posts"),
            "401 invalid_credentials",
        ),
        (
            "A scheme the route does not take (row 6)",
            format!("curl -i -H 'Authorization: Negotiate abc' {base}/api/posts"),
            "401 unsupported_scheme",
        ),
        (
            "Two credentials at once (row 7)",
            format!("curl -i -u alice:x -H 'X-API-Key: abc' {base}/api/posts"),
            "400 invalid_request",
        ),
        (
            "Alice is an admin",
            format!("curl -i -u alice:alice-password {base}/api/admin/users"),
            "200 from the upstream, with X-Gatehouse-* identity",
        ),
        (
            "Bob is known but not an admin: 403, logging in again won't help (row 15)",
            format!("curl -i -u bob:bob-password {base}/api/admin/users"),
            "403 insufficient_role + required_roles",
        ),
        (
            "Carol's password is right but her account is suspended (row 13)",
            format!("curl -i -u carol:carol-password {base}/api/posts"),
            "403 account_suspended + reason",
        ),
        (
            "Bob's token may read posts...",
            format!(
                "curl -i -H 'Authorization: Bearer {}' {base}/api/posts",
                s.bob
            ),
            "200",
        ),
        (
            "...but not write them: scope challenge (row 16)",
            format!(
                "curl -i -X POST -H 'Authorization: Bearer {}' {base}/api/posts",
                s.bob
            ),
            "403 insufficient_scope + WWW-Authenticate scope=\"posts:write\"",
        ),
        (
            "Alice's token has posts:write",
            format!(
                "curl -i -X POST -H 'Authorization: Bearer {}' {base}/api/posts",
                s.alice
            ),
            "200",
        ),
        (
            "Bob's read-only API key on an unsafe method (row 19)",
            format!(
                "curl -i -X DELETE -H 'X-API-Key: {}' {base}/api/posts/1",
                s.bob_key
            ),
            "403 read_only",
        ),
        (
            "Another tenant's data (row 17)",
            format!("curl -i -u bob:bob-password {base}/tenants/acme/reports"),
            "403 tenant_mismatch",
        ),
        (
            "Another user's profile (row 18)",
            format!("curl -i -u bob:bob-password {base}/users/alice/settings"),
            "403 not_owner",
        ),
        (
            "A hidden route answers 404 instead of revealing it exists (row 20)",
            format!("curl -i -u bob:bob-password {base}/api/internal/metrics"),
            "404 not_found",
        ),
        (
            "Dotfiles are denied to everyone (row 2)",
            format!("curl -i {base}/.git/config"),
            "403 forbidden_path, no challenge",
        ),
        (
            "Billing needs MFA: step-up challenge (row 14, RFC 9470)",
            format!(
                "curl -i -H 'Authorization: Bearer {}' {base}/api/billing/invoices",
                s.alice
            ),
            "401 insufficient_user_authentication, acr_values=\"mfa\"",
        ),
        (
            "...and passes with an MFA token",
            format!(
                "curl -i -H 'Authorization: Bearer {}' {base}/api/billing/invoices",
                s.alice_mfa
            ),
            "200",
        ),
        (
            "The office route only admits 10.0.0.0/8 (row 3)",
            format!("curl -i -u alice:alice-password {base}/api/office/printer"),
            "403 ip_blocked",
        ),
    ];
    let mut out = String::from("\nA tour of the 401-vs-403 contract (try each; `| jq` helps):\n");
    for (i, (what, cmd, expect)) in steps.iter().enumerate() {
        out.push_str(&format!(
            "\n{:>2}. {what}\n    {cmd}\n    → {expect}\n",
            i + 1
        ));
    }
    out.push_str(&format!(
        "\nBrowsers get an HTML page with the same status: curl -i -H 'Accept: text/html' {base}/api/posts\n\
Explain any decision: gatehouse explain --config <file> GET /api/admin/users -H 'Authorization: Basic ...'\n\
Users: alice / alice-password (admin, tenant acme), bob / bob-password (editor, tenant globex),\n\
       carol / carol-password (suspended), dave / dave-password (MFA, TOTP secret {}).\n\
In a browser: {base}/app/home (sign in), {base}/app/admin/settings (admins only).\n\
Press Ctrl-C to stop.\n",
        s.dave_totp,
    ));
    out
}

/// A header of a tour request: `(name, value)`.
type Header = Option<(&'static str, String)>;
/// A tour request: method, path and its credential header.
type TourRequest = (&'static str, &'static str, Header);

/// The tour's requests, sent once at start so the console's charts are not empty: what
/// each asks and how (`Authorization` or `X-API-Key`).
fn tour_traffic(s: &Seeded) -> Vec<TourRequest> {
    use base64::Engine as _;
    let basic = |u: &str, p: &str| {
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        Some(("Authorization", format!("Basic {pair}")))
    };
    let bearer = |t: &str| Some(("Authorization", format!("Bearer {t}")));
    vec![
        ("GET", "/api/posts", None),
        ("GET", "/api/posts", None),
        ("GET", "/api/posts", None),
        ("GET", "/api/posts", bearer("not.a.jwt")),
        ("GET", "/api/posts", bearer(&s.expired)),
        ("GET", "/api/posts", basic("alice", "wrong")),
        ("GET", "/api/admin/users", basic("alice", "alice-password")),
        ("GET", "/api/admin/users", basic("bob", "bob-password")),
        ("GET", "/api/admin/users", basic("bob", "bob-password")),
        ("GET", "/api/posts", basic("carol", "carol-password")),
        ("GET", "/api/posts", bearer(&s.bob)),
        ("POST", "/api/posts", bearer(&s.bob)),
        (
            "DELETE",
            "/api/posts/1",
            Some(("X-API-Key", s.bob_key.clone())),
        ),
        ("GET", "/tenants/acme/reports", basic("bob", "bob-password")),
        ("GET", "/users/alice/settings", basic("bob", "bob-password")),
        ("GET", "/api/internal/metrics", basic("bob", "bob-password")),
        ("GET", "/.git/config", None),
        ("GET", "/api/billing/invoices", bearer(&s.alice)),
    ]
}

/// Sends one request over a fresh connection and reads the answer to its end.
async fn send(addr: SocketAddr, method: &str, path: &str, header: Option<&(&str, String)>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return;
    };
    let extra = header.map_or_else(String::new, |(n, v)| format!("{n}: {v}\r\n"));
    let req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_ok() {
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink).await;
    }
}

pub async fn demo(
    listen: SocketAddr,
    upstream: SocketAddr,
    admin_listen: SocketAddr,
) -> anyhow::Result<ExitCode> {
    let up = bind(upstream).await?;
    let up_addr = up.local_addr()?;
    let public = bind(listen).await?;
    let addr = public.local_addr()?;
    let admin = bind(admin_listen).await?;
    let admin_addr = admin.local_addr()?;
    let cfg = parse_config(&demo_config(addr, up_addr), "<demo config>")?;
    let gw = build(cfg).await?;
    let seeded = seed(&gw).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut rx1 = stop_rx.clone();
    let mut rx2 = stop_rx.clone();
    let t1 = tokio::spawn(serve_on(up, upstream_router(), async move {
        let _ = rx1.wait_for(|s| *s).await;
    }));
    let t2 = tokio::spawn(serve_public(public, Arc::clone(&gw), async move {
        let _ = rx2.wait_for(|s| *s).await;
    }));
    let mut rx3 = stop_rx.clone();
    let t3 = tokio::spawn(serve_on(admin, admin_router(Arc::clone(&gw)), async move {
        let _ = rx3.wait_for(|s| *s).await;
    }));
    // The tour's traffic, so the console opens on charts with something in them; the
    // locks it may cause are lifted so the tour itself still works.
    for (method, path, header) in tour_traffic(&seeded) {
        send(addr, method, path, header.as_ref()).await;
    }
    let rt = gw.runtime();
    for (kind, id, _) in rt.defense.locks(now()) {
        rt.defense.unlock(kind, &id, now());
    }
    gatehouse_server::admin::stats::flush(&gw, now()).await;
    println!("gatehouse demo: gateway on http://{addr}, demo upstream on http://{up_addr}");
    println!(
        "Console: http://{admin_addr}/admin/ — sign in as alice / alice-password (an admin); admin API under http://{admin_addr}/admin/api/ (OpenAPI document: /admin/api/openapi.json)"
    );
    println!("{}", tour(&format!("http://{addr}"), &seeded));
    tokio::signal::ctrl_c().await?;
    let _ = stop_tx.send(true);
    let _ = t1.await;
    let _ = t2.await;
    let _ = t3.await;
    gw.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
