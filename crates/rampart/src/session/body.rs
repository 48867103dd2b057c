//! The request body on its way to the origin: `100 Continue` when it is first needed, the
//! body limit counted as it streams, and the prefix a phase inspects kept to be sent on.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rampart_http::{BodyFraming, RequestHead};

use super::Downstream;
use crate::errors::{EdgeError, Rejection};
use crate::message::ResponseHead;
use crate::pipeline::InspectedBody;
use crate::pipeline::limits::{BodySize, body_too_large};
use crate::upstream::ClientSide;

/// Why the client's side could not deliver the request body.
#[derive(Debug)]
pub enum BodyError {
    /// No body bytes arrived within `client_body_timeout`: 408.
    TimedOut(Duration),
    /// The body's framing is malformed (a chunked body): 400.
    Malformed(String),
    /// A chunk size declares more body than the limit allows: 413.
    TooLarge {
        /// Bytes of body the chunk sizes declare.
        declared: u64,
        /// The limit.
        max: u64,
    },
    /// The client closed the connection or reset the stream: logged as 499.
    ClientGone,
}

/// Why the client's side ended an exchange.
#[derive(Debug)]
pub enum Abort {
    /// The body broke a rule: answer with this error (and close an HTTP/1.1 connection,
    /// whose framing cannot be trusted any more).
    Reject(Rejection),
    /// The client left.
    Gone,
}

impl From<BodyError> for Abort {
    fn from(e: BodyError) -> Abort {
        match e {
            BodyError::TimedOut(d) => Abort::Reject(Rejection::explained(
                EdgeError::RequestTimeout,
                format!(
                    "the request body stalled: no bytes arrived for {}",
                    humantime::format_duration(d)
                ),
            )),
            BodyError::Malformed(e) => Abort::Reject(Rejection::explained(
                EdgeError::BadRequest,
                format!("malformed chunked body: {e}"),
            )),
            BodyError::TooLarge { declared, max } => {
                Abort::Reject(body_too_large(declared, max, BodySize::Chunked))
            }
            BodyError::ClientGone => Abort::Gone,
        }
    }
}

/// One request's body: what was read from the client, and what was given to the origin.
pub(super) struct RequestBody {
    /// `Expect: 100-continue` not answered yet.
    continue_pending: bool,
    /// Pieces read (for an inspecting phase) and not yet given to the origin.
    replay: VecDeque<Bytes>,
    /// Bytes read from the client.
    received: u64,
    /// Bytes given to the origin.
    taken: u64,
    /// The client's body has ended.
    ended: bool,
    /// The body limit: 413 past it.
    max: u64,
}

impl RequestBody {
    pub(super) fn new(head: &RequestHead, max: u64) -> RequestBody {
        let none = head.body() == BodyFraming::None;
        RequestBody {
            continue_pending: head.expect_continue() && !none,
            replay: VecDeque::new(),
            received: 0,
            taken: 0,
            ended: none,
            max,
        }
    }

    /// Bytes read from the client so far.
    pub(super) fn received(&self) -> u64 {
        self.received
    }

    /// The next piece from the client. The first read answers `Expect: 100-continue` (RFC
    /// 9110 §10.1.1: only once the body is wanted, so a request refused by its head never
    /// sends it).
    async fn read<D: Downstream>(&mut self, ds: &mut D) -> Result<Option<Bytes>, Abort> {
        if self.ended {
            return Ok(None);
        }
        if self.continue_pending {
            self.continue_pending = false;
            ds.send_continue().await.map_err(|_| Abort::Gone)?;
        }
        match ds.read_body().await? {
            None => {
                self.ended = true;
                Ok(None)
            }
            Some(piece) => {
                self.received += piece.len() as u64;
                if self.received > self.max {
                    return Err(Abort::Reject(body_too_large(
                        self.received,
                        self.max,
                        BodySize::Counted,
                    )));
                }
                Ok(Some(piece))
            }
        }
    }

    /// The next piece for the origin: what an inspecting phase read first, then the rest.
    pub(super) async fn next<D: Downstream>(&mut self, ds: &mut D) -> Result<Option<Bytes>, Abort> {
        let piece = match self.replay.pop_front() {
            Some(p) => Some(p),
            None => self.read(ds).await?,
        };
        if let Some(p) = &piece {
            self.taken += p.len() as u64;
        }
        Ok(piece)
    }

    /// Reads up to `max` bytes of the body for a phase to inspect; they are kept to be sent
    /// on. Reads on while the body is short of `max`.
    pub(super) async fn inspect<D: Downstream>(
        &mut self,
        ds: &mut D,
        max: usize,
    ) -> Result<InspectedBody, Abort> {
        let mut have: usize = self.replay.iter().map(Bytes::len).sum();
        while have <= max {
            match self.read(ds).await? {
                Some(p) => {
                    have += p.len();
                    self.replay.push_back(p);
                }
                None => break,
            }
        }
        let mut bytes = BytesMut::with_capacity(have.min(max));
        for p in &self.replay {
            let room = max - bytes.len();
            bytes.extend_from_slice(&p[..p.len().min(room)]);
            if bytes.len() == max {
                break;
            }
        }
        Ok(InspectedBody {
            bytes: bytes.freeze(),
            truncated: have > max,
        })
    }
}

/// The client's side as the upstream sees it, for one fetch.
pub(super) struct ClientPort<'a, D> {
    pub(super) ds: &'a mut D,
    pub(super) body: &'a mut RequestBody,
}

impl<D: Downstream> ClientSide for ClientPort<'_, D> {
    type Abort = Abort;

    async fn body_chunk(&mut self) -> Result<Option<Bytes>, Abort> {
        self.body.next(self.ds).await
    }

    fn body_taken(&self) -> u64 {
        self.body.taken
    }

    async fn interim(&mut self, head: ResponseHead) -> Result<(), Abort> {
        self.ds.send_interim(&head).await.map_err(|_| Abort::Gone)
    }

    async fn gone(&mut self) -> Abort {
        self.ds.client_gone().await;
        Abort::Gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::BodyKind;
    use crate::session::Gone;
    use crate::stream::OriginStream;

    /// A client side held in memory: the body pieces it will give, and what was sent to it.
    #[derive(Default)]
    struct Memory {
        pieces: VecDeque<Result<Bytes, &'static str>>,
        continues: u32,
        reads: u32,
    }

    impl Downstream for Memory {
        async fn read_body(&mut self) -> Result<Option<Bytes>, BodyError> {
            self.reads += 1;
            match self.pieces.pop_front() {
                None => Ok(None),
                Some(Ok(b)) => Ok(Some(b)),
                Some(Err("timeout")) => Err(BodyError::TimedOut(Duration::from_secs(3))),
                Some(Err(_)) => Err(BodyError::ClientGone),
            }
        }
        fn body_wire_bytes(&self) -> u64 {
            0
        }
        async fn send_continue(&mut self) -> Result<(), Gone> {
            self.continues += 1;
            Ok(())
        }
        async fn send_interim(&mut self, _: &ResponseHead) -> Result<(), Gone> {
            Ok(())
        }
        async fn send_head(&mut self, _: &ResponseHead, _: BodyKind) -> Result<(), Gone> {
            Ok(())
        }
        async fn send_data(&mut self, _: &[u8], _: bool) -> Result<(), Gone> {
            Ok(())
        }
        async fn send_trailers(&mut self, _: &[u8]) -> Result<(), Gone> {
            Ok(())
        }
        fn bytes_sent(&self) -> u64 {
            0
        }
        fn cut_short(&mut self) {}
        async fn client_gone(&mut self) {
            std::future::pending().await
        }
        async fn tunnel(&mut self, _: OriginStream, _: Vec<u8>) {}
    }

    fn head(raw: &str) -> RequestHead {
        match rampart_http::parse_request_head(raw.as_bytes(), &rampart_http::Limits::default()) {
            Ok(rampart_http::Parse::Complete((h, _))) => h,
            other => panic!("{other:?}"),
        }
    }

    fn client(pieces: &[&'static str]) -> Memory {
        Memory {
            pieces: pieces
                .iter()
                .map(|p| match *p {
                    "timeout" | "gone" => Err(*p),
                    data => Ok(Bytes::from_static(data.as_bytes())),
                })
                .collect(),
            ..Memory::default()
        }
    }

    const CHUNKED: &str =
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n";

    async fn drain(body: &mut RequestBody, ds: &mut Memory) -> Result<Vec<u8>, Abort> {
        let mut all = Vec::new();
        while let Some(p) = body.next(ds).await? {
            all.extend_from_slice(&p);
        }
        Ok(all)
    }

    #[tokio::test]
    async fn an_inspected_prefix_is_still_sent_whole_and_continue_goes_once_before_the_first_read()
    {
        let mut ds = client(&["abcd", "efgh", "ij"]);
        let mut body = RequestBody::new(&head(CHUNKED), 100);
        assert_eq!(ds.continues, 0);
        let seen = body.inspect(&mut ds, 6).await.unwrap();
        assert_eq!(
            seen,
            InspectedBody {
                bytes: Bytes::from_static(b"abcdef"),
                truncated: true
            }
        );
        assert_eq!(ds.continues, 1);
        assert_eq!(drain(&mut body, &mut ds).await.unwrap(), b"abcdefghij");
        assert_eq!((ds.continues, body.taken), (1, 10));
    }

    #[tokio::test]
    async fn a_body_within_the_inspection_limit_is_not_truncated() {
        let mut ds = client(&["abc"]);
        let mut body = RequestBody::new(&head(CHUNKED), 100);
        let seen = body.inspect(&mut ds, 3).await.unwrap();
        assert!(!seen.truncated);
        assert_eq!(drain(&mut body, &mut ds).await.unwrap(), b"abc");
    }

    #[tokio::test]
    async fn a_streamed_body_past_the_limit_is_413_at_the_piece_that_passes_it() {
        let mut ds = client(&["12345", "67890", "x", "never read"]);
        let mut body = RequestBody::new(&head(CHUNKED), 10);
        let Err(Abort::Reject(r)) = drain(&mut body, &mut ds).await else {
            panic!("413 expected");
        };
        assert_eq!(r.status(), 413);
        assert_eq!(
            ds.reads, 3,
            "nothing is read after the piece that passed the limit"
        );
    }

    #[tokio::test]
    async fn a_stall_is_408_and_a_client_that_leaves_is_gone() {
        let mut ds = client(&["ab", "timeout"]);
        let mut body = RequestBody::new(&head(CHUNKED), 10);
        let Err(Abort::Reject(r)) = drain(&mut body, &mut ds).await else {
            panic!("408 expected");
        };
        assert_eq!(r.status(), 408);
        assert!(r.detail.contains("3s"), "{}", r.detail);
        let mut ds = client(&["gone"]);
        let mut body = RequestBody::new(&head(CHUNKED), 10);
        assert!(matches!(drain(&mut body, &mut ds).await, Err(Abort::Gone)));
    }

    #[tokio::test]
    async fn without_a_body_nothing_is_read_and_no_continue_is_sent() {
        let mut ds = client(&["stray"]);
        let mut body = RequestBody::new(
            &head("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n"),
            10,
        );
        assert_eq!(drain(&mut body, &mut ds).await.unwrap(), b"");
        assert_eq!((ds.reads, ds.continues), (0, 0));
    }
}
