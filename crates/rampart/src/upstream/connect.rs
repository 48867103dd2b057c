//! Opening a connection to an origin: resolve, connect with `origin_connect_timeout` per
//! attempt and `origin_connect_retries` more attempts after a timed-out one, then TLS for an
//! `https://` origin.

use std::io::ErrorKind;
use std::net::SocketAddr;

use tokio::net::TcpStream;

use super::errors::tls_failure;
use super::{OriginConn, OriginError, Policy};
use crate::config::OriginAddr;
use crate::observe::Metrics;
use crate::stream::OriginStream;
use crate::tls::OriginTls;

/// A new connection to `addr`. Refused: 521; unreachable: 523; every attempt timed out: 522;
/// the name does not resolve: 409 / 1001; TLS: 525 / 526.
pub(super) async fn connect(
    addr: &OriginAddr,
    tls: Option<&OriginTls>,
    policy: &Policy,
    metrics: &Metrics,
    zone: &str,
) -> Result<OriginConn, OriginError> {
    let addrs: Vec<SocketAddr> = match addr.ip {
        Some(a) => vec![a],
        None => match tokio::net::lookup_host((addr.host.as_str(), addr.port)).await {
            Ok(it) => {
                let v: Vec<SocketAddr> = it.collect();
                if v.is_empty() {
                    return Err(OriginError::HostDoesNotResolve("no addresses".into()));
                }
                v
            }
            Err(e) => return Err(OriginError::HostDoesNotResolve(e.to_string())),
        },
    };
    let attempts = policy.connect_retries + 1;
    let each = policy.connect;
    for attempt in 0..attempts {
        let to = addrs[attempt as usize % addrs.len()];
        match tokio::time::timeout(each, TcpStream::connect(to)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                let stream = match tls {
                    Some(tls) if addr.tls => handshake(addr, stream, tls, policy).await?,
                    _ => OriginStream::Plain(stream),
                };
                return Ok(OriginConn::new(stream, to));
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
                    metrics.connect_retry(zone);
                }
            }
        }
    }
    Err(OriginError::ConnectTimedOut { attempts, each })
}

/// TLS to an `https://` origin, sending its host name as SNI (none for an IP literal, whose
/// certificate must then name the IP). Bounded by `origin_connect_timeout`.
async fn handshake(
    addr: &OriginAddr,
    tcp: TcpStream,
    tls: &OriginTls,
    policy: &Policy,
) -> Result<OriginStream, OriginError> {
    let name = rustls::pki_types::ServerName::try_from(addr.host.clone())
        .map_err(|e| OriginError::TlsHandshake(format!("`{}`: {e}", addr.host)))?;
    let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
    match tokio::time::timeout(policy.connect, connector.connect(name, tcp)).await {
        Ok(Ok(stream)) => Ok(OriginStream::Tls(Box::new(stream))),
        Ok(Err(e)) => Err(tls_failure(e)),
        Err(_) => Err(OriginError::TlsHandshake(format!(
            "no TLS handshake within {}",
            humantime::format_duration(policy.connect)
        ))),
    }
}
