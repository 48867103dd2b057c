//! [`HttpRequestFields`]: a plain request struct that fills the standard HTTP scheme, its
//! derived fields (cookies, arguments, header map, full URI, extension, the body's form and
//! parts) computed only when a rule reads them.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::exec::FieldSource;
use crate::http_body::{self, Multipart};
use crate::http_scheme::HttpField;
use crate::scheme::FieldId;
use crate::types::{MapValue, Value};

/// One HTTP request as the host parsed it, plus what the edge knows about its client.
///
/// Per Cloudflare, `http.request.uri.args`, the cookie values and the body's form fields are
/// not URL-decoded; use `url_decode()` in the rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpRequestFields {
    /// Request method, e.g. `GET`.
    pub method: String,
    /// The path and query after URL normalisation (`/path?query`, or the absolute-form
    /// target when the host normalises nothing).
    pub uri: String,
    /// The request-target as received.
    pub raw_uri: String,
    /// Host, from the Host header or the absolute-form target, without port changes.
    pub host: String,
    /// Path part of `uri`.
    pub path: String,
    /// Path part of `raw_uri`.
    pub raw_path: String,
    /// Query part of the request-target, without `?` (normalisation leaves it alone).
    pub query: String,
    /// Protocol version, e.g. `HTTP/1.1` or `HTTP/2`.
    pub version: String,
    /// Header fields in order received; names as received.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The request body, as far as the host inspected it.
    pub body: Vec<u8>,
    /// The body is longer than `body`.
    pub body_truncated: bool,
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

/// `target` split into (authority, path, query): the path is `/` for an absolute-form
/// target without one.
fn split_target(target: &str) -> (Option<&str>, &str, &str) {
    let mut authority = None;
    let mut origin_form = target;
    if let Some(after_scheme) = target.split_once("://").map(|(_, rest)| rest) {
        let end = after_scheme.find(['/', '?']).unwrap_or(after_scheme.len());
        authority = Some(&after_scheme[..end]);
        origin_form = &after_scheme[end..];
    }
    let (path, query) = origin_form.split_once('?').unwrap_or((origin_form, ""));
    (authority, path, query)
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
        let (authority, path, query) = split_target(target);
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
            raw_uri: target.to_owned(),
            host,
            path: path.to_owned(),
            raw_path: path.to_owned(),
            query: query.to_owned(),
            version: version.to_owned(),
            headers,
            ..Default::default()
        }
    }

    /// Sets what the normalised fields show: `uri` is the normalised path and query; the
    /// `raw.*` fields keep the target as received.
    ///
    /// ```
    /// use rampart_rules::HttpRequestFields;
    /// let mut r = HttpRequestFields::from_parts("GET", "/%73ecret?a=1", "HTTP/1.1", vec![]);
    /// r.set_normalized_uri("/secret?a=1");
    /// assert_eq!((r.path.as_str(), r.raw_path.as_str()), ("/secret", "/%73ecret"));
    /// ```
    pub fn set_normalized_uri(&mut self, uri: &str) {
        let (_, path, _) = split_target(uri);
        self.path = path.to_owned();
        self.uri = uri.to_owned();
    }

    /// Values of every header named `name` (case-insensitive), joined by `sep`.
    fn joined_header<'s>(&'s self, name: &'s str, sep: &[u8]) -> Value<'s> {
        let mut values = self.header_values(name);
        let Some(first) = values.next() else {
            return Value::Bytes(Cow::Borrowed(b""));
        };
        let mut out: Cow<'_, [u8]> = Cow::Borrowed(first);
        for v in values {
            let o = out.to_mut();
            o.extend_from_slice(sep);
            o.extend_from_slice(v);
        }
        Value::Bytes(out)
    }

    fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
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
        for value in self.header_values("cookie") {
            for pair in value.split(|b| *b == b';') {
                let pair = pair.trim_ascii();
                if pair.is_empty() {
                    continue;
                }
                let (name, v) = http_body::split_once(pair, b'=');
                push(
                    &mut map,
                    Cow::Borrowed(name.trim_ascii()),
                    Cow::Borrowed(v.trim_ascii()),
                );
            }
        }
        Value::Map(map)
    }

    fn full_uri<'s>(&'s self, uri: &'s str) -> Value<'s> {
        if uri.contains("://") {
            return Value::from(uri);
        }
        let scheme = if self.ssl { "https" } else { "http" };
        Value::from(format!("{scheme}://{}{uri}", self.host))
    }

    /// The media type the Content-Type field names, lowercase, without parameters.
    fn content_type(&self) -> Option<(String, &[u8])> {
        let value = self.header_values("content-type").next()?;
        let (media, params) = http_body::split_once(value, b';');
        Some((
            String::from_utf8_lossy(media.trim_ascii()).to_ascii_lowercase(),
            params,
        ))
    }

    /// The body's `application/x-www-form-urlencoded` fields, when it is one.
    fn form(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let is_form = self
            .content_type()
            .is_some_and(|(media, _)| media == "application/x-www-form-urlencoded");
        let body: &[u8] = if is_form { &self.body } else { b"" };
        http_body::pairs(body)
    }

    /// The body's parts, when it is `multipart/*` with a boundary.
    fn multipart(&self) -> Multipart<'_> {
        match self.content_type() {
            Some((media, params)) if media.starts_with("multipart/") => {
                Multipart::parse(&self.body, params)
            }
            _ => Multipart::default(),
        }
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

pub(crate) fn push<'a>(map: &mut MapValue<'a>, key: Cow<'a, [u8]>, value: Cow<'a, [u8]>) {
    match map.entry(key).or_insert_with(|| Value::Array(Vec::new())) {
        Value::Array(items) => items.push(Value::Bytes(value)),
        _ => unreachable!("only arrays are inserted"),
    }
}

/// The map of `pairs`, each name to its values in order.
fn pair_map<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Value<'a> {
    let mut map = MapValue::new();
    for (n, v) in pairs {
        push(&mut map, Cow::Borrowed(n), Cow::Borrowed(v));
    }
    Value::Map(map)
}

fn names<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Value<'a> {
    Value::Array(pairs.map(|(n, _)| Value::from(n)).collect())
}

fn values<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Value<'a> {
    Value::Array(pairs.map(|(_, v)| Value::from(v)).collect())
}

/// The last path segment's extension, lowercase.
fn extension(path: &str) -> Value<'_> {
    let last = path.rsplit('/').next().unwrap_or("");
    match last.rsplit_once('.') {
        Some((_, ext)) => Value::from(ext.to_ascii_lowercase()),
        None => Value::from(""),
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
        let args = || http_body::pairs(self.query.as_bytes());
        Some(match field {
            F::Host => s(&self.host),
            F::Cookie => self.joined_header("cookie", b"; "),
            F::Referer => self.joined_header("referer", b", "),
            F::UserAgent => self.joined_header("user-agent", b", "),
            F::XForwardedFor => self.joined_header("x-forwarded-for", b", "),
            F::Method => s(&self.method),
            F::Uri => s(&self.uri),
            F::UriPath => s(&self.path),
            F::UriPathExtension => extension(&self.path),
            F::UriQuery | F::RawUriQuery => s(&self.query),
            F::UriArgs | F::RawUriArgs => pair_map(args()),
            F::UriArgsNames | F::RawUriArgsNames => names(args()),
            F::UriArgsValues | F::RawUriArgsValues => values(args()),
            F::FullUri => self.full_uri(&self.uri),
            F::RawUri => s(&self.raw_uri),
            F::RawUriPath => s(&self.raw_path),
            F::RawUriPathExtension => extension(&self.raw_path),
            F::RawFullUri => self.full_uri(&self.raw_uri),
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
            F::BodyTruncated => Value::Bool(self.body_truncated),
            F::BodySize => Value::Int(i64::try_from(self.body_size).unwrap_or(i64::MAX)),
            F::BodyForm => pair_map(self.form()),
            F::BodyFormNames => names(self.form()),
            F::BodyFormValues => values(self.form()),
            F::BodyMime => s(http_body::sniff_mime(&self.body)),
            F::BodyMultipart => self.multipart().map(),
            F::BodyMultipartNames => self.multipart().each(|p| &p.names),
            F::BodyMultipartValues => Value::Array(
                self.multipart()
                    .parts
                    .iter()
                    .map(|p| Value::from(p.value))
                    .collect(),
            ),
            F::BodyMultipartContentTypes => self.multipart().each(|p| &p.content_types),
            F::BodyMultipartContentDispositions => self.multipart().each(|p| &p.dispositions),
            F::BodyMultipartContentTransferEncodings => {
                self.multipart().each(|p| &p.transfer_encodings)
            }
            F::BodyMultipartFilenames => self.multipart().each(|p| &p.filenames),
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
