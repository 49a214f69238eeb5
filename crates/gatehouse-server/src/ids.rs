//! Request ids: a random per-process prefix and a counter. Unique, cheap, not secret.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct RequestIds {
    prefix: u64,
    next: AtomicU64,
}

impl RequestIds {
    pub fn new() -> Self {
        let mut b = [0u8; 8];
        // A failing system RNG only makes ids less unique across restarts.
        let _ = aws_lc_rs::rand::fill(&mut b);
        Self {
            prefix: u64::from_le_bytes(b),
            next: AtomicU64::new(1),
        }
    }

    pub fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut s = String::with_capacity(24);
        let _ = write!(s, "{:08x}{:012x}", self.prefix as u32, n);
        s
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

/// 32 random bytes from the OS RNG (tokens, salts, keys).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        // Without a working RNG no secret can be made safely.
        panic!("the operating system's random number generator failed");
    }
    b
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
