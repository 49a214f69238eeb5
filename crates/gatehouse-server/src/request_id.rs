//! Request ids: a random per-process prefix and a counter. Unique, cheap, not secret.

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

    /// 20 lowercase hex digits: 8 of the prefix, 12 of the counter (written by hand: one is
    /// made for every request).
    pub fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut s = String::with_capacity(20);
        push_hex(&mut s, self.prefix & 0xffff_ffff, 8);
        push_hex(&mut s, n & 0xffff_ffff_ffff, 12);
        s
    }
}

/// Appends the low `digits` hex digits of `v`, most significant first.
fn push_hex(out: &mut String, v: u64, digits: u32) {
    for i in (0..digits).rev() {
        let d = (v >> (4 * i)) & 0xf;
        out.push(char::from(b"0123456789abcdef"[d as usize]));
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefix_and_counter_in_hex() {
        let ids = RequestIds {
            prefix: 0x0123_4567_89ab_cdef,
            next: AtomicU64::new(0xabc),
        };
        assert_eq!(ids.next(), "89abcdef000000000abc");
        assert_eq!(ids.next(), "89abcdef000000000abd");
        assert_eq!(ids.next().len(), 20);
    }
}
