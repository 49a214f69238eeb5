//! Request smuggling and connection limits over raw sockets (issue 18): each malformed or
//! ambiguous request is answered 400 (or 431 for a head over the limits) and the connection
//! closed, and nothing after it — a pipelined or "smuggled" request — reaches the upstream.
//! The upstream here records every request it gets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Harness;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// What the upstream saw: `METHOD path` and the body, one entry per request.
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// An upstream that records each request and answers `200 ok`.
async fn recording_upstream() -> (SocketAddr, Seen) {
    use http_body_util::BodyExt as _;
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let log = Arc::clone(&log);
                        async move {
                            let line = format!("{} {}", req.method(), req.uri().path());
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes().to_vec())
                                .unwrap_or_else(|_| b"<body error>".to_vec());
                            log.lock().unwrap().push((line, body));
                            Ok::<_, std::convert::Infallible>(http::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                            ))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    (addr, seen)
}

struct Edge {
    h: Harness,
    seen: Seen,
}

async fn start(server_extra: &str) -> Edge {
    gatehouse_server::install_crypto();
    let (upstream, seen) = recording_upstream().await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let text = common::config_text(upstream, "").replacen(
        "[server]\n",
        &format!("[server]\n{server_extra}\n"),
        1,
    );
    let h = Harness::start_config(&text, upstream, stop, rx).await;
    Edge { h, seen }
}

impl Edge {
    fn paths(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(l, _)| l.clone())
            .collect()
    }

    /// Sends `raw` on a new connection and reads until the gateway closes it.
    async fn exchange(&self, raw: &[u8]) -> Answers {
        let mut s = TcpStream::connect(self.h.addr).await.unwrap();
        s.write_all(raw).await.unwrap();
        read_to_close(&mut s).await
    }
}

/// Everything the gateway sent until it closed the connection.
struct Answers {
    text: String,
    closed: bool,
}

impl Answers {
    /// The status codes of the answers, in order.
    fn statuses(&self) -> Vec<u16> {
        self.text
            .match_indices("HTTP/1.1 ")
            .filter_map(|(i, _)| self.text.get(i + 9..i + 12)?.parse().ok())
            .collect()
    }
}

/// Reads until EOF; a guard of 20 s stops a hung test (the gateway's own limits are far
/// shorter), and then `closed` is false.
async fn read_to_close(s: &mut TcpStream) -> Answers {
    let mut buf = Vec::new();
    let closed = matches!(
        tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf)).await,
        Ok(Ok(_)) | Ok(Err(_))
    );
    Answers {
        text: String::from_utf8_lossy(&buf).into_owned(),
        closed,
    }
}

/// A request that would reach the upstream if the gateway parsed what follows the refused
/// one as a request of its own.
const SMUGGLED: &str = "GET /public/smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

/// Sends `head` + a body that hides [`SMUGGLED`], and checks: one 400, the connection
/// closed, the upstream saw nothing.
async fn refused(edge: &Edge, name: &str, head: &str, body: &str) {
    let raw = format!("{head}\r\n{body}{SMUGGLED}");
    let a = edge.exchange(raw.as_bytes()).await;
    assert_eq!(a.statuses(), [400], "{name}: {}", a.text);
    assert!(a.closed, "{name}: the connection is closed");
    assert!(
        edge.paths().is_empty(),
        "{name}: forwarded {:?}",
        edge.paths()
    );
}

#[tokio::test]
async fn ambiguous_framing_is_refused_and_nothing_is_forwarded() {
    let edge = start("").await;
    let post = "POST /public/a HTTP/1.1\r\nHost: x\r\n";
    let chunked_body = "5\r\nhello\r\n0\r\n\r\n";
    for (name, headers, body) in [
        // Obfuscated Transfer-Encoding (RFC 9112 §6.1: chunked must be the final coding).
        (
            "te xchunked",
            "Transfer-Encoding: xchunked\r\n",
            chunked_body,
        ),
        (
            "te chunked, identity",
            "Transfer-Encoding: chunked, identity\r\n",
            chunked_body,
        ),
        (
            "te twice, last not chunked",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
            chunked_body,
        ),
        (
            "te space before colon",
            "Transfer-Encoding : chunked\r\n",
            chunked_body,
        ),
        (
            "te with vertical tab",
            "Transfer-Encoding:\x0bchunked\r\n",
            chunked_body,
        ),
        // Content-Length (RFC 9110 §8.6, RFC 9112 §6.3 item 5).
        (
            "two different content-lengths",
            "Content-Length: 5\r\nContent-Length: 6\r\n",
            "hello",
        ),
        ("content-length list", "Content-Length: 5, 6\r\n", "hello"),
        ("content-length +5", "Content-Length: +5\r\n", "hello"),
        ("content-length -1", "Content-Length: -1\r\n", "hello"),
        ("content-length hex", "Content-Length: 0x5\r\n", "hello"),
        // obs-fold (RFC 9112 §5.2: a server must reject it or replace it; we reject).
        (
            "obs-fold",
            "X-Note: a\r\n  folded\r\nContent-Length: 5\r\n",
            "hello",
        ),
        // A bare CR inside the head (RFC 9112 §2.2).
        (
            "bare CR",
            "X-Note: a\rTransfer-Encoding: chunked\r\nContent-Length: 5\r\n",
            "hello",
        ),
    ] {
        refused(&edge, name, &format!("{post}{headers}"), body).await;
    }
    // Transfer-Encoding on HTTP/1.0 (RFC 9112 §6.1).
    refused(
        &edge,
        "te on http/1.0",
        "POST /public/a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n",
        chunked_body,
    )
    .await;
}

/// Content-Length and Transfer-Encoding together: processed as Transfer-Encoding alone and
/// the connection closed after the answer (RFC 9112 §6.1: "the server MUST close the
/// connection after responding"), so the bytes a Content-Length-reading hop would see as a
/// second request are never parsed as one, and the upstream gets no Content-Length.
#[tokio::test]
async fn content_length_with_transfer_encoding_never_smuggles() {
    let edge = start("").await;
    // A CL.TE attack: a hop reading Content-Length would end the body after "0\r\n\r\n"
    // plus... and read SMUGGLED as the next request.
    let raw = format!(
        "POST /public/a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n{SMUGGLED}"
    );
    let a = edge.exchange(raw.as_bytes()).await;
    assert!(a.closed, "{}", a.text);
    assert!(a.statuses().len() <= 1, "one answer at most: {}", a.text);
    let seen = edge.seen.lock().unwrap().clone();
    assert!(
        seen.iter().all(|(l, _)| !l.contains("smuggled")),
        "{seen:?}"
    );
    if let Some((line, body)) = seen.first() {
        assert_eq!(line, "POST /public/a");
        assert_eq!(body, b"hello", "the chunked body, nothing of the rest");
    }
}

/// An oversized chunk size (more hex digits than any length) is found only once the body is
/// read, after the head went to the upstream: the exchange fails (502 today, see
/// docs/operations.md), the connection is closed, the upstream never gets a complete body,
/// and what follows is never parsed as a request.
#[tokio::test]
async fn an_oversized_chunk_size_ends_the_connection() {
    let edge = start("").await;
    let raw = format!(
        "POST /public/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffffff\r\nhello\r\n0\r\n\r\n{SMUGGLED}"
    );
    let a = edge.exchange(raw.as_bytes()).await;
    assert!(a.closed, "{}", a.text);
    assert!(
        a.statuses().iter().all(|s| *s >= 400),
        "never a success: {}",
        a.text
    );
    let seen = edge.seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .all(|(l, b)| !l.contains("smuggled") && b != b"hello"),
        "{seen:?}"
    );
}

/// A refused request followed by pipelined ones: the first is answered 400, the connection
/// closed, the others never parsed.
#[tokio::test]
async fn pipelined_requests_after_a_refusal_are_dropped() {
    let edge = start("").await;
    let raw = format!(
        "GET /public/a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{SMUGGLED}{SMUGGLED}"
    );
    let a = edge.exchange(raw.as_bytes()).await;
    assert_eq!(a.statuses(), [400], "{}", a.text);
    assert!(a.closed);
    assert!(edge.paths().is_empty(), "{:?}", edge.paths());
    // A good request first, then a bad one: the good one is answered (and forwarded), the
    // bad one is 400 and ends the connection.
    let raw = format!(
        "GET /public/first HTTP/1.1\r\nHost: x\r\n\r\nGET /public/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n{SMUGGLED}"
    );
    let a = edge.exchange(raw.as_bytes()).await;
    assert_eq!(a.statuses(), [200, 400], "{}", a.text);
    assert!(a.closed);
    assert_eq!(edge.paths(), ["GET /public/first"]);
}

#[tokio::test]
async fn header_count_and_size_are_bounded() {
    let edge = start("max_headers = 20\nmax_header_bytes = 8192").await;
    let many: String = (0..30).map(|i| format!("X-H{i}: v\r\n")).collect();
    let a = edge
        .exchange(format!("GET /public/a HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes())
        .await;
    assert_eq!(a.statuses(), [431], "{}", a.text);
    assert!(a.closed);
    let big = "v".repeat(9000);
    let a = edge
        .exchange(format!("GET /public/a HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes())
        .await;
    assert_eq!(a.statuses(), [431], "{}", a.text.get(..200).unwrap_or(""));
    assert!(a.closed);
    // The request line counts too.
    let long = "a".repeat(9000);
    let a = edge
        .exchange(format!("GET /public/{long} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await;
    assert!(
        matches!(a.statuses()[..], [431] | [414] | [400]),
        "{}",
        a.text.get(..200).unwrap_or("")
    );
    assert!(a.closed);
    assert!(edge.paths().is_empty(), "{:?}", edge.paths());
    // Within the limits, all is well.
    let few: String = (0..10).map(|i| format!("X-H{i}: v\r\n")).collect();
    let a = edge
        .exchange(
            format!("GET /public/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{few}\r\n")
                .as_bytes(),
        )
        .await;
    assert_eq!(a.statuses(), [200], "{}", a.text);
}

/// The default limit, 100 header fields, is hyper's own (the listener leaves it unset, which
/// spares hyper two 100-entry vectors per head): 101 fields are answered 431 and nothing is
/// forwarded; 100 reach the decision (a refusal of ours, so that no upstream parses them).
#[tokio::test]
async fn the_default_header_count_limit_is_one_hundred() {
    let edge = start("").await;
    // `n` fields in all, `Host` and `Connection` among them.
    let head = |path: &str, n: usize| -> String {
        let more: String = (2..n).map(|i| format!("X-H{i}: v\r\n")).collect();
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{more}\r\n")
    };
    let a = edge.exchange(head("/public/a", 101).as_bytes()).await;
    assert_eq!(a.statuses(), [431], "{}", a.text);
    assert!(a.closed);
    assert!(edge.paths().is_empty(), "{:?}", edge.paths());
    let a = edge.exchange(head("/basic/a", 100).as_bytes()).await;
    assert_eq!(a.statuses(), [401], "{}", a.text);
    assert!(a.text.contains("x-request-id:"), "{}", a.text);
}

/// A Slowloris client (a head sent a byte at a time, never finished), a client that sends
/// nothing, and an idle keep-alive connection are each closed after `header_timeout`.
#[tokio::test]
async fn slow_and_idle_connections_are_cut_off() {
    let edge = start("header_timeout = \"1s\"").await;
    // Sends nothing at all.
    let mut silent = TcpStream::connect(edge.h.addr).await.unwrap();
    // Starts a head and trickles it.
    let mut slow = TcpStream::connect(edge.h.addr).await.unwrap();
    slow.write_all(b"GET /public/a HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        for _ in 0..40 {
            if slow.write_all(b"X-Slow: 1\r\n").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        read_to_close(&mut slow).await
    });
    // One answered request, then idle on a keep-alive connection.
    let mut idle = TcpStream::connect(edge.h.addr).await.unwrap();
    idle.write_all(b"GET /public/a HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let a = read_to_close(&mut idle).await;
    assert_eq!(a.statuses(), [200], "{}", a.text);
    assert!(a.closed, "the idle keep-alive connection is closed");
    let a = read_to_close(&mut silent).await;
    assert!(a.closed && a.text.is_empty(), "{}", a.text);
    let a = trickle.await.unwrap();
    assert!(a.closed, "the Slowloris client is cut off");
    assert!(a.statuses().iter().all(|s| *s != 200), "{}", a.text);
    assert_eq!(edge.paths(), ["GET /public/a"]);
}

/// Beyond `max_connections` a new connection is closed at once; when one closes, the next
/// is served.
#[tokio::test]
async fn connections_beyond_the_limit_are_closed() {
    let edge = start("max_connections = 2").await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(edge.h.addr).await.unwrap();
        // A full exchange proves the connection is admitted (and keeps it open).
        s.write_all(b"GET /public/a HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        held.push(s);
    }
    let a = edge
        .exchange(b"GET /public/b HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert!(a.closed && a.text.is_empty(), "{}", a.text);
    drop(held);
    // The gateway notices the closes asynchronously: retry (a guard of 10 s).
    let mut served = false;
    for _ in 0..200 {
        let a = edge
            .exchange(b"GET /public/c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
        if a.statuses() == [200] {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "a freed slot serves the next connection");
    assert!(!edge.paths().contains(&"GET /public/b".to_owned()));
}

/// A bare LF as a line end is accepted (RFC 9112 §2.2 allows it), as one request: the
/// documented difference from a strict reading.
#[tokio::test]
async fn a_bare_lf_head_is_one_request() {
    let edge = start("").await;
    let a = edge
        .exchange(b"GET /public/lf HTTP/1.1\nHost: x\nConnection: close\n\n")
        .await;
    assert_eq!(a.statuses(), [200], "{}", a.text);
    assert_eq!(edge.paths(), ["GET /public/lf"]);
}

/// The same requests with a real nginx reverse proxy in front (client → nginx → Gatehouse →
/// upstream, nginx keeping its connections to Gatehouse alive, as in production): whatever
/// nginx lets through, Gatehouse reads the same request boundaries, so nothing hidden in one
/// client's request reaches the upstream, and the next client's request on the shared
/// connection is answered as itself.
#[tokio::test]
async fn through_nginx_nothing_is_smuggled() {
    let Some((bin, _)) = common::nginx::nginx_or_skip() else {
        return;
    };
    let edge = start("").await;
    let gatehouse = edge.h.addr;
    let nginx = common::nginx::Nginx::start(&bin, |listen| {
        format!(
            "upstream gatehouse {{ server {gatehouse}; keepalive 4; }}\n\
             server {{\n listen {listen};\n location / {{\n  proxy_pass http://gatehouse;\n  \
             proxy_http_version 1.1;\n  proxy_set_header Connection \"\";\n }}\n}}\n"
        )
    })
    .await;
    let post = "POST /public/a HTTP/1.1\r\nHost: x\r\n";
    // Each hides SMUGGLED from a hop that reads the framing one way and shows it to a hop
    // that reads it the other way.
    let hidden = format!("0\r\n\r\n{SMUGGLED}");
    let attacks = [
        // CL.TE: Content-Length covers SMUGGLED, chunked ends before it.
        format!(
            "{post}Content-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{hidden}",
            hidden.len()
        ),
        // TE.CL, with obfuscated Transfer-Encodings.
        format!("{post}Content-Length: 5\r\nTransfer-Encoding: xchunked\r\n\r\n{hidden}"),
        format!("{post}Content-Length: 5\r\nTransfer-Encoding : chunked\r\n\r\n{hidden}"),
        format!(
            "{post}Content-Length: 5\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n{hidden}"
        ),
        // Two Content-Lengths; obs-fold hiding a Transfer-Encoding.
        format!(
            "{post}Content-Length: 5\r\nContent-Length: {}\r\n\r\n{hidden}",
            hidden.len()
        ),
        format!(
            "{post}X-Note: a\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n{hidden}"
        ),
        // An oversized chunk size.
        format!("{post}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffffffff\r\n{hidden}"),
    ];
    for (i, attack) in attacks.iter().enumerate() {
        let mut s = TcpStream::connect(nginx.addr).await.unwrap();
        s.write_all(attack.as_bytes()).await.unwrap();
        // nginx may keep the client connection open after its answer: read the status only.
        let mut status = [0u8; 12];
        let _ = tokio::time::timeout(Duration::from_secs(20), s.read_exact(&mut status)).await;
        drop(s);
        // A victim's request right after, on nginx's (kept-alive) connection to Gatehouse.
        let a = edge_exchange(
            nginx.addr,
            "GET /public/victim HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(
            a.statuses(),
            [200],
            "attack {i}: the victim's answer: {}\n{}",
            a.text,
            nginx.logs()
        );
        let seen = edge.paths();
        assert!(
            seen.iter().all(|p| !p.contains("smuggled")),
            "attack {i} ({}): the upstream saw {seen:?}",
            String::from_utf8_lossy(&status)
        );
        assert_eq!(
            seen.last().map(String::as_str),
            Some("GET /public/victim"),
            "attack {i}"
        );
    }
}

/// Sends `raw` to `addr` on a new connection and reads until it is closed.
async fn edge_exchange(addr: SocketAddr, raw: &str) -> Answers {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw.as_bytes()).await.unwrap();
    read_to_close(&mut s).await
}
