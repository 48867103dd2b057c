//! The edge cache over TCP: what is stored and what is not, answers from the cache (304, 412,
//! 206, 416) with the origin counting zero requests, over HTTP/1.1 and HTTP/2, cache rules,
//! Vary, and one origin request for many concurrent misses.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::http2::{self, h2c};
use common::*;

/// The body of every cached test object: 26 bytes.
const BODY: &str = "abcdefghijklmnopqrstuvwxyz";

/// An origin whose answer depends on the path: `/cc/<directives>/...` answers 200 with
/// `Cache-Control: <directives>` (`_` for a space, `;` for a comma); `/cookie/...` adds
/// Set-Cookie; `/vary/<field>/...` adds `Vary: <field>` and echoes that field in the body;
/// `/inm/...` answers 304 to a request with If-None-Match. Everything else is 200 with
/// max-age=300. Each has ETag "v1", a Last-Modified in 2020 and Cache-Tag `all, <first
/// path segment>`.
fn responder() -> Responder {
    Arc::new(|req: &Received| {
        let target = req
            .request_line()
            .split(' ')
            .nth(1)
            .unwrap_or("/")
            .to_string();
        let path = target.split('?').next().unwrap_or("/");
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut extra = String::new();
        let mut cache_control = "max-age=300".to_string();
        let mut body = BODY.to_string();
        match segments.as_slice() {
            ["cc", directives, ..] => {
                cache_control = directives.replace('_', " ").replace(';', ",")
            }
            ["cookie", ..] => extra.push_str("Set-Cookie: s=1\r\n"),
            ["vary", field, ..] => {
                extra.push_str(&format!("Vary: {field}\r\n"));
                body = format!("{field}={}", req.header(field).join(","));
            }
            ["inm", ..] if !req.header("if-none-match").is_empty() => {
                return b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n".to_vec();
            }
            _ => {}
        }
        let tag = segments.first().copied().unwrap_or("");
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/css\r\nCache-Control: {cache_control}\r\n\
             ETag: \"v1\"\r\nLast-Modified: Wed, 01 Jan 2020 00:00:00 GMT\r\n\
             Cache-Tag: all, {tag}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    })
}

async fn setup(zone_extra: &str) -> (Origin, Rampart) {
    let origin = Origin::start(Behaviour::With(responder())).await;
    let rampart = Rampart::start_with(origin.addr, "", zone_extra, "").await;
    (origin, rampart)
}

/// GET `path` on a new connection, with `fields` (full lines, each ending in CRLF).
async fn get(rampart: &Rampart, path: &str, fields: &str) -> Response {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: example.test\r\n{fields}\r\n");
    rampart.request(raw.as_bytes()).await.0
}

fn status_of(r: &Response) -> String {
    r.header("rampart-cache-status").unwrap_or_default()
}

#[tokio::test]
async fn a_static_file_is_stored_and_then_served_from_memory() {
    let (origin, rampart) = setup("").await;
    let first = get(&rampart, "/site/app.css", "").await;
    assert_eq!(first.status, 200);
    assert_eq!(status_of(&first), "MISS");
    assert_eq!(
        first.header("cache-status").as_deref(),
        Some("rampart; fwd=miss; stored")
    );
    assert_eq!(first.text(), BODY);
    assert_eq!(
        first.header("cache-tag"),
        None,
        "Cache-Tag is never relayed"
    );
    let second = get(&rampart, "/site/app.css", "").await;
    assert_eq!(second.status, 200);
    assert_eq!(status_of(&second), "HIT");
    assert_eq!(
        second.header("cache-status").as_deref(),
        Some("rampart; hit")
    );
    assert!(second.header("age").is_some(), "{}", second.head);
    assert_eq!(second.header("etag").as_deref(), Some("\"v1\""));
    assert_eq!(second.header("content-type").as_deref(), Some("text/css"));
    assert_eq!(second.header("cache-tag"), None);
    assert_eq!(second.text(), BODY);
    let head = rampart
        .request(b"HEAD /site/app.css HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await
        .0;
    assert_eq!(status_of(&head), "HIT");
    assert_eq!(head.header("content-length").as_deref(), Some("26"));
    assert!(head.body.is_empty());
    assert_eq!(origin.received().len(), 1, "the origin saw one request");
    let lines = rampart.log_lines(3).await;
    let statuses: Vec<&str> = lines
        .iter()
        .map(|l| l["CacheCacheStatus"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["miss", "hit", "hit"]);
    assert_eq!(lines[1]["CacheResponseBytes"], 26);
    let metrics = rampart.metrics().await;
    assert!(
        metrics.contains("rampart_cache_requests_total{zone=\"example.test\",status=\"hit\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn what_is_not_cached_by_default() {
    let (origin, rampart) = setup("").await;
    for (path, expected) in [
        ("/page.html", "DYNAMIC"),
        ("/", "DYNAMIC"),
        ("/api/items", "DYNAMIC"),
        ("/cc/private/a.css", "BYPASS"),
        ("/cc/no-store/a.css", "BYPASS"),
        ("/cookie/a.css", "BYPASS"),
    ] {
        for _ in 0..2 {
            let r = get(&rampart, path, "").await;
            assert_eq!(r.status, 200, "{path}");
            assert_eq!(status_of(&r), expected, "{path}");
            assert_eq!(r.header("cache-tag"), None, "{path}");
        }
    }
    // no-cache: stored, but never served without asking the origin again.
    let r = get(&rampart, "/cc/no-cache/a.css", "").await;
    assert_eq!(status_of(&r), "MISS");
    let r = get(&rampart, "/cc/no-cache/a.css", "").await;
    assert_eq!(status_of(&r), "EXPIRED");
    // A request with Authorization: only stored when the response says public or s-maxage.
    let auth = "Authorization: Bearer x\r\n";
    for _ in 0..2 {
        let r = get(&rampart, "/auth/a.css", auth).await;
        assert_eq!(status_of(&r), "BYPASS");
    }
    let r = get(&rampart, "/cc/public;max-age=60/a.css", auth).await;
    assert_eq!(status_of(&r), "MISS");
    let r = get(&rampart, "/cc/public;max-age=60/a.css", auth).await;
    assert_eq!(status_of(&r), "HIT");
    // POST is never cached, whatever the path.
    let post = rampart
        .request(b"POST /site/app.css HTTP/1.1\r\nHost: example.test\r\nContent-Length: 0\r\n\r\n")
        .await
        .0;
    assert_eq!(status_of(&post), "DYNAMIC");
    assert_eq!(origin.received().len(), 6 * 2 + 2 + 2 + 1 + 1);
}

/// The conditional and ranged requests answered from a cached object, and what each gets.
async fn edge_answers(mut send: impl AsyncFnMut(&str) -> (u16, Vec<(String, String)>, Vec<u8>)) {
    let field = |fields: &[(String, String)], name: &str| {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let cases: [(&str, u16, &str); 11] = [
        ("If-None-Match: \"v1\"", 304, ""),
        ("If-None-Match: W/\"v1\"", 304, ""),
        ("If-None-Match: \"v0\", \"v1\"", 304, ""),
        ("If-Modified-Since: Thu, 02 Jan 2020 00:00:00 GMT", 304, ""),
        ("If-Match: \"v2\"", 412, ""),
        (
            "If-Unmodified-Since: Tue, 31 Dec 2019 00:00:00 GMT",
            412,
            "",
        ),
        ("If-Match: \"v1\"", 200, BODY),
        ("Range: bytes=0-4", 206, "abcde"),
        ("Range: bytes=-3", 206, "xyz"),
        ("Range: bytes=100-", 416, ""),
        ("If-Range: \"v0\"\r\nRange: bytes=0-4", 200, BODY),
    ];
    for (fields, status, body) in cases {
        let (got, head, got_body) = send(fields).await;
        assert_eq!(got, status, "{fields}");
        assert_eq!(String::from_utf8_lossy(&got_body), body, "{fields}");
        assert_eq!(
            field(&head, "rampart-cache-status").as_deref(),
            Some("HIT"),
            "{fields}"
        );
        match status {
            304 => {
                assert_eq!(field(&head, "etag").as_deref(), Some("\"v1\""), "{fields}");
                assert_eq!(field(&head, "content-type"), None, "validator fields only");
                assert_eq!(field(&head, "last-modified"), None, "validator fields only");
            }
            206 => assert_eq!(
                field(&head, "content-range"),
                Some(format!(
                    "bytes {}/26",
                    if body == "abcde" { "0-4" } else { "23-25" }
                ))
            ),
            416 => assert_eq!(field(&head, "content-range").as_deref(), Some("bytes */26")),
            _ => {}
        }
    }
    // A weak If-Range never matches: the whole object.
    let (status, _, body) = send("If-Range: W/\"v1\"\r\nRange: bytes=0-4").await;
    assert_eq!((status, body.len()), (200, 26));
    // Two ranges: multipart/byteranges, each part with its Content-Range.
    let (status, head, body) = send("Range: bytes=0-1,24-25").await;
    assert_eq!(status, 206);
    let ct = field(&head, "content-type").unwrap();
    let boundary = ct.strip_prefix("multipart/byteranges; boundary=").unwrap();
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains(&format!(
            "--{boundary}\r\nContent-Type: text/css\r\nContent-Range: bytes 0-1/26\r\n\r\nab\r\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("Content-Range: bytes 24-25/26\r\n\r\nyz\r\n"),
        "{text}"
    );
    assert!(text.ends_with(&format!("--{boundary}--\r\n")), "{text}");
}

#[tokio::test]
async fn validators_and_ranges_are_answered_at_the_edge_over_http1() {
    let (origin, rampart) = setup("").await;
    assert_eq!(status_of(&get(&rampart, "/site/app.css", "").await), "MISS");
    edge_answers(async |fields: &str| {
        let r = get(&rampart, "/site/app.css", &format!("{fields}\r\n")).await;
        let fields = r
            .head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.to_string(), v.trim().to_string()))
            .collect();
        (r.status, fields, r.body)
    })
    .await;
    assert_eq!(origin.received().len(), 1, "the origin counted one request");
}

#[tokio::test]
async fn validators_and_ranges_are_answered_at_the_edge_over_http2() {
    let (origin, rampart) = setup("").await;
    let mut client = h2c(rampart.addr).await;
    let first = http2::send(
        &mut client,
        http2::get("http://example.test/site/app.css"),
        None,
    )
    .await;
    assert_eq!(first.headers["rampart-cache-status"], "MISS");
    edge_answers(async |fields: &str| {
        let mut request = http::Request::get("http://example.test/site/app.css");
        for line in fields.split("\r\n") {
            let (n, v) = line.split_once(": ").unwrap();
            request = request.header(n, v);
        }
        let r = http2::send(&mut client, request.body(()).unwrap(), None).await;
        let fields = r
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        (r.status.as_u16(), fields, r.body)
    })
    .await;
    assert_eq!(origin.received().len(), 1, "the origin counted one request");
}

#[tokio::test]
async fn a_miss_sends_preconditions_and_ranges_on_and_relays_what_the_origin_says() {
    let (origin, rampart) = setup("").await;
    let r = get(&rampart, "/inm/a.css", "If-None-Match: \"v1\"\r\n").await;
    assert_eq!(r.status, 304);
    assert_eq!(status_of(&r), "MISS");
    let r = get(&rampart, "/site/b.css", "Range: bytes=0-4\r\n").await;
    assert_eq!(r.status, 200, "the test origin ignores Range");
    let received = origin.received();
    assert_eq!(received[0].header("if-none-match"), ["\"v1\""]);
    assert_eq!(received[1].header("range"), ["bytes=0-4"]);
    // Neither answer was the whole object for a plain GET, so neither was stored as one... but
    // the 200 to a ranged request is the whole object, and is stored.
    let r = get(&rampart, "/inm/a.css", "").await;
    assert_eq!(status_of(&r), "MISS", "a 304 is never stored");
    let r = get(&rampart, "/site/b.css", "").await;
    assert_eq!(status_of(&r), "HIT");
}

#[tokio::test]
async fn cache_rules_choose_what_is_cached_and_how_it_is_keyed() {
    let zone = r#"
[[zone.cache_rule]]
expression = 'starts_with(http.request.uri.path, "/nocache/")'
cache = false
[[zone.cache_rule]]
expression = 'starts_with(http.request.uri.path, "/api/")'
cache = true
edge_ttl = "1h"
browser_ttl = "30s"
cache_key = { query = ["v"] }
[[zone.cache_rule]]
expression = 'starts_with(http.request.uri.path, "/ignore/")'
cache = true
cache_key = { query = "ignore", headers = ["x-tenant"], cookies = ["lang"] }
"#;
    let (origin, rampart) = setup(zone).await;
    // A rule with cache = false bypasses even a static extension.
    for _ in 0..2 {
        assert_eq!(
            status_of(&get(&rampart, "/nocache/a.css", "").await),
            "BYPASS"
        );
    }
    // A rule makes an extensionless path and a Set-Cookie response cacheable, with its TTLs.
    let r = get(&rampart, "/api/items?v=1&x=1", "").await;
    assert_eq!(status_of(&r), "MISS");
    assert_eq!(r.header("cache-control").as_deref(), Some("max-age=30"));
    let r = get(&rampart, "/api/items?x=2&v=1", "").await;
    assert_eq!(status_of(&r), "HIT", "only v is in the key");
    assert_eq!(r.header("cache-control").as_deref(), Some("max-age=30"));
    assert_eq!(
        status_of(&get(&rampart, "/api/items?v=2", "").await),
        "MISS"
    );
    // The query ignored; a header and a cookie in the key.
    assert_eq!(status_of(&get(&rampart, "/ignore/a?q=1", "").await), "MISS");
    assert_eq!(status_of(&get(&rampart, "/ignore/a?q=2", "").await), "HIT");
    let tenant = "X-Tenant: a\r\n";
    assert_eq!(status_of(&get(&rampart, "/ignore/a", tenant).await), "MISS");
    assert_eq!(status_of(&get(&rampart, "/ignore/a", tenant).await), "HIT");
    let lang = "Cookie: other=1; lang=fr\r\n";
    assert_eq!(status_of(&get(&rampart, "/ignore/a", lang).await), "MISS");
    assert_eq!(
        status_of(&get(&rampart, "/ignore/a", "Cookie: lang=fr; more=2\r\n").await),
        "HIT"
    );
    // The host is in the key.
    let other = rampart
        .request(b"GET /ignore/a HTTP/1.1\r\nHost: www.example.test\r\n\r\n")
        .await
        .0;
    assert_eq!(status_of(&other), "MISS");
    assert_eq!(origin.received().len(), 2 + 2 + 1 + 1 + 1 + 1);
}

#[tokio::test]
async fn cache_keys_see_the_normalised_path() {
    let (origin, rampart) = setup("").await;
    assert_eq!(status_of(&get(&rampart, "/site/app.css", "").await), "MISS");
    for spelling in ["/site/%61pp.css", "//site/app.css", "/x/../site/./app.css"] {
        assert_eq!(
            status_of(&get(&rampart, spelling, "").await),
            "HIT",
            "{spelling}"
        );
    }
    assert_eq!(origin.received().len(), 1);
}

#[tokio::test]
async fn vary_keeps_one_variant_per_value_and_vary_star_is_not_stored() {
    let (origin, rampart) = setup("").await;
    let gzip = "Accept-Encoding: gzip, br\r\n";
    let r = get(&rampart, "/vary/accept-encoding/a.css", gzip).await;
    assert_eq!(status_of(&r), "MISS");
    let r = get(
        &rampart,
        "/vary/accept-encoding/a.css",
        "Accept-Encoding: br, gzip\r\n",
    )
    .await;
    assert_eq!(status_of(&r), "HIT", "the same encodings, in another order");
    assert_eq!(r.text(), "accept-encoding=gzip, br");
    let r = get(&rampart, "/vary/accept-encoding/a.css", "").await;
    assert_eq!(status_of(&r), "MISS", "identity is another variant");
    assert_eq!(r.text(), "accept-encoding=");
    let r = get(&rampart, "/vary/accept-encoding/a.css", gzip).await;
    assert_eq!(r.text(), "accept-encoding=gzip, br");
    let r = get(&rampart, "/vary/x-colour/a.css", "X-Colour: red\r\n").await;
    assert_eq!(status_of(&r), "MISS");
    let r = get(&rampart, "/vary/x-colour/a.css", "X-Colour: blue\r\n").await;
    assert_eq!(
        (status_of(&r).as_str(), r.text().as_str()),
        ("MISS", "x-colour=blue")
    );
    let r = get(&rampart, "/vary/x-colour/a.css", "X-Colour: red\r\n").await;
    assert_eq!(
        (status_of(&r).as_str(), r.text().as_str()),
        ("HIT", "x-colour=red")
    );
    for _ in 0..2 {
        let r = get(&rampart, "/vary/*/a.css", "").await;
        assert_eq!(status_of(&r), "BYPASS", "Vary: * is never stored");
    }
    assert_eq!(origin.received().len(), 2 + 2 + 2);
}

#[tokio::test]
async fn an_expired_object_is_fetched_again() {
    // The origin's Age already exceeds max-age: stored, but stale at once.
    let origin = Origin::start(Behaviour::Raw(
        b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nAge: 120\r\nContent-Length: 2\r\n\r\nok"
            .to_vec(),
    ))
    .await;
    let rampart = Rampart::start(origin.addr).await;
    assert_eq!(status_of(&get(&rampart, "/a.js", "").await), "MISS");
    assert_eq!(status_of(&get(&rampart, "/a.js", "").await), "EXPIRED");
    assert_eq!(origin.received().len(), 2);
}

#[tokio::test]
async fn a_hundred_concurrent_misses_make_one_origin_request() {
    let body = "x".repeat(20_000);
    let origin = Origin::start(Behaviour::Delayed(
        Duration::from_millis(300),
        format!(
            "HTTP/1.1 200 OK\r\nCache-Control: max-age=300\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    ))
    .await;
    let rampart = Rampart::start(origin.addr).await;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let addr = rampart.addr;
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let mut c = Client::connect(addr).await;
                c.send(b"GET /cold.js HTTP/1.1\r\nHost: example.test\r\n\r\n")
                    .await;
                let r = c.response(false).await;
                (
                    r.status,
                    r.body.len(),
                    r.header("rampart-cache-status").unwrap(),
                )
            } else {
                let mut h2 = h2c(addr).await;
                let r = http2::send(&mut h2, http2::get("http://example.test/cold.js"), None).await;
                (
                    r.status.as_u16(),
                    r.body.len(),
                    r.headers["rampart-cache-status"]
                        .to_str()
                        .unwrap()
                        .to_string(),
                )
            }
        }));
    }
    let mut misses = 0;
    for t in tasks {
        let (status, len, cache) = t.await.unwrap();
        assert_eq!((status, len), (200, 20_000));
        misses += usize::from(cache == "MISS");
    }
    assert_eq!(
        origin.received().len(),
        1,
        "one origin request for 100 clients"
    );
    assert_eq!(misses, 1);
}

#[tokio::test]
async fn waiters_are_not_held_past_the_origin_timeout_by_a_silent_leader() {
    let origin = Origin::start(Behaviour::Silent).await;
    let rampart =
        Rampart::start_with(origin.addr, "", "origin_response_timeout = \"1s\"\n", "").await;
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let addr = rampart.addr;
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            c.send(
                b"GET /slow.js HTTP/1.1\r\nHost: example.test\r\nAccept: application/json\r\n\r\n",
            )
            .await;
            c.response(false).await.status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 524);
    }
}

/// POSTs `body` to `path` on the admin listener; the status and the JSON envelope.
async fn admin_post(rampart: &Rampart, path: &str, body: &str) -> (u16, serde_json::Value) {
    let mut c = Client::connect(rampart.admin.unwrap()).await;
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: admin\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.send(raw.as_bytes()).await;
    let r = c.response(false).await;
    (r.status, r.json())
}

/// The four test objects: two tagged `site`, two tagged `img`, on the hosts example.test and
/// www.example.test.
const OBJECTS: [(&str, &str); 4] = [
    ("example.test", "/site/a.css"),
    ("example.test", "/site/b.css"),
    ("example.test", "/img/c.png"),
    ("www.example.test", "/img/c.png"),
];

/// Requests each test object; whether each was a HIT.
async fn hits(rampart: &Rampart) -> Vec<bool> {
    let mut out = Vec::new();
    for (host, path) in OBJECTS {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let r = rampart.request(raw.as_bytes()).await.0;
        assert_eq!(r.status, 200);
        out.push(status_of(&r) == "HIT");
    }
    out
}

#[tokio::test]
async fn purge_by_each_kind_takes_effect_for_the_next_request() {
    let (_origin, rampart) = setup("").await;
    let purge = "/client/v4/zones/example.test/purge_cache";
    for (body, expected) in [
        (
            r#"{"files": ["http://example.test/site/a.css"]}"#,
            [false, true, true, true],
        ),
        (
            r#"{"files": [{"url": "http://www.example.test/img/c.png"}]}"#,
            [true, true, true, false],
        ),
        (
            r#"{"prefixes": ["example.test/site/"]}"#,
            [false, false, true, true],
        ),
        (
            r#"{"hosts": ["www.example.test"]}"#,
            [true, true, true, false],
        ),
        (r#"{"tags": ["SITE"]}"#, [false, false, true, true]),
        (r#"{"tags": ["img"]}"#, [true, true, false, false]),
        (
            r#"{"purge_everything": true}"#,
            [false, false, false, false],
        ),
    ] {
        hits(&rampart).await;
        let (status, envelope) = admin_post(&rampart, purge, body).await;
        assert_eq!(status, 200, "{body}: {envelope}");
        assert_eq!(envelope["success"], true);
        assert_eq!(envelope["errors"], serde_json::json!([]));
        let removed = expected.iter().filter(|kept| !**kept).count();
        assert_eq!(envelope["result"]["purged"], removed, "{body}");
        assert_eq!(hits(&rampart).await, expected, "{body}");
    }
}

#[tokio::test]
async fn the_purge_api_answers_mistakes_in_cloudflare_s_envelope() {
    let (_origin, rampart) = setup("").await;
    let (status, e) = admin_post(
        &rampart,
        "/client/v4/zones/nowhere/purge_cache",
        r#"{"purge_everything": true}"#,
    )
    .await;
    assert_eq!((status, e["success"].clone()), (404, false.into()));
    assert_eq!(e["errors"][0]["code"], 7003);
    let purge = "/client/v4/zones/example.test/purge_cache";
    for body in [
        "{",
        "{}",
        r#"{"files": []}"#,
        r#"{"purge_everything": false}"#,
    ] {
        let (status, e) = admin_post(&rampart, purge, body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(e["errors"][0]["code"], 1012, "{body}");
        assert!(!e["errors"][0]["message"].as_str().unwrap().is_empty());
    }
    let huge = format!(r#"{{"files": ["{}"]}}"#, "x".repeat(1_100_000));
    let (status, e) = admin_post(&rampart, purge, &huge).await;
    assert_eq!((status, e["errors"][0]["code"].clone()), (413, 1015.into()));
    let mut c = Client::connect(rampart.admin.unwrap()).await;
    c.send(format!("GET {purge} HTTP/1.1\r\nHost: admin\r\n\r\n").as_bytes())
        .await;
    let r = c.response(false).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow").as_deref(), Some("POST"));
}

#[tokio::test]
async fn the_admin_listener_reports_the_cache_s_size() {
    let (_origin, rampart) = setup("").await;
    hits(&rampart).await;
    let mut c = Client::connect(rampart.admin.unwrap()).await;
    c.send(b"GET /client/v4/cache HTTP/1.1\r\nHost: admin\r\n\r\n")
        .await;
    let stats = c.response(false).await.json();
    assert_eq!(stats["result"]["objects"], 4, "{stats}");
    let bytes = stats["result"]["bytes"].as_u64().unwrap();
    assert!(bytes >= 4 * 26, "{stats}");
    let metrics = rampart.metrics().await;
    assert!(metrics.contains("rampart_cache_objects 4"), "{metrics}");
    assert!(
        metrics.contains(&format!("rampart_cache_bytes {bytes}")),
        "{metrics}"
    );
}

#[test]
fn rampart_cache_purge_asks_the_running_proxy() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (_origin, rampart) = runtime.block_on(async {
        let (origin, rampart) = setup("").await;
        hits(&rampart).await;
        (origin, rampart)
    });
    let config = std::env::temp_dir().join(format!("rampart-purge-{}.toml", fastrand::u64(..)));
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:1\"]\nadmin_listen = \"{}\"\n[[zone]]\nname = \"example.test\"\nhosts = [\"example.test\"]\norigin = \"http://127.0.0.1:1\"\n",
            rampart.admin.unwrap()
        ),
    )
    .unwrap();
    let purge = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["cache", "purge", "-c", config.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    };
    let out = purge(&["--zone", "example.test", "--tag", "site", "--tag", "other"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "purged 2 objects of zone example.test\n"
    );
    let cached = runtime.block_on(hits(&rampart));
    assert_eq!(cached, [false, false, true, true]);
    let out = purge(&[
        "--zone",
        "example.test",
        "--url",
        "http://www.example.test/img/c.png",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(runtime.block_on(hits(&rampart)), [true, true, true, false]);
    // Mistakes: an unknown zone, no kind, two kinds.
    let out = purge(&["--zone", "nowhere", "--everything"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no zone `nowhere`"),
        "{out:?}"
    );
    assert!(!purge(&["--zone", "example.test"]).status.success());
    assert!(
        !purge(&["--zone", "example.test", "--everything", "--tag", "x"])
            .status
            .success()
    );
    let out = purge(&["--zone", "example.test", "--everything"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "purged 4 objects of zone example.test\n"
    );
    drop(rampart);
    let _ = std::fs::remove_file(config);
}
