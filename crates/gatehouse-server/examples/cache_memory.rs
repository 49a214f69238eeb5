//! Memory of the bearer-token cache: the process's resident set before and after filling a
//! [`BearerCache`] with N tokens as `verify_bearer` stores them (the SHA-256 of the token →
//! the identity its verification proved, its identity headers rendered as the verifying
//! request rendered them, with a deadline).
//!
//! ```sh
//! cargo run --release -p gatehouse-server --example cache_memory -- 1000000
//! ```
//! The principals look like those of Gatehouse's own access tokens, one user per token: a
//! subject, one role, one scope, a tenant, `acr`, issuer, `jti` and `sid`. Linux only (reads
//! `/proc/self/statm`).

use gatehouse_core::config::Scheme;
use gatehouse_core::principal::Principal;
use gatehouse_server::cache::BearerCache;
use gatehouse_server::verified::Verified;
use sha2::Digest as _;

/// Resident set size in bytes (`/proc/self/statm`, second field, in pages of 4 KiB).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn principal(i: u64) -> Principal {
    let mut p = Principal::new(format!("user-{i:07}"), Scheme::Bearer);
    p.roles = vec!["bench".to_owned()];
    p.scopes = vec!["bench:read".to_owned()];
    p.tenant = Some("acme".to_owned());
    p.acr = Some("pwd".to_owned());
    p.auth_time = Some(1_764_000_000);
    p.issuer = Some("gatehouse".to_owned());
    // 22 characters, like the base64url of 16 random bytes.
    p.token_id = Some(format!("jti-{i:018}"));
    p.session_id = Some(format!("sid-{i:018}"));
    p.expires_at = Some(1_764_003_600);
    p
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let before = rss();
    // As the server sizes it (2^20 tokens), or larger for more.
    let cache = BearerCache::new(usize::try_from(n).unwrap_or(usize::MAX).max(1 << 20));
    for i in 0..n {
        let key: [u8; 32] = sha2::Sha256::digest(format!("token-{i}").as_bytes()).into();
        let v = Verified::shared(principal(i));
        v.identity_headers();
        cache.insert(&key, &v, 1_764_000_300, 1_764_000_000);
    }
    let after = rss();
    let entries = cache.len() as u64;
    #[expect(
        clippy::cast_precision_loss,
        reason = "MiB and bytes per entry for a report"
    )]
    let (mib, per) = (
        (after - before) as f64 / 1_048_576.0,
        (after - before) as f64 / entries.max(1) as f64,
    );
    println!(
        "entries={entries} capacity={} rss_before={before} rss_after={after} grew={mib:.1} MiB ({per:.0} bytes/entry)",
        cache.capacity(),
    );
}
