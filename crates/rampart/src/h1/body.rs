//! Reading a request body from the client, piece by piece, re-framed for the origin.

use std::time::Duration;

use rampart_http::{BodyFraming, ChunkedDecoder};
use tokio::io::AsyncReadExt;

use super::{Conn, READ_CHUNK};
use crate::errors::EdgeError;
use crate::pipeline::Rejection;

/// Why a request body could not be read to its end.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// No body bytes arrived within `client_body_timeout`: 408.
    TimedOut(Duration),
    /// A chunked body grew past the body limit: 413.
    TooLarge(u64),
    /// The chunked framing is malformed: 400.
    Malformed(String),
    /// The client closed the connection mid-body: logged as 499.
    ClientClosed,
}

impl BodyError {
    /// The generated error for this failure, or `None` when the client is gone.
    pub fn rejection(&self) -> Option<Rejection> {
        Some(match self {
            BodyError::TimedOut(d) => Rejection::new(
                EdgeError::RequestTimeout,
                format!(
                    "the request body stalled: no bytes arrived for {}",
                    humantime::format_duration(*d)
                ),
            ),
            BodyError::TooLarge(max) => Rejection::new(
                EdgeError::PayloadTooLarge,
                format!("the chunked request body grew past this site's limit of {max} bytes"),
            ),
            BodyError::Malformed(e) => Rejection::new(
                EdgeError::BadRequest,
                format!("malformed chunked body: {e}"),
            ),
            BodyError::ClientClosed => return None,
        })
    }
}

enum State {
    Length {
        remaining: u64,
    },
    Chunked {
        decoder: Box<ChunkedDecoder>,
        scratch: Vec<u8>,
    },
    Done,
}

/// The body of one request as it is read from the client.
pub(crate) struct ClientBody {
    state: State,
    /// Body bytes received so far (decoded, for chunked).
    pub received: u64,
    /// Bytes read off the wire for the body, framing included.
    pub wire_bytes: u64,
    max: u64,
    timeout: Duration,
}

impl ClientBody {
    pub fn new(
        framing: BodyFraming,
        max: u64,
        max_trailer_bytes: usize,
        timeout: Duration,
    ) -> ClientBody {
        let state = match framing {
            BodyFraming::None | BodyFraming::ContentLength(0) => State::Done,
            BodyFraming::ContentLength(n) => State::Length { remaining: n },
            BodyFraming::Chunked => State::Chunked {
                decoder: Box::new(ChunkedDecoder::new(max_trailer_bytes)),
                scratch: Vec::with_capacity(READ_CHUNK),
            },
        };
        ClientBody {
            state,
            received: 0,
            wire_bytes: 0,
            max,
            timeout,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Appends the next piece of body to `out`, framed for the origin: raw bytes for a
    /// Content-Length body; chunks, and finally the last-chunk, for a chunked one. Returns
    /// once `out` has something, or the body is complete.
    pub async fn next(&mut self, conn: &mut Conn, out: &mut Vec<u8>) -> Result<(), BodyError> {
        loop {
            match &mut self.state {
                State::Done => return Ok(()),
                State::Length { remaining } => {
                    if !conn.buf.is_empty() {
                        let n = (*remaining).min(conn.buf.len() as u64) as usize;
                        out.extend_from_slice(&conn.buf[..n]);
                        conn.buf.drain(..n);
                        *remaining -= n as u64;
                        self.received += n as u64;
                        self.wire_bytes += n as u64;
                        if *remaining == 0 {
                            self.state = State::Done;
                        }
                        return Ok(());
                    }
                }
                State::Chunked { decoder, scratch } => {
                    if !conn.buf.is_empty() {
                        scratch.clear();
                        let consumed = decoder
                            .decode(&conn.buf, scratch)
                            .map_err(|e| BodyError::Malformed(e.to_string()))?;
                        conn.buf.drain(..consumed);
                        self.wire_bytes += consumed as u64;
                        self.received += scratch.len() as u64;
                        if self.received > self.max {
                            return Err(BodyError::TooLarge(self.max));
                        }
                        rampart_http::write_chunk(out, scratch);
                        if decoder.is_done() {
                            rampart_http::write_last_chunk(out);
                            self.state = State::Done;
                            return Ok(());
                        }
                        if !out.is_empty() {
                            return Ok(());
                        }
                    }
                }
            }
            self.fill(conn).await?;
        }
    }

    async fn fill(&mut self, conn: &mut Conn) -> Result<(), BodyError> {
        conn.buf.reserve(READ_CHUNK);
        match tokio::time::timeout(self.timeout, conn.stream.read_buf(&mut conn.buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => Err(BodyError::ClientClosed),
            Ok(Ok(_)) => Ok(()),
            Err(_) => Err(BodyError::TimedOut(self.timeout)),
        }
    }
}
