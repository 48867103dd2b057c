//! The cost of strictness: `parse_request_head` (bytes → validated request) next to httparse
//! alone on the same inputs.

use criterion::{Criterion, criterion_group, criterion_main};
use rampart_http::{Limits, Parse, parse_request_head};
use std::hint::black_box;

const CURL: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: example.test\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n";

const BROWSER: &[u8] = b"GET /products/shoes?color=red&size=42 HTTP/1.1\r\n\
Host: www.example.test\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Accept-Language: en-GB,en;q=0.9\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.test/products\r\n\
Connection: keep-alive\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-User: ?1\r\n\r\n";

fn post() -> Vec<u8> {
    let mut s = String::from(
        "POST /api/v1/orders?trace=1 HTTP/1.1\r\nHost: api.example.test\r\nContent-Type: application/json\r\nContent-Length: 512\r\n",
    );
    s.push_str("Cookie: session=3f9a0c7e1b2d4f6a8c0e1f3a5b7d9e0f; theme=dark; consent=analytics%3Dno%26ads%3Dno; _ga=GA1.2.123456789.1700000000\r\n");
    for i in 0..15 {
        s.push_str(&format!(
            "X-Custom-Header-{i}: value-{i}-abcdefghijklmnopqrstuvwxyz\r\n"
        ));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

fn httparse_only(buf: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => panic!("httparse rejected the benchmark input"),
    }
}

fn rampart(buf: &[u8], limits: &Limits) -> usize {
    match parse_request_head(buf, limits) {
        Ok(Parse::Complete((head, n))) => {
            black_box(&head);
            n
        }
        _ => panic!("rampart-http rejected the benchmark input"),
    }
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let post = post();
    for (name, input) in [
        ("curl_get", CURL),
        ("browser_get", BROWSER),
        ("post_20_headers", post.as_slice()),
    ] {
        let mut g = c.benchmark_group(name);
        g.bench_function("httparse", |b| b.iter(|| httparse_only(black_box(input))));
        g.bench_function("rampart_http", |b| {
            b.iter(|| rampart(black_box(input), &limits))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
