//! The upstream's keep-alive connections: HTTP/1.1 [`SendRequest`] handles, each driven by
//! its own connection task, kept in a LIFO list.
//!
//! Cheaper per request than `hyper_util`'s legacy client, which this replaces for the
//! upstream: there is one upstream per runtime, so no pool key is hashed; and a connection
//! returns to the list when the response body's last frame has been read ([`Release`]),
//! where the legacy client spawns a task per request to wait for that moment.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;

/// Idle connections kept at most (as the legacy client's `pool_max_idle_per_host`).
const MAX_IDLE: usize = 256;
/// An idle connection older than this is closed instead of reused.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

/// Idle connections to one upstream; the most recently used is reused first (its socket and
/// buffers are the warmest, and the oldest ones age out).
#[derive(Default)]
pub struct Pool {
    idle: Mutex<Vec<Idle>>,
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        match self.idle.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// A connection ready for a request, if one is idle. Closed and expired ones are dropped.
    pub fn take(&self) -> Option<SendRequest<Body>> {
        let mut idle = self.lock();
        while let Some(c) = idle.pop() {
            if c.sender.is_ready() && c.since.elapsed() < IDLE_TIMEOUT {
                return Some(c.sender);
            }
        }
        None
    }

    /// Puts a connection whose exchange is complete back. One the connection task has not
    /// yet marked ready (it has not polled since the body ended) waits for that in a task.
    pub fn put(self: &Arc<Self>, mut sender: SendRequest<Body>) {
        if sender.is_ready() {
            self.push(sender);
        } else if !sender.is_closed()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let pool = Arc::clone(self);
            rt.spawn(async move {
                if sender.ready().await.is_ok() {
                    pool.push(sender);
                }
            });
        }
    }

    fn push(&self, sender: SendRequest<Body>) {
        let now = Instant::now();
        let mut idle = self.lock();
        // The list is oldest first: expired entries and the overflow leave from the front.
        let stale = idle
            .iter()
            .take_while(|c| now.duration_since(c.since) >= IDLE_TIMEOUT)
            .count();
        let over = (idle.len() - stale + 1).saturating_sub(MAX_IDLE);
        idle.drain(..stale + over);
        idle.push(Idle { sender, since: now });
    }

    /// Idle connections held now.
    #[cfg(test)]
    pub fn idle(&self) -> usize {
        self.lock().len()
    }
}

/// The upstream's response body, holding its connection until the last frame has been read;
/// then the connection goes back to the pool. Dropped early (the client went away), it takes
/// the connection with it: hyper closes a connection whose response was not read to the end.
pub struct Release {
    inner: Incoming,
    conn: Option<(SendRequest<Body>, Arc<Pool>)>,
}

impl Release {
    pub fn new(inner: Incoming, sender: SendRequest<Body>, pool: Arc<Pool>) -> Self {
        let mut r = Self {
            inner,
            conn: Some((sender, pool)),
        };
        if http_body::Body::is_end_stream(&r.inner) {
            r.release();
        }
        r
    }

    fn release(&mut self) {
        if let Some((sender, pool)) = self.conn.take() {
            pool.put(sender);
        }
    }
}

impl http_body::Body for Release {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            // hyper's server stops polling once `is_end_stream` says so: release on the last
            // frame, not only on the `None` after it.
            Poll::Ready(None) => self.release(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.release(),
            Poll::Ready(Some(Err(_))) => self.conn = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
