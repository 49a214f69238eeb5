//! The audit sink: a bounded queue in front of one writer task that appends batches to the
//! store and to the JSON-lines file, so the request path never waits for a disk. Batches
//! are gathered for up to [`GATHER`] after their first record (group commit), so a busy
//! node writes one transaction per few hundred refusals, not one per refusal.
//!
//! Overflow policy: when the queue is full the newest record is dropped, counted
//! (`gatehouse_audit_dropped_total`) and reported by a warning at most every 10 seconds — a
//! record is never lost silently.
//!
//! Store outages: the file takes every batch at once; records the store refuses wait in a
//! backlog (up to [`BACKLOG_CAPACITY`]) and are written, oldest first, once it answers again
//! — tried again after 100 ms, doubling up to [`MAX_BACKOFF`] — so restarting PostgreSQL
//! loses no record from the `audit` table. Beyond the backlog's capacity the oldest records
//! are given up for the store (they are in the file), counted and logged.
//! [`AuditSink::shutdown`] closes the queue and waits until every queued record is written
//! (trying a failing store for up to the sink's shutdown patience, 10 s by default).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_store::{AuditRecord, Store};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Records the queue holds before it drops the newest.
pub const QUEUE_CAPACITY: usize = 8192;
/// Records written per store transaction / file write.
const BATCH: usize = 512;
/// How long the writer waits for more records before writing a batch that is not full.
const GATHER: Duration = Duration::from_millis(20);
/// Records kept for a store that does not answer (the file has them already).
pub const BACKLOG_CAPACITY: usize = 100_000;
/// The first pause after a failed store write; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between two store attempts while it fails.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long [`AuditSink::shutdown`] keeps trying a failing store by default.
const SHUTDOWN_PATIENCE: Duration = Duration::from_secs(10);
/// Seconds between two overflow warnings.
const WARN_EVERY: i64 = 10;

/// Counters shared by the request path, the writer and `/metrics`.
#[derive(Debug, Default)]
pub struct AuditStats {
    pub dropped: AtomicU64,
    pub written: AtomicU64,
    /// Records given up for the store: the backlog overflowed, or the store still failed
    /// when the writer shut down.
    pub store_failed: AtomicU64,
    /// Records waiting for the store to answer again.
    pub store_backlog: AtomicU64,
    /// Records the JSON-lines file did not take.
    pub file_failed: AtomicU64,
    last_warn: AtomicI64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

pub struct AuditSink {
    tx: mpsc::Sender<AuditRecord>,
    rx: Mutex<Option<mpsc::Receiver<AuditRecord>>>,
    stop: watch::Sender<bool>,
    writer: tokio::sync::Mutex<Option<JoinHandle<()>>>,
    patience: Duration,
    pub stats: Arc<AuditStats>,
}

impl Default for AuditSink {
    fn default() -> Self {
        Self::with_capacity(QUEUE_CAPACITY)
    }
}

impl AuditSink {
    pub fn with_capacity(capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        Self {
            tx,
            rx: Mutex::new(Some(rx)),
            stop: watch::channel(false).0,
            writer: tokio::sync::Mutex::new(None),
            patience: SHUTDOWN_PATIENCE,
            stats: Arc::default(),
        }
    }

    /// How long [`shutdown`](Self::shutdown) keeps trying a store that fails before the
    /// records still waiting for it are given up (counted in `store_failed`).
    #[must_use]
    pub fn with_shutdown_patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    /// Queues a record without waiting; drops it (counted, logged) when the queue is full.
    pub fn push(&self, record: AuditRecord, now: i64) {
        let closed = match self.tx.try_send(record) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(_)) => false,
            Err(mpsc::error::TrySendError::Closed(_)) => true,
        };
        let dropped = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let last = self.stats.last_warn.load(Ordering::Relaxed);
        if now - last >= WARN_EVERY
            && self
                .stats
                .last_warn
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            if closed {
                tracing::warn!(
                    dropped_total = dropped,
                    "audit record dropped: the audit writer has shut down"
                );
            } else {
                tracing::warn!(
                    dropped_total = dropped,
                    capacity = self.tx.max_capacity(),
                    "audit queue full: newest records dropped (see gatehouse_audit_dropped_total)"
                );
            }
        }
    }

    /// Records waiting for the writer.
    pub fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Starts the writer (once; later calls do nothing).
    pub fn start(&self, store: Arc<dyn Store>, file: Option<PathBuf>) {
        let Some(rx) = lock(&self.rx).take() else {
            return;
        };
        let stop = self.stop.subscribe();
        let stats = Arc::clone(&self.stats);
        let feed = StoreFeed::new(store, stats);
        let handle = tokio::spawn(run(rx, stop, feed, file, self.patience));
        if let Ok(mut w) = self.writer.try_lock() {
            *w = Some(handle);
        }
    }

    /// Stops accepting records, writes every queued one, and waits for the writer.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let handle = self.writer.lock().await.take();
        if let Some(h) = handle
            && let Err(e) = h.await
        {
            tracing::error!(error = %e, "audit writer failed");
        }
    }
}

async fn run(
    mut rx: mpsc::Receiver<AuditRecord>,
    mut stop: watch::Receiver<bool>,
    mut feed: StoreFeed,
    file: Option<PathBuf>,
    patience: Duration,
) {
    let mut out = JsonLines::new(file);
    let mut buf = Vec::with_capacity(BATCH);
    loop {
        let retry_at = feed.retry_at;
        tokio::select! {
            biased;
            n = rx.recv_many(&mut buf, BATCH) => {
                if n == 0 {
                    break;
                }
                // Group commit: under load records arrive one by one, and a transaction
                // each (a few round trips to the store) cost more than the requests they
                // describe. What arrives within `GATHER` joins this batch.
                if buf.len() < BATCH {
                    tokio::time::sleep(GATHER).await;
                    while buf.len() < BATCH
                        && let Ok(r) = rx.try_recv()
                    {
                        buf.push(r);
                    }
                }
                out.append_counted(&buf, &feed.stats).await;
                feed.add(&mut buf);
                feed.flush().await;
            }
            () = sleep_until(retry_at), if retry_at.is_some() => feed.flush().await,
            () = stopped(&mut stop) => {
                rx.close();
                while rx.recv_many(&mut buf, BATCH).await > 0 {
                    out.append_counted(&buf, &feed.stats).await;
                    feed.add(&mut buf);
                }
                break;
            }
        }
    }
    out.flush().await;
    feed.finish(Instant::now() + patience).await;
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// Completes when the stop flag is set or its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`: drop it here.
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

/// The records on their way to the store, oldest first, and its state: answering, or
/// failing until `retry_at`.
struct StoreFeed {
    store: Arc<dyn Store>,
    stats: Arc<AuditStats>,
    backlog: VecDeque<AuditRecord>,
    /// Set while the store fails: the next attempt waits until then.
    retry_at: Option<Instant>,
    backoff: Duration,
    /// Records given up during this outage (logged once it ends, and at every overflow).
    given_up: u64,
}

impl StoreFeed {
    fn new(store: Arc<dyn Store>, stats: Arc<AuditStats>) -> Self {
        Self {
            store,
            stats,
            backlog: VecDeque::new(),
            retry_at: None,
            backoff: FIRST_BACKOFF,
            given_up: 0,
        }
    }

    /// Takes `buf`'s records; beyond [`BACKLOG_CAPACITY`] the oldest are given up.
    fn add(&mut self, buf: &mut Vec<AuditRecord>) {
        self.backlog.extend(buf.drain(..));
        let excess = self.backlog.len().saturating_sub(BACKLOG_CAPACITY);
        if excess > 0 {
            self.backlog.drain(..excess);
            self.stats
                .store_failed
                .fetch_add(excess as u64, Ordering::Relaxed);
            self.given_up += excess as u64;
            tracing::error!(
                records = excess,
                capacity = BACKLOG_CAPACITY,
                "audit backlog full while the store fails: the oldest records are given up for the store (they are in the audit file)"
            );
        }
        self.stats
            .store_backlog
            .store(self.backlog.len() as u64, Ordering::Relaxed);
    }

    /// Writes the backlog, a batch per transaction, unless the store failed and its pause is
    /// not over; after a failure the records stay, and the pause doubles.
    async fn flush(&mut self) {
        if self.retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        while !self.backlog.is_empty() {
            let n = self.backlog.len().min(BATCH);
            let batch: Vec<AuditRecord> = self.backlog.iter().take(n).cloned().collect();
            match self.store.append_audit(batch).await {
                Ok(()) => {
                    self.backlog.drain(..n);
                    self.stats.written.fetch_add(n as u64, Ordering::Relaxed);
                    self.stats
                        .store_backlog
                        .store(self.backlog.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    if self.retry_at.is_none() {
                        tracing::warn!(
                            error = %e,
                            waiting = self.backlog.len(),
                            "audit store write failed: records wait in memory (and are in the audit file) until the store answers"
                        );
                    }
                    self.retry_at = Some(Instant::now() + self.backoff);
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    return;
                }
            }
        }
        if self.retry_at.take().is_some() {
            tracing::info!(
                given_up = self.given_up,
                "audit store writes resumed; the waiting records are written"
            );
        }
        self.backoff = FIRST_BACKOFF;
        self.given_up = 0;
    }

    /// At shutdown: keeps trying until `deadline`, then gives up what is left.
    async fn finish(&mut self, deadline: Instant) {
        loop {
            self.flush().await;
            match self.retry_at {
                None => return,
                Some(at) if at < deadline => tokio::time::sleep_until(at).await,
                Some(_) => break,
            }
        }
        let left = self.backlog.len() as u64;
        self.backlog.clear();
        self.stats.store_failed.fetch_add(left, Ordering::Relaxed);
        self.stats.store_backlog.store(0, Ordering::Relaxed);
        tracing::error!(
            records = left,
            "audit records not written to the store: it still failed at shutdown (they are in the audit file)"
        );
    }
}

/// The JSON-lines file, opened (created, mode 0600) at the first write.
struct JsonLines {
    path: Option<PathBuf>,
    file: Option<tokio::io::BufWriter<tokio::fs::File>>,
}

impl JsonLines {
    fn new(path: Option<PathBuf>) -> Self {
        Self { path, file: None }
    }

    async fn append(&mut self, records: &[AuditRecord]) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if self.file.is_none() {
            let mut o = tokio::fs::OpenOptions::new();
            o.create(true).append(true);
            #[cfg(unix)]
            o.mode(0o600);
            self.file = Some(tokio::io::BufWriter::new(o.open(path).await?));
        }
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        let mut text = String::with_capacity(records.len() * 256);
        for r in records {
            text.push_str(&record_json(r).to_string());
            text.push('\n');
        }
        let written = async {
            f.write_all(text.as_bytes()).await?;
            f.flush().await
        }
        .await;
        if written.is_err() {
            // Reopen next time (the file may have been rotated away or the disk freed).
            self.file = None;
        }
        written
    }

    /// [`append`](Self::append), counting and logging a failure.
    async fn append_counted(&mut self, records: &[AuditRecord], stats: &AuditStats) {
        if let Err(e) = self.append(records).await {
            let n = records.len() as u64;
            stats.file_failed.fetch_add(n, Ordering::Relaxed);
            tracing::error!(error = %e, records = n, "audit records not written to the audit file");
        }
    }

    async fn flush(&mut self) {
        if let Some(f) = self.file.as_mut()
            && let Err(e) = f.flush().await
        {
            tracing::error!(error = %e, "audit file flush failed");
        }
    }
}

/// A record as one JSON object: the JSON-lines file and `gatehouse audit --json`.
pub fn record_json(r: &AuditRecord) -> serde_json::Value {
    serde_json::json!({
        "time": gatehouse_core::render::rfc3339(r.time),
        "kind": r.kind.as_str(),
        "request_id": r.request_id,
        "route": r.route,
        "method": r.method,
        "path": r.path,
        "client_ip": r.client_ip,
        "principal": r.principal,
        "scheme": r.scheme,
        "status": r.status,
        "error": r.error,
        "hidden": r.hidden,
        "detail": r.detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_store::{AuditKind, AuditQuery, open_store};

    fn rec(i: i64) -> AuditRecord {
        AuditRecord {
            time: 1_700_000_000 + i,
            kind: AuditKind::Request,
            request_id: format!("r{i}"),
            route: "default".into(),
            method: "GET".into(),
            path: "/x".into(),
            client_ip: Some("192.0.2.1".into()),
            principal: None,
            scheme: None,
            status: 401,
            error: Some("missing_credentials".into()),
            hidden: false,
            detail: String::new(),
        }
    }

    #[tokio::test]
    async fn overflow_drops_newest_and_counts_and_shutdown_drains() {
        let store = open_store("sqlite::memory:")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let sink = AuditSink::with_capacity(4);
        // The writer is not running yet: the queue fills up.
        for i in 0..6 {
            sink.push(rec(i), 1_700_000_000);
        }
        assert_eq!(sink.depth(), 4);
        assert_eq!(sink.stats.dropped.load(Ordering::Relaxed), 2);
        sink.start(Arc::clone(&store), None);
        sink.shutdown().await;
        let got = store
            .query_audit(AuditQuery::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<&str> = got.iter().map(|e| e.record.request_id.as_str()).collect();
        assert_eq!(ids, ["r0", "r1", "r2", "r3"], "the oldest were kept");
        assert_eq!(sink.stats.written.load(Ordering::Relaxed), 4);
        // After shutdown nothing is accepted, and that too is counted.
        sink.push(rec(9), 1_700_000_100);
        assert_eq!(sink.stats.dropped.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn failed_store_writes_are_counted_not_silent() {
        let sqlite = gatehouse_store::SqliteStore::open("sqlite::memory:")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // A closed store fails every write.
        sqlite.close().await;
        let sink = AuditSink::with_capacity(8).with_shutdown_patience(Duration::from_millis(300));
        sink.start(Arc::new(sqlite), None);
        sink.push(rec(1), 0);
        sink.push(rec(2), 0);
        sink.shutdown().await;
        assert_eq!(sink.stats.store_failed.load(Ordering::Relaxed), 2);
        assert_eq!(sink.stats.written.load(Ordering::Relaxed), 0);
    }
}
