//! Who the client is: the peer address, or — only when the peer is a trusted proxy — the
//! rightmost address in `X-Forwarded-For` that is not itself a trusted proxy.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use http::header::HeaderName;
use ipnet::IpNet;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

pub fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = ip.to_canonical();
    trusted.iter().any(|n| n.contains(&ip))
}

/// The client IP under the rightmost-untrusted rule. Malformed entries stop the walk: the
/// last address we could trust to have been written by a trusted hop is used.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer_ip = peer.ip().to_canonical();
    if !is_trusted(peer_ip, trusted) {
        return peer_ip;
    }
    let mut current = peer_ip;
    // Right to left over the values, and over the entries within each value.
    for value in headers.get_all(&X_FORWARDED_FOR).iter().rev() {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for entry in value.rsplit(',') {
            let Ok(ip) = entry.trim().parse::<IpAddr>() else {
                return current;
            };
            let ip = ip.to_canonical();
            current = ip;
            if !is_trusted(ip, trusted) {
                return ip;
            }
        }
    }
    current
}

/// Appends an IP address as text; IPv4, the common case, without the formatting machinery.
pub fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        IpAddr::V6(v6) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{v6}");
        }
    }
}

/// An IP address as text (as `to_string`, without the formatting machinery for IPv4).
pub fn ip_text(ip: IpAddr) -> String {
    let mut s = String::with_capacity(15);
    push_ip(&mut s, ip);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_text_matches_display() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "203.0.113.7",
            "10.99.100.255",
            "255.255.255.255",
            "::1",
            "2001:db8::7",
            "::ffff:192.0.2.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }

    fn h(xff: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert("x-forwarded-for", xff.parse().unwrap());
        m
    }

    #[test]
    fn untrusted_peer_is_the_client() {
        let trusted = ["127.0.0.1/32".parse().unwrap()];
        let peer: SocketAddr = "10.1.1.1:5000".parse().unwrap();
        assert_eq!(client_ip(peer, &h("1.2.3.4"), &trusted), peer.ip());
    }

    #[test]
    fn rightmost_untrusted_from_trusted_peer() {
        let trusted = [
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        // A client forging "6.6.6.6" in front cannot choose its address.
        let ip = client_ip(peer, &h("6.6.6.6, 203.0.113.7, 10.0.0.2"), &trusted);
        assert_eq!(ip, "203.0.113.7".parse::<IpAddr>().unwrap());
        assert_eq!(
            client_ip(peer, &HeaderMap::new(), &trusted),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(peer, &h("garbage"), &trusted),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
        // Several header lines read as one list, in order.
        let mut m = HeaderMap::new();
        m.append(
            "x-forwarded-for",
            "198.51.100.1, 203.0.113.7".parse().unwrap(),
        );
        m.append("x-forwarded-for", "10.0.0.3".parse().unwrap());
        assert_eq!(
            client_ip(peer, &m, &trusted),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
    }
}
