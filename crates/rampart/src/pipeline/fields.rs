//! The rules engine's view of a request: fields filled lazily from the parsed head.
//!
//! Simple fields and the header map are answered straight from the [`RequestHead`] without
//! copying it; fields that need derived structures (the cookie and argument maps, the
//! extension, the full URI) come from a [`HttpRequestFields`] built on first use only, so a
//! request whose rules read only `http.request.uri.path`, headers and `ip.src` costs no copy
//! of the request here.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU16, Ordering};

use rampart_http::{Normalization, RequestHead, normalize_path};
use rampart_rules::{FieldId, FieldSource, HttpField, HttpRequestFields, Value};

use crate::geo::GeoInfo;

/// A request as the rules see it.
pub struct RequestFields<'a> {
    head: &'a RequestHead,
    client_ip: IpAddr,
    geo: &'a GeoInfo,
    protocol: &'static str,
    timestamp_sec: i64,
    ssl: bool,
    /// The client's reputation: the `[[threat_list]]` score, when a list holds it.
    threat: Option<u8>,
    /// The response status (0 until known), for response header rules and counting
    /// expressions, evaluated once the response head is known.
    response_code: AtomicU16,
    /// The inspected prefix of the body, once a phase asked for it.
    body: OnceLock<super::InspectedBody>,
    /// The path and query after URL normalisation, when that changed them.
    normalized: OnceLock<Normalized>,
    derived: OnceLock<Box<HttpRequestFields>>,
}

/// A normalised `path?query`.
struct Normalized {
    uri: Box<str>,
    path_len: usize,
}

impl<'a> RequestFields<'a> {
    /// The fields of `head` from `client_ip`.
    pub fn new(
        head: &'a RequestHead,
        client_ip: IpAddr,
        geo: &'a GeoInfo,
        protocol: &'static str,
        timestamp_sec: i64,
        ssl: bool,
    ) -> Self {
        RequestFields {
            head,
            client_ip,
            geo,
            protocol,
            timestamp_sec,
            ssl,
            threat: None,
            response_code: AtomicU16::new(0),
            body: OnceLock::new(),
            normalized: OnceLock::new(),
            derived: OnceLock::new(),
        }
    }

    /// The fields with the client's threat score (`cf.threat_score`), when a
    /// `[[threat_list]]` holds it.
    pub fn with_threat(mut self, threat: Option<u8>) -> Self {
        self.threat = threat;
        self
    }

    /// The client's threat score, when a list holds it (`None`: unknown, 0 to rules).
    pub fn threat(&self) -> Option<u8> {
        self.threat
    }

    /// Normalises the path as `kind` says: the rules' `http.request.uri*` fields (and
    /// [`RequestFields::path`]) show the result, the `raw.*` fields the target as sent. Call
    /// it before any rule runs (once; later calls change nothing).
    pub fn normalize(&self, kind: Normalization) {
        let path = self.head.path();
        let normal = normalize_path(path, kind);
        if matches!(normal, Cow::Borrowed(_)) {
            return;
        }
        let mut uri =
            String::with_capacity(normal.len() + 1 + self.head.query().map_or(0, str::len));
        uri.push_str(&normal);
        if let Some(q) = self.head.query() {
            uri.push('?');
            uri.push_str(q);
        }
        let _ = self.normalized.set(Normalized {
            uri: uri.into_boxed_str(),
            path_len: normal.len(),
        });
    }

    /// The path after URL normalisation (the path as sent when the zone normalises nothing).
    pub fn path(&self) -> &str {
        match self.normalized.get() {
            Some(n) => &n.uri[..n.path_len],
            None => self.head.path(),
        }
    }

    /// The normalised `path?query`, when normalisation changed the target.
    pub fn normalized_uri(&self) -> Option<&str> {
        self.normalized.get().map(|n| &*n.uri)
    }

    fn uri(&self) -> &str {
        self.normalized_uri().unwrap_or(self.head.target())
    }

    /// Sets the response status, for the expressions evaluated after it is known (with an
    /// execution context made after this call: a context keeps the values it read).
    pub fn set_response_code(&self, status: u16) {
        self.response_code.store(status, Ordering::Relaxed);
    }

    fn response_code(&self) -> Option<u16> {
        Some(self.response_code.load(Ordering::Relaxed)).filter(|&c| c != 0)
    }

    /// Gives the rules the inspected prefix of the body (once; later calls change nothing).
    pub fn set_body(&self, body: super::InspectedBody) {
        let _ = self.body.set(body);
    }

    /// The inspected prefix of the body, if a phase asked for it.
    pub fn body(&self) -> Option<&super::InspectedBody> {
        self.body.get()
    }

    fn derived(&self) -> &HttpRequestFields {
        self.derived.get_or_init(|| {
            let headers = self
                .head
                .headers()
                .map(|(n, v)| (n.to_string(), v.to_vec()))
                .collect();
            let mut f = HttpRequestFields::from_parts(
                self.head.method(),
                self.head.target(),
                self.protocol,
                headers,
            );
            f.host = self.host().to_string();
            f.client_ip = Some(self.client_ip);
            f.country = self.geo.country.clone().unwrap_or_default();
            f.continent = self.geo.continent.clone().unwrap_or_default();
            f.asnum = self.geo.asn.unwrap_or(0);
            f.timestamp_sec = self.timestamp_sec;
            f.ssl = self.ssl;
            f.response_code = self.response_code();
            if let Some(uri) = self.normalized_uri() {
                f.set_normalized_uri(uri);
            }
            if let Some(body) = self.body.get() {
                f.body = body.bytes.to_vec();
                f.body_truncated = body.truncated;
            }
            f.body_size = self.body_size();
            Box::new(f)
        })
    }

    /// The declared body size (0 for a chunked body, whose size is not known in advance).
    fn body_size(&self) -> u64 {
        match self.head.body() {
            rampart_http::BodyFraming::ContentLength(n) => n,
            _ => 0,
        }
    }

    fn host(&self) -> &str {
        self.head.host_name().unwrap_or("")
    }

    /// A header that appears at most once, borrowed; `None` when it repeats (then the
    /// derived fields join the values).
    fn single_header(&self, name: &str) -> Option<Value<'_>> {
        let mut values = self
            .head
            .headers()
            .raw()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()));
        match (values.next(), values.next()) {
            (None, _) => Some(Value::Bytes(Cow::Borrowed(b""))),
            (Some((_, v)), None) => Some(Value::Bytes(Cow::Borrowed(v))),
            _ => None,
        }
    }
}

fn bytes(s: &str) -> Value<'_> {
    Value::Bytes(Cow::Borrowed(s.as_bytes()))
}

impl FieldSource for RequestFields<'_> {
    fn field(&self, id: FieldId, name: &str) -> Option<Value<'_>> {
        use HttpField as F;
        let field = HttpField::from_id(id, name)?;
        let quick = match field {
            F::Host => Some(bytes(self.host())),
            F::Method => Some(bytes(self.head.method())),
            F::Uri => Some(bytes(self.uri())),
            F::UriPath => Some(bytes(self.path())),
            F::UriQuery | F::RawUriQuery => Some(bytes(self.head.query().unwrap_or(""))),
            F::RawUri => Some(bytes(self.head.target())),
            F::RawUriPath => Some(bytes(self.head.path())),
            F::BodyRaw => Some(Value::Bytes(Cow::Borrowed(
                self.body.get().map_or(&b""[..], |b| &b.bytes[..]),
            ))),
            F::BodyTruncated => Some(Value::Bool(self.body.get().is_some_and(|b| b.truncated))),
            F::Version => Some(bytes(self.protocol)),
            // The map borrows from the head: no copy of the request is made for it.
            F::Headers => Some(rampart_rules::header_map(self.head.headers().raw())),
            F::UserAgent => self.single_header("user-agent"),
            F::Referer => self.single_header("referer"),
            F::XForwardedFor => self.single_header("x-forwarded-for"),
            F::BodySize => Some(Value::Int(
                i64::try_from(self.body_size()).unwrap_or(i64::MAX),
            )),
            F::TimestampSec => Some(Value::Int(self.timestamp_sec)),
            F::ResponseCode => {
                return self.response_code().map(|c| Value::Int(i64::from(c)));
            }
            F::IpSrc => Some(Value::Ip(self.client_ip)),
            F::IpSrcCountry | F::GeoipCountry => {
                Some(bytes(self.geo.country.as_deref().unwrap_or("")))
            }
            F::IpSrcContinent | F::GeoipContinent => {
                Some(bytes(self.geo.continent.as_deref().unwrap_or("")))
            }
            F::IpSrcAsnum | F::GeoipAsnum => Some(Value::Int(i64::from(self.geo.asn.unwrap_or(0)))),
            F::Ssl => Some(Value::Bool(self.ssl)),
            F::ThreatScore => Some(Value::Int(i64::from(self.threat.unwrap_or(0)))),
            _ => None,
        };
        match quick {
            Some(v) => Some(v),
            None => self.derived().http_field(field),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_rules::{FieldSource, Scheme};

    /// The header map answered from the head is the one the rules crate derives from a copy
    /// of the request: names lowercased, repeated fields' values in order.
    #[test]
    fn the_header_map_from_the_head_is_the_derived_one() {
        let raw = b"GET /a?b=1 HTTP/1.1\r\nHost: h.test\r\nX-A: 1\r\nx-a: 2\r\nAccept: */*\r\n\r\n";
        let limits = rampart_http::Limits::default();
        let Ok(rampart_http::Parse::Complete((head, _))) =
            rampart_http::parse_request_head(raw, &limits)
        else {
            panic!("the head parses");
        };
        let geo = GeoInfo::default();
        let ip = "192.0.2.1".parse().unwrap();
        let fields = RequestFields::new(&head, ip, &geo, "HTTP/1.1", 0, false);
        let (id, _) = Scheme::http().field("http.request.headers").unwrap();
        let copied = head
            .headers()
            .map(|(n, v)| (n.to_string(), v.to_vec()))
            .collect();
        let derived = HttpRequestFields::from_parts("GET", "/a?b=1", "HTTP/1.1", copied);
        let from_head = fields.field(id, "http.request.headers").unwrap();
        assert_eq!(
            Some(from_head.clone()),
            derived.field(id, "http.request.headers")
        );
        let Value::Map(map) = from_head else {
            panic!("a map")
        };
        assert_eq!(
            map.get(b"x-a".as_slice()),
            Some(&Value::Array(vec![
                Value::Bytes(Cow::Borrowed(b"1")),
                Value::Bytes(Cow::Borrowed(b"2"))
            ]))
        );
    }
}
