//! `gatehouse copy --from URL --to URL` (design §5): a single node's SQLite store, filled
//! through the CLI and a running `gatehouse serve`, moves to PostgreSQL (a schema of its
//! own) without losing a record, and what the old node issued keeps working on the new one.
//! Bad input exits 2 with one line and changes nothing.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gatehouse_core::totp::{self, Totp};
use serde_json::json;
use sqlx::{AssertSqlSafe, Connection as _, PgConnection};

use crate::digest::{curl, have_curl, htdigest_line};
use crate::identity::{Tokens, body, totp_now};
use crate::support::send;
use crate::support::{Env, Output, Running, Upstream, basic, free_addr, http, poll, run_in};

/// A gateway accepting every scheme the records of the test prove.
fn config(listen: SocketAddr, upstream: SocketAddr) -> String {
    format!(
        r#"[server]
listen = "{listen}"
realm = "api"
digest_algorithms = ["MD5"]

[upstream]
url = "http://{upstream}"

[defaults]
access = "authenticated"
auth = ["bearer", "basic", "api_key", "digest"]
"#
    )
}

fn sqlite_url(env: &Env) -> String {
    format!("sqlite://{}", env.dir.path.join("g.db").display())
}

/// `gatehouse serve` on `env`, once `/healthz` answers.
fn serve(env: &Env, addr: SocketAddr) -> Running {
    let config = env.config.to_str().expect("utf-8 temp path").to_owned();
    let server = Running::spawn(&env.dir.path, &["serve", "--config", &config]);
    poll(Duration::from_secs(20), "/healthz to answer 200", || {
        http(addr, "GET", "/healthz", &[])
            .ok()
            .filter(|r| r.status == 200)
    });
    server
}

/// SIGTERM, so the audit trail is flushed to the store before the process exits.
fn stop(mut server: Running) {
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{}", server.stderr());
}

/// What the CLI shows of a store: users, API keys, sessions, the audit trail, signing keys.
fn snapshot(env: &Env) -> Vec<String> {
    [
        &["user", "list", "--json"][..],
        &["key", "list", "--json"],
        &["session", "list", "--all", "--json"],
        &["audit", "query", "--json", "--limit", "100000"],
        &["keys", "list"],
    ]
    .iter()
    .map(|args| env.run(args).ok().stdout)
    .collect()
}

/// The last line of a successful command (where keys and tokens are printed).
fn last_line(out: Output) -> String {
    let out = out.ok();
    out.stdout
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// `POST /auth/login`: 401 `mfa_required`, and the `mfa_token` to finish with.
fn mfa_token(addr: SocketAddr, user: &str, password: &str) -> String {
    let r = send(
        addr,
        "/auth/login",
        &[],
        Some(&json!({"username": user, "password": password})),
    );
    assert_eq!(r.error().as_deref(), Some("mfa_required"), "{r:#?}");
    body(&r)["mfa_token"]
        .as_str()
        .expect("mfa_token")
        .to_owned()
}

fn post_mfa(addr: SocketAddr, token: &str, code: &str) -> crate::support::Response {
    send(
        addr,
        "/auth/mfa",
        &[],
        Some(&json!({"mfa_token": token, "code": code})),
    )
}

/// The copy's exit status and stderr, asserting a bad-input exit: 2 and one `error:` line.
#[track_caller]
fn assert_bad_input(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(2), "{out:#?}");
    assert_eq!(out.stderr.lines().count(), 1, "one line: {out:#?}");
    assert!(
        out.stderr.starts_with("error: ") && out.stderr.contains(needle),
        "{needle:?}: {out:#?}"
    );
}

#[test]
fn bad_input_exits_2_with_one_line_and_changes_nothing() {
    let env = Env::new("copy-bad", "");
    env.add_user("alice", "alice-password", &["editor"], None);
    let src = sqlite_url(&env);
    let dir = &env.dir.path;
    let out = run_in(
        dir,
        &["copy", "--from", "mysql://u:hunter2@db/x", "--to", &src],
        "",
    );
    assert_bad_input(&out, "invalid store url");
    assert!(!out.stderr.contains("hunter2"), "{out:#?}");
    let out = run_in(
        dir,
        &[
            "copy",
            "--from",
            &src,
            "--to",
            "postgres://u:hunter2@[::1/x",
        ],
        "",
    );
    assert_bad_input(&out, "malformed postgres url");
    assert!(!out.stderr.contains("hunter2"), "{out:#?}");
    assert_bad_input(
        &run_in(dir, &["copy", "--from", &src, "--to", &src], ""),
        "the same store",
    );
    assert_bad_input(
        &run_in(dir, &["copy", "--from", &src, "--to", "sqlite:g.db"], ""),
        "the same store",
    );
    assert_bad_input(
        &run_in(
            dir,
            &["copy", "--from", &src, "--to", "sqlite::memory:"],
            "",
        ),
        "in-memory",
    );
    let missing = format!("sqlite://{}", dir.join("missing.db").display());
    let out = run_in(
        dir,
        &["copy", "--from", &missing, "--to", "sqlite://new.db"],
        "",
    );
    assert_bad_input(&out, "not found");
    assert!(!dir.join("missing.db").exists() && !dir.join("new.db").exists());

    // A target that holds records is refused and keeps them.
    let other = Env::new("copy-bad-target", "");
    other.add_user("zed", "zed-password", &[], None);
    let before = snapshot(&other);
    let out = run_in(
        dir,
        &["copy", "--from", &src, "--to", &sqlite_url(&other)],
        "",
    );
    assert_bad_input(&out, "store is not empty (users: 1)");
    assert_eq!(snapshot(&other), before);
    let out = run_in(
        dir,
        &["copy", "--from", &src, "--to", "sqlite://copy.db"],
        "",
    )
    .ok();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.split_whitespace().eq(["users", "1"])),
        "{out:#?}"
    );
}

/// A schema of its own in the database of `GATEHOUSE_TEST_POSTGRES_URL`, dropped on drop.
struct Schema {
    base: String,
    name: String,
}

impl Schema {
    fn create(base: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "gh_cli_copy_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        // `name` is [a-z0-9_] only.
        run_sql(base, &format!("CREATE SCHEMA \"{name}\"")).expect("create the test schema");
        Self {
            base: base.to_owned(),
            name,
        }
    }

    /// The test URL with this schema as `search_path` (the form `[store] url` takes).
    fn url(&self) -> String {
        let sep = if self.base.contains('?') { "&" } else { "?" };
        format!("{}{sep}options=-c%20search_path%3D{}", self.base, self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        if let Err(e) = run_sql(&self.base, &sql) {
            eprintln!("could not drop test schema {}: {e}", self.name);
        }
    }
}

/// Runs one statement on `url` from a runtime of its own.
fn run_sql(url: &str, sql: &str) -> Result<(), sqlx::Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut conn = PgConnection::connect(url).await?;
        sqlx::query(AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await?;
        conn.close().await
    })
}

#[test]
fn a_sqlite_install_copied_to_postgres_keeps_every_record() {
    let Some(base) =
        gatehouse_testkit::POSTGRES.found(gatehouse_testkit::env("GATEHOUSE_TEST_POSTGRES_URL"))
    else {
        return;
    };
    if !have_curl() {
        return;
    }
    let upstream = Upstream::start();

    // --- a single node on SQLite, filled through the CLI and by serving ---------------
    let src_addr = free_addr();
    let src = Env::new("copy-src", &config(src_addr, upstream.addr));
    src.add_user("alice", "alice-password", &["editor"], Some("acme"));
    let token = last_line(src.run(&["token", "issue", "alice"]));
    src.add_user("bob", "bob-password", &[], None);
    src.run(&["user", "suspend", "bob", "--reason", "left the company"])
        .ok();
    // Attributes (issue 13) travel with the user; `user list --json` shows them.
    src.run(&[
        "user",
        "set",
        "alice",
        "email_verified=true",
        r#"groups=["beta"]"#,
    ])
    .ok();
    src.add_user("carol", "carol-password", &[], None);
    let enrolled = src.run(&["user", "mfa", "enroll", "carol"]).ok();
    let secret = enrolled
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("secret: "))
        .expect("a secret line")
        .to_owned();
    let htdigest = src.dir.write(
        "users.htdigest",
        &format!("{}\n", htdigest_line("dave", "api", "dave-password")),
    );
    src.run(&["import-htdigest", htdigest.to_str().expect("utf-8 path")])
        .ok();
    let key = last_line(src.run(&["key", "create", "--user", "alice", "--scope", "orders:read"]));

    let server = serve(&src, src_addr);
    let login = send(
        src_addr,
        "/auth/login",
        &[],
        Some(&json!({"username": "alice", "password": "alice-password"})),
    );
    let alice = Tokens::from_response(&login);
    let (code, step) = totp_now(&secret);
    let carol = post_mfa(
        src_addr,
        &mfa_token(src_addr, "carol", "carol-password"),
        &code,
    );
    assert_eq!(carol.status, 200, "{carol:#?}");
    let refused = http(src_addr, "GET", "/api/x", &[]).expect("GET");
    assert_eq!(refused.status, 401);
    let bob = basic("bob", "bob-password");
    let suspended = http(src_addr, "GET", "/api/x", &[("Authorization", &bob)]).expect("GET");
    assert_eq!(suspended.error().as_deref(), Some("account_suspended"));
    stop(server);
    let before = snapshot(&src);
    assert!(
        before[0].contains(r#""email_verified":true"#),
        "{}",
        before[0]
    );
    assert_eq!(before[2].lines().count(), 2, "two sessions: {}", before[2]);
    assert!(before[3].lines().count() >= 2, "audit: {}", before[3]);

    // --- copied into PostgreSQL ------------------------------------------------------
    let schema = Schema::create(&base);
    let dst_addr = free_addr();
    let dst = Env::new("copy-dst", "");
    std::fs::write(
        &dst.config,
        format!(
            "[store]\nurl = \"{}\"\n\n{}",
            schema.url(),
            config(dst_addr, upstream.addr)
        ),
    )
    .expect("write config");
    let copy = ["copy", "--from", &sqlite_url(&src), "--to", &schema.url()];
    let out = run_in(Path::new(&src.dir.path), &copy, "").ok();
    let rows = |table: &str| -> u64 {
        out.stdout
            .lines()
            .find_map(|l| {
                let mut words = l.split_whitespace();
                (words.next() == Some(table)).then(|| words.next()?.parse().ok())?
            })
            .unwrap_or_else(|| panic!("no count for {table}: {out:#?}"))
    };
    assert_eq!(rows("users"), 4);
    assert_eq!(rows("api_keys"), 1);
    assert!(
        rows("signing_keys") >= 2,
        "a signing key and the master secret"
    );
    assert_eq!(rows("sessions"), 2);
    assert_eq!(rows("refresh_tokens"), 2);
    assert_eq!(rows("digest_secrets"), 1);
    assert_eq!(rows("audit"), before[3].lines().count() as u64);
    assert_eq!(snapshot(&dst), before, "the cluster's store lists the same");

    // A second copy into the now non-empty target changes nothing.
    let out = run_in(Path::new(&src.dir.path), &copy, "");
    assert_bad_input(&out, "store is not empty (users: 4, api_keys: 1");
    assert_eq!(snapshot(&dst), before);

    // The token and the API key issued by the old node pass on the new store.
    let bearer = format!("Authorization: Bearer {token}");
    let out = dst
        .run(&["explain", "GET", "/api/orders", "-H", &bearer])
        .ok();
    assert!(
        out.stdout.contains("answer: forwarded") && out.stdout.contains("X-Gatehouse-User: alice"),
        "{out:#?}"
    );
    let api_key = format!("X-API-Key: {key}");
    let out = dst
        .run(&["explain", "GET", "/api/orders", "-H", &api_key])
        .ok();
    assert!(
        out.stdout.contains("answer: forwarded")
            && out.stdout.contains("X-Gatehouse-Auth: api_key"),
        "{out:#?}"
    );

    // --- a node of the cluster, on PostgreSQL ------------------------------------------
    let server = serve(&dst, dst_addr);
    let auth = format!("Bearer {}", alice.access);
    let r = http(dst_addr, "GET", "/api/x", &[("Authorization", &auth)]).expect("GET");
    assert_eq!(r.body, "upstream saw alice", "{r:#?}");
    // The refresh token of the login on the old node rotates on the new one.
    let r = send(
        dst_addr,
        "/auth/refresh",
        &[],
        Some(&json!({"refresh_token": alice.refresh})),
    );
    Tokens::from_response(&r);
    let r = http(dst_addr, "GET", "/api/x", &[("Authorization", &bob)]).expect("GET");
    assert_eq!(r.error().as_deref(), Some("account_suspended"), "{r:#?}");
    assert_eq!(
        curl(dst_addr, "dave", "dave-password"),
        (200, "upstream saw dave".to_owned())
    );
    // Carol's secret still decrypts (the master secret came along), and the code she used
    // on the old node is still spent (RFC 6238 §5.2); a later one passes.
    let r = post_mfa(
        dst_addr,
        &mfa_token(dst_addr, "carol", "carol-password"),
        &code,
    );
    assert_eq!(r.error().as_deref(), Some("invalid_credentials"), "{r:#?}");
    let (_, now) = totp_now(&secret);
    let later =
        Totp::new(&totp::base32_decode(&secret).expect("base32")).code_at(now.max(step + 1));
    let r = post_mfa(
        dst_addr,
        &mfa_token(dst_addr, "carol", "carol-password"),
        &format!("{later:06}"),
    );
    assert_eq!(r.status, 200, "{r:#?}");
    stop(server);
    drop(schema);
}
