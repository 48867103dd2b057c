//! The HTTP/1.1 downstream: a client connection's bytes turned into requests for the session,
//! and the session's typed responses turned back into bytes.
//!
//! One task per connection. Requests are read and answered strictly in order, so pipelined
//! requests get their responses in order. This module reads heads (rampart-http validates
//! them), de-frames bodies, frames responses (Content-Length, chunked, or close-delimited for
//! HTTP/1.0) and decides what only HTTP/1.1 has: whether the connection stays open.

mod body;
mod exchange;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rampart_http::{Parse, RequestError, RequestHead, Version};
use tokio::io::AsyncWriteExt;
use tokio::time::{Instant as TokioInstant, Sleep};

use crate::errors::{EdgeError, Rejection};
use crate::message::Protocol;
use crate::runtime::Runtime;
use crate::session::{self, Arrival, Unparsed};
use crate::state::Generation;
use crate::stream::ClientStream;

/// Size of one read of a request body from the client.
const READ_CHUNK: usize = 16 * 1024;

/// Size of one read while a request head is awaited; most heads fit in one.
const HEAD_CHUNK: usize = 4096;

/// A client connection and the bytes read from it but not yet consumed.
pub(crate) struct Conn {
    stream: ClientStream,
    buf: Vec<u8>,
    /// The connection's one timer, reset for each wait (next head, body read): a new timer
    /// per wait is registered with the runtime's timer wheel and removed from it again, while
    /// moving a deadline later costs no more than a store.
    timer: Pin<Box<Sleep>>,
}

impl Conn {
    /// Sets the connection's timer to fire at `deadline`.
    fn timer_at(&mut self, deadline: TokioInstant) {
        if self.timer.deadline() != deadline || self.timer.is_elapsed() {
            self.timer.as_mut().reset(deadline);
        }
    }

    /// Sets the connection's timer to fire `after` from now.
    fn timer_in(&mut self, after: Duration) {
        self.timer_at(TokioInstant::now() + after);
    }
}

/// What happens to the connection after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    /// Read the next request.
    KeepAlive,
    /// Close the connection.
    Close,
}

enum HeadRead {
    Complete(Box<RequestHead>, usize),
    Invalid(RequestError),
    /// The client sent part of a head, then nothing within `client_header_timeout`.
    TimedOut,
    /// The connection ended (or idled out, or shutdown began) between requests.
    Closed,
}

/// Serves one HTTP/1.1 client connection until it closes. `buf` holds what was read of it
/// already; the first head must be complete by `first_deadline`.
pub(crate) async fn serve(
    stream: ClientStream,
    buf: Vec<u8>,
    sni: Option<Box<str>>,
    peer: SocketAddr,
    rt: Arc<Runtime>,
    first_deadline: TokioInstant,
) {
    let tls = stream.is_tls();
    let mut conn = Conn {
        stream,
        buf,
        // Not registered with the runtime until first awaited.
        timer: Box::pin(tokio::time::sleep_until(first_deadline)),
    };
    let mut deadline = Some(first_deadline);
    // Taken once: between requests the connection waits on it.
    let mut shutdown = rt.shutdown_signal();
    loop {
        let generation = rt.generation();
        let head = read_head(&mut conn, &generation, deadline.take(), &mut shutdown).await;
        let arrival = |head_bytes: usize, protocol| Arrival {
            peer,
            tls,
            sni: sni.as_deref(),
            protocol,
            head_bytes: head_bytes as u64,
        };
        let next = match head {
            HeadRead::Closed => return,
            HeadRead::TimedOut | HeadRead::Invalid(_) => {
                let rejection = match head {
                    HeadRead::Invalid(e) => Rejection::explained(
                        EdgeError::from_request_status(e.status()),
                        e.to_string(),
                    ),
                    _ => Rejection::explained(
                        EdgeError::RequestTimeout,
                        format!(
                            "the request head did not arrive within {}",
                            humantime::format_duration(
                                generation.config.server.client_header_timeout
                            )
                        ),
                    ),
                };
                let arrival = arrival(0, Protocol::Http11);
                // Boxed: rare, and its future would grow every idle connection's.
                Box::pin(reject_unparsed(
                    &mut conn,
                    &rt,
                    &generation,
                    arrival,
                    rejection,
                ))
                .await;
                Next::Close
            }
            HeadRead::Complete(head, len) => {
                conn.buf.drain(..len);
                let protocol = match head.version() {
                    Version::Http10 => Protocol::Http10,
                    Version::Http11 => Protocol::Http11,
                };
                let arrival = arrival(len, protocol);
                let mut exchange = exchange::Exchange::new(&mut conn, &rt, &generation, &head);
                // Boxed so that the connection's own future stays small while it idles: the
                // whole request path is large and only needed while a request is in flight.
                Box::pin(session::serve(
                    &rt,
                    &generation,
                    &mut exchange,
                    &head,
                    arrival,
                ))
                .await;
                exchange.finish()
            }
        };
        if next == Next::Close || rt.shutting_down() {
            // The client gets a FIN after the last response, not a reset.
            let _ = conn.stream.shutdown().await;
            return;
        }
        if conn.buf.is_empty() {
            // An idle connection keeps no buffer; the next read takes one from the thread's.
            crate::stream::buffers::give(std::mem::take(&mut conn.buf));
        }
    }
}

/// Answers bytes that never became a valid head, through the session.
async fn reject_unparsed(
    conn: &mut Conn,
    rt: &Runtime,
    generation: &Generation,
    arrival: Arrival<'_>,
    rejection: Rejection,
) {
    let accept = sniff_accept(&conn.buf);
    let what = Unparsed {
        accept: accept.as_deref(),
        head_only: conn.buf.starts_with(b"HEAD "),
        bytes: conn.buf.len() as u64,
        ..Unparsed::default()
    };
    let mut exchange = exchange::Exchange::unparsed(conn, rt);
    session::reject_unparsed(rt, generation, &mut exchange, arrival, what, rejection).await;
    exchange.finish();
}

/// Reads until a complete, valid head is buffered.
///
/// Between requests the connection may idle for `keepalive_timeout` (then it is closed
/// silently); once the first byte of a head has arrived, the whole head must arrive within
/// `client_header_timeout` (then 408). `deadline` is the first head's, set from accept.
async fn read_head(
    conn: &mut Conn,
    generation: &Generation,
    deadline: Option<TokioInstant>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> HeadRead {
    let config = &generation.config;
    let limits = config.limits.http_limits();
    let header_timeout = config.server.client_header_timeout;
    // One clock read for both deadlines.
    let now = TokioInstant::now();
    let mut deadline = deadline.or_else(|| (!conn.buf.is_empty()).then(|| now + header_timeout));
    let idle_deadline = now + config.server.keepalive_timeout;
    loop {
        if !conn.buf.is_empty() {
            match rampart_http::parse_request_head(&conn.buf, &limits) {
                Ok(Parse::Complete((head, len))) => return HeadRead::Complete(Box::new(head), len),
                Ok(Parse::Partial) => {}
                Err(e) => return HeadRead::Invalid(e),
            }
            if deadline.is_none() {
                deadline = Some(TokioInstant::now() + header_timeout);
            }
        }
        conn.timer_at(deadline.unwrap_or(idle_deadline));
        // Shutdown closes a connection that has sent nothing of a head: between requests, or
        // a new one that has not sent its first (else the drain waits for its header
        // timeout); never one sending a head.
        let nothing_sent = conn.buf.is_empty();
        // `biased`: polled in order (the read first), without drawing a random number.
        let read = tokio::select! {
            biased;
            r = conn.stream.read_some(&mut conn.buf, HEAD_CHUNK) => Some(r),
            _ = conn.timer.as_mut() => None,
            _ = shutdown.changed(), if nothing_sent => return HeadRead::Closed,
        };
        match read {
            Some(Ok(0)) | Some(Err(_)) => return HeadRead::Closed,
            Some(Ok(_)) => {}
            None if conn.buf.is_empty() => return HeadRead::Closed,
            None => return HeadRead::TimedOut,
        }
    }
}

/// Starts a response of a small server of rampart's own (the admin listener, the demo
/// origin): the status line (HTTP/1.1, canonical reason), Content-Type and Content-Length.
/// The caller adds any other fields and ends the head.
pub fn start_response(status: u16, content_type: &[u8], body_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body_len);
    rampart_http::write_status_line(
        &mut out,
        Version::Http11,
        status,
        rampart_http::canonical_reason(status).as_bytes(),
    );
    rampart_http::write_header(&mut out, "content-type", content_type);
    rampart_http::write_header(&mut out, "content-length", body_len.to_string().as_bytes());
    out
}

/// Finds an `Accept` field in bytes that did not parse as a whole, so even a malformed
/// request gets its error in the format it asked for. Best effort: the first line that
/// starts with `accept:` (any case) wins.
fn sniff_accept(buf: &[u8]) -> Option<Vec<u8>> {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(buf.len());
    buf[..end].split(|&b| b == b'\n').skip(1).find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        line[..colon]
            .eq_ignore_ascii_case(b"accept")
            .then(|| line[colon + 1..].trim_ascii().to_vec())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_is_found_in_a_malformed_head() {
        let raw = b"GET /a b HTTP/1.1\r\nHost: x\r\nACCEPT: application/json\r\n\r\n";
        assert_eq!(sniff_accept(raw).as_deref(), Some(&b"application/json"[..]));
        assert_eq!(sniff_accept(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), None);
    }
}
