//! Password checks run on the gateway's own hashing threads, never on the event loop or
//! tokio's blocking pool: one thread at the process's priority for a budget of hashing per
//! second (so sign-ins are not starved by a CPU hog, docs/benchmarks.md "Sign-ins beside a
//! CPU hog"), the others at the lowest CPU priority (`SCHED_IDLE`) for the rest, so a flood
//! of wrong passwords does not take the CPU from other requests (docs/benchmarks.md, "A
//! legitimate user during a wrong-password flood"). Read from /proc, so Linux only; one test in its own
//! binary, so no other test's gateway hashes meanwhile.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;

use common::{Harness, basic};
use gatehouse_server::hashing::THREAD_NAME;

/// `SCHED_IDLE` (sched(7)).
const SCHED_IDLE: u32 = 5;

struct Thread {
    tid: String,
    name: String,
    /// Scheduling policy: field 41 of `stat` (proc(5)).
    policy: u32,
    /// Time on a CPU, ns (first field of `schedstat`); `None` without CONFIG_SCHED_INFO.
    cpu_ns: Option<u64>,
}

fn threads() -> Vec<Thread> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = entry.unwrap().path();
        // A thread that ended meanwhile has no files any more.
        let (Ok(stat), Ok(name)) = (
            std::fs::read_to_string(dir.join("stat")),
            std::fs::read_to_string(dir.join("comm")),
        ) else {
            continue;
        };
        // The name in `stat` is in parentheses and may hold spaces: fields after the last `)`
        // start at field 3.
        let after = stat.rsplit_once(')').unwrap().1;
        let policy = after
            .split_whitespace()
            .nth(41 - 3)
            .unwrap()
            .parse()
            .unwrap();
        let cpu_ns = std::fs::read_to_string(dir.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok());
        out.push(Thread {
            tid: dir.file_name().unwrap().to_string_lossy().into_owned(),
            name: name.trim().to_owned(),
            policy,
            cpu_ns,
        });
    }
    out
}

fn hashing_cpu_ns(ts: &[Thread]) -> Option<u64> {
    ts.iter()
        .filter(|t| t.name == THREAD_NAME)
        .map(|t| t.cpu_ns)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_checks_run_on_the_budget_and_sched_idle_threads_and_nothing_else_is_lowered() {
    let h = Harness::start().await;
    let own_policy = threads()
        .into_iter()
        .find(|t| t.name != THREAD_NAME)
        .unwrap()
        .policy;
    // The threads start with the first password check, not before.
    assert!(threads().iter().all(|t| t.name != THREAD_NAME));
    let r = h
        .get("/api/posts", &[("Authorization", &basic("alice", "wrong"))])
        .await;
    assert_eq!(r.error(), "invalid_credentials");

    let ts = threads();
    let hashing: Vec<&Thread> = ts.iter().filter(|t| t.name == THREAD_NAME).collect();
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(
        hashing.len(),
        cpus + 1,
        "one idle hashing thread per usable CPU and the budget's"
    );
    let idle = hashing.iter().filter(|t| t.policy == SCHED_IDLE).count();
    assert_eq!(idle, cpus, "the idle lane is SCHED_IDLE");
    let budget: Vec<&&Thread> = hashing.iter().filter(|t| t.policy != SCHED_IDLE).collect();
    assert_eq!(budget.len(), 1);
    assert_eq!(
        budget[0].policy, own_policy,
        "the budget's thread keeps the process's policy"
    );
    let budget_tid = budget[0].tid.clone();
    // Only they were lowered: the runtime's threads keep the process's policy.
    for t in ts.iter().filter(|t| t.name != THREAD_NAME) {
        assert_eq!(t.policy, own_policy, "thread {} `{}`", t.tid, t.name);
    }

    // The next check's hash runs on those threads: they had nothing else to do, and their
    // CPU time grows by it.
    let before = hashing_cpu_ns(&ts);
    let hashed = h.gw.hashes_started.load(Ordering::SeqCst);
    let r = h
        .get(
            "/api/posts",
            &[("Authorization", &basic("alice", "wrong again"))],
        )
        .await;
    assert_eq!(r.error(), "invalid_credentials");
    assert_eq!(h.gw.hashes_started.load(Ordering::SeqCst), hashed + 1);
    let now = threads();
    let on_budget = |ts: &[Thread]| ts.iter().find(|t| t.tid == budget_tid)?.cpu_ns;
    match (before, hashing_cpu_ns(&now)) {
        (Some(before), Some(after)) => {
            assert!(after > before, "{before} → {after} ns");
            // Two checks are well within this second's budget: the budget's thread hashed.
            let (b0, b1) = (on_budget(&ts).unwrap(), on_budget(&now).unwrap());
            assert!(b1 > b0, "budget thread {b0} → {b1} ns");
        }
        _ => eprintln!("no /proc/self/task/*/schedstat (CONFIG_SCHED_INFO): CPU time not checked"),
    }
    // The right password still works (and is checked the same way).
    let r = h
        .get(
            "/api/posts",
            &[("Authorization", &basic("alice", "alice-pw"))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(h.gw.hasher.refused.load(Ordering::SeqCst), 0);
}
