//! `[telemetry]`: where spans go (OTLP/HTTP), under which service name, how often, and how
//! many may wait.

use std::time::Duration;

use super::{Ctx, Table, values};
use crate::config::TelemetryConfig;

/// Spans that may wait for export, at most (a bound on memory, about 1 KiB each).
const MAX_QUEUE_LIMIT: u64 = 1_000_000;

pub(super) fn telemetry(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> TelemetryConfig {
    ctx.unknown_keys(
        t,
        &[
            "otlp_endpoint",
            "service_name",
            "export_interval",
            "max_queue",
        ],
    );
    let d = TelemetryConfig::default();
    let otlp_endpoint = t.get("otlp_endpoint").and_then(|f| {
        let (url, text) = ctx.parsed(&f, |s| values::http_url(s).map(|u| (u, s.to_owned())))?;
        if !url.https && !url.is_loopback() {
            let line = ctx.line(f.span.start);
            ctx.warn(
                Some(line),
                "`telemetry.otlp_endpoint` sends spans (paths, routes, subjects) over plain http to a non-loopback host; use https",
            );
        }
        Some(text.trim_end_matches('/').to_owned())
    });
    let service_name = t
        .get("service_name")
        .and_then(|f| ctx.parsed(&f, values::non_empty))
        .unwrap_or(d.service_name);
    let export_interval =
        t.get("export_interval")
            .map_or(d.export_interval, |f| match ctx.duration(&f) {
                Some(v) if v >= Duration::from_millis(10) && v <= Duration::from_secs(600) => v,
                Some(_) => {
                    ctx.error(
                        &f.span,
                        &f.key,
                        "`export_interval` must be from `10ms` to `10m`",
                    );
                    d.export_interval
                }
                None => d.export_interval,
            });
    let max_queue = t
        .get("max_queue")
        .map_or(d.max_queue, |f| match ctx.u64(&f) {
            Some(n @ 1..=MAX_QUEUE_LIMIT) => usize::try_from(n).unwrap_or(d.max_queue),
            Some(_) => {
                ctx.error(
                    &f.span,
                    &f.key,
                    format!("`max_queue` must be from 1 to {MAX_QUEUE_LIMIT}"),
                );
                d.max_queue
            }
            None => d.max_queue,
        });
    TelemetryConfig {
        otlp_endpoint,
        service_name,
        export_interval,
        max_queue,
    }
}
