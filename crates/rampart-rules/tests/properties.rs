//! Property tests over generated expressions and requests.

use proptest::prelude::*;
use rampart_rules::{Compiler, ExecutionContext, HttpRequestFields, RuleSet, Scheme};

const ATOMS: &[&str] = &[
    "ssl",
    r#"http.host eq "a.com""#,
    r#"http.host wildcard "*.A.com""#,
    r#"http.request.uri.path contains "/x""#,
    r#"http.request.uri.path matches "^/[a-z]+$""#,
    r#"lower(http.user_agent) contains "bot""#,
    "cf.threat_score gt 10",
    "cf.threat_score in {1..5 20}",
    "ip.src in {10.0.0.0/8}",
    r#"any(http.request.headers["x"][*] == "1")"#,
    r#"starts_with(http.request.uri.path, "/y")"#,
];

fn expr() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(ATOMS).prop_map(str::to_owned);
    leaf.prop_recursive(4, 32, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| format!("not ({e})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) and ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or ({b})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("({a}) xor ({b})")),
        ]
    })
}

fn request() -> impl Strategy<Value = HttpRequestFields> {
    (
        prop::sample::select(&["a.com", "b.a.com", "B.A.COM", "x.org"][..]),
        prop::sample::select(&["/x", "/xyz", "/y/1", "/Q", "/"][..]),
        prop::sample::select(&["Bot", "curl", ""][..]),
        0i64..25,
        any::<bool>(),
        prop::sample::select(&["10.1.2.3", "192.0.2.1"][..]),
        prop::option::of(prop::sample::select(&["1", "2"][..])),
    )
        .prop_map(|(host, path, ua, score, ssl, ip, x)| {
            let mut headers = vec![("User-Agent".to_owned(), ua.as_bytes().to_vec())];
            if let Some(x) = x {
                headers.push(("X".to_owned(), x.as_bytes().to_vec()));
            }
            let mut r = HttpRequestFields::from_parts("GET", path, "HTTP/1.1", headers);
            r.host = host.to_owned();
            r.threat_score = score;
            r.ssl = ssl;
            r.client_ip = Some(ip.parse().unwrap());
            r
        })
}

fn eval(scheme: &Scheme, expr: &str, r: &HttpRequestFields) -> bool {
    let f = Compiler::new(scheme).compile(expr).unwrap();
    f.execute(&ExecutionContext::new(scheme, r))
}

/// The matches of a rule set (with its pre-filter), its first match, and
/// the rules that match when each is evaluated on its own.
fn prefiltered_and_plain(
    exprs: &[String],
    r: &HttpRequestFields,
) -> (Vec<usize>, Option<usize>, Vec<usize>) {
    let s = Scheme::http();
    let rules: RuleSet<usize> = Compiler::new(&s)
        .compile_rules(exprs.iter().enumerate())
        .unwrap();
    let ctx = ExecutionContext::new(&s, r);
    let fast = rules.matches(&ctx).iter().map(|r| *r.action()).collect();
    let first = rules.first_match(&ctx).map(|r| *r.action());
    let slow = rules
        .rules()
        .iter()
        .filter(|r| r.filter().execute(&ctx))
        .map(|r| *r.action())
        .collect();
    (fast, first, slow)
}

proptest! {
    #[test]
    fn double_negation_is_identity(e in expr(), r in request()) {
        let s = Scheme::http();
        prop_assert_eq!(eval(&s, &format!("not not ({e})"), &r), eval(&s, &e, &r));
        prop_assert_eq!(eval(&s, &format!("!!({e})"), &r), eval(&s, &e, &r));
    }

    #[test]
    fn de_morgan_holds(a in expr(), b in expr(), r in request()) {
        let s = Scheme::http();
        prop_assert_eq!(
            eval(&s, &format!("not (({a}) and ({b}))"), &r),
            eval(&s, &format!("not ({a}) or not ({b})"), &r)
        );
        prop_assert_eq!(
            eval(&s, &format!("not (({a}) or ({b}))"), &r),
            eval(&s, &format!("not ({a}) and not ({b})"), &r)
        );
    }

    #[test]
    fn xor_is_exclusive_or(a in expr(), b in expr(), r in request()) {
        let s = Scheme::http();
        prop_assert_eq!(
            eval(&s, &format!("({a}) xor ({b})"), &r),
            eval(&s, &format!("(({a}) and not ({b})) or (not ({a}) and ({b}))"), &r)
        );
        prop_assert_eq!(eval(&s, &format!("({a}) ^^ ({a})"), &r), false);
    }

    #[test]
    fn prefiltered_rule_set_agrees_with_evaluating_every_rule(
        exprs in prop::collection::vec(expr(), 1..40),
        r in request(),
    ) {
        let (fast, first, slow) = prefiltered_and_plain(&exprs, &r);
        prop_assert_eq!(first, slow.first().copied());
        prop_assert_eq!(fast, slow);
    }

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        let scheme = Scheme::http();
        let _ = Compiler::new(&scheme).compile(&s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn prefilter_agrees_across_many_words_of_rules(
        exprs in prop::collection::vec(expr(), 65..200),
        r in request(),
    ) {
        let (fast, first, slow) = prefiltered_and_plain(&exprs, &r);
        prop_assert_eq!(first, slow.first().copied());
        prop_assert_eq!(fast, slow);
    }
}
