//! What the origin is told: the request as rampart understood it, rebuilt, never relayed.
//!
//! The same rules for an HTTP/1.1 and an HTTP/2 origin: the client's end-to-end fields in
//! their order, less the framing (rampart frames the body itself), `Expect` (rampart answers
//! it) and the forwarding fields rampart sets; then `Via`, `X-Forwarded-For`,
//! `X-Forwarded-Proto`, `Forwarded` and the ray id. `Host` stays in its place for an
//! HTTP/1.1 origin, unless the target was in absolute form (then the target's authority is
//! the Host, RFC 9112 §3.2.2); an HTTP/2 origin gets it as `:authority`.

use std::io::Write as _;

use rampart_http::{Authority, TargetForm};
use smallvec::SmallVec;

use bytes::Bytes;
use http::HeaderName;

use super::OriginRequest;
use crate::config::request::Underscores;
use crate::message::RAY_ID_HEADER;
use crate::text::write_ip;

/// The authority the origin is told: the target's for absolute-form (RFC 9112 §3.2.2: the
/// parser has checked that a Host sent with it agrees), else the client's Host as sent.
pub(super) fn authority(req: &OriginRequest<'_>, out: &mut Vec<u8>) {
    let head = req.head;
    match head.header("host") {
        Some(h) if head.target_form() != TargetForm::Absolute && !h.is_empty() => {
            out.extend_from_slice(h)
        }
        _ => {
            if let Some(a) = head.host() {
                write_authority(out, &a);
            }
        }
    }
}

/// `host[:port]`, with an IPv6 literal in brackets.
fn write_authority(out: &mut Vec<u8>, a: &Authority<'_>) {
    let ipv6 = a.host().contains(':');
    if ipv6 {
        out.push(b'[');
    }
    out.extend_from_slice(a.host().as_bytes());
    if ipv6 {
        out.push(b']');
    }
    if let Some(p) = a.port() {
        let _ = write!(out, ":{p}");
    }
}

/// Whether a client field is never passed on as it is.
fn rewritten(req: &OriginRequest<'_>, name: &[u8]) -> bool {
    req.head.is_hop_by_hop(name)
        || [
            &b"content-length"[..],
            b"expect",
            b"x-forwarded-for",
            b"x-forwarded-proto",
            b"forwarded",
            RAY_ID_HEADER.as_bytes(),
        ]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
        || (name.contains(&b'_') && !underscore_passes(req, name))
}

/// Fields that rampart sets, that origins trust to come from it, or that frame a message:
/// a client must not reach an origin with one of them spelled with `_` for `-`, which CGI,
/// PHP and WSGI read as the same name (`X_Forwarded_For` is their `HTTP_X_FORWARDED_FOR`).
const SPOOFABLE: &[&[u8]] = &[
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"x-forwarded-port",
    b"x-real-ip",
    b"forwarded",
    b"via",
    RAY_ID_HEADER.as_bytes(),
    b"cf-connecting-ip",
    b"true-client-ip",
    b"host",
    b"content-length",
    b"transfer-encoding",
    b"connection",
];

/// Whether a client field whose name has `_` goes to the origin: never when it spells a
/// field of [`SPOOFABLE`] or the trusted client-IP field; otherwise as `underscores_in_headers`
/// says (`reject` was refused before the request got here).
fn underscore_passes(req: &OriginRequest<'_>, name: &[u8]) -> bool {
    let spoofs = SPOOFABLE
        .iter()
        .chain(req.client_ip_header.map(str::as_bytes).as_ref())
        .any(|field| same_with_dashes(name, field));
    !spoofs && req.underscores == Underscores::Pass
}

/// Whether `name` is `field` with `_` read as `-`, ignoring case.
fn same_with_dashes(name: &[u8], field: &[u8]) -> bool {
    name.len() == field.len()
        && name.iter().zip(field).all(|(&a, &b)| {
            let a = if a == b'_' { b'-' } else { a };
            a.eq_ignore_ascii_case(&b)
        })
}

/// Whether the client's Host field goes to an HTTP/1.1 origin in its place.
pub(super) fn host_in_place(req: &OriginRequest<'_>) -> bool {
    req.head.target_form() != TargetForm::Absolute
}

/// Where the forwarded fields go: an HTTP/1.1 head being written, or an HTTP/2 request.
pub(super) trait FieldSink {
    /// A field whose value is at hand.
    fn field(&mut self, name: &[u8], value: &[u8]);
    /// A field whose value `value` writes into the buffer it is given.
    fn built(&mut self, name: &[u8], value: impl Fn(&mut Vec<u8>));
}

/// Gives `sink` every field the origin gets but the framing, in order; the client's Host
/// only when `keep_host`.
pub(super) fn each_field(req: &OriginRequest<'_>, keep_host: bool, sink: &mut impl FieldSink) {
    let head = req.head;
    // Each may come as several lines, which form one list in order (RFC 9110 §5.3).
    let mut xff: SmallVec<[&[u8]; 2]> = SmallVec::new();
    let mut forwarded: SmallVec<[&[u8]; 2]> = SmallVec::new();
    for (name, value) in head.headers().raw() {
        if name.eq_ignore_ascii_case(b"x-forwarded-for") {
            xff.push(value);
        } else if name.eq_ignore_ascii_case(b"forwarded") {
            forwarded.push(value);
        }
        if name.eq_ignore_ascii_case(b"host") {
            if keep_host {
                sink.field(name, value);
            }
        } else if !rewritten(req, name) && req.edits.keeps(name) {
            sink.field(name, value);
        }
    }
    for (name, value) in req.added {
        sink.field(name, value);
    }
    for (name, value) in &req.edits.added {
        sink.field(name.as_str().as_bytes(), value);
    }
    // RFC 9110 §7.6.3: a gateway adds itself to Via on inbound requests (after any Via lines
    // the client sent, so the list stays in order), naming the protocol it received.
    sink.field(b"via", req.protocol.via());
    sink.built(b"x-forwarded-for", |out| {
        for prev in &xff {
            out.extend_from_slice(prev);
            out.extend_from_slice(b", ");
        }
        write_ip(out, req.client_ip);
    });
    let proto: &[u8] = if req.tls { b"https" } else { b"http" };
    sink.field(b"x-forwarded-proto", proto);
    sink.built(b"forwarded", |out| {
        for prev in &forwarded {
            out.extend_from_slice(prev);
            out.extend_from_slice(b", ");
        }
        // RFC 7239 §4: IPv6 nodes are quoted and bracketed.
        if req.client_ip.is_ipv6() {
            out.extend_from_slice(b"for=\"[");
            write_ip(out, req.client_ip);
            out.extend_from_slice(b"]\"");
        } else {
            out.extend_from_slice(b"for=");
            write_ip(out, req.client_ip);
        }
        if let Some(h) = head.host() {
            out.extend_from_slice(b";host=\"");
            write_authority(out, &h);
            out.push(b'"');
        }
        out.extend_from_slice(b";proto=");
        out.extend_from_slice(proto);
    });
    sink.field(RAY_ID_HEADER.as_bytes(), req.ray_id.as_bytes());
}

/// What the request header rules do to the fields the origin gets.
#[derive(Clone, Debug, Default)]
pub struct FieldEdits {
    /// The client's fields of these names are not passed on.
    pub removed: Vec<HeaderName>,
    /// Fields added after the client's, in order.
    pub added: Vec<(HeaderName, Bytes)>,
}

impl FieldEdits {
    /// Whether the client's field `name` is passed on.
    pub fn keeps(&self, name: &[u8]) -> bool {
        !self
            .removed
            .iter()
            .any(|r| name.eq_ignore_ascii_case(r.as_str().as_bytes()))
    }

    /// Drops the client's fields named `name`, and any added before.
    pub fn remove(&mut self, name: &HeaderName) {
        if !self.removed.contains(name) {
            self.removed.push(name.clone());
        }
        self.added.retain(|(n, _)| n != name);
    }
}
