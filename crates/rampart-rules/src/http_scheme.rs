//! The standard HTTP scheme: Cloudflare's field names, declared once here with their types.

use crate::scheme::{FieldId, Scheme};
use crate::types::Type;

/// The types fields have, spelled short for the table below.
fn bytes() -> Type {
    Type::Bytes
}
fn int() -> Type {
    Type::Int
}
fn boolean() -> Type {
    Type::Bool
}
fn ip() -> Type {
    Type::Ip
}
fn list() -> Type {
    Type::array(Type::Bytes)
}
fn lists() -> Type {
    Type::array(Type::array(Type::Bytes))
}
fn map() -> Type {
    Type::map(Type::array(Type::Bytes))
}

/// Declares [`HttpField`]: each variant with its name in expressions and its type, in the
/// order [`Scheme::http`] declares them.
macro_rules! http_fields {
    ($($(#[$doc:meta])* $variant:ident = $name:literal : $ty:ident,)*) => {
        /// A field of the standard HTTP scheme ([`Scheme::http`] declares them in the order of
        /// [`HttpField::ALL`], so `FieldId::index()` is the position).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum HttpField {
            $($(#[$doc])* #[doc = concat!("`", $name, "`: ", stringify!($ty), ".")] $variant,)*
        }

        impl HttpField {
            /// Every field, in declaration order.
            pub const ALL: &'static [HttpField] = &[$(HttpField::$variant,)*];

            /// The field's name in expressions.
            pub fn name(self) -> &'static str {
                match self {
                    $(HttpField::$variant => $name,)*
                }
            }

            /// The field's type.
            pub fn field_type(self) -> Type {
                match self {
                    $(HttpField::$variant => $ty(),)*
                }
            }
        }
    };
}

http_fields! {
    Host = "http.host": bytes,
    Cookie = "http.cookie": bytes,
    Referer = "http.referer": bytes,
    UserAgent = "http.user_agent": bytes,
    XForwardedFor = "http.x_forwarded_for": bytes,
    Method = "http.request.method": bytes,
    /// The path and query, after URL normalisation.
    Uri = "http.request.uri": bytes,
    /// After URL normalisation.
    UriPath = "http.request.uri.path": bytes,
    UriPathExtension = "http.request.uri.path.extension": bytes,
    UriQuery = "http.request.uri.query": bytes,
    UriArgs = "http.request.uri.args": map,
    UriArgsNames = "http.request.uri.args.names": list,
    UriArgsValues = "http.request.uri.args.values": list,
    FullUri = "http.request.full_uri": bytes,
    /// The request-target as the client sent it, before URL normalisation.
    RawUri = "raw.http.request.uri": bytes,
    /// The path as the client sent it.
    RawUriPath = "raw.http.request.uri.path": bytes,
    RawUriPathExtension = "raw.http.request.uri.path.extension": bytes,
    RawUriQuery = "raw.http.request.uri.query": bytes,
    RawUriArgs = "raw.http.request.uri.args": map,
    RawUriArgsNames = "raw.http.request.uri.args.names": list,
    RawUriArgsValues = "raw.http.request.uri.args.values": list,
    RawFullUri = "raw.http.request.full_uri": bytes,
    Version = "http.request.version": bytes,
    Headers = "http.request.headers": map,
    HeadersNames = "http.request.headers.names": list,
    HeadersValues = "http.request.headers.values": list,
    Cookies = "http.request.cookies": map,
    /// The inspected prefix of the body.
    BodyRaw = "http.request.body.raw": bytes,
    /// The body is longer than what was inspected.
    BodyTruncated = "http.request.body.truncated": boolean,
    BodySize = "http.request.body.size": int,
    /// Fields of an `application/x-www-form-urlencoded` body, not decoded.
    BodyForm = "http.request.body.form": map,
    BodyFormNames = "http.request.body.form.names": list,
    BodyFormValues = "http.request.body.form.values": list,
    /// The type the body's first bytes show (`application/pdf`, ...), empty when unknown.
    BodyMime = "http.request.body.mime": bytes,
    /// Parts of a `multipart/form-data` body by name.
    BodyMultipart = "http.request.body.multipart": map,
    BodyMultipartNames = "http.request.body.multipart.names": lists,
    BodyMultipartValues = "http.request.body.multipart.values": list,
    BodyMultipartContentTypes = "http.request.body.multipart.content_types": lists,
    BodyMultipartContentDispositions = "http.request.body.multipart.content_dispositions": lists,
    BodyMultipartContentTransferEncodings =
        "http.request.body.multipart.content_transfer_encodings": lists,
    BodyMultipartFilenames = "http.request.body.multipart.filenames": lists,
    TimestampSec = "http.request.timestamp.sec": int,
    ResponseCode = "http.response.code": int,
    IpSrc = "ip.src": ip,
    IpSrcCountry = "ip.src.country": bytes,
    IpSrcContinent = "ip.src.continent": bytes,
    IpSrcAsnum = "ip.src.asnum": int,
    /// Older Cloudflare name still found in pasted rules.
    GeoipCountry = "ip.geoip.country": bytes,
    /// Older Cloudflare name still found in pasted rules.
    GeoipContinent = "ip.geoip.continent": bytes,
    /// Older Cloudflare name still found in pasted rules.
    GeoipAsnum = "ip.geoip.asnum": int,
    Ssl = "ssl": boolean,
    ThreatScore = "cf.threat_score": int,
}

impl HttpField {
    /// The field called `name`, if it is one of the HTTP scheme.
    pub fn from_name(name: &str) -> Option<HttpField> {
        HttpField::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// The field a [`FieldSource`](crate::FieldSource) is asked for: with the standard scheme
    /// the id is the position in [`HttpField::ALL`], which one comparison of `name` confirms;
    /// a scheme declared in another order falls back to the name.
    pub fn from_id(id: FieldId, name: &str) -> Option<HttpField> {
        match HttpField::ALL.get(id.index()) {
            Some(f) if f.name() == name => Some(*f),
            _ => HttpField::from_name(name),
        }
    }

    /// Whether the field is read from the request body (all `http.request.body.*` fields but
    /// the size, which the head declares): a host reads the body before evaluating a rule
    /// that reads one.
    pub fn needs_body(self) -> bool {
        self.name().starts_with("http.request.body.") && self != HttpField::BodySize
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
