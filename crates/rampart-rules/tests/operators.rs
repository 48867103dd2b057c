//! Every comparison and logical operator, in both spellings.

use rampart_rules::{Compiler, ExecutionContext, HttpRequestFields, IpSet, List, Lists, Scheme};

fn request() -> HttpRequestFields {
    let mut r = HttpRequestFields::from_parts(
        "POST",
        "/wp-login.php?user=admin&user=root&q=red+apples",
        "HTTP/1.1",
        vec![
            ("Host".into(), b"www.Example.com".to_vec()),
            ("User-Agent".into(), b"Mozilla/5.0 (X11) curl/8.0".to_vec()),
            ("Accept".into(), b"application/json".to_vec()),
            ("Accept".into(), b"text/html".to_vec()),
            ("Cookie".into(), b"session=abc123; theme=dark".to_vec()),
            ("X-Forwarded-For".into(), b"203.0.113.9".to_vec()),
            ("Content-Type".into(), b"application/json".to_vec()),
        ],
    );
    r.body =
        br#"{"company":"cloudflare","version":2,"ids":[123,456],"nested":{"name":"x"}}"#.to_vec();
    r.body_size = r.body.len() as u64;
    r.client_ip = Some("198.51.100.7".parse().unwrap());
    r.country = "GB".into();
    r.continent = "EU".into();
    r.asnum = 13335;
    r.ssl = true;
    r.timestamp_sec = 1_700_000_000;
    r.threat_score = 14;
    r.response_code = Some(404);
    r
}

fn lists() -> Lists {
    let mut lists = Lists::new();
    let mut office = IpSet::new();
    office.insert("198.51.100.0/24".parse().unwrap());
    lists.insert("office", List::Ip(office));
    lists.insert(
        "bad_agents",
        List::Bytes([b"curl".to_vec()].into_iter().collect()),
    );
    lists.insert("asns", List::Int([13335, 15169].into_iter().collect()));
    lists
}

#[track_caller]
fn eval(expr: &str) -> bool {
    let scheme = Scheme::http();
    let mut c = Compiler::new(&scheme).with_lists(lists());
    let filter = c.compile(expr).unwrap_or_else(|e| panic!("{expr}\n{e}"));
    let req = request();
    let ctx = ExecutionContext::new(&scheme, &req);
    filter.execute(&ctx)
}

#[track_caller]
fn table(cases: &[(&str, bool)]) {
    for (expr, want) in cases {
        assert_eq!(eval(expr), *want, "{expr}");
    }
}

#[test]
fn equality_in_both_spellings() {
    table(&[
        (r#"http.request.method eq "POST""#, true),
        (r#"http.request.method == "POST""#, true),
        (r#"http.request.method ne "POST""#, false),
        (r#"http.request.method != "GET""#, true),
        ("cf.threat_score eq 14", true),
        ("cf.threat_score == 15", false),
        ("ip.src eq 198.51.100.7", true),
        ("ip.src != 198.51.100.7", false),
    ]);
}

#[test]
fn ordering_in_both_spellings() {
    table(&[
        ("cf.threat_score lt 20", true),
        ("cf.threat_score < 14", false),
        ("cf.threat_score le 14", true),
        ("cf.threat_score <= 13", false),
        ("cf.threat_score gt 10", true),
        ("cf.threat_score > 14", false),
        ("cf.threat_score ge 14", true),
        ("cf.threat_score >= 15", false),
        (r#"http.request.method lt "Q""#, true),
        (r#"http.request.method > "POSS""#, true),
        ("cf.threat_score gt -1", true),
        ("cf.threat_score lt 0x0f", true),
    ]);
}

#[test]
fn contains_is_case_sensitive_substring() {
    table(&[
        (r#"http.request.uri.path contains "login""#, true),
        (r#"http.request.uri.path contains "LOGIN""#, false),
        (r#"http.user_agent contains "curl/""#, true),
    ]);
}

#[test]
fn matches_uses_rust_regex_in_both_spellings() {
    table(&[
        (r#"http.request.uri.path matches "^/wp-.*\.php$""#, true),
        (r#"http.request.uri.path ~ r"^/WP-""#, false),
        (r#"http.request.uri.path ~ "(?i)^/WP-""#, true),
        (r#"http.host matches "^(www|store)\.example\.com$""#, false),
        (r#"http.user_agent matches "a\"b""#, false),
    ]);
}

#[test]
fn wildcard_is_whole_value_and_case_insensitive() {
    table(&[
        (r#"http.host wildcard "*.example.com""#, true),
        (r#"http.host wildcard "example.com""#, false),
        (r#"http.request.uri.path wildcard "/WP-*""#, true),
        (r#"http.request.uri.path wildcard "/wp-""#, false),
        (
            r#"http.request.full_uri wildcard "https://*.example.com/*?*""#,
            true,
        ),
        (
            r#"http.request.full_uri wildcard "https://*.example.com/*/*""#,
            false,
        ),
        (r#"http.request.uri.path wildcard "*""#, true),
    ]);
}

#[test]
fn strict_wildcard_is_case_sensitive() {
    table(&[
        (r#"http.host strict wildcard "*.example.com""#, false),
        (r#"http.host strict wildcard "*.Example.com""#, true),
        (r#"http.request.uri.path strict wildcard "/wp-*.php""#, true),
    ]);
}

#[test]
fn wildcard_escapes_star_and_backslash() {
    let scheme = Scheme::http();
    let mut c = Compiler::new(&scheme);
    let f = c
        .compile(r#"http.request.uri.path wildcard r"/a\*b\\*""#)
        .unwrap();
    let check = |f: &rampart_rules::Filter, path: &str| {
        let r = HttpRequestFields {
            path: path.into(),
            ..Default::default()
        };
        let ctx = ExecutionContext::new(&scheme, &r);
        f.execute(&ctx)
    };
    assert!(check(&f, r"/a*b\anything"));
    assert!(!check(&f, r"/aXb\anything"));
}

#[test]
fn in_with_literal_sets() {
    table(&[
        (r#"http.request.method in {"GET" "POST"}"#, true),
        (r#"http.request.method in {"GET" "HEAD"}"#, false),
        ("cf.threat_score in {1 2 10..20}", true),
        ("cf.threat_score in {1..5 30}", false),
        ("ip.src in {10.0.0.0/8 198.51.100.0/24}", true),
        ("ip.src in {198.51.100.3..198.51.100.7}", true),
        (
            "ip.src in {198.51.100.8..198.51.100.9 2001:db8::/32}",
            false,
        ),
        ("ip.src in 198.51.100.0/24", true),
        ("ip.src in {2001:db8::2 198.51.100.7}", true),
        ("ip.src in {2001:db8::2 198.51.100.8/32}", false),
        (
            r#"http.request.method in {"a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "POST"}"#,
            true,
        ),
    ]);
}

#[test]
fn in_with_named_lists() {
    table(&[
        ("ip.src in $office", true),
        ("ip.src.asnum in $asns", true),
        ("http.request.method in $bad_agents", false),
    ]);
}

#[test]
fn bitwise_and_tests_any_common_bit() {
    table(&[
        ("cf.threat_score & 2", true),
        ("cf.threat_score & 1", false),
        ("cf.threat_score & 0x0c", true),
    ]);
}

#[test]
fn logical_operators_in_both_spellings_with_precedence() {
    table(&[
        ("ssl", true),
        ("not ssl", false),
        ("!ssl", false),
        ("ssl and cf.threat_score gt 10", true),
        ("ssl && cf.threat_score gt 20", false),
        ("not ssl or ssl", true),
        ("not ssl || not ssl", false),
        ("ssl xor ssl", false),
        ("ssl ^^ not ssl", true),
        // and binds tighter than or: (false and true) or true
        ("not ssl and ssl or ssl", true),
        // and binds tighter than xor: ssl xor (ssl and not ssl) = true
        ("ssl xor ssl and not ssl", true),
        // xor binds tighter than or: not ssl or (ssl xor ssl) = false
        ("not ssl or ssl xor ssl", false),
        ("not (ssl and not ssl)", true),
        ("((ssl))", true),
        ("true", true),
        ("false", false),
        ("(true)", true),
        ("not false and true", true),
        ("ssl and false", false),
    ]);
}

#[test]
fn indexing_maps_and_arrays() {
    table(&[
        (
            r#"http.request.headers["accept"][0] == "application/json""#,
            true,
        ),
        (r#"http.request.headers["accept"][1] == "text/html""#, true),
        (r#"http.request.headers["accept"][2] == "text/html""#, false),
        (r#"http.request.headers["nope"][0] ne "x""#, false),
        (r#"http.request.cookies["session"][0] eq "abc123""#, true),
        (r#"http.request.uri.args["user"][1] eq "root""#, true),
        (r#"http.request.uri.args["q"][0] eq "red+apples""#, true),
        (r#"http.request.headers.names[0] == "Host""#, true),
    ]);
}

#[test]
fn star_applies_comparisons_and_functions_to_every_element() {
    table(&[
        (
            r#"any(http.request.headers["accept"][*] == "text/html")"#,
            true,
        ),
        (
            r#"all(http.request.headers["accept"][*] == "text/html")"#,
            false,
        ),
        (
            r#"any(lower(http.request.headers.names[*])[*] == "user-agent")"#,
            true,
        ),
        (
            r#"all(len(http.request.uri.args["user"][*])[*] in {4 5})"#,
            true,
        ),
        (
            r#"all(not len(http.request.uri.args["user"][*])[*] in {4 5})"#,
            false,
        ),
        (r#"any(http.request.headers["accept"][*] == "x")"#, false),
        (r#"len(http.request.uri.args["order"]) >= 0"#, false),
        (r#"not len(http.request.uri.args["order"]) >= 0"#, true),
    ]);
}

#[test]
fn fields_not_supplied_are_empty_values() {
    let scheme = Scheme::http();
    let mut c = Compiler::new(&scheme);
    let req = HttpRequestFields::default();
    let ctx = ExecutionContext::new(&scheme, &req);
    for (expr, want) in [
        (r#"http.host eq """#, true),
        ("cf.threat_score eq 0", true),
        ("http.response.code eq 0", true),
        ("ssl", false),
        ("ip.src eq 0.0.0.0", true),
        ("len(http.request.headers.names) eq 0", true),
    ] {
        assert_eq!(c.compile(expr).unwrap().execute(&ctx), want, "{expr}");
    }
}

#[test]
fn fields_are_read_lazily_and_once() {
    use rampart_rules::{FieldId, FieldSource, Value};
    use std::sync::atomic::{AtomicU32, Ordering};
    struct Counting(AtomicU32);
    impl FieldSource for Counting {
        fn field(&self, _: FieldId, name: &str) -> Option<Value<'_>> {
            self.0.fetch_add(1, Ordering::Relaxed);
            (name == "http.host").then(|| Value::from("a"))
        }
    }
    let scheme = Scheme::http();
    let f = Compiler::new(&scheme)
        .compile(r#"http.host eq "a" or http.host eq "b" or ssl"#)
        .unwrap();
    let src = Counting(AtomicU32::new(0));
    let ctx = ExecutionContext::new(&scheme, &src);
    assert!(f.execute(&ctx));
    assert!(f.execute(&ctx));
    assert_eq!(
        src.0.load(Ordering::Relaxed),
        1,
        "http.host read once, ssl never"
    );
    let (ssl, _) = scheme.field("ssl").unwrap();
    assert!(!ctx.is_field_read(ssl));
}

#[test]
fn http_request_fields_serve_a_scheme_declared_in_another_order() {
    use rampart_rules::{HttpField, Type};
    let mut scheme = Scheme::new();
    scheme.add_field("ssl", Type::Bool).unwrap();
    scheme.add_field("http.host", Type::Bytes).unwrap();
    scheme.add_field("my.custom", Type::Int).unwrap();
    let f = Compiler::new(&scheme)
        .compile(r#"ssl and http.host eq "www.Example.com" and my.custom eq 0"#)
        .unwrap();
    let req = request();
    assert!(f.execute(&ExecutionContext::new(&scheme, &req)));
    assert_eq!(Scheme::http().len(), HttpField::ALL.len());
    for (i, field) in HttpField::ALL.iter().enumerate() {
        let (id, ty) = Scheme::http()
            .field(field.name())
            .map(|(id, t)| (id, t.clone()))
            .unwrap();
        assert_eq!((id.index(), ty), (i, field.field_type()));
    }
}

/// The body fields as Cloudflare documents them, with its own examples: form fields not
/// decoded, multipart parts with their names and headers (`names[*][0]`), the sniffed type.
#[test]
fn body_fields_follow_cloudflare_s_examples() {
    let scheme = Scheme::http();
    let eval = |req: &HttpRequestFields, e: &str| {
        let f = Compiler::new(&scheme)
            .compile(e)
            .unwrap_or_else(|err| panic!("{err}"));
        f.execute(&ExecutionContext::new(&scheme, req))
    };
    let mut form = HttpRequestFields::from_parts(
        "POST",
        "/",
        "HTTP/1.1",
        vec![(
            "Content-Type".into(),
            b"application/x-www-form-urlencoded; charset=utf-8".to_vec(),
        )],
    );
    form.body = b"username=admin&q=a%20b&username=root".to_vec();
    assert!(eval(
        &form,
        r#"any(http.request.body.form["username"][*] == "admin")"#
    ));
    assert!(eval(
        &form,
        r#"http.request.body.form.names[2] == "username""#
    ));
    assert!(eval(
        &form,
        r#"any(http.request.body.form.values[*] == "a%20b")"#
    ));
    assert!(!eval(&form, "http.request.body.truncated"));
    let mut part = HttpRequestFields::from_parts(
        "POST",
        "/",
        "HTTP/1.1",
        vec![(
            "content-type".into(),
            b"multipart/form-data; boundary=XX".to_vec(),
        )],
    );
    part.body = b"--XX\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice_doe\r\n--XX\r\nContent-Disposition: form-data; name=\"picture\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\r\n--XX--\r\n".to_vec();
    part.body_truncated = true;
    for (e, want) in [
        (
            r#"any(http.request.body.multipart.names[*][0] == "picture")"#,
            true,
        ),
        (
            r#"any(http.request.body.multipart["username"][*] == "alice_doe")"#,
            true,
        ),
        (
            r#"any(http.request.body.multipart.values[*] == "alice_doe")"#,
            true,
        ),
        (
            r#"any(http.request.body.multipart.filenames[*][0] == "a.png")"#,
            true,
        ),
        (
            r#"any(http.request.body.multipart.content_types[*][0] == "image/png")"#,
            true,
        ),
        (
            r#"any(http.request.body.multipart.content_dispositions[*][0] in {"form-data; name=\"username\""})"#,
            true,
        ),
        (r#"http.request.body.mime == """#, true),
        ("http.request.body.truncated", true),
        (
            r#"any(http.request.body.form.names[*] == "username")"#,
            false,
        ),
    ] {
        assert_eq!(eval(&part, e), want, "{e}");
    }
    let pdf = HttpRequestFields {
        body: b"%PDF-1.7 ...".to_vec(),
        ..Default::default()
    };
    assert!(eval(&pdf, r#"http.request.body.mime == "application/pdf""#));
    assert!(
        Compiler::new(&scheme)
            .compile("any(http.request.headers[*][*] == \"x\")")
            .is_err()
    );
}
