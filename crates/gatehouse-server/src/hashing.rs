//! Password hashing off the request path: dedicated threads at the lowest CPU priority
//! behind a bounded queue.
//!
//! A password check (argon2id 20–25 ms, bcrypt-10 ≈ 60 ms) is pure CPU. On tokio's blocking
//! pool it ran at the event loop's own priority, and where both share a core — a pinned
//! process, a small VM or container — the kernel lets a running hash finish its slice
//! before a woken event loop runs (EEVDF, Linux 6.6+): a flood of wrong passwords for
//! unknown users (each costs a dummy hash, so that the answer does not tell which users
//! exist) then added milliseconds to every other request's tail latency.
//!
//! Here hashes run on [`THREAD_NAME`] threads that lower their own priority first:
//! `SCHED_IDLE` on Linux, where a waking normal thread preempts an idle-class thread at
//! once, or else a nice value of 19 (a per-thread attribute on Linux). Other systems keep
//! the normal priority (there `setpriority` would lower the whole process). The trade-off:
//! hashing only gets the CPU time the rest of the process (and the machine) leaves, so
//! under full CPU load logins wait for their hash — a verified credential's cached answer
//! and every other request do not.
//!
//! The threads start at the first hash; as many as the process may use CPUs, so hashes
//! never take more than the machine has. Jobs wait in a queue of [`QUEUE_PER_THREAD`] per
//! thread; beyond it [`Hasher::run`] refuses at once (the caller answers 503 with
//! `Retry-After`) instead of piling up work nobody will wait for. A job whose caller has
//! gone (the client hung up) is skipped.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::oneshot;

/// Name of the hashing threads (`ps -L`, `/proc/PID/task/*/comm`).
pub const THREAD_NAME: &str = "gatehouse-hash";

/// Jobs waiting per hashing thread before new ones are refused: about 1.5 s of argon2id
/// (4 s of bcrypt-10) of work queued ahead of the last one when the CPU is free.
pub const QUEUE_PER_THREAD: usize = 64;

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads and their queue.
pub struct Hasher {
    threads: usize,
    queue: OnceLock<SyncSender<Job>>,
    /// Jobs refused because the queue was full (or no thread could be started).
    pub refused: AtomicU64,
}

/// The queue is full or no hashing thread is running: try again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// The priority the hashing threads got, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// `SCHED_IDLE` (Linux).
    Idle,
    /// Nice 19 (Linux, where `SCHED_IDLE` was refused).
    Nice19,
    /// Unchanged.
    Normal,
}

impl Default for Hasher {
    fn default() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
    }
}

impl Hasher {
    /// A hasher of `threads` threads (at least one), started at the first job.
    pub fn new(threads: usize) -> Self {
        Self {
            threads: threads.max(1),
            queue: OnceLock::new(),
            refused: AtomicU64::new(0),
        }
    }

    /// Queues `job` for a hashing thread; the receiver gets its result (an error if the
    /// job panicked). Never waits: `Err(Busy)` when the queue is full.
    pub fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce() -> R + Send + 'static,
    ) -> Result<oneshot::Receiver<R>, Busy> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            // The request gave up while the job waited: nobody needs the answer.
            if tx.is_closed() {
                return;
            }
            // A panic drops `tx` (the caller sees an error) and leaves the thread serving.
            if let Ok(r) = std::panic::catch_unwind(AssertUnwindSafe(job)) {
                let _ = tx.send(r);
            }
        });
        match self.queue().try_send(job) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Err(Busy)
            }
        }
    }

    fn queue(&self) -> &SyncSender<Job> {
        self.queue.get_or_init(|| self.start())
    }

    /// Starts the threads. When none can be started the queue's receiving end is gone
    /// and every job is refused (503), never left waiting.
    fn start(&self) -> SyncSender<Job> {
        let (tx, rx) = sync_channel::<Job>(self.threads * QUEUE_PER_THREAD);
        let rx = Arc::new(Mutex::new(rx));
        let (said_tx, said_rx) = std::sync::mpsc::channel();
        for _ in 0..self.threads {
            let rx = Arc::clone(&rx);
            let said = said_tx.clone();
            if let Err(e) = std::thread::Builder::new()
                .name(THREAD_NAME.to_owned())
                .spawn(move || worker(&rx, said))
            {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        drop(said_tx);
        // One line for all threads (each reports once, then drops its sender).
        let got: Vec<Priority> = said_rx.iter().collect();
        match got.iter().max() {
            None => tracing::error!("no password hashing thread: password checks answer 503"),
            Some(Priority::Idle) => tracing::debug!(
                threads = got.len(),
                "password hashing runs at the lowest CPU priority (SCHED_IDLE)"
            ),
            Some(p) => tracing::warn!(
                threads = got.len(),
                priority = ?p,
                "password hashing could not be given the lowest CPU priority (SCHED_IDLE): \
                 it competes with requests for the CPU"
            ),
        }
        tx
    }
}

fn worker(rx: &Mutex<Receiver<Job>>, said: std::sync::mpsc::Sender<Priority>) {
    let _ = said.send(lower_priority());
    drop(said);
    loop {
        // The lock is held while this thread waits for a job, not while it runs one.
        let job = match rx.lock() {
            Ok(g) => g.recv(),
            Err(p) => p.into_inner().recv(),
        };
        match job {
            Ok(job) => job(),
            // The gateway is gone.
            Err(_) => return,
        }
    }
}

/// Lowers the calling thread's CPU priority as far as an unprivileged thread can.
#[cfg(target_os = "linux")]
#[expect(
    unsafe_code,
    reason = "sched_setscheduler and setpriority have no safe wrapper in std"
)]
pub fn lower_priority() -> Priority {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid, initialised `sched_param` that outlives the call; pid 0 is
    // the calling thread (Linux schedules threads, sched_setscheduler(2)).
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &raw const param) } == 0 {
        return Priority::Idle;
    }
    // SAFETY: plain integer arguments; on Linux `who = 0` with PRIO_PROCESS is the calling
    // thread only (setpriority(2), "BUGS": nice is per thread).
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) } == 0 {
        return Priority::Nice19;
    }
    Priority::Normal
}

/// Lowers the calling thread's CPU priority as far as an unprivileged thread can: nothing
/// outside Linux, where priorities are per process.
#[cfg(not(target_os = "linux"))]
pub fn lower_priority() -> Priority {
    Priority::Normal
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scheduling policy (field 41 of `stat`, proc(5)) and name of the calling thread.
    #[cfg(target_os = "linux")]
    fn this_thread() -> (u32, String) {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
        // The name is in parentheses and may hold spaces: count fields after the last `)`.
        let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let policy = after
            .split_whitespace()
            .nth(41 - 3)
            .and_then(|f| f.parse().ok())
            .unwrap_or(u32::MAX);
        let name = std::fs::read_to_string("/proc/thread-self/comm").unwrap_or_default();
        (policy, name.trim().to_owned())
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn jobs_run_on_named_threads_at_sched_idle() {
        let h = Hasher::new(2);
        let before = this_thread().0;
        let rx = h.run(this_thread).unwrap_or_else(|_| panic!("refused"));
        let (policy, name) = rx.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(name, THREAD_NAME);
        assert_eq!(policy, libc::SCHED_IDLE as u32, "SCHED_IDLE");
        // Only the hashing threads: the caller's thread is untouched.
        assert_eq!(this_thread().0, before);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_counts() {
        let h = Hasher::new(1);
        // Hold the one thread until released, then fill the queue.
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let first = h
            .run(move || {
                let _ = started_tx.send(());
                let _ = wait.recv();
                1
            })
            .unwrap_or_else(|_| panic!("refused"));
        started_rx.recv().unwrap_or_else(|e| panic!("{e}"));
        let queued: Vec<_> = (0..QUEUE_PER_THREAD)
            .map(|i| {
                h.run(move || i)
                    .unwrap_or_else(|_| panic!("refused at {i}"))
            })
            .collect();
        assert_eq!(h.run(|| 0).err(), Some(Busy));
        assert_eq!(h.refused.load(Ordering::Relaxed), 1);
        let _ = release.send(());
        assert_eq!(first.await.ok(), Some(1));
        for (i, rx) in queued.into_iter().enumerate() {
            assert_eq!(rx.await.ok(), Some(i));
        }
        // Room again.
        assert_eq!(
            h.run(|| 7).unwrap_or_else(|_| panic!("refused")).await.ok(),
            Some(7)
        );
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_the_thread_keeps_serving() {
        let h = Hasher::new(1);
        let rx = h
            .run(|| -> u8 { panic!("boom") })
            .unwrap_or_else(|_| panic!("refused"));
        assert!(rx.await.is_err());
        assert_eq!(
            h.run(|| 3).unwrap_or_else(|_| panic!("refused")).await.ok(),
            Some(3)
        );
    }

    #[tokio::test]
    async fn a_job_whose_caller_left_is_skipped() {
        let h = Hasher::new(1);
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let first = h
            .run(move || {
                let _ = wait.recv();
            })
            .unwrap_or_else(|_| panic!("refused"));
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r = Arc::clone(&ran);
        let gone = h
            .run(move || r.store(true, Ordering::SeqCst))
            .unwrap_or_else(|_| panic!("refused"));
        drop(gone);
        let _ = release.send(());
        let _ = first.await;
        // The thread takes jobs in order: once this one answers, the skipped one was seen.
        assert_eq!(
            h.run(|| 5).unwrap_or_else(|_| panic!("refused")).await.ok(),
            Some(5)
        );
        assert!(!ran.load(Ordering::SeqCst));
    }
}
