//! The gateway's observation: each answered request handed to the observer with the
//! current config, the decision rollups flushed to the store, and `/metrics`, which reads
//! every service's counters.

use std::sync::atomic::Ordering;

use super::Gateway;
use crate::observe::metrics::sample;
use crate::record::RequestRecord;

impl Gateway {
    /// Records one answered request ([`crate::observe::Observer::observe`]).
    pub fn observe(&self, r: &RequestRecord<'_>) {
        self.observer.observe(r, &self.runtime().config, &self.ids);
    }

    /// Adds the decision counts since the last flush to the store, as rows of the minute of
    /// `now`, and purges rollups past `[admin] stats_retention`. Returns the rows written.
    pub async fn flush_stats(&self, now: i64) -> usize {
        let retention = self.runtime().config.admin.stats_retention;
        self.observer
            .stats
            .flush(&self.observer.metrics, self.store.as_ref(), retention, now)
            .await
    }

    /// Writes every queued audit record and stops the writer. Call after the servers have
    /// stopped; records observed later are dropped and counted.
    pub async fn shutdown(&self) {
        self.flush_stats(crate::clock::now()).await;
        self.observer.audit.shutdown().await;
    }

    /// Prometheus text for `/metrics` (docs/operations.md lists every series).
    pub fn render_metrics(&self, now: i64) -> String {
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
