//! Alerts on 401/403 spikes (design §6): a pure detector that takes the time as an argument,
//! and the webhook that carries its events.
//!
//! Rule (documented in `docs/operations.md`): 401 and 403 answers (hidden ones included) are
//! counted per wall-clock minute. A minute raises a `rate` alert once its count reaches
//! `min_per_minute` and exceeds `factor` × the baseline, the mean count of the previous
//! `baseline_minutes` minutes (minutes with no refusal count as zero). One client IP with
//! `ip_burst_per_minute` refusals within a minute raises an `ip_burst` alert. Each kind
//! fires at most once per minute.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use gatehouse_core::config::AlertsConfig;

/// Longest baseline the detector keeps, minutes (the config allows up to a day).
const MAX_HISTORY: usize = 1440;
/// Client IPs tracked per minute; a spray from more addresses trips the rate alert anyway.
const MAX_IPS: usize = 10_000;
/// Time a webhook `POST` may take.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// The minute's 401/403 count is well above its baseline.
    Rate,
    /// One client IP got many 401/403 answers within a minute.
    IpBurst,
}

impl AlertKind {
    /// The `error` code of the alert's audit record and the webhook's `kind`.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Rate => "alert_rate",
            Self::IpBurst => "alert_ip_burst",
        }
    }
}

/// One alert event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alert {
    pub kind: AlertKind,
    /// Unix seconds of the start of the minute.
    pub minute: i64,
    /// 401/403 answers so far in this minute (for `IpBurst`: to `ip`).
    pub count: u64,
    /// Mean per minute over the baseline window.
    pub baseline: f64,
    /// The count that had to be reached.
    pub threshold: u64,
    pub ip: Option<IpAddr>,
}

impl Alert {
    /// A human sentence for logs, audit records and the webhook.
    pub fn describe(&self) -> String {
        match (self.kind, self.ip) {
            (AlertKind::IpBurst, Some(ip)) => format!(
                "{} 401/403 answers to {ip} within a minute (threshold {})",
                self.count, self.threshold
            ),
            _ => format!(
                "{} 401/403 answers this minute, baseline {:.1}/min (threshold {})",
                self.count, self.baseline, self.threshold
            ),
        }
    }

    /// The webhook body.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "source": "gatehouse",
            "kind": self.kind.code(),
            "minute": gatehouse_core::render::rfc3339(self.minute),
            "count": self.count,
            "baseline_per_minute": self.baseline,
            "threshold": self.threshold,
            "client_ip": self.ip.map(|i| i.to_string()),
            "summary": self.describe(),
        })
    }
}

/// Per-minute 401/403 counts and per-IP counts of the current minute.
#[derive(Debug, Default)]
pub struct Detector {
    minute: i64,
    current: u64,
    /// Counts of the previous minutes, newest last.
    history: VecDeque<u64>,
    per_ip: HashMap<IpAddr, u64>,
    rate_fired: Option<i64>,
    ip_fired: Option<i64>,
}

impl Detector {
    /// Counts one 401/403 answer at `now` to `ip`; returns the alerts it raises.
    pub fn record(
        &mut self,
        now: i64,
        ip: Option<IpAddr>,
        cfg: &AlertsConfig,
    ) -> [Option<Alert>; 2] {
        self.roll(now.div_euclid(60));
        self.current += 1;
        let minute = self.minute * 60;
        let window = usize::try_from(cfg.baseline_minutes)
            .unwrap_or(MAX_HISTORY)
            .clamp(1, MAX_HISTORY);
        let sum: u64 = self.history.iter().rev().take(window).sum();
        #[expect(clippy::cast_precision_loss, reason = "a mean for display")]
        let baseline = sum as f64 / window as f64;
        // count > factor × sum / window, in integers.
        let above =
            u128::from(self.current) * window as u128 > u128::from(cfg.factor) * u128::from(sum);
        let mut out = [None, None];
        if self.current >= cfg.min_per_minute && above && self.rate_fired != Some(self.minute) {
            self.rate_fired = Some(self.minute);
            let over = u64::try_from(u128::from(cfg.factor) * u128::from(sum) / window as u128)
                .unwrap_or(u64::MAX)
                .saturating_add(1);
            out[0] = Some(Alert {
                kind: AlertKind::Rate,
                minute,
                count: self.current,
                baseline,
                threshold: cfg.min_per_minute.max(over),
                ip: None,
            });
        }
        if let Some(ip) = ip {
            let tracked = self.per_ip.len() < MAX_IPS || self.per_ip.contains_key(&ip);
            if tracked {
                let n = self.per_ip.entry(ip).or_insert(0);
                *n += 1;
                if *n >= cfg.ip_burst_per_minute && self.ip_fired != Some(self.minute) {
                    self.ip_fired = Some(self.minute);
                    out[1] = Some(Alert {
                        kind: AlertKind::IpBurst,
                        minute,
                        count: *n,
                        baseline,
                        threshold: cfg.ip_burst_per_minute,
                        ip: Some(ip),
                    });
                }
            }
        }
        out
    }

    /// Moves to minute `m`, pushing the finished minutes (empty ones as zero). A clock that
    /// went backwards keeps counting into the current minute.
    fn roll(&mut self, m: i64) {
        if self.history.is_empty() && self.current == 0 && self.minute == 0 {
            self.minute = m;
            return;
        }
        if m <= self.minute {
            return;
        }
        self.history.push_back(self.current);
        let gap = usize::try_from(m - self.minute - 1)
            .unwrap_or(MAX_HISTORY)
            .min(MAX_HISTORY);
        self.history.extend(std::iter::repeat_n(0, gap));
        while self.history.len() > MAX_HISTORY {
            self.history.pop_front();
        }
        self.current = 0;
        self.per_ip.clear();
        self.minute = m;
    }
}

/// Posts `alert` to `url` as JSON; logs the outcome, never the URL (it often holds a token).
pub async fn post_webhook(client: crate::proxy::HttpsClient, url: String, alert: Alert) {
    let body = alert.json().to_string();
    let kind = alert.kind.code();
    match crate::proxy::post_json(&client, &url, body, "gatehouse-alerts", WEBHOOK_TIMEOUT).await {
        Ok(status) if status.is_success() => {
            tracing::debug!(%status, kind, "alert webhook delivered");
        }
        Ok(status) => tracing::warn!(%status, kind, "alert webhook refused the alert"),
        Err(e) => tracing::warn!(error = %e, kind, "alert webhook failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_040; // a minute boundary (divisible by 60)

    fn cfg() -> AlertsConfig {
        AlertsConfig {
            webhook_url: None,
            min_per_minute: 50,
            factor: 3,
            baseline_minutes: 10,
            ip_burst_per_minute: 30,
        }
    }

    fn ip(n: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, n]))
    }

    /// Sends `per_minute` refusals in each of `minutes` minutes from `start`, spread over IPs;
    /// returns the alerts.
    fn steady(
        d: &mut Detector,
        start: i64,
        minutes: i64,
        per_minute: u64,
        c: &AlertsConfig,
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        for m in 0..minutes {
            for i in 0..per_minute {
                let at = start + m * 60 + i64::try_from(i % 60).unwrap_or(0);
                out.extend(
                    d.record(at, ip(u8::try_from(i % 200).unwrap_or(0)), c)
                        .into_iter()
                        .flatten(),
                );
            }
        }
        out
    }

    #[test]
    fn synthetic_spike_over_a_quiet_baseline_alerts_once() {
        let c = cfg();
        let mut d = Detector::default();
        assert!(steady(&mut d, T0, 10, 5, &c).is_empty(), "5/min is quiet");
        // Minute 10: a spike of 120 from many addresses.
        let spike = steady(&mut d, T0 + 600, 1, 120, &c);
        assert_eq!(spike.len(), 1, "{spike:?}");
        let a = spike[0];
        assert_eq!(a.kind, AlertKind::Rate);
        assert_eq!(a.minute, T0 + 600);
        // Baseline 5/min × 3 = 15 < min 50: the 50th refusal fires.
        assert_eq!((a.count, a.threshold), (50, 50));
        assert!((a.baseline - 5.0).abs() < 1e-9);
        // The next minute alerts again if the spike goes on (once per minute).
        let next = steady(&mut d, T0 + 660, 1, 120, &c);
        assert_eq!(next.len(), 1);
    }

    #[test]
    fn the_baseline_raises_the_threshold() {
        let c = cfg();
        let mut d = Detector::default();
        // A busy but steady API: 40 refusals a minute.
        assert_eq!(steady(&mut d, T0, 10, 40, &c).len(), 0);
        // 100 in a minute is below 3 × 40 = 120: no alert.
        assert!(steady(&mut d, T0 + 600, 1, 100, &c).is_empty());
        // Baseline is now (9×40+100)/10 = 46; 3 × 46 = 138: the 139th fires.
        let a = steady(&mut d, T0 + 660, 1, 150, &c);
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!((a[0].count, a[0].threshold), (139, 139));
    }

    #[test]
    fn a_steady_high_rate_stops_alerting_once_it_is_the_baseline() {
        let c = cfg();
        let mut d = Detector::default();
        let first = steady(&mut d, T0, 1, 200, &c);
        assert_eq!(first.len(), 1, "no history: 200 ≥ 50 alerts");
        let later = steady(&mut d, T0 + 60, 20, 200, &c);
        // Minutes 1–3 still exceed 3 × the thin baseline (200/10, 400/10, 600/10); from then
        // on 200 is normal.
        assert_eq!(later.len(), 3, "{later:?}");
        assert!(later.iter().all(|a| a.minute < T0 + 4 * 60 + 1));
    }

    #[test]
    fn quiet_minutes_count_as_zero_and_gaps_are_filled() {
        let c = cfg();
        let mut d = Detector::default();
        assert_eq!(steady(&mut d, T0, 10, 45, &c).len(), 0);
        // An hour of silence later the baseline is zero again: 50 alerts.
        let a = steady(&mut d, T0 + 3600, 1, 50, &c);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].baseline, 0.0);
    }

    #[test]
    fn one_ip_burst_alerts_once_per_minute() {
        let c = cfg();
        let mut d = Detector::default();
        let mut alerts = Vec::new();
        for i in 0..40 {
            alerts.extend(d.record(T0 + i, ip(9), &c).into_iter().flatten());
        }
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].kind, AlertKind::IpBurst);
        assert_eq!(alerts[0].ip, ip(9));
        assert_eq!(alerts[0].count, 30);
        // Another address bursting in the same minute: already alerted this minute.
        let more: Vec<Alert> = (0..40)
            .flat_map(|i| d.record(T0 + 45 + i % 10, ip(10), &c).into_iter().flatten())
            .collect();
        assert!(more.iter().all(|a| a.kind == AlertKind::Rate), "{more:?}");
        // Next minute, a new burst alerts again.
        let next: Vec<Alert> = (0..30)
            .flat_map(|i| d.record(T0 + 60 + i, ip(11), &c).into_iter().flatten())
            .filter(|a| a.kind == AlertKind::IpBurst)
            .collect();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].ip, ip(11));
    }

    #[test]
    fn a_clock_going_backwards_does_not_panic_or_reset() {
        let c = cfg();
        let mut d = Detector::default();
        for i in 0..49 {
            assert_eq!(d.record(T0 + 120, None, &c), [None, None], "{i}");
        }
        // 50th refusal, stamped a minute earlier: counted into the current minute.
        assert!(d.record(T0 + 60, None, &c)[0].is_some());
    }

    #[test]
    fn webhook_body_names_the_alert() {
        let a = Alert {
            kind: AlertKind::IpBurst,
            minute: T0,
            count: 31,
            baseline: 2.5,
            threshold: 30,
            ip: ip(7),
        };
        let j = a.json();
        assert_eq!(j["kind"], "alert_ip_burst");
        assert_eq!(j["client_ip"], "192.0.2.7");
        assert_eq!(j["count"], 31);
        assert!(
            j["summary"]
                .as_str()
                .unwrap_or_default()
                .contains("192.0.2.7")
        );
    }
}
