//! An HTTP/2 request written as an HTTP/1.1 head, for rampart-http to validate: both
//! protocols meet one set of checks, limits, status codes and explanations.

/// Writes the request's pseudo-headers and fields as an HTTP/1.1 head. `:authority` becomes
/// Host (a Host field equal to it is dropped; a different one stays, and two Hosts are a 400);
/// a body without Content-Length is marked chunked so that the head's framing says a body
/// follows.
pub(crate) fn http1_head(parts: &http::request::Parts, has_body: bool) -> Vec<u8> {
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

/// Any bytes as an HTTP/2 request (method, authority, path and fields, one per line, in the
/// form the `http` crate accepts, as h2 hands them over): the head written for it is always
/// complete, and when rampart-http accepts it, it has the request's method, path and fields.
pub fn fuzz_h2_request(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let (Some(method), Some(authority), Some(path)) = (lines.next(), lines.next(), lines.next())
    else {
        return;
    };
    let mut builder = http::Request::builder()
        .method(method)
        .uri(format!("https://{authority}{path}"));
    for line in lines {
        if let Some((n, v)) = line.split_once(':') {
            builder = builder.header(n.trim(), v.trim());
        }
    }
    let Ok(request) = builder.body(()) else {
        return;
    };
    let (parts, ()) = request.into_parts();
    let raw = http1_head(&parts, data.len() % 2 == 1);
    match rampart_http::parse_request_head(&raw, &rampart_http::Limits::default()) {
        Ok(rampart_http::Parse::Complete((head, len))) => {
            assert_eq!(len, raw.len(), "the whole head is one request");
            assert_eq!(head.method(), parts.method.as_str());
            if parts.method != http::Method::CONNECT {
                let sent = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                assert_eq!(head.target(), sent);
            }
            for (name, value) in &parts.headers {
                if name != http::header::HOST && name != http::header::COOKIE {
                    let found = head
                        .headers()
                        .any(|(n, v)| n == name.as_str() && v == value.as_bytes().trim_ascii());
                    assert!(found, "{name} lost: {:?}", String::from_utf8_lossy(&raw));
                }
            }
        }
        Ok(rampart_http::Parse::Partial) => {
            panic!("incomplete: {:?}", String::from_utf8_lossy(&raw))
        }
        Err(e) => assert!(e.offset() <= raw.len()),
    }
}
