//! Prototype, kept for the record (docs/benchmarks.md, "Where the time goes"): does driving a
//! pooled upstream HTTP/1 connection from the request itself, instead of from a task of its
//! own, make a proxied request cheaper? Otherwise like `hyper_floor` (no routing, decision or
//! header policy), but with one shared LIFO pool of upstream connections, as Gatehouse has.
//!
//! - `task`: Gatehouse's design (`proxy/pool.rs`): the pool holds `SendRequest` handles, each
//!   `Connection` runs in its own spawned task, and the response body's last frame puts the
//!   handle back.
//! - `inline`: the pool holds the pair (`SendRequest`, `Connection`); the request's future
//!   polls the `Connection` while it waits for the response head, the response body wrapper
//!   while the body streams; no task per connection. The connection is polled with a waker of
//!   its own ([`Fwd`]) that forwards to whichever task drives it now and is muted around the
//!   driver's own sends and body reads (hyper's channels would otherwise wake the very task
//!   that is running: one more poll of it per request).
//!
//! Measured (docs/benchmarks.md): `inline` executes ≈ 720 fewer instructions per request of
//! ≈ 25 300 (callgrind), and its CPU per request was within noise of `task`'s — far from the
//! 0.7 µs that would have justified porting it. Not production-ready: an upload still
//! streaming when the response head arrives is driven only while the response body is
//! polled, and a connection not ready at the body's end is dropped.
//!
//! ```sh
//! cargo run --release -p gatehouse-server --example inline_floor -- 127.0.0.1:PORT http://127.0.0.1:UPSTREAM inline|task
//! ```
//! `GET /bare` answers 200 `ok` itself; every other request is forwarded.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

type Out = Either<Body, Full<Bytes>>;
type Io = TokioIo<TcpStream>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: inline_floor LISTEN UPSTREAM_URL inline|task";
    let listen: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let upstream: http::Uri = args.next().ok_or(usage)?.parse()?;
    let inline = match args.next().as_deref() {
        Some("inline") => true,
        Some("task") => false,
        _ => return Err(usage.into()),
    };
    let authority = upstream
        .authority()
        .ok_or("upstream without host")?
        .to_string();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(listen, authority, inline))
}

struct State {
    upstream: String,
    inline: bool,
    tasks: Mutex<Vec<SendRequest<Incoming>>>,
    #[expect(
        clippy::vec_box,
        reason = "an `Upconn` is 720 bytes: boxed, taking and returning it moves a pointer"
    )]
    pairs: Mutex<Vec<Box<Upconn>>>,
}

async fn serve(
    listen: SocketAddr,
    upstream: String,
    inline: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(listen).await?;
    let state = Arc::new(State {
        upstream,
        inline,
        tasks: Mutex::default(),
        pairs: Mutex::default(),
    });
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(req, state).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn connect(upstream: &str) -> Option<(SendRequest<Incoming>, Connection<Io, Incoming>)> {
    let io = TcpStream::connect(upstream).await.ok()?;
    let _ = io.set_nodelay(true);
    hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .ok()
}

async fn handle(req: Request<Incoming>, state: Arc<State>) -> Response<Out> {
    if req.uri().path() == "/bare" {
        return Response::new(Either::Right(Full::new(Bytes::from_static(b"ok"))));
    }
    if state.inline {
        return inline(req, state).await;
    }
    let taken = state
        .tasks
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop();
    let mut sender = match taken {
        Some(s) => s,
        None => {
            let Some((s, conn)) = connect(&state.upstream).await else {
                return bad_gateway();
            };
            tokio::spawn(conn);
            s
        }
    };
    match sender.send_request(req).await {
        Ok(resp) => resp.map(|b| {
            Either::Left(Body {
                inner: b,
                back: Back::Task(Some((sender, state))),
            })
        }),
        Err(_) => bad_gateway(),
    }
}

fn bad_gateway() -> Response<Out> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::new())));
    *r.status_mut() = StatusCode::BAD_GATEWAY;
    r
}

/// The waker an inline connection is polled with: it forwards to the task that drives the
/// connection now, except while muted (the driver's own actions: it polls the connection
/// right after, so their wake-ups would only re-poll the task for nothing).
struct Fwd {
    muted: AtomicBool,
    missed: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for Fwd {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if self.muted.load(Ordering::Acquire) {
            self.missed.store(true, Ordering::Release);
            return;
        }
        if let Some(w) = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            w.wake_by_ref();
        }
    }
}

struct Upconn {
    sender: SendRequest<Incoming>,
    conn: Connection<Io, Incoming>,
    fwd: Arc<Fwd>,
    waker: Waker,
}

impl Upconn {
    fn new(sender: SendRequest<Incoming>, conn: Connection<Io, Incoming>) -> Self {
        let fwd = Arc::new(Fwd {
            muted: AtomicBool::new(false),
            missed: AtomicBool::new(false),
            task: Mutex::new(None),
        });
        Self {
            sender,
            conn,
            waker: Waker::from(Arc::clone(&fwd)),
            fwd,
        }
    }

    fn mute(&self) {
        self.fwd.muted.store(true, Ordering::Release);
    }

    /// Ends a muted stretch; true if a wake-up came meanwhile.
    fn unmute(&self) -> bool {
        self.fwd.muted.store(false, Ordering::Release);
        self.fwd.missed.swap(false, Ordering::AcqRel)
    }

    /// Polls the connection for the task of `cx` (None: the task that polled it last).
    /// Ready: the connection has ended.
    fn poll_conn(&mut self, cx: Option<&Context<'_>>) -> Poll<()> {
        if let Some(cx) = cx {
            let mut t = self.fwd.task.lock().unwrap_or_else(PoisonError::into_inner);
            match &*t {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *t = Some(cx.waker().clone()),
            }
        }
        self.unmute();
        Pin::new(&mut self.conn)
            .poll(&mut Context::from_waker(&self.waker))
            .map(|_| ())
    }
}

async fn inline(req: Request<Incoming>, state: Arc<State>) -> Response<Out> {
    let taken = state
        .pairs
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop();
    let mut c = match taken {
        Some(c) => c,
        None => {
            let Some((s, conn)) = connect(&state.upstream).await else {
                return bad_gateway();
            };
            Box::new(Upconn::new(s, conn))
        }
    };
    c.mute();
    let mut fut = Box::pin(c.sender.try_send_request(req));
    c.unmute();
    let mut c = Some(c);
    let noop = Waker::noop();
    let resp = std::future::poll_fn(|cx| {
        if let Some(u) = c.as_mut()
            && u.poll_conn(Some(cx)).is_ready()
        {
            c = None;
        }
        fut.as_mut().poll(&mut Context::from_waker(noop))
    })
    .await;
    let Ok(resp) = resp else {
        return bad_gateway();
    };
    // No connection left: it ended with the response (`Connection: close`, HTTP/1.0).
    resp.map(|b| {
        let mut body = Body {
            inner: b,
            back: Back::Inline(c.map(|c| (c, state))),
        };
        if body.inner.is_end_stream() {
            body.release();
        }
        Either::Left(body)
    })
}

enum Back {
    Task(Option<(SendRequest<Incoming>, Arc<State>)>),
    Inline(Option<(Box<Upconn>, Arc<State>)>),
}

struct Body {
    inner: Incoming,
    back: Back,
}

impl Body {
    fn release(&mut self) {
        match &mut self.back {
            Back::Task(t) => {
                if let Some((mut s, state)) = t.take() {
                    if s.is_ready() {
                        state
                            .tasks
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(s);
                    } else if !s.is_closed() {
                        tokio::spawn(async move {
                            if s.ready().await.is_ok() {
                                state
                                    .tasks
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .push(s);
                            }
                        });
                    }
                }
            }
            Back::Inline(t) => {
                if let Some((mut c, state)) = t.take() {
                    if !c.sender.is_ready() && c.poll_conn(None).is_ready() {
                        return;
                    }
                    // Not ready yet (an upload still going): the prototype drops it, where the
                    // real pool would have to drive it on in a task.
                    if c.sender.is_ready() {
                        c.mute();
                        state
                            .pairs
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(c);
                    }
                }
            }
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let Back::Inline(Some((c, _))) = &mut this.back else {
            let polled = Pin::new(&mut this.inner).poll_frame(cx);
            match &polled {
                Poll::Ready(None) => this.release(),
                Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.release(),
                Poll::Ready(Some(Err(_))) => this.back = Back::Task(None),
                _ => {}
            }
            return polled;
        };
        let noop = Waker::noop();
        let mut polled_conn = false;
        loop {
            c.mute();
            let polled = Pin::new(&mut this.inner).poll_frame(&mut Context::from_waker(noop));
            let missed = c.unmute();
            match &polled {
                Poll::Ready(None) => {
                    this.release();
                    return polled;
                }
                Poll::Ready(Some(Ok(_))) => {
                    if this.inner.is_end_stream() {
                        this.release();
                    } else if missed && c.poll_conn(Some(cx)).is_ready() {
                        this.back = Back::Inline(None);
                    }
                    return polled;
                }
                Poll::Ready(Some(Err(_))) => {
                    this.back = Back::Inline(None);
                    return polled;
                }
                Poll::Pending => {
                    if polled_conn && !missed {
                        return Poll::Pending;
                    }
                    if c.poll_conn(Some(cx)).is_ready() {
                        this.back = Back::Inline(None);
                        return Pin::new(&mut this.inner).poll_frame(cx);
                    }
                    polled_conn = true;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
