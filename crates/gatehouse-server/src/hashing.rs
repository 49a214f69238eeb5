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
//! That trade-off starved sign-ins whenever anything else kept the CPU busy: with a CPU hog
//! on the same host a Basic sign-in took seconds (docs/benchmarks.md, "Sign-ins beside a CPU
//! hog"). So a budget of [`BUDGET`] of hashing per second runs at the process's own (normal)
//! priority, on one more thread of that name ([`Lane::Budget`]): an ordinary rate of sign-ins
//! is served beside a hog as any other work is, while a flood of wrong passwords spends the
//! budget within the second and the rest of it waits for idle CPU as before. Being one
//! thread, the budget never holds more than one CPU at normal priority, and at most
//! [`BUDGET`] per second of it. The budget's thread keeps the priority it was born with
//! (unprivileged threads cannot raise a lowered one, sched(7) and `RLIMIT_NICE`).
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
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Name of the hashing threads (`ps -L`, `/proc/PID/task/*/comm`).
pub const THREAD_NAME: &str = "gatehouse-hash";

/// Jobs waiting per hashing thread before new ones are refused: about 1.5 s of argon2id
/// (4 s of bcrypt-10) of work queued ahead of the last one when the CPU is free.
pub const QUEUE_PER_THREAD: usize = 64;

/// Hashing time per second that runs at the process's own priority: ten argon2id checks
/// (four bcrypt-10) per second; more waits for idle CPU.
pub const BUDGET: Duration = Duration::from_millis(250);

/// Jobs waiting for the budget's thread; beyond this they take the idle lane.
const BUDGET_QUEUE: usize = 8;

type Job = Box<dyn FnOnce() + Send>;

/// Where a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// The budget's thread, at the process's priority.
    Budget,
    /// The `SCHED_IDLE` threads.
    Idle,
}

/// The hashing time spent on the budget's thread in the current one-second window.
#[derive(Debug)]
struct Window {
    start: Instant,
    used: Duration,
}

impl Window {
    /// The window of this second: a new one once the last is a second old.
    fn current(&mut self) -> &mut Self {
        if self.start.elapsed() >= Duration::from_secs(1) {
            self.start = Instant::now();
            self.used = Duration::ZERO;
        }
        self
    }
}

/// The hashing threads and their queues.
pub struct Hasher {
    threads: usize,
    budget: Duration,
    queues: OnceLock<Queues>,
    window: Arc<Mutex<Window>>,
    /// Jobs refused because the queue was full (or no thread could be started).
    pub refused: AtomicU64,
}

struct Queues {
    idle: SyncSender<Job>,
    /// `None` without a budget.
    budget: Option<SyncSender<Job>>,
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
        Self::with_budget(
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            BUDGET,
        )
    }
}

impl Hasher {
    /// A hasher of `threads` idle threads (at least one) and no budget, started at the
    /// first job.
    pub fn new(threads: usize) -> Self {
        Self::with_budget(threads, Duration::ZERO)
    }

    /// As [`Hasher::new`], plus the budget's thread for `budget` of hashing per second at
    /// normal priority.
    pub fn with_budget(threads: usize, budget: Duration) -> Self {
        Self {
            threads: threads.max(1),
            budget,
            queues: OnceLock::new(),
            window: Arc::new(Mutex::new(Window {
                start: Instant::now(),
                used: Duration::ZERO,
            })),
            refused: AtomicU64::new(0),
        }
    }

    /// The lane the next job would take: the budget's while this second's budget lasts.
    pub fn lane(&self) -> Lane {
        if self.budget.is_zero() {
            return Lane::Idle;
        }
        if lock(&self.window).current().used < self.budget {
            Lane::Budget
        } else {
            Lane::Idle
        }
    }

    /// Queues `job` for a hashing thread; the receiver gets its result (an error if the
    /// job panicked). Never waits: `Err(Busy)` when the queue is full.
    pub fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce() -> R + Send + 'static,
    ) -> Result<oneshot::Receiver<R>, Busy> {
        let (tx, rx) = oneshot::channel();
        let window = Arc::clone(&self.window);
        let job: Job = Box::new(move || {
            // The request gave up while the job waited: nobody needs the answer.
            if tx.is_closed() {
                return;
            }
            let started = thread_cpu_time();
            let r = std::panic::catch_unwind(AssertUnwindSafe(job));
            if ON_BUDGET.get() {
                // Charged after the fact, before answering: the job's CPU time, to the
                // window it ends in (its wall time would overcharge exactly when a hog
                // shares the CPU).
                let spent = thread_cpu_time().saturating_sub(started);
                lock(&window).current().used += spent;
            }
            // A panic drops `tx` (the caller sees an error) and leaves the thread serving.
            if let Ok(r) = r {
                let _ = tx.send(r);
            }
        });
        let queues = self.queues.get_or_init(|| self.start());
        let job = match (&queues.budget, self.lane()) {
            (Some(budget), Lane::Budget) => {
                match budget.try_send(job) {
                    Ok(()) => return Ok(rx),
                    // The budget's thread is behind: the idle lane takes it (the budget is
                    // not charged for a job it did not run).
                    Err(TrySendError::Full(j) | TrySendError::Disconnected(j)) => j,
                }
            }
            _ => job,
        };
        match queues.idle.try_send(job) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Err(Busy)
            }
        }
    }

    /// Starts the threads. When none can be started the queue's receiving end is gone
    /// and every job is refused (503), never left waiting.
    fn start(&self) -> Queues {
        let (tx, rx) = sync_channel::<Job>(self.threads * QUEUE_PER_THREAD);
        let rx = Arc::new(Mutex::new(rx));
        let budget = (!self.budget.is_zero()).then(|| {
            let (own_tx, own) = sync_channel::<Job>(BUDGET_QUEUE);
            let b = BudgetThread {
                own,
                idle: Arc::clone(&rx),
                window: Arc::clone(&self.window),
                budget: self.budget,
            };
            let started = std::thread::Builder::new()
                .name(THREAD_NAME.to_owned())
                .spawn(move || b.serve());
            if let Err(e) = &started {
                tracing::error!(error = %e, "cannot start the password hashing budget's thread");
            }
            own_tx
        });
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
        Queues { idle: tx, budget }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn worker(rx: &Mutex<Receiver<Job>>, said: std::sync::mpsc::Sender<Priority>) {
    let _ = said.send(lower_priority());
    drop(said);
    serve(rx);
}

/// The budget's thread: runs the jobs sent to it, and while this second's budget lasts also
/// takes jobs waiting for the idle threads (starved by other work on the CPU), so a job that
/// went to the idle lane waits at most until the next second's budget under a CPU hog.
struct BudgetThread {
    own: Receiver<Job>,
    idle: Arc<Mutex<Receiver<Job>>>,
    window: Arc<Mutex<Window>>,
    budget: Duration,
}

thread_local! {
    /// This thread is the budget's: its jobs' CPU time is charged to the budget.
    static ON_BUDGET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// How often the budget's thread looks for starved jobs in the idle lane when it has none.
const STEAL_EVERY: Duration = Duration::from_millis(50);

impl BudgetThread {
    fn serve(self) {
        ON_BUDGET.set(true);
        loop {
            let job = match self.own.recv_timeout(STEAL_EVERY) {
                Ok(job) => Some(job),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => self.steal(),
                // The gateway is gone.
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            };
            if let Some(job) = job {
                job();
            }
        }
    }

    /// A job waiting in the idle lane, if the budget has room. An idle thread waiting for
    /// a job holds the lane's lock: then nothing waits there.
    fn steal(&self) -> Option<Job> {
        if lock(&self.window).current().used >= self.budget {
            return None;
        }
        self.idle.try_lock().ok()?.try_recv().ok()
    }
}

/// Runs jobs until the hasher is gone.
fn serve(rx: &Mutex<Receiver<Job>>) {
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

/// CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`, clock_gettime(2)).
#[cfg(target_os = "linux")]
#[expect(unsafe_code, reason = "clock_gettime has no safe wrapper in std")]
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` that outlives the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Elsewhere the time since the process's first call: wall time (an overestimate of CPU).
#[cfg(not(target_os = "linux"))]
fn thread_cpu_time() -> Duration {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
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

    /// Holds a hashing thread until the sender is used (or dropped); the job answers `v`.
    fn hold(h: &Hasher, v: u8) -> (std::sync::mpsc::Sender<()>, oneshot::Receiver<u8>) {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let rx = h
            .run(move || {
                let _ = started_tx.send(());
                let _ = wait.recv();
                v
            })
            .unwrap_or_else(|_| panic!("refused"));
        started_rx.recv().unwrap_or_else(|e| panic!("{e}"));
        (release, rx)
    }

    /// Busy for `d` of this thread's CPU time.
    fn spend_cpu(d: Duration) {
        let start = thread_cpu_time();
        while thread_cpu_time().saturating_sub(start) < d {
            std::hint::spin_loop();
        }
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn within_the_budget_jobs_run_at_normal_priority_beyond_it_at_sched_idle() {
        let h = Hasher::with_budget(1, Duration::from_millis(30));
        let own = this_thread().0;
        assert_eq!(h.lane(), Lane::Budget);
        let rx = h.run(this_thread).unwrap_or_else(|_| panic!("refused"));
        let (policy, name) = rx.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(name, THREAD_NAME);
        assert_eq!(
            policy, own,
            "the budget's thread keeps the process's priority"
        );
        // A job that uses more CPU than the budget spends it for this second.
        let rx = h
            .run(|| spend_cpu(Duration::from_millis(50)))
            .unwrap_or_else(|_| panic!("refused"));
        rx.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.lane(), Lane::Idle);
        let rx = h.run(this_thread).unwrap_or_else(|_| panic!("refused"));
        let (policy, name) = rx.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(name, THREAD_NAME);
        assert_eq!(
            policy,
            libc::SCHED_IDLE as u32,
            "beyond the budget: SCHED_IDLE"
        );
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_job_stuck_in_the_idle_lane_is_taken_by_the_next_seconds_budget() {
        let h = Hasher::with_budget(1, Duration::from_millis(30));
        let own = this_thread().0;
        // Spend this second's budget.
        h.run(|| spend_cpu(Duration::from_millis(50)))
            .unwrap_or_else(|_| panic!("refused"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.lane(), Lane::Idle);
        // The one idle thread is held (as a hog would starve it); the next job waits in the
        // idle lane until the budget's thread takes it, at its own priority.
        let (release, held) = hold(&h, 0);
        let stuck = h.run(this_thread).unwrap_or_else(|_| panic!("refused"));
        let (policy, _) = stuck.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(policy, own, "run by the budget's thread");
        let _ = release.send(());
        held.await.unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn without_a_budget_every_job_takes_the_idle_lane() {
        assert_eq!(Hasher::new(2).lane(), Lane::Idle);
        assert_eq!(Hasher::default().lane(), Lane::Budget);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_counts() {
        let h = Hasher::new(1);
        // Hold the one thread until released, then fill the queue.
        let (release, first) = hold(&h, 1);
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
