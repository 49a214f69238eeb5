//! An HTTPS upstream spoken to over HTTP/2 (`[upstream] url = "https://…"`, `http2 = true`,
//! issue 18): the gateway offers ALPN `h2` (RFC 9113 §3.2), checks the upstream's certificate
//! against the system's roots — here a test certificate named by `SSL_CERT_FILE`, which
//! replaces them (rustls-native-certs) — and forwards over one HTTP/2 connection. An upstream
//! that does not agree to `h2`, or whose certificate is not trusted, is a 502.
//!
//! One test function in its own binary: it sets `SSL_CERT_FILE` before any thread starts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use common::Harness;
use http::{Request, Response};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A certificate for `localhost`: (cert PEM, cert DER, key DER).
fn certificate() -> (String, Vec<u8>, Vec<u8>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    (
        ck.cert.pem(),
        ck.cert.der().to_vec(),
        ck.signing_key.serialize_der(),
    )
}

/// A TLS upstream offering only `alpn`; over `h2` it answers with the protocol version it
/// received and the identity the gateway forwarded; over HTTP/1.1 likewise.
async fn tls_upstream(
    cert: &(String, Vec<u8>, Vec<u8>),
    alpn: &'static [u8],
    stop: watch::Receiver<bool>,
) -> SocketAddr {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert.1.clone())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.2.clone())),
    )
    .unwrap();
    config.alpn_protocols = vec![alpn.to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut stop = stop;
        loop {
            let tcp = tokio::select! {
                r = l.accept() => match r { Ok((tcp, _)) => tcp, Err(_) => continue },
                _ = stop.wait_for(|s| *s) => return,
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                let svc =
                    hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let user = req
                            .headers()
                            .get("x-gatehouse-user")
                            .map(|v| v.to_str().unwrap_or("").to_owned())
                            .unwrap_or_default();
                        let body = format!("{:?} {} user={user}", req.version(), req.uri().path());
                        Ok::<_, Infallible>(Response::new(Full::new(bytes::Bytes::from(body))))
                    });
                let io = TokioIo::new(tls);
                if h2 {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(io, svc)
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                }
            });
        }
    });
    addr
}

async fn gateway(
    upstream: SocketAddr,
    stop: watch::Sender<bool>,
    rx: watch::Receiver<bool>,
) -> Harness {
    let text = common::config_text(upstream, "")
        .replacen(
            &format!("url = \"http://{upstream}\""),
            &format!("url = \"https://localhost:{}\"", upstream.port()),
            1,
        )
        .replacen("timeout = \"1s\"\n", "timeout = \"5s\"\nhttp2 = true\n", 1);
    assert!(text.contains("https://localhost:") && text.contains("http2 = true"));
    Harness::start_config(&text, upstream, stop, rx).await
}

#[test]
fn an_https_http2_upstream_is_spoken_to_over_h2_and_its_certificate_checked() {
    let trusted = certificate();
    let path = std::env::temp_dir().join(format!(
        "gatehouse-https-upstream-{}.pem",
        std::process::id()
    ));
    std::fs::write(&path, &trusted.0).unwrap();
    // SAFETY: the only test of this binary, before any other thread exists (the runtime is
    // built below); nothing reads the environment concurrently.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("SSL_CERT_FILE", &path);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        gatehouse_server::install_crypto();
        // The trusted upstream, h2 only: allowed requests arrive over HTTP/2 with the identity.
        let (stop, rx) = watch::channel(false);
        let up = tls_upstream(&trusted, b"h2", rx.clone()).await;
        let h = gateway(up, stop, rx).await;
        for _ in 0..3 {
            let r = h.get("/public/hello", &[]).await;
            assert_eq!(
                (r.status.as_u16(), r.text.as_str()),
                (200, "HTTP/2.0 /public/hello user="),
                "{}",
                r.text
            );
        }
        let now = gatehouse_server::clock::now();
        let token = h.own_token("bob", &[], "pwd", now, 300).await;
        let r = h
            .get(
                "/api/orders",
                &[("authorization", &format!("Bearer {token}"))],
            )
            .await;
        assert_eq!(
            (r.status.as_u16(), r.text.as_str()),
            (200, "HTTP/2.0 /api/orders user=bob"),
            "{}",
            r.text
        );
        // A refusal is the gateway's own answer.
        let r = h.get("/api/orders", &[]).await;
        assert_eq!(
            (r.status.as_u16(), r.error().as_str()),
            (401, "missing_credentials")
        );

        // An upstream that offers only HTTP/1.1: `http2 = true` needs `h2`, so 502.
        let (stop, rx) = watch::channel(false);
        let up = tls_upstream(&trusted, b"http/1.1", rx.clone()).await;
        let h = gateway(up, stop, rx).await;
        let r = h.get("/public/hello", &[]).await;
        assert_eq!(
            (r.status.as_u16(), r.error().as_str()),
            (502, "upstream_unavailable"),
            "{}",
            r.text
        );

        // An upstream whose certificate nobody vouches for: 502, nothing exchanged.
        let (stop, rx) = watch::channel(false);
        let up = tls_upstream(&certificate(), b"h2", rx.clone()).await;
        let h = gateway(up, stop, rx).await;
        let r = h.get("/public/hello", &[]).await;
        assert_eq!(
            (r.status.as_u16(), r.error().as_str()),
            (502, "upstream_unavailable"),
            "{}",
            r.text
        );
    });
    let _ = std::fs::remove_file(&path);
}
