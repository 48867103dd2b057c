//! One request on an HTTP/1.1 connection, as the session's [`Downstream`]: its body read off
//! the connection, its response framed onto it.

use bytes::Bytes;
use rampart_http::{RequestHead, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::body::ClientBody;
use super::{Conn, HEAD_CHUNK, Next};
use crate::message::{BodyKind, ResponseHead, relayed_trailers};
use crate::runtime::Runtime;
use crate::session::{BodyError, Downstream, Gone};
use crate::state::Generation;
use crate::stream::{OriginStream, buffers};

/// Most pipelined bytes buffered from the client while its current request is at the origin.
const MAX_PIPELINE_BUFFER: usize = 64 * 1024;

/// How the response body is framed on the wire.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    /// rampart's own Content-Length (never the origin's field, which may be a list or be
    /// listed in Connection).
    Length,
    Chunked,
    /// HTTP/1.0 without a length: the body ends when the connection closes.
    Close,
}

/// One request on the connection.
pub(super) struct Exchange<'c> {
    conn: &'c mut Conn,
    rt: &'c Runtime,
    version: Version,
    /// The client wants the connection kept open.
    keep_alive: bool,
    body: ClientBody,
    /// The head, held back to go out with the first piece of the body in one write.
    out: Vec<u8>,
    framing: Framing,
    /// The connection closes after this response.
    close: bool,
    sent: u64,
    /// Whether reading ahead from the client (to notice it leaving) still has room.
    watch_client: bool,
    /// The response was cut short, or the connection was switched to another protocol.
    broken: bool,
}

impl<'c> Exchange<'c> {
    pub(super) fn new(
        conn: &'c mut Conn,
        rt: &'c Runtime,
        generation: &Generation,
        head: &RequestHead,
    ) -> Exchange<'c> {
        let body = ClientBody::new(
            head.body(),
            rampart_http::DEFAULT_MAX_TRAILER_BYTES,
            generation.config.server.client_body_timeout,
            generation.config.limits.max_body_bytes,
        );
        Exchange {
            conn,
            rt,
            version: head.version(),
            keep_alive: head.keep_alive(),
            body,
            out: Vec::new(),
            framing: Framing::None,
            close: false,
            sent: 0,
            watch_client: true,
            broken: false,
        }
    }

    /// For bytes that never became a head: no body is read, and the connection closes.
    pub(super) fn unparsed(conn: &'c mut Conn, rt: &'c Runtime) -> Exchange<'c> {
        Exchange {
            conn,
            rt,
            version: Version::Http11,
            keep_alive: false,
            body: ClientBody::new(
                rampart_http::BodyFraming::None,
                0,
                std::time::Duration::ZERO,
                0,
            ),
            out: Vec::new(),
            framing: Framing::None,
            close: true,
            sent: 0,
            watch_client: false,
            broken: false,
        }
    }

    /// What becomes of the connection: it stays open for the next request only when a whole
    /// response went out, the request's body was read to its end, and nothing asked to close.
    pub(super) fn finish(self) -> Next {
        buffers::give(self.out);
        if self.sent == 0 || self.close || self.broken || !self.body.is_done() {
            return Next::Close;
        }
        Next::KeepAlive
    }

    /// Writes what `out` holds.
    async fn flush(&mut self) -> Result<(), Gone> {
        if self.out.is_empty() {
            return Ok(());
        }
        let written = self.conn.stream.write_all(&self.out).await;
        self.sent += self.out.len() as u64;
        self.out.clear();
        written.map_err(|_| {
            self.broken = true;
            Gone
        })
    }
}

impl Downstream for Exchange<'_> {
    async fn read_body(&mut self) -> Result<Option<Bytes>, BodyError> {
        self.body.next(self.conn).await
    }

    fn body_wire_bytes(&self) -> u64 {
        self.body.wire_bytes
    }

    async fn send_continue(&mut self) -> Result<(), Gone> {
        self.conn
            .stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .map_err(|_| Gone)
    }

    async fn send_interim(&mut self, head: &ResponseHead) -> Result<(), Gone> {
        // RFC 9110 §15.2: never to an HTTP/1.0 client.
        if self.version == Version::Http10 {
            return Ok(());
        }
        let mut out = buffers::take(512);
        rampart_http::write_status_line(&mut out, Version::Http11, head.status(), head.reason());
        head.for_each_field(|name, value| rampart_http::write_header(&mut out, name, value));
        rampart_http::write_end_of_head(&mut out);
        let written = self.conn.stream.write_all(&out).await;
        buffers::give(out);
        written.map_err(|_| Gone)
    }

    async fn send_head(&mut self, head: &ResponseHead, kind: BodyKind) -> Result<(), Gone> {
        let status = head.status();
        let upgrade = head.is_upgrade();
        self.framing = match kind {
            BodyKind::None => Framing::None,
            BodyKind::Length(_) => Framing::Length,
            BodyKind::Stream if self.version == Version::Http11 => Framing::Chunked,
            BodyKind::Stream => Framing::Close,
        };
        // A request body not read to its end leaves the connection's framing unknown, unless
        // the rest of it is already buffered and can be dropped.
        let body_settled = self.body.is_done() || self.body.discard_buffered(self.conn);
        self.close = !upgrade
            && (head.close
                || !self.keep_alive
                || !body_settled
                || self.framing == Framing::Close
                || self.rt.shutting_down());
        let mut out = buffers::take(1024);
        rampart_http::write_status_line(&mut out, Version::Http11, status, head.reason());
        head.for_each_field(|name, value| rampart_http::write_header(&mut out, name, value));
        // Without a body (HEAD, 304) the length still describes the one not sent; a 204 and a
        // 1xx never carry one (RFC 9110 §8.6).
        let length = match kind {
            BodyKind::Length(n) => Some(n),
            BodyKind::None if status >= 200 && status != 204 => head.content_length,
            _ => None,
        };
        if let Some(n) = length {
            out.extend_from_slice(b"content-length: ");
            crate::text::write_decimal(&mut out, n);
            out.extend_from_slice(b"\r\n");
        }
        if self.framing == Framing::Chunked {
            rampart_http::write_header(&mut out, "transfer-encoding", b"chunked");
        }
        if self.close {
            rampart_http::write_header(&mut out, "connection", b"close");
        } else if self.version == Version::Http10 && !upgrade {
            rampart_http::write_header(&mut out, "connection", b"keep-alive");
        }
        rampart_http::write_end_of_head(&mut out);
        self.out = out;
        if kind == BodyKind::None {
            return self.flush().await;
        }
        Ok(())
    }

    async fn send_data(&mut self, data: &[u8], last: bool) -> Result<(), Gone> {
        match self.framing {
            Framing::Chunked => {
                if !data.is_empty() {
                    rampart_http::write_chunk(&mut self.out, data);
                }
                if last {
                    rampart_http::write_last_chunk(&mut self.out);
                }
            }
            Framing::Length | Framing::Close => self.out.extend_from_slice(data),
            Framing::None => {}
        }
        self.flush().await
    }

    async fn send_trailers(&mut self, trailers: &[u8]) -> Result<(), Gone> {
        if self.framing == Framing::Chunked {
            self.out.extend_from_slice(b"0\r\n");
            for (name, value) in relayed_trailers(trailers) {
                rampart_http::write_header(&mut self.out, name, value);
            }
            rampart_http::write_end_of_head(&mut self.out);
        }
        self.flush().await
    }

    fn bytes_sent(&self) -> u64 {
        self.sent
    }

    fn cut_short(&mut self) {
        // Closing without the rest of the framing is all that tells the client.
        self.broken = true;
    }

    async fn client_gone(&mut self) {
        loop {
            if !self.watch_client {
                return std::future::pending().await;
            }
            let buf = &mut self.conn.buf;
            if buf.len() == buf.capacity() {
                buf.reserve(HEAD_CHUNK);
            }
            // Bytes the client sends meanwhile are pipelined requests: keep them.
            match self.conn.stream.read_buf(buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => self.watch_client = self.conn.buf.len() < MAX_PIPELINE_BUFFER,
            }
        }
    }

    async fn tunnel(&mut self, mut origin: OriginStream, buffered: Vec<u8>) {
        self.broken = true;
        if !buffered.is_empty() {
            if self.conn.stream.write_all(&buffered).await.is_err() {
                return;
            }
            self.sent += buffered.len() as u64;
        }
        if !self.conn.buf.is_empty() {
            if origin.write_all(&self.conn.buf).await.is_err() {
                return;
            }
            self.conn.buf.clear();
        }
        let _ = tokio::io::copy_bidirectional(&mut self.conn.stream, &mut origin).await;
    }
}
