//! Traces: W3C Trace Context (<https://www.w3.org/TR/trace-context/>) on every request the
//! gateway guards, and its spans exported over OTLP/HTTP ([`otlp`]) with `[telemetry]`.
//!
//! - An incoming valid `traceparent` is continued: same trace id, and its parent id becomes
//!   the parent of the gateway's server span. Without one (or with an invalid one, §4.3:
//!   "the vendor MUST ... restart the trace") a new trace starts, and `tracestate` is dropped
//!   with it (§3.3: it is only meaningful beside the `traceparent` it came with).
//! - The upstream receives a `traceparent` naming the gateway's upstream span as parent, the
//!   sampled flag of the incoming one (ParentBased(AlwaysOn): a new trace is sampled), and
//!   `tracestate` unchanged.
//! - Every answered request — refusals too — becomes a server span (with its `error` code),
//!   a decision span and, when forwarded, an upstream (client) span. Sampled spans are put
//!   on a bounded queue only when `otlp_endpoint` is set; nothing on the request path waits
//!   for the collector.
//!
//! Ids come from a per-thread generator seeded from the OS RNG: unique and unpredictable
//! enough for trace ids (which are not secrets), and no system call per request.

pub mod otlp;

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

use gatehouse_core::config::TelemetryConfig;

use crate::record::{RequestRecord, Verdict};

pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Trace flag `sampled` (§3.2.2.5).
const SAMPLED: u8 = 0x01;

/// The trace context of one request. Bytes only (at most 44 with its `Option`): it lives in
/// every request's future, whose size counts (finding 11).
#[derive(Debug, Clone)]
pub struct Trace {
    pub trace_id: [u8; 16],
    /// The client's span (from its `traceparent`): our server span's parent.
    pub parent: Option<[u8; 8]>,
    /// The gateway's server span.
    pub span: [u8; 8],
    /// The upstream (client) span, once the request is handed on.
    upstream: Option<[u8; 8]>,
    pub flags: u8,
}

impl Trace {
    /// Continues the request's trace, or starts one.
    pub fn start(headers: &HeaderMap) -> Self {
        let incoming = {
            let mut all = headers.get_all(TRACEPARENT).iter();
            // Two `traceparent` fields are no valid context (§3.2: one header).
            match (all.next(), all.next()) {
                (Some(v), None) => parse_traceparent(v.as_bytes()),
                _ => None,
            }
        };
        let (trace_id, parent, flags) = match incoming {
            Some(p) => (p.trace_id, Some(p.parent), p.flags & SAMPLED),
            None => (new_trace_id(), None, SAMPLED),
        };
        Self {
            trace_id,
            parent,
            span: new_span_id(),
            upstream: None,
            flags,
        }
    }

    pub fn sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }

    /// Sets the headers of a request handed on (to the upstream or the guarded app): our
    /// `traceparent`, with a new upstream span as parent; `tracestate` only beside a valid
    /// incoming context. The upstream span starts with the decision's end.
    pub fn propagate(&mut self, headers: &mut HeaderMap) {
        let span = new_span_id();
        if self.parent.is_none() {
            headers.remove(TRACESTATE);
        }
        headers.insert(TRACEPARENT, traceparent(&self.trace_id, &span, self.flags));
        self.upstream = Some(span);
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// Queues the spans of the answered request `r` for export, when it is sampled and
    /// `[telemetry] otlp_endpoint` is set in `cfg` (otherwise this costs nothing).
    /// `started` is when the request arrived.
    pub fn finish(
        &self,
        cfg: &TelemetryConfig,
        spans: &Spans,
        r: &RequestRecord<'_>,
        started: Instant,
    ) {
        if !self.sampled() || cfg.otlp_endpoint.is_none() {
            return;
        }
        let took = started.elapsed();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        spans.push(self.spans(r, now.saturating_sub(took), took), cfg.max_queue);
    }

    /// The spans of the answered request `r`: the server span, the decision and, when it was
    /// forwarded, the upstream call. `start` is the arrival (since the Unix epoch), `took`
    /// the time to the answer.
    pub fn spans(&self, r: &RequestRecord<'_>, start: Duration, took: Duration) -> Vec<Span> {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let at = |offset: Duration| nanos(start + offset.min(took));
        let (begin, end) = (nanos(start), at(took));
        let route = r.route.unwrap_or(gatehouse_core::decision::DEFAULT_ROUTE);
        let mut attrs = vec![
            ("http.request.method", Attr::Str(r.method.to_owned())),
            ("url.path", Attr::Str(r.path.to_owned())),
            ("http.route", Attr::Str(route.to_owned())),
            ("http.response.status_code", Attr::Int(i64::from(r.status))),
            ("gatehouse.request_id", Attr::Str(r.request_id.to_owned())),
        ];
        match r.verdict {
            Verdict::Refused { deny, hidden } => {
                attrs.push(("gatehouse.error", Attr::Str(deny.code().to_owned())));
                if hidden {
                    attrs.push(("gatehouse.hidden", Attr::Bool(true)));
                }
            }
            Verdict::Passed(label) => {
                attrs.push(("gatehouse.pass", Attr::Str(label.to_owned())));
            }
        }
        if let Some(ip) = r.client_ip {
            attrs.push(("client.address", Attr::Str(ip.to_string())));
        }
        if let Some(s) = r.subject {
            attrs.push(("enduser.id", Attr::Str(s.to_owned())));
        }
        let mut out = Vec::with_capacity(3);
        out.push(Span {
            trace_id: self.trace_id,
            span_id: self.span,
            parent: self.parent,
            name: format!("{} {route}", r.method),
            kind: SpanKind::Server,
            start: begin,
            end,
            attrs,
            // OpenTelemetry HTTP conventions: only 5xx is an error on a server span (a
            // refusal is the gateway doing its job).
            error: r.status >= 500,
        });
        out.push(Span {
            trace_id: self.trace_id,
            span_id: new_span_id(),
            parent: Some(self.span),
            name: "gatehouse.decision".to_owned(),
            kind: SpanKind::Internal,
            start: begin,
            end: at(r.decision),
            attrs: match r.verdict {
                Verdict::Refused { deny, .. } => {
                    vec![("gatehouse.error", Attr::Str(deny.code().to_owned()))]
                }
                Verdict::Passed(label) => vec![("gatehouse.pass", Attr::Str(label.to_owned()))],
            },
            error: false,
        });
        if let Some(span) = self.upstream {
            let upstream = r.upstream.unwrap_or(Duration::ZERO);
            let upstream_error = matches!(
                r.verdict,
                Verdict::Refused { deny, .. } if matches!(deny.code(), "upstream_unavailable" | "upstream_timeout")
            );
            out.push(Span {
                trace_id: self.trace_id,
                span_id: span,
                parent: Some(self.span),
                name: format!("{} upstream", r.method),
                kind: SpanKind::Client,
                start: at(r.decision),
                end: at(r.decision + upstream),
                attrs: vec![("http.request.method", Attr::Str(r.method.to_owned()))],
                error: upstream_error,
            });
        }
        out
    }
}

/// One finished span, as exported.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent: Option<[u8; 8]>,
    pub name: String,
    pub kind: SpanKind,
    /// Unix nanoseconds.
    pub start: u64,
    pub end: u64,
    pub attrs: Vec<(&'static str, Attr)>,
    pub error: bool,
}

/// OTLP `SpanKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Internal = 1,
    Server = 2,
    Client = 3,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Str(String),
    Int(i64),
    Bool(bool),
}

/// Spans waiting for the exporter, and what became of them (`/metrics`).
#[derive(Default)]
pub struct Spans {
    queue: Mutex<VecDeque<Span>>,
    /// Wakes the exporter when a full batch waits.
    pub(crate) ready: tokio::sync::Notify,
    pub exported: AtomicU64,
    /// Dropped: the queue was full, or the collector refused or did not answer.
    pub dropped: AtomicU64,
}

impl Spans {
    /// Queues a finished request's spans; drops them (counted) beyond `max_queue`.
    pub fn push(&self, spans: Vec<Span>, max_queue: usize) {
        let n = spans.len() as u64;
        let full = {
            let mut q = match self.queue.lock() {
                Ok(q) => q,
                Err(p) => p.into_inner(),
            };
            if q.len() + spans.len() > max_queue {
                None
            } else {
                q.extend(spans);
                Some(q.len() >= otlp::BATCH)
            }
        };
        match full {
            None => {
                self.dropped.fetch_add(n, Ordering::Relaxed);
            }
            Some(true) => self.ready.notify_one(),
            Some(false) => {}
        }
    }

    /// Up to `n` of the oldest waiting spans.
    pub fn take(&self, n: usize) -> Vec<Span> {
        let mut q = match self.queue.lock() {
            Ok(q) => q,
            Err(p) => p.into_inner(),
        };
        let n = n.min(q.len());
        q.drain(..n).collect()
    }

    pub fn waiting(&self) -> usize {
        match self.queue.lock() {
            Ok(q) => q.len(),
            Err(p) => p.into_inner().len(),
        }
    }
}

/// A valid `traceparent` (§3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub parent: [u8; 8],
    pub flags: u8,
}

/// Parses `version-traceid-parentid-flags` (§3.2.2): lowercase hex only, version `ff`
/// invalid, version `00` exactly 55 characters; a higher version may append `-…` fields
/// (§4.3: parse what version 00 defines). All-zero trace or parent ids are invalid.
pub fn parse_traceparent(v: &[u8]) -> Option<TraceParent> {
    let v = v.trim_ascii();
    if v.len() < 55 {
        return None;
    }
    let version = hex_byte(v.get(0..2)?)?;
    if version == 0xff || (version == 0 && v.len() != 55) || (v.len() > 55 && v[55] != b'-') {
        return None;
    }
    if v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let mut trace_id = [0u8; 16];
    for (i, b) in trace_id.iter_mut().enumerate() {
        *b = hex_byte(&v[3 + 2 * i..5 + 2 * i])?;
    }
    let mut parent = [0u8; 8];
    for (i, b) in parent.iter_mut().enumerate() {
        *b = hex_byte(&v[36 + 2 * i..38 + 2 * i])?;
    }
    let flags = hex_byte(&v[53..55])?;
    if trace_id == [0; 16] || parent == [0; 8] {
        return None;
    }
    Some(TraceParent {
        trace_id,
        parent,
        flags,
    })
}

/// Two lowercase hex digits (§3.2.2.2: uppercase is invalid).
fn hex_byte(b: &[u8]) -> Option<u8> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    match b {
        [hi, lo] => Some(digit(*hi)? << 4 | digit(*lo)?),
        _ => None,
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes the lowercase hex of `bytes` into `out` (two digits a byte; `out` is twice as long).
fn hex_into(out: &mut [u8], bytes: &[u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX_DIGITS[usize::from(b >> 4)];
        pair[1] = HEX_DIGITS[usize::from(b & 0xf)];
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    hex_into(&mut out, bytes);
    out.into_iter().map(char::from).collect()
}

/// `00-<trace id>-<span id>-<flags>`: the version this gateway writes (§3.2.2.1). Built in
/// one fixed buffer (it goes on every forwarded request).
fn traceparent(trace_id: &[u8; 16], span: &[u8; 8], flags: u8) -> HeaderValue {
    let mut b = [b'-'; 55];
    b[..2].copy_from_slice(b"00");
    hex_into(&mut b[3..35], trace_id);
    hex_into(&mut b[36..52], span);
    hex_into(&mut b[53..55], &[flags]);
    HeaderValue::from_bytes(&b).unwrap_or_else(|_| HeaderValue::from_static(""))
}

thread_local! {
    /// SplitMix64 state, seeded from the OS RNG on a thread's first id.
    static STATE: Cell<u64> = const { Cell::new(0) };
}

fn next_u64() -> u64 {
    STATE.with(|s| {
        let mut x = s.get();
        if x == 0 {
            let mut b = [0u8; 8];
            // Without the OS RNG the ids are still unique per thread and time.
            if aws_lc_rs::rand::fill(&mut b).is_err() {
                b = (SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64))
                .to_le_bytes();
            }
            x = u64::from_le_bytes(b) | 1;
        }
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(x);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

fn new_span_id() -> [u8; 8] {
    loop {
        let v = next_u64();
        if v != 0 {
            return v.to_be_bytes();
        }
    }
}

fn new_trace_id() -> [u8; 16] {
    loop {
        let (a, b) = (next_u64(), next_u64());
        if a | b != 0 {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&a.to_be_bytes());
            id[8..].copy_from_slice(&b.to_be_bytes());
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_specification_example() {
        let p = parse_traceparent(VALID.as_bytes()).unwrap();
        assert_eq!(hex(&p.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex(&p.parent), "00f067aa0ba902b7");
        assert_eq!(p.flags, 1);
    }

    #[test]
    fn writes_what_it_parses() {
        let p = parse_traceparent(VALID.as_bytes()).unwrap();
        let written = traceparent(&p.trace_id, &p.parent, p.flags);
        assert_eq!(written.to_str().unwrap(), VALID);
        let flags = traceparent(&p.trace_id, &p.parent, 0xa5);
        assert!(flags.to_str().unwrap().ends_with("-a5"), "{flags:?}");
    }

    #[test]
    fn refuses_what_section_3_2_refuses() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            // Uppercase hex, all-zero ids, version ff, extra data on version 00.
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // A higher version may add fields, but only after a `-`.
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ] {
            assert_eq!(parse_traceparent(bad.as_bytes()), None, "{bad}");
        }
        // §4.3: a later version is parsed as far as version 00 goes.
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-what-ever";
        assert_eq!(parse_traceparent(later.as_bytes()).unwrap().flags, 3);
    }

    #[test]
    fn continues_an_incoming_trace_and_starts_one_otherwise() {
        let mut h = HeaderMap::new();
        h.insert(TRACEPARENT, HeaderValue::from_static(VALID));
        h.insert(TRACESTATE, HeaderValue::from_static("congo=t61rcWkgMzE"));
        let mut t = Trace::start(&h);
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(t.sampled());
        t.propagate(&mut h);
        let sent = h.get(TRACEPARENT).unwrap().to_str().unwrap().to_owned();
        let p = parse_traceparent(sent.as_bytes()).unwrap();
        assert_eq!(p.trace_id, t.trace_id);
        assert_ne!(
            hex(&p.parent),
            "00f067aa0ba902b7",
            "our span is the parent now"
        );
        assert_ne!(
            p.parent, t.span,
            "the upstream span is a child of the server span"
        );
        assert_eq!(h.get(TRACESTATE).unwrap(), "congo=t61rcWkgMzE");

        // Not sampled upstream: the flag is kept.
        let mut h = HeaderMap::new();
        h.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
        );
        assert!(!Trace::start(&h).sampled());

        // Invalid: a new sampled trace, and the orphaned tracestate is dropped.
        let mut h = HeaderMap::new();
        h.insert(TRACEPARENT, HeaderValue::from_static("garbage"));
        h.insert(TRACESTATE, HeaderValue::from_static("congo=t61rcWkgMzE"));
        let mut t = Trace::start(&h);
        assert!(t.parent.is_none() && t.sampled());
        t.propagate(&mut h);
        let sent = h.get(TRACEPARENT).unwrap().to_str().unwrap();
        assert!(
            sent.starts_with(&format!("00-{}-", t.trace_id_hex())),
            "{sent}"
        );
        assert!(sent.ends_with("-01"), "{sent}");
        assert!(h.get(TRACESTATE).is_none());
        let other = Trace::start(&HeaderMap::new());
        assert_ne!(other.trace_id, t.trace_id);
    }

    #[test]
    fn the_context_stays_small() {
        // It is part of every request's future (finding 11).
        assert!(std::mem::size_of::<Option<Trace>>() <= 44);
    }

    #[test]
    fn the_queue_is_bounded() {
        let spans = Spans::default();
        let t = Trace::start(&HeaderMap::new());
        let span = Span {
            trace_id: t.trace_id,
            span_id: t.span,
            parent: None,
            name: "x".to_owned(),
            kind: SpanKind::Server,
            start: 1,
            end: 2,
            attrs: Vec::new(),
            error: false,
        };
        spans.push(vec![span.clone(), span.clone()], 3);
        spans.push(vec![span.clone(), span.clone()], 3);
        assert_eq!(spans.waiting(), 2);
        assert_eq!(spans.dropped.load(Ordering::Relaxed), 2);
        assert_eq!(spans.take(10).len(), 2);
        assert_eq!(spans.waiting(), 0);
    }
}
