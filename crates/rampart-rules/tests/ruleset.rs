//! Rule sets: order, first match, all matches, and the pre-filter.

use std::ops::ControlFlow;

use rampart_rules::{Compiler, ExecutionContext, HttpRequestFields, RuleSet, Scheme};

fn req(path: &str, ua: &str) -> HttpRequestFields {
    HttpRequestFields::from_parts(
        "GET",
        path,
        "HTTP/1.1",
        vec![
            ("Host".into(), b"example.com".to_vec()),
            ("User-Agent".into(), ua.as_bytes().to_vec()),
        ],
    )
}

/// The rule set's matches (pre-filtered) equal evaluating every rule.
#[track_caller]
fn assert_prefilter_agrees(scheme: &Scheme, rules: &RuleSet<usize>, r: &HttpRequestFields) {
    let ctx = ExecutionContext::new(scheme, r);
    let fast: Vec<usize> = rules.matches(&ctx).iter().map(|r| *r.action()).collect();
    let slow: Vec<usize> = rules
        .rules()
        .iter()
        .filter(|r| r.filter().execute(&ctx))
        .map(|r| *r.action())
        .collect();
    assert_eq!(fast, slow, "{r:?}");
    assert_eq!(
        rules.first_match(&ctx).map(|r| *r.action()),
        slow.first().copied()
    );
}

fn many_rules(scheme: &Scheme) -> RuleSet<usize> {
    let mut exprs = Vec::new();
    for i in 0..200 {
        exprs.push(match i % 5 {
            0 => format!(r#"http.request.uri.path contains "/admin{i}""#),
            1 => format!(r#"lower(http.user_agent) contains "bot{i}""#),
            2 => format!(r#"http.request.uri.path wildcard "/static/{i}/*.js""#),
            3 => format!(
                r#"http.request.uri.path eq "/p{i}" or http.user_agent in {{"ua{i}" "agent{i}"}}"#
            ),
            _ => format!(r#"starts_with(http.request.uri.path, "/api/v{i}/") and ssl"#),
        });
    }
    exprs.push("cf.threat_score eq 0".into());
    Compiler::new(scheme)
        .compile_rules(exprs.into_iter().enumerate())
        .unwrap()
}

#[test]
fn first_match_is_the_earliest_matching_rule() {
    let scheme = Scheme::http();
    let rules = Compiler::new(&scheme)
        .compile_rules([
            ("log", r#"http.host eq "example.com""#),
            ("block", r#"http.request.uri.path contains "/admin""#),
            ("allow", "ssl"),
        ])
        .unwrap();
    let r = req("/admin", "x");
    let ctx = ExecutionContext::new(&scheme, &r);
    assert_eq!(rules.first_match(&ctx).map(|r| *r.action()), Some("log"));
    let all: Vec<_> = rules.matches(&ctx).iter().map(|r| *r.action()).collect();
    assert_eq!(all, ["log", "block"]);
    // Stop at the first terminating action, after the log rules.
    let stopped = rules.for_each_match(&ctx, |r| {
        if *r.action() == "log" {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(*r.action())
        }
    });
    assert_eq!(stopped, Some("block"));
}

#[test]
fn compile_rules_reports_which_rule_failed() {
    let scheme = Scheme::http();
    let e = Compiler::new(&scheme)
        .compile_rules([(1, "ssl"), (2, "http.hots eq \"a\"")])
        .unwrap_err();
    assert_eq!(e.index, 1);
    assert!(
        e.to_string()
            .starts_with("rule #2: error: unknown field `http.hots`; did you mean `http.host`?")
    );
}

#[test]
fn prefilter_guards_literal_rules_and_agrees_with_plain_evaluation() {
    let scheme = Scheme::http();
    let rules = many_rules(&scheme);
    assert!(
        rules.prefiltered_rules() >= 160,
        "{}",
        rules.prefiltered_rules()
    );
    for (path, ua) in [
        ("/admin15", "x"),
        ("/admin150", "MyBOT21"),
        ("/static/12/app.js", "x"),
        ("/STATIC/12/APP.JS", "x"),
        ("/p13", "agent18"),
        ("/api/v4/x", "ua3"),
        ("/", "xCRAWL1445"),
        ("/nothing", "nothing"),
    ] {
        let r = req(path, ua);
        assert_prefilter_agrees(&scheme, &rules, &r);
    }
}

#[test]
fn rule_sets_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RuleSet<String>>();
    assert_send_sync::<rampart_rules::Filter>();
}

#[test]
fn ip_and_header_rules_are_prefiltered_and_agree_with_plain_evaluation() {
    let scheme = Scheme::http();
    let mut exprs = Vec::new();
    for i in 0..60usize {
        exprs.push(match i % 3 {
            0 => format!("ip.src in {{10.{i}.0.0/16 2001:db8:{i:x}::/48 192.0.2.{i}}}"),
            1 => format!(
                r#"any(http.request.headers["x-key{}"][*] eq "v{i}")"#,
                i % 7
            ),
            _ => format!(r#"http.request.headers["x-key{}"][0] ne "v{i}""#, i % 5),
        });
    }
    let rules: RuleSet<usize> = Compiler::new(&scheme)
        .compile_rules(exprs.into_iter().enumerate())
        .unwrap();
    assert_eq!(rules.prefiltered_rules(), 60);
    for (ip, header) in [
        ("10.3.9.9", ("x-key1", "v1")),
        ("192.0.2.27", ("x-key0", "v7")),
        ("::ffff:10.6.1.1", ("x-key3", "nope")),
        ("2001:db8:c::1", ("x-key4", "v4")),
        ("203.0.113.1", ("x-other", "v1")),
    ] {
        let mut r = req("/", "ua");
        r.client_ip = Some(ip.parse().unwrap());
        r.headers
            .push((header.0.to_owned(), header.1.as_bytes().to_vec()));
        assert_prefilter_agrees(&scheme, &rules, &r);
    }
}
