//! Observation (design §6): the one hook every answered request passes through —
//! [`Gateway::observe`] — feeding the metrics, the alert detector and the audit trail.
//!
//! The hook is cheap for allowed requests: with `[audit] log_allowed = false` it bumps
//! counters and histograms and allocates nothing (after a series' first appearance). Audit
//! records go through a bounded queue to one writer task ([`audit::AuditSink`]).

pub mod alerts;
pub mod audit;
pub mod metrics;

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use gatehouse_core::config::Scheme;
use gatehouse_core::deny::Deny;
use gatehouse_store::{AuditKind, AuditRecord};

pub use alerts::{Alert, AlertKind, Detector};
pub use audit::{AuditSink, record_json};
pub use metrics::Metrics;

use crate::gateway::Gateway;

/// How a request ended.
#[derive(Debug, Clone, Copy)]
pub enum Verdict<'a> {
    /// Answered from a [`Deny`]; `hidden` when row 20 turned it into a 404.
    Refused { deny: &'a Deny, hidden: bool },
    /// Passed: `allowed`, `public`, `preflight`, or a token-service success
    /// (`signed_in`, `refreshed`, `signed_out`).
    Passed(&'static str),
}

/// One answered request, as the edge saw it. Borrowed: building it allocates nothing.
#[derive(Debug, Clone, Copy)]
pub struct RequestRecord<'a> {
    /// Unix seconds.
    pub time: i64,
    pub request_id: &'a str,
    /// Route name; `None` for `[defaults]` (and requests refused before routing).
    pub route: Option<&'a str>,
    pub method: &'a str,
    /// Normalized path (the raw path when it could not be normalized); never the query.
    pub path: &'a str,
    pub client_ip: Option<IpAddr>,
    /// The proven subject, when verification succeeded.
    pub subject: Option<&'a str>,
    /// Scheme of the presented credential.
    pub scheme: Option<Scheme>,
    /// The status sent.
    pub status: u16,
    pub verdict: Verdict<'a>,
    /// Time from receiving the request to its decision.
    pub decision: Duration,
    /// Time the upstream took to answer with headers, when the request was forwarded.
    pub upstream: Option<Duration>,
}

/// Metrics, alerts and audit of one gateway.
#[derive(Default)]
pub struct Observer {
    pub metrics: Metrics,
    /// The per-minute rollups not yet in the store (the admin console's charts).
    pub stats: crate::admin::stats::Folder,
    pub audit: AuditSink,
    /// Finished spans waiting for the OTLP exporter (`[telemetry]`).
    pub spans: std::sync::Arc<crate::telemetry::Spans>,
    detector: Mutex<Detector>,
    webhook: OnceLock<crate::proxy::HttpsClient>,
}

/// The audit `detail` of a refusal: what happened, from the decision's facts only. Never a
/// credential, token, `mfa_token` or unrecognised scheme word.
pub fn audit_detail(deny: &Deny) -> String {
    deny.entry().audit.to_text()
}

impl Gateway {
    /// Records one answered request: metrics always; the alert detector for 401/403; an
    /// audit record for every refusal, and for passes when `[audit] log_allowed` is on.
    pub fn observe(&self, r: &RequestRecord<'_>) {
        let obs = &self.observer;
        let route = r.route.unwrap_or(gatehouse_core::decision::DEFAULT_ROUTE);
        let (reason, error) = match r.verdict {
            Verdict::Refused { deny, .. } => (deny.code(), Some(deny)),
            Verdict::Passed(label) => (label, None),
        };
        obs.metrics.decision(route, r.status, reason);
        if let Some(Deny::RequirementNotMet { unmet }) = error {
            for u in unmet {
                obs.metrics.requirement_unmet(route, &u.code);
            }
        }
        obs.metrics.decision_seconds.observe(r.decision);
        if let Some(u) = r.upstream {
            obs.metrics.upstream_seconds.observe(u);
        }
        match error {
            // Passes need the config only to know whether to record them.
            None => {
                if !self.runtime().config.audit.log_allowed {
                    return;
                }
            }
            // The true status decides: a hidden 404 is still a 401/403 for alerting.
            Some(deny) => {
                if deny.entry().alerts {
                    let rt = self.runtime();
                    self.check_alerts(r.time, r.client_ip, &rt.config.alerts);
                }
            }
        }
        let (hidden, detail) = match r.verdict {
            Verdict::Refused { deny, hidden } => (hidden && deny.hideable(), audit_detail(deny)),
            Verdict::Passed(label) => (false, label.to_owned()),
        };
        obs.audit.push(
            AuditRecord {
                time: r.time,
                kind: AuditKind::Request,
                request_id: r.request_id.to_owned(),
                route: route.to_owned(),
                method: r.method.to_owned(),
                path: r.path.to_owned(),
                client_ip: r.client_ip.map(crate::net::ip_text),
                principal: r.subject.map(str::to_owned),
                scheme: r.scheme.map(|s| s.as_str().to_owned()),
                status: r.status,
                error: error.map(|d| d.code().to_owned()),
                hidden,
                detail,
            },
            r.time,
        );
    }

    fn check_alerts(
        &self,
        now: i64,
        ip: Option<IpAddr>,
        cfg: &gatehouse_core::config::AlertsConfig,
    ) {
        let fired = {
            let mut d = match self.observer.detector.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            d.record(now, ip, cfg)
        };
        for alert in fired.into_iter().flatten() {
            self.raise(alert, cfg.webhook_url.as_deref(), now);
        }
    }

    /// An alert event: a log line, an audit record, and the webhook if configured.
    fn raise(&self, alert: Alert, webhook: Option<&str>, now: i64) {
        let obs = &self.observer;
        obs.metrics.alerts_total.fetch_add(1, Ordering::Relaxed);
        let summary = alert.describe();
        tracing::warn!(
            kind = alert.kind.code(),
            count = alert.count,
            threshold = alert.threshold,
            client_ip = alert.ip.map(|i| i.to_string()),
            "alert: {summary}"
        );
        obs.audit.push(
            AuditRecord {
                time: now,
                kind: AuditKind::Alert,
                request_id: self.ids.next(),
                route: "-".into(),
                method: "-".into(),
                path: "-".into(),
                client_ip: alert.ip.map(|i| i.to_string()),
                principal: None,
                scheme: None,
                status: 0,
                error: Some(alert.kind.code().to_owned()),
                hidden: false,
                detail: summary,
            },
            now,
        );
        if let Some(url) = webhook
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let client = obs
                .webhook
                .get_or_init(|| crate::proxy::https_client(alerts::WEBHOOK_TIMEOUT))
                .clone();
            handle.spawn(alerts::post_webhook(client, url.to_owned(), alert));
        }
    }

    /// Writes every queued audit record and stops the writer. Call after the servers have
    /// stopped; records observed later are dropped and counted.
    pub async fn shutdown(&self) {
        crate::admin::stats::flush(self, crate::clock::now()).await;
        self.observer.audit.shutdown().await;
    }

    /// Prometheus text for `/metrics` (docs/operations.md lists every series).
    pub fn render_metrics(&self, now: i64) -> String {
        use metrics::sample;
        let obs = &self.observer;
        let mut out = String::with_capacity(8 * 1024);
        obs.metrics.render(&mut out);
        out.push_str(
            "# HELP gatehouse_credential_cache_hits_total Verified-credential cache hits by kind.\n\
             # TYPE gatehouse_credential_cache_hits_total counter\n",
        );
        for (kind, s) in [
            ("basic", &self.cache_stats.basic),
            ("bearer", &self.cache_stats.bearer),
        ] {
            out.push_str(&format!(
                "gatehouse_credential_cache_hits_total{{kind=\"{kind}\"}} {}\n",
                s.hits.load(Ordering::Relaxed)
            ));
        }
        out.push_str(
            "# HELP gatehouse_credential_cache_misses_total Verified-credential cache misses by kind.\n\
             # TYPE gatehouse_credential_cache_misses_total counter\n",
        );
        for (kind, s) in [
            ("basic", &self.cache_stats.basic),
            ("bearer", &self.cache_stats.bearer),
        ] {
            out.push_str(&format!(
                "gatehouse_credential_cache_misses_total{{kind=\"{kind}\"}} {}\n",
                s.misses.load(Ordering::Relaxed)
            ));
        }
        let rt = self.runtime();
        let stats = &obs.audit.stats;
        let spans = &obs.spans;
        let gauges: [(&str, &str, &str, u64); 15] = [
            (
                "gatehouse_spans_exported_total",
                "counter",
                "Spans the OTLP collector took.",
                spans.exported.load(Ordering::Relaxed),
            ),
            (
                "gatehouse_spans_dropped_total",
                "counter",
                "Spans dropped: the export queue was full, or the collector refused them or did not answer.",
                spans.dropped.load(Ordering::Relaxed),
            ),
            (
                "gatehouse_password_hashes_total",
                "counter",
                "Password hashes computed (throttled requests compute none).",
                self.hashes_started.load(Ordering::Relaxed),
            ),
            (
                "gatehouse_password_hashes_refused_total",
                "counter",
                "Password checks answered 503 because the hashing queue was full.",
                self.hasher.refused.load(Ordering::Relaxed),
            ),
            (
                "gatehouse_signing_key_reloads_total",
                "counter",
                "Forced re-reads of the signing keys from the store after a token of ours with an unknown kid.",
                self.own_key_reload.reads(),
            ),
            (
                "gatehouse_throttled_keys",
                "gauge",
                "Client IPs and accounts locked by failed-authentication throttling now.",
                rt.defense.locked_keys(now) as u64,
            ),
            (
                "gatehouse_tarpit_held",
                "gauge",
                "Answers to locked clients held by the tarpit now.",
                self.tarpit.held() as u64,
            ),
            (
                "gatehouse_revocations",
                "gauge",
                "Revoked token ids and sessions this node holds.",
                self.revocations.len() as u64,
            ),
            (
                "gatehouse_audit_queue_depth",
                "gauge",
                "Audit records waiting for the writer.",
                obs.audit.depth() as u64,
            ),
            (
                "gatehouse_audit_dropped_total",
                "counter",
                "Audit records dropped because the queue was full or closed.",
                stats.dropped.load(Ordering::Relaxed),
            ),
            (
                "gatehouse_audit_written_total",
                "counter",
                "Audit records written to the store.",
                stats.written.load(Ordering::Relaxed),
            ),
            (
                "gatehouse_audit_store_failures_total",
                "counter",
                "Audit records given up for the store (backlog full, or the store still failing at shutdown); they are in the audit file.",
                stats.store_failed.load(Ordering::Relaxed),
            ),
            (
                "gatehouse_audit_store_backlog",
                "gauge",
                "Audit records waiting for the store to answer again.",
                stats.store_backlog.load(Ordering::Relaxed),
            ),
            (
                "gatehouse_audit_file_failures_total",
                "counter",
                "Audit records the JSON-lines file did not take.",
                stats.file_failed.load(Ordering::Relaxed),
            ),
            (
                "gatehouse_alerts_total",
                "counter",
                "Alert events raised (401/403 spikes and IP bursts).",
                obs.metrics.alerts_total.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, value) in gauges {
            sample(&mut out, name, kind, help, value);
        }
        if let Some(c) = &self.cluster {
            sample(
                &mut out,
                "gatehouse_cluster_redis_up",
                "gauge",
                "1 when the last Redis call of this node succeeded, 0 while it falls back to local limits.",
                u64::from(c.is_up()),
            );
            sample(
                &mut out,
                "gatehouse_cluster_redis_fallbacks_total",
                "counter",
                "Counts (failures, quota hits, Digest nonce counts) that used this node's own state because Redis did not answer.",
                c.fallbacks(),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_never_repeat_secrets() {
        let secret = "sk_live_abcdefghijklmnop";
        for d in [
            Deny::UnsupportedScheme {
                presented: secret.into(),
            },
            Deny::MfaRequired {
                mfa_token: secret.into(),
            },
        ] {
            assert!(!audit_detail(&d).contains(secret), "{d:?}");
        }
        assert_eq!(
            audit_detail(&Deny::UnsupportedScheme {
                presented: "Negotiate".into()
            }),
            "scheme `negotiate` not accepted on this route"
        );
    }
}
