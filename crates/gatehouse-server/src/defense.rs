//! Row 4 and row 24 at the edge: failed-authentication throttling per client IP and per
//! account, and per-route request quotas. The counters are core's pure
//! [`gatehouse_core::throttle`] types behind short locks; nothing here awaits while holding
//! one.
//!
//! The account limit spares known sources: a client IP that signed in to an account
//! successfully before is not locked out by failures on that account from elsewhere, so an
//! attacker cannot keep the real user out (design: throttling must not become a denial of
//! service against the account it protects).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use gatehouse_core::config::Config;
use gatehouse_core::throttle::{FailureLimiter, Quota, QuotaState};

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

pub struct Defense {
    ip: Option<Mutex<FailureLimiter<IpAddr>>>,
    account: Option<Mutex<FailureLimiter<String>>>,
    known: Mutex<HashMap<String, Vec<(IpAddr, i64)>>>,
    /// Per route index, when the route has a `quota`.
    quotas: HashMap<usize, Mutex<Quota<String>>>,
}

impl Defense {
    pub fn new(config: &Config) -> Self {
        fn limiter<K: Eq + std::hash::Hash + Clone>(
            w: &gatehouse_core::config::Window,
        ) -> Mutex<FailureLimiter<K>> {
            Mutex::new(FailureLimiter::new(w.max, w.per.as_secs(), CAPACITY))
        }
        Self {
            ip: config.throttle.failed_per_ip.as_ref().map(limiter),
            account: config.throttle.failed_per_account.as_ref().map(limiter),
            known: Mutex::new(HashMap::new()),
            quotas: config
                .routes
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    r.quota
                        .map(|q| (i, Mutex::new(Quota::new(q.max, q.per.as_secs(), CAPACITY))))
                })
                .collect(),
        }
    }

    /// Row 4 by client IP: seconds to wait, if locked.
    pub fn ip_locked(&self, ip: IpAddr, now: i64) -> Option<u64> {
        self.ip.as_ref().and_then(|l| lock(l).locked(&ip, now))
    }

    /// Row 4 by account, unless `ip` is a known source of that account.
    pub fn account_locked(&self, account: &str, ip: IpAddr, now: i64) -> Option<u64> {
        let retry = self
            .account
            .as_ref()
            .and_then(|l| lock(l).locked(&account.to_owned(), now))?;
        let known = lock(&self.known)
            .get(account)
            .is_some_and(|srcs| srcs.iter().any(|(s, at)| *s == ip && now - at < KNOWN_FOR));
        (!known).then_some(retry)
    }

    /// Counts a failed authentication.
    pub fn failure(&self, ip: IpAddr, account: Option<&str>, now: i64) {
        if let Some(l) = &self.ip
            && let Some(secs) = lock(l).failure(&ip, now)
        {
            tracing::warn!(client_ip = %ip, lock_seconds = secs, "client locked after repeated authentication failures");
        }
        if let (Some(l), Some(a)) = (&self.account, account)
            && let Some(secs) = lock(l).failure(&a.to_owned(), now)
        {
            tracing::warn!(account = %a, lock_seconds = secs, "account locked after repeated authentication failures");
        }
    }

    /// Remembers `ip` as a good source of `account`.
    pub fn success(&self, ip: IpAddr, account: &str, now: i64) {
        if self.account.is_none() {
            return;
        }
        let mut known = lock(&self.known);
        if known.len() >= CAPACITY && !known.contains_key(account) {
            known.retain(|_, v| v.iter().any(|(_, at)| now - at < KNOWN_FOR));
            if known.len() >= CAPACITY {
                return;
            }
        }
        let srcs = known.entry(account.to_owned()).or_default();
        if let Some(e) = srcs.iter_mut().find(|(s, _)| *s == ip) {
            e.1 = now;
            return;
        }
        if srcs.len() >= KNOWN_PER_ACCOUNT {
            srcs.sort_by_key(|(_, at)| std::cmp::Reverse(*at));
            srcs.truncate(KNOWN_PER_ACCOUNT - 1);
        }
        srcs.push((ip, now));
    }

    /// Row 24: counts a request of `subject` on route `route`.
    pub fn quota(&self, route: Option<usize>, subject: &str, now: i64) -> Option<QuotaState> {
        let q = self.quotas.get(&route?)?;
        Some(lock(q).hit(&subject.to_owned(), now))
    }

    /// Keys currently locked (for metrics).
    pub fn locked_keys(&self, now: i64) -> usize {
        self.ip.as_ref().map_or(0, |l| lock(l).locked_count(now))
            + self
                .account
                .as_ref()
                .map_or(0, |l| lock(l).locked_count(now))
    }
}
