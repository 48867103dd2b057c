//! The request-target (RFC 9112 §3.2) and authorities (RFC 3986 §3.2).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::chars::{is_reg_name_byte, is_target_byte};
use crate::error::{AuthorityError, RequestErrorKind};

/// The form of a request-target (RFC 9112 §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`.
    Origin,
    /// `http://authority/path?query`.
    Absolute,
    /// `host:port`, for CONNECT.
    Authority,
    /// `*`, for OPTIONS.
    Asterisk,
}

/// A host and optional port, as in a Host field or an absolute-form target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authority {
    host: HostName,
    port: Option<u16>,
    ip: bool,
}

/// Host names up to this long are stored inline.
const HOST_INLINE: usize = 46;

/// A lowercase host name, stored inline when short (nearly all are), so parsing a Host does
/// not allocate.
#[derive(Clone, Debug, PartialEq, Eq)]
enum HostName {
    Inline { len: u8, bytes: [u8; HOST_INLINE] },
    Heap(Box<str>),
}

impl HostName {
    fn from_ascii_lowercased(src: &[u8]) -> HostName {
        let mut bytes = [0u8; HOST_INLINE];
        if src.len() <= bytes.len() {
            for (d, s) in bytes.iter_mut().zip(src) {
                *d = s.to_ascii_lowercase();
            }
            HostName::Inline {
                len: src.len() as u8,
                bytes,
            }
        } else {
            HostName::Heap(
                src.iter()
                    .map(|b| b.to_ascii_lowercase() as char)
                    .collect::<String>()
                    .into_boxed_str(),
            )
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Only ASCII is ever stored.
            HostName::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..*len as usize]).unwrap_or("")
            }
            HostName::Heap(s) => s,
        }
    }
}

impl Authority {
    /// The host: lowercase, without a trailing dot, IPv6 without brackets.
    pub fn host(&self) -> &str {
        self.host.as_str()
    }

    /// The port, when one was given.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether the host is an IPv4 or IPv6 literal.
    pub fn is_ip_literal(&self) -> bool {
        self.ip
    }

    /// Parses `host[:port]` (RFC 3986 §3.2.2): a reg-name, an IPv4 address or a bracketed
    /// IPv6 address; no userinfo; a port of at most 65535.
    pub fn parse(s: &[u8]) -> Result<Authority, AuthorityError> {
        match Authority::parse_common(s) {
            Some(a) => Ok(a),
            None => Authority::parse_any(s),
        }
    }

    /// The common case in one pass: a short reg-name without percent-encoding, and an
    /// optional port. `None` for anything else (and for every error), which
    /// [`Authority::parse_any`] then handles; the two agree on every input this accepts.
    fn parse_common(s: &[u8]) -> Option<Authority> {
        let mut i = 0;
        while i < s.len() && s[i] != b':' {
            if i == HOST_INLINE || !is_reg_name_byte(s[i]) {
                return None;
            }
            i += 1;
        }
        if i == 0 {
            return None;
        }
        // Copied whole and lowercased over the fixed-size array (vectorised), rather than
        // byte by byte: single-byte stores followed by the wide loads that move the array
        // stall store forwarding.
        let mut bytes = [0u8; HOST_INLINE];
        bytes[..i].copy_from_slice(&s[..i]);
        for b in &mut bytes {
            *b |= u8::from(b.is_ascii_uppercase()) << 5;
        }
        let port = match s.get(i + 1..) {
            None | Some([]) => None,
            Some(p) if p.len() <= 5 => {
                let mut n: u32 = 0;
                for &d in p {
                    if !d.is_ascii_digit() {
                        return None;
                    }
                    n = n * 10 + u32::from(d - b'0');
                }
                Some(u16::try_from(n).ok()?)
            }
            Some(_) => return None,
        };
        let mut len = i;
        if len > 1 && bytes[len - 1] == b'.' {
            len -= 1;
            bytes[len] = 0;
        }
        let host = HostName::Inline {
            len: len as u8,
            bytes,
        };
        let ip = bytes[0].is_ascii_digit() && host.as_str().parse::<Ipv4Addr>().is_ok();
        Some(Authority { host, port, ip })
    }

    /// Every form, with an exact error.
    fn parse_any(s: &[u8]) -> Result<Authority, AuthorityError> {
        if s.is_empty() {
            return Err(AuthorityError("empty host"));
        }
        if s.contains(&b'@') {
            return Err(AuthorityError("userinfo is not allowed in a host"));
        }
        let (host_part, port_part) = if s[0] == b'[' {
            let close = s
                .iter()
                .position(|&b| b == b']')
                .ok_or(AuthorityError("unterminated IPv6 literal"))?;
            let rest = &s[close + 1..];
            let port = match rest {
                [] => None,
                [b':', p @ ..] => Some(p),
                _ => return Err(AuthorityError("unexpected bytes after an IPv6 literal")),
            };
            (&s[..=close], port)
        } else {
            match s.iter().rposition(|&b| b == b':') {
                Some(i) => (&s[..i], Some(&s[i + 1..])),
                None => (s, None),
            }
        };
        let port = match port_part {
            None => None,
            // RFC 3986 allows an empty port ("host:"); it means the default.
            Some([]) => None,
            Some(p) => {
                if p.len() > 5 || !p.iter().all(u8::is_ascii_digit) {
                    return Err(AuthorityError("the port is not a number"));
                }
                let n: u32 = p.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'));
                Some(u16::try_from(n).map_err(|_| AuthorityError("the port is over 65535"))?)
            }
        };
        if host_part.first() == Some(&b'[') {
            let inner = std::str::from_utf8(&host_part[1..host_part.len() - 1])
                .map_err(|_| AuthorityError("invalid IPv6 literal"))?;
            let ip: Ipv6Addr = inner
                .parse()
                .map_err(|_| AuthorityError("invalid IPv6 literal"))?;
            return Ok(Authority {
                host: HostName::from_ascii_lowercased(ip.to_string().as_bytes()),
                port,
                ip: true,
            });
        }
        if host_part.is_empty() {
            return Err(AuthorityError("empty host"));
        }
        // reg-name = *( unreserved / pct-encoded / sub-delims )
        let mut i = 0;
        while i < host_part.len() {
            let b = host_part[i];
            match b {
                b'%' => {
                    if !(host_part.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                        && host_part.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
                    {
                        return Err(AuthorityError("invalid percent-encoding in the host"));
                    }
                    i += 3;
                    continue;
                }
                _ if is_reg_name_byte(b) => {}
                _ => return Err(AuthorityError("invalid character in the host")),
            }
            i += 1;
        }
        // Only ASCII passed the checks above.
        let trimmed = match host_part {
            [rest @ .., b'.'] if !rest.is_empty() => rest,
            all => all,
        };
        let host = HostName::from_ascii_lowercased(trimmed);
        let ip = trimmed.first().is_some_and(u8::is_ascii_digit)
            && host.as_str().parse::<Ipv4Addr>().is_ok();
        Ok(Authority { host, port, ip })
    }
}

/// Where the parts of a validated request-target are, relative to the target's start.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TargetParts {
    pub form: TargetForm,
    /// path (and query) start, for forwarding in origin-form.
    pub path_start: usize,
    /// `?` position, if any.
    pub query: Option<usize>,
    /// authority range for absolute-form and authority-form.
    pub authority: Option<(usize, usize)>,
}

/// Validates a request-target. Errors carry the offset within the target.
pub(crate) fn parse_target(t: &[u8]) -> Result<TargetParts, (RequestErrorKind, usize)> {
    if t == b"*" {
        return Ok(TargetParts {
            form: TargetForm::Asterisk,
            path_start: 0,
            query: None,
            authority: None,
        });
    }
    if t.first() == Some(&b'/') {
        let query = check_chars(t, 0)?;
        return Ok(TargetParts {
            form: TargetForm::Origin,
            path_start: 0,
            query,
            authority: None,
        });
    }
    // absolute-form: scheme "://" authority path-abempty [ "?" query ]
    if let Some(sep) = find(t, b"://") {
        let scheme = &t[..sep];
        if !(scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https")) {
            return Err((RequestErrorKind::InvalidTargetForm, 0));
        }
        let auth_start = sep + 3;
        let auth_end = t[auth_start..]
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .map_or(t.len(), |i| auth_start + i);
        for (i, &b) in t[auth_start..auth_end].iter().enumerate() {
            if !(is_target_byte(b) || b == b'[' || b == b']') {
                return Err((
                    RequestErrorKind::InvalidTargetByte { byte: b },
                    auth_start + i,
                ));
            }
        }
        let query = check_chars(&t[auth_end..], auth_end)?;
        return Ok(TargetParts {
            form: TargetForm::Absolute,
            path_start: auth_end,
            query,
            authority: Some((auth_start, auth_end)),
        });
    }
    // authority-form: host:port (only meaningful for CONNECT).
    if t.contains(&b':') && !t.contains(&b'/') && !t.contains(&b'?') {
        for (i, &b) in t.iter().enumerate() {
            if !(is_target_byte(b) || b == b'[' || b == b']') {
                return Err((RequestErrorKind::InvalidTargetByte { byte: b }, i));
            }
        }
        return Ok(TargetParts {
            form: TargetForm::Authority,
            path_start: t.len(),
            query: None,
            authority: Some((0, t.len())),
        });
    }
    match t.iter().position(|&b| !is_target_byte(b)) {
        Some(i) => Err((RequestErrorKind::InvalidTargetByte { byte: t[i] }, i)),
        None => Err((RequestErrorKind::InvalidTargetForm, 0)),
    }
}

/// Checks the characters and percent-encoding of a path and query; returns where the first
/// `?` is (offset by `base`), if any.
fn check_chars(s: &[u8], base: usize) -> Result<Option<usize>, (RequestErrorKind, usize)> {
    let mut query = None;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if !is_target_byte(b) {
            return Err((RequestErrorKind::InvalidTargetByte { byte: b }, base + i));
        }
        if b == b'?' && query.is_none() {
            query = Some(base + i);
        }
        if b == b'%' {
            let ok = s.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && s.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return Err((RequestErrorKind::InvalidPercentEncoding, base + i));
            }
            i += 3;
            continue;
        }
        i += 1;
    }
    Ok(query)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_parse_and_normalise() {
        let a = Authority::parse(b"Example.TEST.:8080").unwrap();
        assert_eq!(
            (a.host(), a.port(), a.is_ip_literal()),
            ("example.test", Some(8080), false)
        );
        let a = Authority::parse(b"[::1]:80").unwrap();
        assert_eq!(
            (a.host(), a.port(), a.is_ip_literal()),
            ("::1", Some(80), true)
        );
        assert!(Authority::parse(b"10.0.0.1").unwrap().is_ip_literal());
        assert_eq!(Authority::parse(b"a.test:").unwrap().port(), None);
        for bad in [
            &b"user@a.test"[..],
            b"a.test:65536",
            b"a.test:8o",
            b"",
            b"a b",
            b"[::1",
            b"[zz]",
            b"a.test:-1",
            b":80",
        ] {
            assert!(
                Authority::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// The one-pass parser for common hosts agrees with the general one wherever it answers.
    #[test]
    fn the_common_host_path_agrees_with_the_general_one() {
        let alphabet = b"aZ09.-_~!$&'()*+,;=:%@[] \x80";
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut answered = 0;
        for n in 0..200_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let len = (rng % 60) as usize;
            let s: Vec<u8> = (0..len)
                .map(|i| {
                    let r = rng.rotate_left(i as u32 * 5) as usize;
                    // Mostly letters and dots, so that long valid names are common too.
                    if n % 2 == 0 && !r.is_multiple_of(4) {
                        b"abc."[r % 4]
                    } else {
                        alphabet[r % alphabet.len()]
                    }
                })
                .collect();
            if let Some(fast) = Authority::parse_common(&s) {
                answered += 1;
                assert_eq!(
                    Ok(fast),
                    Authority::parse_any(&s),
                    "{:?}",
                    String::from_utf8_lossy(&s)
                );
            }
        }
        assert!(
            answered > 10_000,
            "only {answered} inputs took the common path"
        );
        for s in [
            &b"Example.TEST.:8080"[..],
            b"a.",
            b".",
            b"10.0.0.1:80",
            b"a.test:",
            b"a.test:00080",
        ] {
            assert_eq!(
                Authority::parse_common(s).ok_or(()),
                Authority::parse_any(s).map_err(|_| ())
            );
        }
    }

    #[test]
    fn targets_are_classified() {
        assert_eq!(parse_target(b"/a?b").unwrap().form, TargetForm::Origin);
        assert_eq!(parse_target(b"*").unwrap().form, TargetForm::Asterisk);
        assert_eq!(
            parse_target(b"http://a.test/x").unwrap().form,
            TargetForm::Absolute
        );
        assert_eq!(
            parse_target(b"a.test:443").unwrap().form,
            TargetForm::Authority
        );
        assert!(parse_target(b"ftp://a.test/").is_err());
        assert!(parse_target(b"index.html").is_err());
        assert_eq!(
            parse_target(b"/a#b").unwrap_err(),
            (RequestErrorKind::InvalidTargetByte { byte: b'#' }, 2)
        );
        assert_eq!(
            parse_target(b"/%4g").unwrap_err(),
            (RequestErrorKind::InvalidPercentEncoding, 1)
        );
    }
}
