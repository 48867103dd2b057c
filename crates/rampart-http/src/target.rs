//! The request-target (RFC 9112 §3.2) and authorities (RFC 3986 §3.2).

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::chars::{
    is_reg_name_byte, is_target_byte, lower_host_prefix_len, plain_target_prefix_len,
};
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
///
/// The host borrows from the parsed bytes when they are already in normal form (lowercase),
/// which nearly every Host field is, so parsing one neither copies nor allocates; a host
/// that needs lowercasing, or an IPv6 literal, is held normalised apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authority<'a> {
    host: Cow<'a, str>,
    port: Option<u16>,
    ip: bool,
}

impl<'a> Authority<'a> {
    /// The host: lowercase, without a trailing dot, IPv6 without brackets.
    pub fn host(&self) -> &str {
        &self.host
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
    pub fn parse(s: &'a [u8]) -> Result<Authority<'a>, AuthorityError> {
        HostAt::parse(s).map(|h| h.into_authority(s))
    }
}

/// A parsed host name: a range of the parsed bytes when they are already lowercase, or the
/// lowercased name.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Name {
    At(u32, u32),
    Lowered(Box<str>),
}

/// A parsed authority whose host is a range of the bytes it was parsed from, so that a
/// request head can keep it without a lifetime (see [`Authority`] for the borrowed view).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostAt {
    name: Name,
    port: Option<u16>,
    ip: bool,
}

/// Only ASCII passes the host checks, so this never fails.
fn ascii(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

impl HostAt {
    /// Parses `host[:port]`; see [`Authority::parse`].
    pub(crate) fn parse(s: &[u8]) -> Result<HostAt, AuthorityError> {
        match HostAt::parse_common(s) {
            Some(a) => Ok(a),
            None => HostAt::parse_any(s),
        }
    }

    /// The same authority with its range moved by `by` (parsed from a slice of a larger buffer).
    pub(crate) fn shifted(mut self, by: usize) -> HostAt {
        if let Name::At(s, e) = &mut self.name {
            *s += by as u32;
            *e += by as u32;
        }
        self
    }

    /// The authority, borrowing from `buf`, the bytes its range refers to.
    pub(crate) fn view<'a>(&'a self, buf: &'a [u8]) -> Authority<'a> {
        Authority {
            host: Cow::Borrowed(self.name(buf)),
            port: self.port,
            ip: self.ip,
        }
    }

    pub(crate) fn name<'a>(&'a self, buf: &'a [u8]) -> &'a str {
        match &self.name {
            Name::At(s, e) => ascii(&buf[*s as usize..*e as usize]),
            Name::Lowered(n) => n,
        }
    }

    fn into_authority(self, buf: &[u8]) -> Authority<'_> {
        let host = match self.name {
            Name::At(s, e) => Cow::Borrowed(ascii(&buf[s as usize..e as usize])),
            Name::Lowered(n) => Cow::Owned(n.into()),
        };
        Authority {
            host,
            port: self.port,
            ip: self.ip,
        }
    }

    /// The common case in one pass: a host of lowercase letters, digits, `-` and `.`, and an
    /// optional port. `None` for anything else (and for every error), which
    /// [`HostAt::parse_any`] then handles; the two agree on every input this accepts.
    fn parse_common(s: &[u8]) -> Option<HostAt> {
        let i = lower_host_prefix_len(s);
        if i == 0 || !matches!(s.get(i), None | Some(b':')) {
            return None;
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
        let len = if i > 1 && s[i - 1] == b'.' { i - 1 } else { i };
        let ip = s[0].is_ascii_digit() && ascii(&s[..len]).parse::<Ipv4Addr>().is_ok();
        Some(HostAt {
            name: Name::At(0, len as u32),
            port,
            ip,
        })
    }

    /// Every form, with an exact error.
    fn parse_any(s: &[u8]) -> Result<HostAt, AuthorityError> {
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
            return Ok(HostAt {
                name: Name::Lowered(ip.to_string().into_boxed_str()),
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
        let trimmed = match host_part {
            [rest @ .., b'.'] if !rest.is_empty() => rest,
            all => all,
        };
        let ip = trimmed.first().is_some_and(u8::is_ascii_digit)
            && ascii(trimmed).parse::<Ipv4Addr>().is_ok();
        let name = if trimmed.iter().any(u8::is_ascii_uppercase) {
            Name::Lowered(ascii(trimmed).to_ascii_lowercase().into_boxed_str())
        } else {
            Name::At(0, trimmed.len() as u32)
        };
        Ok(HostAt { name, port, ip })
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
            if !is_authority_byte(b) {
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
            if !is_authority_byte(b) {
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

/// A byte of an authority as the target check sees it: a target byte that is ASCII (the
/// host parser then checks the authority itself).
fn is_authority_byte(b: u8) -> bool {
    b.is_ascii() && is_target_byte(b)
}

/// Checks the characters and percent-encoding of a path and query; returns where the first
/// `?` is (offset by `base`), if any. Bytes with the high bit set must be UTF-8, so that the
/// target is text for the rules and the logs.
fn check_chars(s: &[u8], base: usize) -> Result<Option<usize>, (RequestErrorKind, usize)> {
    let mut query = None;
    let mut high = false;
    let mut i = 0;
    loop {
        i += plain_target_prefix_len(&s[i..]);
        let Some(&b) = s.get(i) else { break };
        if !is_target_byte(b) {
            return Err((RequestErrorKind::InvalidTargetByte { byte: b }, base + i));
        }
        high |= b >= 0x80;
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
    if high && let Err(e) = std::str::from_utf8(s) {
        let at = e.valid_up_to();
        return Err((
            RequestErrorKind::InvalidTargetByte { byte: s[at] },
            base + at,
        ));
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
            crate::xorshift(&mut rng);
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
            if let Some(fast) = HostAt::parse_common(&s) {
                answered += 1;
                assert_eq!(
                    Ok(fast),
                    HostAt::parse_any(&s),
                    "{:?}",
                    String::from_utf8_lossy(&s)
                );
            }
        }
        assert!(
            answered > 5_000,
            "only {answered} inputs took the common path"
        );
        for s in [
            &b"example.test.:8080"[..],
            b"a.",
            b".",
            b"10.0.0.1:80",
            b"a.test:",
            b"a.test:00080",
        ] {
            assert_eq!(
                HostAt::parse_common(s).ok_or(()),
                HostAt::parse_any(s).map_err(|_| ())
            );
        }
        // Hosts that need lowercasing go the general way, which lowercases them apart.
        assert_eq!(HostAt::parse_common(b"Example.TEST.:8080"), None);
        let a = Authority::parse(b"Example.TEST.:8080").unwrap();
        assert!(matches!(a.host, Cow::Owned(_)));
        let a = Authority::parse(b"example.test.:8080").unwrap();
        assert!(matches!(a.host, Cow::Borrowed("example.test")));
    }

    /// The check as it was, a byte at a time: the reference for the word-at-a-time one.
    fn check_chars_bytewise(
        s: &[u8],
        base: usize,
    ) -> Result<Option<usize>, (RequestErrorKind, usize)> {
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
                if !(s.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && s.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
                {
                    return Err((RequestErrorKind::InvalidPercentEncoding, base + i));
                }
                i += 3;
                continue;
            }
            i += 1;
        }
        if let Err(e) = std::str::from_utf8(s) {
            let at = e.valid_up_to();
            return Err((
                RequestErrorKind::InvalidTargetByte { byte: s[at] },
                base + at,
            ));
        }
        Ok(query)
    }

    #[test]
    fn path_checks_agree_with_the_bytewise_check() {
        let alphabet = b"aZ09/._=&-?%%%fG~!:@ #\x7f\x80\t[|\\\xc3\xa9\xe2";
        let mut rng = 0x0123_4567_89ab_cdefu64;
        let (mut ok, mut err) = (0, 0);
        for _ in 0..200_000 {
            crate::xorshift(&mut rng);
            let len = (rng % 40) as usize;
            let s: Vec<u8> = (0..len)
                .map(|i| {
                    let r = rng.rotate_left(i as u32 * 7) as usize;
                    if !r.is_multiple_of(8) {
                        b"ab/9"[r % 4]
                    } else {
                        alphabet[(r >> 3) % alphabet.len()]
                    }
                })
                .collect();
            let got = check_chars(&s, 3);
            assert_eq!(
                got,
                check_chars_bytewise(&s, 3),
                "{:?}",
                String::from_utf8_lossy(&s)
            );
            if got.is_ok() { ok += 1 } else { err += 1 }
        }
        assert!(ok > 10_000 && err > 10_000, "{ok} accepted, {err} rejected");
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
