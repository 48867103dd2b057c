//! Origin responses: the status line and fields, checked enough that a broken origin becomes
//! a 502 and never a smuggling vector.

use crate::error::ResponseError;
use crate::fields::{
    self, FieldSpans, FieldsError, HeadBytes, Headers, LineEnds, Tokens, has_token,
};
use crate::framing::{self, ResponseBody};
use crate::{Limits, Parse, Version};

/// A parsed response head.
#[derive(Clone, Debug)]
pub struct ResponseHead {
    data: HeadBytes,
    version: Version,
    status: u16,
    reason: (u32, u32),
    framing: Framing,
    connection: Tokens,
    /// HTTP/1.0 with Transfer-Encoding: read, then close the connection (RFC 9112 §6.1).
    faulty_framing: bool,
    /// The Content-Length, validated (one value, however many times the origin repeated it).
    length: Option<u64>,
    /// The origin sent a Date field.
    date: bool,
}

#[derive(Clone, Copy, Debug)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    Close,
}

impl ResponseHead {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }
    /// The reason phrase (may be empty); "" when it is not UTF-8 (obs-text).
    pub fn reason(&self) -> &str {
        std::str::from_utf8(self.reason_bytes()).unwrap_or("")
    }
    /// The reason phrase exactly as received, obs-text included: what a relay sends on.
    pub fn reason_bytes(&self) -> &[u8] {
        &self.data.bytes()[self.reason.0 as usize..self.reason.1 as usize]
    }
    /// The head exactly as received, from the status line through the empty line. Field
    /// names and values returned by [`ResponseHead::headers`] are slices of it.
    pub fn as_bytes(&self) -> &[u8] {
        self.data.bytes()
    }
    /// The Content-Length the origin sent, as one validated number: what a relay writes
    /// instead of the origin's own field, which may be a list (`5, 5`) or repeated (RFC 9110
    /// §8.6). For a response to HEAD, or a 304, it describes the body not sent.
    pub fn content_length(&self) -> Option<u64> {
        self.length
    }
    /// Whether the origin sent a Date field (RFC 9110 §6.6.1: a proxy with a clock adds one to
    /// a response that lacks it). Found while the head is parsed, so asking costs nothing.
    pub fn has_date(&self) -> bool {
        self.date
    }
    /// The HTTP version of the response.
    pub fn version(&self) -> Version {
        self.version
    }
    /// Every field, in order.
    pub fn headers(&self) -> Headers<'_> {
        self.data.fields()
    }
    /// The first field named `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers().get(name)
    }
    /// Whether the Connection field lists `token` (any case).
    pub fn connection_has_token(&self, token: impl AsRef<[u8]>) -> bool {
        has_token(self.data.bytes(), &self.connection, token.as_ref())
    }
    /// Whether the origin lets the connection be reused.
    pub fn keep_alive(&self) -> bool {
        if self.faulty_framing {
            return false;
        }
        match self.version {
            Version::Http11 => !self.connection_has_token("close"),
            Version::Http10 => {
                self.connection_has_token("keep-alive") && !self.connection_has_token("close")
            }
        }
    }
    /// Whether a field is hop-by-hop.
    pub fn is_hop_by_hop(&self, name: impl AsRef<[u8]>) -> bool {
        let name = name.as_ref();
        framing::is_standard_hop_by_hop(name) || self.connection_has_token(name)
    }
    /// The body framing (RFC 9112 §6.3), given whether the request was HEAD.
    pub fn body(&self, request_was_head: bool) -> ResponseBody {
        if request_was_head
            || (100..200).contains(&self.status)
            || self.status == 204
            || self.status == 304
        {
            return ResponseBody::None;
        }
        match self.framing {
            Framing::None => ResponseBody::None,
            Framing::Length(n) => ResponseBody::ContentLength(n),
            Framing::Chunked => ResponseBody::Chunked,
            Framing::Close => ResponseBody::CloseDelimited,
        }
    }
}

/// At most this many field lines in a response head.
const MAX_RESPONSE_FIELDS: usize = 128;

/// Parses a response head from the start of `buf`.
///
/// Line endings may be CRLF or a bare LF (RFC 9112 §2.2 lets a recipient accept bare LF, and
/// origins are trusted more than clients); field syntax is RFC 9110 §5 without obsolete line
/// folding, the same as httparse's (tested against it in `tokenizer_agrees_with_httparse`).
pub fn parse_response_head(
    buf: &[u8],
    limits: &Limits,
) -> Result<Parse<(ResponseHead, usize)>, ResponseError> {
    let too_large = || {
        ResponseError::new(
            "response header section larger than the limit",
            limits.max_header_bytes,
        )
    };
    let partial = || {
        if buf.len() > limits.max_header_bytes {
            return Err(too_large());
        }
        if buf.len() >= 5 && !buf.starts_with(b"HTTP/") {
            return Err(ResponseError::new("not an HTTP/1.x status line", 0));
        }
        Ok(Parse::Partial)
    };
    let Some(line_end) = memchr::memchr(b'\n', buf) else {
        return partial();
    };
    let line = buf[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&buf[..line_end]);
    let version = match line.get(..9) {
        Some(b"HTTP/1.1 ") => Version::Http11,
        Some(b"HTTP/1.0 ") => Version::Http10,
        _ => {
            return Err(ResponseError::new(
                "not an HTTP/1.0 or HTTP/1.1 status line",
                0,
            ));
        }
    };
    let code = line
        .get(9..12)
        .filter(|c| c.iter().all(u8::is_ascii_digit))
        .ok_or(ResponseError::new("invalid status code", 9))?;
    let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if !(100..=599).contains(&status) || line.get(12).is_some_and(|&b| b != b' ') {
        return Err(ResponseError::new("invalid status code", 9));
    }
    let reason_start = line.len().min(13);
    if line[reason_start..]
        .iter()
        .any(|&b| b < 0x20 && b != b'\t' || b == 0x7f)
    {
        return Err(ResponseError::new(
            "control byte in the reason phrase",
            reason_start,
        ));
    }
    let fields_start = line_end + 1;
    let mut headers = FieldSpans::new();
    let Some(consumed) = tokenize_fields(&buf[fields_start..], fields_start, &mut headers)? else {
        return partial();
    };
    let end = fields_start + consumed;
    if end > limits.max_header_bytes {
        return Err(too_large());
    }
    let head = &buf[..end];
    let mut length: Option<u64> = None;
    // Transfer codings named, over every Transfer-Encoding line, and whether all are `chunked`.
    let (mut codings, mut all_chunked) = (0usize, true);
    let mut connection = Tokens::new();
    let mut date = false;
    for &((ns, ne), (vs, ve)) in &headers {
        let name = &head[ns as usize..ne as usize];
        let value = &head[vs as usize..ve as usize];
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = framing::parse_content_length(value).map_err(|_| {
                ResponseError::new("invalid or conflicting Content-Length", vs as usize)
            })?;
            if length.is_some_and(|l| l != n) {
                return Err(ResponseError::new(
                    "conflicting Content-Length values",
                    vs as usize,
                ));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            for (s, e) in framing::list_elements(value) {
                codings += 1;
                all_chunked &= value[s..e].eq_ignore_ascii_case(b"chunked");
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for (s, e) in framing::list_elements(value) {
                connection.push((vs + s as u32, vs + e as u32));
            }
        } else if name.eq_ignore_ascii_case(b"date") {
            date = true;
        }
    }
    let framing = match (codings, length) {
        (0, Some(0)) => Framing::None,
        (0, Some(n)) => Framing::Length(n),
        (0, None) => Framing::Close,
        // RFC 9112 §6.3: both is a smuggling signal; refuse it rather than guess.
        (_, Some(_)) => {
            return Err(ResponseError::new(
                "both Content-Length and Transfer-Encoding",
                fields_start,
            ));
        }
        (1, None) if all_chunked => Framing::Chunked,
        // Other transfer codings (gzip, chunked; or gzip alone, close-delimited): a proxy that
        // re-frames the body would have to decode them (they are hop-by-hop, RFC 9112 §6.1)
        // and relaying the coded bytes as if they were the content would corrupt it. nginx
        // refuses them too.
        _ => {
            return Err(ResponseError::new(
                "a transfer coding other than chunked",
                fields_start,
            ));
        }
    };
    // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing; the
    // connection is closed after it.
    let faulty_framing = version == Version::Http10 && codings > 0;
    let reason = (reason_start as u32, line.len() as u32);
    Ok(Parse::Complete((
        ResponseHead {
            data: HeadBytes::new(head, &headers),
            version,
            status,
            reason,
            framing,
            connection,
            faulty_framing,
            length,
            date,
        },
        end,
    )))
}

/// Tokenises the field lines of a response head ([`fields::tokenize`], bare LF allowed).
fn tokenize_fields(
    fields: &[u8],
    base: usize,
    out: &mut FieldSpans,
) -> Result<Option<usize>, ResponseError> {
    fields::tokenize(fields, base, MAX_RESPONSE_FIELDS, LineEnds::CrLfOrLf, out).map_err(
        |e| match e {
            FieldsError::Malformed(at, what) => ResponseError::new(what, base + at),
            FieldsError::TooMany(at) => {
                ResponseError::new("more than 128 header fields", base + at)
            }
            FieldsError::BareLineFeed(at) => ResponseError::new("bare LF", base + at),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<ResponseHead, ResponseError> {
        match parse_response_head(raw, &Limits::default())? {
            Parse::Complete((h, _)) => Ok(h),
            Parse::Partial => panic!("partial"),
        }
    }

    #[test]
    fn up_to_128_fields_are_read_and_more_are_an_error() {
        let with = |n: usize| {
            let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
            for i in 0..n {
                raw.extend_from_slice(format!("X-F{i}: {i}\r\n").as_bytes());
            }
            raw.extend_from_slice(b"Content-Length: 0\r\n\r\n");
            parse(&raw)
        };
        for n in [0, 22, 23, 60, 127] {
            let h = with(n).unwrap();
            assert_eq!(h.headers().count(), n + 1);
            assert_eq!(h.headers().last().map(|(k, _)| k), Some("Content-Length"));
        }
        assert!(with(128).unwrap_err().to_string().contains("more than 128"));
    }

    /// The field tokeniser against httparse's `parse_headers` on generated field sections
    /// (with bare LF line endings, which both accept): the same verdict, the same fields and
    /// the same length consumed.
    #[test]
    fn tokenizer_agrees_with_httparse() {
        let (mut complete, mut errors) = (0, 0);
        let lines: &[&[u8]] = &[
            b"Content-Type:text/plain \t\n",
            b"Name-1:  some value \t\r\n",
            b"Name-1:  some value \t\r\n",
        ];
        let ends: &[&[u8]] = &[b"\r\n", b"\n"];
        for input in crate::field_sections(0x2545_f491_4f6c_dd1d, 300_000, lines, ends) {
            let shown = String::from_utf8_lossy(&input);
            let mut spans = FieldSpans::new();
            let ours = tokenize_fields(&input, 0, &mut spans).map(|done| {
                done.map(|n| {
                    let text = |s: u32, e: u32| input[s as usize..e as usize].to_vec();
                    let fields: Vec<_> = spans
                        .iter()
                        .map(|&((ns, ne), (vs, ve))| (text(ns, ne), text(vs, ve)))
                        .collect();
                    (n, fields)
                })
            });
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let theirs = httparse::parse_headers(&input, &mut slots).map(|status| match status {
                httparse::Status::Complete((n, parsed)) => Some((
                    n,
                    parsed
                        .iter()
                        .map(|h| (h.name.as_bytes().to_vec(), h.value.to_vec()))
                        .collect::<Vec<_>>(),
                )),
                httparse::Status::Partial => None,
            });
            match (&ours, &theirs) {
                (Ok(a), Ok(b)) => {
                    complete += usize::from(a.is_some());
                    assert_eq!(a, b, "{shown:?}");
                }
                (Err(_), Err(_)) => errors += 1,
                _ => panic!("{shown:?}: ours {ours:?}, httparse {theirs:?}"),
            }
        }
        assert!(
            complete > 10_000 && errors > 10_000,
            "{complete} complete, {errors} errors"
        );
    }

    #[test]
    fn framing_follows_rfc9112_6_3() {
        let h = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(h.body(false), ResponseBody::ContentLength(5));
        assert_eq!(h.body(true), ResponseBody::None);
        let h = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n").unwrap();
        assert_eq!(h.body(false), ResponseBody::Chunked);
        assert!(h.keep_alive());
        // RFC 9112 §6.1: HTTP/1.0 with Transfer-Encoding is read, then the connection closed.
        let h = parse(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.body(false), ResponseBody::Chunked);
        assert!(!h.keep_alive());
        let h = parse(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        assert_eq!(h.body(false), ResponseBody::CloseDelimited);
        let h = parse(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(h.body(false), ResponseBody::None);
        let h = parse(b"HTTP/1.0 200 OK\nConnection: keep-alive\nContent-Length: 0\n\n").unwrap();
        assert!(h.keep_alive());
        assert_eq!(h.reason(), "OK");
    }

    #[test]
    fn broken_responses_are_errors() {
        for raw in [
            &b"HTTP/1.1 2000 OK\r\n\r\n"[..],
            b"HTTP/2 200\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            // Transfer codings other than chunked cannot be relayed re-framed (RFC 9112 §6.1).
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
        ] {
            assert!(parse(raw).is_err(), "{:?}", String::from_utf8_lossy(raw));
        }
        assert!(parse_response_head(b"garbage that is long enough", &Limits::default()).is_err());
    }
}
