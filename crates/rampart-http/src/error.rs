//! Why a message was rejected. Every reason names what was wrong and where (a byte offset),
//! and maps to exactly one status code.

use std::fmt;

/// A request head that was rejected: what was wrong ([`RequestError::kind`]) and where
/// ([`RequestError::offset`], from the start of the buffer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestError {
    kind: RequestErrorKind,
    offset: usize,
}

/// The rule a request broke. Each maps to one status (see [`RequestError::status`]); all
/// are the client's fault.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestErrorKind {
    /// The method contains a byte that is not a token character (RFC 9110 §9.1).
    MethodNotToken {
        /// The offending byte.
        byte: u8,
    },
    /// The request line is empty or has no request-target.
    MissingRequestTarget,
    /// More than one space, or other whitespace, between request-line parts (RFC 9112 §3).
    ExtraWhitespaceInRequestLine,
    /// A control, space, DEL, `#`, or a byte that is not UTF-8, in the request-target.
    InvalidTargetByte {
        /// The offending byte.
        byte: u8,
    },
    /// `%` not followed by two hex digits.
    InvalidPercentEncoding,
    /// The request-target form does not fit the method (RFC 9112 §3.2).
    TargetFormNotAllowedForMethod,
    /// The request-target is in none of the four forms.
    InvalidTargetForm,
    /// The request-target is longer than `max_uri_bytes` (414).
    UriTooLong,
    /// The header section is larger than `max_header_bytes` (431).
    HeaderSectionTooLarge,
    /// More header fields than `max_headers` (431).
    TooManyHeaders,
    /// A field name contains a byte that is not a token character.
    HeaderNameNotToken {
        /// The offending byte.
        byte: u8,
    },
    /// Whitespace between a field name and its colon (RFC 9112 §5.1).
    WhitespaceBeforeColon,
    /// A field line without a colon.
    MissingColon,
    /// A line that starts with whitespace: obsolete line folding (RFC 9112 §5.2).
    ObsoleteLineFolding,
    /// LF not preceded by CR (RFC 9112 §2.2).
    BareLineFeed,
    /// CR not followed by LF (RFC 9112 §2.2).
    BareCarriageReturn,
    /// NUL or another control byte in a field value (RFC 9110 §5.5).
    InvalidByteInFieldValue {
        /// The offending byte.
        byte: u8,
    },
    /// HTTP/1.1 without a Host field (RFC 9112 §3.2).
    MissingHost,
    /// More than one Host field.
    MultipleHost,
    /// A Host that is not a valid authority (userinfo, bad port, bad characters).
    InvalidHost,
    /// An absolute-form target whose authority differs from Host.
    HostDiffersFromTarget,
    /// Content-Length and Transfer-Encoding together (RFC 9112 §6.3).
    ContentLengthWithTransferEncoding,
    /// Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1).
    TransferEncodingOnHttp10,
    /// A Transfer-Encoding whose final coding is not chunked, or chunked applied twice
    /// (RFC 9112 §6.3): the body length cannot be determined.
    ChunkedNotLast,
    /// A transfer coding other than chunked (501, RFC 9112 §6.1).
    UnsupportedTransferCoding,
    /// A Content-Length that is not plain digits, or too large.
    InvalidContentLength,
    /// Several Content-Length values that differ.
    ConflictingContentLength,
    /// A well-formed HTTP version other than 1.0 and 1.1 (505).
    UnsupportedVersion,
    /// An HTTP version that is not `HTTP/DIGIT.DIGIT`.
    MalformedVersion,
    /// An Expect other than 100-continue (417).
    UnsupportedExpectation,
}

impl RequestErrorKind {
    /// A stable snake_case name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        use RequestErrorKind::*;
        match self {
            MethodNotToken { .. } => "method_not_token",
            MissingRequestTarget => "missing_request_target",
            ExtraWhitespaceInRequestLine => "extra_whitespace_in_request_line",
            InvalidTargetByte { .. } => "invalid_target_byte",
            InvalidPercentEncoding => "invalid_percent_encoding",
            TargetFormNotAllowedForMethod => "target_form_not_allowed_for_method",
            InvalidTargetForm => "invalid_target_form",
            UriTooLong => "uri_too_long",
            HeaderSectionTooLarge => "header_section_too_large",
            TooManyHeaders => "too_many_headers",
            HeaderNameNotToken { .. } => "header_name_not_token",
            WhitespaceBeforeColon => "whitespace_before_colon",
            MissingColon => "missing_colon",
            ObsoleteLineFolding => "obsolete_line_folding",
            BareLineFeed => "bare_line_feed",
            BareCarriageReturn => "bare_carriage_return",
            InvalidByteInFieldValue { .. } => "invalid_byte_in_field_value",
            MissingHost => "missing_host",
            MultipleHost => "multiple_host",
            InvalidHost => "invalid_host",
            HostDiffersFromTarget => "host_differs_from_target",
            ContentLengthWithTransferEncoding => "content_length_with_transfer_encoding",
            TransferEncodingOnHttp10 => "transfer_encoding_on_http10",
            ChunkedNotLast => "chunked_not_last",
            UnsupportedTransferCoding => "unsupported_transfer_coding",
            InvalidContentLength => "invalid_content_length",
            ConflictingContentLength => "conflicting_content_length",
            UnsupportedVersion => "unsupported_version",
            MalformedVersion => "malformed_version",
            UnsupportedExpectation => "unsupported_expectation",
        }
    }

    /// The status code this rejection is answered with.
    pub fn status(&self) -> u16 {
        use RequestErrorKind::*;
        match self {
            UriTooLong => 414,
            HeaderSectionTooLarge | TooManyHeaders => 431,
            UnsupportedTransferCoding => 501,
            UnsupportedVersion => 505,
            UnsupportedExpectation => 417,
            _ => 400,
        }
    }
}

impl RequestError {
    pub(crate) fn new(kind: RequestErrorKind, offset: usize) -> RequestError {
        RequestError { kind, offset }
    }

    /// What was wrong.
    pub fn kind(&self) -> &RequestErrorKind {
        &self.kind
    }

    /// Byte offset, from the start of the buffer, where the problem was found.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The status code the client gets.
    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// Whether the connection must close after the response. A rejected head leaves the
    /// position of the next request unknown (or untrustworthy), so every rejection closes.
    pub fn closes_connection(&self) -> bool {
        true
    }
}

pub(crate) fn describe_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("0x{b:02x} ('{}')", b as char)
    } else if b == b' ' {
        "0x20 (space)".to_string()
    } else {
        format!("0x{b:02x}")
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use RequestErrorKind::*;
        let at = self.offset;
        match &self.kind {
            MethodNotToken { byte } => write!(
                f,
                "invalid byte {} in the method at offset {at}: a method is a token",
                describe_byte(*byte)
            ),
            MissingRequestTarget => {
                write!(f, "the request line at offset {at} has no request-target")
            }
            ExtraWhitespaceInRequestLine => write!(
                f,
                "extra whitespace in the request line at offset {at}: its parts are separated by exactly one space"
            ),
            InvalidTargetByte { byte } => write!(
                f,
                "invalid byte {} in the request-target at offset {at}: controls, space, DEL, '#' and bytes that are not UTF-8 are refused",
                describe_byte(*byte)
            ),
            InvalidPercentEncoding => write!(
                f,
                "invalid percent-encoding in the request-target at offset {at}: '%' must be followed by two hex digits"
            ),
            TargetFormNotAllowedForMethod => write!(
                f,
                "the request-target at offset {at} is in a form this method does not allow (authority-form is only for CONNECT, '*' only for OPTIONS)"
            ),
            InvalidTargetForm => write!(
                f,
                "the request-target at offset {at} must start with '/', or be an absolute http(s) URI"
            ),
            UriTooLong => write!(
                f,
                "the request-target is longer than the limit (found at offset {at})"
            ),
            HeaderSectionTooLarge => write!(
                f,
                "the header section is larger than the limit (found at offset {at})"
            ),
            TooManyHeaders => write!(
                f,
                "more header fields than the limit (the first one over it is at offset {at})"
            ),
            HeaderNameNotToken { byte } => write!(
                f,
                "invalid byte {} in a header field name at offset {at}: a field name is a token",
                describe_byte(*byte)
            ),
            WhitespaceBeforeColon => write!(
                f,
                "whitespace between a header field name and its colon at offset {at}"
            ),
            MissingColon => write!(f, "a header field line without a colon at offset {at}"),
            ObsoleteLineFolding => write!(
                f,
                "obsolete line folding (a header line starting with whitespace) at offset {at}"
            ),
            BareLineFeed => write!(
                f,
                "a bare LF line ending at offset {at}: lines end with CRLF"
            ),
            BareCarriageReturn => {
                write!(f, "a bare CR at offset {at}: CR is only allowed before LF")
            }
            InvalidByteInFieldValue { byte } => write!(
                f,
                "invalid byte {} in a header field value at offset {at}",
                describe_byte(*byte)
            ),
            MissingHost => write!(f, "an HTTP/1.1 request must have a Host header field"),
            MultipleHost => write!(
                f,
                "more than one Host header field (the second is at offset {at})"
            ),
            InvalidHost => write!(f, "the Host at offset {at} is not a valid host[:port]"),
            HostDiffersFromTarget => write!(
                f,
                "the authority of the absolute-form request-target differs from the Host header field (offset {at})"
            ),
            ContentLengthWithTransferEncoding => write!(
                f,
                "both Content-Length and Transfer-Encoding are present (offset {at}): the body length is ambiguous"
            ),
            TransferEncodingOnHttp10 => write!(
                f,
                "Transfer-Encoding is not allowed in an HTTP/1.0 request (offset {at})"
            ),
            ChunkedNotLast => write!(
                f,
                "the final transfer coding must be chunked, applied once (offset {at})"
            ),
            UnsupportedTransferCoding => {
                write!(f, "a transfer coding other than chunked at offset {at}")
            }
            InvalidContentLength => write!(
                f,
                "Content-Length at offset {at} is not a plain decimal number"
            ),
            ConflictingContentLength => {
                write!(f, "several differing Content-Length values (offset {at})")
            }
            UnsupportedVersion => write!(
                f,
                "the HTTP version at offset {at} is not supported: only HTTP/1.0 and HTTP/1.1"
            ),
            MalformedVersion => write!(
                f,
                "malformed HTTP version at offset {at}: expected HTTP/1.1"
            ),
            UnsupportedExpectation => write!(
                f,
                "the Expect header field at offset {at} asks for something other than 100-continue"
            ),
        }
    }
}

impl std::error::Error for RequestError {}

/// A chunked body that broke RFC 9112 §7.1. Answered with 400; the connection closes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkedError {
    kind: ChunkedErrorKind,
    offset: u64,
}

/// What was wrong with a chunked body.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkedErrorKind {
    /// A chunk size with a byte that is not a hex digit, or no digit at all.
    InvalidChunkSize,
    /// A chunk size over 64 bits.
    ChunkSizeOverflow,
    /// A malformed chunk extension.
    InvalidChunkExtension,
    /// A chunk-size line longer than the limit.
    ChunkLineTooLong,
    /// Chunk data not followed by CRLF.
    MissingCrlfAfterData,
    /// LF without CR, or CR without LF.
    BareLineEnding,
    /// A malformed trailer field.
    InvalidTrailer,
    /// A trailer section over the limit.
    TrailerTooLarge,
}

impl ChunkedError {
    pub(crate) fn new(kind: ChunkedErrorKind, offset: u64) -> ChunkedError {
        ChunkedError { kind, offset }
    }
    /// What was wrong.
    pub fn kind(&self) -> ChunkedErrorKind {
        self.kind
    }
    /// Offset from the start of the body.
    pub fn offset(&self) -> u64 {
        self.offset
    }
    /// Always 400.
    pub fn status(&self) -> u16 {
        400
    }
}

impl fmt::Display for ChunkedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ChunkedErrorKind::InvalidChunkSize => "invalid chunk size (hex digits only)",
            ChunkedErrorKind::ChunkSizeOverflow => "chunk size overflows 64 bits",
            ChunkedErrorKind::InvalidChunkExtension => "malformed chunk extension",
            ChunkedErrorKind::ChunkLineTooLong => "chunk-size line too long",
            ChunkedErrorKind::MissingCrlfAfterData => "chunk data not followed by CRLF",
            ChunkedErrorKind::BareLineEnding => "bare CR or LF line ending",
            ChunkedErrorKind::InvalidTrailer => "malformed trailer field",
            ChunkedErrorKind::TrailerTooLarge => "trailer section larger than the limit",
        };
        write!(f, "{what} at body offset {}", self.offset)
    }
}

impl std::error::Error for ChunkedError {}

/// An origin response that is not valid HTTP/1.1. The server answers 502.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseError {
    what: &'static str,
    offset: usize,
}

impl ResponseError {
    pub(crate) fn new(what: &'static str, offset: usize) -> ResponseError {
        ResponseError { what, offset }
    }
    /// What was wrong, as a short phrase.
    pub fn kind(&self) -> &'static str {
        self.what
    }
    /// Byte offset in the response.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.what, self.offset)
    }
}

impl std::error::Error for ResponseError {}

/// A Host or authority that is not valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorityError(pub(crate) &'static str);

impl fmt::Display for AuthorityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for AuthorityError {}
