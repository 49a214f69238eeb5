//! gRPC through the gateway (issue 18): a gRPC client speaking h2c to the gateway, which
//! forwards over HTTP/2 (`[upstream] http2 = true`) to a gRPC service that speaks only
//! HTTP/2. An allowed call reaches the service and its trailers come back; a refused one
//! carries `grpc-status` 16 or 7 beside the HTTP status (docs/semantics.md "gRPC clients").
//!
//! The client is written by hand on hyper's HTTP/2 client, as a gRPC client does it (gRPC
//! `doc/PROTOCOL-HTTP2.md`): `POST /package.Service/Method`, `content-type:
//! application/grpc`, `te: trailers`, a length-prefixed protobuf message, and the status in
//! the trailers (or, for a Trailers-Only answer, in the headers).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::body::Body;
use bytes::{BufMut as _, Bytes, BytesMut};
use common::Harness;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A protobuf message with field 1 (a string) set: tag 0x0a, length, bytes.
fn message(text: &str) -> Bytes {
    let mut m = BytesMut::new();
    m.put_u8(0x0a);
    m.put_u8(u8::try_from(text.len()).unwrap());
    m.put_slice(text.as_bytes());
    m.freeze()
}

/// A gRPC frame: uncompressed flag, 4-byte big-endian length, the message.
fn frame(msg: &[u8]) -> Bytes {
    let mut f = BytesMut::with_capacity(5 + msg.len());
    f.put_u8(0);
    f.put_u32(u32::try_from(msg.len()).unwrap());
    f.put_slice(msg);
    f.freeze()
}

/// A gRPC service over HTTP/2 only (an HTTP/1.1 request fails its handshake): `Say` answers
/// the request's message back with `grpc-status: 0` in the trailers, and says in a header
/// which protocol version and `te` it received.
async fn grpc_upstream(stop: watch::Receiver<bool>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut stop = stop;
        loop {
            let tcp = tokio::select! {
                r = l.accept() => match r { Ok((tcp, _)) => tcp, Err(_) => continue },
                _ = stop.wait_for(|s| *s) => return,
            };
            let svc =
                hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let version = format!("{:?}", req.version());
                    let te = req
                        .headers()
                        .get(http::header::TE)
                        .map(|v| v.to_str().unwrap_or("").to_owned())
                        .unwrap_or_default();
                    let path = req.uri().path().to_owned();
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    let mut trailers = HeaderMap::new();
                    let (status, out) = if path == "/demo.Echo/Say" || path == "/demo.Admin/Say" {
                        trailers.insert("grpc-status", HeaderValue::from_static("0"));
                        (200, body)
                    } else {
                        trailers.insert("grpc-status", HeaderValue::from_static("12"));
                        (200, Bytes::new())
                    };
                    let resp = Response::builder()
                        .status(status)
                        .header("content-type", "application/grpc")
                        .header("x-upstream-version", version)
                        .header("x-upstream-te", te)
                        .body(
                            Full::new(out)
                                .with_trailers(async move { Some(Ok::<_, Infallible>(trailers)) }),
                        )
                        .unwrap();
                    Ok::<_, Infallible>(resp)
                });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

const ROUTES: &str = r#"
[[route]]
name = "grpc-admin"
path = "/demo.Admin/**"
auth = ["bearer"]
roles = ["admin"]
"#;

async fn start() -> Harness {
    gatehouse_server::install_crypto();
    let (stop, rx) = watch::channel(false);
    let upstream = grpc_upstream(rx.clone()).await;
    let text = common::config_text(upstream, ROUTES).replacen(
        "timeout = \"1s\"\n",
        "timeout = \"1s\"\nhttp2 = true\n",
        1,
    );
    assert!(text.contains("http2 = true"));
    Harness::start_config(&text, upstream, stop, rx).await
}

/// What a gRPC client learns from a call.
struct Call {
    http: u16,
    headers: HeaderMap,
    /// `grpc-status`: from the trailers, or from the headers of a Trailers-Only answer.
    grpc_status: Option<String>,
    grpc_message: Option<String>,
    data: Bytes,
}

/// One unary call over h2c (prior knowledge) to the gateway.
async fn call(addr: SocketAddr, path: &str, token: Option<&str>, msg: &str) -> Call {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut b = Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc+proto")
        .header("te", "trailers")
        .header("grpc-timeout", "5S");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let req = b.body(Body::from(frame(&message(msg)))).unwrap();
    let resp = send.send_request(req).await.unwrap();
    let http = resp.status().as_u16();
    let headers = resp.headers().clone();
    let collected = resp.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let get = |name: &str| {
        trailers
            .get(name)
            .or_else(|| headers.get(name))
            .map(|v| v.to_str().unwrap().to_owned())
    };
    Call {
        http,
        grpc_status: get("grpc-status"),
        grpc_message: get("grpc-message"),
        headers: headers.clone(),
        data: collected.to_bytes(),
    }
}

#[tokio::test]
async fn an_allowed_call_reaches_the_grpc_service_over_http2() {
    let h = start().await;
    let now = gatehouse_server::clock::now();
    let token = h.own_token("bob", &[], "pwd", now, 300).await;
    let c = call(h.addr, "/demo.Echo/Say", Some(&token), "hello").await;
    assert_eq!(c.http, 200);
    assert_eq!(
        c.grpc_status.as_deref(),
        Some("0"),
        "the upstream's trailers"
    );
    assert_eq!(c.data, frame(&message("hello")), "the service's answer");
    let h2 = c.headers.get("x-upstream-version").unwrap();
    assert_eq!(h2, "HTTP/2.0", "the upstream was spoken to over HTTP/2");
    assert_eq!(c.headers.get("x-upstream-te").unwrap(), "trailers");
    // Several calls share the gateway's one upstream connection.
    for i in 0..3 {
        let c = call(h.addr, "/demo.Echo/Say", Some(&token), &format!("n{i}")).await;
        assert_eq!(c.grpc_status.as_deref(), Some("0"));
        assert_eq!(c.data, frame(&message(&format!("n{i}"))));
    }
}

#[tokio::test]
async fn a_call_without_a_token_is_unauthenticated() {
    let h = start().await;
    let c = call(h.addr, "/demo.Echo/Say", None, "hello").await;
    assert_eq!(c.http, 401);
    assert_eq!(c.grpc_status.as_deref(), Some("16"), "UNAUTHENTICATED");
    let msg = c.grpc_message.unwrap();
    assert!(!msg.is_empty() && msg.is_ascii(), "{msg}");
    assert!(
        c.headers.get("www-authenticate").is_some(),
        "the HTTP answer stays whole"
    );
    assert_eq!(c.headers.get("x-upstream-version"), None, "never forwarded");
    // Trailers-Only: the headers end the stream, no message follows.
    assert_eq!(c.headers.get("content-type").unwrap(), "application/grpc");
    assert!(c.data.is_empty(), "{:?}", c.data);
}

#[tokio::test]
async fn a_call_with_the_wrong_role_is_permission_denied() {
    let h = start().await;
    let now = gatehouse_server::clock::now();
    let bob = h.own_token("bob", &[], "pwd", now, 300).await;
    let c = call(h.addr, "/demo.Admin/Say", Some(&bob), "hello").await;
    assert_eq!(c.http, 403);
    assert_eq!(c.grpc_status.as_deref(), Some("7"), "PERMISSION_DENIED");
    assert_eq!(c.headers.get("x-upstream-version"), None, "never forwarded");
    // The same call by an admin passes.
    let alice = h.own_token("alice", &[], "pwd", now, 300).await;
    let c = call(h.addr, "/demo.Admin/Say", Some(&alice), "hi").await;
    assert_eq!((c.http, c.grpc_status.as_deref()), (200, Some("0")));
    assert_eq!(c.data, frame(&message("hi")));
}

#[tokio::test]
async fn a_refusal_repeated_is_still_grpc() {
    // The edge prepares fixed refusals once per route; a gRPC request must not get the
    // plain prepared copy.
    let h = start().await;
    for _ in 0..3 {
        let c = call(h.addr, "/demo.Echo/Say", Some("not-a-token"), "x").await;
        assert_eq!(c.http, 401);
        assert_eq!(c.grpc_status.as_deref(), Some("16"));
        let c = call(h.addr, "/.git/config", None, "x").await;
        assert_eq!((c.http, c.grpc_status.as_deref()), (403, Some("7")));
    }
}

/// gRPC's own client (grpcio, the C-core every gRPC language but Go and Java wraps): unary
/// calls with raw bytes (no generated stubs), printed one JSON line each as
/// `[code, details, response hex, trailing metadata names]`.
const GRPCIO_CLIENT: &str = r#"
import json, sys
import grpc
addr, token = sys.argv[1], sys.argv[2]
ident = lambda b: b
with grpc.insecure_channel(addr) as ch:
    for method, tok in [("/demo.Echo/Say", token), ("/demo.Echo/Say", None),
                        ("/demo.Echo/Say", "not-a-token"), ("/demo.Admin/Say", token)]:
        call = ch.unary_unary(method, request_serializer=ident, response_deserializer=ident)
        md = [("authorization", "Bearer " + tok)] if tok else None
        try:
            r = call(b"\x0a\x05hello", metadata=md, timeout=10)
            print(json.dumps(["OK", "", r.hex(), []]))
        except grpc.RpcError as e:
            names = sorted({k for k, _ in (e.trailing_metadata() or [])} |
                           {k for k, _ in (e.initial_metadata() or [])})
            print(json.dumps([e.code().name, e.details(), "", names]))
"#;

#[tokio::test]
async fn grpcs_own_client_gets_its_answer_and_the_status_codes_of_refusals() {
    let Some(python) = gatehouse_testkit::python_with("grpc", &gatehouse_testkit::GRPCIO) else {
        return;
    };
    let h = start().await;
    let now = gatehouse_server::clock::now();
    let bob = h.own_token("bob", &[], "pwd", now, 300).await;
    let out = tokio::process::Command::new(&python)
        .args(["-c", GRPCIO_CLIENT, &h.addr.to_string(), &bob])
        .output()
        .await
        .expect("run python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python3 with grpcio failed: {stderr}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?} {stderr}");
    // Allowed: the service's echo, through the gateway's HTTP/2 upstream.
    assert_eq!(lines[0][0], "OK", "{lines:?}");
    assert_eq!(
        lines[0][2], "0a0568656c6c6f",
        "the echoed message: {lines:?}"
    );
    // No token: UNAUTHENTICATED with the gateway's grpc-message, and the HTTP challenge
    // still there for HTTP-aware clients.
    assert_eq!(lines[1][0], "UNAUTHENTICATED", "{lines:?}");
    let details = lines[1][1].as_str().unwrap();
    assert!(
        !details.is_empty() && !details.contains("http2 header"),
        "{details}"
    );
    assert!(
        lines[1][3]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "www-authenticate"),
        "{lines:?}"
    );
    // A bad token: UNAUTHENTICATED too (row 8).
    assert_eq!(lines[2][0], "UNAUTHENTICATED", "{lines:?}");
    // Known identity, missing role: PERMISSION_DENIED (row 15), never retried as a login.
    assert_eq!(lines[3][0], "PERMISSION_DENIED", "{lines:?}");
}
