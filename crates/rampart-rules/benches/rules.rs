//! Criterion benchmarks: compiling 1,000 rules; evaluating a typical request
//! against 100 and 1,000 rules; and rampart-rules against wirefilter-engine
//! 0.6 on the same expressions and request (operators both support).
//!
//! Run: `CARGO_TARGET_DIR=target-rules cargo bench -p rampart-rules --bench rules`

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rampart_rules::{Compiler, ExecutionContext, Filter, HttpRequestFields, RuleSet, Scheme};

/// Realistic custom rules, the shapes found in WAF rule sets, `i` making each unique.
fn realistic_rule(i: usize) -> String {
    let b = i % 256;
    match i % 12 {
        0 => format!(r#"http.request.uri.path contains "/wp-admin{i}""#),
        1 => format!(r#"lower(http.user_agent) contains "scanner{i}""#),
        2 => format!(
            r#"http.host eq "site{i}.example.com" and http.request.uri.path matches "^/api/v{i}/[a-z]+$""#
        ),
        3 => format!("ip.src in {{203.0.{b}.0/24 198.18.{b}.0/24 2001:db8:{i:x}::/48}}"),
        4 => format!(
            r#"http.request.method eq "POST" and http.request.uri.path eq "/login{i}" and cf.threat_score gt 30"#
        ),
        5 => format!(
            r#"ip.src.country in {{"CN" "RU" "KP"}} and http.request.uri.path contains "/admin{i}""#
        ),
        6 => format!(r#"http.request.uri.query contains "union+select{i}""#),
        7 => format!(r#"http.request.uri.path wildcard "/static/{i}/*.php""#),
        8 => format!(r#"any(http.request.headers["x-api-key"][*] eq "key{i}")"#),
        9 => format!(r#"not ssl and http.host eq "secure{i}.example.com""#),
        10 => format!(r#"http.referer contains "spam{i}.example""#),
        _ => format!(
            r#"http.user_agent matches "(?i)bot{i}[0-9]*" and not http.request.uri.path in {{"/robots.txt" "/sitemap{i}.xml"}}"#
        ),
    }
}

/// Rules using only operators wirefilter 0.6 also has (no functions, no wildcard).
fn common_rule(i: usize) -> String {
    let b = i % 256;
    match i % 8 {
        0 => format!(r#"http.request.uri.path contains "/wp-admin{i}""#),
        1 => format!(r#"http.user_agent contains "scanner{i}""#),
        2 => format!(
            r#"http.host == "site{i}.example.com" && http.request.uri.path matches "^/api/v{i}/[a-z]+$""#
        ),
        3 => format!("ip.src in {{203.0.{b}.0/24 198.18.{b}.0/24}}"),
        4 => format!(
            r#"http.request.method == "POST" && http.request.uri.path == "/login{i}" && cf.threat_score > 30"#
        ),
        5 => format!(
            r#"ip.src.country in {{"CN" "RU" "KP"}} && http.request.uri.path contains "/admin{i}""#
        ),
        6 => format!(r#"http.request.uri.query contains "union+select{i}""#),
        _ => format!(r#"not ssl && http.referer contains "spam{i}.example""#),
    }
}

/// A typical request: ten populated fields.
fn request() -> HttpRequestFields {
    let mut r = HttpRequestFields::from_parts(
        "GET",
        "/products/shoes/running?color=blue&size=42",
        "HTTP/1.1",
        vec![
            ("Host".into(), b"www.example.com".to_vec()),
            ("User-Agent".into(), b"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15".to_vec()),
            ("Referer".into(), b"https://www.example.com/products".to_vec()),
            ("Accept".into(), b"text/html".to_vec()),
        ],
    );
    r.client_ip = Some("192.0.2.44".parse().unwrap());
    r.country = "GB".into();
    r.ssl = true;
    r.threat_score = 3;
    r
}

fn rule_set(scheme: &Scheme, n: usize, make: fn(usize) -> String) -> RuleSet<usize> {
    Compiler::new(scheme)
        .compile_rules((0..n).map(|i| (i, make(i))))
        .unwrap()
}

fn compile(c: &mut Criterion) {
    let scheme = Scheme::http();
    let rules: Vec<String> = (0..1000).map(realistic_rule).collect();
    c.bench_function("compile/1000_realistic_rules", |b| {
        b.iter(|| {
            let set = Compiler::new(&scheme)
                .compile_rules(rules.iter().enumerate())
                .unwrap();
            black_box(set.len())
        })
    });
}

fn execute(c: &mut Criterion) {
    let scheme = Scheme::http();
    let req = request();
    let mut g = c.benchmark_group("execute_all_rules");
    for n in [100, 1000] {
        let set = rule_set(&scheme, n, realistic_rule);
        // Nothing matches: every rule is considered (the worst case for first match).
        assert!(
            set.matches(&ExecutionContext::new(&scheme, &req))
                .is_empty()
        );
        g.bench_with_input(BenchmarkId::from_parameter(n), &set, |b, set| {
            b.iter(|| {
                let ctx = ExecutionContext::new(&scheme, black_box(&req));
                black_box(set.first_match(&ctx).is_some())
            })
        });
    }
    g.finish();
}

fn versus_wirefilter(c: &mut Criterion) {
    let req = request();
    let ip: IpAddr = req.client_ip.unwrap();
    let mut g = c.benchmark_group("versus_wirefilter");
    for n in [100, 1000] {
        let exprs: Vec<String> = (0..n).map(common_rule).collect();

        // rampart-rules, rule set (with pre-filter), and filter by filter.
        let scheme = Scheme::http();
        let set = rule_set(&scheme, n, common_rule);
        let mut compiler = Compiler::new(&scheme);
        let filters: Vec<Filter> = exprs.iter().map(|e| compiler.compile(e).unwrap()).collect();

        // wirefilter-engine 0.6 on the same ten fields and expressions.
        let mut wscheme = wirefilter::Scheme::new();
        for (name, ty) in [
            ("http.host", wirefilter::Type::Bytes),
            ("http.request.uri.path", wirefilter::Type::Bytes),
            ("http.request.uri.query", wirefilter::Type::Bytes),
            ("http.request.method", wirefilter::Type::Bytes),
            ("http.user_agent", wirefilter::Type::Bytes),
            ("http.referer", wirefilter::Type::Bytes),
            ("ip.src", wirefilter::Type::Ip),
            ("ip.src.country", wirefilter::Type::Bytes),
            ("cf.threat_score", wirefilter::Type::Int),
            ("ssl", wirefilter::Type::Bool),
        ] {
            wscheme.add_field(name.to_owned(), ty).unwrap();
        }
        let wfilters: Vec<_> = exprs
            .iter()
            .map(|e| wscheme.parse(e).unwrap().compile())
            .collect();
        let ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15";
        let referer = "https://www.example.com/products";

        // Same verdicts from both engines.
        {
            let ctx = ExecutionContext::new(&scheme, &req);
            let mut wctx = wirefilter::ExecutionContext::new(&wscheme);
            wctx.set_field_value("http.host", req.host.as_str())
                .unwrap();
            wctx.set_field_value("http.request.uri.path", req.path.as_str())
                .unwrap();
            wctx.set_field_value("http.request.uri.query", req.query.as_str())
                .unwrap();
            wctx.set_field_value("http.request.method", req.method.as_str())
                .unwrap();
            wctx.set_field_value("http.user_agent", ua).unwrap();
            wctx.set_field_value("http.referer", referer).unwrap();
            wctx.set_field_value("ip.src", ip).unwrap();
            wctx.set_field_value("ip.src.country", req.country.as_str())
                .unwrap();
            wctx.set_field_value("cf.threat_score", req.threat_score as i32)
                .unwrap();
            wctx.set_field_value("ssl", req.ssl).unwrap();
            for (f, w) in filters.iter().zip(&wfilters) {
                assert_eq!(f.execute(&ctx), w.execute(&wctx).unwrap());
            }
        }

        g.bench_with_input(BenchmarkId::new("rampart_ruleset", n), &n, |b, _| {
            b.iter(|| {
                let ctx = ExecutionContext::new(&scheme, black_box(&req));
                black_box(set.matches(&ctx).len())
            })
        });
        g.bench_with_input(BenchmarkId::new("rampart_each_filter", n), &n, |b, _| {
            b.iter(|| {
                let ctx = ExecutionContext::new(&scheme, black_box(&req));
                black_box(filters.iter().filter(|f| f.execute(&ctx)).count())
            })
        });
        g.bench_with_input(BenchmarkId::new("wirefilter", n), &n, |b, _| {
            b.iter(|| {
                let mut wctx = wirefilter::ExecutionContext::new(&wscheme);
                wctx.set_field_value("http.host", black_box(req.host.as_str()))
                    .unwrap();
                wctx.set_field_value("http.request.uri.path", req.path.as_str())
                    .unwrap();
                wctx.set_field_value("http.request.uri.query", req.query.as_str())
                    .unwrap();
                wctx.set_field_value("http.request.method", req.method.as_str())
                    .unwrap();
                wctx.set_field_value("http.user_agent", ua).unwrap();
                wctx.set_field_value("http.referer", referer).unwrap();
                wctx.set_field_value("ip.src", ip).unwrap();
                wctx.set_field_value("ip.src.country", req.country.as_str())
                    .unwrap();
                wctx.set_field_value("cf.threat_score", req.threat_score as i32)
                    .unwrap();
                wctx.set_field_value("ssl", req.ssl).unwrap();
                black_box(
                    wfilters
                        .iter()
                        .filter(|f| f.execute(&wctx).unwrap())
                        .count(),
                )
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = compile, execute, versus_wirefilter
}
criterion_main!(benches);
