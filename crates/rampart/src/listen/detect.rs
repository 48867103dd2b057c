//! What a connection speaks, decided in one place: over TLS, what ALPN chose (`h2`, else
//! HTTP/1.1); in cleartext, the HTTP/2 connection preface (prior knowledge, RFC 9113 §3.3) or
//! HTTP/1.1. Then the connection goes to its driver in [`crate::downstream`].

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::time::Instant as TokioInstant;

use crate::downstream;
use crate::runtime::Runtime;
use crate::stream::{ClientStream, Prefixed};

/// The connection preface a client sends first in cleartext HTTP/2 (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Size of the first read of a connection; most first requests fit in one.
const FIRST_READ: usize = 4096;

/// What a cleartext connection opened with.
enum Opening {
    /// Not the HTTP/2 preface: HTTP/1.1, with the bytes read so far (possibly none, when the
    /// first head's deadline passed).
    Http1(Vec<u8>),
    /// The HTTP/2 preface, with the bytes read so far.
    Http2(Vec<u8>),
    /// The connection closed, or shutdown began, before it sent anything.
    Closed,
}

/// Serves a cleartext connection with the driver its first bytes call for.
pub(super) async fn serve_plain(stream: tokio::net::TcpStream, peer: SocketAddr, rt: Arc<Runtime>) {
    let deadline = TokioInstant::now() + rt.generation().config.server.client_header_timeout;
    let mut stream = ClientStream::Plain(stream);
    match opening(&mut stream, &rt, deadline).await {
        Opening::Closed => {}
        Opening::Http1(buf) => downstream::h1::serve(stream, buf, None, peer, rt, deadline).await,
        Opening::Http2(buf) => {
            let io = Prefixed::new(buf, stream);
            Box::pin(downstream::h2::serve(io, None, false, peer, rt)).await
        }
    }
}

/// Reads until the first bytes tell the HTTP/2 preface from anything else. A connection that
/// sends nothing is closed silently at `deadline` or when shutdown begins; one that sent part
/// of a head goes to the HTTP/1.1 driver, which answers 408 at the deadline.
async fn opening(stream: &mut ClientStream, rt: &Runtime, deadline: TokioInstant) -> Opening {
    let mut buf = Vec::new();
    let mut shutdown = rt.shutdown_signal();
    let timer = tokio::time::sleep_until(deadline);
    tokio::pin!(timer);
    loop {
        if buf.starts_with(PREFACE) {
            return Opening::Http2(buf);
        }
        // Part of the preface: read on before taking it for HTTP/1.1.
        let preface_pending = buf.len() < PREFACE.len() && PREFACE.starts_with(&buf);
        if !buf.is_empty() && !preface_pending {
            return Opening::Http1(buf);
        }
        let nothing_sent = buf.is_empty();
        tokio::select! {
            biased;
            r = stream.read_some(&mut buf, FIRST_READ) => match r {
                Ok(0) | Err(_) => return Opening::Closed,
                Ok(_) => {}
            },
            _ = timer.as_mut() => {
                return if nothing_sent { Opening::Closed } else { Opening::Http1(buf) };
            }
            _ = shutdown.changed(), if nothing_sent => return Opening::Closed,
        }
    }
}

/// Completes the TLS handshake with the certificate the client's SNI selects, then serves the
/// protocol ALPN chose. A client naming a host no certificate covers, with no default
/// certificate configured, gets the fatal alert `unrecognized_name`. Handshake failures are
/// counted in the metrics, not logged: no request exists yet.
pub(super) async fn serve_tls(stream: tokio::net::TcpStream, peer: SocketAddr, rt: Arc<Runtime>) {
    let generation = rt.generation();
    let deadline = TokioInstant::now() + generation.config.server.client_header_timeout;
    let acceptor =
        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
    let start = match tokio::time::timeout_at(deadline, acceptor).await {
        Ok(Ok(start)) => start,
        Ok(Err(_)) => return rt.metrics.tls_handshake_failure("bad_client_hello"),
        Err(_) => return rt.metrics.tls_handshake_failure("timeout"),
    };
    let sni: Option<Box<str>> = start
        .client_hello()
        .server_name()
        .map(|n| n.trim_end_matches('.').to_ascii_lowercase().into());
    let hello = start.client_hello();
    let acme_validation = hello
        .alpn()
        .is_some_and(|mut p| p.any(|p| p == crate::acme::ACME_TLS_ALPN));
    if acme_validation {
        // TLS-ALPN-01 (RFC 8737): a CA checking a name, never an HTTP client. The
        // validation certificate, while one is pending for the name; the connection closes
        // after the handshake.
        let pending = sni.as_deref().and_then(|n| generation.acme.tls_alpn01(n));
        let Some(config) = pending else {
            let mut io = start.io;
            let _ = io.shutdown().await;
            return rt.metrics.tls_handshake_failure("unknown_sni");
        };
        if let Ok(Ok(mut tls)) = tokio::time::timeout_at(deadline, start.into_stream(config)).await
        {
            let _ = tls.shutdown().await;
        }
        return;
    }
    let Some(config) = generation.certificate_for(sni.as_deref()) else {
        let mut io = start.io;
        let _ = io.write_all(&crate::tls::UNRECOGNIZED_NAME_ALERT).await;
        let _ = io.shutdown().await;
        return rt.metrics.tls_handshake_failure("unknown_sni");
    };
    let tls = match tokio::time::timeout_at(deadline, start.into_stream(config)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(_)) => return rt.metrics.tls_handshake_failure("handshake"),
        Err(_) => return rt.metrics.tls_handshake_failure("timeout"),
    };
    drop(generation);
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let stream = ClientStream::Tls(Box::new(tls));
    if h2 {
        downstream::h2::serve(stream, sni, true, peer, rt).await;
    } else {
        let deadline = TokioInstant::now() + rt.generation().config.server.client_header_timeout;
        downstream::h1::serve(stream, Vec::new(), sni, peer, rt, deadline).await;
    }
}
