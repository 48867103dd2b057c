//! Byte-string helpers behind the text functions.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use regex::bytes::Captures;

/// Most passes `url_decode(x, "r")` makes; each pass removes at least two
/// bytes, so this also bounds the work on adversarial input like `%252525…`.
pub(crate) const MAX_URL_DECODE_PASSES: usize = 32;

/// Decodes `+` and `%XX` (and `%uXXXX` when `unicode`). Malformed escapes are kept as is.
pub(crate) fn url_decode(input: &[u8], recursive: bool, unicode: bool) -> Vec<u8> {
    let mut out = decode_once(input, unicode);
    if recursive {
        for _ in 1..MAX_URL_DECODE_PASSES {
            let next = decode_once(&out, unicode);
            if next == out {
                break;
            }
            out = next;
        }
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode_once(input: &[u8], unicode: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                if unicode && matches!(input.get(i + 1), Some(b'u' | b'U')) {
                    let digits = input.get(i + 2..i + 6).and_then(|d| {
                        d.iter()
                            .try_fold(0u32, |acc, b| Some(acc * 16 + u32::from(hex(*b)?)))
                    });
                    if let Some(c) = digits.and_then(char::from_u32) {
                        let mut buf = [0; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        i += 6;
                        continue;
                    }
                }
                match (
                    input.get(i + 1).and_then(|b| hex(*b)),
                    input.get(i + 2).and_then(|b| hex(*b)),
                ) {
                    (Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// `substring`: byte indexes, negative ones counted from the end, clamped.
pub(crate) fn substring(b: &[u8], start: i64, end: i64) -> &[u8] {
    let n = b.len() as i64;
    let norm = |i: i64| if i < 0 { (n + i).max(0) } else { i.min(n) };
    let (s, e) = (norm(start), norm(end));
    if s >= e {
        &[]
    } else {
        &b[s as usize..e as usize]
    }
}

/// `split`: at most `limit` parts; the last holds the rest.
pub(crate) fn split<'b>(b: &'b [u8], sep: &[u8], limit: usize) -> Vec<&'b [u8]> {
    let mut out = Vec::new();
    let mut rest = b;
    while out.len() + 1 < limit {
        match memchr::memmem::find(rest, sep) {
            Some(p) => {
                out.push(&rest[..p]);
                rest = &rest[p + sep.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    out
}

const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// `decode_base64`: standard alphabet, padding optional; `None` if invalid.
pub(crate) fn decode_base64(b: &[u8]) -> Option<Vec<u8>> {
    BASE64.decode(b).ok()
}

/// A piece of a replacement template: literal bytes or a capture group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Literal(Vec<u8>),
    Group(usize),
}

/// Most `${N}` references in one replacement (Cloudflare allows eight).
pub(crate) const MAX_REPLACEMENT_REFERENCES: usize = 8;

/// Parses `${N}` references and `$$` escapes. `groups` is the number of
/// capture groups available (not counting group 0).
pub(crate) fn parse_replacement(t: &[u8], groups: usize) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut lit = Vec::new();
    let mut refs = 0;
    let mut i = 0;
    while i < t.len() {
        if t[i] != b'$' {
            lit.push(t[i]);
            i += 1;
            continue;
        }
        match t.get(i + 1) {
            Some(b'$') => {
                lit.push(b'$');
                i += 2;
            }
            Some(b'{') => {
                let close = t[i + 2..]
                    .iter()
                    .position(|b| *b == b'}')
                    .ok_or("`${` without a closing `}` in the replacement")?;
                let digits = &t[i + 2..i + 2 + close];
                let n: usize = std::str::from_utf8(digits)
                    .ok()
                    .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|d| d.parse().ok())
                    .ok_or("a reference must be `${N}` with N a number")?;
                if n == 0 || n > groups {
                    return Err(format!(
                        "reference `${{{n}}}` does not name a capture group (there are {groups})"
                    ));
                }
                refs += 1;
                if refs > MAX_REPLACEMENT_REFERENCES {
                    return Err(format!(
                        "at most {MAX_REPLACEMENT_REFERENCES} references are allowed in a replacement"
                    ));
                }
                if !lit.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut lit)));
                }
                pieces.push(Piece::Group(n));
                i += 3 + close;
            }
            _ => return Err("a `$` must start `${N}` or be written `$$`".into()),
        }
    }
    if !lit.is_empty() {
        pieces.push(Piece::Literal(lit));
    }
    Ok(pieces)
}

/// Appends `bytes`, truncated so that `out` stays within `limit` bytes:
/// values built at run time (concat, join, replacements) are bounded, however
/// they are nested.
pub(crate) fn push_limited(out: &mut Vec<u8>, bytes: &[u8], limit: usize) {
    let room = limit.saturating_sub(out.len());
    out.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

pub(crate) fn expand(out: &mut Vec<u8>, pieces: &[Piece], caps: &Captures<'_>, limit: usize) {
    for p in pieces {
        match p {
            Piece::Literal(l) => push_limited(out, l, limit),
            Piece::Group(n) => {
                if let Some(m) = caps.get(*n) {
                    push_limited(out, m.as_bytes(), limit);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_decode_follows_cloudflare_examples() {
        assert_eq!(url_decode(b"John%20Doe", false, false), b"John Doe");
        assert_eq!(url_decode(b"John+Doe", false, false), b"John Doe");
        assert_eq!(url_decode(b"%2520", false, false), b"%20");
        assert_eq!(url_decode(b"%2520", true, false), b" ");
        assert_eq!(url_decode(b"%u2601", false, true), "\u{2601}".as_bytes());
        assert_eq!(url_decode(b"%u2601", false, false), b"%u2601");
        assert_eq!(url_decode(b"%zz%4", false, false), b"%zz%4");
    }

    #[test]
    fn substring_follows_cloudflare_examples() {
        assert_eq!(substring(b"asdfghjk", 2, 5), b"dfg");
        assert_eq!(substring(b"asdfghjk", 2, i64::MAX), b"dfghjk");
        assert_eq!(substring(b"asdfghjk", -2, i64::MAX), b"jk");
        assert_eq!(substring(b"asdfghjk", 0, -2), b"asdfgh");
        assert_eq!(substring(b"abc", 5, 9), b"");
    }

    #[test]
    fn split_keeps_the_remainder_in_the_last_part() {
        let s = b"groceries,electronics,diy,auto";
        assert_eq!(split(s, b",", 64).len(), 4);
        assert_eq!(
            split(s, b",", 3),
            vec![&b"groceries"[..], b"electronics", b"diy,auto"]
        );
        assert_eq!(split(b"a,,b", b",", 64), vec![&b"a"[..], b"", b"b"]);
    }

    #[test]
    fn replacement_templates_parse() {
        assert_eq!(
            parse_replacement(b"/bar/${2}/${1}$$", 2).unwrap(),
            vec![
                Piece::Literal(b"/bar/".to_vec()),
                Piece::Group(2),
                Piece::Literal(b"/".to_vec()),
                Piece::Group(1),
                Piece::Literal(b"$".to_vec())
            ]
        );
        assert!(parse_replacement(b"${3}", 2).is_err());
        assert!(parse_replacement(b"$1", 2).is_err());
    }
}
