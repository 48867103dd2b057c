//! A connection's byte stream: plain TCP, or TLS over TCP. The same type serves client
//! connections ([`ClientStream`]) and origin connections ([`OriginStream`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// A stream that is TCP, or TLS (of type `T`) over TCP.
pub enum MaybeTls<T> {
    /// Cleartext.
    Plain(TcpStream),
    /// TLS, handshake done (boxed: the TLS state is large and most connections are plain).
    Tls(Box<T>),
}

/// Byte buffers kept per thread for reuse: the read buffers of connections going idle (an idle
/// keep-alive connection holds none, so without these each request on it would allocate one,
/// 4 KB, beyond malloc's per-thread cache, and free it), and the heads written for a proxied
/// request and its response.
pub mod buffers {
    use std::cell::RefCell;

    /// At most this many buffers are kept per thread: mostly 4 KB client reads, some 32 KB
    /// origin reads (at most 8 MB per thread).
    const KEPT: usize = 256;
    /// Buffers that grew beyond this are freed instead of kept (an origin read is 32 KB).
    const KEPT_CAPACITY: usize = 32 << 10;

    thread_local! {
        static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    }

    /// An empty buffer with room for at least `room` bytes: a kept one if there is one.
    pub fn take(room: usize) -> Vec<u8> {
        let mut buf = FREE.with(|f| f.borrow_mut().pop()).unwrap_or_default();
        buf.reserve(room);
        buf
    }

    /// Takes back a buffer that is no longer needed (its contents are discarded).
    pub fn give(mut buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > KEPT_CAPACITY {
            return;
        }
        buf.clear();
        FREE.with(|f| {
            let mut free = f.borrow_mut();
            if free.len() < KEPT {
                free.push(buf);
            }
        });
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn buffers_come_back_empty_with_their_capacity_and_only_so_many_are_kept() {
            assert_eq!(take(0).capacity(), 0, "nothing kept yet on this thread");
            let mut buf = Vec::with_capacity(4096);
            buf.extend_from_slice(b"GET / HTTP/1.1\r\n");
            let at = buf.as_ptr();
            give(buf);
            let again = take(0);
            assert!(again.is_empty());
            assert_eq!((again.as_ptr(), again.capacity()), (at, 4096));
            give(Vec::with_capacity(KEPT_CAPACITY + 1));
            assert_eq!(take(0).capacity(), 0, "a grown buffer is freed");
            for _ in 0..KEPT + 10 {
                give(Vec::with_capacity(4096));
            }
            let kept = std::iter::from_fn(|| Some(take(0)))
                .take_while(|b| b.capacity() > 0)
                .count();
            assert_eq!(kept, KEPT);
        }
    }
}

/// Room for `chunk` more bytes in `buf`, which takes a kept buffer if it has none.
fn make_room(buf: &mut Vec<u8>, chunk: usize) {
    if buf.capacity() == 0 {
        *buf = buffers::take(chunk);
    } else {
        buf.reserve(chunk);
    }
}

/// A client connection.
pub type ClientStream = MaybeTls<tokio_rustls::server::TlsStream<TcpStream>>;

/// A connection to an origin.
pub type OriginStream = MaybeTls<tokio_rustls::client::TlsStream<TcpStream>>;

impl<T: AsyncRead + AsyncWrite + Unpin> MaybeTls<T> {
    /// Reads what is available into `buf`, growing it by at most `chunk`.
    ///
    /// On a plain stream the buffer only grows once the socket is readable, so an idle
    /// keep-alive connection holds no read buffer. A TLS stream may hold decrypted bytes the
    /// socket no longer signals, so it is read directly.
    pub async fn read_some(&mut self, buf: &mut Vec<u8>, chunk: usize) -> io::Result<usize> {
        match self {
            MaybeTls::Plain(s) => loop {
                s.readable().await?;
                make_room(buf, chunk);
                let room = buf.capacity() - buf.len();
                match s.try_read_buf(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Ok(n) if n > 0 && n < room => {
                        // A short read drained the socket (edge-triggered epoll): forget its
                        // readiness now, as tokio's own reads do, instead of learning it from
                        // one more read that would block. A close stays visible (tokio keeps
                        // the closed state when clearing).
                        let _ = s.try_io(Interest::READABLE, || {
                            Err::<(), _>(io::ErrorKind::WouldBlock.into())
                        });
                        return Ok(n);
                    }
                    other => return other,
                }
            },
            MaybeTls::Tls(s) => {
                make_room(buf, chunk);
                s.read_buf(buf).await
            }
        }
    }

    /// Whether the connection is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, MaybeTls::Tls(_))
    }

    /// For an idle pooled connection: `true` while the peer has neither closed it nor sent
    /// anything (a live idle connection would block). Polls once, never waits.
    pub fn is_idle_and_open(&mut self) -> bool {
        let mut probe = [0u8; 1];
        let mut buf = ReadBuf::new(&mut probe);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        // TLS may consume records with no application data (session tickets): still Pending.
        matches!(Pin::new(self).poll_read(&mut cx, &mut buf), Poll::Pending)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTls::Plain(s) => s.is_write_vectored(),
            MaybeTls::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// `impl AsyncWrite` for a wrapper around a stream in its field `$field` that reads its own
/// way (a prefix first, frames counted) and writes straight through, vectored writes
/// included.
macro_rules! write_through {
    ($ty:ident, $field:ident) => {
        impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for $ty<S> {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.get_mut().$field).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.get_mut().$field).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.$field.is_write_vectored()
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.get_mut().$field).poll_flush(cx)
            }

            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.get_mut().$field).poll_shutdown(cx)
            }
        }
    };
}
pub(crate) use write_through;

/// A stream whose first bytes were already read: they are read again first. Used when a
/// cleartext connection turns out to be HTTP/2 after its first bytes.
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    /// `prefix` is read before anything from `inner`.
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        Prefixed {
            prefix,
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let n = (this.prefix.len() - this.pos).min(buf.remaining());
            buf.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

write_through!(Prefixed, inner);
