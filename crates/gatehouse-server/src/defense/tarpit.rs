//! Row 4's tarpit: a locked client's `too_many_attempts` answer is held for
//! `[throttle] tarpit` (never past its `Retry-After`) before it is sent.
//!
//! A lock alone refuses a client before any password is hashed, but a closed-loop attacker
//! (credential stuffing: send, wait for the answer, send again) then simply gets its 429s
//! as fast as the gateway can answer — 10 000 a second from one address in
//! `bench/proxy.sh`, each with a new TCP connection and an audit record, all on the cores
//! the legitimate users need. Held for a second, the same attacker sends one request per
//! connection per second. The status, headers and body are unchanged (core's table), the
//! audit record is written before the hold (a client that hangs up meanwhile is still
//! recorded), and at most [`MAX_HELD`] answers are held at once: beyond it they go out at
//! once, so the tarpit never holds more connections (file descriptors) than that.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gatehouse_core::deny::Deny;

/// Most answers held at once.
pub const MAX_HELD: usize = 512;

/// The answers held now, shared by every request of a gateway.
#[derive(Debug, Default)]
pub struct Tarpit {
    held: AtomicUsize,
}

/// One held answer; the hold ends when this is dropped (its wait ended, or the client went).
#[derive(Debug)]
pub struct Held<'a> {
    tarpit: &'a Tarpit,
    wait: Duration,
}

impl Tarpit {
    /// The hold for an answer that refused with `deny`: `Some` for a locked client (row 4)
    /// while `tarpit` is not zero and fewer than [`MAX_HELD`] answers are held.
    pub fn hold(&self, tarpit: Duration, deny: Option<&Deny>) -> Option<Held<'_>> {
        // The table says which answers the tarpit holds, and for at most how long.
        let retry_after = deny?.entry().tarpit?;
        let wait = tarpit.min(Duration::from_secs(retry_after));
        if wait.is_zero() {
            return None;
        }
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_HELD).then_some(n + 1)
            })
            .ok()?;
        Some(Held { tarpit: self, wait })
    }

    /// Holds the answer that refused with `deny` as [`Tarpit::hold`] says, then returns (at
    /// once for every other answer). Called after the request was observed.
    pub async fn delay(&self, tarpit: Duration, deny: Option<&Deny>) {
        if let Some(held) = self.hold(tarpit, deny) {
            held.wait().await;
        }
    }

    /// Answers held now (`gatehouse_tarpit_held`).
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }
}

impl Held<'_> {
    pub async fn wait(self) {
        tokio::time::sleep(self.wait).await;
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.tarpit.held.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCKED: Deny = Deny::TooManyAttempts { retry_after: 30 };

    #[test]
    fn only_locked_clients_are_held_and_zero_turns_it_off() {
        let t = Tarpit::default();
        let s = Duration::from_secs(1);
        assert!(t.hold(s, None).is_none());
        assert!(t.hold(s, Some(&Deny::InvalidCredentials)).is_none());
        let quota = Deny::RateLimited {
            retry_after: 30,
            limit: 5,
        };
        assert!(t.hold(s, Some(&quota)).is_none(), "row 24 is not a lock");
        assert!(t.hold(Duration::ZERO, Some(&LOCKED)).is_none());
        let h = t.hold(s, Some(&LOCKED));
        assert_eq!(h.as_ref().map(|h| h.wait), Some(s));
        assert_eq!(t.held(), 1);
        drop(h);
        assert_eq!(t.held(), 0);
    }

    #[test]
    fn never_past_retry_after() {
        let t = Tarpit::default();
        let soon = Deny::TooManyAttempts { retry_after: 2 };
        let h = t.hold(Duration::from_secs(10), Some(&soon));
        assert_eq!(h.map(|h| h.wait), Some(Duration::from_secs(2)));
    }

    #[test]
    fn beyond_the_bound_answers_go_out_at_once() {
        let t = Tarpit::default();
        let s = Duration::from_secs(1);
        let held: Vec<_> = (0..MAX_HELD)
            .map(|_| {
                t.hold(s, Some(&LOCKED))
                    .unwrap_or_else(|| panic!("not held"))
            })
            .collect();
        assert!(t.hold(s, Some(&LOCKED)).is_none());
        assert_eq!(t.held(), MAX_HELD);
        drop(held);
        assert_eq!(t.held(), 0);
        assert!(t.hold(s, Some(&LOCKED)).is_some());
    }

    #[tokio::test]
    async fn a_client_leaving_while_held_gives_its_place_back() {
        let t = Tarpit::default();
        let h = t
            .hold(Duration::from_secs(1), Some(&LOCKED))
            .unwrap_or_else(|| panic!("not held"));
        assert_eq!(t.held(), 1);
        // The request's future is dropped mid-wait (hyper does so when the client hangs up).
        tokio::select! {
            biased;
            () = h.wait() => panic!("a second went by at once"),
            () = std::future::ready(()) => {}
        }
        assert_eq!(t.held(), 0);
    }
}
