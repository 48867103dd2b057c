//! What a site owner and an attacker find at the edges: chunk sizes over the limit, header
//! names that spoof forwarding fields, pages that must not leak, request bodies the rules
//! read, named lists, and logs and metrics that tell the truth.

mod common;

use std::time::Duration;

use common::{Behaviour, Origin, Rampart};

#[tokio::test]
async fn a_chunk_size_over_the_body_limit_is_413_at_once() {
    let origin = Origin::start(Behaviour::Echo).await;
    // A body timeout far beyond the test's patience: waiting for it would fail the test.
    let r = Rampart::start_with(origin.addr, "client_body_timeout = \"1h\"", "", "").await;
    for size in ["ffffffffffffffff", "7000000", "5F5E101"] {
        let raw = format!(
            "POST /up HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n{size}\r\n"
        );
        let (resp, mut c) = r.request(raw.as_bytes()).await;
        assert_eq!(resp.status, 413, "chunk size {size}");
        assert!(
            c.is_closed().await,
            "the connection's framing is not trusted any more"
        );
    }
    // With a limit of 1,000 bytes: chunks declaring 1,000 in all are served, 1,001 refused.
    let r = Rampart::start_with(
        origin.addr,
        "client_body_timeout = \"1h\"",
        "",
        "[limits]\nmax_body_bytes = 1000\n",
    )
    .await;
    let mut raw =
        b"POST /ok HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n3e7\r\n"
            .to_vec();
    raw.extend_from_slice(&[b'x'; 999]);
    raw.extend_from_slice(b"\r\n1\r\ny\r\n0\r\n\r\n");
    let (resp, _) = r.request(&raw).await;
    assert_eq!(resp.status, 200);
    assert_eq!(origin.received().last().unwrap().body.len(), 1000);
    let raw =
        b"POST /over HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\nxx";
    let (resp, _) = r.request(raw).await;
    assert_eq!(resp.status, 413, "a chunk of 1,001 bytes");
}

#[tokio::test]
async fn underscore_spellings_of_forwarding_fields_never_reach_the_origin() {
    let origin = Origin::start(Behaviour::Echo).await;
    let request = b"GET / HTTP/1.1\r\nHost: example.test\r\nX_Forwarded_For: 6.6.6.6\r\nx_real_ip: 6.6.6.6\r\nTransfer_Encoding: chunked\r\nX_Forwarded_Proto: https\r\nCF_Ray: fake\r\nX_Custom_Field: kept\r\n\r\n";
    let r = Rampart::start(origin.addr).await;
    let (resp, _) = r.request(request).await;
    assert_eq!(resp.status, 200);
    let got = &origin.received()[0];
    for spoof in [
        "x_forwarded_for",
        "x_real_ip",
        "transfer_encoding",
        "x_forwarded_proto",
    ] {
        assert!(
            got.header(spoof).is_empty(),
            "{spoof} reached the origin:\n{}",
            got.head
        );
    }
    assert_eq!(got.header("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(
        got.header("x_custom_field"),
        ["kept"],
        "others pass by default"
    );

    let r = Rampart::start_with(origin.addr, "", "underscores_in_headers = \"drop\"", "").await;
    r.request(request).await;
    let got = origin.received().pop().unwrap();
    assert!(
        got.header("x_custom_field").is_empty(),
        "drop: {}",
        got.head
    );

    let r = Rampart::start_with(origin.addr, "", "underscores_in_headers = \"reject\"", "").await;
    let before = origin.received().len();
    let (resp, _) = r.request(request).await;
    assert_eq!(resp.status, 400);
    assert_eq!(origin.received().len(), before, "refused at the edge");
    let (resp, _) = r
        .request(b"GET / HTTP/1.1\r\nHost: example.test\r\nX-Dashes-Only: 1\r\n\r\n")
        .await;
    assert_eq!(resp.status, 200);
}

#[tokio::test]
async fn pages_show_no_origin_address_nor_rule_description_and_the_log_has_both() {
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = refused.local_addr().unwrap();
    drop(refused);
    let zone = "[[zone.custom_rule]]\nid = \"ua\"\ndescription = \"Admin: block the 'evil' user agent\"\nexpression = 'http.user_agent contains \"evil\"'\naction = \"block\"\n";
    let r = Rampart::start_with(dead, "", zone, "").await;
    for accept in ["text/html", "application/json", "text/plain"] {
        let (resp, _) = r
            .request(
                format!("GET / HTTP/1.1\r\nHost: example.test\r\nAccept: {accept}\r\n\r\n")
                    .as_bytes(),
            )
            .await;
        assert_eq!(resp.status, 521);
        let page = resp.text();
        for secret in [dead.to_string(), format!("127.0.0.1:{}", dead.port())] {
            assert!(
                !page.contains(&secret),
                "{accept} page shows {secret}:\n{page}"
            );
        }
        assert!(
            page.contains(&resp.header("rampart-ray").unwrap()),
            "the ray id is there"
        );
        let (resp, _) = r
            .request(format!("GET / HTTP/1.1\r\nHost: example.test\r\nUser-Agent: evil\r\nAccept: {accept}\r\n\r\n").as_bytes())
            .await;
        assert_eq!(resp.status, 403);
        let page = resp.text();
        assert!(!page.contains("Admin") && !page.contains("evil"), "{page}");
    }
    let lines = r.log_lines(6).await;
    assert!(
        lines[0]["ErrorReason"]
            .as_str()
            .unwrap()
            .contains(&dead.to_string())
    );
    assert_eq!(
        lines[1]["SecurityRuleDescription"],
        "Admin: block the 'evil' user agent"
    );
    // What the client did wrong is explained to it, once, without "error 400".
    let (resp, _) = r
        .request(b"GET /%zz HTTP/1.1\r\nHost: example.test\r\nAccept: text/html\r\n\r\n")
        .await;
    assert_eq!(resp.status, 400);
    let page = resp.text();
    assert!(page.contains("offset 5"), "{page}");
    assert!(!page.contains("error 400"), "{page}");
}

#[tokio::test]
async fn rules_read_the_request_body_and_it_still_reaches_the_origin_whole() {
    let origin = Origin::start(Behaviour::Echo).await;
    let zone = "max_body_inspection = 64\n\
        [[zone.custom_rule]]\nid = \"raw\"\nexpression = 'http.request.body.raw contains \"evil\"'\naction = \"block\"\n\
        [[zone.custom_rule]]\nid = \"form\"\nexpression = 'any(http.request.body.form[\"role\"][*] == \"admin\")'\naction = \"block\"\n\
        [[zone.custom_rule]]\nid = \"part\"\nexpression = 'any(http.request.body.multipart.filenames[*][0] contains \".php\")'\naction = \"block\"\n\
        [[zone.custom_rule]]\nid = \"mime\"\nexpression = 'http.request.body.mime eq \"application/x-elf\"'\naction = \"block\"\n\
        [[zone.custom_rule]]\nid = \"long\"\nexpression = 'http.request.body.truncated'\naction = \"log\"\n";
    let r = Rampart::start_with(origin.addr, "", zone, "").await;
    let post = |ct: &str, body: &[u8]| {
        let mut raw = format!(
            "POST /f HTTP/1.1\r\nHost: example.test\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(body);
        raw
    };
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (post("text/plain", b"an evil body"), 403),
        (post("text/plain", b"a good body"), 200),
        (post("application/x-www-form-urlencoded", b"user=a&role=admin"), 403),
        (post("application/x-www-form-urlencoded", b"user=a&role=user"), 200),
        (post("text/plain", b"role=admin"), 200),
        (
            post(
                "multipart/form-data; boundary=b",
                b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.php\"\r\n\r\n<?php\r\n--b--\r\n",
            ),
            403,
        ),
        (post("application/octet-stream", b"\x7fELF\x02\x01"), 403),
    ];
    for (raw, status) in &cases {
        let (resp, _) = r.request(raw).await;
        assert_eq!(resp.status, *status, "{}", String::from_utf8_lossy(raw));
    }
    // Over the inspection limit: the rules see the first 64 bytes, marked truncated; "evil"
    // after them is not seen, and the whole body reaches the origin.
    let mut body = vec![b'a'; 100];
    body.extend_from_slice(b"evil");
    let (resp, _) = r.request(&post("text/plain", &body)).await;
    assert_eq!(resp.status, 200);
    assert_eq!(origin.received().last().unwrap().body, body);
    let lines = r.log_lines(cases.len() + 1).await;
    assert_eq!(lines.last().unwrap()["SecurityRuleID"], "long");
    // Chunked bodies too.
    let (resp, _) = r
        .request(b"POST /c HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nevi\r\n1\r\nl\r\n0\r\n\r\n")
        .await;
    assert_eq!(resp.status, 403);
}

#[tokio::test]
async fn named_lists_are_used_by_rules() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rest = "[[list]]\nname = \"office\"\nkind = \"ip\"\nitems = [\"192.0.2.0/24\", \"127.0.0.1\"]\n\
                [[list]]\nname = \"hosting\"\nkind = \"asn\"\nitems = [64496, \"AS64497\"]\n";
    let zone = "[[zone.custom_rule]]\nexpression = 'ip.src in $office and http.request.uri.path eq \"/staff\"'\naction = \"block\"\n\
                [[zone.custom_rule]]\nexpression = 'ip.src.asnum in $hosting'\naction = \"block\"\n";
    let r = Rampart::start_with(origin.addr, "", zone, rest).await;
    let (resp, _) = r
        .request(b"GET /staff HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(resp.status, 403, "127.0.0.1 is on the list");
    let (resp, _) = r
        .request(b"GET /other HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(resp.status, 200);
}

#[test]
fn a_broken_list_names_its_file_line_and_key() {
    let src = "[[list]]\nname = \"Bad Name\"\nkind = \"ip\"\nitems = []\n[[list]]\nname = \"ok\"\nkind = \"ip\"\nitems = [\"10.0.0.1/8\", \"nope\"]\n[[list]]\nname = \"k\"\nkind = \"host\"\nitems = []\n\
               [[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"http://127.0.0.1:1\"\n[[zone.custom_rule]]\nexpression = 'ip.src in $missing'\naction = \"block\"\n";
    let err = rampart::config::load_str("lists.toml", src, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("lists.toml:2:8: `list[0].name`"), "{err}");
    assert!(
        err.contains("`list[1].items`") && err.contains("did you mean `10.0.0.0/8`"),
        "{err}"
    );
    assert!(err.contains("`nope` is not an IP address"), "{err}");
    assert!(
        err.contains("`list[2].kind`: unknown value `host`; one of: ip, asn"),
        "{err}"
    );
    assert!(err.contains("missing"), "{err}");
}

#[tokio::test]
async fn a_body_cut_short_by_the_origin_is_logged_and_counted() {
    // An origin that sends part of the body it announced, then resets the connection.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly part of it")
                .await;
            // A reset, not a clean close (a zero linger does not block the drop).
            #[allow(deprecated)]
            let _ = s.set_linger(Some(Duration::ZERO));
            drop(s);
        }
    });
    let r = Rampart::start(addr).await;
    let mut c = r.client().await;
    c.send(b"GET /cut HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    let got = c.read_raw_until(b"only part of it").await;
    assert!(got.starts_with(b"HTTP/1.1 200"));
    assert!(
        c.is_closed().await,
        "the client sees the response end abnormally"
    );
    let line = &r.log_lines(1).await[0];
    assert_eq!(line["EdgeResponseCutShort"], true, "{line}");
    assert!(
        line["ErrorReason"]
            .as_str()
            .unwrap()
            .starts_with("origin_body_cut_short"),
        "{line}"
    );
    let metrics = r.metrics().await;
    assert!(
        metrics.contains("rampart_responses_cut_short_total{zone=\"example.test\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn timings_of_an_origin_timeout_and_custom_statuses_are_recorded_truly() {
    let origin = Origin::start(Behaviour::Silent).await;
    let zone = "origin_response_timeout = \"1s\"\n\
        [[zone.custom_rule]]\nexpression = 'http.request.uri.path eq \"/tea\"'\naction = \"block\"\nresponse = { status = 418, content_type = \"text/plain\", body = \"short and stout\" }\n";
    let r = Rampart::start_with(origin.addr, "", zone, "").await;
    let (resp, _) = r
        .request(b"GET /slow HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(resp.status, 524);
    let (resp, _) = r
        .request(b"GET /tea HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(resp.status, 418);
    let lines = r.log_lines(2).await;
    assert!(
        lines[0]["EdgeTimeToFirstByteMs"].as_u64().unwrap() >= 1000,
        "{}",
        lines[0]
    );
    assert!(
        lines[0]["OriginResponseDurationMs"].as_u64().unwrap() >= 1000,
        "{}",
        lines[0]
    );
    let metrics = r.metrics().await;
    assert!(
        metrics
            .contains("rampart_generated_errors_total{error=\"firewall_rule\",status=\"418\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("error=\"firewall_rule\",status=\"403\""),
        "{metrics}"
    );
}

#[tokio::test]
async fn head_on_metrics_is_answered_without_a_body() {
    let origin = Origin::start(Behaviour::Echo).await;
    let r = Rampart::start(origin.addr).await;
    let mut c = common::Client::connect(r.admin.unwrap()).await;
    c.send(b"HEAD /metrics HTTP/1.1\r\nHost: admin\r\n\r\n")
        .await;
    let resp = c.response(true).await;
    assert_eq!(resp.status, 200);
    assert!(resp.body.is_empty());
    let length: usize = resp.header("content-length").unwrap().parse().unwrap();
    assert!(length > 100, "the length of the GET body");
    let mut c = common::Client::connect(r.admin.unwrap()).await;
    c.send(b"POST /metrics HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n")
        .await;
    let resp = c.response(false).await;
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow").as_deref(), Some("GET, HEAD"));
}
