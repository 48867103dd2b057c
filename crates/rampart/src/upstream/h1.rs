//! HTTP/1.1 to an origin: the request head rebuilt and written, the body re-framed (its
//! Content-Length as declared, else chunked), the response head read with interim responses
//! relayed, and the response body read according to its framing.

use std::time::{Duration, Instant};

use rampart_http::{BodyFraming, ChunkedDecoder, Parse, ResponseBody, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    ClientSide, Failure, Origin, OriginBody, OriginConn, OriginError, OriginRequest,
    OriginResponse, Policy, forward,
};
use crate::message::{BodyCut, BodyKind, OriginFields, Piece, ResponseHead};
use crate::stream::{OriginStream, buffers};

/// Room for one read from the origin: a response head with a body of up to about 32 KB
/// arrives in one read and goes to the client in one write (with 16 KB, a 16 KB file and its
/// head took two of each). The buffer comes from the thread's kept buffers and goes back to
/// them when the body has been read.
pub(crate) const ORIGIN_READ: usize = 32 * 1024;

/// Forwarded fields written straight into an HTTP/1.1 head.
struct HeadWriter<'o>(&'o mut Vec<u8>);

impl forward::FieldSink for HeadWriter<'_> {
    fn field(&mut self, name: &[u8], value: &[u8]) {
        rampart_http::write_header(self.0, name, value);
    }

    fn built(&mut self, name: &[u8], value: impl Fn(&mut Vec<u8>)) {
        self.0.extend_from_slice(name);
        self.0.extend_from_slice(b": ");
        value(self.0);
        self.0.extend_from_slice(b"\r\n");
    }
}

/// The request head sent to the origin: request line, Host, the forwarded fields, framing.
fn write_head(req: &OriginRequest<'_>, out: &mut Vec<u8>) {
    let head = req.head;
    rampart_http::write_request_line(out, head.method(), &req.path_and_query(), Version::Http11);
    let in_place = forward::host_in_place(req);
    if !in_place {
        out.extend_from_slice(b"host: ");
        forward::authority(req, out);
        out.extend_from_slice(b"\r\n");
    }
    forward::each_field(req, in_place, &mut HeadWriter(out));
    match head.body() {
        BodyFraming::ContentLength(n) => {
            out.extend_from_slice(b"content-length: ");
            crate::text::write_decimal(out, n);
            out.extend_from_slice(b"\r\n");
        }
        BodyFraming::Chunked => rampart_http::write_header(out, "transfer-encoding", b"chunked"),
        BodyFraming::None => {}
    }
    if let Some(up) = head.upgrade() {
        rampart_http::write_header(out, "connection", b"upgrade");
        rampart_http::write_header(out, "upgrade", up);
    }
    rampart_http::write_end_of_head(out);
}

/// Sends the request on `conn` and reads the response head.
pub(super) async fn exchange<'u, C: ClientSide>(
    up: &'u Origin,
    mut conn: OriginConn,
    policy: &Policy,
    req: &OriginRequest<'_>,
    client: &mut C,
) -> Result<OriginResponse<'u>, Failure<C::Abort>> {
    let sent_at = Instant::now();
    let sent = send_request(&mut conn, policy, req, client).await?;
    let mut buf = buffers::take(ORIGIN_READ);
    let head = match read_head(&mut conn, &mut buf, policy, req, client, sent).await {
        Ok(head) => head,
        Err(e) => {
            buffers::give(buf);
            return Err(e);
        }
    };
    let status = head.status();
    // `read_head` lets a 101 through only to a request that asked to upgrade.
    let upgrade = status == 101;
    let framing = head.body(req.head.is_head());
    let kind = match framing {
        _ if upgrade => BodyKind::None,
        ResponseBody::None => BodyKind::None,
        ResponseBody::ContentLength(n) => BodyKind::Length(n),
        ResponseBody::Chunked | ResponseBody::CloseDelimited => BodyKind::Stream,
    };
    // Without a body (HEAD, 304) the origin's length still describes the one not sent; a 204
    // and a 1xx never carry one (RFC 9110 §8.6).
    let content_length = match kind {
        BodyKind::Length(n) => Some(n),
        BodyKind::None if status >= 200 && status != 204 => head.content_length(),
        _ => None,
    };
    let keep_alive = head.keep_alive();
    let origin_ip = conn.addr.ip();
    let mut typed = ResponseHead::relayed(status, OriginFields::Http1(head));
    if upgrade {
        typed.set_upgrade();
    }
    typed.content_length = content_length;
    let reader = match framing {
        _ if upgrade => Framing::Done { reusable: false },
        ResponseBody::None => Framing::Done {
            reusable: buf.is_empty(),
        },
        ResponseBody::ContentLength(0) => Framing::Done {
            reusable: buf.is_empty(),
        },
        ResponseBody::ContentLength(n) => Framing::Length(n),
        ResponseBody::Chunked => Framing::Chunked(Box::new(Chunked {
            decoder: ChunkedDecoder::new(rampart_http::DEFAULT_MAX_TRAILER_BYTES),
            data: Vec::new(),
            trailers: Vec::new(),
            ended: None,
        })),
        ResponseBody::CloseDelimited => Framing::UntilClose,
    };
    let body = Body {
        up,
        conn: Some(conn),
        framing: reader,
        buf,
        handed_out: 0,
        reusable: sent == Sent::Whole && keep_alive,
        idle: policy.response,
    };
    Ok(OriginResponse {
        head: typed,
        kind,
        body: OriginBody::Http1(body),
        origin_ip,
        sent_at,
        in_flight: None,
    })
}

/// How much of the request reached the origin.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sent {
    Whole,
    /// A write failed or stalled: the origin may have answered early (its own 413) and
    /// stopped reading; its answer is read, and its connection is not reused.
    Partly,
}

/// Writes the head and streams the body, re-framed. The head goes out with the first piece
/// of the body, in one write.
async fn send_request<C: ClientSide>(
    conn: &mut OriginConn,
    policy: &Policy,
    req: &OriginRequest<'_>,
    client: &mut C,
) -> Result<Sent, Failure<C::Abort>> {
    let mut out = buffers::take(512);
    write_head(req, &mut out);
    if !req.has_body() {
        // A head alone: no upload to stall, so no timer (a head fits the socket's buffer).
        let written = conn.stream.write_all(&out).await;
        buffers::give(out);
        return match written {
            Ok(()) => Ok(Sent::Whole),
            Err(_) if conn.reused => Err(Failure::DeadPooled),
            Err(_) => Ok(Sent::Partly),
        };
    }
    let chunked = req.head.body() == BodyFraming::Chunked;
    let mut body_ended = false;
    let sent = loop {
        if !body_ended {
            let chunk = match client.body_chunk().await {
                Ok(c) => c,
                Err(a) => {
                    buffers::give(out);
                    return Err(Failure::Client(a));
                }
            };
            match chunk {
                Some(data) if chunked => rampart_http::write_chunk(&mut out, &data),
                Some(data) => out.extend_from_slice(&data),
                None => {
                    body_ended = true;
                    if chunked {
                        rampart_http::write_last_chunk(&mut out);
                    }
                }
            }
        }
        if !out.is_empty() {
            // A write that makes no progress for the response timeout ends the upload: the
            // origin may have answered early and stopped reading without closing (RFC 9112
            // §9.3); its answer is read next.
            conn.timer_in(policy.response);
            let written = tokio::select! {
                biased;
                r = conn.stream.write_all(&out) => r.is_ok(),
                _ = conn.timer.as_mut() => false,
            };
            if !written {
                if conn.reused && client.body_taken() == 0 {
                    buffers::give(out);
                    return Err(Failure::DeadPooled);
                }
                break Sent::Partly;
            }
            out.clear();
        }
        if body_ended {
            break Sent::Whole;
        }
    };
    buffers::give(out);
    Ok(sent)
}

/// Reads until the final response head, relaying interim responses; notices a client that
/// leaves meanwhile.
async fn read_head<C: ClientSide>(
    conn: &mut OriginConn,
    buf: &mut Vec<u8>,
    policy: &Policy,
    req: &OriginRequest<'_>,
    client: &mut C,
    sent: Sent,
) -> Result<rampart_http::ResponseHead, Failure<C::Abort>> {
    conn.timer_in(policy.response);
    let upgrade_requested = req.head.upgrade().is_some();
    let mut interim = Vec::new();
    loop {
        let head = take_response_head(buf, &policy.head_limits, upgrade_requested, &mut interim)
            .map_err(Failure::Origin)?;
        for early in interim.drain(..) {
            let status = early.status();
            let typed = ResponseHead::relayed(status, OriginFields::Http1(early));
            // Boxed: rare, and its future would grow every exchange's.
            Box::pin(client.interim(typed))
                .await
                .map_err(Failure::Client)?;
        }
        if let Some(head) = head {
            return Ok(head);
        }
        buf.reserve(ORIGIN_READ);
        // `biased`: the origin first, then the client, then the deadline.
        tokio::select! {
            biased;
            r = conn.stream.read_buf(buf) => match r {
                Ok(0) | Err(_) if buf.is_empty() && conn.reused && sent == Sent::Whole => {
                    return Err(Failure::DeadPooled);
                }
                Ok(0) | Err(_) => return Err(Failure::Origin(OriginError::ClosedBeforeResponse)),
                Ok(_) => {}
            },
            abort = client.gone() => return Err(Failure::Client(abort)),
            _ = conn.timer.as_mut() => {
                return Err(Failure::Origin(OriginError::ResponseTimedOut(policy.response)));
            }
        }
    }
}

/// Takes the final response head from the front of `buf`. `None` until a whole head is
/// buffered.
///
/// Interim responses before it are taken off too: 100 is dropped (rampart answers
/// `Expect: 100-continue` itself and does not forward Expect), the others (102, 103 Early
/// Hints, any other 1xx) go to `interim`, for the caller to relay (RFC 9110 §15.2: a proxy
/// forwards 1xx responses it did not ask for; never to HTTP/1.0 clients). 101 is final when
/// the request asked to upgrade, and a broken response otherwise (RFC 9110 §7.8).
fn take_response_head(
    buf: &mut Vec<u8>,
    limits: &rampart_http::Limits,
    upgrade_requested: bool,
    interim: &mut Vec<rampart_http::ResponseHead>,
) -> Result<Option<rampart_http::ResponseHead>, OriginError> {
    while !buf.is_empty() {
        match rampart_http::parse_response_head(buf, limits) {
            Ok(Parse::Complete((head, len))) => {
                buf.drain(..len);
                match head.status() {
                    101 if !upgrade_requested => {
                        return Err(OriginError::InvalidResponse(
                            "101 Switching Protocols to a request that did not ask to upgrade"
                                .into(),
                        ));
                    }
                    100 => continue,
                    102..=199 => {
                        interim.push(head);
                        continue;
                    }
                    _ => return Ok(Some(head)),
                }
            }
            Ok(Parse::Partial) => return Ok(None),
            Err(e) => return Err(OriginError::InvalidResponse(e.to_string())),
        }
    }
    Ok(None)
}

/// Where reading a response body stands.
enum Framing {
    /// This many bytes are still to come.
    Length(u64),
    Chunked(Box<Chunked>),
    /// Until the origin closes the connection.
    UntilClose,
    /// The body ended; `reusable`: by its framing, with nothing after it.
    Done {
        reusable: bool,
    },
}

/// A chunked body being decoded.
struct Chunked {
    decoder: ChunkedDecoder,
    /// The data of the chunks last decoded.
    data: Vec<u8>,
    /// The trailer section, once the body ended.
    trailers: Vec<u8>,
    /// The body ended, and whether nothing came after it.
    ended: Option<bool>,
}

/// A response body from an HTTP/1.1 origin. Dropped after it was read to its end, its
/// connection goes back to the pool when the origin keeps it alive, the whole request was
/// sent, and nothing followed the body.
pub struct Body<'u> {
    up: &'u Origin,
    conn: Option<OriginConn>,
    framing: Framing,
    /// Bytes read from the origin and not yet handed out.
    buf: Vec<u8>,
    /// Bytes at the front of `buf` handed out as the last piece, dropped at the next call.
    handed_out: usize,
    /// The request was sent whole and the origin keeps the connection alive.
    reusable: bool,
    /// Longest wait for the next bytes of the body.
    idle: Duration,
}

impl Body<'_> {
    /// The connection and the bytes after the head, for a tunnel.
    pub(super) fn into_upgraded(mut self) -> (OriginStream, Vec<u8>) {
        let conn = self.conn.take().map(|c| c.stream);
        let buf = std::mem::take(&mut self.buf);
        match conn {
            Some(stream) => (stream, buf),
            None => unreachable!("a body holds its connection until dropped"),
        }
    }

    /// Whether the body was read to its end by its framing, with nothing after it.
    fn ended_cleanly(&self) -> bool {
        match &self.framing {
            Framing::Done { reusable } => *reusable,
            Framing::Chunked(c) => c.ended == Some(true),
            _ => false,
        }
    }

    pub(super) async fn next_piece(&mut self) -> Result<Piece<'_>, BodyCut> {
        if self.handed_out > 0 {
            self.buf.drain(..self.handed_out);
            self.handed_out = 0;
        }
        let ready = self.fill().await?;
        Ok(match ready {
            Ready::End => Piece::END,
            Ready::Buffered { len, last } => {
                self.handed_out = len;
                Piece {
                    data: &self.buf[..len],
                    last,
                    trailers: None,
                }
            }
            Ready::Chunks { last } => match &self.framing {
                Framing::Chunked(c) => Piece {
                    data: &c.data,
                    last,
                    trailers: (last && !c.trailers.is_empty()).then_some(&c.trailers[..]),
                },
                _ => unreachable!("chunks come from a chunked body"),
            },
        })
    }

    /// Reads until the next piece is ready, and says where it is.
    async fn fill(&mut self) -> Result<Ready, BodyCut> {
        loop {
            match &mut self.framing {
                Framing::Done { .. } => return Ok(Ready::End),
                Framing::Chunked(c) if c.ended.is_some() => return Ok(Ready::End),
                Framing::Length(remaining) => {
                    if !self.buf.is_empty() {
                        let len = (*remaining).min(self.buf.len() as u64) as usize;
                        *remaining -= len as u64;
                        let last = *remaining == 0;
                        if last {
                            self.framing = Framing::Done {
                                reusable: self.buf.len() == len,
                            };
                        }
                        return Ok(Ready::Buffered { len, last });
                    }
                }
                Framing::Chunked(c) => {
                    if !self.buf.is_empty() {
                        c.data.clear();
                        let used = c.decoder.decode(&self.buf, &mut c.data).map_err(|e| {
                            BodyCut(format!("the origin's chunked body is malformed: {e}"))
                        })?;
                        self.buf.drain(..used);
                        let last = c.decoder.is_done();
                        if last {
                            c.trailers = c.decoder.trailers().to_vec();
                            c.ended = Some(self.buf.is_empty());
                        }
                        if last || !c.data.is_empty() {
                            return Ok(Ready::Chunks { last });
                        }
                    }
                }
                Framing::UntilClose => {
                    if !self.buf.is_empty() {
                        let len = self.buf.len();
                        return Ok(Ready::Buffered { len, last: false });
                    }
                }
            }
            let Some(conn) = self.conn.as_mut() else {
                return Ok(Ready::End);
            };
            self.buf.reserve(ORIGIN_READ);
            conn.timer_in(self.idle);
            let read = tokio::select! {
                biased;
                r = conn.stream.read_buf(&mut self.buf) => r,
                _ = conn.timer.as_mut() => {
                    return Err(BodyCut(format!(
                        "the origin sent no more of the body for {}",
                        humantime::format_duration(self.idle)
                    )));
                }
            };
            match read {
                Ok(0) if matches!(self.framing, Framing::UntilClose) => {
                    self.framing = Framing::Done { reusable: false };
                    return Ok(Ready::End);
                }
                Ok(0) => {
                    return Err(BodyCut(
                        "the origin closed the connection before the end of the body".into(),
                    ));
                }
                Ok(_) => {}
                Err(e) => return Err(BodyCut(format!("reading the origin's body failed: {e}"))),
            }
        }
    }
}

/// Where the next piece of a body is.
enum Ready {
    /// The body has ended.
    End,
    /// The first `len` bytes of the read buffer.
    Buffered { len: usize, last: bool },
    /// The chunk data just decoded.
    Chunks { last: bool },
}

impl Drop for Body<'_> {
    fn drop(&mut self) {
        buffers::give(std::mem::take(&mut self.buf));
        let clean = self.ended_cleanly();
        if let Some(conn) = self.conn.take()
            && clean
            && self.reusable
        {
            self.up.idle.put(conn);
        }
    }
}

/// A health check over HTTP/1.1 on a fresh connection: `GET path` with `Connection: close`,
/// answered by the status of the response head (its body is not read).
pub(super) async fn probe(
    mut conn: OriginConn,
    host: &str,
    path: &str,
) -> Result<u16, OriginError> {
    let mut out = Vec::with_capacity(128);
    rampart_http::write_request_line(&mut out, "GET", path, Version::Http11);
    rampart_http::write_header(&mut out, "host", host.as_bytes());
    rampart_http::write_header(&mut out, "user-agent", b"rampart-health-check");
    rampart_http::write_header(&mut out, "accept", b"*/*");
    rampart_http::write_header(&mut out, "connection", b"close");
    rampart_http::write_end_of_head(&mut out);
    conn.stream
        .write_all(&out)
        .await
        .map_err(|_| OriginError::ClosedBeforeResponse)?;
    // The status line is all a check needs.
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    let line = loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            break &buf[..end];
        }
        if buf.len() > 8192 {
            return Err(OriginError::InvalidResponse(
                "a status line over 8 KB".into(),
            ));
        }
        match conn.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(OriginError::ClosedBeforeResponse),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    status_of(line).ok_or_else(|| {
        OriginError::InvalidResponse(format!(
            "`{}` is not an HTTP/1.x status line",
            String::from_utf8_lossy(&line[..line.len().min(64)])
        ))
    })
}

/// The status code of an HTTP/1.x status line (`HTTP/1.1 200 OK`).
fn status_of(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let (minor, rest) = rest.split_first()?;
    let code = rest.strip_prefix(b" ")?.get(..3)?;
    let after = rest.get(4..)?;
    if !minor.is_ascii_digit()
        || !code.iter().all(u8::is_ascii_digit)
        || !(after.is_empty() || after[0] == b' ')
    {
        return None;
    }
    std::str::from_utf8(code)
        .ok()?
        .parse()
        .ok()
        .filter(|c| (100..=599).contains(c))
}
