//! Origin failures and the catalogue error each one is answered with (502, 521, 522, 523,
//! 524, 525, 526, 409 / 1001).

use std::time::Duration;

use crate::config::OriginAddr;
use crate::errors::{EdgeError, Rejection};

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

/// Sorts a failed handshake into 526 (the certificate does not verify) or 525 (anything
/// else: protocol mismatch, alert from the origin, connection closed).
pub(super) fn tls_failure(e: std::io::Error) -> OriginError {
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
