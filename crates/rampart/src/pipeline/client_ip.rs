//! Who the client is: the TCP peer, unless the peer is a trusted proxy.
//!
//! When the peer is in `server.trusted_proxies`, the client IP comes from the configured
//! header (`server.client_ip_header`, e.g. `CF-Connecting-IP`) if one is set, else from
//! X-Forwarded-For: the rightmost address that is not itself a trusted proxy (each proxy
//! appends the address it received the request from, so everything left of the first untrusted
//! hop could have been written by the client). A peer that is not trusted cannot change its
//! IP by sending these fields.

use std::net::IpAddr;

use rampart_http::RequestHead;

use crate::config::TrustedProxies;

/// Whether `ip` is a trusted proxy.
pub fn trusts(proxies: &TrustedProxies, ip: IpAddr) -> bool {
    let ip = canonical(ip);
    proxies.networks.iter().any(|n| n.contains(&ip))
}

/// The client IP of a request that arrived from `peer`.
pub fn client_ip(proxies: &TrustedProxies, peer: IpAddr, head: &RequestHead) -> IpAddr {
    let peer = canonical(peer);
    if proxies.networks.is_empty() || !trusts(proxies, peer) {
        return peer;
    }
    if let Some(name) = &proxies.header {
        return head
            .header(name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
            .map_or(peer, canonical);
    }
    // All X-Forwarded-For fields form one list (RFC 9110 §5.3), oldest hop first.
    let mut hops: Vec<&[u8]> = Vec::new();
    for (name, value) in head.headers() {
        if name.eq_ignore_ascii_case("x-forwarded-for") {
            hops.extend(value.split(|&b| b == b','));
        }
    }
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = std::str::from_utf8(hop)
            .ok()
            .and_then(|s| parse_hop(s.trim()))
        else {
            // Garbage in the chain: trust nothing further left of it.
            break;
        };
        client = ip;
        if !trusts(proxies, ip) {
            break;
        }
    }
    client
}

/// Parses an X-Forwarded-For element: an IP, possibly bracketed or with a port.
fn parse_hop(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    s.strip_prefix('[')?
        .strip_suffix(']')?
        .parse::<IpAddr>()
        .ok()
        .map(canonical)
}

/// IPv4-mapped IPv6 addresses (from dual-stack sockets) are treated as the IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_http::{Limits, Parse};

    fn head(fields: &str) -> RequestHead {
        let raw = format!("GET / HTTP/1.1\r\nHost: a.test\r\n{fields}\r\n");
        match rampart_http::parse_request_head(raw.as_bytes(), &Limits::default()) {
            Ok(Parse::Complete((h, _))) => h,
            _ => panic!("test request did not parse"),
        }
    }

    fn proxies(nets: &[&str]) -> TrustedProxies {
        TrustedProxies {
            networks: nets.iter().map(|n| n.parse().unwrap()).collect(),
            header: None,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_sends() {
        let t = proxies(&["10.0.0.0/8"]);
        let h = head("X-Forwarded-For: 203.0.113.9\r\n");
        assert_eq!(client_ip(&t, ip("192.0.2.1"), &h), ip("192.0.2.1"));
    }

    #[test]
    fn trusted_peer_gives_the_rightmost_untrusted_hop() {
        let t = proxies(&["10.0.0.0/8"]);
        let h = head("X-Forwarded-For: 1.1.1.1, 203.0.113.9\r\nX-Forwarded-For: 10.0.0.7\r\n");
        assert_eq!(client_ip(&t, ip("10.0.0.1"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn all_trusted_hops_give_the_leftmost() {
        let t = proxies(&["10.0.0.0/8"]);
        let h = head("X-Forwarded-For: 10.1.1.1, 10.2.2.2\r\n");
        assert_eq!(client_ip(&t, ip("10.0.0.1"), &h), ip("10.1.1.1"));
    }

    #[test]
    fn garbage_stops_the_walk() {
        let t = proxies(&["10.0.0.0/8"]);
        let h = head("X-Forwarded-For: 203.0.113.9, nonsense, 10.0.0.5\r\n");
        assert_eq!(client_ip(&t, ip("10.0.0.1"), &h), ip("10.0.0.5"));
    }

    #[test]
    fn configured_header_wins_for_trusted_peers() {
        let mut t = proxies(&["10.0.0.0/8"]);
        t.header = Some("cf-connecting-ip".into());
        let h = head("CF-Connecting-IP: 2001:db8::1\r\nX-Forwarded-For: 1.1.1.1\r\n");
        assert_eq!(client_ip(&t, ip("10.0.0.1"), &h), ip("2001:db8::1"));
        assert_eq!(client_ip(&t, ip("192.0.2.1"), &h), ip("192.0.2.1"));
    }

    #[test]
    fn hops_with_ports_and_mapped_addresses_parse() {
        let t = proxies(&["10.0.0.0/8"]);
        let h = head("X-Forwarded-For: 203.0.113.9:5555\r\n");
        assert_eq!(client_ip(&t, ip("::ffff:10.0.0.1"), &h), ip("203.0.113.9"));
    }
}
