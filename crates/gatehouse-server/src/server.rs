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
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt as _;

use crate::gateway::Gateway;
use crate::limits::Limits;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Accepts connections on `listener` and serves each with the service `make` builds for its
/// peer, within the connection `limits` of the listener, until `shutdown` completes; then
/// drains (see the module docs).
pub async fn serve<S, M>(
    listener: TcpListener,
    make: M,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: Limits,
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
        tokio::spawn(async move {
            let _permit = permit;
            if !crate::limits::first_byte(&stream, limits.header_timeout).await {
                drop(done);
                return;
            }
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            let mut conn = pin!(conn);
            let mut stopping = pin!(stop.changed());
            let ended = tokio::select! {
                biased;
                r = conn.as_mut() => Some(r),
                _ = &mut stopping => None,
            };
            let result = match ended {
                Some(r) => r,
                None => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
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
        if crate::serve::is_own_path(req.uri().path()) {
            return route(self.own.clone(), self.peer, req);
        }
        Box::pin(crate::edge::proxy_request(
            Arc::clone(&self.gw),
            self.peer,
            req.map(Body::new),
        ))
    }
}
