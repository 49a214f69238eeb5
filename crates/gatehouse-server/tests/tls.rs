//! TLS and HTTP/2 on the public listener (issue 18): `[server] tls`, ALPN `h2`/`http/1.1`,
//! the same answers over HTTP/1.1, HTTP/2 over TLS and h2c prior knowledge, and a
//! certificate replaced on disk taken by new handshakes while open connections go on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use common::Harness;
use http::Request;
use http_body_util::BodyExt as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

/// A self-signed certificate for `localhost` and 127.0.0.1: (cert PEM, key PEM, cert DER).
fn certificate() -> (String, String, Vec<u8>) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    (
        ck.cert.pem(),
        ck.signing_key.serialize_pem(),
        ck.cert.der().to_vec(),
    )
}

struct Tls {
    h: Harness,
    dir: PathBuf,
}

impl Drop for Tls {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Tls {
    fn write(&self, cert: &(String, String, Vec<u8>)) {
        // Key first, then the certificate: a reload in between fails (mismatch) and keeps
        // the old pair, never serving a half-written one.
        std::fs::write(self.dir.join("key.pem"), &cert.1).unwrap();
        std::fs::write(self.dir.join("cert.pem"), &cert.0).unwrap();
    }
}

async fn start(cert: &(String, String, Vec<u8>)) -> Tls {
    gatehouse_server::install_crypto();
    let dir = std::env::temp_dir().join(format!(
        "gatehouse-tls-{}-{}",
        std::process::id(),
        cert.2.len() ^ cert.2[cert.2.len() - 8] as usize
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("key.pem"), &cert.1).unwrap();
    std::fs::write(dir.join("cert.pem"), &cert.0).unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let upstream = common::echo_upstream(rx.clone()).await;
    let tls = format!(
        "tls = {{ cert = \"{}\", key = \"{}\" }}\n",
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    );
    let text =
        common::config_text(upstream, "").replacen("[server]\n", &format!("[server]\n{tls}"), 1);
    let h = Harness::start_config(&text, upstream, stop, rx).await;
    Tls { h, dir }
}

/// A TLS connection trusting `ca`, offering `alpn`: (stream, negotiated ALPN, server cert).
async fn connect(
    addr: SocketAddr,
    ca: &[u8],
    alpn: &[&[u8]],
) -> (
    tokio_rustls::client::TlsStream<TcpStream>,
    Option<Vec<u8>>,
    Vec<u8>,
) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.to_vec())).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let s = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (_, conn) = s.get_ref();
    let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
    let cert = conn.peer_certificates().unwrap()[0].to_vec();
    (s, alpn, cert)
}

/// What the tests compare: status, `error`, challenges.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    error: Option<String>,
    challenges: Vec<String>,
    version: http::Version,
}

async fn answer(resp: http::Response<hyper::body::Incoming>) -> Answer {
    let status = resp.status().as_u16();
    let version = resp.version();
    let challenges = resp
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let error = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned));
    Answer {
        status,
        error,
        challenges,
        version,
    }
}

fn get(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::get(format!("https://localhost{path}"));
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    b.body(Body::empty()).unwrap()
}

/// Requests of several rows of the contract.
const CASES: &[(&str, &[(&str, &str)])] = &[
    ("/public/a", &[]),
    ("/api/posts", &[]),
    ("/api/posts", &[("authorization", "Bearer garbage")]),
    ("/.git/config", &[]),
    ("/basic/x", &[("authorization", "Bearer x")]),
];

async fn over_http2<I>(io: I) -> Vec<Answer>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut out = Vec::new();
    for (path, headers) in CASES {
        out.push(answer(send.send_request(get(path, headers)).await.unwrap()).await);
    }
    out
}

async fn over_http1<I>(io: I) -> Vec<Answer>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let mut out = Vec::new();
    for (path, headers) in CASES {
        let mut req = get(path, headers);
        req.headers_mut().insert(
            http::header::HOST,
            http::HeaderValue::from_static("localhost"),
        );
        // The connection takes the next request once the previous exchange is complete.
        send.ready().await.unwrap();
        out.push(answer(send.send_request(req).await.unwrap()).await);
    }
    out
}

/// The answers without the protocol version, for comparing protocols.
fn unversioned(a: Vec<Answer>) -> Vec<(u16, Option<String>, Vec<String>)> {
    a.into_iter()
        .map(|a| (a.status, a.error, a.challenges))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_and_http2_over_tls_give_the_same_answers() {
    let cert = certificate();
    let t = start(&cert).await;
    let (s, alpn, _) = connect(t.h.addr, &cert.2, &[b"h2", b"http/1.1"]).await;
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]), "h2 is preferred");
    let h2 = over_http2(TokioIo::new(s)).await;
    assert!(h2.iter().all(|a| a.version == http::Version::HTTP_2));
    let (s, alpn, _) = connect(t.h.addr, &cert.2, &[b"http/1.1"]).await;
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    let h1 = over_http1(TokioIo::new(s)).await;
    assert!(h1.iter().all(|a| a.version == http::Version::HTTP_11));
    let statuses: Vec<u16> = h1.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 401, 401, 403, 401], "{h1:#?}");
    assert_eq!(unversioned(h1), unversioned(h2));
}

/// h2c with prior knowledge on a plain listener: the same answers as HTTP/1.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_prior_knowledge_gives_the_same_answers() {
    let h = Harness::start().await;
    let h2 = over_http2(TokioIo::new(TcpStream::connect(h.addr).await.unwrap())).await;
    assert!(h2.iter().all(|a| a.version == http::Version::HTTP_2));
    let h1 = over_http1(TokioIo::new(TcpStream::connect(h.addr).await.unwrap())).await;
    assert_eq!(unversioned(h1), unversioned(h2));
}

/// A certificate replaced on disk: new handshakes get it (the files are watched), and a
/// connection opened before goes on answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_certificate_is_served_without_dropping_connections() {
    let old = certificate();
    let t = start(&old).await;
    let (s, _, served) = connect(t.h.addr, &old.2, &[b"h2"]).await;
    assert_eq!(served, old.2);
    let (mut open, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(s))
            .await
            .unwrap();
    tokio::spawn(conn);
    let new = certificate();
    t.write(&new);
    // New handshakes: the old certificate until the reload, then the new one (a guard of
    // 20 s; the files are checked every second).
    let mut reloaded = false;
    for _ in 0..400 {
        let tcp = TcpStream::connect(t.h.addr).await.unwrap();
        if let Some(cert) = peer_certificate(tcp).await
            && cert == new.2
        {
            reloaded = true;
            break;
        }
        // Meanwhile the connection opened before the change keeps working.
        let r = answer(open.send_request(get("/public/a", &[])).await.unwrap()).await;
        assert_eq!(r.status, 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reloaded, "the new certificate is served");
    let r = answer(open.send_request(get("/public/a", &[])).await.unwrap()).await;
    assert_eq!(r.status, 200, "the old connection survived the reload");
    let (_, _, served) = connect(t.h.addr, &new.2, &[b"h2"]).await;
    assert_eq!(served, new.2);
}

/// A handshake trusting every certificate in `cas`, offering `alpn`: (stream, served cert).
async fn try_connect(
    addr: SocketAddr,
    cas: &[Vec<u8>],
    alpn: &[u8],
) -> Result<(tokio_rustls::client::TlsStream<TcpStream>, Vec<u8>), String> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots
            .add(CertificateDer::from(ca.clone()))
            .map_err(|e| e.to_string())?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let s = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(
            ServerName::try_from("localhost").map_err(|e| e.to_string())?,
            tcp,
        )
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let cert = s
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .ok_or("no certificate")?;
    Ok((s, cert))
}

/// One client round: a new TLS connection (HTTP/2 or HTTP/1.1), then `n` requests on it.
/// Returns the certificate served and the statuses, or what failed.
async fn round(
    addr: SocketAddr,
    cas: &[Vec<u8>],
    h2: bool,
    n: usize,
) -> Result<(Vec<u8>, Vec<u16>), String> {
    let (s, cert) = try_connect(addr, cas, if h2 { b"h2" } else { b"http/1.1" }).await?;
    let io = TokioIo::new(s);
    let mut statuses = Vec::new();
    if h2 {
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| format!("h2 handshake: {e}"))?;
        tokio::spawn(conn);
        for _ in 0..n {
            let r = send
                .send_request(get("/public/a", &[]))
                .await
                .map_err(|e| format!("h2 request: {e}"))?;
            statuses.push(answer(r).await.status);
        }
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("h1 handshake: {e}"))?;
        tokio::spawn(conn);
        for _ in 0..n {
            let mut req = get("/public/a", &[]);
            req.headers_mut().insert(
                http::header::HOST,
                http::HeaderValue::from_static("localhost"),
            );
            send.ready().await.map_err(|e| format!("h1 ready: {e}"))?;
            let r = send
                .send_request(req)
                .await
                .map_err(|e| format!("h1 request: {e}"))?;
            statuses.push(answer(r).await.status);
        }
    }
    Ok((cert, statuses))
}

/// Issue 18: certificates replaced on disk again and again — each file rewritten in place,
/// so a reload can meet a half-written file — and reloaded by the file watch and by
/// SIGHUP's `reload_all`, while four clients loop on new connections (HTTP/2 and HTTP/1.1)
/// and on open ones: not one handshake or request fails, and every certificate is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_reloads_under_load_fail_no_request() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let certs: Vec<_> = (0..4).map(|_| certificate()).collect();
    let t = start(&certs[0]).await;
    let cas: Arc<Vec<Vec<u8>>> = Arc::new(certs.iter().map(|c| c.2.clone()).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let addr = t.h.addr;
    let clients: Vec<_> = (0..4)
        .map(|w| {
            let (cas, stop) = (Arc::clone(&cas), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut served = std::collections::HashSet::new();
                let (mut ok, mut failed) = (0usize, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    match round(addr, &cas, w % 2 == 0, 5).await {
                        Ok((cert, statuses)) => {
                            served.insert(cert);
                            for s in statuses {
                                if s == 200 {
                                    ok += 1;
                                } else {
                                    failed.push(format!("status {s}"));
                                }
                            }
                        }
                        Err(e) => failed.push(e),
                    }
                }
                (ok, failed, served)
            })
        })
        .collect();
    for (i, next) in certs.iter().enumerate().skip(1) {
        tokio::time::sleep(Duration::from_millis(700)).await;
        t.write(next);
        if i % 2 == 0 {
            // SIGHUP's path too, at once after the write.
            gatehouse_server::tls::reload_all();
        }
        // Until new handshakes get it (the files are checked every second; a guard of 20 s).
        let mut taken = false;
        for _ in 0..200 {
            if try_connect(addr, &cas, b"h2")
                .await
                .is_ok_and(|(_, cert)| cert == next.2)
            {
                taken = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(taken, "certificate {i} is served");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut ok, mut failed, mut served) = (0, Vec::new(), std::collections::HashSet::new());
    for c in clients {
        let (o, f, s) = c.await.unwrap();
        ok += o;
        failed.extend(f);
        served.extend(s);
    }
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        ok + failed.len()
    );
    assert!(ok > 100, "the clients kept looping: {ok} requests");
    assert!(
        served.len() >= 2,
        "the looping clients saw the certificates change: {} served",
        served.len()
    );
    println!(
        "{ok} requests over {} certificates, none failed",
        certs.len()
    );
}

/// The certificate a handshake presents, trusting any (the test compares it).
async fn peer_certificate(tcp: TcpStream) -> Option<Vec<u8>> {
    #[derive(Debug)]
    struct AnyCert;
    impl rustls::client::danger::ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            self.verify_tls12_signature(message, cert, dss)
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            rustls::crypto::aws_lc_rs::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .ok()?
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AnyCert))
    .with_no_client_auth();
    let s = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").ok()?, tcp)
        .await
        .ok()?;
    Some(s.get_ref().1.peer_certificates()?[0].to_vec())
}

/// curl, as a user would run it: HTTP/2 over TLS, the 401 and its challenge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_http2_over_tls() {
    let has_curl = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("HTTP2"));
    if !has_curl {
        println!("skipped: curl with HTTP/2 is not installed (apt-get install curl)");
        return;
    }
    let cert = certificate();
    let t = start(&cert).await;
    let port = t.h.addr.port();
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--http2", "--cacert"])
        .arg(t.dir.join("cert.pem"))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args(["-D", "-", "-o", "/dev/null"])
        .arg(format!("https://localhost:{port}/api/posts"))
        .output()
        .await
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        head.starts_with("http/2 401"),
        "{head}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        head.contains("www-authenticate: bearer realm=\"api\""),
        "{head}"
    );
}

/// A browser signing in over TLS gets a `Secure` session cookie (no proxy header needed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cookie_over_tls_is_secure() {
    let cert = certificate();
    let t = start(&cert).await;
    let (s, _, _) = connect(t.h.addr, &cert.2, &[b"http/1.1"]).await;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    let host = format!("localhost:{}", t.h.addr.port());
    let req = Request::post("/auth/login")
        .header("host", &host)
        .header("origin", format!("https://{host}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("username=bob&password=bob-pw"))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 303);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
}
