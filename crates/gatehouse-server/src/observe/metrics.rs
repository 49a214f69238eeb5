//! Counters and histograms behind `/metrics`, rendered as Prometheus text (exposition format
//! 0.0.4).
//!
//! Hand-written rather than `prometheus-client`: the set is small and fixed, most values are
//! read from the gateway at scrape time anyway (throttled keys, revocations, queue depth),
//! and the one labelled counter is keyed by `(route, status, reason)` where every part is a
//! name from the config or a `&'static str` code, so the hot path counts without allocating
//! and no new dependency enters the tree.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the decision-latency buckets, seconds (password hashing lands near the top).
pub const DECISION_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];
/// Upper bounds of the upstream-latency buckets, seconds.
pub const UPSTREAM_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A fixed-bucket histogram; `le` bounds are inclusive as Prometheus defines them.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One per bound plus `+Inf`; not cumulative (summed when rendered).
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self.bounds.partition_point(|b| *b < secs);
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            cumulative += b.load(Ordering::Relaxed);
            match self.bounds.get(i) {
                Some(le) => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        #[expect(
            clippy::cast_precision_loss,
            reason = "seconds as f64 for the text format"
        )]
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// FNV-1a (64 bit) for the series maps: their keys are route names from the config and
/// static codes, never chosen by clients, so SipHash's flooding resistance buys nothing, and
/// every answer hashes two keys.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

type FnvBuild = std::hash::BuildHasherDefault<Fnv>;
type Series = HashMap<(u16, &'static str), AtomicU64, FnvBuild>;
/// (route name, requirement code) → count.
type Unmet = HashMap<(Box<str>, Box<str>), AtomicU64, FnvBuild>;

/// The request-path metrics the gateway updates itself.
#[derive(Debug)]
pub struct Metrics {
    /// route name → (status, reason) → count.
    decisions: RwLock<HashMap<Box<str>, Series, FnvBuild>>,
    pub decision_seconds: Histogram,
    pub upstream_seconds: Histogram,
    pub alerts_total: AtomicU64,
    /// (route name, requirement code) → unmet count (row 25). The codes are the ones the
    /// config declares (`[[route.require]] code`) and the two of conditions: bounded.
    requirements: RwLock<Unmet>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            decisions: RwLock::new(HashMap::default()),
            decision_seconds: Histogram::new(DECISION_BUCKETS),
            upstream_seconds: Histogram::new(UPSTREAM_BUCKETS),
            alerts_total: AtomicU64::new(0),
            requirements: RwLock::new(HashMap::default()),
        }
    }
}

impl Metrics {
    /// Counts one answer. Allocates only the first time a series appears.
    pub fn decision(&self, route: &str, status: u16, reason: &'static str) {
        {
            let map = match self.decisions.read() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if let Some(c) = map.get(route).and_then(|s| s.get(&(status, reason))) {
                c.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut map = match self.decisions.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        map.entry(route.into())
            .or_default()
            .entry((status, reason))
            .or_insert_with(|| AtomicU64::new(0))
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one unmet requirement of a row-25 refusal.
    pub fn requirement_unmet(&self, route: &str, code: &str) {
        {
            let map = match self.requirements.read() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if let Some(c) = map.get(&(Box::from(route), Box::from(code))) {
                c.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut map = match self.requirements.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        map.entry((route.into(), code.into()))
            .or_insert_with(|| AtomicU64::new(0))
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The count of one series (tests, the dashboard).
    pub fn decisions_of(&self, route: &str, status: u16, reason: &str) -> u64 {
        let map = match self.decisions.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        map.get(route)
            .and_then(|s| s.iter().find(|((st, r), _)| *st == status && *r == reason))
            .map_or(0, |(_, c)| c.load(Ordering::Relaxed))
    }

    /// Every series of `gatehouse_decisions_total` with its count so far, sorted (the
    /// per-minute rollups are the differences between two readings).
    pub fn decision_counts(&self) -> Vec<(String, u16, &'static str, u64)> {
        let map = match self.decisions.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut rows: Vec<(String, u16, &'static str, u64)> = map
            .iter()
            .flat_map(|(route, s)| {
                s.iter().map(move |((st, r), c)| {
                    (route.to_string(), *st, *r, c.load(Ordering::Relaxed))
                })
            })
            .collect();
        drop(map);
        rows.sort_unstable();
        rows
    }

    /// `gatehouse_decisions_total` and both histograms.
    pub fn render(&self, out: &mut String) {
        out.push_str(
            "# HELP gatehouse_decisions_total Answers by route name, status sent and reason \
             (the true error code for hidden 404s; allowed, public, preflight, … for passes).\n\
             # TYPE gatehouse_decisions_total counter\n",
        );
        for (route, status, reason, n) in self.decision_counts() {
            let _ = writeln!(
                out,
                "gatehouse_decisions_total{{route=\"{}\",status=\"{status}\",reason=\"{}\"}} {n}",
                escape(&route),
                escape(reason)
            );
        }
        out.push_str(
            "# HELP gatehouse_requirements_unmet_total Unmet requirements of row-25 refusals \
             (requirement_not_met) by route name and the requirement's configured code.\n\
             # TYPE gatehouse_requirements_unmet_total counter\n",
        );
        let mut unmet: Vec<(String, String, u64)> = {
            let map = match self.requirements.read() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            map.iter()
                .map(|((r, c), n)| (r.to_string(), c.to_string(), n.load(Ordering::Relaxed)))
                .collect()
        };
        unmet.sort_unstable();
        for (route, code, n) in unmet {
            let _ = writeln!(
                out,
                "gatehouse_requirements_unmet_total{{route=\"{}\",requirement=\"{}\"}} {n}",
                escape(&route),
                escape(&code)
            );
        }
        self.decision_seconds.render(
            out,
            "gatehouse_decision_seconds",
            "Time from receiving a request to its decision.",
        );
        self.upstream_seconds.render(
            out,
            "gatehouse_upstream_seconds",
            "Time from forwarding a request to the upstream's response headers.",
        );
    }
}

/// Label value escaping of the text format: `\`, `"` and newline.
pub fn escape(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return v.into();
    }
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

/// One un-labelled sample with its HELP and TYPE lines.
pub fn sample(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_inclusive() {
        let h = Histogram::new(&[0.1, 1.0]);
        h.observe(Duration::from_millis(100)); // le=0.1 (inclusive)
        h.observe(Duration::from_millis(500));
        h.observe(Duration::from_secs(3));
        let mut out = String::new();
        h.render(&mut out, "x", "help");
        assert!(out.contains("x_bucket{le=\"0.1\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_sum 3.6\n"), "{out}");
        assert!(out.contains("x_count 3\n"), "{out}");
    }

    #[test]
    fn decisions_count_per_series_and_render_sorted() {
        let m = Metrics::default();
        m.decision("admin", 403, "insufficient_role");
        m.decision("admin", 403, "insufficient_role");
        m.decision("default", 401, "missing_credentials");
        assert_eq!(m.decisions_of("admin", 403, "insufficient_role"), 2);
        assert_eq!(m.decisions_of("admin", 401, "insufficient_role"), 0);
        let mut out = String::new();
        m.render(&mut out);
        let admin = out
            .find("route=\"admin\",status=\"403\",reason=\"insufficient_role\"} 2")
            .unwrap_or(usize::MAX);
        let default = out
            .find("route=\"default\",status=\"401\",reason=\"missing_credentials\"} 1")
            .unwrap_or(usize::MAX);
        assert!(admin < default && default < usize::MAX, "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape("plain"), "plain");
    }
}
