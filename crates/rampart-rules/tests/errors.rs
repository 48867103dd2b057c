//! Every compile error: its kind, its span, and how it reads.

use rampart_rules::{CompileError, Compiler, ErrorKind, ParserSettings, Scheme, Span};

#[track_caller]
fn err(expr: &str) -> CompileError {
    err_with(expr, ParserSettings::default())
}

#[track_caller]
fn err_with(expr: &str, settings: ParserSettings) -> CompileError {
    let scheme = Scheme::http();
    match Compiler::new(&scheme).with_settings(settings).compile(expr) {
        Ok(_) => panic!("`{expr}` compiled"),
        Err(e) => e,
    }
}

#[track_caller]
fn ok_with(expr: &str, settings: ParserSettings) {
    let scheme = Scheme::http();
    if let Err(e) = Compiler::new(&scheme).with_settings(settings).compile(expr) {
        panic!("`{expr}` failed:\n{e}");
    }
}

/// The text under the error's span.
fn under<'a>(expr: &'a str, e: &CompileError) -> &'a str {
    &expr[e.span().start..e.span().end]
}

#[test]
fn unknown_field_suggests_the_nearest_name_with_a_caret() {
    let expr = r#"http.host eq "a" and http.request.uri.paht eq "/""#;
    let e = err(expr);
    assert_eq!(
        e.kind(),
        &ErrorKind::UnknownField {
            name: "http.request.uri.paht".into(),
            suggestion: Some("http.request.uri.path".into())
        }
    );
    assert_eq!(under(expr, &e), "http.request.uri.paht");
    assert_eq!(e.line_column(), (1, 22));
    let shown = e.to_string();
    assert_eq!(
        shown,
        "error: unknown field `http.request.uri.paht`; did you mean `http.request.uri.path`?\n \
         --> line 1, column 22\n  |\n1 | http.host eq \"a\" and http.request.uri.paht eq \"/\"\n  |                      ^^^^^^^^^^^^^^^^^^^^^"
    );
}

#[test]
fn caret_points_into_the_right_line_of_a_multiline_expression() {
    let expr = "ssl\nand cf.threat_score eq \"high\"";
    let e = err(expr);
    assert_eq!(e.line_column(), (2, 24));
    let shown = e.to_string();
    assert!(
        shown.contains("2 | and cf.threat_score eq \"high\"\n  |                        ^^^^^^"),
        "{shown}"
    );
}

#[test]
fn unknown_field_without_a_close_name_has_no_suggestion() {
    let e = err("zzzzzzzzzzzz");
    assert!(matches!(
        e.kind(),
        ErrorKind::UnknownField {
            suggestion: None,
            ..
        }
    ));
    assert_eq!(e.kind().to_string(), "unknown field `zzzzzzzzzzzz`");
}

#[test]
fn unknown_function_suggests_the_nearest_name() {
    let expr = r#"lowr(http.host) eq "a""#;
    let e = err(expr);
    assert_eq!(
        e.kind().to_string(),
        "unknown function `lowr`; did you mean `lower`?"
    );
    assert_eq!(under(expr, &e), "lowr");
}

#[test]
fn type_mismatch_names_both_types() {
    let expr = r#"cf.threat_score eq "high""#;
    let e = err(expr);
    assert_eq!(
        e.kind().to_string(),
        "type mismatch: expected Int, found Bytes"
    );
    assert_eq!(under(expr, &e), r#""high""#);
    let e = err("http.host eq 5");
    assert_eq!(
        e.kind().to_string(),
        "type mismatch: expected Bytes (a quoted string), found Int"
    );
    let e = err("lower(cf.threat_score) eq \"a\"");
    assert_eq!(
        e.kind().to_string(),
        "type mismatch: expected Bytes, found Int"
    );
    let e = err("ip.src eq 10.0.0.0/8");
    assert_eq!(
        e.kind().to_string(),
        "type mismatch: expected Ip (use `in` for ranges), found CIDR range"
    );
    let e = err("ssl and http.host");
    assert_eq!(
        e.kind().to_string(),
        "type mismatch: expected Bool, found Bytes"
    );
}

#[test]
fn operator_not_defined_for_the_type() {
    let expr = "ip.src contains 1";
    let e = err(expr);
    assert_eq!(
        e.kind().to_string(),
        "operator `contains` cannot be used with a value of type Ip"
    );
    assert_eq!(under(expr, &e), "contains");
    let e = err(r#"http.request.headers["a"] eq "b""#);
    assert_eq!(
        e.kind().to_string(),
        "operator `eq` cannot be used with a value of type Array<Bytes>"
    );
}

#[test]
fn regex_that_does_not_compile() {
    let expr = r#"http.host matches "(unclosed""#;
    let e = err(expr);
    assert!(matches!(e.kind(), ErrorKind::InvalidRegex { .. }));
    assert!(
        e.kind()
            .to_string()
            .starts_with("invalid regular expression: ")
    );
    assert_eq!(under(expr, &e), r#""(unclosed""#);
}

#[test]
fn regex_too_big_at_limit_and_limit_plus_one() {
    let settings = ParserSettings {
        max_regex_size: 10_000,
        ..Default::default()
    };
    ok_with(r#"http.host matches "a{10}""#, settings);
    let e = err_with(r#"http.host matches "\w{1000}""#, settings);
    assert_eq!(e.kind(), &ErrorKind::RegexTooBig { max: 10_000 });
    assert_eq!(
        e.kind().to_string(),
        "regular expression is too big once compiled; the limit is 10000 bytes"
    );
}

#[test]
fn cidr_with_host_bits_set_suggests_the_network() {
    let expr = "ip.src in {10.0.0.1/8}";
    let e = err(expr);
    assert_eq!(
        e.kind().to_string(),
        "CIDR range has host bits set; did you mean `10.0.0.0/8`?"
    );
    assert_eq!(under(expr, &e), "10.0.0.1/8");
    assert!(matches!(
        err("ip.src in {2001:db8::1/32}").kind(),
        ErrorKind::CidrHostBitsSet { .. }
    ));
}

#[test]
fn unterminated_string() {
    let expr = r#"http.host eq "example.com"#;
    let e = err(expr);
    assert_eq!(e.kind(), &ErrorKind::UnterminatedString);
    assert_eq!(
        e.kind().to_string(),
        "unterminated string: missing closing `\"`"
    );
    assert_eq!(under(expr, &e), r#""example.com"#);
    assert_eq!(
        err(r##"http.host eq r#"abc"##).kind(),
        &ErrorKind::UnterminatedString
    );
}

#[test]
fn invalid_escape_in_quoted_string() {
    let expr = r#"http.host eq "a\qb""#;
    let e = err(expr);
    assert_eq!(e.kind(), &ErrorKind::InvalidEscape);
    assert_eq!(under(expr, &e), r"\q");
}

#[test]
fn syntax_errors_say_what_was_expected() {
    let e = err("http.host eq");
    assert_eq!(
        e.kind().to_string(),
        "expected a literal value, but the expression ended"
    );
    let e = err("ssl and and ssl");
    assert_eq!(
        e.kind().to_string(),
        "expected a field, function call or literal, found `and`"
    );
    let e = err("(ssl");
    assert_eq!(
        e.kind().to_string(),
        "expected `)`, but the expression ended"
    );
    let e = err("ssl ssl");
    assert_eq!(
        e.kind().to_string(),
        "expected `and`, `or`, `xor` or the end of the expression, found `ssl`"
    );
    let e = err("ssl # comment");
    assert_eq!(e.kind().to_string(), "unexpected character `#`");
    assert_eq!(e.span(), Span::new(4, 5));
}

#[test]
fn whole_expression_must_be_bool() {
    let e = err("http.host");
    assert_eq!(
        e.kind().to_string(),
        "expression must be a Bool (a comparison or a Bool field), but it is Bytes"
    );
}

#[test]
fn star_outside_a_function_is_rejected() {
    let expr = r#"http.request.headers.names[*] == "Content-Type""#;
    let e = err(expr);
    assert_eq!(e.kind(), &ErrorKind::MisplacedStar);
    assert_eq!(under(expr, &e), "http.request.headers.names[*]");
    assert_eq!(
        err(r#"concat("a", http.request.headers.names[*]) eq "a""#).kind(),
        &ErrorKind::MisplacedStar
    );
}

#[test]
fn wrong_argument_count() {
    let e = err(r#"lower(http.host, "x") eq "a""#);
    assert_eq!(
        e.kind().to_string(),
        "function `lower` takes 1 argument(s), but 2 were given"
    );
}

#[test]
fn invalid_function_arguments() {
    for (expr, msg) in [
        (
            r#"len(split(http.host, "", 2)) eq 1"#,
            "the separator of `split` must not be empty",
        ),
        (
            r#"len(split(http.host, ",", 129)) eq 1"#,
            "the limit of `split` must be between 1 and 128",
        ),
        (
            r#"len(split(http.host, ",", cf.threat_score)) eq 1"#,
            "the limit of `split` must be a literal integer between 1 and 128",
        ),
        (
            r#"url_decode(http.host, "x") eq "a""#,
            "url_decode options may only contain `r` (recursive) and `u` (%uXXXX decoding)",
        ),
        (
            "cidr(ip.src, 33, 64) eq 1.2.3.4",
            "the IPv4 network bits of `cidr` must be between 1 and 32",
        ),
        (
            "cidr6(ip.src, 0) eq 1.2.3.4",
            "the IPv6 network bits of `cidr6` must be between 1 and 128",
        ),
        (
            r#"regex_replace(http.host, "(a)", "${2}") eq "a""#,
            "reference `${2}` does not name a capture group (there are 1)",
        ),
        (
            r#"wildcard_replace(http.host, "*", "${1}", "x") eq "a""#,
            "the only flag of `wildcard_replace` is `s` (case-sensitive)",
        ),
        (
            r#"regex_replace(http.host, http.host, "a") eq "a""#,
            "the regular expression of `regex_replace` must be a literal string",
        ),
    ] {
        let e = err(expr);
        assert_eq!(
            e.kind(),
            &ErrorKind::InvalidArgument {
                message: msg.into()
            },
            "{expr}"
        );
    }
}

#[test]
fn invalid_literals() {
    assert_eq!(
        err("cf.threat_score eq 99999999999999999999").kind(),
        &ErrorKind::InvalidInteger
    );
    assert_eq!(err("ip.src eq 300.1.1.1").kind(), &ErrorKind::InvalidIp);
    assert_eq!(
        err("cf.threat_score in {5..1}").kind(),
        &ErrorKind::InvalidRange
    );
    assert_eq!(
        err("ip.src in {10.0.0.9..10.0.0.1}").kind(),
        &ErrorKind::InvalidRange
    );
    assert_eq!(
        err("ip.src in $nope").kind(),
        &ErrorKind::UnknownList {
            name: "nope".into()
        }
    );
}

#[test]
fn wildcard_errors() {
    let e = err(r#"http.host wildcard "a**b""#);
    assert!(matches!(e.kind(), ErrorKind::InvalidWildcard { .. }));
    let e = err(r#"http.host wildcard r"a\b""#);
    assert!(matches!(e.kind(), ErrorKind::InvalidWildcard { .. }));
}

#[test]
fn wildcard_stars_at_limit_and_limit_plus_one() {
    let settings = ParserSettings {
        max_wildcard_stars: 3,
        ..Default::default()
    };
    ok_with(r#"http.host wildcard "a*b*c*d""#, settings);
    let e = err_with(r#"http.host wildcard "a*b*c*d*""#, settings);
    assert_eq!(
        e.kind(),
        &ErrorKind::TooManyWildcardStars { stars: 4, max: 3 }
    );
    assert_eq!(
        e.kind().to_string(),
        "wildcard pattern has 4 `*`; at most 3 are allowed"
    );
}

#[test]
fn expression_length_at_limit_and_limit_plus_one() {
    let settings = ParserSettings {
        max_expression_length: 10,
        ..Default::default()
    };
    ok_with("ssl or ssl", settings);
    let e = err_with("ssl or ssl ", settings);
    assert_eq!(
        e.kind(),
        &ErrorKind::ExpressionTooLong {
            length: 11,
            max: 10
        }
    );
    assert_eq!(
        e.kind().to_string(),
        "expression is 11 bytes long; the limit is 10 bytes"
    );
}

#[test]
fn nesting_depth_at_limit_and_limit_plus_one() {
    let settings = ParserSettings {
        max_nesting_depth: 4,
        ..Default::default()
    };
    ok_with("((((ssl))))", settings);
    let e = err_with("(((((ssl)))))", settings);
    assert_eq!(e.kind(), &ErrorKind::NestingTooDeep { max: 4 });
    ok_with("not not not not ssl", settings);
    assert_eq!(
        err_with("not not not not not ssl", settings).kind(),
        &ErrorKind::NestingTooDeep { max: 4 }
    );
    // The default limit holds against input built to overflow the stack.
    let deep = format!("{}ssl{}", "(".repeat(100_000), ")".repeat(100_000));
    let e = err_with(
        &deep,
        ParserSettings {
            max_expression_length: 1 << 20,
            ..Default::default()
        },
    );
    assert_eq!(e.kind(), &ErrorKind::NestingTooDeep { max: 64 });
    let nots = "!".repeat(100_000) + "ssl";
    let e = err_with(
        &nots,
        ParserSettings {
            max_expression_length: 1 << 20,
            ..Default::default()
        },
    );
    assert_eq!(e.kind(), &ErrorKind::NestingTooDeep { max: 64 });
}

#[test]
fn set_items_at_limit_and_limit_plus_one() {
    let settings = ParserSettings {
        max_set_items: 3,
        ..Default::default()
    };
    ok_with("cf.threat_score in {1 2 3}", settings);
    let e = err_with("cf.threat_score in {1 2 3 4}", settings);
    assert_eq!(e.kind(), &ErrorKind::TooManySetItems { max: 3 });
    assert_eq!(
        e.kind().to_string(),
        "set has too many items; at most 3 are allowed"
    );
}

#[test]
fn scheme_rejects_bad_and_duplicate_names() {
    use rampart_rules::{SchemeError, Type};
    let mut s = Scheme::new();
    assert!(s.add_field("a.b", Type::Int).is_ok());
    assert_eq!(
        s.add_field("a.b", Type::Int),
        Err(SchemeError::DuplicateField("a.b".into()))
    );
    assert_eq!(
        s.add_field("a..b", Type::Int),
        Err(SchemeError::InvalidFieldName("a..b".into()))
    );
    assert_eq!(
        s.add_field("1a", Type::Int),
        Err(SchemeError::InvalidFieldName("1a".into()))
    );
}
