//! Observation (design §6): the one hook every answered request passes through —
//! [`Observer::observe`] — feeding the metrics, the alert detector and the audit trail.
//!
//! The hook is cheap for allowed requests: with `[audit] log_allowed = false` it bumps
//! counters and histograms and allocates nothing (after a series' first appearance). Audit
//! records go through a bounded queue to one writer task ([`audit::AuditSink`]).

pub mod alerts;
pub mod audit;
pub mod metrics;
pub mod stats;

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, OnceLock};

use gatehouse_core::config::Config;
use gatehouse_core::deny::Deny;
use gatehouse_store::{AuditKind, AuditRecord};

pub use crate::record::{RequestRecord, Verdict};
pub use alerts::{Alert, AlertKind, Detector};
pub use audit::{AuditSink, record_json};
pub use metrics::Metrics;

use crate::request_id::RequestIds;

/// Metrics, alerts and audit of one gateway.
#[derive(Default)]
pub struct Observer {
    pub metrics: Metrics,
    /// The per-minute rollups not yet in the store (the admin console's charts).
    pub stats: stats::Folder,
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

impl Observer {
    /// Records one answered request: metrics always; the alert detector for 401/403; an
    /// audit record for every refusal, and for passes when `[audit] log_allowed` is on.
    /// `config` is the runtime's; `ids` name the audit records of alerts.
    pub fn observe(&self, r: &RequestRecord<'_>, config: &Config, ids: &RequestIds) {
        let route = r.route.unwrap_or(gatehouse_core::decision::DEFAULT_ROUTE);
        let (reason, error) = match r.verdict {
            Verdict::Refused { deny, .. } => (deny.code(), Some(deny)),
            Verdict::Passed(label) => (label, None),
        };
        self.metrics.decision(route, r.status, reason);
        if let Some(Deny::RequirementNotMet { unmet }) = error {
            for u in unmet {
                self.metrics.requirement_unmet(route, &u.code);
            }
        }
        self.metrics.decision_seconds.observe(r.decision);
        if let Some(u) = r.upstream {
            self.metrics.upstream_seconds.observe(u);
        }
        match error {
            // Passes need the config only to know whether to record them.
            None => {
                if !config.audit.log_allowed {
                    return;
                }
            }
            // The true status decides: a hidden 404 is still a 401/403 for alerting.
            Some(deny) => {
                if deny.entry().alerts {
                    self.check_alerts(r.time, r.client_ip, &config.alerts, ids);
                }
            }
        }
        let (hidden, detail) = match r.verdict {
            Verdict::Refused { deny, hidden } => (hidden && deny.hideable(), audit_detail(deny)),
            Verdict::Passed(label) => (false, label.to_owned()),
        };
        self.audit.push(
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
        ids: &RequestIds,
    ) {
        let fired = {
            let mut d = match self.detector.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            d.record(now, ip, cfg)
        };
        for alert in fired.into_iter().flatten() {
            self.raise(alert, cfg.webhook_url.as_deref(), now, ids);
        }
    }

    /// An alert event: a log line, an audit record, and the webhook if configured.
    fn raise(&self, alert: Alert, webhook: Option<&str>, now: i64, ids: &RequestIds) {
        self.metrics.alerts_total.fetch_add(1, Ordering::Relaxed);
        let summary = alert.describe();
        tracing::warn!(
            kind = alert.kind.code(),
            count = alert.count,
            threshold = alert.threshold,
            client_ip = alert.ip.map(|i| i.to_string()),
            "alert: {summary}"
        );
        self.audit.push(
            AuditRecord {
                time: now,
                kind: AuditKind::Alert,
                request_id: ids.next(),
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
            let client = self
                .webhook
                .get_or_init(|| crate::proxy::https_client(alerts::WEBHOOK_TIMEOUT))
                .clone();
            handle.spawn(alerts::post_webhook(client, url.to_owned(), alert));
        }
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
