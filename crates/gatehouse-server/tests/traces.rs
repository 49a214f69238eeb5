//! Traces end to end (design §6, issue 14): a request through the gateway reaches the
//! upstream with a `traceparent` of the same trace — the client's continued, or a new one —
//! and a small OTLP/HTTP receiver gets the spans (refusals included) with the trace id the
//! upstream saw.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use common::{Harness, partner_token};
use gatehouse_server::clock::now;
use serde_json::{Value, json};

/// What the OTLP receiver got: every span of every request, flattened, with the resource's
/// `service.name`.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, Value)>>>);

impl Received {
    fn spans(&self) -> Vec<(String, Value)> {
        self.0.lock().unwrap().clone()
    }

    /// The spans of trace `id`, waiting (up to 20 s) until at least `n` arrived.
    async fn of_trace(&self, id: &str, n: usize) -> Vec<Value> {
        for _ in 0..400 {
            let got: Vec<Value> = self
                .spans()
                .into_iter()
                .map(|(_, s)| s)
                .filter(|s| s["traceId"] == id)
                .collect();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "fewer than {n} spans of trace {id} arrived: {:#?}",
            self.spans()
        );
    }
}

/// An OTLP/HTTP receiver for JSON `ExportTraceServiceRequest`s at `/v1/traces`.
async fn otlp_receiver() -> (SocketAddr, Received) {
    let got = Received::default();
    let sink = got.clone();
    let app = Router::new().route(
        "/v1/traces",
        post(move |headers: http::HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                assert_eq!(headers["content-type"], "application/json");
                let v: Value = serde_json::from_slice(&body).unwrap();
                for rs in v["resourceSpans"].as_array().unwrap() {
                    let service = rs["resource"]["attributes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|a| a["key"] == "service.name")
                        .map(|a| a["value"]["stringValue"].as_str().unwrap().to_owned())
                        .unwrap();
                    for ss in rs["scopeSpans"].as_array().unwrap() {
                        for s in ss["spans"].as_array().unwrap() {
                            sink.0.lock().unwrap().push((service.clone(), s.clone()));
                        }
                    }
                }
                axum::Json(json!({}))
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    (addr, got)
}

fn attr<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

fn by_kind(spans: &[Value], kind: u64) -> Vec<&Value> {
    spans.iter().filter(|s| s["kind"] == kind).collect()
}

/// `(trace id, parent id, flags)` of a `traceparent`.
fn parts(tp: &str) -> (String, String, String) {
    let p: Vec<&str> = tp.split('-').collect();
    assert_eq!(p.len(), 4, "{tp}");
    assert_eq!(p[0], "00", "{tp}");
    (p[1].to_owned(), p[2].to_owned(), p[3].to_owned())
}

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread")]
async fn upstream_sees_the_trace_and_the_collector_gets_its_spans() {
    let (otlp, received) = otlp_receiver().await;
    let h = Harness::start_with(&format!(
        "[[route]]\nname = \"echo\"\npath = \"/echo-headers\"\nauth = [\"bearer\"]\n\
         [telemetry]\notlp_endpoint = \"http://{otlp}\"\nservice_name = \"edge-test\"\n\
         export_interval = \"50ms\"\n"
    ))
    .await;

    let token = partner_token(
        json!({"iss": "https://partner.example", "aud": "api", "sub": "p1", "exp": now() + 600}),
    );
    let bearer = format!("Bearer {token}");

    // A client's trace, not sampled by the client: continued with its flag, nothing exported.
    let unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    let r = h
        .get(
            "/echo-headers",
            &[("traceparent", unsampled), ("Authorization", &bearer)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (trace, _, flags) = parts(r.json()["traceparent"].as_str().unwrap());
    assert_eq!(
        (trace.as_str(), flags.as_str()),
        ("0af7651916cd43dd8448eb211c80319c", "00")
    );

    // A client's sampled trace with vendor state: continued, our upstream span its parent.
    let incoming = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let r = h
        .get(
            "/echo-headers",
            &[
                ("traceparent", &incoming),
                ("tracestate", "congo=t61rcWkgMzE"),
                ("Authorization", &bearer),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let seen = r.json();
    let (trace, upstream_parent, flags) = parts(seen["traceparent"].as_str().unwrap());
    assert_eq!(trace, CLIENT_TRACE, "the upstream is in the client's trace");
    assert_ne!(
        upstream_parent, CLIENT_SPAN,
        "the gateway's span is the parent"
    );
    assert_eq!(flags, "01");
    assert_eq!(seen["tracestate"], "congo=t61rcWkgMzE");

    let spans = received.of_trace(CLIENT_TRACE, 3).await;
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let server = by_kind(&spans, 2);
    let client = by_kind(&spans, 3);
    let internal = by_kind(&spans, 1);
    assert_eq!(
        (server.len(), client.len(), internal.len()),
        (1, 1, 1),
        "{spans:#?}"
    );
    let (server, client, decision) = (server[0], client[0], internal[0]);
    assert_eq!(server["parentSpanId"], CLIENT_SPAN, "{server:#}");
    assert_eq!(client["spanId"], upstream_parent.as_str(), "{client:#}");
    assert_eq!(client["parentSpanId"], server["spanId"]);
    assert_eq!(decision["parentSpanId"], server["spanId"]);
    assert_eq!(server["name"], "GET echo");
    assert_eq!(
        attr(server, "http.response.status_code").unwrap()["intValue"],
        "200"
    );
    assert_eq!(attr(server, "http.route").unwrap()["stringValue"], "echo");
    assert_eq!(attr(server, "enduser.id").unwrap()["stringValue"], "p1");
    assert_eq!(
        attr(server, "gatehouse.request_id").unwrap()["stringValue"],
        r.header("x-request-id").unwrap()
    );
    let nanos = |s: &Value, k: &str| s[k].as_str().unwrap().parse::<u64>().unwrap();
    for s in [server, client, decision] {
        assert!(
            nanos(s, "startTimeUnixNano") <= nanos(s, "endTimeUnixNano"),
            "{s:#}"
        );
    }
    assert!(nanos(server, "startTimeUnixNano") <= nanos(client, "startTimeUnixNano"));
    assert!(nanos(client, "endTimeUnixNano") <= nanos(server, "endTimeUnixNano"));

    // No traceparent: a new trace, and the spans carry the id the upstream saw.
    let r = h
        .get(
            "/echo-headers",
            &[("tracestate", "orphan=1"), ("Authorization", &bearer)],
        )
        .await;
    let seen = r.json();
    let (new_trace, upstream_parent, flags) = parts(seen["traceparent"].as_str().unwrap());
    assert_eq!(flags, "01");
    assert_ne!(new_trace, CLIENT_TRACE);
    assert!(
        seen.get("tracestate").is_none(),
        "a tracestate without its traceparent: {seen}"
    );
    let spans = received.of_trace(&new_trace, 3).await;
    let server = by_kind(&spans, 2)[0];
    assert!(
        server.get("parentSpanId").is_none(),
        "a root span: {server:#}"
    );
    assert_eq!(by_kind(&spans, 3)[0]["spanId"], upstream_parent.as_str());

    // A refusal records its span too, with its `error` code and no upstream call.
    let refused_trace = "11111111111111111111111111111111";
    let r = h
        .get(
            "/api/posts/1",
            &[(
                "traceparent",
                &format!("00-{refused_trace}-{CLIENT_SPAN}-01"),
            )],
        )
        .await;
    assert_eq!(r.status, 401);
    let spans = received.of_trace(refused_trace, 2).await;
    let server = by_kind(&spans, 2)[0];
    assert_eq!(
        attr(server, "gatehouse.error").unwrap()["stringValue"],
        "missing_credentials"
    );
    assert_eq!(
        attr(server, "http.response.status_code").unwrap()["intValue"],
        "401"
    );
    assert!(by_kind(&spans, 3).is_empty(), "{spans:#?}");

    // Exported in order: the unsampled request, sent first, never was.
    let all = received.spans();
    assert!(
        all.iter().all(|(service, s)| service == "edge-test"
            && s["traceId"] != "0af7651916cd43dd8448eb211c80319c"),
        "{all:#?}"
    );
    let metrics = h.gw.render_metrics(now());
    assert!(
        metrics.contains("gatehouse_spans_dropped_total 0\n"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_telemetry_the_trace_is_still_propagated_and_nothing_queued() {
    let h = Harness::start_with(
        "[[route]]\nname = \"echo\"\npath = \"/echo-headers\"\naccess = \"public\"\n",
    )
    .await;
    let incoming = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let r = h.get("/echo-headers", &[("traceparent", &incoming)]).await;
    let (trace, parent, _) = parts(r.json()["traceparent"].as_str().unwrap());
    assert_eq!(trace, CLIENT_TRACE);
    assert_ne!(parent, CLIENT_SPAN);
    // Two traceparent fields are no valid context: a new trace.
    let r = h
        .get(
            "/echo-headers",
            &[("traceparent", &incoming), ("traceparent", &incoming)],
        )
        .await;
    let (trace, _, _) = parts(r.json()["traceparent"].as_str().unwrap());
    assert_ne!(trace, CLIENT_TRACE);
    assert_eq!(h.gw.observer.spans.waiting(), 0);
}
