//! One HTTP/2 stream as the session's [`Downstream`]: DATA frames in, typed responses out as
//! HEADERS, DATA and trailers.

use std::future::poll_fn;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use smallvec::SmallVec;

use crate::h2_flow::{SEND_STALL_TIMEOUT, never_indexed, send_data, trailer_map};
use crate::message::{BodyKind, RAY_ID_HEADER, ResponseHead};
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

/// A response head as HTTP/2 fields. The origin's values, the ray id and the Content-Length
/// are copied into one buffer and given to the map as slices of it, one allocation for them
/// all; rampart's own fields keep their typed names and shared values (no name parsed back
/// from bytes, no copy); the map is made as large as the head; the ray id is never indexed.
fn response(head: &ResponseHead, content_length: Option<u64>) -> Response<()> {
    let mut fields: SmallVec<[(&[u8], &[u8]); 16]> = SmallVec::new();
    let mut room = 40;
    head.for_each_origin_field(|name, value| {
        room += value.len();
        fields.push((name, value));
    });
    let mut values = BytesMut::with_capacity(room);
    for (_, value) in &fields {
        values.extend_from_slice(value);
    }
    let ray_at = values.len();
    if let Some(r) = head.ray_id() {
        values.extend_from_slice(r.as_bytes());
    }
    let length_at = values.len();
    if let Some(n) = content_length {
        let mut digits = Vec::with_capacity(20);
        crate::text::write_decimal(&mut digits, n);
        values.extend_from_slice(&digits);
    }
    let values = values.freeze();
    let mut map = HeaderMap::with_capacity(fields.len() + head.added().len() + 2);
    let mut at = 0;
    for (name, value) in fields {
        let v = HeaderValue::from_maybe_shared(values.slice(at..at + value.len()));
        at += value.len();
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), v) {
            map.append(n, v);
        }
    }
    for (name, value) in head.added() {
        if let Ok(v) = HeaderValue::from_maybe_shared(value.clone()) {
            map.append(name.clone(), v);
        }
    }
    if head.ray_id().is_some()
        && let Ok(v) = HeaderValue::from_maybe_shared(values.slice(ray_at..length_at))
    {
        const RAY_ID: HeaderName = HeaderName::from_static(RAY_ID_HEADER);
        map.append(RAY_ID, never_indexed(v));
    }
    if content_length.is_some()
        && let Ok(v) = HeaderValue::from_maybe_shared(values.slice(length_at..))
    {
        map.insert(http::header::CONTENT_LENGTH, v);
    }
    let mut r = Response::new(());
    *r.status_mut() = StatusCode::from_u16(head.status()).unwrap_or(StatusCode::BAD_GATEWAY);
    *r.headers_mut() = map;
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
