//! Reading a request body from an HTTP/1.1 client, de-framed: bytes of a Content-Length body,
//! the data of a chunked one.

use std::time::Duration;

use bytes::Bytes;
use rampart_http::{BodyFraming, ChunkedDecoder};

use super::{Conn, READ_CHUNK};
use crate::session::BodyError;

enum State {
    Length { remaining: u64 },
    Chunked { decoder: Box<ChunkedDecoder> },
    Done,
}

/// The body of one request as it is read from the client.
pub(super) struct ClientBody {
    state: State,
    /// Bytes read off the wire for the body, framing included.
    pub(super) wire_bytes: u64,
    timeout: Duration,
    /// The body limit: a chunk size that declares more is refused at once.
    max: u64,
}

impl ClientBody {
    pub(super) fn new(
        framing: BodyFraming,
        max_trailer_bytes: usize,
        timeout: Duration,
        max: u64,
    ) -> Self {
        let state = match framing {
            BodyFraming::None | BodyFraming::ContentLength(0) => State::Done,
            BodyFraming::ContentLength(n) => State::Length { remaining: n },
            BodyFraming::Chunked => State::Chunked {
                decoder: Box::new(ChunkedDecoder::new(max_trailer_bytes)),
            },
        };
        ClientBody {
            state,
            wire_bytes: 0,
            timeout,
            max,
        }
    }

    pub(super) fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Drops the rest of a Content-Length body when it is already in the connection's
    /// buffer, so the connection can serve the next request. Returns whether the body is
    /// now done.
    pub(super) fn discard_buffered(&mut self, conn: &mut Conn) -> bool {
        if let State::Length { remaining } = self.state
            && remaining <= conn.buf.len() as u64
        {
            conn.buf.drain(..remaining as usize);
            self.wire_bytes += remaining;
            self.state = State::Done;
        }
        self.is_done()
    }

    /// The next piece of the body; `None` at its end.
    pub(super) async fn next(&mut self, conn: &mut Conn) -> Result<Option<Bytes>, BodyError> {
        loop {
            match &mut self.state {
                State::Done => return Ok(None),
                State::Length { remaining } => {
                    if !conn.buf.is_empty() {
                        let n = (*remaining).min(conn.buf.len() as u64) as usize;
                        let piece = Bytes::copy_from_slice(&conn.buf[..n]);
                        conn.buf.drain(..n);
                        *remaining -= n as u64;
                        self.wire_bytes += n as u64;
                        if *remaining == 0 {
                            self.state = State::Done;
                        }
                        return Ok(Some(piece));
                    }
                }
                State::Chunked { decoder } => {
                    if !conn.buf.is_empty() {
                        let mut data = Vec::new();
                        let consumed = decoder
                            .decode(&conn.buf, &mut data)
                            .map_err(|e| BodyError::Malformed(e.to_string()))?;
                        // The data already decoded is within the limit or the session
                        // refuses it as it counts; a chunk size over the limit is refused
                        // now, not after waiting for bytes that would be thrown away.
                        if decoder.declared() > self.max {
                            return Err(BodyError::TooLarge {
                                declared: decoder.declared(),
                                max: self.max,
                            });
                        }
                        conn.buf.drain(..consumed);
                        self.wire_bytes += consumed as u64;
                        if decoder.is_done() {
                            self.state = State::Done;
                        }
                        if !data.is_empty() {
                            return Ok(Some(Bytes::from(data)));
                        }
                        continue;
                    }
                }
            }
            self.fill(conn).await?;
        }
    }

    async fn fill(&mut self, conn: &mut Conn) -> Result<(), BodyError> {
        conn.timer_in(self.timeout);
        let read = tokio::select! {
            biased;
            r = conn.stream.read_some(&mut conn.buf, READ_CHUNK) => r,
            _ = conn.timer.as_mut() => return Err(BodyError::TimedOut(self.timeout)),
        };
        match read {
            Ok(0) | Err(_) => Err(BodyError::ClientGone),
            Ok(_) => Ok(()),
        }
    }
}
