//! Several nodes (design §5) in one process: two or three gateways sharing one PostgreSQL
//! schema and one Redis key prefix, as separate machines would. Failed-authentication
//! counts add up across nodes and locks are enforced everywhere (rows 4); quotas count
//! across nodes (row 24); a Digest `nc` accepted on one node is a replay on another
//! (row 12's replay protection); logouts and suspensions reach the other nodes through
//! Redis pub/sub (rows 10, 13). Then the failure modes: Redis unreachable (local limits,
//! `gatehouse_cluster_redis_up 0`, no request fails because of it) and PostgreSQL gone
//! (self-contained tokens work, everything else is 503 `auth_unavailable`, never 401/403).
//!
//! Needs `GATEHOUSE_TEST_REDIS_URL` and `GATEHOUSE_TEST_POSTGRES_URL` (`.ci/run` sets both);
//! without them each test prints `skipped: … is not installed (…)` and passes (fails under
//! `GATEHOUSE_TEST_REQUIRE=all`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::digest_client::{Request, param};
use common::{Harness, Resp, basic, pg};
use gatehouse_core::digest::Algorithm;
use gatehouse_server::BuildOptions;
use gatehouse_server::cluster::{Event, UserChange, publish_once};
use gatehouse_store::{Store, open_store};
use gatehouse_testkit::{POSTGRES, REDIS, env};
use tokio::sync::watch;

/// Whether the test must return for want of Redis or PostgreSQL (after saying which).
fn skipped() -> bool {
    !(REDIS.present(env("GATEHOUSE_TEST_REDIS_URL").is_some())
        && POSTGRES.present(env("GATEHOUSE_TEST_POSTGRES_URL").is_some()))
}

/// A key prefix no other test (or run) uses.
fn fresh_prefix() -> String {
    let r = gatehouse_server::random::random_bytes::<6>();
    let hex: String = r.iter().map(|b| format!("{b:02x}")).collect();
    format!("ghtest-{}-{hex}", std::process::id())
}

/// Nodes sharing one schema and one prefix; dropped in order (servers, then the schema).
struct Nodes {
    nodes: Vec<Harness>,
    prefix: String,
    redis_url: String,
    _upstream_stop: watch::Sender<bool>,
    _schema: pg::Schema,
}

impl Drop for Nodes {
    /// Leaves the shared Redis as it was: every key under this test's prefix goes.
    fn drop(&mut self) {
        use redis::Commands as _;
        let Ok(client) = redis::Client::open(self.redis_url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let pattern = format!("{}:*", self.prefix);
        let keys: Vec<String> = match conn.scan_match(&pattern) {
            Ok(iter) => iter.filter_map(Result::ok).collect(),
            Err(_) => return,
        };
        for chunk in keys.chunks(100) {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(chunk).query(&mut conn);
        }
    }
}

impl std::ops::Index<usize> for Nodes {
    type Output = Harness;
    fn index(&self, i: usize) -> &Harness {
        &self.nodes[i]
    }
}

fn config(upstream: std::net::SocketAddr, redis: &str, prefix: &str, throttle: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
realm = "api"
trusted_proxies = ["127.0.0.1/32"]

[upstream]
url = "http://{upstream}"
timeout = "2s"

[store]
url = "postgres://set-by-the-test"

[cluster]
redis_url = "{redis}"
key_prefix = "{prefix}"
timeout = "250ms"

[throttle]
# Locked clients are answered at once here (the tarpit has its own test in defense.rs).
tarpit = "0s"
{throttle}

[defaults]
access = "authenticated"
auth = ["bearer", "basic"]

[[route]]
name = "metered"
path = "/metered/**"
auth = ["bearer", "basic"]
quota = {{ max = 3, per = "1m" }}

[[route]]
name = "digest"
path = "/digest/**"
auth = ["digest", "basic"]

[[route]]
name = "checkout"
path = "/checkout/**"

[[route.require]]
attribute = "payment_method"
present = true
code = "payment_method_required"
"#
    )
}

const LOOSE: &str =
    "failed_per_ip = { max = 100, per = \"1m\" }\nfailed_per_account = { max = 100, per = \"1m\" }";

/// `n` nodes on a fresh schema (seeded as `common::seed`) and a fresh prefix. `redis`
/// overrides the Redis URL (an unreachable one); `poll` is the store poll of every node.
async fn start(n: usize, throttle: &str, redis: Option<&str>, poll: Duration) -> Nodes {
    gatehouse_server::install_crypto();
    let base = env("GATEHOUSE_TEST_POSTGRES_URL").unwrap();
    let redis_url = redis
        .map(str::to_owned)
        .or_else(|| env("GATEHOUSE_TEST_REDIS_URL"))
        .unwrap();
    let schema = pg::Schema::create(&base).await;
    let (upstream_stop, upstream_rx) = watch::channel(false);
    let upstream = common::echo_upstream(upstream_rx).await;
    let prefix = fresh_prefix();
    let text = config(upstream, &redis_url, &prefix, throttle);
    let mut nodes = Vec::new();
    for i in 0..n {
        // Each node has its own pool, as separate machines would.
        let store = open_store(&schema.url()).await.unwrap();
        if i == 0 {
            common::seed(store.as_ref()).await;
            common::digest_client::enable(store.as_ref(), "alice", "api", "alice-pw").await;
        }
        let (stop, rx) = watch::channel(false);
        let options = BuildOptions {
            store_poll: poll,
            ..BuildOptions::default()
        };
        nodes.push(Harness::start_store_with(&text, upstream, stop, rx, store, options).await);
    }
    Nodes {
        nodes,
        prefix,
        redis_url,
        _upstream_stop: upstream_stop,
        _schema: schema,
    }
}

/// Waits until every node listens to the event channel.
async fn subscribed(nodes: &Nodes) {
    for h in &nodes.nodes {
        let c = h.gw.cluster.as_ref().unwrap();
        assert!(
            eventually(|| async { c.is_subscribed() }).await,
            "a node never subscribed to the event channel"
        );
    }
}

/// Polls `f` until it holds, for at most ten seconds (events travel asynchronously).
async fn eventually<F: std::future::Future<Output = bool>>(mut f: impl FnMut() -> F) -> bool {
    for _ in 0..200 {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn as_ip(h: &Harness, path: &str, auth: &str, ip: &str) -> Resp {
    h.get(path, &[("Authorization", auth), ("X-Forwarded-For", ip)])
        .await
}

/// Row 4's answer, with a wait of at most `max` seconds.
#[track_caller]
fn assert_locked(r: &Resp, max: u64) {
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.error(), "too_many_attempts");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=max).contains(&retry), "{retry}");
}

async fn login(h: &Harness, user: &str, pw: &str) -> String {
    let r = h.login(user, pw).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["access_token"].as_str().unwrap().to_owned()
}

/// alice's answer (nc 1) to a fresh challenge of `h`'s digest route.
async fn digest_request(h: &Harness, cnonce: &'static str) -> Request<'static> {
    let r = h.get("/digest/start", &[]).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let challenge = &r.challenges()[0];
    Request {
        alg: Algorithm::Sha256,
        user: "alice",
        pw: "alice-pw",
        realm: "api",
        method: "GET",
        uri: "/digest/a",
        nonce: param(challenge, "nonce").unwrap(),
        opaque: param(challenge, "opaque").unwrap(),
        nc: 1,
        cnonce,
        userhash: false,
    }
}

#[tokio::test]
async fn failures_on_two_nodes_add_up_to_one_lock_enforced_on_every_node() {
    if skipped() {
        return;
    }
    let throttle = "failed_per_ip = { max = 4, per = \"1m\" }\nfailed_per_account = { max = 100, per = \"1m\" }";
    let c = start(3, throttle, None, Duration::from_secs(1)).await;
    subscribed(&c).await;
    let ip = "198.51.100.20";
    // Two failures on A and two on B: neither node alone reaches four.
    for (node, user) in [(0, "u1"), (0, "u2"), (1, "u3")] {
        let r = as_ip(&c[node], "/api", &basic(user, "wrong"), ip).await;
        assert_eq!(r.error(), "invalid_credentials", "{}", r.text);
    }
    let r = as_ip(&c[1], "/api", &basic("u4", "wrong"), ip).await;
    assert_eq!(r.error(), "invalid_credentials", "{}", r.text);
    // The fourth failure locked the client everywhere, even with the right password:
    // at once on B (whose failure locked it), on A and C through the published lock.
    assert_locked(
        &as_ip(&c[1], "/api", &basic("alice", "alice-pw"), ip).await,
        60,
    );
    for node in [0, 2] {
        let h = &c[node];
        assert!(
            eventually(|| async {
                as_ip(h, "/api", &basic("alice", "alice-pw"), ip)
                    .await
                    .status
                    == 429
            })
            .await,
            "node {node} never enforced the lock"
        );
        let hashed =
            h.gw.hashes_started
                .load(std::sync::atomic::Ordering::SeqCst);
        assert_locked(&as_ip(h, "/api", &basic("alice", "alice-pw"), ip).await, 60);
        assert_eq!(
            h.gw.hashes_started
                .load(std::sync::atomic::Ordering::SeqCst),
            hashed,
            "a locked client's password was hashed"
        );
    }
    // Other clients are not affected.
    let r = as_ip(&c[2], "/api", &basic("alice", "alice-pw"), "198.51.100.21").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let metrics = c[2].gw.render_metrics(gatehouse_server::clock::now());
    assert!(
        metrics.contains("gatehouse_cluster_redis_up 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_lock_answers_alike_for_existing_and_unknown_accounts() {
    if skipped() {
        return;
    }
    let throttle = "failed_per_ip = { max = 100, per = \"1m\" }\nfailed_per_account = { max = 3, per = \"15m\" }";
    let c = start(3, throttle, None, Duration::from_secs(1)).await;
    subscribed(&c).await;
    for user in ["alice", "nobody-by-this-name"] {
        for (node, ip) in [(0, "203.0.113.1"), (1, "203.0.113.2"), (0, "203.0.113.3")] {
            let r = as_ip(&c[node], "/api", &basic(user, "wrong"), ip).await;
            assert_eq!(r.error(), "invalid_credentials", "{}", r.text);
        }
    }
    let third = &c[2];
    let probe = |user: &'static str| async move {
        as_ip(third, "/api", &basic(user, "anything"), "203.0.113.9").await
    };
    for user in ["alice", "nobody-by-this-name"] {
        assert!(
            eventually(|| async { probe(user).await.status == 429 }).await,
            "`{user}` never locked on the third node"
        );
    }
    let known = probe("alice").await;
    let unknown = probe("nobody-by-this-name").await;
    for r in [&known, &unknown] {
        assert_locked(r, 900);
        assert!(r.challenges().is_empty());
    }
    let keys = |r: &Resp| {
        let mut k: Vec<String> = r.json().as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let names = |r: &Resp| {
        let mut n: Vec<String> = r.headers.keys().map(ToString::to_string).collect();
        n.sort();
        n
    };
    assert_eq!(keys(&known), keys(&unknown));
    assert_eq!(names(&known), names(&unknown));
    assert_eq!(known.json()["title"], unknown.json()["title"]);
    let digitless = |r: &Resp| {
        let d = r.json()["detail"].as_str().unwrap().to_owned();
        d.replace(|c: char| c.is_ascii_digit(), "")
    };
    assert_eq!(digitless(&known), digitless(&unknown));
}

#[tokio::test]
async fn a_known_source_is_spared_on_every_node() {
    if skipped() {
        return;
    }
    let throttle = "failed_per_ip = { max = 100, per = \"1m\" }\nfailed_per_account = { max = 3, per = \"15m\" }";
    let c = start(3, throttle, None, Duration::from_secs(1)).await;
    subscribed(&c).await;
    let home = "192.0.2.50";
    let r = as_ip(&c[0], "/api", &basic("alice", "alice-pw"), home).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for ip in ["192.0.2.61", "192.0.2.62", "192.0.2.63"] {
        let r = as_ip(&c[1], "/api", &basic("alice", "guess"), ip).await;
        assert_eq!(r.error(), "invalid_credentials", "{}", r.text);
    }
    // The third node never saw alice sign in: a stranger with her password is locked out...
    let third = &c[2];
    assert!(
        eventually(|| async {
            as_ip(third, "/api", &basic("alice", "alice-pw"), "192.0.2.64")
                .await
                .status
                == 429
        })
        .await,
        "the account lock never reached the third node"
    );
    // ...but her own address, known from the first node through Redis, gets in.
    assert!(
        eventually(|| async {
            as_ip(third, "/api", &basic("alice", "alice-pw"), home)
                .await
                .status
                == 200
        })
        .await,
        "the known source was locked out on the third node"
    );
    let r = as_ip(&c[1], "/api", &basic("alice", "alice-pw"), home).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn a_quota_counts_requests_on_every_node() {
    if skipped() {
        return;
    }
    let c = start(3, LOOSE, None, Duration::from_secs(1)).await;
    let now = gatehouse_server::clock::now();
    let token = c[0].own_token("bob", &[], "pwd", now, 600).await;
    let bearer = format!("Bearer {token}");
    for (node, remaining) in [(0, "2"), (1, "1"), (2, "0")] {
        let r = c[node]
            .get("/metered/x", &[("Authorization", &bearer)])
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.header("ratelimit-limit"), Some("3"));
        assert_eq!(
            r.header("ratelimit-remaining"),
            Some(remaining),
            "node {node}"
        );
    }
    let r = c[1].get("/metered/x", &[("Authorization", &bearer)]).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.error(), "rate_limited");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Another subject has its own count.
    let other = c[0].own_token("alice", &[], "pwd", now, 600).await;
    let r = c[2]
        .get(
            "/metered/x",
            &[("Authorization", &format!("Bearer {other}"))],
        )
        .await;
    assert_eq!(r.header("ratelimit-remaining"), Some("2"), "{}", r.text);
}

async fn send(h: &Harness, req: &Request<'_>) -> Resp {
    h.get("/digest/a", &[("Authorization", &req.header())])
        .await
}

#[tokio::test]
async fn a_digest_nc_accepted_on_one_node_is_a_replay_on_another() {
    if skipped() {
        return;
    }
    let c = start(2, LOOSE, None, Duration::from_secs(1)).await;
    let mut req = digest_request(&c[0], "0a4f113b").await;
    let r = send(&c[0], &req).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The same nc on the other node is a replay.
    let r = send(&c[1], &req).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.error(), "invalid_credentials");
    req.nc = 2;
    let r = send(&c[1], &req).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(&c[0], &req).await;
    assert_eq!(r.error(), "invalid_credentials", "{}", r.text);
}

#[tokio::test]
async fn a_logout_on_one_node_is_refused_on_another_through_pubsub() {
    if skipped() {
        return;
    }
    // The store poll is an hour away: only the event can carry the revocation.
    let c = start(2, LOOSE, None, Duration::from_secs(3_600)).await;
    subscribed(&c).await;
    let token = login(&c[0], "bob", "bob-pw").await;
    let bearer = format!("Bearer {token}");
    let cluster = c[1].gw.cluster.as_ref().unwrap();
    let subscriptions = cluster.subscriptions();
    let r = c[1].get("/api", &[("Authorization", &bearer)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = c[0]
        .send("POST", "/auth/logout", &[("Authorization", &bearer)])
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let other = &c[1];
    assert!(
        eventually(|| async {
            let r = other.get("/api", &[("Authorization", &bearer)]).await;
            r.status == 401 && r.error() == "token_revoked"
        })
        .await,
        "the logout never reached the other node"
    );
    // No resubscribe (and so no resync from the store) happened meanwhile: the event did it.
    assert_eq!(cluster.subscriptions(), subscriptions);
}

#[tokio::test]
async fn a_suspension_is_enforced_on_every_node_at_once() {
    if skipped() {
        return;
    }
    let c = start(2, LOOSE, None, Duration::from_secs(3_600)).await;
    subscribed(&c).await;
    let token = c[0]
        .own_token("bob", &[], "pwd", gatehouse_server::clock::now(), 600)
        .await;
    let bearer = format!("Bearer {token}");
    for h in &c.nodes {
        assert_eq!(
            h.get("/api", &[("Authorization", &bearer)]).await.status,
            200
        );
    }
    let subscriptions: Vec<u64> = c
        .nodes
        .iter()
        .map(|h| h.gw.cluster.as_ref().unwrap().subscriptions())
        .collect();
    // What `gatehouse user suspend` does: the store first, then the event.
    let store = &c[0].gw.store;
    let t = gatehouse_server::clock::now();
    store.suspend_user("bob", "chargeback", t).await.unwrap();
    let cluster = gatehouse_core::config::ClusterConfig {
        redis_url: Some(c.redis_url.clone()),
        key_prefix: c.prefix.clone(),
        timeout: Duration::from_millis(250),
    };
    let event = Event::User {
        name: "bob".into(),
        change: UserChange::Suspended {
            at: t,
            reason: "chargeback".into(),
        },
    };
    publish_once(&cluster, &[event]).await.unwrap();
    for h in &c.nodes {
        assert!(
            eventually(|| async {
                let r = h.get("/api", &[("Authorization", &bearer)]).await;
                r.status == 403 && r.error() == "account_suspended"
            })
            .await,
            "the suspension never reached a node"
        );
        let r = h.get("/api", &[("Authorization", &bearer)]).await;
        assert_eq!(r.json()["reason"], "chargeback", "{}", r.text);
    }
    let now: Vec<u64> = c
        .nodes
        .iter()
        .map(|h| h.gw.cluster.as_ref().unwrap().subscriptions())
        .collect();
    assert_eq!(
        now, subscriptions,
        "a resync, not the event, carried the suspension"
    );
    store.unsuspend_user("bob").await.unwrap();
    let event = Event::User {
        name: "bob".into(),
        change: UserChange::Active,
    };
    publish_once(&cluster, &[event]).await.unwrap();
    let h = &c[1];
    assert!(
        eventually(|| async { h.get("/api", &[("Authorization", &bearer)]).await.status == 200 })
            .await
    );
}

/// Issue 13: `gatehouse user set` publishes the user's attributes; every node applies them
/// at once, cached tokens included (the store poll is an hour here, so the event did it).
#[tokio::test]
async fn changed_attributes_reach_every_node_at_once() {
    if skipped() {
        return;
    }
    let c = start(2, LOOSE, None, Duration::from_secs(3_600)).await;
    subscribed(&c).await;
    let token = c[0]
        .own_token("bob", &[], "pwd", gatehouse_server::clock::now(), 600)
        .await;
    let bearer = format!("Bearer {token}");
    for h in &c.nodes {
        let r = h.get("/checkout/x", &[("Authorization", &bearer)]).await;
        assert_eq!(r.error(), "requirement_not_met", "{}", r.text);
    }
    // What `gatehouse user set bob payment_method=card` does: the store first, then the event.
    let set: gatehouse_core::attributes::Attributes =
        [gatehouse_core::attributes::parse_assignment("payment_method=card").unwrap()].into();
    let attributes = c[0]
        .gw
        .store
        .update_attributes("bob", set, Vec::new())
        .await
        .unwrap();
    let cluster = gatehouse_core::config::ClusterConfig {
        redis_url: Some(c.redis_url.clone()),
        key_prefix: c.prefix.clone(),
        timeout: Duration::from_millis(250),
    };
    let event = Event::User {
        name: "bob".into(),
        change: UserChange::Attributes { attributes },
    };
    publish_once(&cluster, &[event]).await.unwrap();
    for h in &c.nodes {
        assert!(
            eventually(|| async {
                h.get("/checkout/x", &[("Authorization", &bearer)])
                    .await
                    .status
                    == 200
            })
            .await,
            "the attributes never reached a node"
        );
    }
}

#[tokio::test]
async fn an_unreachable_redis_leaves_local_limits_and_correct_answers() {
    if skipped() {
        return;
    }
    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("redis://127.0.0.1:{closed}");
    let throttle = "failed_per_ip = { max = 3, per = \"1m\" }\nfailed_per_account = { max = 100, per = \"1m\" }";
    let c = start(2, throttle, Some(&url), Duration::from_secs(1)).await;
    let (a, b) = (&c[0], &c[1]);
    let now = gatehouse_server::clock::now();
    let token = a.own_token("bob", &[], "pwd", now, 600).await;
    let bearer = format!("Bearer {token}");
    // Nothing fails because of Redis: tokens, passwords, quotas answer as on one node.
    let r = a.get("/api", &[("Authorization", &bearer)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = as_ip(a, "/api", &basic("alice", "alice-pw"), "10.1.1.1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    for remaining in ["2", "1", "0"] {
        let r = a.get("/metered/x", &[("Authorization", &bearer)]).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.header("ratelimit-remaining"), Some(remaining));
    }
    let r = a.get("/metered/x", &[("Authorization", &bearer)]).await;
    assert_eq!(r.error(), "rate_limited", "{}", r.text);
    // Each node limits on its own: three failures lock the client on A only.
    for user in ["x", "y", "z"] {
        let r = as_ip(a, "/api", &basic(user, "wrong"), "10.1.1.2").await;
        assert_eq!(r.error(), "invalid_credentials", "{}", r.text);
    }
    assert_locked(
        &as_ip(a, "/api", &basic("alice", "alice-pw"), "10.1.1.2").await,
        60,
    );
    let r = as_ip(b, "/api", &basic("alice", "alice-pw"), "10.1.1.2").await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Digest replay protection still holds on the node.
    let req = digest_request(a, "c0ffee").await;
    let header = req.header();
    assert_eq!(
        a.get("/digest/a", &[("Authorization", &header)])
            .await
            .status,
        200
    );
    let r = a.get("/digest/a", &[("Authorization", &header)]).await;
    assert_eq!(r.error(), "invalid_credentials", "{}", r.text);
    // Degraded, and says so.
    let cluster = a.gw.cluster.as_ref().unwrap();
    assert!(!cluster.is_up());
    assert!(cluster.fallbacks() > 0);
    assert!(!cluster.is_subscribed());
    let metrics = a.gw.render_metrics(gatehouse_server::clock::now());
    assert!(
        metrics.contains("gatehouse_cluster_redis_up 0"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("gatehouse_cluster_redis_fallbacks_total 0\n"),
        "{metrics}"
    );
    // Ready: Redis is a degradation, not an outage.
    let r = a.get("/readyz", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn with_postgres_gone_tokens_work_and_the_rest_is_503_never_401() {
    let Some(base) = POSTGRES.found(env("GATEHOUSE_TEST_POSTGRES_URL")) else {
        return;
    };
    gatehouse_server::install_crypto();
    let schema = pg::Schema::create(&base).await;
    let pg = Arc::new(gatehouse_store::PgStore::open(&schema.url()).await.unwrap());
    common::seed(pg.as_ref()).await;
    let (stop, rx) = watch::channel(false);
    let upstream = common::echo_upstream(rx.clone()).await;
    let text = common::config_text(upstream, "");
    let store: Arc<dyn Store> = pg.clone();
    let h = Harness::start_store(&text, upstream, stop, rx, store).await;
    let now = gatehouse_server::clock::now();
    let token = h.own_token("bob", &[], "pwd", now, 600).await;
    let key = h.api_key("bob", &["posts:read"], false, None).await;
    let bearer = format!("Bearer {token}");
    assert_eq!(
        h.get("/api/posts", &[("Authorization", &bearer)])
            .await
            .status,
        200
    );

    pg.close().await;
    // Self-contained: our own token needs no store.
    let r = h.get("/api/posts", &[("Authorization", &bearer)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Everything that needs the store: 503 with Retry-After, never a 401/403.
    let login = h.login("bob", "bob-pw").await;
    for r in [
        h.get(
            "/api/posts",
            &[("Authorization", &basic("alice", "alice-pw"))],
        )
        .await,
        h.get("/api/posts", &[("Authorization", &basic("alice", "wrong"))])
            .await,
        h.get("/api/posts", &[("X-Api-Key", &key)]).await,
        login,
    ] {
        assert_eq!(r.status, 503, "{}", r.text);
        assert_eq!(r.error(), "auth_unavailable");
        assert!(r.header("retry-after").is_some());
    }
    let r = h.get("/readyz", &[]).await;
    assert_eq!(r.status, 503, "{}", r.text);
}
