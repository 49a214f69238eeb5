//! The verified bearer-token cache, sized for a million tokens in under 100 MiB.
//!
//! Two tiers:
//! - **hot**: a small direct-mapped table of shared [`Identity`]s (the principal with its
//!   identity header values already rendered). A token that keeps coming back costs what a
//!   hit always cost: a SHA-256, a lock and a reference count.
//! - **compact**: every cached token as one record of a few dozen bytes in its shard's byte
//!   arena — the deadline, `exp`, `auth_time`, the subject, `jti` and `sid` — plus an index
//!   into the shard's table of what tokens share (roles, scopes, tenant, `acr`, issuer, scheme
//!   and the identity header values rendered from them). The table's slot is the key (16
//!   bytes of the token's SHA-256) and the record's offset: 20 bytes. A hit here builds the
//!   principal again (a few small allocations, no signature check) and moves it to the hot
//!   tier.
//!
//! The key is 128 bits of SHA-256: finding a token that collides with one of a million
//! cached ones is a second preimage of a 128-bit hash (≈ 2¹⁰⁸ hashes), out of reach.
//!
//! Principals that do not fit a record (a field longer than 255 bytes, a time beyond 2106, a
//! suspended account, more than 65 535 distinct grant sets in a shard) are kept in the hot
//! tier only.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use gatehouse_core::attributes::Attributes;
use gatehouse_core::config::Scheme;
use gatehouse_core::principal::{AccountState, Principal};

use crate::verified::IdentityHeaders;
use crate::verified::{Identity, Verified};

/// Slots of the hot tier.
const HOT_SLOTS: usize = 2048;
/// Buckets of one shard's table at most; it holds 7/8 of them (hashbrown's load factor), so
/// a full shard has no empty half.
const SHARD_BUCKETS: usize = 1 << 16;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// 16 bytes of a token's SHA-256, as four words (alignment 4: a slot with its `u32` offset
/// is 20 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key([u32; 4]);

impl Key {
    fn of(digest: &[u8; 32]) -> Self {
        let mut w = [0u32; 4];
        for (w, c) in w.iter_mut().zip(digest.chunks_exact(4)) {
            let mut b = [0u8; 4];
            b.copy_from_slice(c);
            *w = u32::from_le_bytes(b);
        }
        Self(w)
    }

    /// Which shard and hot slot: words 0 and 1 (the table hashes words 2 and 3).
    fn spread(self) -> u64 {
        u64::from(self.0[0]) | (u64::from(self.0[1]) << 32)
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        // Already uniformly distributed: SHA-256 output.
        h.write_u64(u64::from(self.0[2]) | (u64::from(self.0[3]) << 32));
    }
}

/// Passes a `Key`'s word through (SipHash over 16 random bytes would be wasted work).
#[derive(Default)]
struct Pass(u64);

impl Hasher for Pass {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// What the tokens of one kind of user share.
#[derive(PartialEq, Eq, Hash)]
struct Grants {
    roles: Vec<String>,
    scopes: Vec<String>,
    tenant: Option<String>,
    acr: Option<String>,
    issuer: Option<String>,
    scheme: Scheme,
    read_only: bool,
    /// Row 25's facts: an external issuer's mapped attributes and the claims requirements
    /// name (usually the shared empty set).
    attributes: Arc<Attributes>,
    claims: Arc<Attributes>,
}

impl Grants {
    fn of(p: &Principal) -> Self {
        Self {
            roles: p.roles.clone(),
            scopes: p.scopes.clone(),
            tenant: p.tenant.clone(),
            acr: p.acr.clone(),
            issuer: p.issuer.clone(),
            scheme: p.scheme,
            read_only: p.read_only,
            attributes: Arc::clone(&p.attributes),
            claims: Arc::clone(&p.claims),
        }
    }
}

/// A record's fixed part: deadline, `exp`, `auth_time` (u32 each), grants (u16), flags, and
/// the lengths of the subject, `jti` and `sid`; the three strings follow.
const HEAD: usize = 18;
const HAS_EXP: u8 = 1;
const HAS_AUTH_TIME: u8 = 2;
const HAS_JTI: u8 = 4;
const HAS_SID: u8 = 8;

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    u32::from_le_bytes(w)
}

/// Bytes of one arena chunk. Records are appended to fixed-size chunks, never moved by a
/// growing buffer (a reallocated buffer's old copy can stay resident), and never span two.
const CHUNK: usize = 1 << 16;

/// A shard's records: chunks of [`CHUNK`] bytes; a record's offset is its chunk's index ×
/// 2^16 plus its place in the chunk.
#[derive(Default)]
struct Arena {
    chunks: Vec<Vec<u8>>,
    /// Bytes in all chunks.
    len: usize,
}

impl Arena {
    /// Appends a record; `None` when the arena holds 2^32 bytes.
    fn push(&mut self, record: &[u8]) -> Option<u32> {
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.len() + record.len() <= CHUNK);
        if !fits {
            if self.chunks.len() >= 1 << 16 {
                return None;
            }
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let index = u32::try_from(self.chunks.len() - 1).ok()?;
        let chunk = self.chunks.last_mut()?;
        let at = u32::try_from(chunk.len()).ok()?;
        chunk.extend_from_slice(record);
        self.len += record.len();
        Some(index << 16 | at)
    }
}

/// A record in an arena, read back.
struct Record<'a> {
    bytes: &'a [u8],
}

impl<'a> Record<'a> {
    fn at(arena: &'a Arena, offset: u32) -> Option<Self> {
        let chunk = arena.chunks.get(usize::try_from(offset >> 16).ok()?)?;
        let start = usize::try_from(offset & 0xffff).ok()?;
        let head = chunk.get(start..start + HEAD)?;
        let len = HEAD + head[15..18].iter().map(|l| usize::from(*l)).sum::<usize>();
        chunk.get(start..start + len).map(|bytes| Self { bytes })
    }

    fn deadline(&self) -> i64 {
        i64::from(u32_at(self.bytes, 0))
    }

    fn grants(&self) -> usize {
        usize::from(u16::from_le_bytes([self.bytes[12], self.bytes[13]]))
    }

    fn flags(&self) -> u8 {
        self.bytes[14]
    }

    fn time(&self, at: usize, flag: u8) -> Option<i64> {
        (self.flags() & flag != 0).then(|| i64::from(u32_at(self.bytes, at)))
    }

    /// The subject, `jti` and `sid` (the last two empty when absent).
    fn texts(&self) -> [&'a str; 3] {
        let mut out = [""; 3];
        let mut at = HEAD;
        for (i, o) in out.iter_mut().enumerate() {
            let len = usize::from(self.bytes[15 + i]);
            // Written from `&str`s whole, so always UTF-8.
            *o = self
                .bytes
                .get(at..at + len)
                .and_then(|s| std::str::from_utf8(s).ok())
                .unwrap_or("");
            at += len;
        }
        out
    }
}

/// A principal as a record, or `None` when it does not fit one.
fn encode(p: &Principal, until: i64, grants: u16, out: &mut Vec<u8>) -> Option<()> {
    let time = |t: i64| u32::try_from(t).ok();
    let text = |s: &str| u8::try_from(s.len()).ok();
    let deadline = time(until)?;
    let (exp, auth_time) = (p.expires_at.map(time), p.auth_time.map(time));
    let lens = [
        text(&p.subject)?,
        text(p.token_id.as_deref().unwrap_or(""))?,
        text(p.session_id.as_deref().unwrap_or(""))?,
    ];
    let mut flags = 0;
    for (present, flag) in [
        (exp.is_some(), HAS_EXP),
        (auth_time.is_some(), HAS_AUTH_TIME),
        (p.token_id.is_some(), HAS_JTI),
        (p.session_id.is_some(), HAS_SID),
    ] {
        if present {
            flags |= flag;
        }
    }
    let (exp, auth_time) = (
        exp.map_or(Some(0), |t| t)?,
        auth_time.map_or(Some(0), |t| t)?,
    );
    out.extend_from_slice(&deadline.to_le_bytes());
    out.extend_from_slice(&exp.to_le_bytes());
    out.extend_from_slice(&auth_time.to_le_bytes());
    out.extend_from_slice(&grants.to_le_bytes());
    out.push(flags);
    out.extend_from_slice(&lens);
    out.extend_from_slice(p.subject.as_bytes());
    out.extend_from_slice(p.token_id.as_deref().unwrap_or("").as_bytes());
    out.extend_from_slice(p.session_id.as_deref().unwrap_or("").as_bytes());
    Some(())
}

/// One shard of the compact tier.
#[derive(Default)]
struct Shard {
    /// Key → offset of its record in `arena`.
    map: HashMap<Key, u32, BuildHasherDefault<Pass>>,
    arena: Arena,
    /// Bytes of `arena` no key points to any more (replaced records).
    garbage: usize,
    /// Where a record is put together before it is appended.
    scratch: Vec<u8>,
    grants: Vec<(Arc<Grants>, IdentityHeaders)>,
    grant_ids: HashMap<Arc<Grants>, u16>,
}

impl Shard {
    /// The identity of a live record, and its deadline.
    fn get(&self, key: Key, now: i64) -> Option<(Identity, i64)> {
        let rec = Record::at(&self.arena, *self.map.get(&key)?)?;
        if rec.deadline() <= now {
            return None;
        }
        let (g, headers) = self.grants.get(rec.grants())?;
        let [subject, jti, sid] = rec.texts();
        let principal = Principal {
            subject: subject.to_owned(),
            roles: g.roles.clone(),
            scopes: g.scopes.clone(),
            tenant: g.tenant.clone(),
            scheme: g.scheme,
            acr: g.acr.clone(),
            auth_time: rec.time(8, HAS_AUTH_TIME),
            read_only: g.read_only,
            account: AccountState::Active,
            issuer: g.issuer.clone(),
            token_id: (rec.flags() & HAS_JTI != 0).then(|| jti.to_owned()),
            session_id: (rec.flags() & HAS_SID != 0).then(|| sid.to_owned()),
            expires_at: rec.time(4, HAS_EXP),
            attributes: Arc::clone(&g.attributes),
            claims: Arc::clone(&g.claims),
        };
        let v = Verified::with_headers(principal, headers.for_subject(subject));
        Some((v, rec.deadline()))
    }

    /// The id of `p`'s grant set, interned on first sight; `None` when the shard has as
    /// many as a record can name.
    fn intern(&mut self, p: &Principal) -> Option<u16> {
        let g = Grants::of(p);
        if let Some(id) = self.grant_ids.get(&g) {
            return Some(*id);
        }
        let id = u16::try_from(self.grants.len()).ok()?;
        let g = Arc::new(g);
        self.grant_ids.insert(Arc::clone(&g), id);
        self.grants.push((g, IdentityHeaders::render(p)));
        Some(id)
    }

    fn insert(&mut self, key: Key, p: &Principal, until: i64, now: i64, cap: usize) {
        if p.account != AccountState::Active {
            self.remove(key);
            return;
        }
        if self.map.len() >= cap && !self.map.contains_key(&key) {
            self.compact(now);
            if self.map.len() >= cap {
                // Still full of live entries: start this shard over rather than grow.
                self.clear();
            }
        }
        let grants = match self.intern(p) {
            Some(id) => id,
            None => {
                self.clear();
                match self.intern(p) {
                    Some(id) => id,
                    None => return,
                }
            }
        };
        let mut record = std::mem::take(&mut self.scratch);
        record.clear();
        let offset = encode(p, until, grants, &mut record).and_then(|()| {
            self.arena.push(&record).or_else(|| {
                // 4 GiB of records in one shard: start it over.
                self.clear();
                self.arena.push(&record)
            })
        });
        self.scratch = record;
        let Some(offset) = offset else {
            self.remove(key);
            return;
        };
        if let Some(old) = self.map.insert(key, offset) {
            self.garbage += Record::at(&self.arena, old).map_or(0, |r| r.bytes.len());
        }
        if self.garbage >= 1 << 16 && self.garbage > self.arena.len / 2 {
            self.compact(now);
        }
    }

    fn remove(&mut self, key: Key) {
        if let Some(old) = self.map.remove(&key) {
            self.garbage += Record::at(&self.arena, old).map_or(0, |r| r.bytes.len());
        }
    }

    /// Drops expired records and copies the live ones into a new arena.
    fn compact(&mut self, now: i64) {
        let old = std::mem::take(&mut self.arena);
        let mut arena = Arena::default();
        self.map.retain(|_, offset| {
            let Some(rec) = Record::at(&old, *offset).filter(|r| r.deadline() > now) else {
                return false;
            };
            let Some(at) = arena.push(rec.bytes) else {
                return false;
            };
            *offset = at;
            true
        });
        self.arena = arena;
        self.garbage = 0;
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

/// One slot of the hot tier.
type HotSlot = Mutex<Option<(Key, i64, Identity)>>;

/// Verified bearer tokens: SHA-256 of the token → what its verification proved, until a
/// deadline (unix seconds).
pub struct BearerCache {
    hot: Box<[HotSlot]>,
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
}

impl BearerCache {
    /// A cache for at least `capacity` tokens (rounded up to whole shards).
    pub fn new(capacity: usize) -> Self {
        // Shards of 7/8 × 2^k entries, the largest k up to 16 that still gives 16 shards.
        let mut buckets = SHARD_BUCKETS;
        while buckets > 16 && capacity.div_ceil(buckets / 8 * 7) < 16 {
            buckets /= 2;
        }
        let per_shard = buckets / 8 * 7;
        let shards = capacity.div_ceil(per_shard).max(1);
        Self {
            hot: (0..HOT_SLOTS).map(|_| Mutex::new(None)).collect(),
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard,
        }
    }

    /// Tokens the compact tier can hold.
    pub fn capacity(&self) -> usize {
        self.shards.len() * self.per_shard
    }

    fn hot(&self, key: Key) -> &HotSlot {
        let i = usize::try_from(key.spread() >> 32).unwrap_or(0) % HOT_SLOTS;
        &self.hot[i]
    }

    fn shard(&self, key: Key) -> &Mutex<Shard> {
        let i = usize::try_from(key.spread() % self.shards.len() as u64).unwrap_or(0);
        &self.shards[i]
    }

    pub fn get(&self, digest: &[u8; 32], now: i64) -> Option<Identity> {
        let key = Key::of(digest);
        {
            let slot = lock(self.hot(key));
            if let Some((k, until, v)) = slot.as_ref()
                && *k == key
                && *until > now
            {
                return Some(Arc::clone(v));
            }
        }
        let (v, until) = lock(self.shard(key)).get(key, now)?;
        *lock(self.hot(key)) = Some((key, until, Arc::clone(&v)));
        Some(v)
    }

    /// Remembers `v` until `until`: in the hot tier, and as a record unless it does not fit
    /// one.
    pub fn insert(&self, digest: &[u8; 32], v: &Identity, until: i64, now: i64) {
        if until <= now {
            return;
        }
        let key = Key::of(digest);
        *lock(self.hot(key)) = Some((key, until, Arc::clone(v)));
        lock(self.shard(key)).insert(key, v.principal(), until, now, self.per_shard);
    }

    /// Forgets every token.
    pub fn clear(&self) {
        for s in &self.hot {
            *lock(s) = None;
        }
        for s in &self.shards {
            lock(s).clear();
        }
    }

    /// Tokens in the compact tier.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).map.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A record's principal, bypassing the hot tier (tests).
    #[cfg(test)]
    fn compact_get(&self, digest: &[u8; 32], now: i64) -> Option<Identity> {
        let key = Key::of(digest);
        lock(self.shard(key)).get(key, now).map(|(v, _)| v)
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;

    fn digest(i: u32) -> [u8; 32] {
        use sha2::Digest as _;
        sha2::Sha256::digest(i.to_le_bytes()).into()
    }

    fn principal(i: u32) -> Principal {
        let mut p = Principal::new(format!("user-{i}"), Scheme::Bearer);
        p.roles = vec!["admin".into(), "ops".into()];
        p.scopes = vec!["a:read".into(), "b:write".into()];
        p.tenant = Some("acme".into());
        p.acr = Some("mfa".into());
        p.auth_time = Some(1_700_000_000);
        p.issuer = Some("gatehouse".into());
        p.token_id = Some(format!("jti-{i}"));
        p.session_id = Some(format!("sid-{i}"));
        p.expires_at = Some(1_700_003_600);
        p
    }

    fn headers(v: &Verified) -> HeaderMap {
        let mut h = HeaderMap::new();
        crate::verified::identity_headers(&mut h, v);
        h
    }

    #[test]
    fn a_record_gives_back_the_whole_principal_and_its_headers() {
        let c = BearerCache::new(1000);
        let mut variants = vec![principal(1), principal(2)];
        let mut bare = Principal::new("éva", Scheme::Bearer);
        bare.read_only = true;
        variants.push(bare);
        for (i, p) in (0u32..).zip(variants) {
            let v = Verified::shared(p.clone());
            c.insert(&digest(i), &v, 2_000, 1_000);
            let back = c.compact_get(&digest(i), 1_000).expect("cached");
            assert_eq!(*back.principal(), p);
            assert_eq!(headers(&back), headers(&v));
            let hot = c.get(&digest(i), 1_000).expect("cached");
            assert!(Arc::ptr_eq(&hot, &v), "a hot hit is the same identity");
        }
    }

    #[test]
    fn deadlines_bounds_and_compaction() {
        let c = BearerCache::new(300);
        let v = Verified::shared(principal(1));
        c.insert(&digest(1), &v, 100, 0);
        assert!(c.get(&digest(1), 99).is_some());
        assert!(c.get(&digest(1), 100).is_none());
        assert!(c.compact_get(&digest(1), 100).is_none());
        c.insert(&digest(2), &v, 5, 10);
        assert!(
            c.get(&digest(2), 10).is_none(),
            "expired ones are not stored"
        );
        for i in 0..20_000 {
            let v = Verified::shared(principal(i));
            c.insert(&digest(i), &v, 1_000 + i64::from(i % 7), 1);
        }
        assert!(c.len() <= c.capacity());
        assert!(c.capacity() >= 300);
        // Replacing one token's record many times leaves no unbounded garbage.
        for _ in 0..5_000 {
            c.insert(&digest(7), &Verified::shared(principal(7)), 3_000, 2);
        }
        let arena: usize = c.shards.iter().map(|s| lock(s).arena.len).sum();
        assert!(arena < 300 * 200 + (1 << 17), "{arena}");
        // Whatever is still there reads back intact.
        for i in 0..20_000 {
            if let Some(v) = c.compact_get(&digest(i), 3) {
                assert_eq!(*v.principal(), principal(i));
            }
        }
        assert_eq!(
            *c.compact_get(&digest(7), 3).unwrap().principal(),
            principal(7)
        );
        c.clear();
        assert!(c.is_empty());
        assert!(c.get(&digest(7), 3).is_none());
    }

    #[test]
    fn principals_without_a_record_stay_in_the_hot_tier() {
        let c = BearerCache::new(1000);
        let mut long = principal(1);
        long.subject = "x".repeat(300);
        let mut suspended = principal(2);
        suspended.account = AccountState::Suspended {
            at: 1,
            reason: "audit".into(),
        };
        let mut future = principal(3);
        future.expires_at = Some(i64::from(u32::MAX) + 1);
        for (i, p) in [(1, long), (2, suspended), (3, future)] {
            let v = Verified::shared(p);
            c.insert(&digest(i), &v, 2_000, 1_000);
            assert!(c.compact_get(&digest(i), 1_000).is_none());
            assert!(Arc::ptr_eq(&c.get(&digest(i), 1_000).unwrap(), &v));
        }
        assert!(c.is_empty());
    }
}
