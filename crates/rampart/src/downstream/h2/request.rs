//! An HTTP/2 request written as an HTTP/1.1 head, for rampart-http to validate: both
//! protocols meet one set of checks, limits, status codes and explanations.

/// Writes the request's pseudo-headers and fields as an HTTP/1.1 head. `:authority` becomes
/// Host (a Host field equal to it is dropped; a different one stays, and two Hosts are a 400);
/// a body without Content-Length is marked chunked so that the head's framing says a body
/// follows.
pub(super) fn http1_head(parts: &http::request::Parts, has_body: bool) -> Vec<u8> {
    let authority = parts.uri.authority().map(|a| a.as_str());
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    if parts.method == http::Method::CONNECT {
        out.extend_from_slice(authority.unwrap_or("").as_bytes());
    } else {
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        out.extend_from_slice(target.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(a) = authority {
        rampart_http::write_header(&mut out, "host", a.as_bytes());
    }
    for (name, value) in &parts.headers {
        if name == http::header::HOST && authority.map(str::as_bytes) == Some(value.as_bytes()) {
            continue;
        }
        if name == http::header::COOKIE {
            continue;
        }
        rampart_http::write_header(&mut out, name.as_str(), value.as_bytes());
    }
    // RFC 9113 §8.2.3: cookie fields split into several (as browsers send them over HTTP/2)
    // are joined with "; " into one before the request goes on as HTTP/1.1.
    let mut cookies = parts.headers.get_all(http::header::COOKIE).iter();
    if let Some(first) = cookies.next() {
        out.extend_from_slice(b"cookie: ");
        out.extend_from_slice(first.as_bytes());
        for more in cookies {
            out.extend_from_slice(b"; ");
            out.extend_from_slice(more.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    if has_body && !parts.headers.contains_key(http::header::CONTENT_LENGTH) {
        rampart_http::write_header(&mut out, "transfer-encoding", b"chunked");
    }
    rampart_http::write_end_of_head(&mut out);
    out
}
