//! Compression on the way: a response that is relayed, not answered from the cache, in the
//! coding the client prefers when it is text the origin did not encode.

use rampart_cache::encoding::{self, Compressor};
use rampart_http::RequestHead;

use crate::cache::serve;
use crate::message::{BodyKind, ResponseHead};

/// Whether `head` (the origin's, about to be relayed to `req` with a body of `kind`) is
/// compressed on the way: a 2xx with a body (not 204 or 206), of a compressible type other
/// than an event stream, not encoded by the origin, not `no-transform`, of unknown length or
/// at least [`encoding::MIN_SIZE`] bytes, to a request without Range whose Accept-Encoding
/// names a coding. If so, the head is marked (Content-Encoding, Vary, a weak ETag, no
/// Content-Length), `kind` becomes a stream, and the compressor is returned (none for HEAD,
/// whose head is marked all the same).
pub(super) fn on_the_way(
    req: &RequestHead,
    head: &mut ResponseHead,
    kind: &mut BodyKind,
) -> Option<Compressor> {
    let status = head.status();
    if !(200..300).contains(&status) || status == 204 || status == 206 || head.is_upgrade() {
        return None;
    }
    let small = matches!(head.content_length, Some(n) if n < encoding::MIN_SIZE as u64);
    if small
        || head.get("content-encoding").is_some()
        || !encoding::compressible_stream(head.get("content-type"))
        || req.header("range").is_some()
    {
        return None;
    }
    if crate::cache::fill::directives(head).no_transform {
        return None;
    }
    serve::vary_on_encoding(head);
    let coding = encoding::negotiate(req.header("accept-encoding"))?;
    serve::mark_coded(head, coding);
    head.content_length = None;
    if *kind == BodyKind::None {
        return None;
    }
    *kind = BodyKind::Stream;
    Some(Compressor::new(coding))
}
