//! Who the client is: the peer address, or — only when the peer is a trusted proxy — the
//! rightmost address in `X-Forwarded-For` that is not itself a trusted proxy.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

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
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for entry in entries.iter().rev() {
        let Ok(ip) = entry.trim().parse::<IpAddr>() else {
            return current;
        };
        let ip = ip.to_canonical();
        current = ip;
        if !is_trusted(ip, trusted) {
            return ip;
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
