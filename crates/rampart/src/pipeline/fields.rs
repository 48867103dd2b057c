//! The rules engine's view of a request: fields filled lazily from the parsed head.
//!
//! Simple fields are answered straight from the [`RequestHead`] without copying; fields that
//! need derived structures (the header, cookie and argument maps, the extension, the full
//! URI) come from a [`HttpRequestFields`] built on first use only, so a request whose rules
//! read only `http.request.uri.path` and `ip.src` costs no allocation here.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::net::IpAddr;

use rampart_http::RequestHead;
use rampart_rules::{FieldId, FieldSource, HttpRequestFields, Value};

use crate::geo::GeoInfo;

/// A request as the rules see it.
pub struct RequestFields<'a> {
    head: &'a RequestHead,
    client_ip: IpAddr,
    geo: &'a GeoInfo,
    protocol: &'static str,
    timestamp_sec: i64,
    ssl: bool,
    /// The response status, for counting expressions evaluated after the response.
    pub response_code: Option<u16>,
    derived: OnceCell<HttpRequestFields>,
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
            response_code: None,
            derived: OnceCell::new(),
        }
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
            f.response_code = self.response_code;
            f
        })
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
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
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
        let quick = match name {
            "http.host" => Some(bytes(self.host())),
            "http.request.method" => Some(bytes(self.head.method())),
            "http.request.uri" => Some(bytes(self.head.target())),
            "http.request.uri.path" => Some(bytes(self.head.path())),
            "http.request.uri.query" => Some(bytes(self.head.query().unwrap_or(""))),
            "http.request.version" => Some(bytes(self.protocol)),
            "http.user_agent" => self.single_header("user-agent"),
            "http.referer" => self.single_header("referer"),
            "http.x_forwarded_for" => self.single_header("x-forwarded-for"),
            "http.request.body.size" => Some(Value::Int(match self.head.body() {
                rampart_http::BodyFraming::ContentLength(n) => i64::try_from(n).unwrap_or(i64::MAX),
                _ => 0,
            })),
            "http.request.timestamp.sec" => Some(Value::Int(self.timestamp_sec)),
            "http.response.code" => return self.response_code.map(|c| Value::Int(i64::from(c))),
            "ip.src" => Some(Value::Ip(self.client_ip)),
            "ip.src.country" | "ip.geoip.country" => {
                Some(bytes(self.geo.country.as_deref().unwrap_or("")))
            }
            "ip.src.continent" | "ip.geoip.continent" => {
                Some(bytes(self.geo.continent.as_deref().unwrap_or("")))
            }
            "ip.src.asnum" | "ip.geoip.asnum" => {
                Some(Value::Int(i64::from(self.geo.asn.unwrap_or(0))))
            }
            "ssl" => Some(Value::Bool(self.ssl)),
            _ => None,
        };
        match quick {
            Some(v) => Some(v),
            None => self.derived().field(id, name),
        }
    }
}
