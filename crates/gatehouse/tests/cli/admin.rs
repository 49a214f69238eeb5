//! The admin API of a real `gatehouse serve`: `gatehouse probe` run against the console's
//! own OpenAPI document finds nothing (the admin API answers 401 and 403 correctly), and a
//! key revoked by its full key through the API stops working on the public port.

use std::time::Duration;

use crate::support::{Env, Running, free_addr, http, poll};

#[test]
fn probe_finds_nothing_in_the_admin_api() {
    let listen = free_addr();
    let admin = free_addr();
    let env = Env::new(
        "admin-probe",
        // The probe's forged and garbage tokens are failed authentications from one address;
        // roomy per-IP budgets keep row 4 from answering 429 before every request is made.
        &format!(
            "[server]\nlisten = \"{listen}\"\nadmin_listen = \"{admin}\"\nrealm = \"api\"\n\
             [throttle]\nfailed_per_ip = {{ max = 100000, per = \"1m\" }}\n\
             failed_tokens_per_ip = {{ max = 100000, per = \"1m\" }}\n"
        ),
    );
    env.add_user("alice", "alice-password", &["admin"], None);
    env.add_user("bob", "bob-password", &["editor"], None);
    let token = |user: &str| {
        let out = env.run(&["token", "issue", user]).ok().stdout;
        out.lines().last().unwrap().to_owned()
    };
    let (alice, bob) = (token("alice"), token("bob"));
    let config = env.config.to_str().unwrap().to_owned();
    let _server = Running::spawn(&env.dir.path, &["serve", "--config", &config]);
    let doc = poll(Duration::from_secs(20), "the OpenAPI document", || {
        http(admin, "GET", "/admin/api/openapi.json", &[])
            .ok()
            .filter(|r| r.status == 200)
    });
    let spec_doc = env.dir.write("admin-openapi.json", &doc.body);
    let spec = env.dir.write(
        "probe.toml",
        &format!(
            "target = \"http://{admin}\"\n\
             [personas.admin]\nheaders = {{ Authorization = \"Bearer {alice}\" }}\n\
             [personas.user]\nheaders = {{ Authorization = \"Bearer {bob}\" }}\n"
        ),
    );
    let out = crate::support::run_in(
        &env.dir.path,
        &[
            "probe",
            "--spec",
            spec.to_str().unwrap(),
            "--openapi",
            spec_doc.to_str().unwrap(),
        ],
        "",
    );
    assert!(
        out.status.success(),
        "the probe found something: {}\n{}",
        out.stdout,
        out.stderr
    );
    // Nothing at all: the operations whose path names a user, key, session, lock or alert
    // that does not exist (on purpose: the administrator persona changes nothing) say so
    // with `x-probe-absent`, so their 404 behind the guard is the expected answer.
    assert!(out.stdout.contains(" 0 finding(s): "), "{}", out.stdout);
    assert!(out.stdout.contains("(0 incomplete)"), "{}", out.stdout);
    assert!(out.stdout.contains("PASS"), "{}", out.stdout);
    // It asked every documented operation, and as an administrator it changed nothing.
    assert!(out.stdout.contains("26 endpoint(s)"), "{}", out.stdout);
    let users = env.users();
    assert_eq!(users.len(), 2, "{users:?}");
    assert!(users.iter().all(|u| u["status"] == "active"), "{users:?}");
}
