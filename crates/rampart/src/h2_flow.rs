//! Sending HTTP/2 DATA under flow control, for both sides: responses to clients and request
//! bodies to origins.

use std::time::Duration;

use bytes::Bytes;
use h2::SendStream;

/// Longest wait for flow-control window from a peer (a client not reading its response, an
/// origin not reading its request body): then the stream is given up, so a stalled peer
/// cannot hold a connection or memory forever.
pub const SEND_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Why DATA could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFailed {
    /// The stream or connection is gone.
    Closed,
    /// No window for `stall`: the stream was reset with CANCEL.
    Stalled,
}

/// Sends `data` as flow control allows, waiting for window as needed (at most `stall` at a
/// time), ending the stream with the last piece when `end`.
pub async fn send_data(
    send: &mut SendStream<Bytes>,
    mut data: Bytes,
    end: bool,
    stall: Duration,
) -> Result<(), SendFailed> {
    if data.is_empty() {
        return send.send_data(data, end).map_err(|_| SendFailed::Closed);
    }
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        let capacity = std::future::poll_fn(|c| send.poll_capacity(c));
        let granted = match tokio::time::timeout(stall, capacity).await {
            Ok(Some(Ok(n))) => n,
            Ok(Some(Err(_)) | None) => return Err(SendFailed::Closed),
            Err(_) => {
                send.send_reset(h2::Reason::CANCEL);
                return Err(SendFailed::Stalled);
            }
        };
        if granted == 0 {
            continue;
        }
        let piece = data.split_to(granted.min(data.len()));
        send.send_data(piece, end && data.is_empty())
            .map_err(|_| SendFailed::Closed)?;
    }
    Ok(())
}

/// A ray id (or any value unique per message) as a field value that HPACK never indexes (RFC
/// 7541 §6.2.3): indexed, every message would insert an entry into the connection's dynamic
/// table and evict another, and every lookup of the name would compare the value against all
/// those already there (about 6,000 instructions a response, measured under callgrind).
pub fn never_indexed(mut value: http::HeaderValue) -> http::HeaderValue {
    value.set_sensitive(true);
    value
}

/// The relayable fields of a raw trailer section as a header map (what is not valid for
/// HTTP/2 is left out).
pub fn trailer_map(raw: &[u8]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in crate::message::relayed_trailers(raw) {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name),
            http::HeaderValue::from_bytes(value),
        ) {
            map.append(n, v);
        }
    }
    map
}

/// A header map as raw trailer field lines (`name: value` CRLF).
pub fn trailer_lines(map: &http::HeaderMap) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in map {
        rampart_http::write_header(&mut out, name.as_str(), value.as_bytes());
    }
    out
}
