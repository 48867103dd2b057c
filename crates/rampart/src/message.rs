//! What every layer says about a request's answer: the client's protocol, the ray id, and the
//! typed response that drivers write natively (HTTP/1.1 bytes or HTTP/2 frames).
//!
//! This is the ground floor of the server crate: it imports nothing from the modules above it.
//!
//! A [`ResponseHead`] is a status and its fields. Fields come from two places: the origin's
//! head, relayed as received but for what a proxy must not pass on (hop-by-hop fields, the
//! origin's own framing, a ray id), and the fields rampart adds. The origin's head is kept as
//! parsed and filtered as it is written, so relaying a response copies none of its fields.

use std::future::Future;
use std::time::SystemTime;

use bytes::Bytes;
use http::HeaderName;
use smallvec::SmallVec;

/// Which protocol a request arrived over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
    /// HTTP/2 (over TLS with ALPN `h2`, or cleartext with prior knowledge).
    Http2,
}

impl Protocol {
    /// As logged in ClientRequestProtocol.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http10 => "HTTP/1.0",
            Protocol::Http11 => "HTTP/1.1",
            Protocol::Http2 => "HTTP/2",
        }
    }

    /// The protocol as a `Via` field names it (RFC 9110 §7.6.3).
    pub fn via(self) -> &'static [u8] {
        match self {
            Protocol::Http10 => b"1.0 rampart",
            Protocol::Http11 => b"1.1 rampart",
            Protocol::Http2 => b"2 rampart",
        }
    }
}

/// The response header that carries the ray id, on every response (generated or proxied), and
/// on the request sent to the origin.
pub const RAY_ID_HEADER: &str = "rampart-ray";

/// A ray id: a unique, random id per request, sent in the [`RAY_ID_HEADER`] and logged as RayID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RayId([u8; 16]);

impl RayId {
    /// The ray id made of `n`'s 16 hex digits.
    pub fn from_u64(n: u64) -> RayId {
        let mut out = [0u8; 16];
        for (i, pair) in out.chunks_exact_mut(2).enumerate() {
            let byte = (n >> (56 - 8 * i)) as u8;
            pair[0] = b"0123456789abcdef"[usize::from(byte >> 4)];
            pair[1] = b"0123456789abcdef"[usize::from(byte & 0xf)];
        }
        RayId(out)
    }

    /// A fresh random ray id.
    pub fn generate() -> RayId {
        RayId::from_u64(fastrand::u64(..))
    }

    /// The 16 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        // Always ASCII hex digits.
        std::str::from_utf8(&self.0).unwrap_or("0000000000000000")
    }

    /// The 16 lowercase hex digits as bytes, for writing into a head.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The fields of an origin's response head, as received.
#[derive(Debug)]
pub enum OriginFields {
    /// An HTTP/1.1 origin's parsed head (its hop-by-hop fields are left out when relayed).
    Http1(rampart_http::ResponseHead),
    /// An HTTP/2 origin's fields (h2 has refused connection-specific ones already).
    Http2(http::HeaderMap),
    /// A stored response's fields (filtered when it was stored).
    Stored(std::sync::Arc<rampart_cache::object::Object>),
}

/// A response head as rampart sends it: status, reason, fields, and the Content-Length that
/// describes its body. Framing (chunked, DATA frames) is the driver's.
#[derive(Debug)]
pub struct ResponseHead {
    status: u16,
    origin: Option<OriginFields>,
    /// Origin fields not to relay, beyond those a proxy never relays.
    removed: SmallVec<[HeaderName; 2]>,
    /// 101 Switching Protocols to an upgrade: the origin's Upgrade and Connection go through.
    upgrade: bool,
    /// Fields rampart adds, after the origin's.
    added: Vec<(HeaderName, Bytes)>,
    /// The ray id, sent last (every response carries one but the SNI-mismatch answers).
    ray_id: Option<RayId>,
    /// The Content-Length to send: the body's length, or for HEAD and 304 the length of the
    /// body not sent. `None`: no Content-Length (streamed, or 204 and 1xx).
    pub content_length: Option<u64>,
    /// Close the connection after this response (HTTP/1.1 only; HTTP/2 has no such thing).
    pub close: bool,
}

impl ResponseHead {
    /// A head of rampart's own with `status` and no fields yet.
    pub fn new(status: u16) -> ResponseHead {
        ResponseHead {
            status,
            origin: None,
            removed: SmallVec::new(),
            upgrade: false,
            added: Vec::new(),
            ray_id: None,
            content_length: None,
            close: false,
        }
    }

    /// A head relaying an origin's `status` and `fields`.
    pub fn relayed(status: u16, fields: OriginFields) -> ResponseHead {
        ResponseHead {
            origin: Some(fields),
            ..ResponseHead::new(status)
        }
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase: an HTTP/1.1 origin's byte for byte (obs-text included), else the
    /// canonical one.
    pub fn reason(&self) -> &[u8] {
        match &self.origin {
            Some(OriginFields::Http1(h)) => h.reason_bytes(),
            _ => rampart_http::canonical_reason(self.status).as_bytes(),
        }
    }

    /// The origin's fields, if this head relays an origin's.
    pub fn origin(&self) -> Option<&OriginFields> {
        self.origin.as_ref()
    }

    /// Marks a 101 that switches the connection to the protocol the client asked for: the
    /// origin's `Upgrade` and `Connection` fields are relayed.
    pub fn set_upgrade(&mut self) {
        self.upgrade = true;
    }

    /// Whether this is a 101 that switches protocols.
    pub fn is_upgrade(&self) -> bool {
        self.upgrade
    }

    /// Adds a field after the others.
    pub fn append(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.added.push((name, value.into()));
    }

    /// The fields rampart adds, in order: after the origin's, before the ray id.
    pub fn added(&self) -> &[(HeaderName, Bytes)] {
        &self.added
    }

    /// The ray id sent in the last field, if any.
    pub fn ray_id(&self) -> Option<&RayId> {
        self.ray_id.as_ref()
    }

    /// Sends `ray_id` in the [`RAY_ID_HEADER`] field, after every other field.
    pub fn set_ray_id(&mut self, ray_id: RayId) {
        self.ray_id = Some(ray_id);
    }

    /// Leaves the origin's fields named `name` out.
    pub fn remove_origin(&mut self, name: HeaderName) {
        self.removed.push(name);
    }

    /// Leaves every field named `name` out: the origin's, and any rampart added so far.
    pub fn remove(&mut self, name: &HeaderName) {
        self.added.retain(|(n, _)| n != name);
        if self.origin.is_some() {
            self.removed.push(name.clone());
        }
    }

    /// Whether a field named `name` will be sent.
    pub fn contains(&self, name: &str) -> bool {
        self.fields()
            .any(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
    }

    /// The value of the first field named `name` that will be sent.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// Whether an origin field named `name` is relayed; `listed` says whether the origin's
    /// Connection field names it (which makes it hop-by-hop, RFC 9110 §7.6.1).
    fn relays(&self, name: &[u8], listed: impl Fn(&[u8]) -> bool) -> bool {
        // Content-Length is rampart's own (the origin's may be a list, or be hop-by-hop by its
        // Connection field, RFC 9110 §8.6), and so is the ray id. The names never relayed
        // have these lengths: a field of another length is looked at no further here.
        let fixed = matches!(name.len(), 2 | 7 | 10 | 11 | 14 | 16 | 17)
            && (rampart_http::is_standard_hop_by_hop(name)
                || name.eq_ignore_ascii_case(b"content-length")
                || name.eq_ignore_ascii_case(RAY_ID_HEADER.as_bytes()));
        if fixed {
            return self.upgrade
                && (name.eq_ignore_ascii_case(b"upgrade")
                    || name.eq_ignore_ascii_case(b"connection"));
        }
        !(listed(name)
            || self
                .removed
                .iter()
                .any(|r| name.eq_ignore_ascii_case(r.as_str().as_bytes())))
    }

    /// Every field to send, in order: the origin's that are relayed, then rampart's own.
    /// Content-Length is not among them (see [`ResponseHead::content_length`]).
    pub fn fields(&self) -> Fields<'_> {
        let origin = match &self.origin {
            Some(OriginFields::Http1(h)) => Origin::Http1(h, h.headers().raw()),
            Some(OriginFields::Http2(m)) => Origin::Http2(m.iter()),
            Some(OriginFields::Stored(o)) => Origin::Stored(o.fields.iter()),
            None => Origin::Done,
        };
        Fields {
            head: self,
            origin,
            added: self.added.iter(),
            ray_id: self.ray_id.as_ref(),
        }
    }

    /// Calls `f` with every field to send, in the order of [`ResponseHead::fields`] (a loop
    /// of the caller's, for the drivers that write every field).
    pub fn for_each_field<'a>(&'a self, mut f: impl FnMut(&'a [u8], &'a [u8])) {
        self.for_each_origin_field(&mut f);
        for (n, v) in &self.added {
            f(n.as_str().as_bytes(), v);
        }
        if let Some(r) = &self.ray_id {
            f(RAY_ID_HEADER.as_bytes(), r.as_bytes());
        }
    }

    /// Calls `f` with every origin field that is relayed, in order (not rampart's own: what a
    /// cache stores of a response).
    pub fn for_each_origin_field<'a>(&'a self, mut f: impl FnMut(&'a [u8], &'a [u8])) {
        match &self.origin {
            Some(OriginFields::Http1(h)) => {
                for (n, v) in h.headers().raw() {
                    if self.relays(n, |n| h.connection_has_token(n)) {
                        f(n, v);
                    }
                }
            }
            Some(OriginFields::Http2(m)) => {
                for (n, v) in m {
                    if self.relays(n.as_str().as_bytes(), |_| false) {
                        f(n.as_str().as_bytes(), v.as_bytes());
                    }
                }
            }
            Some(OriginFields::Stored(o)) => {
                for (n, v) in o.fields.iter() {
                    if self.relays(n, |_| false) {
                        f(n, v);
                    }
                }
            }
            None => {}
        }
    }

    /// Whether the origin sent a Date field.
    pub fn origin_sent_date(&self) -> bool {
        match &self.origin {
            Some(OriginFields::Http1(h)) => h.has_date(),
            Some(OriginFields::Http2(m)) => m.contains_key(http::header::DATE),
            Some(OriginFields::Stored(o)) => o.field("date").is_some(),
            None => false,
        }
    }
}

/// The fields of a [`ResponseHead`] to send, in order.
pub struct Fields<'a> {
    head: &'a ResponseHead,
    origin: Origin<'a>,
    added: std::slice::Iter<'a, (HeaderName, Bytes)>,
    ray_id: Option<&'a RayId>,
}

enum Origin<'a> {
    Http1(&'a rampart_http::ResponseHead, rampart_http::RawHeaders<'a>),
    Http2(http::header::Iter<'a, http::HeaderValue>),
    Stored(rampart_cache::object::FieldsIter<'a>),
    Done,
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match &mut self.origin {
                Origin::Http1(h, fields) => match fields.next() {
                    Some((n, v)) if self.head.relays(n, |n| h.connection_has_token(n)) => {
                        return Some((n, v));
                    }
                    Some(_) => {}
                    None => self.origin = Origin::Done,
                },
                Origin::Http2(fields) => match fields.next() {
                    Some((n, v)) if self.head.relays(n.as_str().as_bytes(), |_| false) => {
                        return Some((n.as_str().as_bytes(), v.as_bytes()));
                    }
                    Some(_) => {}
                    None => self.origin = Origin::Done,
                },
                Origin::Stored(fields) => match fields.next() {
                    Some((n, v)) if self.head.relays(n, |_| false) => return Some((n, v)),
                    Some(_) => {}
                    None => self.origin = Origin::Done,
                },
                Origin::Done => {
                    return match self.added.next() {
                        Some((n, v)) => Some((n.as_str().as_bytes(), v.as_ref())),
                        None => self
                            .ray_id
                            .take()
                            .map(|r| (RAY_ID_HEADER.as_bytes(), r.as_bytes())),
                    };
                }
            }
        }
    }
}

/// The fields of a raw trailer section (`name: value` lines) that may be relayed: not the
/// ones that frame, route or authenticate a message, which a sender must not put in trailers
/// (RFC 9110 §6.5.1), and not hop-by-hop ones.
pub fn relayed_trailers(raw: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    raw.split(|&b| b == b'\n').filter_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        let forbidden = rampart_http::is_standard_hop_by_hop(name)
            || [
                &b"content-length"[..],
                b"host",
                b"authorization",
                b"content-type",
                b"content-encoding",
                b"content-range",
                b"set-cookie",
            ]
            .iter()
            .any(|f| name.eq_ignore_ascii_case(f));
        (!name.is_empty() && !forbidden).then_some((name, value))
    })
}

/// The `date` value for now (RFC 9110 §6.6.1), formatted once a second per thread.
pub fn http_date_now() -> Bytes {
    thread_local! {
        static LAST: std::cell::RefCell<(u64, Bytes)> =
            const { std::cell::RefCell::new((u64::MAX, Bytes::new())) };
    }
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != secs {
            *last = (secs, Bytes::from(httpdate::fmt_http_date(now)));
        }
        last.1.clone()
    })
}

/// How a response body is framed, as rampart sends it on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// No body (HEAD, 204, 304, 1xx; or an answer to HEAD).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Until the stream ends (chunked or close-delimited at the origin, or HTTP/2).
    Stream,
}

/// A piece of a streamed body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece<'a> {
    /// The bytes (possibly none).
    pub data: &'a [u8],
    /// Whether this is the end of the body.
    pub last: bool,
    /// With the last piece: the trailer section that followed the body (raw field lines,
    /// each ending in CRLF), when there was one.
    pub trailers: Option<&'a [u8]>,
}

impl Piece<'_> {
    /// The end of a body, with no more data.
    pub const END: Piece<'static> = Piece {
        data: &[],
        last: true,
        trailers: None,
    };
}

/// A body that arrives in pieces (an origin's response body, later a cached object's).
pub trait BodyStream {
    /// The next piece of the body, borrowed until the next call. Once a piece with `last`
    /// has been returned, every call returns [`Piece::END`]. An error means the body was cut
    /// short: what was sent of it cannot be taken back.
    fn next_piece(&mut self) -> impl Future<Output = Result<Piece<'_>, BodyCut>>;
}

/// A body that ended before its framing said it would, or stalled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyCut(pub String);

/// A stream that never yields: the body type of responses held whole in memory.
#[derive(Debug)]
pub enum NoStream {}

impl BodyStream for NoStream {
    async fn next_piece(&mut self) -> Result<Piece<'_>, BodyCut> {
        match *self {}
    }
}

/// A response body: whole, or streamed.
#[derive(Debug)]
pub enum Body<S = NoStream> {
    /// The whole body (possibly empty).
    Full(Bytes),
    /// Pieces as they arrive.
    Stream(S),
}

/// An owned response: a head and its body.
#[derive(Debug)]
pub struct Response<S = NoStream> {
    /// Status and fields.
    pub head: ResponseHead,
    /// The body.
    pub body: Body<S>,
}

impl Response {
    /// A response of rampart's own with a whole body of `content_type`.
    pub fn full(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Response {
        let body = body.into();
        let mut head = ResponseHead::new(status);
        head.append(
            http::header::CONTENT_TYPE,
            Bytes::from_static(content_type.as_bytes()),
        );
        head.content_length = Some(body.len() as u64);
        Response {
            head,
            body: Body::Full(body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_http::{Limits, Parse};

    fn origin(raw: &str) -> rampart_http::ResponseHead {
        match rampart_http::parse_response_head(raw.as_bytes(), &Limits::default()) {
            Ok(Parse::Complete((h, _))) => h,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn relayed_fields_leave_out_hop_by_hop_framing_and_ray_id_and_keep_the_rest_in_order() {
        let h = origin(
            "HTTP/1.1 200 OK\r\nConnection: x-hop\r\nX-Hop: 1\r\nContent-Length: 3\r\nKeep-Alive: t=1\r\nB: 2\r\nrampart-ray: forged\r\nA: 1\r\n\r\n",
        );
        let mut head = ResponseHead::relayed(200, OriginFields::Http1(h));
        head.set_ray_id(RayId::from_u64(0x0123_4567_89ab_cdef));
        let fields: Vec<_> = head.fields().collect();
        assert_eq!(
            fields,
            [
                (&b"B"[..], &b"2"[..]),
                (b"A", b"1"),
                (b"rampart-ray", b"0123456789abcdef")
            ]
        );
        assert_eq!(head.reason(), b"OK");
    }

    #[test]
    fn an_upgrade_relays_upgrade_and_connection() {
        let h = origin(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        );
        let mut head = ResponseHead::relayed(101, OriginFields::Http1(h));
        assert!(!head.contains("upgrade"));
        head.set_upgrade();
        assert_eq!(head.get("upgrade"), Some(&b"websocket"[..]));
        assert_eq!(head.get("connection"), Some(&b"Upgrade"[..]));
    }

    #[test]
    fn removed_origin_fields_are_not_relayed() {
        let h = origin(
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nETag: \"x\"\r\nAllow: GET\r\n\r\n",
        );
        let mut head = ResponseHead::relayed(404, OriginFields::Http1(h));
        head.remove_origin(http::header::CONTENT_TYPE);
        head.remove_origin(http::header::ETAG);
        assert_eq!(
            head.fields().collect::<Vec<_>>(),
            [(&b"Allow"[..], &b"GET"[..])]
        );
    }

    #[test]
    fn ray_ids_are_sixteen_hex_digits() {
        assert_eq!(RayId::from_u64(0xabc).as_str(), "0000000000000abc");
        assert_eq!(RayId::generate().as_bytes().len(), 16);
    }
}
