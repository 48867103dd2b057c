//! The standard HTTP scheme (Cloudflare's field names) and a plain request
//! struct, [`HttpRequestFields`], that fills it lazily.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::exec::FieldSource;
use crate::scheme::{FieldId, Scheme};
use crate::types::{MapValue, Type, Value};

/// The fields of [`Scheme::http`], with their types.
pub const HTTP_FIELDS: &[(&str, HttpFieldType)] = &[
    ("http.host", HttpFieldType::Bytes),
    ("http.cookie", HttpFieldType::Bytes),
    ("http.referer", HttpFieldType::Bytes),
    ("http.user_agent", HttpFieldType::Bytes),
    ("http.x_forwarded_for", HttpFieldType::Bytes),
    ("http.request.method", HttpFieldType::Bytes),
    ("http.request.uri", HttpFieldType::Bytes),
    ("http.request.uri.path", HttpFieldType::Bytes),
    ("http.request.uri.path.extension", HttpFieldType::Bytes),
    ("http.request.uri.query", HttpFieldType::Bytes),
    ("http.request.uri.args", HttpFieldType::MapOfBytesArrays),
    ("http.request.uri.args.names", HttpFieldType::BytesArray),
    ("http.request.uri.args.values", HttpFieldType::BytesArray),
    ("http.request.full_uri", HttpFieldType::Bytes),
    ("http.request.version", HttpFieldType::Bytes),
    ("http.request.headers", HttpFieldType::MapOfBytesArrays),
    ("http.request.headers.names", HttpFieldType::BytesArray),
    ("http.request.headers.values", HttpFieldType::BytesArray),
    ("http.request.cookies", HttpFieldType::MapOfBytesArrays),
    ("http.request.body.raw", HttpFieldType::Bytes),
    ("http.request.body.size", HttpFieldType::Int),
    ("http.request.timestamp.sec", HttpFieldType::Int),
    ("http.response.code", HttpFieldType::Int),
    ("ip.src", HttpFieldType::Ip),
    ("ip.src.country", HttpFieldType::Bytes),
    ("ip.src.continent", HttpFieldType::Bytes),
    ("ip.src.asnum", HttpFieldType::Int),
    // Older Cloudflare names still found in pasted rules.
    ("ip.geoip.country", HttpFieldType::Bytes),
    ("ip.geoip.continent", HttpFieldType::Bytes),
    ("ip.geoip.asnum", HttpFieldType::Int),
    ("ssl", HttpFieldType::Bool),
    ("cf.threat_score", HttpFieldType::Int),
];

/// The type of a field of the HTTP scheme (a `const`-friendly [`Type`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFieldType {
    /// [`Type::Bool`].
    Bool,
    /// [`Type::Int`].
    Int,
    /// [`Type::Bytes`].
    Bytes,
    /// [`Type::Ip`].
    Ip,
    /// `Array<Bytes>`.
    BytesArray,
    /// `Map<Array<Bytes>>`.
    MapOfBytesArrays,
}

impl HttpFieldType {
    /// The language type.
    pub fn to_type(self) -> Type {
        match self {
            HttpFieldType::Bool => Type::Bool,
            HttpFieldType::Int => Type::Int,
            HttpFieldType::Bytes => Type::Bytes,
            HttpFieldType::Ip => Type::Ip,
            HttpFieldType::BytesArray => Type::array(Type::Bytes),
            HttpFieldType::MapOfBytesArrays => Type::map(Type::array(Type::Bytes)),
        }
    }
}

impl Scheme {
    /// The standard HTTP scheme: Cloudflare's request fields plus
    /// `http.response.code` (for rate limiting counting expressions
    /// evaluated after the response). See [`HTTP_FIELDS`].
    pub fn http() -> Scheme {
        let mut s = Scheme::new();
        for (name, ty) in HTTP_FIELDS {
            s.add_field(name, ty.to_type())
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
    /// Response status, once known (for expressions evaluated after the response).
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
        let mut map = MapValue::new();
        for (name, value) in &self.headers {
            let key: Cow<'_, [u8]> = if name.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(name.to_ascii_lowercase().into_bytes())
            } else {
                Cow::Borrowed(name.as_bytes())
            };
            push(&mut map, key, Cow::Borrowed(value));
        }
        Value::Map(map)
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

fn push<'a>(map: &mut MapValue<'a>, key: Cow<'a, [u8]>, value: Cow<'a, [u8]>) {
    match map.entry(key).or_insert_with(|| Value::Array(Vec::new())) {
        Value::Array(items) => items.push(Value::Bytes(value)),
        _ => unreachable!("only arrays are inserted"),
    }
}

impl FieldSource for HttpRequestFields {
    fn field(&self, _id: FieldId, name: &str) -> Option<Value<'_>> {
        fn s(v: &str) -> Value<'_> {
            Value::Bytes(Cow::Borrowed(v.as_bytes()))
        }
        Some(match name {
            "http.host" => s(&self.host),
            "http.cookie" => self.joined_header("cookie", b"; "),
            "http.referer" => self.joined_header("referer", b", "),
            "http.user_agent" => self.joined_header("user-agent", b", "),
            "http.x_forwarded_for" => self.joined_header("x-forwarded-for", b", "),
            "http.request.method" => s(&self.method),
            "http.request.uri" => s(&self.uri),
            "http.request.uri.path" => s(&self.path),
            "http.request.uri.path.extension" => self.extension(),
            "http.request.uri.query" => s(&self.query),
            "http.request.uri.args" => {
                let mut map = MapValue::new();
                for (n, v) in self.args() {
                    push(&mut map, Cow::Borrowed(n), Cow::Borrowed(v));
                }
                Value::Map(map)
            }
            "http.request.uri.args.names" => {
                Value::Array(self.args().map(|(n, _)| Value::from(n)).collect())
            }
            "http.request.uri.args.values" => {
                Value::Array(self.args().map(|(_, v)| Value::from(v)).collect())
            }
            "http.request.full_uri" => self.full_uri(),
            "http.request.version" => s(&self.version),
            "http.request.headers" => self.header_map(),
            "http.request.headers.names" => {
                Value::Array(self.headers.iter().map(|(n, _)| s(n)).collect())
            }
            "http.request.headers.values" => Value::Array(
                self.headers
                    .iter()
                    .map(|(_, v)| Value::from(&v[..]))
                    .collect(),
            ),
            "http.request.cookies" => self.cookie_map(),
            "http.request.body.raw" => Value::from(&self.body[..]),
            "http.request.body.size" => {
                Value::Int(i64::try_from(self.body_size).unwrap_or(i64::MAX))
            }
            "http.request.timestamp.sec" => Value::Int(self.timestamp_sec),
            "http.response.code" => Value::Int(i64::from(self.response_code?)),
            "ip.src" => Value::Ip(crate::compile::canonical_ip(self.client_ip?)),
            "ip.src.country" | "ip.geoip.country" => s(&self.country),
            "ip.src.continent" | "ip.geoip.continent" => s(&self.continent),
            "ip.src.asnum" | "ip.geoip.asnum" => Value::Int(i64::from(self.asnum)),
            "ssl" => Value::Bool(self.ssl),
            "cf.threat_score" => Value::Int(self.threat_score),
            _ => return None,
        })
    }
}
