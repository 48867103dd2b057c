//! The origin client: a pool of kept-alive connections per zone, and connecting with the
//! timeout and retry rules of the error catalogue (521, 522, 523, 409 / 1001).
//!
//! The HTTP exchange itself (writing the request, reading the response) is in the protocol
//! driver, which streams bytes through rampart-http's framing; this module owns sockets only.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

mod h2_bridge;

use crate::config::{OriginAddr, Zone};
use crate::errors::EdgeError;
use crate::listen::WorkerSlot;
use crate::observe::Metrics;
use crate::pipeline::Rejection;
use crate::stream::OriginStream;

/// Most idle connections kept per origin.
pub const MAX_IDLE_PER_ORIGIN: usize = 512;

/// An idle pooled connection older than this is closed rather than reused (origins commonly
/// close idle keep-alive connections after 60 s or more; staying under that avoids most races).
pub const MAX_IDLE_TIME: Duration = Duration::from_secs(50);

/// Why no usable connection or response came from the origin.
#[derive(Debug)]
pub enum OriginError {
    /// The origin's hostname did not resolve: 409 / 1001.
    HostDoesNotResolve(String),
    /// The origin refused the connection: 521.
    Refused(std::io::Error),
    /// Every connect attempt timed out: 522.
    ConnectTimedOut {
        /// How many attempts were made.
        attempts: u32,
        /// The timeout of each.
        each: Duration,
    },
    /// No route to the origin: 523.
    Unreachable(std::io::Error),
    /// Connected, but no response head in time: 524.
    ResponseTimedOut(Duration),
    /// The origin's answer is not valid HTTP: 502.
    InvalidResponse(String),
    /// The origin closed or reset the connection before a complete response head: 502.
    ClosedBeforeResponse,
    /// The TLS handshake with an `https://` origin failed or timed out: 525.
    TlsHandshake(String),
    /// An `https://` origin's certificate did not verify: 526.
    InvalidCertificate(String),
}

impl OriginError {
    /// The generated error the client gets for this failure.
    pub fn rejection(&self, origin: &OriginAddr) -> Rejection {
        let (error, detail) = match self {
            OriginError::HostDoesNotResolve(e) => (
                EdgeError::DnsResolutionError,
                format!(
                    "the origin's hostname `{}` does not resolve: {e}",
                    origin.host
                ),
            ),
            OriginError::Refused(e) => (
                EdgeError::WebServerDown,
                format!("the origin {origin} refused the connection ({e})"),
            ),
            OriginError::ConnectTimedOut { attempts, each } => (
                EdgeError::ConnectionTimedOut,
                format!(
                    "{attempts} connection attempt{} to the origin {origin} each timed out after {}",
                    if *attempts == 1 { "" } else { "s" },
                    humantime::format_duration(*each)
                ),
            ),
            OriginError::Unreachable(e) => (
                EdgeError::OriginUnreachable,
                format!("no route to the origin {origin} ({e})"),
            ),
            OriginError::ResponseTimedOut(d) => (
                EdgeError::Timeout,
                format!(
                    "the origin {origin} accepted the connection but sent no response head within {}",
                    humantime::format_duration(*d)
                ),
            ),
            OriginError::InvalidResponse(e) => (
                EdgeError::BadGateway,
                format!("the origin {origin} sent an invalid response: {e}"),
            ),
            OriginError::ClosedBeforeResponse => (
                EdgeError::BadGateway,
                format!(
                    "the origin {origin} closed the connection without sending a complete response"
                ),
            ),
            OriginError::TlsHandshake(e) => (
                EdgeError::SslHandshakeFailed,
                format!("the TLS handshake with the origin {origin} failed: {e}"),
            ),
            OriginError::InvalidCertificate(e) => (
                EdgeError::InvalidSslCertificate,
                format!("the origin {origin} presented an invalid certificate: {e}"),
            ),
        };
        Rejection::new(error, detail)
    }
}

/// A connection to an origin, fresh or from the pool.
pub struct OriginConn {
    /// The connection (TLS for an `https://` origin).
    pub stream: OriginStream,
    /// The origin's address.
    pub addr: SocketAddr,
    /// Whether it came from the pool (and so may turn out dead on first use).
    pub reused: bool,
}

impl OriginConn {
    fn new(stream: OriginStream, addr: SocketAddr) -> OriginConn {
        OriginConn {
            stream,
            addr,
            reused: false,
        }
    }
}

struct Idle {
    stream: OriginStream,
    addr: SocketAddr,
    since: Instant,
}

/// Idle lists per origin: one per worker thread (up to this many), so that a connection is
/// only ever reused by the worker whose event loop it is registered with.
const POOL_SHARDS: usize = 64;

/// Kept-alive connections to one origin.
///
/// Idle connections are kept per worker thread. A socket belongs to the event loop of the
/// worker that opened it; reused by another worker, each of its reads would need the first
/// worker's loop to notice the readiness and wake the second (a thread hop and an eventfd
/// write per response, measured with strace).
pub struct OriginPool {
    addr: OriginAddr,
    idle: Box<[WorkerSlot<Mutex<Vec<Idle>>>]>,
    /// With `origin_protocol = "h2"`: the one shared HTTP/2 connection and its address.
    h2: tokio::sync::Mutex<Option<(h2_bridge::Shared, SocketAddr)>>,
}

impl OriginPool {
    /// An empty pool for `addr`.
    pub fn new(addr: OriginAddr) -> OriginPool {
        OriginPool {
            addr,
            idle: (0..POOL_SHARDS)
                .map(|_| WorkerSlot(Mutex::new(Vec::new())))
                .collect(),
            h2: tokio::sync::Mutex::new(None),
        }
    }

    /// The origin's address as configured.
    pub fn addr(&self) -> &OriginAddr {
        &self.addr
    }

    /// A pooled connection if one is alive, else a new one.
    pub async fn checkout(
        &self,
        zone: &Zone,
        metrics: &Metrics,
    ) -> Result<OriginConn, OriginError> {
        if let Some(conn) = self.take_idle() {
            return Ok(conn);
        }
        // Boxed: connecting (resolution, retries, TLS) is a large future that a request
        // served from the pool should not carry, nor copy when its own future is boxed.
        if zone.origin_protocol == crate::config::OriginProtocol::H2 {
            return Box::pin(self.checkout_h2(zone, metrics)).await;
        }
        Box::pin(self.connect(zone, metrics)).await
    }

    /// This worker's idle list.
    fn idle_here(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        let shard = crate::listen::worker_index() % self.idle.len();
        self.idle[shard].0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take_idle(&self) -> Option<OriginConn> {
        let mut idle = self.idle_here();
        while let Some(mut c) = idle.pop() {
            if c.since.elapsed() > MAX_IDLE_TIME {
                continue;
            }
            // A connection the origin closed while idle reads EOF (or has stray bytes, which
            // make it unusable too); a live one would block.
            if c.stream.is_idle_and_open() {
                return Some(OriginConn {
                    stream: c.stream,
                    addr: c.addr,
                    reused: true,
                });
            }
        }
        None
    }

    /// Returns a connection whose exchange completed cleanly to the pool, and its read
    /// buffer (`buf`, whose contents are discarded) to the thread's kept buffers: an idle
    /// connection holds no buffer, so idle origin connections cost no buffer memory however
    /// many there are.
    pub fn checkin(&self, conn: OriginConn, buf: Vec<u8>) {
        crate::stream::buffers::give(buf);
        let mut idle = self.idle_here();
        if idle.len() >= MAX_IDLE_PER_ORIGIN {
            idle.remove(0);
        }
        idle.push(Idle {
            stream: conn.stream,
            addr: conn.addr,
            since: Instant::now(),
        });
    }

    /// Opens a new connection: resolve, then connect with `origin_connect_timeout` per attempt
    /// and `origin_connect_retries` extra attempts after a timeout.
    pub async fn connect(&self, zone: &Zone, metrics: &Metrics) -> Result<OriginConn, OriginError> {
        let addrs: Vec<SocketAddr> = match self.addr.ip {
            Some(a) => vec![a],
            None => {
                match tokio::net::lookup_host((self.addr.host.as_str(), self.addr.port)).await {
                    Ok(it) => {
                        let v: Vec<SocketAddr> = it.collect();
                        if v.is_empty() {
                            return Err(OriginError::HostDoesNotResolve("no addresses".into()));
                        }
                        v
                    }
                    Err(e) => return Err(OriginError::HostDoesNotResolve(e.to_string())),
                }
            }
        };
        let attempts = zone.origin_connect_retries + 1;
        let each = zone.origin_connect_timeout;
        for attempt in 0..attempts {
            let addr = addrs[attempt as usize % addrs.len()];
            match tokio::time::timeout(each, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    let stream = match &zone.origin_tls {
                        Some(tls) if self.addr.tls => self.handshake(stream, tls, zone).await?,
                        _ => OriginStream::Plain(stream),
                    };
                    return Ok(OriginConn::new(stream, addr));
                }
                Ok(Err(e)) => {
                    return Err(match e.kind() {
                        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => {
                            OriginError::Unreachable(e)
                        }
                        _ => OriginError::Refused(e),
                    });
                }
                Err(_elapsed) => {
                    if attempt + 1 < attempts {
                        metrics.connect_retry(&zone.name);
                    }
                }
            }
        }
        Err(OriginError::ConnectTimedOut { attempts, each })
    }

    /// TLS to an `https://` origin, sending its host name as SNI (none for an IP literal,
    /// whose certificate must then name the IP). Bounded by `origin_connect_timeout`.
    async fn handshake(
        &self,
        tcp: TcpStream,
        tls: &crate::tls::OriginTls,
        zone: &Zone,
    ) -> Result<OriginStream, OriginError> {
        let name = rustls::pki_types::ServerName::try_from(self.addr.host.clone())
            .map_err(|e| OriginError::TlsHandshake(format!("`{}`: {e}", self.addr.host)))?;
        let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
        match tokio::time::timeout(zone.origin_connect_timeout, connector.connect(name, tcp)).await
        {
            Ok(Ok(stream)) => Ok(OriginStream::Tls(Box::new(stream))),
            Ok(Err(e)) => Err(tls_failure(e)),
            Err(_) => Err(OriginError::TlsHandshake(format!(
                "no TLS handshake within {}",
                humantime::format_duration(zone.origin_connect_timeout)
            ))),
        }
    }
}

/// Sorts a failed handshake into 526 (the certificate does not verify) or 525 (anything
/// else: protocol mismatch, alert from the origin, connection closed).
fn tls_failure(e: std::io::Error) -> OriginError {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(c)) => {
            OriginError::InvalidCertificate(certificate_problem(c))
        }
        Some(other) => OriginError::TlsHandshake(other.to_string()),
        None => OriginError::TlsHandshake(e.to_string()),
    }
}

/// A certificate error in words an operator recognises.
fn certificate_problem(c: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match c {
        C::Expired | C::ExpiredContext { .. } => "it has expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet".into(),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "it is not issued for the origin's host name".into()
        }
        C::UnknownIssuer => "it is not signed by a trusted authority".into(),
        C::Revoked => "it has been revoked".into(),
        C::BadSignature => "its signature is invalid".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_origin_failure_maps_to_its_catalogue_entry() {
        let origin = OriginAddr::parse("http://origin.test:8080").unwrap();
        let io = || std::io::Error::other("x");
        let cases: Vec<(OriginError, u16, Option<u16>, &str)> = vec![
            (
                OriginError::HostDoesNotResolve("no such host".into()),
                409,
                Some(1001),
                "does not resolve",
            ),
            (OriginError::Refused(io()), 521, None, "refused"),
            (
                OriginError::ConnectTimedOut {
                    attempts: 2,
                    each: Duration::from_secs(15),
                },
                522,
                None,
                "2 connection attempts",
            ),
            (OriginError::Unreachable(io()), 523, None, "no route"),
            (
                OriginError::ResponseTimedOut(Duration::from_secs(100)),
                524,
                None,
                "1m 40s",
            ),
            (
                OriginError::InvalidResponse("bad status line".into()),
                502,
                None,
                "bad status line",
            ),
            (
                OriginError::ClosedBeforeResponse,
                502,
                None,
                "closed the connection",
            ),
            (
                OriginError::TlsHandshake("peer sent no certificates".into()),
                525,
                None,
                "TLS handshake",
            ),
            (
                OriginError::InvalidCertificate("it has expired".into()),
                526,
                None,
                "it has expired",
            ),
        ];
        for (err, status, code, detail) in cases {
            let r = err.rejection(&origin);
            assert_eq!(
                (r.error.status(), r.error.entry().code),
                (status, code),
                "{err:?}"
            );
            assert!(
                r.detail.contains(detail) && r.detail.contains("origin"),
                "{}",
                r.detail
            );
            assert_eq!(r.retry_after, r.error.entry().retry_after);
        }
    }
}
