//! Origin responses: the status line and fields, checked enough that a broken origin becomes
//! a 502 and never a smuggling vector.

use crate::error::ResponseError;
use crate::fields::{FieldSpans, HeadBytes, Headers, Tokens, has_token};
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
    fn connection_has_token(&self, token: impl AsRef<[u8]>) -> bool {
        has_token(self.data.bytes(), &self.connection, token.as_ref())
    }
    /// Whether the origin lets the connection be reused.
    pub fn keep_alive(&self) -> bool {
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

/// Parses a response head from the start of `buf`.
pub fn parse_response_head(
    buf: &[u8],
    limits: &Limits,
) -> Result<Parse<(ResponseHead, usize)>, ResponseError> {
    let end = match find_end(buf) {
        Some(e) => e,
        None => {
            if buf.len() > limits.max_header_bytes {
                return Err(ResponseError::new(
                    "response header section larger than the limit",
                    limits.max_header_bytes,
                ));
            }
            if buf.len() >= 5 && !buf.starts_with(b"HTTP/") {
                return Err(ResponseError::new("not an HTTP/1.x status line", 0));
            }
            return Ok(Parse::Partial);
        }
    };
    if end > limits.max_header_bytes {
        return Err(ResponseError::new(
            "response header section larger than the limit",
            limits.max_header_bytes,
        ));
    }
    let head = &buf[..end];
    let line_end = memchr::memchr(b'\n', head).unwrap_or(head.len());
    let line = head[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&head[..line_end]);
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
    // Most responses have a few fields: a small slot array first (each slot is initialised
    // on every parse), the full one only when it is too small.
    let mut small = [httparse::EMPTY_HEADER; 24];
    let mut large = Vec::new();
    let mut result = httparse::parse_headers(&head[fields_start..], &mut small);
    if result == Err(httparse::Error::TooManyHeaders) {
        large.resize(128, httparse::EMPTY_HEADER);
        result = httparse::parse_headers(&head[fields_start..], &mut large);
    }
    let parsed = match result {
        Ok(httparse::Status::Complete((_, parsed))) => parsed,
        Ok(httparse::Status::Partial) => {
            return Err(ResponseError::new("malformed header section", fields_start));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ResponseError::new(
                "more than 128 header fields",
                fields_start,
            ));
        }
        Err(_) => return Err(ResponseError::new("malformed header field", fields_start)),
    };
    let base = head.as_ptr() as usize;
    let mut headers = FieldSpans::with_capacity(parsed.len());
    let mut length: Option<u64> = None;
    let mut te_chunked_last = None;
    let mut connection = Tokens::new();
    for h in parsed.iter() {
        let ns = h.name.as_ptr() as usize - base;
        let vs = h.value.as_ptr() as usize - base;
        if h.value.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n') {
            return Err(ResponseError::new("NUL, CR or LF in a field value", vs));
        }
        headers.push((
            (ns as u32, (ns + h.name.len()) as u32),
            (vs as u32, (vs + h.value.len()) as u32),
        ));
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = framing::parse_content_length(h.value)
                .map_err(|_| ResponseError::new("invalid or conflicting Content-Length", vs))?;
            if length.is_some_and(|l| l != n) {
                return Err(ResponseError::new("conflicting Content-Length values", vs));
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = framing::list_elements(h.value)
                .last()
                .map(|(s, e)| &h.value[s..e]);
            te_chunked_last = Some(last.is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for (s, e) in framing::list_elements(h.value) {
                connection.push(((vs + s) as u32, (vs + e) as u32));
            }
        }
    }
    let framing = match (te_chunked_last, length) {
        // RFC 9112 §6.3: both is a smuggling signal; refuse it rather than guess.
        (Some(_), Some(_)) => {
            return Err(ResponseError::new(
                "both Content-Length and Transfer-Encoding",
                fields_start,
            ));
        }
        (Some(true), None) => Framing::Chunked,
        (Some(false), None) => Framing::Close,
        (None, Some(n)) => Framing::Length(n),
        (None, None) => Framing::Close,
    };
    let framing = if matches!(framing, Framing::Length(0)) {
        Framing::None
    } else {
        framing
    };
    let reason = ((reason_start) as u32, line.len() as u32);
    Ok(Parse::Complete((
        ResponseHead {
            data: HeadBytes::new(head, &headers),
            version,
            status,
            reason,
            framing,
            connection,
        },
        end,
    )))
}

/// End of the head (after the empty line). Origins may end lines with bare LF (RFC 9112 §2.2
/// allows a recipient to accept it), so both CRLF CRLF and LF LF count.
fn find_end(buf: &[u8]) -> Option<usize> {
    let mut pos = 0;
    while let Some(i) = memchr::memchr(b'\n', &buf[pos..]) {
        let at = pos + i;
        let next = &buf[at + 1..];
        if next.starts_with(b"\r\n") {
            return Some(at + 3);
        }
        if next.starts_with(b"\n") {
            return Some(at + 2);
        }
        pos = at + 1;
    }
    None
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

    #[test]
    fn framing_follows_rfc9112_6_3() {
        let h = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(h.body(false), ResponseBody::ContentLength(5));
        assert_eq!(h.body(true), ResponseBody::None);
        let h = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").unwrap();
        assert_eq!(h.body(false), ResponseBody::Chunked);
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
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
        ] {
            assert!(parse(raw).is_err(), "{:?}", String::from_utf8_lossy(raw));
        }
        assert!(parse_response_head(b"garbage that is long enough", &Limits::default()).is_err());
    }
}
