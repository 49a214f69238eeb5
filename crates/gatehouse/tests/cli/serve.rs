//! `gatehouse serve` end to end: CLI changes seen by a running server, SIGHUP reloads,
//! SIGTERM stops cleanly.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::{Env, Response, Running, Upstream, basic, free_addr, http, json_lines, poll};

fn config(listen: SocketAddr, upstream: SocketAddr, extra_routes: &str) -> String {
    format!(
        r#"[server]
listen = "{listen}"
realm = "api"

[upstream]
url = "http://{upstream}"

[defaults]
access = "authenticated"
auth = ["basic", "api_key"]
{extra_routes}"#
    )
}

const DENY_SECRET: &str = r#"
[[route]]
name = "secret"
path = "/api/secret/**"
access = "deny"
"#;

fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    http(addr, "GET", path, headers).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Polls until `GET path` answers `status` (and `error`, for a problem body).
#[track_caller]
fn until(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    status: u16,
    error: Option<&str>,
) -> Response {
    poll(
        Duration::from_secs(3),
        &format!("GET {path} to answer {status} {error:?}"),
        || {
            let r = http(addr, "GET", path, headers).ok()?;
            (r.status == status && r.error().as_deref() == error).then_some(r)
        },
    )
}

#[test]
fn serve_sees_cli_changes_reloads_on_sighup_and_stops_on_sigterm() {
    let upstream = Upstream::start();
    let listen = free_addr();
    let env = Env::new("serve", &config(listen, upstream.addr, ""));
    env.add_user("alice", "alice-password", &["editor"], Some("acme"));
    let config_path = env.config.to_str().unwrap().to_owned();
    let mut server = Running::spawn(&env.dir.path, &["serve", "--config", &config_path]);

    poll(Duration::from_secs(20), "/healthz to answer 200", || {
        http(listen, "GET", "/healthz", &[])
            .ok()
            .filter(|r| r.status == 200)
    });
    let ready = get(listen, "/readyz", &[]);
    assert_eq!(ready.status, 200, "{ready:#?}");

    // No credentials: 401 with one challenge per default scheme.
    let r = get(listen, "/api/hello", &[]);
    assert_eq!(r.status, 401, "{r:#?}");
    assert_eq!(r.error().as_deref(), Some("missing_credentials"));
    assert_eq!(r.all("www-authenticate").len(), 2, "{r:#?}");

    // A user added with the CLI authenticates with Basic; the upstream sees who.
    let alice = basic("alice", "alice-password");
    let auth = [("Authorization", alice.as_str())];
    let r = get(listen, "/api/hello", &auth);
    assert_eq!(r.status, 200, "{r:#?}");
    assert_eq!(r.body, "upstream saw alice");

    // Suspended with the CLI while the server runs: 403 account_suspended within ~2 s.
    env.run(&["user", "suspend", "alice", "--reason", "unpaid invoice"])
        .ok();
    let r = until(listen, "/api/hello", &auth, 403, Some("account_suspended"));
    assert!(r.body.contains("unpaid invoice"), "{r:#?}");
    assert!(
        r.header("www-authenticate").is_none(),
        "403 must not challenge"
    );
    env.run(&["user", "unsuspend", "alice"]).ok();
    until(listen, "/api/hello", &auth, 200, None);

    // An API key from `key create` works as X-API-Key until `key revoke`.
    let out = env.run(&["key", "create", "--user", "alice"]).ok();
    let key = out.stdout.lines().last().unwrap().to_owned();
    let key_auth = [("X-API-Key", key.as_str())];
    let r = get(listen, "/api/hello", &key_auth);
    assert_eq!(r.status, 200, "{r:#?}");
    assert_eq!(r.body, "upstream saw alice");
    let keys = json_lines(&env.run(&["key", "list", "--json"]).ok().stdout);
    let id = keys[0]["id"].as_str().unwrap().to_owned();
    env.run(&["key", "revoke", &id]).ok();
    until(
        listen,
        "/api/hello",
        &key_auth,
        401,
        Some("invalid_credentials"),
    );

    // SIGHUP reloads the file: a new deny route takes effect.
    let r = get(listen, "/api/secret/plans", &auth);
    assert_eq!(r.status, 200, "before the reload: {r:#?}");
    env.write_config(&config(listen, upstream.addr, DENY_SECRET));
    server.signal("HUP");
    let r = until(
        listen,
        "/api/secret/plans",
        &auth,
        403,
        Some("forbidden_path"),
    );
    assert!(r.header("www-authenticate").is_none(), "{r:#?}");
    assert!(
        server.stderr().contains("config reloaded"),
        "{}",
        server.stderr()
    );

    // An invalid file is refused; the old config keeps serving.
    std::fs::write(&env.config, "[server]\nlisen = \"127.0.0.1:1\"\n").unwrap();
    server.signal("HUP");
    poll(Duration::from_secs(5), "the reload to be refused", || {
        server
            .stderr()
            .contains("config reload failed; the old config stays in force")
            .then_some(())
    });
    let err = server.stderr();
    assert!(err.contains("line 2") && err.contains("`lisen`"), "{err}");
    assert!(server.alive(), "the server died on a bad reload");
    let r = get(listen, "/api/secret/plans", &auth);
    assert_eq!(r.error().as_deref(), Some("forbidden_path"), "{r:#?}");
    assert_eq!(get(listen, "/api/hello", &auth).status, 200);

    // SIGTERM: a clean stop.
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(
        status.success(),
        "exit {status:?}; stderr: {}",
        server.stderr()
    );
    assert!(server.stderr().contains("stopped"), "{}", server.stderr());
    assert!(
        http(listen, "GET", "/healthz", &[]).is_err(),
        "still listening after exit"
    );
}

#[test]
fn serve_with_a_bad_config_does_not_start() {
    let env = Env::new("serve-bad", "[server]\nlisten = \"127.0.0.1:notaport\"\n");
    let out = env.run(&["serve"]);
    let out = out.fails_with("line 5");
    assert!(out.stderr.contains("notaport"), "{out:#?}");
}
