//! Several nodes (design §5): failed-authentication counters, quotas and Digest nonce counts
//! shared through Redis, and revocations, suspensions and locks fanned out over Redis
//! pub/sub. PostgreSQL stays the durable list of revocations and suspensions; Redis only
//! makes them arrive at once.
//!
//! The hot path needs no round trip: locks are mirrored into each node's local limiter (the
//! node whose failure locked a key publishes it; every node applies it), so checking a lock
//! is a local read. Redis is asked when something is counted: a failed authentication (one
//! Lua script per failure), a request on a route with a `quota`, a Digest `nc`.
//!
//! Failure behaviour: every call is bounded by `[cluster] timeout`. When a call fails the
//! request uses this node's local state instead (the limits then hold per node), the node
//! logs one warning, counts the fallback, and skips Redis for [`BACKOFF`] before one request
//! probes it again; recovery logs one line. The subscription reconnects on its own and,
//! after every (re)subscribe, re-reads revocations and suspensions from the store, so a
//! message missed while Redis was away is never a missed revocation.

mod events;
mod scripts;

pub use events::{Event, LockKind, UserChange, publish_once};

use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use gatehouse_core::config::ClusterConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisResult};

/// How long a node leaves Redis alone after a failed call before one request tries again.
pub const BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between two attempts to resubscribe.
const MAX_RESUBSCRIBE: Duration = Duration::from_secs(15);
/// How often the subscription is pinged, and how long the answer may take (a black-holed
/// Redis is noticed within the sum; generous, so a busy node does not resubscribe for
/// nothing).
const PING_EVERY: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Purpose of the key that hashes account names and subjects into Redis keys.
const KEY_NAMES: &str = "gatehouse/cluster-key-names/v1";

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

/// Errors setting the cluster up; each says what to fix. The URL is never repeated.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("`cluster.redis_url` cannot be used: {0}")]
    Url(String),
    #[error("redis: {0}")]
    Redis(String),
}

/// Opens a Redis client for `url` speaking RESP3 (the subscription receives its messages
/// as pushes; Redis 6 or newer).
fn client(url: &str) -> Result<Client, ClusterError> {
    use redis::IntoConnectionInfo as _;
    let info = url
        .into_connection_info()
        .map_err(|e| ClusterError::Url(url_error(&e)))?;
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(redis::ProtocolVersion::RESP3);
    Client::open(info.set_redis_settings(settings)).map_err(|e| ClusterError::Url(url_error(&e)))
}

/// What was wrong with a Redis URL, without repeating it (it may carry a password).
fn url_error(e: &redis::RedisError) -> String {
    format!("not a usable redis url ({:?})", e.kind())
}

/// One request to Redis (retried once as a whole when the connection had dropped).
enum Op<'a> {
    Cmd(redis::Cmd),
    Pipe(redis::Pipeline),
    Script(redis::ScriptInvocation<'a>),
}

impl Op<'_> {
    async fn run<T: redis::FromRedisValue>(&self, conn: &mut ConnectionManager) -> RedisResult<T> {
        match self {
            Self::Cmd(c) => c.query_async(conn).await,
            Self::Pipe(p) => p.query_async(conn).await,
            Self::Script(s) => s.invoke_async(conn).await,
        }
    }
}

/// Whether Redis answers, with one log line per change (design: degraded, not down).
struct Health {
    started: Instant,
    state: AtomicU8,
    /// 0: calls go through; else the time (ms since `started`) from which one may probe.
    retry_at: AtomicU64,
}

impl Health {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            state: AtomicU8::new(UNKNOWN),
            retry_at: AtomicU64::new(0),
        }
    }

    /// Milliseconds since `started`, from 1 (0 is the "calls go through" mark).
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).map_or(u64::MAX / 2, |ms| ms + 1)
    }

    /// May this call use Redis? During the back-off only the one call that claims the
    /// probe may.
    fn admit(&self, timeout: Duration) -> bool {
        let at = self.retry_at.load(Ordering::Acquire);
        if at == 0 {
            return true;
        }
        let now = self.now_ms();
        if now < at {
            return false;
        }
        let hold = u64::try_from(timeout.as_millis()).unwrap_or(1000) + 1;
        self.retry_at
            .compare_exchange(at, now + hold, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn succeeded(&self) {
        self.retry_at.store(0, Ordering::Release);
        match self.state.swap(UP, Ordering::AcqRel) {
            DOWN => tracing::info!("redis answers again: cluster-wide limits are back"),
            UNKNOWN => tracing::debug!("connected to redis"),
            _ => {}
        }
    }

    fn failed(&self, error: &str) {
        let back = u64::try_from(BACKOFF.as_millis()).unwrap_or(1000);
        self.retry_at.store(self.now_ms() + back, Ordering::Release);
        if self.state.swap(DOWN, Ordering::AcqRel) != DOWN {
            tracing::warn!(
                error,
                "redis unavailable: throttling, quotas and Digest nonce counts fall back to this node's own state (limits now hold per node); revocations still arrive through the store"
            );
        }
    }

    fn is_up(&self) -> bool {
        self.state.load(Ordering::Acquire) == UP
    }
}

/// What the event subscription keeps current: a node's copies of what the events carry
/// (revocations, suspensions, attributes, locks).
pub trait Listener: Send + Sync + 'static {
    /// Re-reads from the store what the events carry (after every (re)subscribe).
    fn resync(&self) -> impl Future<Output = ()> + Send;
    /// Applies an event from the channel.
    fn apply_event(&self, event: &Event, now: i64);
}

/// The cluster handle of a gateway: Redis for shared counters and fan-out.
pub struct Cluster {
    client: Client,
    prefix: String,
    timeout: Duration,
    /// Created lazily, dropped after a failure so the next probe starts afresh.
    conn: Mutex<Option<ConnectionManager>>,
    health: Health,
    names: aws_lc_rs::hmac::Key,
    scripts: scripts::Scripts,
    fallbacks: AtomicU64,
    subscribed: AtomicBool,
    /// Successful (re)subscribes, each followed by a resync from the store.
    subscriptions: AtomicU64,
}

impl Cluster {
    /// The handle for `config`, or `None` when no `redis_url` is set (one node). Connects
    /// lazily: a Redis that is down at start-up leaves the node degraded, not stopped.
    pub fn new(
        config: &ClusterConfig,
        secrets: &crate::keys::Secrets,
    ) -> Result<Option<Arc<Self>>, ClusterError> {
        let Some(url) = &config.redis_url else {
            return Ok(None);
        };
        Ok(Some(Arc::new(Self {
            client: client(url)?,
            prefix: config.key_prefix.clone(),
            timeout: config.timeout,
            conn: Mutex::new(None),
            health: Health::new(),
            names: aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA256,
                &secrets.derive(KEY_NAMES),
            ),
            scripts: scripts::Scripts::new(),
            fallbacks: AtomicU64::new(0),
            subscribed: AtomicBool::new(false),
            subscriptions: AtomicU64::new(0),
        })))
    }

    /// Whether the last Redis call succeeded (`gatehouse_cluster_redis_up`).
    pub fn is_up(&self) -> bool {
        self.health.is_up()
    }

    /// Requests that used this node's own state because Redis did not answer.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// Whether the event subscription is live (and the resync that follows it done).
    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    /// How many times the subscription was made (each time followed by a resync).
    pub fn subscriptions(&self) -> u64 {
        self.subscriptions.load(Ordering::Acquire)
    }

    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// A stable, keyed hash of a name (account, subject) for Redis keys and lock events:
    /// Redis never holds user names, and every node computes the same value (the key comes
    /// from the shared master secret).
    pub fn hash_name(&self, name: &str) -> String {
        let tag = aws_lc_rs::hmac::sign(&self.names, name.as_bytes());
        tag.as_ref()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        for p in parts {
            k.push(':');
            k.push_str(p);
        }
        k
    }

    fn channel(&self) -> String {
        events::channel(&self.prefix)
    }

    fn manager(&self) -> Result<ConnectionManager, String> {
        let mut slot = match self.conn.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(self.timeout);
        let c = ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            .map_err(|e| e.to_string())?;
        *slot = Some(c.clone());
        Ok(c)
    }

    fn drop_manager(&self) {
        match self.conn.lock() {
            Ok(mut g) => *g = None,
            Err(p) => *p.into_inner() = None,
        }
    }

    /// Runs `op` within the timeout, retrying once when the connection had dropped (the
    /// first command after a drop fails while the manager reconnects). `None` means "use
    /// the local state": Redis is backing off, failed or timed out.
    async fn call<T: redis::FromRedisValue>(&self, op: Op<'_>) -> Option<T> {
        let out = self.attempt(op).await;
        if out.is_none() {
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
        }
        out
    }

    /// Checks Redis on the command connection (not a fallback when it fails), so
    /// `gatehouse_cluster_redis_up` and the recovery line do not wait for traffic.
    async fn ping(&self) {
        let _: Option<redis::Value> = self.attempt(Op::Cmd(redis::cmd("PING"))).await;
    }

    async fn attempt<T: redis::FromRedisValue>(&self, op: Op<'_>) -> Option<T> {
        if !self.health.admit(self.timeout) {
            return None;
        }
        let attempt = async {
            let mut conn = self.manager()?;
            match op.run(&mut conn).await {
                Err(e) if e.is_unrecoverable_error() || e.is_connection_dropped() => {
                    op.run(&mut conn).await.map_err(|e| e.to_string())
                }
                r => r.map_err(|e| e.to_string()),
            }
        };
        let error = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(v)) => {
                self.health.succeeded();
                return Some(v);
            }
            Ok(Err(e)) => e,
            Err(_) => "timed out".to_owned(),
        };
        self.drop_manager();
        self.health.failed(&error);
        None
    }

    /// Counts one failed authentication for the client IP and/or the account (hashed) in
    /// one atomic script. Per key: `Some(until)` when the key is locked now (by this
    /// failure or before), with whether this failure locked it. `None`: use local counters.
    pub async fn failure(
        &self,
        ip: Option<(IpAddr, Window)>,
        account: Option<(&str, Window)>,
        now: i64,
    ) -> Option<Vec<FailureResult>> {
        let ip_text = ip.map(|(ip, w)| (ip.to_string(), w));
        let mut keys: Vec<(LockKind, String, String, Window)> = Vec::new();
        if let Some((text, w)) = &ip_text {
            keys.push((
                LockKind::Ip,
                text.clone(),
                self.key(&["fail", "ip", text]),
                *w,
            ));
        }
        if let Some((hashed, w)) = account {
            keys.push((
                LockKind::Account,
                hashed.to_owned(),
                self.key(&["fail", "acct", hashed]),
                w,
            ));
        }
        self.count_failures(keys, now).await
    }

    /// Counts one failed token / API key / session verification from `ip` (the verification
    /// budget, row 4), with the same script and lock events as [`Self::failure`].
    pub async fn token_failure(
        &self,
        ip: IpAddr,
        window: Window,
        now: i64,
    ) -> Option<Vec<FailureResult>> {
        let text = ip.to_string();
        let key = self.key(&["fail", "tok", &text]);
        self.count_failures(vec![(LockKind::Tokens, text, key, window)], now)
            .await
    }

    async fn count_failures(
        &self,
        keys: Vec<(LockKind, String, String, Window)>,
        now: i64,
    ) -> Option<Vec<FailureResult>> {
        if keys.is_empty() {
            return Some(Vec::new());
        }
        let channel = self.channel();
        let mut inv = self.scripts.failure.prepare_invoke();
        inv.arg(now)
            .arg(gatehouse_core::throttle::MAX_LOCK)
            .arg(&channel);
        for (kind, id, key, w) in &keys {
            inv.key(key)
                .arg(w.max)
                .arg(w.per)
                .arg(kind.as_str())
                .arg(id);
        }
        let out: Vec<i64> = self.call(Op::Script(inv)).await?;
        Some(
            keys.iter()
                .zip(out.chunks(2))
                .map(|((kind, id, _, _), r)| FailureResult {
                    kind: *kind,
                    id: id.clone(),
                    locked_until: r.first().copied().filter(|u| *u > now),
                    fresh: r.get(1).copied() == Some(1),
                })
                .collect(),
        )
    }

    /// Records `ip` as a known good source of the (hashed) account; fire and forget.
    pub fn remember_source(self: &Arc<Self>, hashed: &str, ip: IpAddr, now: i64, keep: i64) {
        let this = Arc::clone(self);
        let key = self.key(&["known", hashed]);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset(&key, ip.to_string(), now)
            .ignore()
            .expire(&key, keep)
            .ignore();
        tokio::spawn(async move {
            let _: Option<()> = this.call(Op::Pipe(pipe)).await;
        });
    }

    /// When `ip` last signed in to the (hashed) account on any node, if Redis knows.
    pub async fn known_source(&self, hashed: &str, ip: IpAddr) -> Option<i64> {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(self.key(&["known", hashed])).arg(ip.to_string());
        self.call::<Option<i64>>(Op::Cmd(cmd)).await.flatten()
    }

    /// The key prefix of a route's quota windows (computed once per config, not per
    /// request).
    pub fn quota_route_key(&self, route: &str) -> String {
        self.key(&["quota", &self.hash_name(route)])
    }

    /// Counts one request of `subject` on the route whose [`Self::quota_route_key`] is
    /// `route_key`: the count in the current window and the milliseconds until it resets.
    /// `None`: use the local quota.
    pub async fn quota(&self, route_key: &str, subject: &str, per: Duration) -> Option<(u64, u64)> {
        let key = format!("{route_key}:{}", self.hash_name(subject));
        let per_ms = u64::try_from(per.as_millis())
            .unwrap_or(u64::MAX / 4)
            .max(1);
        let mut inv = self.scripts.quota.prepare_invoke();
        inv.key(&key).arg(per_ms);
        let (count, ttl): (u64, u64) = self.call(Op::Script(inv)).await?;
        Some((count, ttl))
    }

    /// Advances the highest `nc` seen for a Digest nonce if `nc` is greater: `Some(false)`
    /// is a replay (seen on some node); `None`: Redis did not answer.
    pub async fn advance_nonce(&self, nonce: &str, nc: u32, ttl: u64) -> Option<bool> {
        let key = self.key(&["nc", nonce]);
        let mut inv = self.scripts.nonce.prepare_invoke();
        inv.key(&key).arg(nc).arg(ttl.max(1));
        let advanced: i64 = self.call(Op::Script(inv)).await?;
        Some(advanced == 1)
    }

    /// Publishes `event` to every node (this one included); fire and forget. The store
    /// already holds what the event says, so a lost message only waits for the poll.
    pub fn publish(self: &Arc<Self>, event: &Event) {
        let Ok(payload) = serde_json::to_string(event) else {
            return;
        };
        let this = Arc::clone(self);
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.channel()).arg(payload);
        tokio::spawn(async move {
            let _: Option<i64> = this.call(Op::Cmd(cmd)).await;
        });
    }

    /// Keeps a subscription to the event channel until `node` is dropped: resubscribes with
    /// back-off, and resyncs `node` from the store after every subscribe.
    pub fn spawn_subscriber<L: Listener>(self: &Arc<Self>, node: Weak<L>) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(250);
            let mut lost = false;
            this.ping().await;
            loop {
                match this.subscribe_once(&node, lost).await {
                    Subscription::GatewayGone => return,
                    Subscription::Lost(error) => {
                        if !lost {
                            tracing::warn!(
                                error,
                                "redis subscription lost: revocations reach this node through the store poll until it is back"
                            );
                        }
                        lost = true;
                        if this.subscribed.swap(false, Ordering::AcqRel) {
                            wait = Duration::from_millis(250);
                        }
                    }
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_RESUBSCRIBE);
                if node.strong_count() == 0 {
                    return;
                }
            }
        });
    }

    async fn subscribe_once<L: Listener>(&self, node: &Weak<L>, was_lost: bool) -> Subscription {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_push_sender(tx);
        let connect = async {
            let mut c = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            c.subscribe(self.channel()).await?;
            Ok::<_, redis::RedisError>(c)
        };
        let mut conn = match tokio::time::timeout(self.timeout * 4, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Subscription::Lost(e.to_string()),
            Err(_) => return Subscription::Lost("timed out".to_owned()),
        };
        self.ping().await;
        // Whatever was published while we were not listening is in the store. Events that
        // arrive meanwhile wait in the channel.
        {
            let Some(node) = node.upgrade() else {
                return Subscription::GatewayGone;
            };
            node.resync().await;
        }
        self.subscriptions.fetch_add(1, Ordering::AcqRel);
        self.subscribed.store(true, Ordering::Release);
        if was_lost {
            tracing::info!("redis subscription back: revocations arrive at once again");
        }
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                push = rx.recv() => {
                    let Some(push) = push else {
                        return Subscription::Lost("connection closed".to_owned());
                    };
                    match push.kind {
                        redis::PushKind::Disconnection => {
                            return Subscription::Lost("connection closed".to_owned());
                        }
                        redis::PushKind::Message => {
                            let Some(node) = node.upgrade() else {
                                return Subscription::GatewayGone;
                            };
                            if let Some(event) = events::decode(&push.data) {
                                node.apply_event(&event, crate::clock::now());
                            }
                        }
                        _ => {}
                    }
                }
                _ = ping.tick() => {
                    if node.strong_count() == 0 {
                        return Subscription::GatewayGone;
                    }
                    self.ping().await;
                    let pong = tokio::time::timeout(
                        PING_TIMEOUT.max(self.timeout),
                        redis::cmd("PING").query_async::<redis::Value>(&mut conn),
                    )
                    .await;
                    match pong {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Subscription::Lost(e.to_string()),
                        Err(_) => return Subscription::Lost("ping timed out".to_owned()),
                    }
                }
            }
        }
    }
}

enum Subscription {
    GatewayGone,
    Lost(String),
}

/// A failure or quota window: at most `max` in `per` seconds (rows 4 and 24 count in these,
/// on this node and in Redis).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub max: u32,
    pub per: u64,
}

impl From<&gatehouse_core::config::Window> for Window {
    fn from(w: &gatehouse_core::config::Window) -> Self {
        Self {
            max: w.max.max(1),
            per: w.per.as_secs().max(1),
        }
    }
}

/// What the failure script said about one key.
#[derive(Debug, Clone)]
pub struct FailureResult {
    pub kind: LockKind,
    /// The IP as text, or the hashed account.
    pub id: String,
    /// When the key is locked now, until when (unix seconds).
    pub locked_until: Option<i64>,
    /// This very failure locked the key (the script published the lock).
    pub fresh: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_url_is_refused_without_repeating_it() {
        for url in ["redis://:hunter2@[::1", "redis://:hunter2@host:notaport"] {
            let err = client(url).map(drop).map_err(|e| e.to_string());
            let Err(msg) = err else {
                panic!("{url} was accepted");
            };
            assert!(!msg.contains("hunter2"), "{msg}");
        }
        assert!(client("rediss://:pw@127.0.0.1:6380/2").is_ok());
    }

    #[test]
    fn after_a_failure_only_one_probe_goes_through_per_backoff() {
        let h = Health::new();
        let t = Duration::from_millis(250);
        assert!(h.admit(t));
        assert!(!h.is_up());
        h.succeeded();
        assert!(h.is_up() && h.admit(t));
        h.failed("refused");
        assert!(!h.is_up());
        assert!(!h.admit(t), "the back-off lets nothing through");
        // Once the back-off is over, exactly one call probes.
        h.retry_at.store(1, Ordering::Release);
        assert!(h.admit(t));
        assert!(!h.admit(t));
        h.succeeded();
        assert!(h.admit(t) && h.admit(t));
    }
}
