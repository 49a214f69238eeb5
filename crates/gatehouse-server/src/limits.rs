//! Per-connection limits of the listeners: how long a client may take to send a request's
//! head, how many header fields and bytes it may send, how many connections are open at
//! once. Every value is bounded by default (a Slowloris client, an idle keep-alive
//! connection, a header flood or a connection flood cannot hold resources forever), and the
//! public listener takes them from `[server]` (docs/config.md).
//!
//! What the HTTP/1 parser (hyper, httparse) already refuses with 400 and a closed connection
//! is listed in docs/operations.md ("Request smuggling"); the tests in
//! `tests/smuggling.rs` send each of those requests over a raw socket.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::config::ServerConfig;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The number of header fields hyper's HTTP/1 parser accepts when no limit is set
/// (`DEFAULT_MAX_HEADERS` in hyper's `proto/h1/role.rs`); more is answered 431 all the same.
const HYPER_MAX_HEADERS: usize = 100;

/// The limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The whole head of a request (request line and header fields) must arrive within this
    /// time of the connection being ready for it: after accept, and after the previous
    /// answer on a keep-alive connection (so it is also the idle keep-alive timeout).
    pub header_timeout: Duration,
    /// Header fields per request (HTTP/1.1); more is answered 431.
    pub max_headers: usize,
    /// Bytes of a request's head, request line included (HTTP/1.1); more is answered 431.
    pub max_header_bytes: usize,
    /// Connections open at once; a connection beyond it is closed as soon as it is accepted.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let d = ServerConfig::default();
        Self::from_config(&d)
    }
}

impl Limits {
    pub fn from_config(c: &ServerConfig) -> Self {
        Self {
            header_timeout: c.header_timeout,
            max_headers: c.max_headers,
            max_header_bytes: c.max_header_bytes,
            max_connections: c.max_connections,
        }
    }

    /// The connection builder these limits configure (HTTP/1.1 and HTTP/2 prior knowledge).
    pub fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        let mut http1 = builder.http1();
        http1
            // Without a timer hyper silently runs no header timeout at all.
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            // hyper's read buffer: a head that does not fit is answered 431. (Its floor is
            // 8 KiB; the config refuses less.)
            .max_buf_size(self.max_header_bytes.max(MIN_HEADER_BYTES));
        // hyper's own limit is the same 100 fields, kept in fixed arrays; a limit set
        // explicitly, even to 100, makes it fill two 100-entry vectors for every request
        // head (≈ 1 800 instructions a request, `bench/callgrind.sh`). So only another
        // number is handed on.
        if self.max_headers != HYPER_MAX_HEADERS {
            http1.max_headers(self.max_headers);
        }
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(self.max_header_bytes).unwrap_or(u32::MAX));
        builder
    }

    /// A gate for connections: one permit per open connection.
    pub fn gate(&self) -> Gate {
        Gate(Arc::new(Semaphore::new(self.max_connections.max(1))))
    }
}

/// The least `max_header_bytes` (hyper's minimum read buffer).
pub const MIN_HEADER_BYTES: usize = 8192;

/// Counts open connections against `max_connections`.
#[derive(Debug, Clone)]
pub struct Gate(Arc<Semaphore>);

impl Gate {
    /// A permit for one more connection, held while it is open; `None` when the listener
    /// is full (the caller closes the connection at once).
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.0).try_acquire_owned().ok()
    }
}

/// Waits until the client has sent its first byte, at most `timeout`: the version sniffing
/// before hyper's own header timer starts (HTTP/1.1 or the HTTP/2 preface) has no timeout of
/// its own, so a client that connects and sends nothing would hold the connection forever.
/// `false` when the client sent nothing in time or closed the connection.
pub async fn first_byte(stream: &TcpStream, timeout: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(timeout, stream.peek(&mut byte)).await,
        Ok(Ok(n)) if n > 0
    )
}
