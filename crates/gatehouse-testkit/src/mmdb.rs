//! A minimal MaxMind DB writer (format 2.0, <https://maxmind.github.io/MaxMind-DB/>), so the
//! country tests (row 26) run on a database generated in the test instead of a download.
//!
//! It writes what a GeoLite2/GeoIP2 Country database holds for a lookup by country code: an
//! IPv6 search tree (IPv4 networks live under `::/96`, as in MaxMind's own files), 24-bit
//! records, one `{"country": {"iso_code": …}}` map per network, and the metadata.
//!
//! ```
//! let db = gatehouse_testkit::mmdb::country_db(&[("192.0.2.0/24", "DE"), ("2001:db8::/32", "FR")]);
//! assert!(db.windows(14).any(|w| w == b"\xab\xcd\xefMaxMind.com"));
//! ```

use std::net::IpAddr;

/// A database mapping each network (`"192.0.2.0/24"`, `"2001:db8::/32"`) to a country code.
/// Later entries may refine earlier ones (a longer prefix inside a shorter one). Panics on a
/// malformed network: it is test data.
pub fn country_db(networks: &[(&str, &str)]) -> Vec<u8> {
    let mut tree = Tree::default();
    let mut data = Vec::new();
    for (net, iso) in networks {
        let (bits, len) = network_bits(net);
        let offset = u32::try_from(data.len()).unwrap_or_else(|_| panic!("data too large"));
        encode_map(
            &mut data,
            &[("country", Value::Map(vec![("iso_code", Value::Str(iso))]))],
        );
        tree.insert(bits, len, offset);
    }
    let node_count = u32::try_from(tree.nodes.len()).unwrap_or_else(|_| panic!("tree too large"));
    let mut out = Vec::new();
    for node in &tree.nodes {
        for rec in node {
            let v = match *rec {
                Record::Node(i) => i,
                Record::Empty => node_count,
                // Data records point past the 16-byte separator (spec: "Pointer values").
                Record::Data(off) => node_count + 16 + off,
            };
            out.extend_from_slice(&v.to_be_bytes()[1..]);
        }
    }
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xab\xcd\xefMaxMind.com");
    let description = Value::Map(vec![("en", Value::Str("Gatehouse test countries"))]);
    encode_map(
        &mut out,
        &[
            ("binary_format_major_version", Value::U16(2)),
            ("binary_format_minor_version", Value::U16(0)),
            ("build_epoch", Value::U64(1_700_000_000)),
            ("database_type", Value::Str("GeoLite2-Country")),
            ("description", description),
            ("ip_version", Value::U16(6)),
            ("languages", Value::Array(vec![Value::Str("en")])),
            ("node_count", Value::U32(node_count)),
            ("record_size", Value::U16(24)),
        ],
    );
    out
}

#[derive(Clone, Copy)]
enum Record {
    Node(u32),
    Empty,
    Data(u32),
}

#[derive(Default)]
struct Tree {
    nodes: Vec<[Record; 2]>,
}

impl Tree {
    /// Sets the `len` leading bits of `bits` (128-bit, IPv6 order) to point at `data`.
    fn insert(&mut self, bits: u128, len: u32, data: u32) {
        if self.nodes.is_empty() {
            self.nodes.push([Record::Empty; 2]);
        }
        let mut node = 0usize;
        for depth in 0..len {
            let bit = usize::from((bits >> (127 - depth)) & 1 == 1);
            if depth + 1 == len {
                self.nodes[node][bit] = Record::Data(data);
                return;
            }
            node = match self.nodes[node][bit] {
                Record::Node(i) => i as usize,
                // Refining a network: both halves start as the broader network's data.
                inherited => {
                    let i = self.nodes.len();
                    self.nodes.push([inherited; 2]);
                    self.nodes[node][bit] = Record::Node(u32::try_from(i).unwrap_or(0));
                    i
                }
            };
        }
    }
}

/// `a.b.c.d/n` → the IPv6 bits `::a.b.c.d` and `96 + n`; IPv6 networks as they are.
fn network_bits(net: &str) -> (u128, u32) {
    let (addr, len) = net
        .split_once('/')
        .unwrap_or_else(|| panic!("`{net}` is not addr/len"));
    let len: u32 = len
        .parse()
        .unwrap_or_else(|_| panic!("`{net}`: bad prefix length"));
    match addr
        .parse::<IpAddr>()
        .unwrap_or_else(|_| panic!("`{net}`: bad address"))
    {
        IpAddr::V4(v4) => {
            assert!((1..=32).contains(&len), "`{net}`: prefix length");
            (u128::from(u32::from(v4)), 96 + len)
        }
        IpAddr::V6(v6) => {
            assert!((1..=128).contains(&len), "`{net}`: prefix length");
            (u128::from(v6), len)
        }
    }
}

enum Value<'a> {
    Str(&'a str),
    U16(u16),
    U32(u32),
    U64(u64),
    Map(Vec<(&'a str, Value<'a>)>),
    Array(Vec<Value<'a>>),
}

/// A control byte (spec: "Data Field Format"): type in the top three bits (extended types
/// as 0 plus a following byte of `type - 7`), then the size, extended past 28.
fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
    let (low, extra): (u8, Vec<u8>) = if size < 29 {
        (size as u8, Vec::new())
    } else if size < 285 {
        (29, vec![(size - 29) as u8])
    } else if size < 65_821 {
        (30, ((size - 285) as u16).to_be_bytes().to_vec())
    } else {
        (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec())
    };
    if kind <= 7 {
        out.push((kind << 5) | low);
    } else {
        out.push(low);
        out.push(kind - 7);
    }
    out.extend_from_slice(&extra);
}

fn encode(out: &mut Vec<u8>, v: &Value<'_>) {
    match v {
        Value::Str(s) => {
            control(out, 2, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        Value::U16(n) => uint(out, 5, u64::from(*n)),
        Value::U32(n) => uint(out, 6, u64::from(*n)),
        Value::U64(n) => uint(out, 9, *n),
        Value::Map(pairs) => encode_map(out, pairs),
        Value::Array(items) => {
            control(out, 11, items.len());
            for i in items {
                encode(out, i);
            }
        }
    }
}

/// Unsigned integers are big-endian without leading zero bytes.
fn uint(out: &mut Vec<u8>, kind: u8, n: u64) {
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    control(out, kind, bytes.len() - skip);
    out.extend_from_slice(&bytes[skip..]);
}

fn encode_map(out: &mut Vec<u8>, pairs: &[(&str, Value<'_>)]) {
    control(out, 7, pairs.len());
    for (k, v) in pairs {
        encode(out, &Value::Str(k));
        encode(out, v);
    }
}
