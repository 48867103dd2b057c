//! The fields an access log line can hold, named as in Cloudflare's Logpush `http_requests`
//! dataset: what `server.access_log_fields` chooses from.

/// Declares [`LogField`], its list and its names from one list of fields.
macro_rules! log_fields {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// A field of the access log line, named as in Cloudflare's Logpush `http_requests`
        /// dataset; `server.access_log_fields` picks which are written, and in what order.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum LogField {
            $($(#[doc = $doc])* $name,)*
        }

        impl LogField {
            /// Every field, in the order of a line when `access_log_fields` is not set.
            pub const ALL: &[LogField] = &[$(LogField::$name,)*];
            /// Every field's name, in the order of [`LogField::ALL`].
            pub const NAMES: &[&str] = &[$(stringify!($name),)*];

            /// The field's name, as it appears in the line and in the configuration.
            pub fn name(self) -> &'static str {
                LogField::NAMES[self as usize]
            }

            /// `,"Name":`, what precedes the field's value in a line (without the comma
            /// for the first field): written with one copy.
            pub(crate) fn key(self) -> &'static [u8] {
                match self {
                    $(LogField::$name => concat!(",\"", stringify!($name), "\":").as_bytes(),)*
                }
            }
        }
    };
}

log_fields! {
    /// The request's ray ID, also sent to the client and the origin.
    RayID,
    /// The zone the request was routed to ("" before routing).
    ZoneName,
    /// When the request's first byte arrived.
    EdgeStartTimestamp,
    /// When the line was written: the response was sent or the request given up.
    EdgeEndTimestamp,
    /// The client's address (from `client_ip_header` behind a trusted proxy).
    ClientIP,
    /// The client's source port.
    ClientSrcPort,
    /// The host the request named.
    ClientRequestHost,
    /// The request method.
    ClientRequestMethod,
    /// The request target as received.
    ClientRequestURI,
    /// The path of the request target.
    ClientRequestPath,
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2`.
    ClientRequestProtocol,
    /// `http` or `https`.
    ClientRequestScheme,
    /// Bytes of request head and body as received.
    ClientRequestBytes,
    /// The `User-Agent` header.
    ClientRequestUserAgent,
    /// The `Referer` header.
    ClientRequestReferer,
    /// The client's country (ISO 3166-1 alpha-2) from the GeoIP database.
    ClientCountry,
    /// The client's autonomous system number from the GeoIP database (0 = unknown).
    ClientASN,
    /// The status sent to the client (499 when the client left first).
    EdgeResponseStatus,
    /// Bytes sent to the client, head and body.
    EdgeResponseBytes,
    /// The `Content-Type` of the response sent to the client.
    EdgeResponseContentType,
    /// `true` when the response was cut short after its head went out (the origin reset or
    /// closed mid-body, or broke its framing): the client got fewer bytes than announced.
    EdgeResponseCutShort,
    /// Milliseconds from the request's first byte to the response's first byte.
    EdgeTimeToFirstByteMs,
    /// The origin's status (0 = no origin response).
    OriginResponseStatus,
    /// Milliseconds the origin took to answer.
    OriginResponseDurationMs,
    /// The origin address connected to.
    OriginIP,
    /// The action of the deciding security match.
    SecurityAction,
    /// The rule ID of the deciding security match.
    SecurityRuleID,
    /// The description of the deciding security match.
    SecurityRuleDescription,
    /// Every security phase that matched.
    SecuritySources,
    /// What the edge cache did: `hit`, `miss`, `expired`, `stale`, `bypass`, `revalidated`,
    /// `updating`, `dynamic` ("" when no cache is configured).
    CacheCacheStatus,
    /// Bytes of the response body served from the cache.
    CacheResponseBytes,
    /// A generated error's 1xxx code, else its status; 0 otherwise.
    ErrorCode,
    /// `name: detail` of a generated error.
    ErrorReason,
}

impl LogField {
    /// The field named `name`, exactly as in [`LogField::NAMES`].
    pub fn from_name(name: &str) -> Option<LogField> {
        let i = LogField::NAMES.iter().position(|n| *n == name)?;
        Some(LogField::ALL[i])
    }
}
