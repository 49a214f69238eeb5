//! The request journal: what clients sent, newest last, bounded, in memory only.

use std::collections::VecDeque;
use std::sync::Mutex;

use http::HeaderMap;
use serde::Serialize;
use serde_json::{Map, Value};

/// Entries kept by default; older ones are dropped first.
pub const DEFAULT_LIMIT: usize = 1000;

/// What answered a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum AnsweredBy {
    Stub {
        name: String,
        line: usize,
    },
    Preset {
        name: String,
    },
    /// Nothing matched: the mock's own 404.
    None,
}

/// One request as received.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// 1-based sequence number since start (not reset by clearing).
    pub seq: u64,
    /// RFC 3339.
    pub time: String,
    pub method: String,
    /// Path and query as sent.
    pub url: String,
    /// Lower-case names; a repeated header is one value joined by `", "` (RFC 9110 §5.3).
    pub headers: Map<String, Value>,
    /// The body as UTF-8 text (invalid sequences replaced).
    pub body: String,
    pub answered_by: AnsweredBy,
    pub status: u16,
}

/// Flattens headers for an [`Entry`].
pub fn header_map(h: &HeaderMap) -> Map<String, Value> {
    let mut out = Map::new();
    for name in h.keys() {
        let joined = h
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        out.insert(name.as_str().to_owned(), Value::String(joined));
    }
    out
}

/// A bounded, shared journal.
#[derive(Debug)]
pub struct Journal {
    limit: usize,
    inner: Mutex<(u64, VecDeque<Entry>)>,
}

impl Journal {
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            inner: Mutex::new((0, VecDeque::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, VecDeque<Entry>)> {
        // A panic while holding the lock leaves a consistent deque: keep serving.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records `entry`, numbering it; drops the oldest beyond the limit.
    pub fn push(&self, mut entry: Entry) {
        let mut g = self.lock();
        g.0 += 1;
        entry.seq = g.0;
        if g.1.len() == self.limit {
            g.1.pop_front();
        }
        g.1.push_back(entry);
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> Vec<Entry> {
        self.lock().1.iter().cloned().collect()
    }

    pub fn clear(&self) {
        self.lock().1.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(url: &str) -> Entry {
        Entry {
            seq: 0,
            time: String::new(),
            method: "GET".into(),
            url: url.into(),
            headers: Map::new(),
            body: String::new(),
            answered_by: AnsweredBy::None,
            status: 404,
        }
    }

    #[test]
    fn keeps_the_newest_up_to_the_limit_and_numbers_them() {
        let j = Journal::new(2);
        for u in ["/a", "/b", "/c"] {
            j.push(entry(u));
        }
        let e = j.entries();
        assert_eq!(
            e.iter()
                .map(|e| (e.seq, e.url.as_str()))
                .collect::<Vec<_>>(),
            [(2, "/b"), (3, "/c")]
        );
        j.clear();
        assert!(j.entries().is_empty());
        j.push(entry("/d"));
        assert_eq!(j.entries()[0].seq, 4);
    }

    #[test]
    fn repeated_headers_are_joined() {
        let mut h = HeaderMap::new();
        h.append("x-a", "1".parse().unwrap());
        h.append("x-a", "2".parse().unwrap());
        assert_eq!(header_map(&h)["x-a"], "1, 2");
    }
}
