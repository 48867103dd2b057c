//! Message framing (RFC 9112 §6): Content-Length, Transfer-Encoding and hop-by-hop fields.

use crate::error::{RequestError, RequestErrorKind as K};

/// How a request body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// Exactly this many bytes.
    ContentLength(u64),
    /// The chunked transfer coding.
    Chunked,
}

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseBody {
    /// No body (HEAD, 1xx, 204, 304).
    None,
    /// Exactly this many bytes.
    ContentLength(u64),
    /// Chunked.
    Chunked,
    /// Until the connection closes.
    CloseDelimited,
}

/// Fields that are hop-by-hop whatever Connection says (RFC 9110 §7.6.1, plus the
/// non-standard Keep-Alive and Proxy-Connection that clients still send).
pub fn is_standard_hop_by_hop(name: impl AsRef<[u8]>) -> bool {
    let name = name.as_ref();
    const LIST: [&str; 7] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ];
    LIST.iter().any(|h| h.as_bytes().eq_ignore_ascii_case(name))
}

/// The elements of a comma-separated list field (RFC 9110 §5.6.1), as ranges within
/// `value`, trimmed of whitespace; empty elements are skipped.
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut start = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        while !done {
            let end = memchr::memchr(b',', &value[start..]).map_or(value.len(), |i| start + i);
            let (mut s, mut e) = (start, end);
            while s < e && (value[s] == b' ' || value[s] == b'\t') {
                s += 1;
            }
            while e > s && (value[e - 1] == b' ' || value[e - 1] == b'\t') {
                e -= 1;
            }
            if end == value.len() {
                done = true;
            } else {
                start = end + 1;
            }
            if s < e {
                return Some((s, e));
            }
        }
        None
    })
}

/// Content-Length = 1*DIGIT (RFC 9110 §8.6). A list of identical values is accepted as
/// one value, as the RFC allows; anything else (signs, hex, spaces inside, empty) is not.
pub(crate) fn parse_content_length(value: &[u8]) -> Result<u64, K> {
    let mut result: Option<u64> = None;
    let mut any = false;
    for element in value.split(|&b| b == b',') {
        let e = element.trim_ascii();
        if e.is_empty() || !e.iter().all(u8::is_ascii_digit) {
            return Err(K::InvalidContentLength);
        }
        let mut n: u64 = 0;
        for d in e {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .ok_or(K::InvalidContentLength)?;
        }
        match result {
            Some(prev) if prev != n => return Err(K::ConflictingContentLength),
            _ => result = Some(n),
        }
        any = true;
    }
    if !any {
        return Err(K::InvalidContentLength);
    }
    result.ok_or(K::InvalidContentLength)
}

/// Transfer-Encoding (RFC 9112 §6.1, §6.3): the final coding must be chunked, applied once
/// (else the length cannot be determined: 400); any other coding is not implemented (501).
pub(crate) fn check_transfer_encoding(values: &[(&[u8], usize)]) -> Result<(), RequestError> {
    let mut codings: Vec<(&[u8], usize)> = Vec::new();
    for &(v, at) in values {
        for (s, e) in list_elements(v) {
            codings.push((&v[s..e], at + s));
        }
    }
    let Some(&(last, last_at)) = codings.last() else {
        return Err(RequestError::new(
            K::ChunkedNotLast,
            values.first().map_or(0, |v| v.1),
        ));
    };
    if !last.eq_ignore_ascii_case(b"chunked") {
        return Err(RequestError::new(K::ChunkedNotLast, last_at));
    }
    let before = &codings[..codings.len() - 1];
    // Chunked applied twice anywhere makes the length unknowable (400), whatever else is
    // listed; only then is another coding merely not implemented (501).
    if let Some(&(_, at)) = before
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(b"chunked"))
    {
        return Err(RequestError::new(K::ChunkedNotLast, at));
    }
    match before.first() {
        None => Ok(()),
        Some(&(_, at)) => Err(RequestError::new(K::UnsupportedTransferCoding, at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_is_plain_digits() {
        assert_eq!(parse_content_length(b"42"), Ok(42));
        assert_eq!(parse_content_length(b"5, 5"), Ok(5));
        assert_eq!(
            parse_content_length(b"5,6"),
            Err(K::ConflictingContentLength)
        );
        for bad in [
            &b"+5"[..],
            b"0x5",
            b"5 5",
            b"-1",
            b"",
            b" ",
            b"18446744073709551616",
            b"5,",
        ] {
            assert_eq!(
                parse_content_length(bad),
                Err(K::InvalidContentLength),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse_content_length(b"18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn list_elements_skip_empties_and_trim() {
        let v = b" a, ,b\t,c ";
        let got: Vec<&[u8]> = list_elements(v).map(|(s, e)| &v[s..e]).collect();
        assert_eq!(got, [&b"a"[..], b"b", b"c"]);
    }

    #[test]
    fn transfer_codings_are_judged_by_the_last_one_first() {
        let k = |v: &[u8]| check_transfer_encoding(&[(v, 0)]).map_err(|e| e.kind().clone());
        assert_eq!(k(b"chunked"), Ok(()));
        assert_eq!(k(b"Chunked"), Ok(()));
        assert_eq!(k(b"gzip"), Err(K::ChunkedNotLast));
        assert_eq!(k(b"chunked, gzip"), Err(K::ChunkedNotLast));
        assert_eq!(k(b"gzip, chunked"), Err(K::UnsupportedTransferCoding));
        // Chunked twice is a 400 wherever it is, even after another coding.
        assert_eq!(k(b"gzip, chunked, chunked"), Err(K::ChunkedNotLast));
        assert_eq!(k(b"chunked, gzip, chunked"), Err(K::ChunkedNotLast));
        assert_eq!(k(b"chunked, chunked"), Err(K::ChunkedNotLast));
        assert_eq!(k(b""), Err(K::ChunkedNotLast));
    }
}
