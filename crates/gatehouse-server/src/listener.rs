//! The accept loop and per-connection serving (HTTP/1.1, and HTTP/2 with prior knowledge),
//! with graceful drain: what `axum::serve` did, without a router on the proxied path.
//!
//! On shutdown the listener closes, every connection is told to finish the request in
//! flight and close (hyper's graceful shutdown: idle keep-alive connections close at once),
//! and [`serve`] returns when the last connection is gone.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt as _;

use crate::gateway::Gateway;
use crate::limits::Limits;
use crate::routes::public_router;
use crate::startup::StartError;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Accepts connections on `listener` and serves each with the service `make` builds for its
/// peer, within the connection `limits` of the listener and over TLS when `tls` is given,
/// until `shutdown` completes; then drains (see the module docs).
pub async fn serve<S, M>(
    listener: TcpListener,
    make: M,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: Limits,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<()>
where
    M: Fn(SocketAddr) -> S,
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    // Dropping `stop_tx` tells the connections to wind down; each holds a `done_rx`, so
    // `done_tx.closed()` completes when the last one has ended.
    let (stop_tx, stop_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    let builder = Arc::new(limits.builder());
    let gate = limits.gate();
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
        };
        // Beyond `max_connections`: closed at once (the client sees the connection end).
        let Some(permit) = gate.admit() else {
            drop(stream);
            continue;
        };
        // The answer is written in one piece; small writes of a streamed body go out at once.
        let _ = stream.set_nodelay(true);
        let service = make(peer);
        let mut stop = stop_rx.clone();
        let done = done_rx.clone();
        let builder = Arc::clone(&builder);
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if !crate::limits::first_byte(&stream, limits.header_timeout).await {
                drop(done);
                return;
            }
            let result = match tls {
                None => serve_connection(&builder, TokioIo::new(stream), service, &mut stop).await,
                // The handshake counts against the header timeout too.
                Some(tls) => {
                    match tokio::time::timeout(limits.header_timeout, tls.accept(stream)).await {
                        Ok(Ok(s)) => {
                            let service = MarkTls(service);
                            serve_connection(&builder, TokioIo::new(s), service, &mut stop).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, %peer, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => Ok(()),
                    }
                }
            };
            if let Err(e) = result {
                tracing::trace!(error = %e, %peer, "connection ended with an error");
            }
            drop(done);
        });
    }
    drop(listener);
    drop(stop_rx);
    drop(stop_tx);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}

/// Serves one connection until it ends, or until `stop` says so (then the request in flight
/// is finished first).
async fn serve_connection<I, S>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    service: S,
    stop: &mut watch::Receiver<()>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let conn = builder.serve_connection_with_upgrades(io, service);
    let mut conn = pin!(conn);
    let mut stopping = pin!(stop.changed());
    let ended = tokio::select! {
        biased;
        r = conn.as_mut() => Some(r),
        _ = &mut stopping => None,
    };
    match ended {
        Some(r) => r,
        None => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}

/// A connection's service that marks each request as having come over TLS.
#[derive(Clone)]
struct MarkTls<S>(S);

impl<S> hyper::service::Service<Request<Incoming>> for MarkTls<S>
where
    S: hyper::service::Service<Request<Incoming>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(crate::tls::OverTls);
        self.0.call(req)
    }
}

/// Accept errors: a connection that failed before we took it is not our problem; anything
/// else (EMFILE, ENFILE, ENOBUFS) would fail again at once, so wait a second before retrying.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// An axum [`Router`] as one connection's service, with the peer as [`ConnectInfo`].
#[derive(Clone)]
pub struct RouterService {
    router: Router,
    peer: SocketAddr,
}

impl RouterService {
    pub fn new(router: Router, peer: SocketAddr) -> Self {
        Self { router, peer }
    }
}

impl hyper::service::Service<Request<Incoming>> for RouterService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<Body>, Infallible>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        route(self.router.clone(), self.peer, req)
    }
}

fn route(
    router: Router,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> BoxFuture<Result<Response<Body>, Infallible>> {
    let mut req = req.map(Body::new);
    req.extensions_mut().insert(ConnectInfo(peer));
    Box::pin(router.oneshot(req))
}

/// The public port's service: Gatehouse's own endpoints through the router, everything else
/// straight to [`crate::edge::proxy_request`].
#[derive(Clone)]
pub struct PublicService {
    gw: Arc<Gateway>,
    own: Router,
    peer: SocketAddr,
}

impl PublicService {
    pub fn new(gw: Arc<Gateway>, own: Router, peer: SocketAddr) -> Self {
        Self { gw, own, peer }
    }
}

impl hyper::service::Service<Request<Incoming>> for PublicService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<Body>, Infallible>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        if crate::routes::is_own_path(req.uri().path()) {
            return route(self.own.clone(), self.peer, req);
        }
        Box::pin(crate::edge::proxy_request(
            Arc::clone(&self.gw),
            self.peer,
            req.map(Body::new),
        ))
    }
}

/// Binds the configured listeners.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })
}

/// Serves `router` on `listener` until `shutdown` completes, then drains.
pub async fn serve_on(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_on_tls(listener, router, None, shutdown).await
}

/// As [`serve_on`], over TLS with the certificate `tls` names (the admin listener under
/// `[server] tls`).
pub async fn serve_on_tls(
    listener: TcpListener,
    router: Router,
    tls: Option<&gatehouse_core::config::TlsFiles>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(
        listener,
        move |peer| RouterService::new(router.clone(), peer),
        shutdown,
        crate::limits::Limits::default(),
        tls_acceptor(tls)?,
    )
    .await
}

/// The acceptor of a listener with `[server] tls`; a certificate that cannot be loaded is an
/// error naming its file.
fn tls_acceptor(
    tls: Option<&gatehouse_core::config::TlsFiles>,
) -> std::io::Result<Option<tokio_rustls::TlsAcceptor>> {
    tls.map(crate::tls::acceptor)
        .transpose()
        .map_err(|e| std::io::Error::other(format!("[server] tls: {e}")))
}

/// Serves the public port until `shutdown` completes, then drains: the same answers as
/// [`serve_on`] with [`public_router`], but a proxied request (every path that is not one of
/// Gatehouse's own) goes straight to the proxy, past the router and its extractors.
pub async fn serve_public(
    listener: TcpListener,
    gw: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let own = public_router(Arc::clone(&gw));
    // `[server]` connection limits; a change takes a restart.
    let rt = gw.runtime();
    let limits = crate::limits::Limits::from_config(&rt.config.server);
    let tls = tls_acceptor(rt.config.server.tls.as_ref())?;
    drop(rt);
    serve(
        listener,
        move |peer| PublicService::new(Arc::clone(&gw), own.clone(), peer),
        shutdown,
        limits,
        tls,
    )
    .await
}
