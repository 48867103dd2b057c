//! The standard HTTP scheme (Cloudflare's field names) and a plain request
//! struct, [`HttpRequestFields`], that fills it lazily.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::exec::FieldSource;
use crate::scheme::{FieldId, Scheme};
use crate::types::{MapValue, Type, Value};

/// A field of the standard HTTP scheme ([`Scheme::http`] declares them in
/// the order of [`HttpField::ALL`], so `FieldId::index()` is the position).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpField {
    /// `http.host`: Bytes.
    Host,
    /// `http.cookie`: Bytes.
    Cookie,
    /// `http.referer`: Bytes.
    Referer,
    /// `http.user_agent`: Bytes.
    UserAgent,
    /// `http.x_forwarded_for`: Bytes.
    XForwardedFor,
    /// `http.request.method`: Bytes.
    Method,
    /// `http.request.uri`: Bytes.
    Uri,
    /// `http.request.uri.path`: Bytes.
    UriPath,
    /// `http.request.uri.path.extension`: Bytes.
    UriPathExtension,
    /// `http.request.uri.query`: Bytes.
    UriQuery,
    /// `http.request.uri.args`: `Map<Array<Bytes>>`.
    UriArgs,
    /// `http.request.uri.args.names`: `Array<Bytes>`.
    UriArgsNames,
    /// `http.request.uri.args.values`: `Array<Bytes>`.
    UriArgsValues,
    /// `http.request.full_uri`: Bytes.
    FullUri,
    /// `http.request.version`: Bytes.
    Version,
    /// `http.request.headers`: `Map<Array<Bytes>>`.
    Headers,
    /// `http.request.headers.names`: `Array<Bytes>`.
    HeadersNames,
    /// `http.request.headers.values`: `Array<Bytes>`.
    HeadersValues,
    /// `http.request.cookies`: `Map<Array<Bytes>>`.
    Cookies,
    /// `http.request.body.raw`: Bytes.
    BodyRaw,
    /// `http.request.body.size`: Int.
    BodySize,
    /// `http.request.timestamp.sec`: Int.
    TimestampSec,
    /// `http.response.code`: Int.
    ResponseCode,
    /// `ip.src`: Ip.
    IpSrc,
    /// `ip.src.country`: Bytes.
    IpSrcCountry,
    /// `ip.src.continent`: Bytes.
    IpSrcContinent,
    /// `ip.src.asnum`: Int.
    IpSrcAsnum,
    /// `ip.geoip.country`: Bytes (older Cloudflare name still found in pasted rules).
    GeoipCountry,
    /// `ip.geoip.continent`: Bytes (older Cloudflare name still found in pasted rules).
    GeoipContinent,
    /// `ip.geoip.asnum`: Int (older Cloudflare name still found in pasted rules).
    GeoipAsnum,
    /// `ssl`: Bool.
    Ssl,
    /// `cf.threat_score`: Int.
    ThreatScore,
}

impl HttpField {
    /// Every field, in declaration order.
    pub const ALL: [HttpField; 32] = [
        HttpField::Host,
        HttpField::Cookie,
        HttpField::Referer,
        HttpField::UserAgent,
        HttpField::XForwardedFor,
        HttpField::Method,
        HttpField::Uri,
        HttpField::UriPath,
        HttpField::UriPathExtension,
        HttpField::UriQuery,
        HttpField::UriArgs,
        HttpField::UriArgsNames,
        HttpField::UriArgsValues,
        HttpField::FullUri,
        HttpField::Version,
        HttpField::Headers,
        HttpField::HeadersNames,
        HttpField::HeadersValues,
        HttpField::Cookies,
        HttpField::BodyRaw,
        HttpField::BodySize,
        HttpField::TimestampSec,
        HttpField::ResponseCode,
        HttpField::IpSrc,
        HttpField::IpSrcCountry,
        HttpField::IpSrcContinent,
        HttpField::IpSrcAsnum,
        HttpField::GeoipCountry,
        HttpField::GeoipContinent,
        HttpField::GeoipAsnum,
        HttpField::Ssl,
        HttpField::ThreatScore,
    ];

    /// The field's name in expressions.
    pub fn name(self) -> &'static str {
        match self {
            HttpField::Host => "http.host",
            HttpField::Cookie => "http.cookie",
            HttpField::Referer => "http.referer",
            HttpField::UserAgent => "http.user_agent",
            HttpField::XForwardedFor => "http.x_forwarded_for",
            HttpField::Method => "http.request.method",
            HttpField::Uri => "http.request.uri",
            HttpField::UriPath => "http.request.uri.path",
            HttpField::UriPathExtension => "http.request.uri.path.extension",
            HttpField::UriQuery => "http.request.uri.query",
            HttpField::UriArgs => "http.request.uri.args",
            HttpField::UriArgsNames => "http.request.uri.args.names",
            HttpField::UriArgsValues => "http.request.uri.args.values",
            HttpField::FullUri => "http.request.full_uri",
            HttpField::Version => "http.request.version",
            HttpField::Headers => "http.request.headers",
            HttpField::HeadersNames => "http.request.headers.names",
            HttpField::HeadersValues => "http.request.headers.values",
            HttpField::Cookies => "http.request.cookies",
            HttpField::BodyRaw => "http.request.body.raw",
            HttpField::BodySize => "http.request.body.size",
            HttpField::TimestampSec => "http.request.timestamp.sec",
            HttpField::ResponseCode => "http.response.code",
            HttpField::IpSrc => "ip.src",
            HttpField::IpSrcCountry => "ip.src.country",
            HttpField::IpSrcContinent => "ip.src.continent",
            HttpField::IpSrcAsnum => "ip.src.asnum",
            HttpField::GeoipCountry => "ip.geoip.country",
            HttpField::GeoipContinent => "ip.geoip.continent",
            HttpField::GeoipAsnum => "ip.geoip.asnum",
            HttpField::Ssl => "ssl",
            HttpField::ThreatScore => "cf.threat_score",
        }
    }

    /// The field's type.
    pub fn field_type(self) -> Type {
        match self {
            HttpField::Host
            | HttpField::Cookie
            | HttpField::Referer
            | HttpField::UserAgent
            | HttpField::XForwardedFor
            | HttpField::Method
            | HttpField::Uri
            | HttpField::UriPath
            | HttpField::UriPathExtension
            | HttpField::UriQuery
            | HttpField::FullUri
            | HttpField::Version
            | HttpField::BodyRaw
            | HttpField::IpSrcCountry
            | HttpField::IpSrcContinent
            | HttpField::GeoipCountry
            | HttpField::GeoipContinent => Type::Bytes,
            HttpField::UriArgs | HttpField::Headers | HttpField::Cookies => {
                Type::map(Type::array(Type::Bytes))
            }
            HttpField::UriArgsNames
            | HttpField::UriArgsValues
            | HttpField::HeadersNames
            | HttpField::HeadersValues => Type::array(Type::Bytes),
            HttpField::BodySize
            | HttpField::TimestampSec
            | HttpField::ResponseCode
            | HttpField::IpSrcAsnum
            | HttpField::GeoipAsnum
            | HttpField::ThreatScore => Type::Int,
            HttpField::IpSrc => Type::Ip,
            HttpField::Ssl => Type::Bool,
        }
    }

    /// The field called `name`, if it is one of the HTTP scheme.
    pub fn from_name(name: &str) -> Option<HttpField> {
        HttpField::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// The field a [`FieldSource`] is asked for: with the standard scheme the id is the
    /// position in [`HttpField::ALL`], which one comparison of `name` confirms; a scheme
    /// declared in another order falls back to the name.
    pub fn from_id(id: FieldId, name: &str) -> Option<HttpField> {
        match HttpField::ALL.get(id.index()) {
            Some(f) if f.name() == name => Some(*f),
            _ => HttpField::from_name(name),
        }
    }
}

impl Scheme {
    /// The standard HTTP scheme: Cloudflare's request fields plus
    /// `http.response.code` (for rate limiting counting expressions
    /// evaluated after the response). See [`HttpField`].
    pub fn http() -> Scheme {
        let mut s = Scheme::new();
        for f in HttpField::ALL {
            s.add_field(f.name(), f.field_type())
                .expect("HTTP field names are valid and unique");
        }
        s
    }
}

/// One HTTP request as the host parsed it, plus what the edge knows about
/// its client. Derived fields (cookies, query arguments, header map, full
/// URI, extension) are computed only when a rule reads them.
///
/// Per Cloudflare, `http.request.uri.args` and the cookie values are not
/// URL-decoded; use `url_decode()` in the rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpRequestFields {
    /// Request method, e.g. `GET`.
    pub method: String,
    /// The request-target as received (`/path?query`, or absolute-form).
    pub uri: String,
    /// Host, from the Host header or the absolute-form target, without port changes.
    pub host: String,
    /// Path part of the request-target.
    pub path: String,
    /// Query part of the request-target, without `?`.
    pub query: String,
    /// Protocol version, e.g. `HTTP/1.1` or `HTTP/2`.
    pub version: String,
    /// Header fields in order received; names as received.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The request body, as far as the host buffered it.
    pub body: Vec<u8>,
    /// Body size in bytes (may exceed `body.len()` when not all is buffered).
    pub body_size: u64,
    /// Client IP address.
    pub client_ip: Option<IpAddr>,
    /// Client country, ISO 3166-1 alpha-2.
    pub country: String,
    /// Client continent code (e.g. `EU`).
    pub continent: String,
    /// Client autonomous system number.
    pub asnum: u32,
    /// Whether the request came over TLS.
    pub ssl: bool,
    /// Time the request was received, Unix seconds.
    pub timestamp_sec: i64,
    /// Threat score (0–100).
    pub threat_score: i64,
    /// Response status, once known (for rate limiting counting expressions
    /// evaluated after the response). An [`ExecutionContext`](crate::ExecutionContext)
    /// remembers every field it read, so evaluate those expressions in a new
    /// context created after setting this.
    pub response_code: Option<u16>,
}

impl HttpRequestFields {
    /// Fills method, target (split into path and query), version and
    /// headers; the host comes from the absolute-form target or the Host header.
    ///
    /// ```
    /// use rampart_rules::HttpRequestFields;
    /// let r = HttpRequestFields::from_parts("GET", "/a/b.PHP?x=1", "HTTP/1.1",
    ///     vec![("Host".into(), b"example.com".to_vec())]);
    /// assert_eq!((r.host.as_str(), r.path.as_str(), r.query.as_str()), ("example.com", "/a/b.PHP", "x=1"));
    /// ```
    pub fn from_parts(
        method: &str,
        target: &str,
        version: &str,
        headers: Vec<(String, Vec<u8>)>,
    ) -> Self {
        let mut authority = None;
        let mut origin_form = target;
        if let Some(after_scheme) = target.split_once("://").map(|(_, rest)| rest) {
            let end = after_scheme.find(['/', '?']).unwrap_or(after_scheme.len());
            authority = Some(&after_scheme[..end]);
            origin_form = &after_scheme[end..];
        }
        let (path, query) = origin_form.split_once('?').unwrap_or((origin_form, ""));
        let host = authority.map(str::to_owned).unwrap_or_else(|| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("host"))
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        });
        HttpRequestFields {
            method: method.to_owned(),
            uri: target.to_owned(),
            host,
            path: path.to_owned(),
            query: query.to_owned(),
            version: version.to_owned(),
            headers,
            ..Default::default()
        }
    }

    /// Values of every header named `name` (case-insensitive), joined by `sep`.
    fn joined_header(&self, name: &str, sep: &[u8]) -> Value<'_> {
        let mut values = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
        let Some((_, first)) = values.next() else {
            return Value::Bytes(Cow::Borrowed(b""));
        };
        let mut out: Cow<'_, [u8]> = Cow::Borrowed(first);
        for (_, v) in values {
            let o = out.to_mut();
            o.extend_from_slice(sep);
            o.extend_from_slice(v);
        }
        Value::Bytes(out)
    }

    fn header_map(&self) -> Value<'_> {
        header_map(
            self.headers
                .iter()
                .map(|(n, v)| (n.as_bytes(), v.as_slice())),
        )
    }

    fn cookie_map(&self) -> Value<'_> {
        let mut map = MapValue::new();
        for (_, value) in self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        {
            for pair in value.split(|b| *b == b';') {
                let pair = pair.trim_ascii();
                if pair.is_empty() {
                    continue;
                }
                let (name, v) = split_once(pair, b'=');
                push(
                    &mut map,
                    Cow::Borrowed(name.trim_ascii()),
                    Cow::Borrowed(v.trim_ascii()),
                );
            }
        }
        Value::Map(map)
    }

    fn args(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.query
            .as_bytes()
            .split(|b| *b == b'&')
            .filter(|p| !p.is_empty())
            .map(|p| split_once(p, b'='))
    }

    fn full_uri(&self) -> Value<'_> {
        if self.uri.contains("://") {
            return Value::from(self.uri.as_str());
        }
        let scheme = if self.ssl { "https" } else { "http" };
        Value::from(format!("{scheme}://{}{}", self.host, self.uri))
    }

    fn extension(&self) -> Value<'_> {
        let last = self.path.rsplit('/').next().unwrap_or("");
        match last.rsplit_once('.') {
            Some((_, ext)) => Value::from(ext.to_ascii_lowercase()),
            None => Value::from(""),
        }
    }
}

fn split_once(b: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match b.iter().position(|c| *c == sep) {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &b[b.len()..]),
    }
}

/// The value of `http.request.headers` for these fields (name as received, value): each
/// lowercased name maps to its values in order. Names and values are borrowed where they can
/// be, so a host can answer the field straight from its parsed request.
pub fn header_map<'a>(fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Value<'a> {
    let mut map = MapValue::new();
    for (name, value) in fields {
        let key: Cow<'_, [u8]> = if name.iter().any(u8::is_ascii_uppercase) {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        };
        push(&mut map, key, Cow::Borrowed(value));
    }
    Value::Map(map)
}

fn push<'a>(map: &mut MapValue<'a>, key: Cow<'a, [u8]>, value: Cow<'a, [u8]>) {
    match map.entry(key).or_insert_with(|| Value::Array(Vec::new())) {
        Value::Array(items) => items.push(Value::Bytes(value)),
        _ => unreachable!("only arrays are inserted"),
    }
}

impl FieldSource for HttpRequestFields {
    fn field(&self, id: FieldId, name: &str) -> Option<Value<'_>> {
        self.http_field(HttpField::from_id(id, name)?)
    }
}

impl HttpRequestFields {
    /// The value of one field of the HTTP scheme, computed now.
    pub fn http_field(&self, field: HttpField) -> Option<Value<'_>> {
        fn s(v: &str) -> Value<'_> {
            Value::Bytes(Cow::Borrowed(v.as_bytes()))
        }
        use HttpField as F;
        Some(match field {
            F::Host => s(&self.host),
            F::Cookie => self.joined_header("cookie", b"; "),
            F::Referer => self.joined_header("referer", b", "),
            F::UserAgent => self.joined_header("user-agent", b", "),
            F::XForwardedFor => self.joined_header("x-forwarded-for", b", "),
            F::Method => s(&self.method),
            F::Uri => s(&self.uri),
            F::UriPath => s(&self.path),
            F::UriPathExtension => self.extension(),
            F::UriQuery => s(&self.query),
            F::UriArgs => {
                let mut map = MapValue::new();
                for (n, v) in self.args() {
                    push(&mut map, Cow::Borrowed(n), Cow::Borrowed(v));
                }
                Value::Map(map)
            }
            F::UriArgsNames => Value::Array(self.args().map(|(n, _)| Value::from(n)).collect()),
            F::UriArgsValues => Value::Array(self.args().map(|(_, v)| Value::from(v)).collect()),
            F::FullUri => self.full_uri(),
            F::Version => s(&self.version),
            F::Headers => self.header_map(),
            F::HeadersNames => Value::Array(self.headers.iter().map(|(n, _)| s(n)).collect()),
            F::HeadersValues => Value::Array(
                self.headers
                    .iter()
                    .map(|(_, v)| Value::from(&v[..]))
                    .collect(),
            ),
            F::Cookies => self.cookie_map(),
            F::BodyRaw => Value::from(&self.body[..]),
            F::BodySize => Value::Int(i64::try_from(self.body_size).unwrap_or(i64::MAX)),
            F::TimestampSec => Value::Int(self.timestamp_sec),
            F::ResponseCode => Value::Int(i64::from(self.response_code?)),
            F::IpSrc => Value::Ip(crate::compile::canonical_ip(self.client_ip?)),
            F::IpSrcCountry | F::GeoipCountry => s(&self.country),
            F::IpSrcContinent | F::GeoipContinent => s(&self.continent),
            F::IpSrcAsnum | F::GeoipAsnum => Value::Int(i64::from(self.asnum)),
            F::Ssl => Value::Bool(self.ssl),
            F::ThreatScore => Value::Int(self.threat_score),
        })
    }
}
