//! Row 4 and row 24 at the edge: failed-authentication throttling per client IP and per
//! account, the per-IP budget of failed token verifications, and per-route request quotas.
//!
//! Three locks guard row 4 (the pipeline decides which one a request meets): password
//! failures per client IP and per account, met by Basic, Digest and the sign-in form before
//! any hash; and failed verifications of bearer tokens, API keys and session cookies per
//! client IP, met only by credentials the gateway does not know yet (CPU protection). So
//! garbage tokens from one client behind a NAT never lock out its neighbours' valid ones. The counters are core's pure
//! [`gatehouse_core::throttle`] types behind short locks; nothing here awaits while holding
//! one.
//!
//! The account limit spares known sources: a client IP that signed in to an account
//! successfully before is not locked out by failures on that account from elsewhere, so an
//! attacker cannot keep the real user out (design: throttling must not become a denial of
//! service against the account it protects).
//!
//! With a [`Cluster`], failures and quota hits are counted in Redis (the same semantics,
//! cluster-wide) and the local limiters only mirror the locks every node publishes, so a
//! lock check stays a local read. When Redis does not answer, the local counters count as
//! on a single node.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use gatehouse_core::config::Config;
use gatehouse_core::throttle::{FailureLimiter, Quota, QuotaState};

use crate::cluster::{Cluster, FailureResult, LockKind, Window};

pub mod tarpit;

/// Keys each limiter remembers at most.
const CAPACITY: usize = 100_000;
/// Sources remembered per account.
const KNOWN_PER_ACCOUNT: usize = 8;
/// How long a successful source stays known, seconds.
const KNOWN_FOR: i64 = 30 * 86_400;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

struct Limiter<K> {
    window: Window,
    local: Mutex<FailureLimiter<K>>,
}

impl<K: Eq + std::hash::Hash + Clone> Limiter<K> {
    fn new(w: &gatehouse_core::config::Window) -> Self {
        let window = Window::from(w);
        Self {
            window,
            local: Mutex::new(FailureLimiter::new(window.max, window.per, CAPACITY)),
        }
    }
}

struct RouteQuota {
    /// In a cluster, the Redis key prefix of this route's windows, derived once from the
    /// route's name (indexes differ between config versions, names do not).
    cluster_key: Option<String>,
    window: Window,
    local: Mutex<Quota<String>>,
}

pub struct Defense {
    ip: Option<Limiter<IpAddr>>,
    /// Keyed by [`Defense::account_key`].
    account: Option<Limiter<String>>,
    /// Failed token-class verifications per client IP.
    tokens: Option<Limiter<IpAddr>>,
    known: Mutex<HashMap<String, Vec<(IpAddr, i64)>>>,
    /// Per route index, when the route has a `quota`.
    quotas: HashMap<usize, RouteQuota>,
    cluster: Option<Arc<Cluster>>,
}

impl Defense {
    pub fn new(config: &Config, cluster: Option<Arc<Cluster>>) -> Self {
        Self {
            ip: config.throttle.failed_per_ip.as_ref().map(Limiter::new),
            account: config
                .throttle
                .failed_per_account
                .as_ref()
                .map(Limiter::new),
            tokens: config
                .throttle
                .failed_tokens_per_ip
                .as_ref()
                .map(Limiter::new),
            known: Mutex::new(HashMap::new()),
            quotas: config
                .routes
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    let q = r.quota.as_ref()?;
                    let window = Window::from(q);
                    Some((
                        i,
                        RouteQuota {
                            cluster_key: cluster.as_ref().map(|c| c.quota_route_key(&r.name)),
                            window,
                            local: Mutex::new(Quota::new(window.max, window.per, CAPACITY)),
                        },
                    ))
                })
                .collect(),
            cluster,
        }
    }

    /// How an account is keyed: its name on one node; in a cluster the keyed hash every
    /// node computes alike (lock events and Redis keys never carry user names).
    fn account_key(&self, account: &str) -> String {
        match &self.cluster {
            Some(c) => c.hash_name(account),
            None => account.to_owned(),
        }
    }

    /// Row 4 by client IP: seconds to wait, if locked.
    pub fn ip_locked(&self, ip: IpAddr, now: i64) -> Option<u64> {
        self.ip
            .as_ref()
            .and_then(|l| lock(&l.local).locked(&ip, now))
    }

    /// Row 4 for unknown tokens, API keys and session cookies: seconds to wait, if the
    /// address spent its verification budget.
    pub fn token_locked(&self, ip: IpAddr, now: i64) -> Option<u64> {
        self.tokens
            .as_ref()
            .and_then(|l| lock(&l.local).locked(&ip, now))
    }

    /// Counts a failed token-class verification from `ip` toward its budget (never toward
    /// the password lock): in Redis for a cluster, as [`Self::failure`], else locally.
    pub async fn token_failure(&self, ip: IpAddr, now: i64) {
        let Some(l) = &self.tokens else {
            return;
        };
        if let Some(c) = &self.cluster
            && let Some(results) = Box::pin(c.token_failure(ip, l.window, now)).await
        {
            self.apply_shared(results, ip, None, now);
            return;
        }
        if let Some(secs) = lock(&l.local).failure(&ip, now) {
            self.log_lock(LockKind::Tokens, ip, None, i64::try_from(secs).unwrap_or(0));
        }
    }

    /// Row 4 by account, unless `ip` is a known source of that account. In a cluster a
    /// source known to another node counts too (asked only when the account is locked and
    /// this node does not know the source: the rare path).
    pub async fn account_locked(&self, account: &str, ip: IpAddr, now: i64) -> Option<u64> {
        let l = self.account.as_ref()?;
        let key = self.account_key(account);
        let retry = lock(&l.local).locked(&key, now)?;
        if self.is_known(&key, ip, now) {
            return None;
        }
        // Boxed (as the cluster's other calls here): a Redis call's future is large, and
        // inline it would be part of every request's future (finding 11).
        if let Some(c) = &self.cluster
            && let Some(at) = Box::pin(c.known_source(&key, ip)).await
            && now - at < KNOWN_FOR
        {
            self.remember(&key, ip, at);
            return None;
        }
        Some(retry)
    }

    fn is_known(&self, key: &str, ip: IpAddr, now: i64) -> bool {
        self.known_since(key, ip)
            .is_some_and(|at| now - at < KNOWN_FOR)
    }

    /// When `ip` last signed in to the account, as far as this node knows.
    fn known_since(&self, key: &str, ip: IpAddr) -> Option<i64> {
        lock(&self.known)
            .get(key)?
            .iter()
            .find(|(s, _)| *s == ip)
            .map(|(_, at)| *at)
    }

    /// Counts a failed authentication: in Redis for a cluster (one atomic script for both
    /// keys; locks are mirrored here at once and published to the other nodes), else — or
    /// when Redis does not answer — in this node's limiters.
    pub async fn failure(&self, ip: IpAddr, account: Option<&str>, now: i64) {
        let account_key = account
            .filter(|_| self.account.is_some())
            .map(|a| self.account_key(a));
        if let Some(c) = &self.cluster {
            let shared = Box::pin(
                c.failure(
                    self.ip.as_ref().map(|l| (ip, l.window)),
                    account_key
                        .as_deref()
                        .zip(self.account.as_ref().map(|l| l.window)),
                    now,
                ),
            )
            .await;
            if let Some(results) = shared {
                self.apply_shared(results, ip, account, now);
                return;
            }
        }
        if let Some(l) = &self.ip
            && let Some(secs) = lock(&l.local).failure(&ip, now)
        {
            self.log_lock(LockKind::Ip, ip, account, i64::try_from(secs).unwrap_or(0));
        }
        if let (Some(l), Some(k)) = (&self.account, &account_key)
            && let Some(secs) = lock(&l.local).failure(k, now)
        {
            self.log_lock(
                LockKind::Account,
                ip,
                account,
                i64::try_from(secs).unwrap_or(0),
            );
        }
    }

    /// Mirrors the locks Redis reports after counting a failure; logs the ones it started.
    fn apply_shared(
        &self,
        results: Vec<FailureResult>,
        ip: IpAddr,
        account: Option<&str>,
        now: i64,
    ) {
        for r in results {
            if let Some(until) = r.locked_until {
                self.mirror(r.kind, &r.id, until, now);
                if r.fresh {
                    self.log_lock(r.kind, ip, account, until - now);
                }
            }
        }
    }

    fn log_lock(&self, kind: LockKind, ip: IpAddr, account: Option<&str>, secs: i64) {
        match kind {
            LockKind::Ip => {
                tracing::warn!(client_ip = %ip, lock_seconds = secs, "client locked after repeated authentication failures")
            }
            LockKind::Account => tracing::warn!(
                account = account.unwrap_or("-"),
                lock_seconds = secs,
                "account locked after repeated authentication failures"
            ),
            LockKind::Tokens => {
                tracing::warn!(client_ip = %ip, lock_seconds = secs, "client over its budget of failed token verifications: unknown tokens refused unverified")
            }
        }
    }

    /// Applies a lock decided in Redis (by this node or another) to the local limiter.
    pub fn mirror(&self, kind: LockKind, id: &str, until: i64, now: i64) {
        match kind {
            LockKind::Ip | LockKind::Tokens => {
                if let (Some(l), Ok(ip)) = (self.by_ip(kind), id.parse::<IpAddr>()) {
                    lock(&l.local).lock_until(&ip, until, now);
                }
            }
            LockKind::Account => {
                if let Some(l) = &self.account {
                    lock(&l.local).lock_until(&id.to_owned(), until, now);
                }
            }
        }
    }

    /// The limiter of a per-IP lock kind.
    const fn by_ip(&self, kind: LockKind) -> Option<&Limiter<IpAddr>> {
        match kind {
            LockKind::Ip => self.ip.as_ref(),
            LockKind::Tokens => self.tokens.as_ref(),
            LockKind::Account => None,
        }
    }

    /// Remembers `ip` as a good source of `account` (and tells Redis, once per node).
    pub fn success(&self, ip: IpAddr, account: &str, now: i64) {
        if self.account.is_none() {
            return;
        }
        let key = self.account_key(account);
        // Redis hears of a source once a day per node, not on every sign-in.
        let fresh = self
            .known_since(&key, ip)
            .is_none_or(|at| now - at >= 86_400);
        self.remember(&key, ip, now);
        if fresh && let Some(c) = &self.cluster {
            c.remember_source(&key, ip, now, KNOWN_FOR);
        }
    }

    fn remember(&self, key: &str, ip: IpAddr, at: i64) {
        let mut known = lock(&self.known);
        if known.len() >= CAPACITY && !known.contains_key(key) {
            known.retain(|_, v| v.iter().any(|(_, t)| at - t < KNOWN_FOR));
            if known.len() >= CAPACITY {
                return;
            }
        }
        let srcs = known.entry(key.to_owned()).or_default();
        if let Some(e) = srcs.iter_mut().find(|(s, _)| *s == ip) {
            e.1 = e.1.max(at);
            return;
        }
        if srcs.len() >= KNOWN_PER_ACCOUNT {
            srcs.sort_by_key(|(_, t)| std::cmp::Reverse(*t));
            srcs.truncate(KNOWN_PER_ACCOUNT - 1);
        }
        srcs.push((ip, at));
    }

    /// Row 24: counts a request of `subject` on route `route` — in Redis for a cluster
    /// (awaited, bounded by the cluster timeout), else or when Redis does not answer here.
    pub async fn quota(&self, route: Option<usize>, subject: &str, now: i64) -> Option<QuotaState> {
        let q = self.quotas.get(&route?)?;
        if let (Some(c), Some(route_key)) = (&self.cluster, &q.cluster_key)
            && let Some((count, reset_ms)) = Box::pin(c.quota(
                route_key,
                subject,
                std::time::Duration::from_secs(q.window.per),
            ))
            .await
        {
            return Some(QuotaState::after(
                q.window.max,
                count,
                reset_ms.div_ceil(1000),
            ));
        }
        Some(lock(&q.local).hit(&subject.to_owned(), now))
    }

    /// Clients and accounts locked now on this node: `(kind, id, until)`, by expiry. The id
    /// is the IP, or the account (its keyed hash in a cluster, where names never leave a
    /// node).
    pub fn locks(&self, now: i64) -> Vec<(LockKind, String, i64)> {
        let mut out: Vec<(LockKind, String, i64)> = Vec::new();
        for kind in [LockKind::Ip, LockKind::Tokens] {
            if let Some(l) = self.by_ip(kind) {
                out.extend(
                    lock(&l.local)
                        .locks(now)
                        .into_iter()
                        .map(|(ip, until)| (kind, ip.to_string(), until)),
                );
            }
        }
        if let Some(l) = &self.account {
            out.extend(
                lock(&l.local)
                    .locks(now)
                    .into_iter()
                    .map(|(a, until)| (LockKind::Account, a, until)),
            );
        }
        out.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.1.cmp(&b.1)));
        out
    }

    /// Lifts a lock on this node: an IP, or an account by name (or by the id [`locks`]
    /// lists). Returns whether something was locked.
    ///
    /// [`locks`]: Self::locks
    pub fn unlock(&self, kind: LockKind, id: &str, now: i64) -> bool {
        match kind {
            LockKind::Ip | LockKind::Tokens => match (self.by_ip(kind), id.parse::<IpAddr>()) {
                (Some(l), Ok(ip)) => lock(&l.local).unlock(&ip, now),
                _ => false,
            },
            LockKind::Account => self.account.as_ref().is_some_and(|l| {
                let mut local = lock(&l.local);
                let by_name = local.unlock(&self.account_key(id), now);
                by_name || local.unlock(&id.to_owned(), now)
            }),
        }
    }

    /// Keys currently locked (for metrics).
    pub fn locked_keys(&self, now: i64) -> usize {
        [&self.ip, &self.tokens]
            .into_iter()
            .flatten()
            .map(|l| lock(&l.local).locked_count(now))
            .sum::<usize>()
            + self
                .account
                .as_ref()
                .map_or(0, |l| lock(&l.local).locked_count(now))
    }
}
