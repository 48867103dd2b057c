//! From an origin's response to a stored object: whether it may be stored, for how long, and
//! what of it is kept.

use std::time::SystemTime;

use bytes::Bytes;
use rampart_cache::control::ResponseDirectives;
use rampart_cache::freshness::{self, NotStored, Policy};
use rampart_cache::object::{Fields, Meta, Object};

use crate::message::ResponseHead;

/// What is known of the request a response answers, when deciding to store it.
#[derive(Clone, Copy, Debug)]
pub struct FillRequest<'a> {
    /// The zone.
    pub zone: &'a str,
    /// `scheme://host/path?query`, as the client asked.
    pub url: &'a str,
    /// The host.
    pub host: &'a str,
    /// The request had Authorization.
    pub authorization: bool,
    /// When the request went to the origin.
    pub request_time: SystemTime,
    /// When the response head came.
    pub response_time: SystemTime,
    /// The cache rule's policy.
    pub policy: Policy,
}

/// Fields a cache never stores: its own (Age is computed when served) and `Cache-Tag` (kept
/// as the object's tags, never sent to clients); `Set-Cookie` is not stored either (a response
/// with one is only stored when a cache rule allows it).
fn kept(name: &[u8]) -> bool {
    !(name.eq_ignore_ascii_case(b"age")
        || name.eq_ignore_ascii_case(b"cache-tag")
        || name.eq_ignore_ascii_case(b"set-cookie"))
}

/// The values of every field named `name`, as a list (comma-separated values split).
fn list<'h>(head: &'h ResponseHead, name: &str) -> Vec<&'h [u8]> {
    let mut out = Vec::new();
    head.for_each_origin_field(|n, v| {
        if n.eq_ignore_ascii_case(name.as_bytes()) {
            out.extend(
                v.split(|&b| b == b',')
                    .map(<[u8]>::trim_ascii)
                    .filter(|i| !i.is_empty()),
            );
        }
    });
    out
}

/// The `Cache-Control` directives of the origin's fields in `head`.
pub fn directives(head: &ResponseHead) -> ResponseDirectives {
    let mut cache_control = Vec::new();
    head.for_each_origin_field(|n, v| {
        if n.eq_ignore_ascii_case(b"cache-control") {
            cache_control.push(v);
        }
    });
    ResponseDirectives::parse(cache_control)
}

/// The object `head` would be stored as (its body still to come), or why it is not stored.
pub fn object(head: &ResponseHead, req: &FillRequest<'_>) -> Result<Object, NotStored> {
    let directives = directives(head);
    let date = head.get("date").and_then(freshness::parse_date);
    let etag = head.get("etag").map(Bytes::copy_from_slice);
    let last_modified = head.get("last-modified").and_then(freshness::parse_date);
    let vary: Vec<Box<str>> = list(head, "vary")
        .into_iter()
        .map(|v| {
            String::from_utf8_lossy(v)
                .to_ascii_lowercase()
                .into_boxed_str()
        })
        .collect();
    let response = freshness::Response {
        status: head.status(),
        directives: &directives,
        date,
        expires: head.get("expires"),
        has_validator: etag.is_some() || last_modified.is_some(),
        set_cookie: head.get("set-cookie").is_some(),
        vary_star: vary.iter().any(|v| &**v == "*"),
    };
    let lifetime =
        freshness::lifetime(&response, req.authorization, req.policy, req.response_time)?;
    let mut kept_fields = Vec::new();
    head.for_each_origin_field(|n, v| {
        if kept(n) {
            kept_fields.push((n, v));
        }
    });
    let fields = Fields::new(kept_fields);
    let tags = list(head, "cache-tag")
        .into_iter()
        .map(|t| {
            String::from_utf8_lossy(t)
                .to_ascii_lowercase()
                .into_boxed_str()
        })
        .collect();
    let seconds = |s: Option<u64>| std::time::Duration::from_secs(s.unwrap_or(0));
    Ok(Object {
        encoded: Default::default(),
        status: head.status(),
        fields,
        body: Bytes::new(),
        meta: Meta {
            response_time: Some(req.response_time),
            initial_age: freshness::initial_age(
                head.get("age"),
                date,
                req.request_time,
                req.response_time,
            ),
            lifetime,
            stale_while_revalidate: seconds(directives.stale_while_revalidate),
            stale_if_error: seconds(directives.stale_if_error),
            must_revalidate: directives.must_revalidate_when_stale() || directives.no_cache,
            etag,
            last_modified,
            date,
            zone: req.zone.into(),
            url: req.url.into(),
            host: req.host.into(),
            tags,
            vary: vary.into_boxed_slice(),
        },
    })
}

/// A stored object being filled with its body as the body streams to the client.
pub struct Filling {
    /// The key to store it under.
    pub key: String,
    /// The object, its body empty.
    pub object: Object,
    /// The body so far.
    pub body: Vec<u8>,
    /// Most bytes of body stored: past it, the filling is abandoned.
    pub limit: u64,
}

impl Filling {
    /// Adds a piece of the body; `false` once the body is too large to store.
    pub fn push(&mut self, piece: &[u8]) -> bool {
        if (self.body.len() + piece.len()) as u64 > self.limit {
            self.body = Vec::new();
            return false;
        }
        self.body.extend_from_slice(piece);
        true
    }

    /// The object with its whole body.
    pub fn finish(mut self) -> (String, Object) {
        self.object.body = Bytes::from(self.body);
        (self.key, self.object)
    }
}

/// The stored object `stale`, freshened by the origin's 304 to its revalidation (RFC 9111
/// §4.3.4): the 304's fields replace the stored ones of the same name (but the framing), its
/// Date and Age give the new age, and the body is kept. Tags the 304 does not repeat are
/// kept too.
pub fn freshen(
    stale: &Object,
    not_modified: &ResponseHead,
    req: &FillRequest<'_>,
) -> Result<Object, NotStored> {
    let mut new: Vec<(&[u8], &[u8])> = Vec::new();
    not_modified.for_each_field(|n, v| {
        let framing = n.eq_ignore_ascii_case(b"content-length")
            || n.eq_ignore_ascii_case(b"transfer-encoding");
        let own = n.eq_ignore_ascii_case(crate::message::RAY_ID_HEADER.as_bytes());
        if !framing && !own {
            new.push((n, v));
        }
    });
    let fields = Fields::new(
        stale
            .fields
            .iter()
            .filter(|(n, _)| !new.iter().any(|(m, _)| n.eq_ignore_ascii_case(m)))
            .chain(new.iter().copied()),
    );
    let merged = Object {
        encoded: Default::default(),
        status: stale.status,
        fields,
        body: Bytes::new(),
        meta: Meta::default(),
    };
    let head = ResponseHead::relayed(
        stale.status,
        crate::message::OriginFields::Stored(std::sync::Arc::new(merged)),
    );
    let mut object = object(&head, req)?;
    object.body = stale.body.clone();
    if object.meta.tags.is_empty() {
        object.meta.tags = stale.meta.tags.clone();
    }
    Ok(object)
}
