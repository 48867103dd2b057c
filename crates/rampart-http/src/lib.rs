//! rampart-http: strict, sans-IO HTTP/1.1 for an edge proxy.
//!
//! # Brief overview
//!
//! This crate turns bytes into validated HTTP/1.1 messages and messages back into bytes. It
//! never touches a socket, a clock or a file: the caller hands it a buffer and gets back a
//! typed result. That keeps it deterministic, testable with plain byte slices, and fuzzable.
//!
//! - [`parse_request_head`] validates a request head in one pass of its own (request-line
//!   whitespace, the request-target's characters and form, field syntax, bare CR and LF,
//!   obsolete line folding, Host, Content-Length and Transfer-Encoding, Expect, the limits);
//!   its field tokeniser is tested to accept exactly what httparse does, bare LF aside. A
//!   rejection is a [`RequestError`] naming the rule, the byte offset and exactly one status
//!   code.
//! - [`ChunkedDecoder`] decodes a chunked body fed in pieces of any size.
//! - [`parse_response_head`] reads an origin's response head and its body framing, with the
//!   same field tokeniser's building blocks (bare LF line endings allowed, as RFC 9112 §2.2
//!   lets a recipient); it is tested to accept exactly what httparse does.
//! - [`normalize_path`] gives a path the one spelling that rules judge (Cloudflare's URL
//!   normalisation: escapes, literal bytes, `\`, repeated slashes, dot segments).
//! - The `write_*` functions serialise heads and chunks.
//!
//! ```
//! use rampart_http::{parse_request_head, BodyFraming, Limits, Parse};
//!
//! let raw = b"POST /login?next=%2F HTTP/1.1\r\nHost: Example.test\r\nContent-Length: 5\r\n\r\nhello";
//! let Parse::Complete((head, len)) = parse_request_head(raw, &Limits::default())? else {
//!     unreachable!("the head is complete");
//! };
//! assert_eq!(head.method(), "POST");
//! assert_eq!(head.path(), "/login");
//! assert_eq!(head.query(), Some("next=%2F"));
//! assert_eq!(head.host().unwrap().host(), "example.test");
//! assert_eq!(head.body(), BodyFraming::ContentLength(5));
//! assert_eq!(&raw[len..], b"hello");
//!
//! // Every rejection says what, where, and which status.
//! let err = parse_request_head(b"GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n", &Limits::default()).unwrap_err();
//! assert_eq!(err.status(), 400);
//! assert_eq!(err.offset(), 6);
//! assert!(err.to_string().contains("0x7f"));
//! # Ok::<(), rampart_http::RequestError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod chars;
mod chunked;
mod error;
mod fields;
mod framing;
mod fuzzing;
mod normalize;
mod request;
mod response;
mod target;
mod write;

pub use chunked::{ChunkedDecoder, MAX_CHUNK_LINE_BYTES};
pub use error::{
    AuthorityError, ChunkedError, ChunkedErrorKind, RequestError, RequestErrorKind, ResponseError,
};
pub use fields::{Headers, RawHeaders};
pub use framing::{BodyFraming, ResponseBody, is_standard_hop_by_hop};
pub use fuzzing::{fuzz_chunked, fuzz_normalize, fuzz_request_head, fuzz_response_head};
pub use normalize::{Normalization, normalize_path};
pub use request::{MAX_LEADING_EMPTY_LINES, RequestHead, parse_request_head};
pub use response::{ResponseHead, parse_response_head};
pub use target::{Authority, TargetForm};
pub use write::{
    canonical_reason, write_chunk, write_end_of_head, write_header, write_last_chunk,
    write_request_line, write_status_line,
};

/// Default longest request-target: 32 KiB. Longer: 414 URI Too Long.
pub const DEFAULT_MAX_URI_BYTES: usize = 32 * 1024;
/// Default largest head (request line and field lines): 64 KiB. Larger: 431.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
/// Default most header fields: 100. More: 431.
pub const DEFAULT_MAX_HEADERS: usize = 100;
/// Default largest chunked trailer section: 16 KiB. Larger: 400.
pub const DEFAULT_MAX_TRAILER_BYTES: usize = 16 * 1024;

/// The limits a request head is checked against.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest request-target (414 above it).
    pub max_uri_bytes: usize,
    /// Largest head, request line included (431 above it).
    pub max_header_bytes: usize,
    /// Most header fields (431 above it).
    pub max_headers: usize,
    /// Largest chunked trailer section (400 above it).
    pub max_trailer_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_uri_bytes: DEFAULT_MAX_URI_BYTES,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_trailer_bytes: DEFAULT_MAX_TRAILER_BYTES,
        }
    }
}

/// An HTTP/1.x version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
}

impl Version {
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// The result of feeding a possibly incomplete buffer.
#[derive(Debug)]
pub enum Parse<T> {
    /// A complete message head.
    Complete(T),
    /// More bytes are needed (and no limit is exceeded yet).
    Partial,
}

/// Pseudo-random numbers for generated test inputs (xorshift64): the same sequence every run.
#[cfg(test)]
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// What damaged field lines are made of in [`field_sections`].
#[cfg(test)]
const FIELD_PIECES: &[&[u8]] = &[
    b"Host",
    b"x-a",
    b":",
    b": ",
    b" ",
    b"\t",
    b"\r\n",
    b"\r",
    b"\n",
    b"value",
    b"v w",
    b"\x7f",
    b"\x80\xff",
    b"\x00",
    b"\x01",
    b"\"",
    b"(",
    b"@",
    b"=",
    b"\n\n",
    b"\r\n\r\n",
];

/// Generated field sections for the tokeniser tests, the same every run: `count` inputs of up
/// to four lines, each one of `lines` or (as often as any one of them) a damaged line of one
/// to six [`FIELD_PIECES`]; then one of `ends` or nothing; then up to two bytes cut off the end.
#[cfg(test)]
fn field_sections<'a>(
    seed: u64,
    count: usize,
    lines: &'a [&'a [u8]],
    ends: &'a [&'a [u8]],
) -> impl Iterator<Item = Vec<u8>> + 'a {
    let mut rng = seed;
    let mut next = move |below: usize| (xorshift(&mut rng) % below as u64) as usize;
    (0..count).map(move |_| {
        let mut input = Vec::new();
        for _ in 0..next(5) {
            match next(lines.len() + 1) {
                0 => {
                    for _ in 0..1 + next(6) {
                        input.extend_from_slice(FIELD_PIECES[next(FIELD_PIECES.len())]);
                    }
                }
                i => input.extend_from_slice(lines[i - 1]),
            }
        }
        if let i @ 1.. = next(ends.len() + 1) {
            input.extend_from_slice(ends[i - 1]);
        }
        input.truncate(input.len() - next(3) % (input.len() + 1));
        input
    })
}
