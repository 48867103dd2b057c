//! Numbers, addresses and times written as text without the formatting machinery: a dozen go
//! into every log line and forwarded head.

use std::time::{SystemTime, UNIX_EPOCH};

/// Formats a wall-clock time as RFC 3339 with milliseconds (UTC).
pub fn rfc3339(t: SystemTime) -> String {
    let mut out = Vec::with_capacity(24);
    write_rfc3339_millis(&mut out, t);
    String::from_utf8(out).expect("digits and punctuation are ASCII")
}

/// A wall-clock time as RFC 3339 in UTC with milliseconds, `2026-11-30T07:10:05.123Z` (times
/// before 1970 are written as 1970). Every log line carries two; the date and time of day
/// are worked out once a second per thread, and only the milliseconds change in between.
pub fn write_rfc3339_millis(out: &mut Vec<u8>, t: SystemTime) {
    thread_local! {
        /// The last second written on this thread, and its `YYYY-MM-DDTHH:MM:SS`.
        static SECOND: std::cell::Cell<(u64, [u8; 19])> =
            const { std::cell::Cell::new((u64::MAX, [0; 19])) };
    }
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let text = SECOND.with(|cached| {
        let (at, text) = cached.get();
        if at == secs {
            return text;
        }
        let text = date_and_time(secs);
        cached.set((secs, text));
        text
    });
    out.extend_from_slice(&text);
    let ms = since.subsec_millis();
    out.extend_from_slice(&[
        b'.',
        b'0' + (ms / 100) as u8,
        b'0' + (ms / 10 % 10) as u8,
        b'0' + (ms % 10) as u8,
        b'Z',
    ]);
}

/// `YYYY-MM-DDTHH:MM:SS` for seconds since 1970 (proleptic Gregorian calendar, years up to
/// 9999; later ones are not written correctly, and no clock reads them).
fn date_and_time(secs: u64) -> [u8; 19] {
    let (days, in_day) = (secs / 86_400, secs % 86_400);
    // Days to a civil date, counting from 0000-03-01 so that the leap day ends each year:
    // 400-year eras of 146,097 days, then years of 365 days plus the leap rules.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    let mut text = *b"0000-00-00T00:00:00";
    let mut put = |at: usize, v: u64, width: usize| {
        let mut v = v;
        for i in (at..at + width).rev() {
            text[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, in_day / 3_600, 2);
    put(14, in_day / 60 % 60, 2);
    put(17, in_day % 60, 2);
    text
}

/// A number in decimal, without the formatting machinery (a dozen go into every log line).
pub fn write_decimal(out: &mut Vec<u8>, mut v: u64) {
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
pub fn write_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            // Built on the stack and appended once: one capacity check, not seven.
            let mut text = [0u8; 15];
            let mut n = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text[n] = b'.';
                    n += 1;
                }
                if octet >= 100 {
                    text[n] = b'0' + octet / 100;
                    n += 1;
                }
                if octet >= 10 {
                    text[n] = b'0' + octet / 10 % 10;
                    n += 1;
                }
                text[n] = b'0' + octet % 10;
                n += 1;
            }
            out.extend_from_slice(&text[..n]);
        }
        std::net::IpAddr::V6(v6) => {
            use std::io::Write as _;
            let _ = write!(out, "{v6}");
        }
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes written as hex digits (any case, an even number of them).
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16);
    s.chunks_exact(2)
        .map(|pair| Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8))
        .collect()
}

/// A query-string value with its `%XX` escapes and `+` (a space) decoded; `None` for a bad
/// escape or a result that is not UTF-8.
pub fn query_value(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let pair = [bytes.next()?, bytes.next()?];
                out.push(unhex(std::str::from_utf8(&pair).ok()?)?[0]);
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::{query_value, rfc3339, write_decimal, write_ip};

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(
            query_value("2026-12-03T12%3A00%3a00Z").as_deref(),
            Some("2026-12-03T12:00:00Z")
        );
        assert_eq!(query_value("a+b%20c").as_deref(), Some("a b c"));
        assert_eq!(query_value("%4"), None);
        assert_eq!(query_value("%zz"), None);
        assert_eq!(query_value("%ff"), None);
    }
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::time::{Duration, UNIX_EPOCH};

    /// Against humantime's formatter: the calendar's edges (leap days, century years, the
    /// ends of months and years) and times spread over 1970–9999, each at several
    /// milliseconds, also one after the other in the same second (the cached date).
    #[test]
    fn timestamps_are_written_as_humantime_writes_them() {
        let mut secs: Vec<u64> = vec![0, 59, 60, 3_599, 3_600, 86_399, 86_400, 253_402_300_799];
        for (y, m, d) in [
            (1972, 2, 29),
            (1999, 12, 31),
            (2000, 2, 29),
            (2000, 3, 1),
            (2024, 2, 29),
            (2026, 11, 30),
            (2100, 2, 28),
            (2100, 3, 1),
            (2400, 2, 29),
            (9999, 12, 31),
        ] {
            let date = format!("{y:04}-{m:02}-{d:02}T23:59:59Z");
            let t = humantime::parse_rfc3339(&date).unwrap();
            let s = t.duration_since(UNIX_EPOCH).unwrap().as_secs();
            secs.extend([s - 86_399, s, s + 1]);
        }
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            secs.push(rng % 253_402_300_800);
        }
        // humantime writes years up to 9999 only.
        for s in secs.into_iter().filter(|&s| s < 253_402_300_800) {
            for ms in [0, 7, 999, 120] {
                let t = UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms);
                assert_eq!(
                    rfc3339(t),
                    humantime::format_rfc3339_millis(t).to_string(),
                    "{s} s {ms} ms"
                );
            }
        }
        let before = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(rfc3339(before), "1970-01-01T00:00:00.000Z");
    }

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
