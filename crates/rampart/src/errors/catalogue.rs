//! The catalogue of responses rampart generates itself.
//!
//! Every rejection reason in the server maps here to exactly one [`EdgeError`], and every
//! `EdgeError` to one status, one optional error code and one explanation. The table mirrors
//! the error catalogue in ARCHITECTURE.md and `docs/errors.md`.

/// An error response that rampart generates itself (as opposed to one passed through from an origin).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EdgeError {
    /// 400: malformed request syntax or framing.
    BadRequest,
    /// 403 / 1003: the Host is an IP literal.
    DirectIpAccess,
    /// 403 / 1005: an IP access rule blocks the client's ASN.
    AsnBanned,
    /// 403 / 1006: an IP access rule blocks the client's IP or range.
    IpBanned,
    /// 403 / 1009: an IP access rule blocks the client's country.
    CountryBanned,
    /// 403 / 1020: a custom rule with action block.
    FirewallRule,
    /// 403 / 1010: the Browser Integrity Check refused the request's headers.
    BrowserIntegrity,
    /// 403: a challenge the client must solve first (the page, for a browser; this problem
    /// for other clients).
    Challenge,
    /// 408: head or body not received in time.
    RequestTimeout,
    /// 409 / 1001: no zone serves the host, or the origin's hostname does not resolve.
    DnsResolutionError,
    /// 413: body over the limit.
    PayloadTooLarge,
    /// 414: request-target over the limit.
    UriTooLong,
    /// 417: an Expect other than 100-continue.
    ExpectationFailed,
    /// 429 / 1015: a rate limiting rule.
    RateLimited,
    /// 431: header section over its limits.
    HeaderFieldsTooLarge,
    /// 501: a transfer coding other than chunked.
    NotImplemented,
    /// 502: the origin answered with something that is not valid HTTP.
    BadGateway,
    /// 505: a well-formed HTTP version other than 1.0 and 1.1.
    HttpVersionNotSupported,
    /// 521: the origin refused the connection.
    WebServerDown,
    /// 522: the origin's TCP connect timed out, after the retries.
    ConnectionTimedOut,
    /// 523: no route to the origin.
    OriginUnreachable,
    /// 524: connected, but no response head within the origin response timeout.
    Timeout,
    /// 525: the TLS handshake with an `https://` origin failed.
    SslHandshakeFailed,
    /// 526: an `https://` origin presented a certificate that does not verify.
    InvalidSslCertificate,
    /// 530 / 1016: every origin of every pool of the zone is down by its health.
    NoHealthyOrigin,
}

/// The fixed explanation of one [`EdgeError`].
#[derive(Debug)]
pub struct Entry {
    /// HTTP status code sent.
    pub status: u16,
    /// Cloudflare-style 1xxx error code, where one applies.
    pub code: Option<u16>,
    /// Stable snake_case name, used in logs, metrics and the docs URL.
    pub name: &'static str,
    /// Short human title ("You are being rate limited").
    pub title: &'static str,
    /// "What happened?" for the visitor.
    pub what_happened: &'static str,
    /// "What can I do?" for the visitor.
    pub what_you_should_do: &'static str,
    /// Seconds after which a retry makes sense, or `None` when retrying will not help.
    /// Rate limiting computes its own exact value instead.
    pub retry_after: Option<u32>,
}

impl EdgeError {
    /// Every variant, for docs and tests.
    pub const ALL: [EdgeError; 25] = [
        EdgeError::BadRequest,
        EdgeError::DirectIpAccess,
        EdgeError::AsnBanned,
        EdgeError::IpBanned,
        EdgeError::CountryBanned,
        EdgeError::FirewallRule,
        EdgeError::BrowserIntegrity,
        EdgeError::Challenge,
        EdgeError::RequestTimeout,
        EdgeError::DnsResolutionError,
        EdgeError::PayloadTooLarge,
        EdgeError::UriTooLong,
        EdgeError::ExpectationFailed,
        EdgeError::RateLimited,
        EdgeError::HeaderFieldsTooLarge,
        EdgeError::NotImplemented,
        EdgeError::BadGateway,
        EdgeError::HttpVersionNotSupported,
        EdgeError::WebServerDown,
        EdgeError::ConnectionTimedOut,
        EdgeError::OriginUnreachable,
        EdgeError::Timeout,
        EdgeError::SslHandshakeFailed,
        EdgeError::InvalidSslCertificate,
        EdgeError::NoHealthyOrigin,
    ];

    /// The error for a status that rampart-http reports for a malformed request head.
    pub fn from_request_status(status: u16) -> EdgeError {
        match status {
            408 => EdgeError::RequestTimeout,
            413 => EdgeError::PayloadTooLarge,
            414 => EdgeError::UriTooLong,
            417 => EdgeError::ExpectationFailed,
            431 => EdgeError::HeaderFieldsTooLarge,
            501 => EdgeError::NotImplemented,
            505 => EdgeError::HttpVersionNotSupported,
            _ => EdgeError::BadRequest,
        }
    }

    /// The fixed explanation of this error.
    pub fn entry(self) -> &'static Entry {
        match self {
            EdgeError::BadRequest => &BAD_REQUEST,
            EdgeError::DirectIpAccess => &DIRECT_IP_ACCESS,
            EdgeError::AsnBanned => &ASN_BANNED,
            EdgeError::IpBanned => &IP_BANNED,
            EdgeError::CountryBanned => &COUNTRY_BANNED,
            EdgeError::FirewallRule => &FIREWALL_RULE,
            EdgeError::BrowserIntegrity => &BROWSER_INTEGRITY,
            EdgeError::Challenge => &CHALLENGE,
            EdgeError::RequestTimeout => &REQUEST_TIMEOUT,
            EdgeError::DnsResolutionError => &DNS_RESOLUTION_ERROR,
            EdgeError::PayloadTooLarge => &PAYLOAD_TOO_LARGE,
            EdgeError::UriTooLong => &URI_TOO_LONG,
            EdgeError::ExpectationFailed => &EXPECTATION_FAILED,
            EdgeError::RateLimited => &RATE_LIMITED,
            EdgeError::HeaderFieldsTooLarge => &HEADER_FIELDS_TOO_LARGE,
            EdgeError::NotImplemented => &NOT_IMPLEMENTED,
            EdgeError::BadGateway => &BAD_GATEWAY,
            EdgeError::HttpVersionNotSupported => &HTTP_VERSION_NOT_SUPPORTED,
            EdgeError::WebServerDown => &WEB_SERVER_DOWN,
            EdgeError::ConnectionTimedOut => &CONNECTION_TIMED_OUT,
            EdgeError::OriginUnreachable => &ORIGIN_UNREACHABLE,
            EdgeError::Timeout => &TIMEOUT,
            EdgeError::SslHandshakeFailed => &SSL_HANDSHAKE_FAILED,
            EdgeError::InvalidSslCertificate => &INVALID_SSL_CERTIFICATE,
            EdgeError::NoHealthyOrigin => &NO_HEALTHY_ORIGIN,
        }
    }

    /// HTTP status code sent for this error.
    pub fn status(self) -> u16 {
        self.entry().status
    }

    /// The title as shown to visitors: "Error 1015: You are being rate limited" when the error
    /// has a code, else "Error 414: URI too long".
    pub fn headline(self) -> String {
        let e = self.entry();
        format!("Error {}: {}", e.code.unwrap_or(e.status), e.title)
    }
}

const BAD_REQUEST: Entry = Entry {
    status: 400,
    code: None,
    name: "bad_request",
    title: "Bad request",
    what_happened: "The request was malformed: it broke a rule of the HTTP syntax or message framing, so it was not passed on to the website.",
    what_you_should_do: "If you wrote the client, fix the request as the detail describes. If you are a visitor, the software you used sent a broken request; try another browser or update it.",
    retry_after: None,
};
const DIRECT_IP_ACCESS: Entry = Entry {
    status: 403,
    code: Some(1003),
    name: "direct_ip_access",
    title: "Direct IP access not allowed",
    what_happened: "The request named an IP address as its host. This edge only serves websites by their hostname.",
    what_you_should_do: "Use the website's hostname instead of its IP address.",
    retry_after: None,
};
const ASN_BANNED: Entry = Entry {
    status: 403,
    code: Some(1005),
    name: "asn_banned",
    title: "Access denied: the site owner has banned the network (ASN) you are connecting from",
    what_happened: "The owner of this website has blocked the autonomous system (network) your IP address belongs to.",
    what_you_should_do: "Contact the site owner if you believe you should have access, and quote the ray id below.",
    retry_after: None,
};
const IP_BANNED: Entry = Entry {
    status: 403,
    code: Some(1006),
    name: "ip_banned",
    title: "Access denied: the site owner has banned your IP address",
    what_happened: "The owner of this website has blocked your IP address or a range that contains it.",
    what_you_should_do: "Contact the site owner if you believe you should have access, and quote the ray id below.",
    retry_after: None,
};
const COUNTRY_BANNED: Entry = Entry {
    status: 403,
    code: Some(1009),
    name: "country_banned",
    title: "Access denied: the site owner has banned access from your country",
    what_happened: "The owner of this website does not allow visitors from the country your IP address is located in.",
    what_you_should_do: "Contact the site owner if you believe you should have access, and quote the ray id below.",
    retry_after: None,
};
const FIREWALL_RULE: Entry = Entry {
    status: 403,
    code: Some(1020),
    name: "firewall_rule",
    title: "Access denied: a firewall rule of this site blocked the request",
    what_happened: "The request matched a security rule that the owner of this website configured.",
    what_you_should_do: "Contact the site owner if you believe the request should be allowed, and quote the ray id below.",
    retry_after: None,
};
const BROWSER_INTEGRITY: Entry = Entry {
    status: 403,
    code: Some(1010),
    name: "browser_integrity_check",
    title: "Access denied: the site owner has banned your access based on your browser's signature",
    what_happened: "The request's headers are not what a real browser or client sends (for example, it has no User-Agent, or its User-Agent names an attack tool), and this website checks for that.",
    what_you_should_do: "Send the request from a regular browser, or with a User-Agent that says what your client is. Contact the site owner if you believe this is a mistake, and quote the ray id below.",
    retry_after: None,
};
const CHALLENGE: Entry = Entry {
    status: 403,
    code: None,
    name: "challenge",
    title: "A challenge must be solved first",
    what_happened: "This website asks visitors to prove they are using a browser before it serves them. Your client did not ask for a web page, so it was given no page to solve.",
    what_you_should_do: "Open the address in a web browser with JavaScript on; it solves the challenge by itself and keeps a cookie for a while. Automated clients should be given access by the site owner.",
    retry_after: None,
};
const REQUEST_TIMEOUT: Entry = Entry {
    status: 408,
    code: None,
    name: "request_timeout",
    title: "Request timeout",
    what_happened: "The request did not arrive in time: its head or body stalled, so the connection was closed.",
    what_you_should_do: "Check your network connection and send the request again.",
    retry_after: Some(0),
};
const DNS_RESOLUTION_ERROR: Entry = Entry {
    status: 409,
    code: Some(1001),
    name: "dns_resolution_error",
    title: "DNS resolution error",
    what_happened: "This edge does not serve the requested hostname, or could not resolve the hostname of the website's origin server.",
    what_you_should_do: "Check the address you typed. If you own the site, check that a zone serves this hostname and that the origin's hostname resolves.",
    retry_after: None,
};
const PAYLOAD_TOO_LARGE: Entry = Entry {
    status: 413,
    code: None,
    name: "payload_too_large",
    title: "Payload too large",
    what_happened: "The request body is larger than this website accepts.",
    what_you_should_do: "Send a smaller body, for example by uploading the file in parts.",
    retry_after: None,
};
const URI_TOO_LONG: Entry = Entry {
    status: 414,
    code: None,
    name: "uri_too_long",
    title: "URI too long",
    what_happened: "The request-target (the path and query of the URL) is longer than this edge accepts.",
    what_you_should_do: "Use a shorter URL; move large parameters into a request body.",
    retry_after: None,
};
const EXPECTATION_FAILED: Entry = Entry {
    status: 417,
    code: None,
    name: "expectation_failed",
    title: "Expectation failed",
    what_happened: "The request carried an Expect header field other than 100-continue, which this edge cannot meet.",
    what_you_should_do: "Remove the Expect header field or use Expect: 100-continue.",
    retry_after: None,
};
const RATE_LIMITED: Entry = Entry {
    status: 429,
    code: Some(1015),
    name: "rate_limited",
    title: "You are being rate limited",
    what_happened: "You sent more requests than the owner of this website allows in a period of time.",
    what_you_should_do: "Wait for the time given in the Retry-After header field before sending more requests.",
    retry_after: None,
};
const HEADER_FIELDS_TOO_LARGE: Entry = Entry {
    status: 431,
    code: None,
    name: "header_fields_too_large",
    title: "Request header fields too large",
    what_happened: "The request's header section is larger, or has more fields, than this edge accepts.",
    what_you_should_do: "Send fewer or smaller header fields; clearing the site's cookies often helps.",
    retry_after: None,
};
const NOT_IMPLEMENTED: Entry = Entry {
    status: 501,
    code: None,
    name: "not_implemented",
    title: "Not implemented",
    what_happened: "The request used a transfer coding other than chunked, which this edge does not implement.",
    what_you_should_do: "Send the body with Content-Length or Transfer-Encoding: chunked.",
    retry_after: None,
};
const BAD_GATEWAY: Entry = Entry {
    status: 502,
    code: None,
    name: "bad_gateway",
    title: "Bad gateway",
    what_happened: "The website's origin server answered with something that is not a valid HTTP response.",
    what_you_should_do: "Try again in a minute. If you own the site, check the origin server's logs.",
    retry_after: Some(60),
};
const HTTP_VERSION_NOT_SUPPORTED: Entry = Entry {
    status: 505,
    code: None,
    name: "http_version_not_supported",
    title: "HTTP version not supported",
    what_happened: "The request used an HTTP version this edge does not speak over this connection (only HTTP/1.0 and HTTP/1.1).",
    what_you_should_do: "Send the request as HTTP/1.1.",
    retry_after: None,
};
const WEB_SERVER_DOWN: Entry = Entry {
    status: 521,
    code: None,
    name: "web_server_down",
    title: "Web server is down",
    what_happened: "The website's origin server refused the connection.",
    what_you_should_do: "Try again in a few minutes. If you own the site, check that the origin server is running and accepts connections from this edge.",
    retry_after: Some(120),
};
const CONNECTION_TIMED_OUT: Entry = Entry {
    status: 522,
    code: None,
    name: "connection_timed_out",
    title: "Connection timed out",
    what_happened: "The edge could not open a connection to the website's origin server in time, even after retrying.",
    what_you_should_do: "Try again in a few minutes. If you own the site, check that the origin server is up and not overloaded, and that no firewall drops this edge's connections.",
    retry_after: Some(120),
};
const ORIGIN_UNREACHABLE: Entry = Entry {
    status: 523,
    code: None,
    name: "origin_unreachable",
    title: "Origin is unreachable",
    what_happened: "The edge has no network route to the website's origin server.",
    what_you_should_do: "Try again in a few minutes. If you own the site, check the origin's address and the network path to it.",
    retry_after: Some(120),
};
const TIMEOUT: Entry = Entry {
    status: 524,
    code: None,
    name: "timeout",
    title: "A timeout occurred",
    what_happened: "The edge connected to the website's origin server, but it did not answer in time.",
    what_you_should_do: "Try again in a few minutes. If you own the site, look for slow requests on the origin server.",
    retry_after: Some(120),
};
const SSL_HANDSHAKE_FAILED: Entry = Entry {
    status: 525,
    code: None,
    name: "ssl_handshake_failed",
    title: "SSL handshake failed",
    what_happened: "The edge connected to the website's origin server, but they could not agree on a secure (TLS) connection.",
    what_you_should_do: "If you own the site, check that the origin serves TLS on this port with a protocol version and cipher suite a modern client supports (TLS 1.2 or 1.3), and that it answers for the host name the edge sends as SNI.",
    retry_after: None,
};
const INVALID_SSL_CERTIFICATE: Entry = Entry {
    status: 526,
    code: None,
    name: "invalid_ssl_certificate",
    title: "Invalid SSL certificate",
    what_happened: "The website's origin server presented a TLS certificate the edge could not verify.",
    what_you_should_do: "If you own the site, install a certificate on the origin that is unexpired, issued for the origin's host name and signed by a trusted authority (or by the CA in origin_ca_file).",
    retry_after: None,
};
const NO_HEALTHY_ORIGIN: Entry = Entry {
    status: 530,
    code: Some(1016),
    name: "no_healthy_origin",
    title: "No origin available",
    what_happened: "Every origin server of this website is failing its health checks or its recent requests, so the edge did not try to reach one.",
    what_you_should_do: "Try again in a minute. If you own the site, check the origin servers and their health check endpoint.",
    retry_after: Some(60),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_a_unique_name_and_a_status_of_its_class() {
        let mut names = std::collections::HashSet::new();
        for e in EdgeError::ALL {
            let entry = e.entry();
            assert!(names.insert(entry.name), "duplicate name {}", entry.name);
            assert!((400..600).contains(&entry.status));
            if let Some(code) = entry.code {
                assert!((1000..2000).contains(&code));
            }
        }
    }

    #[test]
    fn headline_uses_the_error_code_when_there_is_one() {
        assert_eq!(
            EdgeError::RateLimited.headline(),
            "Error 1015: You are being rate limited"
        );
        assert_eq!(EdgeError::UriTooLong.headline(), "Error 414: URI too long");
    }
}
