//! Request heads: the request line, the field lines, and the checks httparse does not make.

use std::borrow::Cow;

use crate::chars::{first_non_token, is_field_value_byte, is_tchar};
use crate::error::{RequestError, RequestErrorKind as K};
use crate::fields::{
    self, FieldSpan, FieldSpans, FieldsError, HeadBytes, Headers, LineEnds, Tokens, has_token,
};
use crate::framing::{self, BodyFraming};
use crate::target::{Authority, HostAt, TargetForm, TargetParts, parse_target};
use crate::{Limits, Parse, Version};

/// Empty lines accepted before a request line (RFC 9112 §2.2: a server SHOULD ignore at least one).
pub const MAX_LEADING_EMPTY_LINES: usize = 4;

/// A validated request head. Holds one copy of the head's bytes (and the index of its
/// fields, in the same allocation) and the method and target as text; accessors borrow
/// from them.
#[derive(Clone, Debug)]
pub struct RequestHead {
    data: HeadBytes,
    /// The method followed by the request-target, as text: validated once here, so the
    /// accessors the phases call many times per request borrow without checking again.
    line: Box<str>,
    /// Where the method ends in `line`.
    method_len: u32,
    parts: TargetParts,
    version: Version,
    host: Option<HostAt>,
    body: BodyFraming,
    expect_continue: bool,
    connection: Tokens,
}

/// Field names and methods are tokens, which are ASCII, so this never fails.
fn as_str(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

fn slice(buf: &[u8], r: (u32, u32)) -> &[u8] {
    &buf[r.0 as usize..r.1 as usize]
}

impl RequestHead {
    /// The method, e.g. `GET`.
    pub fn method(&self) -> &str {
        &self.line[..self.method_len as usize]
    }
    /// Whether the method is HEAD.
    pub fn is_head(&self) -> bool {
        self.method() == "HEAD"
    }
    /// Whether the method is idempotent (RFC 9110 §9.2.2).
    pub fn is_idempotent(&self) -> bool {
        matches!(
            self.method(),
            "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
        )
    }
    /// The request-target exactly as sent.
    pub fn target(&self) -> &str {
        &self.line[self.method_len as usize..]
    }
    /// The form of the request-target.
    pub fn target_form(&self) -> TargetForm {
        self.parts.form
    }
    fn target_bytes(&self) -> &str {
        self.target()
    }
    /// The path: for absolute-form the part after the authority (`/` when empty), `*` for
    /// asterisk-form, empty for authority-form.
    pub fn path(&self) -> &str {
        let t = self.target_bytes();
        match self.parts.form {
            TargetForm::Asterisk => "*",
            TargetForm::Authority => "",
            _ => {
                let end = self.parts.query.unwrap_or(t.len());
                let p = &t[self.parts.path_start..end];
                if p.is_empty() { "/" } else { p }
            }
        }
    }
    /// The query, without `?`.
    pub fn query(&self) -> Option<&str> {
        self.parts.query.map(|q| &self.target_bytes()[q + 1..])
    }
    /// The request-target to send to an origin: origin-form (`/path?query`). Borrowed from
    /// the head, except for absolute-form with an empty path and a query
    /// (`http://a.test?q`), which becomes `/?q` (RFC 9112 §3.2.1: an empty path is sent as
    /// `/`). OPTIONS to an absolute-form target with an empty path and no query asks about
    /// the server as a whole, so it becomes `*` (RFC 9112 §3.2.4).
    pub fn path_and_query(&self) -> Cow<'_, str> {
        let t = self.target_bytes();
        match self.parts.form {
            TargetForm::Absolute => {
                let rest = &t[self.parts.path_start..];
                if rest.is_empty() && self.method() == "OPTIONS" {
                    Cow::Borrowed("*")
                } else if rest.is_empty() {
                    Cow::Borrowed("/")
                } else if rest.starts_with('?') {
                    Cow::Owned(format!("/{rest}"))
                } else {
                    Cow::Borrowed(rest)
                }
            }
            _ => Cow::Borrowed(t),
        }
    }
    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }
    /// The authority of an absolute-form target if there is one, else the Host field.
    /// `None` only for HTTP/1.0 without Host.
    pub fn host(&self) -> Option<Authority<'_>> {
        self.host.as_ref().map(|h| h.view(self.data.bytes()))
    }
    /// The host name of [`RequestHead::host`] (lowercase, without port or trailing dot).
    pub fn host_name(&self) -> Option<&str> {
        self.host.as_ref().map(|h| h.name(self.data.bytes()))
    }
    /// Every field, in order, Host included.
    pub fn headers(&self) -> Headers<'_> {
        self.data.fields()
    }
    /// The first field named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers().get(name)
    }
    /// How many fields the head has.
    pub fn header_count(&self) -> usize {
        self.data.field_count()
    }
    /// How the body is framed.
    pub fn body(&self) -> BodyFraming {
        self.body
    }
    /// Whether the client sent `Expect: 100-continue` (ignored for HTTP/1.0, RFC 9110 §10.1.1).
    pub fn expect_continue(&self) -> bool {
        self.expect_continue
    }
    /// Whether the connection may stay open after this request.
    pub fn keep_alive(&self) -> bool {
        match self.version {
            Version::Http11 => !self.connection_has_token("close"),
            Version::Http10 => {
                self.connection_has_token("keep-alive") && !self.connection_has_token("close")
            }
        }
    }
    /// The Upgrade value when the client asks to upgrade (Connection: upgrade, HTTP/1.1).
    pub fn upgrade(&self) -> Option<&[u8]> {
        if self.version == Version::Http11 && self.connection_has_token("upgrade") {
            self.header("upgrade")
        } else {
            None
        }
    }
    /// Whether the Connection field lists `token`.
    pub fn connection_has_token(&self, token: impl AsRef<[u8]>) -> bool {
        has_token(self.data.bytes(), &self.connection, token.as_ref())
    }
    /// Whether a field is hop-by-hop (RFC 9110 §7.6.1): never forwarded as is.
    pub fn is_hop_by_hop(&self, name: impl AsRef<[u8]>) -> bool {
        let name = name.as_ref();
        framing::is_standard_hop_by_hop(name) || self.connection_has_token(name)
    }
}

/// Parses a request head from the start of `buf`. See the crate docs.
pub fn parse_request_head(
    buf: &[u8],
    limits: &Limits,
) -> Result<Parse<(RequestHead, usize)>, RequestError> {
    // RFC 9112 §2.2: ignore a few empty lines before the request line.
    let mut start = 0;
    for _ in 0..MAX_LEADING_EMPTY_LINES {
        if buf[start..].starts_with(b"\r\n") {
            start += 2;
        } else {
            break;
        }
    }
    if buf.len() - start < 2 && buf[start..].iter().all(|&b| b == b'\r') {
        return Ok(Parse::Partial);
    }
    // The request line ends at the first CR or LF, which must be CRLF.
    let Some(i) = memchr::memchr2(b'\r', b'\n', &buf[start..]) else {
        check_partial_limits(buf, start, limits)?;
        return Ok(Parse::Partial);
    };
    let line_end = start + i;
    if buf[line_end] == b'\n' {
        return Err(RequestError::new(K::BareLineFeed, line_end));
    }
    match buf.get(line_end + 1) {
        None => {
            check_partial_limits(buf, start, limits)?;
            return Ok(Parse::Partial);
        }
        Some(b'\n') => {}
        Some(_) => return Err(RequestError::new(K::BareCarriageReturn, line_end)),
    }
    if line_end == start {
        // An empty line where the request line should be: more than the tolerated number.
        return Err(RequestError::new(K::MissingRequestTarget, start));
    }
    let line = &buf[start..line_end];
    let (method, target, version) = request_line(line, start, limits)?;
    let parts = parse_target(&line[target.0..target.1]).map_err(|(k, off)| {
        // A tab is not a target byte; inside the target it is whitespace in the wrong place.
        match line[target.0..target.1].iter().position(|&b| b == b'\t') {
            Some(i) => RequestError::new(K::ExtraWhitespaceInRequestLine, start + target.0 + i),
            None => RequestError::new(k, start + target.0 + off),
        }
    })?;
    // Form against method (RFC 9112 §3.2.3, §3.2.4).
    let m = &line[method.0..method.1];
    let form_ok = match parts.form {
        TargetForm::Authority => m == b"CONNECT",
        TargetForm::Asterisk => m == b"OPTIONS",
        _ => m != b"CONNECT",
    };
    if !form_ok {
        return Err(RequestError::new(
            K::TargetFormNotAllowedForMethod,
            start + target.0,
        ));
    }
    let fields_start = line_end + 2;
    let mut fields = FieldSpans::new();
    let Some(consumed) = tokenize_fields(&buf[fields_start..], fields_start, limits, &mut fields)?
    else {
        check_partial_limits(buf, start, limits)?;
        return Ok(Parse::Partial);
    };
    let end = fields_start + consumed;
    if end - start > limits.max_header_bytes {
        return Err(RequestError::new(
            K::HeaderSectionTooLarge,
            start + limits.max_header_bytes,
        ));
    }
    let head = &buf[..end];
    let method = ((start + method.0) as u32, (start + method.1) as u32);
    let target = ((start + target.0) as u32, (start + target.1) as u32);
    let meaning = semantics(head, &fields, version, target, &parts)?;
    // The method is a token and the target's bytes were checked (ASCII, or valid UTF-8 for
    // the raw bytes browsers send), so neither fails here.
    let mut line = String::with_capacity((method.1 - method.0 + target.1 - target.0) as usize);
    line.push_str(as_str(slice(head, method)));
    line.push_str(as_str(slice(head, target)));
    Ok(Parse::Complete((
        RequestHead {
            data: HeadBytes::new(head, &fields),
            method_len: method.1 - method.0,
            line: line.into_boxed_str(),
            parts,
            version,
            host: meaning.host,
            body: meaning.body,
            expect_continue: meaning.expect_continue,
            connection: meaning.connection,
        },
        end,
    )))
}

/// On an incomplete head, reject as soon as a limit is certainly exceeded.
fn check_partial_limits(buf: &[u8], start: usize, limits: &Limits) -> Result<(), RequestError> {
    let line_end = memchr::memchr(b'\r', &buf[start..]).map(|i| start + i);
    if line_end.is_none()
        && let Some(sp) = memchr::memchr(b' ', &buf[start..])
    {
        let target_start = start + sp + 1;
        let target_len =
            memchr::memchr(b' ', &buf[target_start..]).unwrap_or(buf.len() - target_start);
        if target_len > limits.max_uri_bytes {
            return Err(RequestError::new(
                K::UriTooLong,
                target_start + limits.max_uri_bytes,
            ));
        }
    }
    if buf.len() - start > limits.max_header_bytes {
        return Err(RequestError::new(
            K::HeaderSectionTooLarge,
            start + limits.max_header_bytes,
        ));
    }
    Ok(())
}

type Range = (usize, usize);

/// method SP request-target SP HTTP-version (RFC 9112 §3). Offsets are within `line`.
fn request_line(
    line: &[u8],
    base: usize,
    limits: &Limits,
) -> Result<(Range, Range, Version), RequestError> {
    let sp1 = match line.iter().position(|&b| !is_tchar(b)) {
        Some(i) if line[i] == b' ' && i > 0 => i,
        Some(0) if line[0] == b' ' || line[0] == b'\t' => {
            return Err(RequestError::new(K::ExtraWhitespaceInRequestLine, base));
        }
        Some(i) if line[i] == b'\t' => {
            return Err(RequestError::new(K::ExtraWhitespaceInRequestLine, base + i));
        }
        Some(i) => {
            return Err(RequestError::new(
                K::MethodNotToken { byte: line[i] },
                base + i,
            ));
        }
        None => {
            return Err(RequestError::new(
                K::MissingRequestTarget,
                base + line.len(),
            ));
        }
    };
    let t0 = sp1 + 1;
    match line.get(t0) {
        None => return Err(RequestError::new(K::MissingRequestTarget, base + t0)),
        Some(b' ' | b'\t') => {
            return Err(RequestError::new(
                K::ExtraWhitespaceInRequestLine,
                base + t0,
            ));
        }
        _ => {}
    }
    // The target ends at the last space; a space inside it is a target error, two spaces a
    // whitespace error.
    let sp2 = match line.iter().rposition(|&b| b == b' ') {
        Some(i) if i > t0 => i,
        _ => {
            if let Some(i) = line[t0..].iter().position(|&b| b == b'\t') {
                return Err(RequestError::new(
                    K::ExtraWhitespaceInRequestLine,
                    base + t0 + i,
                ));
            }
            if line.len() - t0 > limits.max_uri_bytes {
                return Err(RequestError::new(
                    K::UriTooLong,
                    base + t0 + limits.max_uri_bytes,
                ));
            }
            return Err(RequestError::new(K::MalformedVersion, base + line.len()));
        }
    };
    if line[sp2 - 1] == b' ' || line[sp2 - 1] == b'\t' {
        return Err(RequestError::new(
            K::ExtraWhitespaceInRequestLine,
            base + sp2 - 1,
        ));
    }
    if sp2 - t0 > limits.max_uri_bytes {
        return Err(RequestError::new(
            K::UriTooLong,
            base + t0 + limits.max_uri_bytes,
        ));
    }
    let v = &line[sp2 + 1..];
    let version = parse_version(v).map_err(|k| RequestError::new(k, base + sp2 + 1))?;
    Ok(((0, sp1), (t0, sp2), version))
}

fn parse_version(v: &[u8]) -> Result<Version, K> {
    match v {
        b"HTTP/1.1" => Ok(Version::Http11),
        b"HTTP/1.0" => Ok(Version::Http10),
        // RFC 9110 §2.5: a higher minor version of a major version we implement is handled
        // as the highest minor version we implement.
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'2'..=b'9'] => Ok(Version::Http11),
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Err(K::UnsupportedVersion)
        }
        [b' ' | b'\t', ..] => Err(K::ExtraWhitespaceInRequestLine),
        _ => Err(K::MalformedVersion),
    }
}

/// Tokenises the field lines (RFC 9112 §5) with CRLF line ends ([`fields::tokenize`]).
/// Returns the bytes consumed, or `None` when the section is incomplete and nothing seen so
/// far is invalid. Errors name the exact rule broken ([`diagnose_fields`]).
///
/// It accepts exactly what httparse accepts, less bare LF line endings (tested against
/// httparse in `tokenizer_agrees_with_httparse`), and writes the spans straight into `out`:
/// no slot array to initialise, no second pass to find offsets and check line endings.
fn tokenize_fields(
    fields: &[u8],
    base: usize,
    limits: &Limits,
    out: &mut FieldSpans,
) -> Result<Option<usize>, RequestError> {
    fields::tokenize(fields, base, limits.max_headers, LineEnds::CrLf, out).map_err(|e| match e {
        FieldsError::Malformed(..) => diagnose_fields(fields, base),
        FieldsError::BareLineFeed(at) => RequestError::new(K::BareLineFeed, base + at),
        FieldsError::TooMany(at) => RequestError::new(K::TooManyHeaders, base + at),
    })
}

/// httparse said no: walk the lines to name the rule and the offset.
fn diagnose_fields(fields: &[u8], base: usize) -> RequestError {
    let mut pos = 0;
    while pos < fields.len() {
        let end = memchr::memchr2(b'\r', b'\n', &fields[pos..]).map_or(fields.len(), |i| pos + i);
        match (fields.get(end), fields.get(end + 1)) {
            (Some(b'\n'), _) => return RequestError::new(K::BareLineFeed, base + end),
            (Some(b'\r'), Some(b)) if *b != b'\n' => {
                return RequestError::new(K::BareCarriageReturn, base + end);
            }
            _ => {}
        }
        let line = &fields[pos..end];
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return RequestError::new(K::ObsoleteLineFolding, base + pos);
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            return match first_non_token(line) {
                Some(i) => {
                    RequestError::new(K::HeaderNameNotToken { byte: line[i] }, base + pos + i)
                }
                None => RequestError::new(K::MissingColon, base + end),
            };
        };
        let name = &line[..colon];
        if let Some(i) = first_non_token(name) {
            let b = name[i];
            if (b == b' ' || b == b'\t') && name[i..].iter().all(|&c| c == b' ' || c == b'\t') {
                return RequestError::new(K::WhitespaceBeforeColon, base + pos + i);
            }
            return RequestError::new(K::HeaderNameNotToken { byte: b }, base + pos + i);
        }
        if name.is_empty() {
            return RequestError::new(K::HeaderNameNotToken { byte: b':' }, base + pos);
        }
        if let Some(i) = line[colon + 1..]
            .iter()
            .position(|&b| !is_field_value_byte(b))
        {
            return RequestError::new(
                K::InvalidByteInFieldValue {
                    byte: line[colon + 1 + i],
                },
                base + pos + colon + 1 + i,
            );
        }
        pos = end + 2;
    }
    RequestError::new(K::MissingColon, base + pos)
}

/// What the fields of a request head mean for the rest of the exchange.
struct Meaning {
    host: Option<HostAt>,
    body: BodyFraming,
    expect_continue: bool,
    connection: Tokens,
}

/// Host, framing, Expect and Connection: the semantic checks on the fields of `buf` (the
/// head), whose target is at `target` and of parts `parts`.
fn semantics(
    buf: &[u8],
    fields: &[FieldSpan],
    version: Version,
    target: (u32, u32),
    parts: &TargetParts,
) -> Result<Meaning, RequestError> {
    let mut host = None;
    let mut connection = Tokens::new();
    // Where the Host field's value starts, once one is parsed into `host`.
    let mut host_at: Option<usize> = None;
    let mut saw_host = false;
    let mut cl: Option<(u64, usize)> = None;
    let mut te: Vec<(usize, usize)> = Vec::new();
    let mut expect = false;
    for &((ns, ne), (vs, ve)) in fields {
        let name = &buf[ns as usize..ne as usize];
        let value = &buf[vs as usize..ve as usize];
        let at = ns as usize;
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                if saw_host {
                    return Err(RequestError::new(K::MultipleHost, at));
                }
                saw_host = true;
                if value.is_empty() && version == Version::Http10 {
                    continue;
                }
                host = Some(
                    HostAt::parse(value)
                        .map_err(|_| RequestError::new(K::InvalidHost, vs as usize))?
                        .shifted(vs as usize),
                );
                host_at = Some(vs as usize);
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                let n = framing::parse_content_length(value)
                    .map_err(|k| RequestError::new(k, vs as usize))?;
                match cl {
                    Some((prev, _)) if prev != n => {
                        return Err(RequestError::new(K::ConflictingContentLength, at));
                    }
                    _ => cl = Some((n, at)),
                }
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                te.push((vs as usize, ve as usize))
            }
            6 if name.eq_ignore_ascii_case(b"expect") => {
                if value.eq_ignore_ascii_case(b"100-continue") {
                    expect = true;
                } else {
                    return Err(RequestError::new(K::UnsupportedExpectation, vs as usize));
                }
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for (s, e) in framing::list_elements(value) {
                    connection.push(((vs as usize + s) as u32, (vs as usize + e) as u32));
                }
            }
            _ => {}
        }
    }
    let body_framing = if let Some(&(first_te, _)) = te.first() {
        if version == Version::Http10 {
            return Err(RequestError::new(K::TransferEncodingOnHttp10, first_te));
        }
        if let Some((_, at)) = cl {
            return Err(RequestError::new(K::ContentLengthWithTransferEncoding, at));
        }
        let values: Vec<(&[u8], usize)> = te.iter().map(|&(s, e)| (&buf[s..e], s)).collect();
        framing::check_transfer_encoding(&values)?;
        BodyFraming::Chunked
    } else if let Some((n, _)) = cl {
        BodyFraming::ContentLength(n)
    } else {
        BodyFraming::None
    };
    // The host: from an absolute-form target, which must agree with Host.
    if let Some((s, e)) = parts.authority
        && parts.form == TargetForm::Absolute
    {
        let t0 = target.0 as usize;
        let target_host = HostAt::parse(&buf[t0 + s..t0 + e])
            .map_err(|_| RequestError::new(K::InvalidHost, t0 + s))?
            .shifted(t0 + s);
        if let (Some(field), Some(at)) = (&host, host_at) {
            let (a, f) = (target_host.view(buf), field.view(buf));
            let https = buf[t0..t0 + 5].eq_ignore_ascii_case(b"https");
            let default = if https { 443 } else { 80 };
            if f.host() != a.host() || f.port().unwrap_or(default) != a.port().unwrap_or(default) {
                return Err(RequestError::new(K::HostDiffersFromTarget, at));
            }
        }
        host = Some(target_host);
    }
    // RFC 9112 §3.2: an HTTP/1.1 request without a Host field gets 400, even in absolute-form.
    if !saw_host && version == Version::Http11 {
        return Err(RequestError::new(
            K::MissingHost,
            buf.len().saturating_sub(2),
        ));
    }
    Ok(Meaning {
        host,
        body: body_framing,
        // RFC 9110 §10.1.1: a server MAY ignore 100-continue from HTTP/1.0 clients (and
        // must not send 100 to them).
        expect_continue: expect && version == Version::Http11,
        connection,
    })
}

#[cfg(test)]
mod reference {
    //! The field tokeniser this crate used before its own: httparse, then a pass over its
    //! spans. Kept as the reference the new one is tested against.
    use super::*;

    /// Tokenises the field lines with httparse and checks that every line ends with CRLF (httparse
    /// also accepts bare LF). Returns the bytes consumed, or `None` when the section is incomplete.
    /// On httparse's error, finds the exact rule broken.
    pub(crate) fn tokenize_fields_httparse(
        fields: &[u8],
        base: usize,
        limits: &Limits,
        out: &mut FieldSpans,
    ) -> Result<Option<usize>, RequestError> {
        let mut small = [httparse::EMPTY_HEADER; 32];
        match httparse::parse_headers(fields, &mut small) {
            Err(httparse::Error::TooManyHeaders) => {
                let mut large = vec![httparse::EMPTY_HEADER; limits.max_headers + 1];
                let result = httparse::parse_headers(fields, &mut large);
                collect_fields(fields, base, limits, result, out)
            }
            result => collect_fields(fields, base, limits, result, out),
        }
    }

    type HeadersResult<'b, 'h> = httparse::Result<(usize, &'h [httparse::Header<'b>])>;

    fn collect_fields(
        fields: &[u8],
        base: usize,
        limits: &Limits,
        result: HeadersResult<'_, '_>,
        out: &mut FieldSpans,
    ) -> Result<Option<usize>, RequestError> {
        let (consumed, parsed) = match result {
            Ok(httparse::Status::Complete(done)) => done,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                let off = memchr::memchr_iter(b'\n', fields)
                    .nth(limits.max_headers.saturating_sub(1))
                    .map_or(0, |i| i + 1);
                return Err(RequestError::new(K::TooManyHeaders, base + off));
            }
            Err(_) => return Err(diagnose_fields(fields, base)),
        };
        if parsed.len() > limits.max_headers {
            let off = offset_in(fields, parsed[limits.max_headers].name.as_bytes());
            return Err(RequestError::new(K::TooManyHeaders, base + off));
        }
        // httparse checks value bytes with the class of RFC 9110 §5.5 (field-vchar, SP, HTAB,
        // obs-text) and treats a lone CR as an error; a lone LF it accepts, so check each ending.
        out.reserve(parsed.len());
        for h in parsed {
            let ns = offset_in(fields, h.name.as_bytes());
            let vs = offset_in(fields, h.value);
            let mut e = vs + h.value.len();
            while matches!(fields.get(e), Some(b' ' | b'\t')) {
                e += 1;
            }
            if fields.get(e) != Some(&b'\r') {
                return Err(RequestError::new(K::BareLineFeed, base + e));
            }
            out.push((
                ((base + ns) as u32, (base + ns + h.name.len()) as u32),
                ((base + vs) as u32, (base + vs + h.value.len()) as u32),
            ));
        }
        if consumed < 2 || &fields[consumed - 2..consumed] != b"\r\n" {
            return Err(RequestError::new(K::BareLineFeed, base + consumed - 1));
        }
        Ok(Some(consumed))
    }

    fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
        inner.as_ptr() as usize - outer.as_ptr() as usize
    }

    /// Our tokeniser against httparse's on generated field sections: the same verdict, the
    /// same fields, the same error and offset. The one intended difference: a bare LF line
    /// ending is an error as soon as it is seen, where httparse waits for the rest.
    #[test]
    fn tokenizer_agrees_with_httparse() {
        let limits = Limits {
            max_headers: 1000,
            ..Limits::default()
        };
        let (mut complete, mut errors) = (0, 0);
        // Mostly well-formed lines, with a damaged one now and then.
        let lines: &[&[u8]] = &[b"Name-1:  some value \t\r\n", b"Name-1:  some value \t\r\n"];
        for input in crate::field_sections(0x9e37_79b9_7f4a_7c15, 300_000, lines, &[b"\r\n"]) {
            let mut ours = FieldSpans::new();
            let mut theirs = FieldSpans::new();
            let a = tokenize_fields(&input, 7, &limits, &mut ours);
            let b = tokenize_fields_httparse(&input, 7, &limits, &mut theirs);
            let shown = String::from_utf8_lossy(&input);
            match (&a, &b) {
                (Ok(Some(x)), Ok(Some(y))) => {
                    complete += 1;
                    assert_eq!(x, y, "{shown:?}");
                    let text = |spans: &FieldSpans| -> Vec<(Vec<u8>, Vec<u8>)> {
                        spans
                            .iter()
                            .map(|&((ns, ne), (vs, ve))| {
                                let f =
                                    |s: u32, e: u32| input[s as usize - 7..e as usize - 7].to_vec();
                                (f(ns, ne), f(vs, ve))
                            })
                            .collect()
                    };
                    assert_eq!(text(&ours), text(&theirs), "{shown:?}");
                }
                (Ok(None), Ok(None)) => {}
                (Err(x), Ok(None)) if *x.kind() == K::BareLineFeed => {}
                (Err(x), Err(y)) => {
                    errors += 1;
                    assert_eq!(x, y, "{shown:?}");
                }
                _ => panic!("{shown:?}: ours {a:?}, httparse {b:?}"),
            }
        }
        assert!(
            complete > 10_000 && errors > 10_000,
            "{complete} complete, {errors} errors"
        );
    }
}
