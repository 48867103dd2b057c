//! One HTTP/2 stream as the session's [`Downstream`]: DATA frames in, typed responses out as
//! HEADERS, DATA and trailers.

use std::future::poll_fn;
use std::time::Duration;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

use crate::h2_flow::{SEND_STALL_TIMEOUT, never_indexed, send_data, trailer_map};
use crate::message::{BodyKind, OriginFields, RAY_ID_HEADER, ResponseHead};
use crate::session::{BodyError, Downstream, Gone};
use crate::stream::OriginStream;

/// One stream of a client's HTTP/2 connection.
pub(super) struct Stream {
    respond: SendResponse<Bytes>,
    send: Option<SendStream<Bytes>>,
    body: RecvStream,
    body_timeout: Duration,
    received: u64,
    sent: u64,
}

impl Stream {
    pub(super) fn new(
        respond: SendResponse<Bytes>,
        body: RecvStream,
        body_timeout: Duration,
    ) -> Self {
        Stream {
            respond,
            send: None,
            body,
            body_timeout,
            received: 0,
            sent: 0,
        }
    }

    /// Ends the stream with RST_STREAM(INTERNAL_ERROR).
    pub(super) fn reset(&mut self) {
        match self.send.as_mut() {
            Some(s) => s.send_reset(h2::Reason::INTERNAL_ERROR),
            None => self.respond.send_reset(h2::Reason::INTERNAL_ERROR),
        }
    }
}

/// A response head's fields as a header map: field values are slices of one shared copy of an
/// HTTP/1.1 origin's head rather than an allocation each; the ray id is never indexed.
fn header_map(head: &ResponseHead) -> HeaderMap {
    let origin = match head.origin() {
        Some(OriginFields::Http1(h)) => h.as_bytes(),
        _ => &[],
    };
    let shared = Bytes::copy_from_slice(origin);
    let mut map = HeaderMap::with_capacity(16);
    head.for_each_field(|name, value| {
        let Ok(n) = HeaderName::from_bytes(name) else {
            return;
        };
        let start = value.as_ptr() as usize;
        let within = start >= origin.as_ptr() as usize
            && start + value.len() <= origin.as_ptr() as usize + origin.len();
        let v = if within && !value.is_empty() {
            let at = start - origin.as_ptr() as usize;
            HeaderValue::from_maybe_shared(shared.slice(at..at + value.len()))
        } else {
            HeaderValue::from_bytes(value)
        };
        let Ok(v) = v else { return };
        let v = if n == RAY_ID_HEADER {
            never_indexed(v)
        } else {
            v
        };
        map.append(n, v);
    });
    map
}

fn response(head: &ResponseHead, content_length: Option<u64>) -> Response<()> {
    let mut r = Response::new(());
    *r.status_mut() = StatusCode::from_u16(head.status()).unwrap_or(StatusCode::BAD_GATEWAY);
    *r.headers_mut() = header_map(head);
    if let Some(n) = content_length {
        r.headers_mut()
            .insert(http::header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    r
}

impl Downstream for Stream {
    async fn read_body(&mut self) -> Result<Option<Bytes>, BodyError> {
        match tokio::time::timeout(self.body_timeout, self.body.data()).await {
            Err(_) => Err(BodyError::TimedOut(self.body_timeout)),
            Ok(None) => Ok(None),
            Ok(Some(Err(_))) => Err(BodyError::ClientGone),
            Ok(Some(Ok(data))) => {
                let _ = self.body.flow_control().release_capacity(data.len());
                self.received += data.len() as u64;
                Ok(Some(data))
            }
        }
    }

    fn body_wire_bytes(&self) -> u64 {
        self.received
    }

    async fn send_continue(&mut self) -> Result<(), Gone> {
        let mut interim = Response::new(());
        *interim.status_mut() = StatusCode::CONTINUE;
        self.respond.send_informational(interim).map_err(|_| Gone)
    }

    async fn send_interim(&mut self, head: &ResponseHead) -> Result<(), Gone> {
        self.respond
            .send_informational(response(head, None))
            .map_err(|_| Gone)
    }

    async fn send_head(&mut self, head: &ResponseHead, kind: BodyKind) -> Result<(), Gone> {
        let status = head.status();
        let length = match kind {
            BodyKind::Length(n) => Some(n),
            BodyKind::None if status >= 200 && status != 204 => head.content_length,
            _ => None,
        };
        let end = kind == BodyKind::None;
        let send = self
            .respond
            .send_response(response(head, length), end)
            .map_err(|_| Gone)?;
        self.send = Some(send);
        Ok(())
    }

    async fn send_data(&mut self, data: &[u8], last: bool) -> Result<(), Gone> {
        let Some(send) = self.send.as_mut() else {
            return Ok(());
        };
        send_data(send, Bytes::copy_from_slice(data), last, SEND_STALL_TIMEOUT)
            .await
            .map_err(|_| Gone)?;
        self.sent += data.len() as u64;
        Ok(())
    }

    async fn send_trailers(&mut self, trailers: &[u8]) -> Result<(), Gone> {
        let Some(send) = self.send.as_mut() else {
            return Ok(());
        };
        send.send_trailers(trailer_map(trailers)).map_err(|_| Gone)
    }

    fn bytes_sent(&self) -> u64 {
        self.sent
    }

    fn cut_short(&mut self) {
        self.reset();
    }

    async fn client_gone(&mut self) {
        match self.send.as_mut() {
            Some(s) => {
                let _ = poll_fn(|c| s.poll_reset(c)).await;
            }
            None => {
                let _ = poll_fn(|c| self.respond.poll_reset(c)).await;
            }
        }
    }

    async fn tunnel(&mut self, _origin: OriginStream, _buffered: Vec<u8>) {
        // HTTP/2 has no Upgrade (RFC 9113 §8.6): h2 refuses the field, so no 101 reaches here.
        self.reset();
    }
}
