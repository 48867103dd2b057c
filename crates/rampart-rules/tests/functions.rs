//! Every function, with Cloudflare's documented examples where there are some.

use rampart_rules::{Compiler, ExecutionContext, HttpRequestFields, Scheme};

fn request() -> HttpRequestFields {
    let mut r = HttpRequestFields::from_parts(
        "GET",
        "/Apps/calendar/Login.HTML?x-categories=a&filter=waf&filter=botm",
        "HTTP/1.1",
        vec![
            ("Host".into(), b"WWW.cloudflare.com".to_vec()),
            ("client_id".into(), b"MTIzYWJj".to_vec()),
            (
                "X-Categories".into(),
                b"groceries,electronics,diy,auto".to_vec(),
            ),
            ("X-Enc".into(), b"%2520a+b%u2601".to_vec()),
        ],
    );
    r.body = br#"{"record_id":"aed53a","version":2,"product":{"id":356},"network_ids":[123,456],"f":42.0,"arr":[{"product_id":123},{"product_id":456}]}"#.to_vec();
    r.client_ip = Some("113.10.0.2".parse().unwrap());
    r.ssl = true;
    r.threat_score = 5;
    r
}

#[track_caller]
fn table(cases: &[(&str, bool)]) {
    let scheme = Scheme::http();
    let mut c = Compiler::new(&scheme);
    let req = request();
    let ctx = ExecutionContext::new(&scheme, &req);
    for (expr, want) in cases {
        let f = c.compile(expr).unwrap_or_else(|e| panic!("{expr}\n{e}"));
        assert_eq!(f.execute(&ctx), *want, "{expr}");
    }
}

#[test]
fn any_and_all() {
    table(&[
        (r#"any(http.request.uri.args["filter"][*] == "botm")"#, true),
        (
            r#"all(http.request.uri.args["filter"][*] == "botm")"#,
            false,
        ),
        (
            r#"all(http.request.uri.args["filter"][*] contains "b")"#,
            false,
        ),
        (r#"any(http.request.uri.args["missing"][*] == "x")"#, false),
    ]);
}

#[test]
fn lower_and_upper_change_ascii_only() {
    table(&[
        (r#"lower(http.host) == "www.cloudflare.com""#, true),
        (r#"upper(http.host) == "WWW.CLOUDFLARE.COM""#, true),
    ]);
}

#[test]
fn len_counts_bytes_and_elements() {
    table(&[
        ("len(http.host) == 18", true),
        (r#"len(http.request.uri.args["filter"]) == 2"#, true),
        ("len(http.request.headers) == 4", true),
    ]);
}

#[test]
fn starts_with_and_ends_with() {
    table(&[
        (r#"starts_with(http.request.uri.path, "/Apps")"#, true),
        (r#"starts_with(http.request.uri.path, "/apps")"#, false),
        (r#"ends_with(http.request.uri.path, ".HTML")"#, true),
        (r#"ends_with(lower(http.request.uri.path), ".html")"#, true),
    ]);
}

#[test]
fn concat_joins_bytes_and_arrays() {
    table(&[
        (
            r#"concat("String1", " ", "String", "2") == "String1 String2""#,
            true,
        ),
        (
            r#"concat("/archive", http.request.uri.path) == "/archive/Apps/calendar/Login.HTML""#,
            true,
        ),
        (
            r#"len(concat(http.request.uri.args["filter"], http.request.uri.args.names)) == 5"#,
            true,
        ),
    ]);
}

#[test]
fn url_decode_with_options() {
    table(&[
        (
            r#"url_decode(http.request.headers["x-enc"][0]) == "%20a b%u2601""#,
            true,
        ),
        (
            r#"url_decode(http.request.headers["x-enc"][0], "r") == " a b%u2601""#,
            true,
        ),
        (
            r#"url_decode(http.request.headers["x-enc"][0], "ur") == " a b☁""#,
            true,
        ),
        (
            r#"url_decode(http.request.headers["x-enc"][0], "u") == "%20a b☁""#,
            true,
        ),
    ]);
}

#[test]
fn to_string_of_int_bool_ip() {
    table(&[
        (r#"to_string(cf.threat_score) == "5""#, true),
        (r#"to_string(ssl) == "true""#, true),
        (r#"to_string(ip.src) == "113.10.0.2""#, true),
    ]);
}

#[test]
fn substring_with_negative_indexes() {
    table(&[
        (r#"substring(http.request.uri.path, 1, 5) == "Apps""#, true),
        (r#"substring(http.request.uri.path, -4) == "HTML""#, true),
        (
            r#"substring(http.request.uri.path, 0, -5) == "/Apps/calendar/Login""#,
            true,
        ),
        (r#"substring(http.request.uri.path, 100) == """#, true),
    ]);
}

#[test]
fn split_and_join() {
    table(&[
        (
            r#"split(http.request.headers["x-categories"][0], ",", 64)[3] == "auto""#,
            true,
        ),
        (
            r#"split(http.request.headers["x-categories"][0], ",", 3)[2] == "diy,auto""#,
            true,
        ),
        (
            r#"join(split(http.request.headers["x-categories"][0], ",", 2), "|") == "groceries|electronics,diy,auto""#,
            true,
        ),
        (
            r#"join(http.request.uri.args["filter"], ",") == "waf,botm""#,
            true,
        ),
    ]);
}

#[test]
fn remove_bytes_removes_every_listed_byte() {
    table(&[(
        r#"remove_bytes(lower(http.host), "\x2e\x77") == "cloudflarecom""#,
        true,
    )]);
}

#[test]
fn regex_replace_replaces_the_first_match_with_groups() {
    table(&[
        (
            r#"regex_replace(http.request.uri.path, "^/Apps/([^/]*)/(.*)$", "/bar/${2}/${1}") == "/bar/Login.HTML/calendar""#,
            true,
        ),
        (
            r#"regex_replace(http.request.uri.path, "^/nomatch$", "/x") == "/Apps/calendar/Login.HTML""#,
            true,
        ),
        (
            r#"regex_replace(http.request.uri.path, "a", "$$") == "/Apps/c$lendar/Login.HTML""#,
            true,
        ),
    ]);
}

#[test]
fn wildcard_replace_matches_whole_value_lazily() {
    table(&[
        (
            r#"wildcard_replace(http.request.uri.path, "/apps/*/*", "/${1}/${2}") == "/calendar/Login.HTML""#,
            true,
        ),
        (
            r#"wildcard_replace(http.request.uri.path, "/apps/*", "/${1}", "s") == "/Apps/calendar/Login.HTML""#,
            true,
        ),
        (
            r#"wildcard_replace(http.request.uri.path, "/apps/*/login.html", "/${1}/in") == "/calendar/in""#,
            true,
        ),
        (
            r#"wildcard_replace(http.request.uri.path, "/other/*", "/${1}") == "/Apps/calendar/Login.HTML""#,
            true,
        ),
    ]);
}

#[test]
fn cidr_and_cidr6_mask_addresses() {
    table(&[
        ("cidr(ip.src, 24, 24) == 113.10.0.0", true),
        ("cidr(ip.src, 8, 24) == 113.0.0.0", true),
        ("cidr6(ip.src, 24) == 113.10.0.2", true),
    ]);
    let scheme = Scheme::http();
    let mut c = Compiler::new(&scheme);
    let r = HttpRequestFields {
        client_ip: Some("2001:0000:130F:0000:0000:09C0:876A:130B".parse().unwrap()),
        ..Default::default()
    };
    let ctx = ExecutionContext::new(&scheme, &r);
    assert!(
        c.compile("cidr(ip.src, 24, 24) == 2001::")
            .unwrap()
            .execute(&ctx)
    );
    assert!(
        c.compile("cidr6(ip.src, 24) == 2001::")
            .unwrap()
            .execute(&ctx)
    );
}

#[test]
fn decode_base64_decodes_standard_alphabet() {
    table(&[
        (
            r#"any(decode_base64(http.request.headers["client_id"][*])[*] eq "123abc")"#,
            true,
        ),
        (r#"decode_base64(http.host) eq """#, false),
    ]);
}

#[test]
fn lookup_json_string_and_integer() {
    table(&[
        (
            r#"lookup_json_string(http.request.body.raw, "record_id") == "aed53a""#,
            true,
        ),
        (
            r#"lookup_json_integer(http.request.body.raw, "version") == 2"#,
            true,
        ),
        (
            r#"lookup_json_integer(http.request.body.raw, "product", "id") == 356"#,
            true,
        ),
        (
            r#"lookup_json_integer(http.request.body.raw, "network_ids", 0) == 123"#,
            true,
        ),
        (
            r#"lookup_json_integer(http.request.body.raw, "arr", 1, "product_id") == 456"#,
            true,
        ),
        (
            r#"lookup_json_integer(http.request.body.raw, "f") == 42"#,
            false,
        ),
        (
            r#"lookup_json_string(http.request.body.raw, "version") == "2""#,
            false,
        ),
        (r#"lookup_json_string(http.host, "x") == """#, false),
    ]);
}

#[test]
fn path_extension_and_full_uri_are_derived() {
    table(&[
        (r#"http.request.uri.path.extension == "html""#, true),
        (
            r#"http.request.full_uri == "https://WWW.cloudflare.com/Apps/calendar/Login.HTML?x-categories=a&filter=waf&filter=botm""#,
            true,
        ),
    ]);
}

#[test]
fn built_values_are_truncated_at_max_value_length() {
    use rampart_rules::ParserSettings;
    let scheme = Scheme::http();
    let settings = ParserSettings {
        max_value_length: 10,
        ..Default::default()
    };
    let mut c = Compiler::new(&scheme).with_settings(settings);
    let req = request();
    let ctx = ExecutionContext::new(&scheme, &req);
    for (expr, want) in [
        (r#"concat("12345", "67890") == "1234567890""#, true),
        (r#"concat("12345", "678901") == "1234567890""#, true),
        (
            r#"join(split(http.request.headers["x-categories"][0], ",", 8), "") == "groceriese""#,
            true,
        ),
        (
            r#"regex_replace(http.host, "^(.*)$", "${1}${1}") == "WWW.cloudf""#,
            true,
        ),
        (
            r#"wildcard_replace(http.host, "*", "${1}") == "WWW.cloudf""#,
            true,
        ),
        (
            r#"len(concat(http.request.uri.args["filter"], http.request.uri.args["filter"])) == 3"#,
            true,
        ),
    ] {
        assert_eq!(c.compile(expr).unwrap().execute(&ctx), want, "{expr}");
    }
}

#[test]
fn nested_growth_on_a_large_body_stays_bounded() {
    let scheme = Scheme::http();
    let req = HttpRequestFields {
        body: vec![b','; 1 << 20],
        ..Default::default()
    };
    let ctx = ExecutionContext::new(&scheme, &req);
    // Unbounded, this would build 127 MiB, then 127 times that.
    let f = Compiler::new(&scheme)
        .compile(
            r#"len(join(split(join(split(http.request.body.raw, ",", 128), http.request.body.raw), ",", 128), http.request.body.raw)) == 4194304"#,
        )
        .unwrap();
    assert!(f.execute(&ctx));
}

#[test]
fn string_expressions_give_values_and_refuse_other_types() {
    let scheme = Scheme::http();
    let mut c = Compiler::new(&scheme);
    let req = request();
    let ctx = ExecutionContext::new(&scheme, &req);
    let cases = [
        (
            r#"concat("https://", lower(http.host), http.request.uri.path)"#,
            "https://www.cloudflare.com/Apps/calendar/Login.HTML",
        ),
        (
            r#"regex_replace(http.request.uri.path, "^/Apps/(.*)$", "/new/${1}")"#,
            "/new/calendar/Login.HTML",
        ),
        (r#""https://example.com/""#, "https://example.com/"),
        (
            "http.request.uri.query",
            "x-categories=a&filter=waf&filter=botm",
        ),
    ];
    for (expr, want) in cases {
        let e = c
            .compile_string(expr)
            .unwrap_or_else(|e| panic!("{expr}\n{e}"));
        assert_eq!(e.evaluate(&ctx).as_deref(), Some(want.as_bytes()), "{expr}");
    }
    // A missing value is missing, not an empty string.
    let missing = c
        .compile_string(r#"http.request.headers["x-none"][0]"#)
        .unwrap();
    assert_eq!(missing.evaluate(&ctx), None);
    for (expr, found) in [
        ("ssl", "Bool"),
        ("ip.src", "Ip"),
        ("len(http.host)", "Int"),
        (r#"http.host eq "a""#, "Bool"),
    ] {
        let err = c.compile_string(expr).unwrap_err().to_string();
        assert!(
            err.contains("must be a string") && err.contains(found),
            "{expr}: {err}"
        );
    }
}
