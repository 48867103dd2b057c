//! Control-frame floods: a client that sends PING or SETTINGS frames faster than any client
//! needs (each obliges the server to answer with an ACK, which queues up when the client does
//! not read) gets GOAWAY with ENHANCE_YOUR_CALM, as for rapid reset (CVE-2019-9512, -9515).
//!
//! h2 answers every PING and SETTINGS frame and has no limit of its own on them, so the
//! frames are counted here, on their way in: the connection's bytes pass through [`Guarded`],
//! which reads the frame headers (RFC 9113 §4.1) and skips the payloads. A leaky bucket
//! allows bursts of [`CONTROL_FRAME_BURST`] and a lasting [`CONTROL_FRAMES_PER_SEC`];
//! browsers send a handful per connection, gRPC keepalives one every few seconds.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::Notify;

/// Control frames a client may send at once before the flood limit applies.
pub const CONTROL_FRAME_BURST: u32 = 1_000;

/// Control frames a client may send per second, lastingly.
pub const CONTROL_FRAMES_PER_SEC: u32 = 100;

/// The client connection preface (RFC 9113 §3.4), which comes before the first frame.
const PREFACE_LEN: usize = 24;

const FRAME_HEADER_LEN: usize = 9;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const ACK: u8 = 0x1;

/// Whether a connection's client flooded it, and a way to wait for that.
#[derive(Default)]
pub(super) struct Flood {
    tripped: AtomicBool,
    notify: Notify,
}

impl Flood {
    /// Resolves once the client has sent more control frames than allowed.
    pub(super) async fn tripped(&self) {
        let notified = self.notify.notified();
        if self.tripped.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }

    fn trip(&self) {
        self.tripped.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }
}

/// Where the scan is in the client's byte stream.
struct Scan {
    /// Preface bytes still to pass.
    preface_left: usize,
    /// The frame header being read.
    header: [u8; FRAME_HEADER_LEN],
    /// How much of it is read.
    have: usize,
    /// Payload bytes of the current frame still to pass.
    payload_left: usize,
    /// Control frames the client may still send now (the bucket's level).
    allowance: f64,
    /// When the allowance was last topped up.
    topped_up: Instant,
}

impl Scan {
    fn new(now: Instant) -> Scan {
        Scan {
            preface_left: PREFACE_LEN,
            header: [0; FRAME_HEADER_LEN],
            have: 0,
            payload_left: 0,
            allowance: f64::from(CONTROL_FRAME_BURST),
            topped_up: now,
        }
    }

    /// Reads `bytes`, the next of the stream, arrived at `now`; returns whether the client is
    /// over its limit.
    fn feed(&mut self, mut bytes: &[u8], now: Instant) -> bool {
        let mut over = false;
        while !bytes.is_empty() {
            let skip = if self.preface_left > 0 {
                let n = self.preface_left.min(bytes.len());
                self.preface_left -= n;
                n
            } else if self.payload_left > 0 {
                let n = self.payload_left.min(bytes.len());
                self.payload_left -= n;
                n
            } else {
                let n = (FRAME_HEADER_LEN - self.have).min(bytes.len());
                self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
                self.have += n;
                if self.have == FRAME_HEADER_LEN {
                    self.have = 0;
                    let h = self.header;
                    self.payload_left =
                        usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                    let (kind, flags) = (h[3], h[4]);
                    if matches!(kind, PING | SETTINGS) && flags & ACK == 0 && !self.allow(now) {
                        over = true;
                    }
                }
                n
            };
            bytes = &bytes[skip..];
        }
        over
    }

    /// Takes one control frame from the allowance; `false` when none is left.
    fn allow(&mut self, now: Instant) -> bool {
        let earned =
            now.duration_since(self.topped_up).as_secs_f64() * f64::from(CONTROL_FRAMES_PER_SEC);
        self.allowance = (self.allowance + earned).min(f64::from(CONTROL_FRAME_BURST));
        self.topped_up = now;
        if self.allowance < 1.0 {
            return false;
        }
        self.allowance -= 1.0;
        true
    }
}

/// A client connection whose incoming frames are counted. Once the client floods, nothing
/// more is read from it: h2 sends its GOAWAY and the connection ends.
pub(super) struct Guarded<T> {
    io: T,
    scan: Scan,
    flood: Arc<Flood>,
}

impl<T> Guarded<T> {
    pub(super) fn new(io: T, flood: Arc<Flood>) -> Guarded<T> {
        Guarded {
            io,
            scan: Scan::new(Instant::now()),
            flood,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.flood.tripped.load(Ordering::Acquire) {
            // The connection task ends the connection; no more of the flood is taken in.
            return Poll::Pending;
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read
            && this.scan.feed(&buf.filled()[before..], Instant::now())
        {
            this.flood.trip();
        }
        read
    }
}

crate::stream::write_through!(Guarded, io);

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            kind,
            flags,
            0,
            0,
            0,
            0,
        ];
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn pings_and_settings_past_the_burst_trip_and_acks_do_not_count() {
        let now = Instant::now();
        let mut scan = Scan::new(now);
        let mut stream = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        stream.extend(frame(SETTINGS, 0, &[0; 6]));
        for _ in 0..5_000 {
            stream.extend(frame(PING, ACK, &[0; 8]));
            stream.extend(frame(SETTINGS, ACK, &[]));
        }
        // A large DATA frame whose payload looks like PING headers is skipped whole.
        let fake: Vec<u8> = (0..2_000).flat_map(|_| frame(PING, 0, &[0; 8])).collect();
        stream.extend(frame(0x0, 0, &fake));
        for _ in 0..CONTROL_FRAME_BURST - 2 {
            stream.extend(frame(PING, 0, &[0; 8]));
        }
        // Fed a byte at a time, the way a slow client might send it.
        for b in &stream {
            assert!(!scan.feed(std::slice::from_ref(b), now), "within the burst");
        }
        assert!(
            !scan.feed(&frame(SETTINGS, 0, &[]), now),
            "the last one allowed"
        );
        assert!(
            scan.feed(&frame(PING, 0, &[0; 8]), now),
            "one past the burst"
        );
        // A second later, the client has earned CONTROL_FRAMES_PER_SEC more.
        let later = now + std::time::Duration::from_secs(1);
        for _ in 0..CONTROL_FRAMES_PER_SEC {
            assert!(!scan.feed(&frame(PING, 0, &[0; 8]), later));
        }
        assert!(scan.feed(&frame(PING, 0, &[0; 8]), later));
    }
}
