//! Properties over generated messages: parse(serialise(request)) round-trips, and the chunked
//! decoder gives the same result however its input is split.

use proptest::prelude::*;
use rampart_http::{
    ChunkedDecoder, Limits, Parse, Version, parse_request_head, write_chunk, write_last_chunk,
};

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$&'*+.^_`|~-]{1,12}"
}

fn path() -> impl Strategy<Value = String> {
    (
        "(/[A-Za-z0-9._~!$&'()*+,;=:@-]{0,8}){1,4}",
        proptest::option::of("[A-Za-z0-9=&/?._-]{0,12}"),
    )
        .prop_map(|(p, q)| match q {
            Some(q) => format!("{p}?{q}"),
            None => p,
        })
}

fn value() -> impl Strategy<Value = String> {
    "[ -~]{0,20}".prop_map(|v| v.trim().to_string())
}

proptest! {
    #[test]
    fn parse_of_serialise_round_trips(
        method in "[A-Z]{1,7}",
        target in path(),
        v11 in any::<bool>(),
        fields in proptest::collection::vec((token(), value()), 0..8),
    ) {
        prop_assume!(method != "CONNECT");
        let fields: Vec<(String, String)> = fields.into_iter().filter(|(n, _)| {
            let n = n.to_ascii_lowercase();
            !matches!(n.as_str(), "host" | "content-length" | "transfer-encoding" | "expect")
        }).collect();
        let version = if v11 { Version::Http11 } else { Version::Http10 };
        let mut raw = Vec::new();
        rampart_http::write_request_line(&mut raw, &method, &target, version);
        rampart_http::write_header(&mut raw, "Host", b"example.test");
        for (n, v) in &fields {
            rampart_http::write_header(&mut raw, n, v.as_bytes());
        }
        rampart_http::write_end_of_head(&mut raw);
        let Ok(Parse::Complete((head, len))) = parse_request_head(&raw, &Limits::default()) else {
            panic!("did not parse: {:?}", String::from_utf8_lossy(&raw));
        };
        prop_assert_eq!(len, raw.len());
        prop_assert_eq!(head.method(), method.as_str());
        prop_assert_eq!(head.target(), target.as_str());
        prop_assert_eq!(head.version(), version);
        let got: Vec<(String, Vec<u8>)> = head.headers().skip(1).map(|(n, v)| (n.to_string(), v.to_vec())).collect();
        let want: Vec<(String, Vec<u8>)> = fields.iter().map(|(n, v)| (n.clone(), v.as_bytes().to_vec())).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn chunked_decoding_does_not_depend_on_how_input_is_split(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 0..6),
        cuts in proptest::collection::vec(1usize..7, 1..40),
    ) {
        let mut body = Vec::new();
        let mut want = Vec::new();
        for c in &chunks {
            write_chunk(&mut body, c);
            want.extend_from_slice(c);
        }
        write_last_chunk(&mut body);
        body.extend_from_slice(b"NEXT");
        let mut d = ChunkedDecoder::new(1024);
        let mut out = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        while pos < body.len() && !d.is_done() {
            let n = cuts[i % cuts.len()].min(body.len() - pos);
            let used = d.decode(&body[pos..pos + n], &mut out).unwrap();
            pos += used;
            i += 1;
        }
        prop_assert!(d.is_done());
        prop_assert_eq!(out, want);
        prop_assert_eq!(&body[pos..], b"NEXT");
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        rampart_http::fuzz_request_head(&data);
        rampart_http::fuzz_chunked(&data);
        rampart_http::fuzz_response_head(&data);
    }
}

#[test]
fn chunked_body_split_at_every_byte_boundary() {
    let body = b"5;name=\"v\"\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-T: t\r\n\r\n";
    for cut in 1..body.len() {
        let mut d = ChunkedDecoder::new(64);
        let mut out = Vec::new();
        let a = d.decode(&body[..cut], &mut out).unwrap();
        let b = d.decode(&body[a..], &mut out).unwrap();
        assert_eq!(a + b, body.len(), "cut {cut}");
        assert!(d.is_done());
        assert_eq!(out, b"hello world");
    }
}
