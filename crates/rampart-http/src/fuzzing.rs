//! Entry points for the fuzz targets in `fuzz/`, which are one-liners calling these. Each
//! checks invariants that must hold for any input, not just that nothing panics.

use crate::{
    ChunkedDecoder, Limits, Normalization, Parse, Version, normalize_path, parse_request_head,
    parse_response_head,
};

/// Any bytes: parsing never panics; a parsed head re-serialises to bytes that parse to the
/// same head; a rejection's offset lies within the input.
pub fn fuzz_request_head(data: &[u8]) {
    let limits = Limits {
        max_uri_bytes: 256,
        max_header_bytes: 1024,
        max_headers: 16,
        ..Limits::default()
    };
    match parse_request_head(data, &limits) {
        Ok(Parse::Complete((head, len))) => {
            assert!(len <= data.len());
            let mut again = Vec::new();
            crate::write_request_line(&mut again, head.method(), head.target(), head.version());
            for (n, v) in head.headers() {
                crate::write_header(&mut again, n, v);
            }
            crate::write_end_of_head(&mut again);
            // Serialising writes "name: value" (one space), which may add bytes.
            let roomy = Limits {
                max_header_bytes: limits.max_header_bytes + 2 * head.header_count() + 2,
                ..limits.clone()
            };
            let head2 = match parse_request_head(&again, &roomy) {
                Ok(Parse::Complete((h, len2))) => {
                    assert_eq!(len2, again.len());
                    h
                }
                other => panic!(
                    "re-serialised head does not parse ({:?}): {:?}",
                    other.map(|_| ()),
                    String::from_utf8_lossy(&again)
                ),
            };
            assert_eq!(head.method(), head2.method());
            assert_eq!(head.target(), head2.target());
            assert_eq!(head.body(), head2.body());
            assert_eq!(head.host(), head2.host());
            assert!(head.headers().eq(head2.headers()));
        }
        Ok(Parse::Partial) => assert!(data.len() <= limits.max_header_bytes + MAX_LEADING),
        Err(e) => assert!(
            e.offset() <= data.len(),
            "offset {} past {} bytes",
            e.offset(),
            data.len()
        ),
    }
}

const MAX_LEADING: usize = 2 * crate::MAX_LEADING_EMPTY_LINES;

/// Any bytes, fed whole and then split at every third byte: the decoder gives the same
/// verdict and the same data either way.
pub fn fuzz_chunked(data: &[u8]) {
    let whole = {
        let mut d = ChunkedDecoder::new(256);
        let mut out = Vec::new();
        d.decode(data, &mut out).map(|n| (n, out, d.is_done()))
    };
    let mut d = ChunkedDecoder::new(256);
    let mut out = Vec::new();
    let mut used = 0;
    let mut split = Ok(());
    for piece in data.chunks(3) {
        match d.decode(piece, &mut out) {
            Ok(n) => {
                used += n;
                if n < piece.len() {
                    break;
                }
            }
            Err(e) => {
                split = Err(e);
                break;
            }
        }
    }
    match (whole, split) {
        (Ok((n, o, done)), Ok(())) => {
            assert_eq!((n, &o, done), (used, &out, d.is_done()));
        }
        (Err(a), Err(b)) => assert_eq!(a.kind(), b.kind()),
        (a, b) => panic!("whole {a:?} vs split {b:?}"),
    }
}

/// Any bytes: response parsing never panics, and a parsed head has a valid status.
pub fn fuzz_response_head(data: &[u8]) {
    if let Ok(Parse::Complete((head, len))) = parse_response_head(data, &Limits::default()) {
        assert!(len <= data.len());
        assert!((100..=599).contains(&head.status()));
        assert!(matches!(head.version(), Version::Http10 | Version::Http11));
        let _ = head.body(false);
    }
}

/// Any bytes as a path: normalising gives plain ASCII that starts with `/`, has no `..`
/// segment left (the path never climbs above the root), and normalising it again changes
/// nothing. A target the request parser accepts normalises the same way.
pub fn fuzz_normalize(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let path = if text.starts_with('/') {
        text.into_owned()
    } else {
        format!("/{text}")
    };
    for kind in [Normalization::Cloudflare, Normalization::Rfc3986] {
        let once = normalize_path(&path, kind);
        assert!(
            once.is_ascii() && once.starts_with('/'),
            "{path:?} -> {once:?}"
        );
        assert!(!once.split('/').any(|s| s == ".."), "{path:?} -> {once:?}");
        if kind == Normalization::Cloudflare {
            assert!(
                !once.contains("//") && !once.contains('\\'),
                "{path:?} -> {once:?}"
            );
        }
        let twice = normalize_path(&once, kind);
        assert_eq!(
            once, twice,
            "{path:?} is not normal after one pass ({kind:?})"
        );
    }
}
