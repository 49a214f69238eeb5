//! `gatehouse serve` writes the audit trail and flushes it on SIGTERM; `gatehouse audit
//! tail|query` reads it back; `/metrics` answers on the admin port only.

use std::time::Duration;

use crate::support::{Env, Running, Upstream, basic, free_addr, http, json_lines, poll};

#[test]
fn serve_audits_refusals_flushes_on_sigterm_and_audit_commands_read_them() {
    let upstream = Upstream::start();
    let listen = free_addr();
    let admin = free_addr();
    let env = Env::new("audit", "");
    let file = env.dir.path.join("audit.jsonl");
    env.write_config(&format!(
        r#"[server]
listen = "{listen}"
admin_listen = "{admin}"

[upstream]
url = "http://{}"

[audit]
file = "{}"

[defaults]
access = "authenticated"
auth = ["basic"]

[[route]]
name = "admin"
path = "/api/admin/**"
auth = ["basic"]
roles = ["admin"]
"#,
        upstream.addr,
        file.display()
    ));
    env.add_user("alice", "alice-password", &["editor"], None);
    let config = env.config.to_str().unwrap().to_owned();
    let mut server = Running::spawn(&env.dir.path, &["serve", "--config", &config]);
    poll(Duration::from_secs(20), "/healthz to answer 200", || {
        http(listen, "GET", "/healthz", &[])
            .ok()
            .filter(|r| r.status == 200)
    });
    let alice = basic("alice", "alice-password");
    let r = http(listen, "GET", "/api/hello", &[]).unwrap();
    assert_eq!(r.status, 401);
    let r = http(listen, "GET", "/api/admin/x", &[("Authorization", &alice)]).unwrap();
    assert_eq!(r.status, 403);
    let r = http(listen, "GET", "/api/hello", &[("Authorization", &alice)]).unwrap();
    assert_eq!(r.status, 200);

    let m = http(admin, "GET", "/metrics", &[]).unwrap();
    assert_eq!(m.status, 200);
    assert!(
        m.body.contains(
            "gatehouse_decisions_total{route=\"admin\",status=\"403\",reason=\"insufficient_role\"} 1"
        ),
        "{}",
        m.body
    );
    assert_ne!(http(listen, "GET", "/metrics", &[]).unwrap().status, 200);

    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{}", server.stderr());

    // The three refusals (the public `/metrics` probe is one) reached the store and the
    // file before the process exited.
    let all = json_lines(&env.run(&["audit", "tail", "--json"]).ok().stdout);
    assert_eq!(all.len(), 3, "{all:#?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 3);
    let denied = json_lines(
        &env.run(&[
            "audit", "query", "--since", "1h", "--status", "403", "--json",
        ])
        .ok()
        .stdout,
    );
    assert_eq!(denied.len(), 1, "{denied:#?}");
    assert_eq!(denied[0]["error"], "insufficient_role");
    assert_eq!(denied[0]["principal"], "alice");
    assert_eq!(denied[0]["path"], "/api/admin/x");
    let by_user = env.run(&["audit", "query", "--user", "alice"]).ok().stdout;
    assert_eq!(by_user.lines().count(), 1, "{by_user}");
    assert!(by_user.contains("insufficient_role"), "{by_user}");
    let none = env
        .run(&["audit", "query", "--reason", "token_expired"])
        .ok()
        .stdout;
    assert!(none.trim().is_empty(), "{none}");
    env.run(&["audit", "query", "--since", "last tuesday"])
        .fails_with("--since");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("alice-password"));
}
