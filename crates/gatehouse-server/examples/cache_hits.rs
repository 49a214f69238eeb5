//! Instructions of a bearer-cache hit, for callgrind: the cache of the server before the
//! compact records (a [`TtlCache`] of shared identities, still the Basic cache's type) and the
//! [`BearerCache`] — a hit in its hot tier (a token that keeps coming back) and in its compact
//! tier (a token not seen among the last few thousand, rebuilt from its record).
//!
//! ```sh
//! cargo build --release -p gatehouse-server --example cache_hits
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/hits.cg target/release/examples/cache_hits
//! callgrind_annotate --inclusive=yes /tmp/hits.cg | grep cache_hits::
//! ```
//! Each `*_hits` function does [`LOOKUPS`] lookups; divide its inclusive count by that. The
//! SHA-256 of the token, the same for both, is not included.

use std::hint::black_box;

use gatehouse_core::config::Scheme;
use gatehouse_core::principal::Principal;
use gatehouse_server::cache::{BearerCache, TtlCache};
use gatehouse_server::verified::{Identity, Verified};
use sha2::Digest as _;

const TOKENS: u32 = 20_000;
const LOOKUPS: usize = 100_000;
const NOW: i64 = 1_764_000_000;

fn principal(i: u32) -> Principal {
    let mut p = Principal::new(format!("user-{i:07}"), Scheme::Bearer);
    p.roles = vec!["bench".to_owned()];
    p.scopes = vec!["bench:read".to_owned()];
    p.tenant = Some("acme".to_owned());
    p.acr = Some("pwd".to_owned());
    p.auth_time = Some(NOW);
    p.issuer = Some("gatehouse".to_owned());
    p.token_id = Some(format!("jti-{i:018}"));
    p.session_id = Some(format!("sid-{i:018}"));
    p.expires_at = Some(NOW + 3600);
    p
}

#[inline(never)]
fn old_hot_hits(c: &TtlCache<Identity>, key: &[u8; 32]) -> usize {
    (0..LOOKUPS)
        .filter(|_| black_box(c.get(black_box(key), NOW)).is_some())
        .count()
}

#[inline(never)]
fn new_hot_hits(c: &BearerCache, key: &[u8; 32]) -> usize {
    (0..LOOKUPS)
        .filter(|_| black_box(c.get(black_box(key), NOW)).is_some())
        .count()
}

#[inline(never)]
fn old_spread_hits(c: &TtlCache<Identity>, keys: &[[u8; 32]]) -> usize {
    keys.iter()
        .cycle()
        .take(LOOKUPS)
        .filter(|k| black_box(c.get(black_box(k), NOW)).is_some())
        .count()
}

#[inline(never)]
fn new_compact_hits(c: &BearerCache, keys: &[[u8; 32]]) -> usize {
    keys.iter()
        .cycle()
        .take(LOOKUPS)
        .filter(|k| black_box(c.get(black_box(k), NOW)).is_some())
        .count()
}

fn main() {
    let keys: Vec<[u8; 32]> = (0..TOKENS)
        .map(|i| sha2::Sha256::digest(format!("token-{i}").as_bytes()).into())
        .collect();
    let old: TtlCache<Identity> = TtlCache::new(200_000);
    let new = BearerCache::new(1 << 20);
    for (i, k) in (0..TOKENS).zip(&keys) {
        let v = Verified::shared(principal(i));
        v.identity_headers();
        old.insert(*k, std::sync::Arc::clone(&v), NOW + 300, NOW);
        new.insert(k, &v, NOW + 300, NOW);
    }
    let hits = [
        old_hot_hits(&old, &keys[0]),
        new_hot_hits(&new, &keys[0]),
        old_spread_hits(&old, &keys),
        new_compact_hits(&new, &keys),
    ];
    println!("lookups per function={LOOKUPS}, hits={hits:?}");
}
