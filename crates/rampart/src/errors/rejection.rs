//! A generated error answer for one request, and how it becomes a [`Response`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::HeaderName;

use super::pages::{ErrorPages, PageVars, render_page};
use super::{EdgeError, Format, Problem, negotiate, render};
use crate::message::{Body, RayId, Response, ResponseHead, http_date_now};

/// A response a rule sends instead of the catalogue's error page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomResponse {
    /// 400 to 499.
    pub status: u16,
    /// One of text/html, text/plain, application/json, text/xml.
    pub content_type: String,
    /// Sent as is.
    pub body: Arc<[u8]>,
}

/// A generated error answer, with the reason specific to this request.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// Which error from the catalogue.
    pub error: EdgeError,
    /// The specific reason, logged as ErrorReason; shown to the client only when `explained`.
    pub detail: String,
    /// Whether the client is shown `detail`: only for what the client itself did wrong and
    /// can mend (a malformed request, a limit it passed). Origin addresses, rule descriptions
    /// and internal reasons stay in the logs.
    pub explained: bool,
    /// Seconds until a retry makes sense, overriding the catalogue's value (rate limiting).
    pub retry_after: Option<u32>,
    /// The rule's own response, sent as configured instead of the catalogue's page.
    pub response: Option<CustomResponse>,
    /// Extra response header fields (e.g. RateLimit-Policy and RateLimit).
    pub headers: Vec<(&'static str, String)>,
}

impl Rejection {
    /// A rejection with the catalogue's retry advice, whose detail goes to the logs only: the
    /// client sees the catalogue's explanation and the ray id.
    pub fn new(error: EdgeError, detail: impl Into<String>) -> Rejection {
        Rejection {
            error,
            detail: detail.into(),
            explained: false,
            retry_after: error.entry().retry_after,
            response: None,
            headers: Vec::new(),
        }
    }

    /// A rejection whose detail the client is shown too: what it sent wrong, exactly.
    pub fn explained(error: EdgeError, detail: impl Into<String>) -> Rejection {
        Rejection {
            explained: true,
            ..Rejection::new(error, detail)
        }
    }

    /// The detail as the client may see it: empty unless `explained`.
    pub fn public_detail(&self) -> &str {
        if self.explained { &self.detail } else { "" }
    }

    /// The status the client gets: the rule's own, else the catalogue's.
    pub fn status(&self) -> u16 {
        self.response
            .as_ref()
            .map_or(self.error.status(), |r| r.status)
    }
}

/// Whom a generated answer is for: what it shows and how it is negotiated.
#[derive(Clone, Copy, Debug)]
pub struct Audience<'a> {
    /// The request's ray id.
    pub ray_id: RayId,
    /// The client's IP as the edge sees it.
    pub client_ip: IpAddr,
    /// The zone, when one was chosen.
    pub zone: Option<&'a str>,
    /// The request's Accept field.
    pub accept: Option<&'a [u8]>,
    /// Base of the `type` URI of problem details.
    pub docs_url: &'a str,
    /// The zone's custom pages.
    pub pages: Option<&'a ErrorPages>,
}

/// The generated answer to `rejection`: the rule's own response as configured; else the
/// zone's page for the error when the client takes HTML; else the problem document in the
/// negotiated format. Always `Cache-Control: no-store`, the ray id, Retry-After when the
/// error is retryable, and the rejection's own fields.
pub fn rejection_response(rejection: &Rejection, a: &Audience<'_>) -> Response {
    let entry = rejection.error.entry();
    let (status, content_type, body): (u16, Bytes, Vec<u8>) = match &rejection.response {
        Some(custom) => (
            custom.status,
            Bytes::from(custom.content_type.clone()),
            custom.body.to_vec(),
        ),
        None => {
            let format = negotiate(a.accept);
            let content_type = Bytes::from_static(format.content_type().as_bytes());
            let page = a
                .pages
                .filter(|_| format == Format::Html)
                .and_then(|p| p.for_generated(rejection.error));
            let body = match page {
                Some(template) => render_page(
                    template,
                    &PageVars {
                        ray_id: a.ray_id.as_str(),
                        client_ip: &a.client_ip.to_string(),
                        error_code: entry.code.unwrap_or(entry.status),
                        title: entry.title,
                        detail: rejection.public_detail(),
                    },
                ),
                None => render(
                    &Problem {
                        error: rejection.error,
                        detail: rejection.public_detail(),
                        ray_id: a.ray_id.as_str(),
                        client_ip: a.client_ip,
                        zone: a.zone,
                        retry_after: rejection.retry_after,
                        timestamp: &crate::text::rfc3339(SystemTime::now()),
                        docs_url: a.docs_url,
                    },
                    format,
                ),
            };
            (entry.status, content_type, body)
        }
    };
    let mut head = ResponseHead::new(status);
    head.append(http::header::DATE, http_date_now());
    head.append(http::header::CONTENT_TYPE, content_type);
    head.append(http::header::CACHE_CONTROL, Bytes::from_static(b"no-store"));
    head.set_ray_id(a.ray_id);
    if let Some(secs) = rejection.retry_after {
        head.append(http::header::RETRY_AFTER, Bytes::from(secs.to_string()));
    }
    for (name, value) in &rejection.headers {
        head.append(HeaderName::from_static(name), Bytes::from(value.clone()));
    }
    head.content_length = Some(body.len() as u64);
    Response {
        head,
        body: Body::Full(Bytes::from(body)),
    }
}

/// Origin fields a custom page replaces: it has its own type and length, and the origin's
/// coding and validators describe the origin's body, not the page.
const REPLACED_BY_PAGE: [HeaderName; 4] = [
    http::header::CONTENT_TYPE,
    http::header::CONTENT_ENCODING,
    http::header::ETAG,
    http::header::LAST_MODIFIED,
];

/// The zone's page for an origin error: `head` (the origin's status and fields) loses the
/// fields that described the origin's body and gains the page's type; the page is the body.
pub fn origin_error_page(
    head: &mut ResponseHead,
    template: &str,
    ray_id: RayId,
    client_ip: IpAddr,
) -> Bytes {
    let status = head.status();
    let body = render_page(
        template,
        &PageVars {
            ray_id: ray_id.as_str(),
            client_ip: &client_ip.to_string(),
            error_code: status,
            title: rampart_http::canonical_reason(status),
            detail: "",
        },
    );
    for name in REPLACED_BY_PAGE {
        head.remove_origin(name);
    }
    head.append(
        http::header::CONTENT_TYPE,
        Bytes::from_static(b"text/html; charset=utf-8"),
    );
    head.content_length = Some(body.len() as u64);
    Bytes::from(body)
}
