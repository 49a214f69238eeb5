//! Several nodes (design §5, issue 6): three real `gatehouse serve` processes on loopback
//! sharing one PostgreSQL and one Redis, as behind any load balancer.
//!
//! The test starts a PostgreSQL server and a Redis server of its own (on free ports, in a
//! temp dir) so that it can kill and restart them without touching the machine's shared
//! services. It shows, printing what it measures:
//! - a user, an API key and a token made through one node work on the others;
//! - a logout, a `session revoke` and a `user suspend` on one node are enforced by the other
//!   two (the time each took is printed);
//! - failed logins count across nodes: failures spread over two nodes lock the client on
//!   the third; so does the per-address budget of failed token and key verifications
//!   (`failed_tokens_per_ip`, issue 21), which still lets the address's known-good tokens
//!   and keys through on every node;
//! - Redis killed and brought back: revocations made meanwhile still reach every node
//!   (through the store), none is lost, and fan-out resumes;
//! - PostgreSQL stopped: self-contained tokens keep working, everything that needs the
//!   store answers 503 `auth_unavailable` (row 22) — never 401 or 403 — and the nodes
//!   recover by themselves when it is back.
//!
//! Needs PostgreSQL's server binaries (`initdb`, `pg_ctl`; Debian's `postgresql`) and
//! `redis-server`. Without them it prints `skipped: … is not installed (…)`, unless
//! `GATEHOUSE_TEST_REQUIRE=all` or `GATEHOUSE_TEST_CLUSTER=required` (CI sets both), where
//! their absence fails the test.

#[allow(dead_code)]
#[path = "cli/support.rs"]
mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gatehouse_testkit::{POSTGRES_SERVER, REDIS_SERVER};
use serde_json::{Value, json};
use support::{Output, Response, Running, TempDir, Upstream, basic, free_addr, http, poll};

// --- private servers --------------------------------------------------------------------

/// The PostgreSQL server binaries: `GATEHOUSE_TEST_PG_BIN`, else `initdb` on `PATH`, else
/// the newest of Debian's `/usr/lib/postgresql/<version>/bin` (not on `PATH`).
fn pg_bin_dir() -> Option<PathBuf> {
    if let Some(d) = gatehouse_testkit::env("GATEHOUSE_TEST_PG_BIN") {
        return Some(PathBuf::from(d));
    }
    if let Some(dir) = gatehouse_testkit::program("initdb")
        .and_then(|p| p.parent().map(PathBuf::from))
        .filter(|d| d.join("pg_ctl").exists())
    {
        return Some(dir);
    }
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, d)| d)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A PostgreSQL server of the test's own: `initdb` into a temp dir, `pg_ctl` to start and
/// stop it. As root it runs as the `postgres` user (the server refuses to run as root).
struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    root: bool,
    /// Removed after `Drop` has stopped the server (fields drop after `drop` runs).
    _tmp: TempDir,
}

impl Postgres {
    fn tool(&self, name: &str) -> Command {
        let exe = self.bin.join(name);
        if self.root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn start_new(bin: PathBuf) -> Self {
        let tmp = TempDir::new("cluster-pg");
        let dir = tmp.path.join("pg");
        std::fs::create_dir_all(&dir).expect("pg dir");
        let root = is_root();
        if root {
            let st = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(st.success(), "chown the PostgreSQL dir to postgres");
        }
        let pg = Self {
            bin,
            dir,
            port: free_addr().port(),
            root,
            _tmp: tmp,
        };
        let out = pg
            .tool("initdb")
            .arg("-D")
            .arg(pg.dir.join("data"))
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.start();
        pg
    }

    fn start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.dir.display()
        );
        let out = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-o", &opts, "-w", "-t", "30", "-l"])
            .arg(self.dir.join("log"))
            .arg("start")
            .stdin(Stdio::null())
            .output()
            .expect("run pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
        );
    }

    fn stop(&self, mode: &str) {
        let _ = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", mode, "-w", "-t", "30", "stop"])
            .stdin(Stdio::null())
            .output();
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop("immediate");
    }
}

/// A Redis server of the test's own, nothing on disk; killed and restarted on the same port.
struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    fn start_new() -> Self {
        let mut r = Self {
            port: free_addr().port(),
            child: None,
        };
        r.start();
        r
    }

    fn start(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        poll(Duration::from_secs(10), "redis-server to listen", || {
            std::net::TcpStream::connect(addr).ok()
        });
    }

    /// SIGKILL: the server dies without a goodbye, as in a crash.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

// --- the nodes --------------------------------------------------------------------------

struct Node {
    name: &'static str,
    addr: SocketAddr,
    admin: SocketAddr,
    config: PathBuf,
    process: Running,
}

impl Node {
    /// Waits until the node answers `/healthz` (it exiting, or a minute passing, fails).
    fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            if http(self.addr, "GET", "/healthz", &[]).is_ok_and(|r| r.status == 200) {
                return;
            }
            assert!(
                self.process.alive(),
                "node {} exited:\n{}",
                self.name,
                self.process.stderr()
            );
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "node {} did not start:\n{}",
                self.name,
                self.process.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

struct Cluster {
    tmp: TempDir,
    nodes: Vec<Node>,
    _upstream: Upstream,
}

const PASSWORD: &str = "correct horse battery";
/// Failed authentications per client IP before the lock (`[throttle] failed_per_ip`).
const IP_MAX: u32 = 6;
/// Failed token / key verifications per client IP before the lock
/// (`[throttle] failed_tokens_per_ip`).
const TOKENS_MAX: u32 = 6;

impl Cluster {
    fn start(tmp: TempDir, pg: &Postgres, redis: &Redis) -> Self {
        let upstream = Upstream::start();
        let prefix = format!("gh-cluster-test-{}", std::process::id());
        let mut nodes = Vec::new();
        for name in ["a", "b", "c"] {
            let addr = free_addr();
            let admin = free_addr();
            let text = format!(
                r#"[server]
listen = "{addr}"
admin_listen = "{admin}"
realm = "api"
trusted_proxies = ["127.0.0.1/32"]

[store]
url = "{store}"

[cluster]
redis_url = "{redis}"
key_prefix = "{prefix}"

[upstream]
url = "http://{upstream}"

[throttle]
failed_per_ip = {{ max = {IP_MAX}, per = "10m" }}
failed_per_account = {{ max = 1000, per = "15m" }}
failed_tokens_per_ip = {{ max = {TOKENS_MAX}, per = "10m" }}
tarpit = "0s"

[defaults]
access = "authenticated"
auth = ["bearer", "basic", "api_key"]

# Refused for everyone (row 2): only the console section sends requests here.
[[route]]
name = "chart"
path = "/chart/**"
access = "deny"

# No periodic key sync during the test: a node learns a signing key it has not loaded only
# from the forced re-read an unknown `kid` triggers (or at start).
[tokens]
key_sync = "1h"
"#,
                store = pg.url(),
                redis = redis.url(),
                upstream = upstream.addr,
            );
            let config = tmp.write(&format!("{name}.toml"), &text);
            let path = config.to_str().expect("utf-8 temp path").to_owned();
            let process = Running::spawn(&tmp.path, &["serve", "--config", &path]);
            nodes.push(Node {
                name,
                addr,
                admin,
                config,
                process,
            });
        }
        for n in &mut nodes {
            n.wait_ready();
        }
        Self {
            tmp,
            nodes,
            _upstream: upstream,
        }
    }

    /// Stops node `i` (SIGTERM) and starts it again with the same config.
    fn restart(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.process.signal("TERM");
        n.process.wait_exit(Duration::from_secs(30));
        let path = n.config.to_str().expect("utf-8 temp path").to_owned();
        n.process = Running::spawn(&self.tmp.path, &["serve", "--config", &path]);
        n.wait_ready();
    }

    /// The `kid`s node `i` publishes at `/.well-known/jwks.json`.
    fn jwks_kids(&self, i: usize) -> Vec<String> {
        let r = http(self.nodes[i].addr, "GET", "/.well-known/jwks.json", &[])
            .unwrap_or_else(|e| panic!("JWKS of node {}: {e}", self.nodes[i].name));
        let v: Value = serde_json::from_str(&r.body).expect("JWKS JSON");
        v["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().expect("kid").to_owned())
            .collect()
    }

    /// The signing keys `gatehouse keys list` shows: (kid, state).
    fn keys_list(&self) -> Vec<(String, String)> {
        let out = self.cli(0, &["keys", "list"], "");
        assert!(out.status.success(), "keys list: {out:#?}");
        out.stdout
            .lines()
            .skip(1)
            .filter_map(|l| {
                let mut cols = l.split_whitespace();
                let kid = cols.next()?.to_owned();
                Some((kid, l.rsplit("  ").next().unwrap_or("").trim().to_owned()))
            })
            .collect()
    }

    /// Runs `gatehouse ARGS --config <node's config>`.
    fn cli(&self, node: usize, args: &[&str], stdin: &str) -> Output {
        let config = self.nodes[node].config.to_str().expect("utf-8").to_owned();
        let mut all = args.to_vec();
        all.extend(["--config", &config]);
        support::run_in(&self.tmp.path, &all, stdin)
    }

    fn get(&self, node: usize, headers: &[(&str, &str)]) -> Response {
        let n = &self.nodes[node];
        http(n.addr, "GET", "/api/orders", headers)
            .unwrap_or_else(|e| panic!("GET on node {}: {e}", n.name))
    }

    fn post(&self, node: usize, path: &str, headers: &[(&str, &str)], body: &Value) -> Response {
        support::send(self.nodes[node].addr, path, headers, Some(body))
    }

    /// `POST /auth/login` on `node`: (access token, refresh token).
    fn login(&self, node: usize, user: &str) -> (String, String) {
        let r = self.post(
            node,
            "/auth/login",
            &[],
            &json!({"username": user, "password": PASSWORD}),
        );
        assert_eq!(r.status, 200, "login as {user} on node {node}: {r:#?}");
        let v: Value = serde_json::from_str(&r.body).expect("JSON tokens");
        (
            v["access_token"].as_str().expect("access_token").to_owned(),
            v["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_owned(),
        )
    }

    fn add_user(&self, node: usize, name: &str) {
        let out = self.cli(
            node,
            &["user", "add", name, "--password-stdin", "--role", "staff"],
            &format!("{PASSWORD}\n"),
        );
        assert!(out.status.success(), "user add {name}: {out:#?}");
    }

    /// Polls `GET` with `headers` on every node in `on` until each answers `status` with
    /// `error`; returns how long the slowest took, measured from `since`.
    fn until_all(
        &self,
        on: &[usize],
        headers: &[(&str, &str)],
        status: u16,
        error: Option<&str>,
        since: Instant,
        limit: Duration,
    ) -> Duration {
        let mut slowest = Duration::ZERO;
        for &i in on {
            let r = loop {
                let r = self.get(i, headers);
                if r.status == status && r.error().as_deref() == error {
                    break r;
                }
                assert!(
                    since.elapsed() < limit,
                    "node {} still answers {} {:?} after {limit:?} (wanted {status} {error:?}):\n{}",
                    self.nodes[i].name,
                    r.status,
                    r.error(),
                    self.nodes[i].process.stderr()
                );
                std::thread::sleep(Duration::from_millis(5));
            };
            drop(r);
            slowest = slowest.max(since.elapsed());
        }
        slowest
    }

    /// The value of a metric line on `node`'s admin port, if present.
    fn metric(&self, node: usize, name: &str) -> Option<f64> {
        let r = http(self.nodes[node].admin, "GET", "/metrics", &[]).ok()?;
        r.body.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == name).then(|| v.trim().parse().ok())?
        })
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[test]
fn three_nodes_share_users_revocations_throttling_and_survive_outages() {
    let Some(pg_bin) = POSTGRES_SERVER.found(pg_bin_dir()) else {
        return;
    };
    if !REDIS_SERVER.present(gatehouse_testkit::program("redis-server").is_some()) {
        return;
    }
    let tmp = TempDir::new("cluster");
    let pg = Postgres::start_new(pg_bin);
    let mut redis = Redis::start_new();
    let mut cluster = Cluster::start(tmp, &pg, &redis);
    let all = [0, 1, 2];

    // --- one signing key after a cold start; a newer key is honoured at once -------------
    // The three nodes started together on an empty database: they agreed on one key.
    let keys = cluster.keys_list();
    assert_eq!(
        keys.len(),
        1,
        "one signing key after a cold start: {keys:?}"
    );
    let first_kid = keys[0].0.clone();
    for i in all {
        assert_eq!(
            cluster.jwks_kids(i),
            std::slice::from_ref(&first_kid),
            "node {i}"
        );
    }
    // A key created after every node loaded theirs: `keys rotate`, then node a restarted so
    // that it signs with the new key while b and c (no periodic sync, `key_sync = "1h"`)
    // still hold only the old one.
    let rotated = cluster.cli(0, &["keys", "rotate"], "");
    assert!(rotated.status.success(), "{rotated:#?}");
    cluster.restart(0);
    let keys = cluster.keys_list();
    let new_kid = keys
        .iter()
        .find(|(_, state)| state == "active")
        .map(|(kid, _)| kid.clone())
        .expect("an active key after the rotation");
    assert_ne!(new_kid, first_kid);
    for i in [1, 2] {
        assert!(
            !cluster.jwks_kids(i).contains(&new_kid),
            "node {i} has not loaded the new key yet"
        );
    }
    cluster.add_user(0, "dave");
    let (dave, _) = cluster.login(0, "dave");
    let header = dave.split('.').next().expect("JWS header");
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header)
            .expect("base64url header"),
    )
    .expect("JSON header");
    assert_eq!(
        header["kid"],
        Value::from(new_kid.clone()),
        "node a signs with the new key"
    );
    for i in [1, 2] {
        let r = cluster.get(i, &[("Authorization", &bearer(&dave))]);
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "upstream saw dave"),
            "the first request on node {i} with a token of the new key: {r:#?}"
        );
        assert_eq!(
            cluster.metric(i, "gatehouse_signing_key_reloads_total"),
            Some(1.0),
            "node {i} re-read the keys once"
        );
        assert!(cluster.jwks_kids(i).contains(&new_kid), "node {i}");
    }
    println!(
        "one signing key after a cold start; a token of a newer key accepted by b and c on the first request"
    );

    // --- made on one node, works on all ----------------------------------------------
    cluster.add_user(0, "alice");
    cluster.add_user(0, "bob");
    cluster.add_user(0, "carol");
    let key = cluster.cli(0, &["key", "create", "--user", "bob"], "");
    assert!(key.status.success(), "{key:#?}");
    let key = key
        .stdout
        .lines()
        .last()
        .expect("the key")
        .trim()
        .to_owned();
    let alice_basic = basic("alice", PASSWORD);
    for i in all {
        let r = cluster.get(i, &[("Authorization", &alice_basic)]);
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "upstream saw alice"),
            "{r:#?}"
        );
        let r = cluster.get(i, &[("X-API-Key", &key)]);
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "upstream saw bob"),
            "{r:#?}"
        );
    }
    let (access, refresh) = cluster.login(0, "alice");
    for i in all {
        let r = cluster.get(i, &[("Authorization", &bearer(&access))]);
        assert_eq!(r.status, 200, "node {i}: {r:#?}");
    }
    // A refresh token issued by node a rotates on node b.
    let r = cluster.post(
        1,
        "/auth/refresh",
        &[],
        &json!({ "refresh_token": refresh }),
    );
    assert_eq!(r.status, 200, "{r:#?}");
    println!("a user, an API key and a token made through node a work on b and c");

    // --- revocation and suspension on one node, enforced by the others -----------------
    let (access2, _) = cluster.login(0, "alice");
    let auth2 = bearer(&access2);
    let t = Instant::now();
    let r = cluster.post(0, "/auth/logout", &[("Authorization", &auth2)], &json!({}));
    assert!(r.status == 200 || r.status == 204, "{r:#?}");
    let logout = cluster.until_all(
        &[1, 2],
        &[("Authorization", &auth2)],
        401,
        Some("token_revoked"),
        t,
        Duration::from_secs(10),
    );
    println!("logout on node a enforced by b and c after {}", ms(logout));

    let (access3, _) = cluster.login(1, "alice");
    let auth3 = bearer(&access3);
    let t = Instant::now();
    cluster
        .cli(1, &["session", "revoke", "--user", "alice"], "")
        .ok();
    let revoke = cluster.until_all(
        &[0, 2],
        &[("Authorization", &auth3)],
        401,
        Some("token_revoked"),
        t,
        Duration::from_secs(10),
    );
    println!(
        "`session revoke` through node b's config enforced by a and c after {}",
        ms(revoke)
    );

    // bob's Basic pair is verified (and cached) on a and b first: a suspension must reach
    // their caches too. His token dies with his sessions (row 10).
    let bob_basic = basic("bob", PASSWORD);
    for i in [0, 1] {
        assert_eq!(cluster.get(i, &[("Authorization", &bob_basic)]).status, 200);
    }
    let (bob_token, _) = cluster.login(2, "bob");
    let bob_auth = bearer(&bob_token);
    let t = Instant::now();
    cluster
        .cli(2, &["user", "suspend", "bob", "--reason", "test"], "")
        .ok();
    let suspend = cluster.until_all(
        &[0, 1],
        &[("Authorization", &bob_basic)],
        403,
        Some("account_suspended"),
        t,
        Duration::from_secs(10),
    );
    println!(
        "`user suspend` through node c's config enforced by a and b after {}",
        ms(suspend)
    );
    cluster.until_all(
        &[0, 1],
        &[("Authorization", &bob_auth)],
        401,
        Some("token_revoked"),
        t,
        Duration::from_secs(10),
    );
    cluster.cli(2, &["user", "unsuspend", "bob"], "").ok();
    cluster.until_all(
        &all,
        &[("X-API-Key", &key)],
        200,
        None,
        Instant::now(),
        Duration::from_secs(10),
    );

    // --- failed logins count across nodes ------------------------------------------------
    // The nodes trust 127.0.0.1 as a proxy, so X-Forwarded-For names the client.
    let wrong = basic("alice", "wrong password");
    let attacker = [
        ("Authorization", wrong.as_str()),
        ("X-Forwarded-For", "203.0.113.7"),
    ];
    for n in 0..IP_MAX {
        let r = cluster.get((n % 2) as usize, &attacker);
        assert_eq!(r.status, 401, "failure {n} is still a plain 401: {r:#?}");
    }
    // The lock was counted on a and b; c has seen no failure of this client at all.
    let right = [
        ("Authorization", alice_basic.as_str()),
        ("X-Forwarded-For", "203.0.113.7"),
    ];
    let t = Instant::now();
    cluster.until_all(
        &[2, 0, 1],
        &right,
        429,
        Some("too_many_attempts"),
        t,
        Duration::from_secs(5),
    );
    let r = cluster.get(2, &right);
    assert!(r.header("retry-after").is_some(), "{r:#?}");
    // Another client is not affected.
    let other = [
        ("Authorization", alice_basic.as_str()),
        ("X-Forwarded-For", "203.0.113.8"),
    ];
    assert_eq!(cluster.get(2, &other).status, 200);
    println!("{IP_MAX} failures split over nodes a and b lock the client on c too");

    // --- the console: traffic through each node in one chart, within a minute ----------
    // Each node adds its per-minute rollups to the store (every 10 s); the admin stats API
    // of any node reads them all. 3, 5 and 7 refusals on a route nothing else uses.
    let out = cluster.cli(
        0,
        &["user", "add", "root", "--password-stdin", "--role", "admin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "user add root: {out:#?}");
    let (root, _) = cluster.login(1, "root");
    let root = bearer(&root);
    let sent = [3_u64, 5, 7];
    for (i, n) in sent.iter().enumerate() {
        for _ in 0..*n {
            let r = http(cluster.nodes[i].addr, "GET", "/chart/x", &[])
                .unwrap_or_else(|e| panic!("GET /chart/x on node {i}: {e}"));
            assert_eq!(r.error().as_deref(), Some("forbidden_path"), "{r:#?}");
        }
    }
    let want: u64 = sent.iter().sum();
    let t = Instant::now();
    for i in [2, 0, 1] {
        let admin = cluster.nodes[i].admin;
        poll(
            Duration::from_secs(60),
            "the chart to show every node's refusals",
            || {
                let r = http(
                    admin,
                    "GET",
                    "/admin/api/stats?range=hour&route=chart",
                    &[("Authorization", &root)],
                )
                .ok()?;
                assert_eq!(r.status, 200, "stats on node {i}: {r:#?}");
                let v: Value = serde_json::from_str(&r.body).expect("stats JSON");
                let counts: Vec<(u64, String, u64)> = v["buckets"]
                    .as_array()
                    .expect("buckets")
                    .iter()
                    .flat_map(|b| b["counts"].as_array().expect("counts").iter())
                    .map(|c| {
                        (
                            c["status"].as_u64().expect("status"),
                            c["reason"].as_str().expect("reason").to_owned(),
                            c["count"].as_u64().expect("count"),
                        )
                    })
                    .collect();
                assert!(
                    counts
                        .iter()
                        .all(|(s, r, _)| *s == 403 && r == "forbidden_path"),
                    "node {i}: {counts:?}"
                );
                let total: u64 = counts.iter().map(|c| c.2).sum();
                assert!(
                    total <= want,
                    "node {i} counts {total} of {want}: {counts:?}"
                );
                (total == want).then_some(())
            },
        );
    }
    println!(
        "{want} refusals sent through three nodes shown by each node's stats API after {}",
        ms(t.elapsed())
    );

    // --- the token-verification budget is shared too (issue 21) ---------------------------
    // Carol's token is known good on every node before her neighbour (same address) floods.
    cluster.add_user(0, "carol2");
    let (carol, _) = cluster.login(0, "carol2");
    let carol = bearer(&carol);
    let neighbour = "203.0.113.9";
    for i in all {
        let r = cluster.get(
            i,
            &[("Authorization", &carol), ("X-Forwarded-For", neighbour)],
        );
        assert_eq!(r.status, 200, "node {i}: {r:#?}");
    }
    let locks_before_on_c = cluster.metric(2, "gatehouse_throttled_keys").unwrap_or(0.0);
    for n in 0..TOKENS_MAX {
        let garbage = bearer(&format!("garbage.token.{n}"));
        let r = cluster.get(
            (n % 2) as usize,
            &[("Authorization", &garbage), ("X-Forwarded-For", neighbour)],
        );
        assert_eq!(
            (r.status, r.error().as_deref()),
            (401, Some("invalid_token")),
            "failed verification {n} is still a 401: {r:#?}"
        );
    }
    // Counted on a and b; c has verified nothing from this address, so the lock it holds
    // came from the others (watched on its lock gauge: polling with a token would count
    // failures on c itself). Then an unknown token is refused there without being verified.
    let t = Instant::now();
    while cluster.metric(2, "gatehouse_throttled_keys").unwrap_or(0.0) < locks_before_on_c + 1.0 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "node c never learnt the lock: {}",
            cluster.nodes[2].process.stderr()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let unknown = bearer("never.seen.token");
    for i in [2, 0, 1] {
        let r = cluster.get(
            i,
            &[("Authorization", &unknown), ("X-Forwarded-For", neighbour)],
        );
        assert_eq!(
            (r.status, r.error().as_deref()),
            (429, Some("too_many_attempts")),
            "node {i}: an unknown token from the address over its budget: {r:#?}"
        );
    }
    // The same address's known-good token and API key pass on every node; its passwords
    // are not locked by token failures (a separate lock); another address is unaffected.
    for i in all {
        let r = cluster.get(
            i,
            &[("Authorization", &carol), ("X-Forwarded-For", neighbour)],
        );
        assert_eq!(r.status, 200, "node {i}: the known token: {r:#?}");
        let r = cluster.get(i, &[("X-API-Key", &key), ("X-Forwarded-For", neighbour)]);
        assert_eq!(r.status, 200, "node {i}: the known key: {r:#?}");
        let r = cluster.get(
            i,
            &[
                ("Authorization", &unknown),
                ("X-Forwarded-For", "203.0.113.10"),
            ],
        );
        assert_eq!(
            (r.status, r.error().as_deref()),
            (401, Some("invalid_token")),
            "node {i}: another address: {r:#?}"
        );
    }
    let r = cluster.get(
        2,
        &[
            ("Authorization", &alice_basic),
            ("X-Forwarded-For", neighbour),
        ],
    );
    assert_eq!(r.status, 200, "a password from the address: {r:#?}");
    println!(
        "{TOKENS_MAX} failed token verifications split over nodes a and b spend the address's budget on c too; its known token and key pass everywhere"
    );

    // --- Redis killed and brought back: no revocation lost -------------------------------
    redis.kill();
    let (access4, _) = cluster.login(0, "alice");
    let auth4 = bearer(&access4);
    for i in all {
        assert_eq!(
            cluster.get(i, &[("Authorization", &auth4)]).status,
            200,
            "Redis down: node {i} still serves"
        );
    }
    let t = Instant::now();
    let r = cluster.post(0, "/auth/logout", &[("Authorization", &auth4)], &json!({}));
    assert!(
        r.status == 200 || r.status == 204,
        "logout with Redis down: {r:#?}"
    );
    let no_redis = cluster.until_all(
        &[1, 2],
        &[("Authorization", &auth4)],
        401,
        Some("token_revoked"),
        t,
        Duration::from_secs(10),
    );
    println!(
        "Redis down: logout on node a enforced by b and c after {} (through PostgreSQL)",
        ms(no_redis)
    );
    redis.start();
    for i in all {
        poll(Duration::from_secs(30), "nodes to see Redis again", || {
            (cluster.metric(i, "gatehouse_cluster_redis_up") == Some(1.0)).then_some(())
        });
    }
    let (access5, _) = cluster.login(2, "alice");
    let auth5 = bearer(&access5);
    let t = Instant::now();
    let r = cluster.post(2, "/auth/logout", &[("Authorization", &auth5)], &json!({}));
    assert!(r.status == 200 || r.status == 204, "{r:#?}");
    let back = cluster.until_all(
        &[0, 1],
        &[("Authorization", &auth5)],
        401,
        Some("token_revoked"),
        t,
        Duration::from_secs(10),
    );
    println!(
        "Redis back: logout on node c enforced by a and b after {}",
        ms(back)
    );
    for auth in [&auth2, &auth3, &auth4, &auth5] {
        cluster.until_all(
            &all,
            &[("Authorization", auth)],
            401,
            Some("token_revoked"),
            Instant::now(),
            Duration::from_secs(1),
        );
    }

    // --- PostgreSQL stopped: 503, never 401/403; recovery by itself ------------------------
    let (alive_token, _) = cluster.login(1, "alice");
    let alive = bearer(&alive_token);
    pg.stop("fast");
    let carol = basic("carol", PASSWORD);
    for i in all {
        let r = cluster.get(i, &[("Authorization", &alive)]);
        assert_eq!(
            r.status, 200,
            "PostgreSQL down: a self-contained token still works on node {i}: {r:#?}"
        );
        // carol never signed in: her password must be checked against the store.
        let t = Instant::now();
        let r = cluster.get(i, &[("Authorization", &carol)]);
        assert_eq!(r.status, 503, "PostgreSQL down: node {i}: {r:#?}");
        assert_eq!(r.error().as_deref(), Some("auth_unavailable"), "{r:#?}");
        assert!(r.header("retry-after").is_some(), "{r:#?}");
        println!(
            "PostgreSQL down: node {} answered 503 auth_unavailable in {}",
            cluster.nodes[i].name,
            ms(t.elapsed())
        );
        let r = cluster.get(i, &[("X-API-Key", &key)]);
        assert_eq!(
            (r.status, r.error().as_deref()),
            (503, Some("auth_unavailable")),
            "{r:#?}"
        );
        let r = cluster.post(
            i,
            "/auth/login",
            &[],
            &json!({"username": "carol", "password": PASSWORD}),
        );
        assert_eq!(
            (r.status, r.error().as_deref()),
            (503, Some("auth_unavailable")),
            "login: {r:#?}"
        );
    }
    pg.start();
    for i in all {
        poll(
            Duration::from_secs(30),
            "node to use PostgreSQL again",
            || (cluster.get(i, &[("Authorization", &carol)]).status == 200).then_some(()),
        );
    }
    // Revocations still flow after the outage.
    let (access6, _) = cluster.login(0, "carol");
    let auth6 = bearer(&access6);
    let t = Instant::now();
    let r = cluster.post(0, "/auth/logout", &[("Authorization", &auth6)], &json!({}));
    assert!(r.status == 200 || r.status == 204, "{r:#?}");
    let after = cluster.until_all(
        &[1, 2],
        &[("Authorization", &auth6)],
        401,
        Some("token_revoked"),
        t,
        Duration::from_secs(10),
    );
    println!(
        "PostgreSQL back: logout on node a enforced by b and c after {}",
        ms(after)
    );
    for n in &cluster.nodes {
        assert!(
            !n.process.stderr().contains("panicked"),
            "node {} panicked:\n{}",
            n.name,
            n.process.stderr()
        );
    }
    let _ = (&cluster.nodes[0].admin, &redis.port);
}
