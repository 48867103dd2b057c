//! What the origin is told: the request as rampart understood it, rebuilt, never relayed.
//!
//! The same rules for an HTTP/1.1 and an HTTP/2 origin: the client's end-to-end fields in
//! their order, less the framing (rampart frames the body itself), `Expect` (rampart answers
//! it), `Host` (sent as the request's authority) and the forwarding fields rampart sets; then
//! `Via`, `X-Forwarded-For`, `X-Forwarded-Proto`, `Forwarded` and the ray id.

use std::io::Write as _;

use rampart_http::{Authority, TargetForm};
use smallvec::SmallVec;

use super::OriginRequest;
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
            b"host",
            b"x-forwarded-for",
            b"x-forwarded-proto",
            b"forwarded",
            RAY_ID_HEADER.as_bytes(),
        ]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
}

/// Calls `field` with every field the origin gets but Host and the framing, in order.
/// `scratch` holds the values rampart builds.
pub(super) fn each_field(
    req: &OriginRequest<'_>,
    scratch: &mut Vec<u8>,
    mut field: impl FnMut(&[u8], &[u8]),
) {
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
        if !rewritten(req, name) {
            field(name, value);
        }
    }
    // RFC 9110 §7.6.3: a gateway adds itself to Via on inbound requests (after any Via lines
    // the client sent, so the list stays in order), naming the protocol it received.
    field(b"via", req.protocol.via());
    scratch.clear();
    for prev in xff {
        scratch.extend_from_slice(prev);
        scratch.extend_from_slice(b", ");
    }
    write_ip(scratch, req.client_ip);
    field(b"x-forwarded-for", scratch);
    let proto: &[u8] = if req.tls { b"https" } else { b"http" };
    field(b"x-forwarded-proto", proto);
    scratch.clear();
    for prev in forwarded {
        scratch.extend_from_slice(prev);
        scratch.extend_from_slice(b", ");
    }
    // RFC 7239 §4: IPv6 nodes are quoted and bracketed.
    if req.client_ip.is_ipv6() {
        scratch.extend_from_slice(b"for=\"[");
        write_ip(scratch, req.client_ip);
        scratch.extend_from_slice(b"]\"");
    } else {
        scratch.extend_from_slice(b"for=");
        write_ip(scratch, req.client_ip);
    }
    if let Some(h) = head.host() {
        scratch.extend_from_slice(b";host=\"");
        write_authority(scratch, &h);
        scratch.push(b'"');
    }
    scratch.extend_from_slice(b";proto=");
    scratch.extend_from_slice(proto);
    field(b"forwarded", scratch);
    field(RAY_ID_HEADER.as_bytes(), req.ray_id.as_bytes());
}
