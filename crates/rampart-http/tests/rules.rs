//! One test per rule of the strict front end: the kind, the status and the byte offset.

use rampart_http::{BodyFraming, Limits, Parse, RequestErrorKind as K, parse_request_head};

fn reject(raw: &[u8]) -> (K, u16, usize) {
    reject_with(raw, &Limits::default())
}

fn reject_with(raw: &[u8], limits: &Limits) -> (K, u16, usize) {
    match parse_request_head(raw, limits) {
        Err(e) => (e.kind().clone(), e.status(), e.offset()),
        Ok(Parse::Complete((h, _))) => panic!(
            "accepted {:?} as {} {}",
            String::from_utf8_lossy(raw),
            h.method(),
            h.target()
        ),
        Ok(Parse::Partial) => panic!("partial: {:?}", String::from_utf8_lossy(raw)),
    }
}

fn accept(raw: &[u8]) -> rampart_http::RequestHead {
    match parse_request_head(raw, &Limits::default()) {
        Ok(Parse::Complete((h, len))) => {
            assert_eq!(len, raw.len());
            h
        }
        other => panic!(
            "{:?} for {:?}",
            other.map(|_| ()),
            String::from_utf8_lossy(raw)
        ),
    }
}

#[test]
fn request_line_rules() {
    let cases: &[(&[u8], K, u16, usize)] = &[
        (
            b"GE(T / HTTP/1.1\r\nHost: a\r\n\r\n",
            K::MethodNotToken { byte: b'(' },
            400,
            2,
        ),
        (
            b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
            K::ExtraWhitespaceInRequestLine,
            400,
            4,
        ),
        (
            b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
            K::ExtraWhitespaceInRequestLine,
            400,
            5,
        ),
        (
            b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n",
            K::ExtraWhitespaceInRequestLine,
            400,
            3,
        ),
        (
            b" GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            K::ExtraWhitespaceInRequestLine,
            400,
            0,
        ),
        (
            b"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n",
            K::ExtraWhitespaceInRequestLine,
            400,
            6,
        ),
        // A tab in the target is named before any other bad byte in it.
        (
            b"GET /a<b\tc HTTP/1.1\r\nHost: a\r\n\r\n",
            K::ExtraWhitespaceInRequestLine,
            400,
            8,
        ),
        (
            b"GET / HTTP/3.0\r\nHost: a\r\n\r\n",
            K::UnsupportedVersion,
            505,
            6,
        ),
        (
            b"GET / HTTP/1.10\r\nHost: a\r\n\r\n",
            K::MalformedVersion,
            400,
            6,
        ),
        (
            b"GET / HTTP/1\r\nHost: a\r\n\r\n",
            K::MalformedVersion,
            400,
            6,
        ),
        (
            b"GET / http/1.1\r\nHost: a\r\n\r\n",
            K::MalformedVersion,
            400,
            6,
        ),
        (b"GET /\r\nHost: a\r\n\r\n", K::MalformedVersion, 400, 5),
    ];
    for (raw, kind, status, offset) in cases {
        assert_eq!(
            reject(raw),
            (kind.clone(), *status, *offset),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn request_target_rules() {
    // What breaks parsing is refused: controls, space, DEL, a fragment, bytes not UTF-8.
    for b in [b' ', b'#', 0x01, 0x0b, 0x7f, 0xc3, 0x80, 0xff] {
        let mut raw = b"GET /a".to_vec();
        raw.push(b);
        raw.extend_from_slice(b"b HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(
            reject(&raw),
            (K::InvalidTargetByte { byte: b }, 400, 6),
            "byte 0x{b:02x}"
        );
    }
    // What browsers and common clients send is served (the WHATWG URL standard leaves these
    // unencoded in paths or queries), and so is UTF-8.
    for target in [
        &b"/?filter[name]=x"[..],
        b"/?a[]=1",
        b"/?q={a:1}",
        b"/?q=a|b",
        b"/?q=a^b",
        b"/?q=`x`",
        b"/a|b",
        b"/a[1]",
        b"/a\\b",
        b"/q=\"x\"<y>",
        "/caf\u{e9}/\u{2603}?q=\u{1f600}".as_bytes(),
        b"http://a/x{y}",
    ] {
        let mut raw = b"GET ".to_vec();
        raw.extend_from_slice(target);
        raw.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
        let Ok(Parse::Complete((head, _))) = parse_request_head(&raw, &Limits::default()) else {
            panic!("{:?} is refused", String::from_utf8_lossy(target));
        };
        assert_eq!(head.target().as_bytes(), target);
    }
    let cases: &[(&[u8], K, usize)] = &[
        (
            b"GET /\xe2\x98 HTTP/1.1\r\nHost: a\r\n\r\n",
            K::InvalidTargetByte { byte: 0xe2 },
            5,
        ),
        (
            b"GET http://\xc3\xa9/ HTTP/1.1\r\nHost: a\r\n\r\n",
            K::InvalidTargetByte { byte: 0xc3 },
            11,
        ),
        (
            b"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n",
            K::InvalidPercentEncoding,
            5,
        ),
        (
            b"GET /%4 HTTP/1.1\r\nHost: a\r\n\r\n",
            K::InvalidPercentEncoding,
            5,
        ),
        (
            b"GET a.test:80 HTTP/1.1\r\nHost: a\r\n\r\n",
            K::TargetFormNotAllowedForMethod,
            4,
        ),
        (
            b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
            K::TargetFormNotAllowedForMethod,
            4,
        ),
        (
            b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n",
            K::TargetFormNotAllowedForMethod,
            8,
        ),
        (
            b"GET index.html HTTP/1.1\r\nHost: a\r\n\r\n",
            K::InvalidTargetForm,
            4,
        ),
        (
            b"GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
            K::InvalidTargetForm,
            4,
        ),
    ];
    for (raw, kind, offset) in cases {
        assert_eq!(
            reject(raw),
            (kind.clone(), 400, *offset),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
    assert_eq!(accept(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").path(), "*");
    assert_eq!(
        accept(b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n").path(),
        ""
    );
}

#[test]
fn field_line_rules() {
    let cases: &[(&[u8], K, usize)] = &[
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nBad(Name: x\r\n\r\n",
            K::HeaderNameNotToken { byte: b'(' },
            28,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nX-A : x\r\n\r\n",
            K::WhitespaceBeforeColon,
            28,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nX-A: x\r\n folded\r\n\r\n",
            K::ObsoleteLineFolding,
            33,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
            K::MissingColon,
            32,
        ),
        (b"GET / HTTP/1.1\nHost: a\r\n\r\n", K::BareLineFeed, 14),
        (
            b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
            K::BareCarriageReturn,
            23,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
            K::InvalidByteInFieldValue { byte: 0 },
            29,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x07b\r\n\r\n",
            K::InvalidByteInFieldValue { byte: 7 },
            29,
        ),
    ];
    for (raw, kind, offset) in cases {
        assert_eq!(
            reject(raw),
            (kind.clone(), 400, *offset),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
    // obs-text is allowed in values (RFC 9110 §5.5).
    assert_eq!(
        accept(b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n").header("x"),
        Some(&b"caf\xc3\xa9"[..])
    );
}

#[test]
fn host_rules() {
    let cases: &[(&[u8], K)] = &[
        (b"GET / HTTP/1.1\r\n\r\n", K::MissingHost),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
            K::MultipleHost,
        ),
        (b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", K::InvalidHost),
        (b"GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n", K::InvalidHost),
        (b"GET / HTTP/1.1\r\nHost: \r\n\r\n", K::InvalidHost),
        (
            b"GET http://b.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n",
            K::HostDiffersFromTarget,
        ),
        (
            b"GET http://a.test:81/ HTTP/1.1\r\nHost: a.test\r\n\r\n",
            K::HostDiffersFromTarget,
        ),
    ];
    for (raw, kind) in cases {
        assert_eq!(
            reject(raw).0,
            kind.clone(),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
    let h = accept(b"GET http://A.test:80/x?y HTTP/1.1\r\nHost: a.test\r\n\r\n");
    assert_eq!(
        (
            h.host().unwrap().host(),
            h.path(),
            h.query(),
            &*h.path_and_query()
        ),
        ("a.test", "/x", Some("y"), "/x?y")
    );
    // RFC 9112 §3.2.1: an empty path goes to the origin as "/", the query kept after it.
    for (raw, origin_form) in [
        (
            &b"GET http://a.test HTTP/1.1\r\nHost: a.test\r\n\r\n"[..],
            "/",
        ),
        (
            b"GET http://a.test?q=1 HTTP/1.1\r\nHost: a.test\r\n\r\n",
            "/?q=1",
        ),
        (b"GET /p?q HTTP/1.1\r\nHost: a.test\r\n\r\n", "/p?q"),
        // RFC 9112 §3.2.4: OPTIONS about the whole server goes on as `*`.
        (
            b"OPTIONS http://a.test HTTP/1.1\r\nHost: a.test\r\n\r\n",
            "*",
        ),
        (
            b"OPTIONS http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n",
            "/",
        ),
        (
            b"OPTIONS http://a.test?q HTTP/1.1\r\nHost: a.test\r\n\r\n",
            "/?q",
        ),
    ] {
        assert_eq!(accept(raw).path_and_query(), origin_form);
    }
    // The host is read from where it lies in the head (lowercase already) or lowercased
    // apart; either way the same answer, with the port and the IP flag.
    for (raw, host, port, ip) in [
        (
            &b"GET / HTTP/1.1\r\nX: y\r\nHost: www.a.test.:8080\r\n\r\n"[..],
            "www.a.test",
            Some(8080),
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: WWW.A.test\r\nX: y\r\n\r\n",
            "www.a.test",
            None,
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: 10.0.0.1:81\r\n\r\n",
            "10.0.0.1",
            Some(81),
            true,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: [::1]:81\r\n\r\n",
            "::1",
            Some(81),
            true,
        ),
        (
            b"GET http://b.test./x HTTP/1.1\r\nHost: B.TEST\r\n\r\n",
            "b.test",
            None,
            false,
        ),
        (
            b"GET http://B.test/ HTTP/1.0\r\n\r\n",
            "b.test",
            None,
            false,
        ),
    ] {
        let h = accept(raw);
        let a = h.host().unwrap();
        assert_eq!(
            (a.host(), a.port(), a.is_ip_literal(), h.host_name()),
            (host, port, ip, Some(host)),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
    assert!(
        accept(b"GET / HTTP/1.0\r\n\r\n").host().is_none(),
        "HTTP/1.0 may omit Host"
    );
}

#[test]
fn framing_rules() {
    let cases: &[(&[u8], K, u16)] = &[
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", K::ContentLengthWithTransferEncoding, 400),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", K::TransferEncodingOnHttp10, 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", K::ChunkedNotLast, 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", K::UnsupportedTransferCoding, 501),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", K::ChunkedNotLast, 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", K::InvalidContentLength, 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", K::ConflictingContentLength, 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", K::UnsupportedExpectation, 417),
    ];
    for (raw, kind, status) in cases {
        let (k, s, _) = reject(raw);
        assert_eq!(
            (k, s),
            (kind.clone(), *status),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
    let h = accept(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\nExpect: 100-Continue\r\n\r\n",
    );
    assert_eq!(h.body(), BodyFraming::Chunked);
    assert!(h.expect_continue());
    assert!(
        !accept(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expect_continue(),
        "ignored for HTTP/1.0"
    );
}

#[test]
fn connection_semantics() {
    let h =
        accept(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Foo\r\nX-Foo: 1\r\n\r\n");
    assert!(
        h.keep_alive()
            && h.is_hop_by_hop("x-foo")
            && h.is_hop_by_hop("TE")
            && !h.is_hop_by_hop("accept")
    );
    assert!(!accept(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keep_alive());
    assert!(!accept(b"GET / HTTP/1.0\r\n\r\n").keep_alive());
    assert!(accept(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive());
    let up =
        accept(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert_eq!(up.upgrade(), Some(&b"websocket"[..]));
}

#[test]
fn uri_limit_at_and_over() {
    let limits = Limits {
        max_uri_bytes: 10,
        ..Limits::default()
    };
    let at = b"GET /123456789 HTTP/1.1\r\nHost: a\r\n\r\n";
    assert!(matches!(
        parse_request_head(at, &limits),
        Ok(Parse::Complete(_))
    ));
    let over = b"GET /1234567890 HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(reject_with(over, &limits), (K::UriTooLong, 414, 14));
    // Also when the request line has not ended yet.
    assert_eq!(reject_with(b"GET /1234567890", &limits).0, K::UriTooLong);
    assert!(matches!(
        parse_request_head(b"GET /123456789", &limits),
        Ok(Parse::Partial)
    ));
}

#[test]
fn header_limits_at_and_over() {
    let head = b"GET / HTTP/1.1\r\nHost: a\r\nX: 12345\r\n\r\n";
    let at = Limits {
        max_header_bytes: head.len(),
        max_headers: 2,
        ..Limits::default()
    };
    assert!(matches!(
        parse_request_head(head, &at),
        Ok(Parse::Complete(_))
    ));
    let small = Limits {
        max_header_bytes: head.len() - 1,
        ..Limits::default()
    };
    assert_eq!(reject_with(head, &small).0, K::HeaderSectionTooLarge);
    let few = Limits {
        max_headers: 1,
        ..Limits::default()
    };
    assert_eq!(reject_with(head, &few), (K::TooManyHeaders, 431, 25));
    // An endless head is refused before it completes.
    let endless = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 200]].concat();
    let tiny = Limits {
        max_header_bytes: 100,
        ..Limits::default()
    };
    assert_eq!(reject_with(&endless, &tiny).0, K::HeaderSectionTooLarge);
}

#[test]
fn leading_empty_lines_are_ignored_and_partial_heads_wait() {
    let h = accept(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(h.method(), "GET");
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    for cut in 1..raw.len() {
        let r = parse_request_head(&raw[..cut], &Limits::default());
        assert!(
            matches!(r, Ok(Parse::Partial)),
            "cut at {cut}: {:?}",
            r.map(|_| ())
        );
    }
}

#[test]
fn every_error_kind_has_a_name_and_a_sentence() {
    let e = parse_request_head(
        b"GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n",
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(e.kind().name(), "invalid_target_byte");
    assert_eq!(
        e.to_string(),
        "invalid byte 0x7f in the request-target at offset 6: controls, space, DEL, '#' and bytes that are not UTF-8 are refused"
    );
    assert!(e.closes_connection());
}
