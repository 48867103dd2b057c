//! Observing requests: the access log and the metrics.

pub mod log;
pub mod metrics;

pub use log::{AccessLog, LogRecord, RequestInfo};
pub use metrics::Metrics;

/// Formats a wall-clock time as RFC 3339 with milliseconds (UTC).
pub fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// A number in decimal, without the formatting machinery (a dozen go into every log line).
pub(crate) fn write_decimal(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// An IP address as text. IPv4 is written directly: forwarded heads and log lines carry
/// addresses, and the formatting machinery was a few per cent of the proxy's user time.
pub(crate) fn write_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                write_decimal(out, u64::from(octet));
            }
        }
        std::net::IpAddr::V6(v6) => {
            use std::io::Write as _;
            let _ = write!(out, "{v6}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{write_decimal, write_ip};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    /// Every octet value in every position, and IPv6, as `Display` writes them.
    #[test]
    fn ip_addresses_are_written_as_display_writes_them() {
        let mut ips: Vec<IpAddr> = Vec::new();
        for o in 0..=255u8 {
            ips.push(Ipv4Addr::new(o, 0, 0, 0).into());
            ips.push(Ipv4Addr::new(1, o, 10, 100).into());
            ips.push(Ipv4Addr::new(255, 99, o, 9).into());
            ips.push(Ipv4Addr::new(127, 0, 0, o).into());
        }
        ips.push(Ipv6Addr::LOCALHOST.into());
        ips.push(
            "2001:db8::8a2e:370:7334"
                .parse::<Ipv6Addr>()
                .unwrap()
                .into(),
        );
        for ip in ips {
            let mut out = b"x".to_vec();
            write_ip(&mut out, ip);
            assert_eq!(out, format!("x{ip}").into_bytes());
        }
    }

    #[test]
    fn numbers_are_written_as_display_writes_them() {
        let mut values = vec![0, 1, 9, 10, 99, 100, u64::MAX, u64::MAX - 1];
        values.extend((0..64).map(|s| 1u64 << s));
        values.extend((1..20).map(|e| 10u64.pow(e) - 1));
        values.extend((1..20).map(|e| 10u64.pow(e)));
        for v in values {
            let mut out = b"x".to_vec();
            write_decimal(&mut out, v);
            assert_eq!(out, format!("x{v}").into_bytes());
        }
    }
}
