//! From a stored object to the response a request gets: the object, a 304 or a 412 for its
//! preconditions, or a 206 or a 416 for its Range (RFC 9110 §13, §14).

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::HeaderName;
use rampart_cache::conditional::{self, Conditions, Outcome, Validators};
use rampart_cache::control::ResponseDirectives;
use rampart_cache::encoding::{self, Coding};
use rampart_cache::object::Object;
use rampart_cache::range::{self, Ranges};
use rampart_http::RequestHead;

use super::CacheStatus;
use crate::message::{Body, OriginFields, Response, ResponseHead};

/// The fields a 304 carries of the stored response (RFC 9110 §15.4.5).
const NOT_MODIFIED_FIELDS: [&str; 6] = [
    "cache-control",
    "content-location",
    "date",
    "etag",
    "expires",
    "vary",
];

/// Which representation of a stored object a response carries.
#[derive(Clone, Debug, Default)]
pub struct Representation {
    /// The object is compressible: the answer varies on Accept-Encoding, whatever it is.
    pub varies: bool,
    /// The body in the coding the client gets, for a whole (200) answer.
    pub coded: Option<(Coding, Bytes)>,
}

/// The coding that `req` gets `object`'s whole body in, if any: a compressible 200 that the
/// origin did not encode and did not mark `no-transform`, not for a ranged request (a range
/// is of the stored, identity body).
pub fn coding_for(object: &Object, req: &RequestHead) -> (bool, Option<Coding>) {
    let no_transform = ResponseDirectives::parse(
        object
            .fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"cache-control"))
            .map(|(_, v)| v),
    )
    .no_transform;
    let varies = object.status == 200
        && object.body.len() >= encoding::MIN_SIZE
        && object.field("content-encoding").is_none()
        && !no_transform
        && encoding::compressible(object.field("content-type"));
    if !varies || req.header("range").is_some() {
        return (varies, None);
    }
    (varies, encoding::negotiate(req.header("accept-encoding")))
}

/// The response to `req` from `object`, in `representation`; `boundary` separates the parts
/// of a multi-range answer.
pub fn answer(
    object: &Arc<Object>,
    req: &RequestHead,
    now: SystemTime,
    status: CacheStatus,
    boundary: &str,
    representation: Representation,
) -> Response {
    let conditions = Conditions {
        if_match: req.header("if-match"),
        if_none_match: req.header("if-none-match"),
        if_modified_since: req.header("if-modified-since"),
        if_unmodified_since: req.header("if-unmodified-since"),
        if_range: req.header("if-range"),
    };
    let validators = Validators {
        etag: object.meta.etag.as_deref(),
        last_modified: object.meta.last_modified,
        date: object.meta.date,
    };
    let safe = matches!(req.method(), "GET" | "HEAD");
    let mut response = match conditional::evaluate(&conditions, &validators, safe) {
        Outcome::NotModified => not_modified(object),
        Outcome::Failed => empty(412),
        Outcome::Proceed => match req.header("range") {
            Some(r)
                if object.status == 200 && conditional::range_applies(&conditions, &validators) =>
            {
                ranged(object, r, boundary)
            }
            _ => match representation.coded {
                Some((coding, body)) => coded(object, coding, body),
                None => whole(object),
            },
        },
    };
    if representation.varies {
        vary_on_encoding(&mut response.head);
    }
    let age = object.age(now).as_secs();
    response
        .head
        .append(http::header::AGE, Bytes::from(age.to_string()));
    mark(&mut response.head, status, false);
    response
}

/// Adds `rampart-cache-status` and `Cache-Status` for `status` (`stored`: the response was
/// stored on its way).
pub fn mark(head: &mut ResponseHead, status: CacheStatus, stored: bool) {
    // Names built at compile time: `from_static` checks its argument when it runs.
    const RAMPART_CACHE_STATUS: HeaderName = HeaderName::from_static("rampart-cache-status");
    const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");
    head.append(
        RAMPART_CACHE_STATUS,
        Bytes::from_static(status.as_str().as_bytes()),
    );
    head.append(
        CACHE_STATUS,
        Bytes::from_static(status.cache_status_field(stored).as_bytes()),
    );
}

fn whole(object: &Arc<Object>) -> Response {
    let mut head = ResponseHead::relayed(object.status, OriginFields::Stored(object.clone()));
    head.content_length = Some(object.body.len() as u64);
    Response {
        head,
        body: Body::Full(object.body.clone()),
    }
}

/// The whole object in a content coding: its length is the coded body's, and a strong ETag
/// turns weak (the coded bytes are another representation, RFC 9110 §8.8.1).
fn coded(object: &Arc<Object>, coding: Coding, body: Bytes) -> Response {
    let mut head = ResponseHead::relayed(object.status, OriginFields::Stored(object.clone()));
    mark_coded(&mut head, coding);
    head.content_length = Some(body.len() as u64);
    Response {
        head,
        body: Body::Full(body),
    }
}

/// Marks `head` as carrying its body in `coding`: `Content-Encoding`, and a strong ETag sent
/// weak (the coded bytes are another representation of the same resource).
pub fn mark_coded(head: &mut ResponseHead, coding: Coding) {
    if let Some(etag) = head.get("etag")
        && !etag.starts_with(b"W/")
    {
        let mut weak = b"W/".to_vec();
        weak.extend_from_slice(etag);
        head.remove_origin(http::header::ETAG);
        head.append(http::header::ETAG, Bytes::from(weak));
    }
    head.append(
        http::header::CONTENT_ENCODING,
        Bytes::from_static(coding.name().as_bytes()),
    );
}

/// Adds `Vary: Accept-Encoding`, unless the head's Vary names it already.
pub fn vary_on_encoding(head: &mut ResponseHead) {
    let named = head.get("vary").is_some_and(|v| {
        String::from_utf8_lossy(v)
            .to_ascii_lowercase()
            .contains("accept-encoding")
    });
    if !named {
        head.append(http::header::VARY, Bytes::from_static(b"Accept-Encoding"));
    }
}

fn not_modified(object: &Arc<Object>) -> Response {
    let mut head = ResponseHead::new(304);
    for (n, v) in &object.fields {
        if NOT_MODIFIED_FIELDS
            .iter()
            .any(|f| n.eq_ignore_ascii_case(f.as_bytes()))
            && let Ok(name) = HeaderName::from_bytes(n)
        {
            head.append(name, Bytes::copy_from_slice(v));
        }
    }
    Response {
        head,
        body: Body::Full(Bytes::new()),
    }
}

fn empty(status: u16) -> Response {
    let mut head = ResponseHead::new(status);
    head.content_length = Some(0);
    Response {
        head,
        body: Body::Full(Bytes::new()),
    }
}

fn ranged(object: &Arc<Object>, value: &[u8], boundary: &str) -> Response {
    let length = object.body.len() as u64;
    match range::parse(value, length) {
        Ranges::Whole => whole(object),
        Ranges::Unsatisfiable => {
            let mut r = empty(416);
            r.head.append(
                http::header::CONTENT_RANGE,
                Bytes::from(format!("bytes */{length}")),
            );
            r
        }
        Ranges::Satisfiable(ranges) => {
            let mut head = ResponseHead::relayed(206, OriginFields::Stored(object.clone()));
            let body = if let [one] = ranges.as_slice() {
                head.append(
                    http::header::CONTENT_RANGE,
                    Bytes::from(one.content_range(length)),
                );
                object.body.slice(one.first as usize..=one.last as usize)
            } else {
                head.remove_origin(http::header::CONTENT_TYPE);
                head.append(
                    http::header::CONTENT_TYPE,
                    Bytes::from(format!("multipart/byteranges; boundary={boundary}")),
                );
                let content_type = object.field("content-type");
                Bytes::from(range::multipart(
                    &object.body,
                    &ranges,
                    content_type,
                    boundary,
                ))
            };
            head.content_length = Some(body.len() as u64);
            Response {
                head,
                body: Body::Full(body),
            }
        }
    }
}
