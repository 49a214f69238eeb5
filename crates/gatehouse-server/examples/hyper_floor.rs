//! The floor of a hyper/tokio proxy on this machine, for `bench/proxy.sh`: the least a proxy
//! built from the same crates as Gatehouse (hyper 1 server and client, tokio) can do per
//! request — no routing, no decision, no header policy, one upstream connection per client
//! connection, no pool, no timeout.
//!
//! ```sh
//! cargo run --release -p gatehouse-server --example hyper_floor -- 127.0.0.1:PORT http://127.0.0.1:UPSTREAM
//! ```
//! `GET /bare` answers 200 `ok` itself; every other request is forwarded.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

type Out = Either<Incoming, Full<Bytes>>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args
        .next()
        .ok_or("usage: hyper_floor LISTEN UPSTREAM_URL")?
        .parse()?;
    let upstream: http::Uri = args
        .next()
        .ok_or("usage: hyper_floor LISTEN UPSTREAM_URL")?
        .parse()?;
    let authority = upstream
        .authority()
        .ok_or("upstream without host")?
        .to_string();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(listen, authority))
}

async fn serve(listen: SocketAddr, upstream: String) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(listen).await?;
    let upstream = Arc::new(upstream);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let upstream = Arc::clone(&upstream);
        tokio::spawn(async move {
            // One upstream connection per client connection, opened on first use.
            let conn: Arc<Mutex<Option<SendRequest<Incoming>>>> = Arc::default();
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let conn = Arc::clone(&conn);
                let upstream = Arc::clone(&upstream);
                async move { Ok::<_, Infallible>(handle(req, &conn, &upstream).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    conn: &Mutex<Option<SendRequest<Incoming>>>,
    upstream: &str,
) -> Response<Out> {
    if req.uri().path() == "/bare" {
        return Response::new(Either::Right(Full::new(Bytes::from_static(b"ok"))));
    }
    let mut slot = conn.lock().await;
    if slot.is_none() {
        let Ok(io) = TcpStream::connect(upstream).await else {
            return bad_gateway();
        };
        let _ = io.set_nodelay(true);
        let Ok((sender, connection)) =
            hyper::client::conn::http1::handshake(TokioIo::new(io)).await
        else {
            return bad_gateway();
        };
        tokio::spawn(connection);
        *slot = Some(sender);
    }
    let Some(sender) = slot.as_mut() else {
        return bad_gateway();
    };
    if sender.ready().await.is_err() {
        *slot = None;
        return bad_gateway();
    }
    match sender.send_request(req).await {
        Ok(resp) => resp.map(Either::Left),
        Err(_) => {
            *slot = None;
            bad_gateway()
        }
    }
}

fn bad_gateway() -> Response<Out> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::new())));
    *r.status_mut() = StatusCode::BAD_GATEWAY;
    r
}
