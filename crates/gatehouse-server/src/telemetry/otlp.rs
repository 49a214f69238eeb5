//! The OTLP/HTTP exporter: JSON-encoded `ExportTraceServiceRequest`s `POST`ed to
//! `<[telemetry] otlp_endpoint>/v1/traces` (OTLP specification, "OTLP/HTTP" and "JSON
//! Protobuf Encoding": hex trace and span ids, enums as integers, 64-bit integers as
//! decimal strings, lowerCamelCase member names).
//!
//! Hand-written rather than the `opentelemetry` crates: the gateway makes three kinds of
//! span and already has an HTTP client and `serde_json`; the SDK, its OTLP exporter and
//! their protobuf code would add dozens of crates to every build for that.
//!
//! One task per gateway takes batches of up to [`BATCH`] spans from the queue
//! ([`super::Spans`]) every `export_interval`, or as soon as a full batch waits, and sends
//! them one batch at a time. A failed or refused batch is dropped and counted (a collector
//! that is down must not grow the gateway's memory): the queue's bound does the rest.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use gatehouse_core::config::TelemetryConfig;
use serde_json::{Value, json};

use super::{Attr, Span, Spans};

/// Spans per request to the collector, at most (the OpenTelemetry SDK's default
/// `maxExportBatchSize`).
pub const BATCH: usize = 512;

/// Time one export may take (the SDK's default `OTEL_EXPORTER_OTLP_TIMEOUT`).
const TIMEOUT: Duration = Duration::from_secs(10);

/// Exports the spans queued in `spans` until `telemetry` answers `None` (the gateway was
/// dropped); asks `telemetry` for the current `[telemetry]` anew for every batch, so a reload
/// changes the endpoint, name and interval.
pub fn spawn(spans: Arc<Spans>, telemetry: impl Fn() -> Option<TelemetryConfig> + Send + 'static) {
    tokio::spawn(async move {
        let client = crate::proxy::https_client(Duration::from_secs(5));
        loop {
            let every = match telemetry() {
                Some(cfg) => cfg.export_interval,
                None => return,
            };
            if spans.waiting() < BATCH {
                // The interval, or a full batch (a notification sent meanwhile is kept).
                let _ = tokio::time::timeout(every, spans.ready.notified()).await;
            }
            let Some(cfg) = telemetry() else { return };
            let batch = spans.take(BATCH);
            if batch.is_empty() {
                continue;
            }
            let n = batch.len() as u64;
            let Some(endpoint) = &cfg.otlp_endpoint else {
                // Export was switched off by a reload: what waited goes.
                spans.dropped.fetch_add(n, Ordering::Relaxed);
                continue;
            };
            let body = request_json(&cfg.service_name, &batch).to_string();
            let url = format!("{endpoint}/v1/traces");
            if send(&client, &url, body).await {
                spans.exported.fetch_add(n, Ordering::Relaxed);
            } else {
                spans.dropped.fetch_add(n, Ordering::Relaxed);
            }
        }
    });
}

/// One `POST`; `true` when the collector took it (2xx).
async fn send(client: &crate::proxy::HttpsClient, url: &str, body: String) -> bool {
    match crate::proxy::post_json(client, url, body, "gatehouse-otlp", TIMEOUT).await {
        Ok(status) if status.is_success() => true,
        Ok(status) => {
            tracing::warn!(%status, "OTLP export: the collector refused spans");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "OTLP export failed");
            false
        }
    }
}

fn attr_json(key: &str, v: &Attr) -> Value {
    let value = match v {
        Attr::Str(s) => json!({ "stringValue": s }),
        Attr::Int(i) => json!({ "intValue": i.to_string() }),
        Attr::Bool(b) => json!({ "boolValue": b }),
    };
    json!({ "key": key, "value": value })
}

fn span_json(s: &Span) -> Value {
    let mut v = json!({
        "traceId": super::hex(&s.trace_id),
        "spanId": super::hex(&s.span_id),
        "name": s.name,
        "kind": s.kind as u8,
        "startTimeUnixNano": s.start.to_string(),
        "endTimeUnixNano": s.end.to_string(),
        "attributes": s.attrs.iter().map(|(k, a)| attr_json(k, a)).collect::<Vec<_>>(),
        // STATUS_CODE_ERROR = 2, STATUS_CODE_UNSET = 0.
        "status": if s.error { json!({"code": 2}) } else { json!({}) },
    });
    if let Some(p) = &s.parent {
        v["parentSpanId"] = Value::String(super::hex(p));
    }
    v
}

/// An `ExportTraceServiceRequest` of `spans` under one resource and scope.
pub fn request_json(service_name: &str, spans: &[Span]) -> Value {
    json!({
        "resourceSpans": [{
            "resource": {"attributes": [attr_json("service.name", &Attr::Str(service_name.to_owned()))]},
            "scopeSpans": [{
                "scope": {"name": "gatehouse", "version": env!("CARGO_PKG_VERSION")},
                "spans": spans.iter().map(span_json).collect::<Vec<_>>(),
            }],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::super::SpanKind;
    use super::*;

    #[test]
    fn json_encoding_follows_otlp() {
        let s = Span {
            trace_id: [0xab; 16],
            span_id: [0x01; 8],
            parent: Some([0x02; 8]),
            name: "GET default".to_owned(),
            kind: SpanKind::Server,
            start: 1_700_000_000_000_000_000,
            end: 1_700_000_000_000_500_000,
            attrs: vec![
                ("http.response.status_code", Attr::Int(401)),
                (
                    "gatehouse.error",
                    Attr::Str("missing_credentials".to_owned()),
                ),
            ],
            error: false,
        };
        let v = request_json("edge", &[s]);
        let rs = &v["resourceSpans"][0];
        assert_eq!(
            rs["resource"]["attributes"][0],
            json!({"key": "service.name", "value": {"stringValue": "edge"}})
        );
        let span = &rs["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "abababababababababababababababab");
        assert_eq!(span["spanId"], "0101010101010101");
        assert_eq!(span["parentSpanId"], "0202020202020202");
        assert_eq!(span["kind"], 2);
        assert_eq!(span["startTimeUnixNano"], "1700000000000000000");
        assert_eq!(
            span["attributes"][0],
            json!({"key": "http.response.status_code", "value": {"intValue": "401"}})
        );
        assert_eq!(span["status"], json!({}));
    }
}
