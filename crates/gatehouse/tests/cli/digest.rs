//! HTTP Digest through the binary: `user add --digest`, `user digest enable|disable`,
//! `import-htdigest`, then `curl --digest` against a running `gatehouse serve`.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use gatehouse_core::digest::{Algorithm, ha1};
use gatehouse_testkit::{CURL, program};

use crate::support::{Env, Running, Upstream, free_addr, http, poll};

/// Whether curl is here; a test that needs it returns when not (after saying so).
pub fn have_curl() -> bool {
    CURL.found(program("curl")).is_some()
}

fn config(listen: SocketAddr, upstream: SocketAddr, algorithms: &str) -> String {
    format!(
        r#"[server]
listen = "{listen}"
realm = "api"
digest_algorithms = {algorithms}

[upstream]
url = "http://{upstream}"

[[route]]
name = "digest"
path = "/**"
auth = ["digest", "basic"]
"#
    )
}

/// An Apache htdigest line: `user:realm:MD5(user:realm:password)`.
pub fn htdigest_line(user: &str, realm: &str, password: &str) -> String {
    format!(
        "{user}:{realm}:{}",
        ha1(Algorithm::Md5, user, realm, password)
    )
}

/// `curl --digest -u user:password`; the status code and the body.
pub fn curl(addr: SocketAddr, user: &str, password: &str) -> (u16, String) {
    let url = format!("http://{addr}/hello");
    let curl = program("curl").expect("curl (the test checks `have_curl` first)");
    let out = Command::new(curl)
        .args([
            "-sS",
            "--noproxy",
            "*",
            "--max-time",
            "20",
            "-w",
            "\n%{http_code}",
        ])
        .args(["--digest", "-u", &format!("{user}:{password}"), &url])
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.parse().unwrap_or(0), body.to_owned())
}

#[test]
fn import_htdigest_reports_every_bad_line_and_imports_nothing() {
    let env = Env::new("htdigest-bad", "[server]\nrealm = \"api\"\n");
    let good = htdigest_line("ann", "api", "pw");
    let file = env.dir.write(
        "users.htdigest",
        &format!("{good}\nbroken-line\nbob:api:nothex\n{good}\n"),
    );
    let out = env
        .run(&["import-htdigest", file.to_str().unwrap()])
        .fails_with("nothing was imported");
    for needle in ["line 2:", "line 3:", "line 4:", "already defined on line 1"] {
        assert!(out.stderr.contains(needle), "{needle}: {out:#?}");
    }
    assert!(
        !out.stderr.contains(&good[8..]),
        "an HA1 was echoed: {out:#?}"
    );
    assert!(env.users().is_empty(), "{:#?}", env.users());
}

#[test]
fn digest_users_from_the_cli_and_htdigest_get_through_curl() {
    if !have_curl() {
        return;
    }
    let upstream = Upstream::start();
    let listen = free_addr();
    let env = Env::new(
        "digest",
        &config(listen, upstream.addr, r#"["SHA-256", "MD5"]"#),
    );

    // `user add --digest` stores both algorithms; plain `user add` stores none.
    let out = env
        .run_stdin(
            &["user", "add", "alice", "--digest", "--password-stdin"],
            "alice-pw\n",
        )
        .ok();
    assert!(
        out.stdout
            .contains("enabled Digest for `alice` in realm `api`"),
        "{out:#?}"
    );
    env.add_user("bob", "bob-pw", &[], None);

    // htdigest: one user created (with the given role), one line for an existing user, one
    // for another realm (warned about).
    let file = env.dir.write(
        "users.htdigest",
        &format!(
            "{}\n{}\n{}\n",
            htdigest_line("mufasa", "api", "Circle of Life"),
            htdigest_line("bob", "api", "bob-pw"),
            htdigest_line("zazu", "elsewhere", "zazu-pw"),
        ),
    );
    let out = env
        .run(&["import-htdigest", file.to_str().unwrap(), "--role", "lion"])
        .ok();
    assert!(
        out.stdout
            .contains("imported 3 Digest secret(s) (MD5): created 2 user(s), updated 1"),
        "{out:#?}"
    );
    assert!(
        out.stderr
            .contains("line 3: realm `elsewhere` is not the configured realm `api`"),
        "{out:#?}"
    );
    assert!(
        out.stderr.contains("digest_algorithms = [\"MD5\"]"),
        "{out:#?}"
    );
    let users = env.users();
    let mufasa = users.iter().find(|u| u["name"] == "mufasa").unwrap();
    assert_eq!(mufasa["roles"], serde_json::json!(["lion"]));

    let config_path = env.config.to_str().unwrap().to_owned();
    let mut server = Running::spawn(&env.dir.path, &["serve", "--config", &config_path]);
    poll(Duration::from_secs(20), "/healthz to answer 200", || {
        http(listen, "GET", "/healthz", &[])
            .ok()
            .filter(|r| r.status == 200)
    });

    // SHA-256 is offered first: alice (both HA1s) gets through; the imported users, who
    // have only an MD5 HA1, cannot answer SHA-256.
    assert_eq!(
        curl(listen, "alice", "alice-pw"),
        (200, "upstream saw alice".into())
    );
    assert_eq!(curl(listen, "alice", "wrong").0, 401);
    assert_eq!(curl(listen, "mufasa", "Circle of Life").0, 401);

    // `user digest enable` needs the user's own password; `disable` closes Digest at once.
    env.run_stdin(
        &["user", "digest", "enable", "alice", "--password-stdin"],
        "other\n",
    )
    .fails_with("not the password of `alice`");
    env.run(&["user", "digest", "disable", "alice"]).ok();
    assert_eq!(curl(listen, "alice", "alice-pw").0, 401);
    env.run_stdin(
        &["user", "digest", "enable", "alice", "--password-stdin"],
        "alice-pw\n",
    )
    .ok();
    assert_eq!(curl(listen, "alice", "alice-pw").0, 200);
    env.run(&["user", "digest", "disable", "nobody"])
        .fails_with("no user `nobody`");

    // MD5 only (reloaded on SIGHUP): the htdigest users get through too.
    env.write_config(&config(listen, upstream.addr, r#"["MD5"]"#));
    server.signal("HUP");
    poll(Duration::from_secs(5), "the MD5-only challenge", || {
        let r = http(listen, "GET", "/hello", &[]).ok()?;
        let c = r.all("www-authenticate");
        (c.len() == 2 && c[0].contains("algorithm=MD5")).then_some(())
    });
    assert_eq!(
        curl(listen, "mufasa", "Circle of Life"),
        (200, "upstream saw mufasa".into())
    );
    assert_eq!(curl(listen, "mufasa", "circle of life").0, 401);
    assert_eq!(
        curl(listen, "bob", "bob-pw"),
        (200, "upstream saw bob".into())
    );
    assert_eq!(
        curl(listen, "alice", "alice-pw"),
        (200, "upstream saw alice".into())
    );
    // zazu's secret is for realm `elsewhere`: not this gateway's realm.
    assert_eq!(curl(listen, "zazu", "zazu-pw").0, 401);
    assert!(server.alive());
}
