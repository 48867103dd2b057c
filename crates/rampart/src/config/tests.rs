use super::*;

fn errors(src: &str) -> Vec<ConfigError> {
    match load_str("test.toml", src, None) {
        Ok(_) => panic!("expected errors for:\n{src}"),
        Err(e) => e.errors,
    }
}

const MINIMAL: &str = r#"
[[zone]]
name = "example.test"
hosts = ["example.test", "*.example.test"]
origin = "http://127.0.0.1:3000"
"#;

#[test]
fn the_embedded_default_loads() {
    let loaded = load_str(EMBEDDED_NAME, EMBEDDED_DEFAULT, None).unwrap();
    assert_eq!(loaded.config.zones[0].name, "localhost");
    assert_eq!(loaded.config.server.listen, vec!["127.0.0.1:8080".parse().unwrap()]);
}

#[test]
fn a_minimal_config_gets_the_documented_defaults() {
    let c = load_str("t", MINIMAL, None).unwrap().config;
    assert_eq!(c.server.client_header_timeout, Duration::from_secs(10));
    assert_eq!(c.server.client_body_timeout, Duration::from_secs(30));
    assert_eq!(c.server.keepalive_timeout, Duration::from_secs(75));
    assert_eq!(c.limits.max_body_bytes, 100_000_000);
    assert_eq!(c.limits.max_uri_bytes, 32768);
    assert_eq!(c.limits.max_header_bytes, 65536);
    assert_eq!(c.limits.max_headers, 100);
    let z = &c.zones[0];
    assert_eq!(z.origin_connect_timeout, Duration::from_secs(15));
    assert_eq!(z.origin_connect_retries, 1);
    assert_eq!(z.origin_response_timeout, Duration::from_secs(100));
    assert_eq!(z.hosts[1], HostPattern::Wildcard(".example.test".into()));
}

#[test]
fn every_key_of_the_issue_is_read() {
    let src = r#"
[server]
listen = ["127.0.0.1:8081", "[::1]:8081"]
access_log = "off"
client_header_timeout = "250ms"
client_body_timeout = "2s"
keepalive_timeout = "1m"
admin_listen = "off"

[limits]
plan = "business"
max_uri_bytes = 100
max_header_bytes = 1000
max_headers = 10

[[zone]]
name = "example.test"
hosts = ["example.test"]
origin = "http://127.0.0.1:3000"
origin_connect_timeout = "5s"
origin_connect_retries = 3
origin_response_timeout = "7s"
"#;
    let c = load_str("t", src, None).unwrap().config;
    assert_eq!(c.server.listen.len(), 2);
    assert_eq!(c.server.access_log, AccessLogTarget::Off);
    assert_eq!(c.server.client_header_timeout, Duration::from_millis(250));
    assert_eq!(c.server.keepalive_timeout, Duration::from_secs(60));
    assert_eq!(c.server.admin_listen, None);
    assert_eq!(c.limits.max_body_bytes, 200_000_000);
    assert_eq!((c.limits.max_uri_bytes, c.limits.max_header_bytes, c.limits.max_headers), (100, 1000, 10));
    assert_eq!(c.zones[0].origin_connect_retries, 3);
    assert_eq!(c.zones[0].origin_response_timeout, Duration::from_secs(7));
}

#[test]
fn max_body_bytes_overrides_the_plan() {
    let src = format!("[limits]\nplan = \"enterprise\"\nmax_body_bytes = 1048576\n{MINIMAL}");
    assert_eq!(load_str("t", &src, None).unwrap().config.limits.max_body_bytes, 1_048_576);
}

#[test]
fn unknown_keys_are_errors_with_location_and_suggestion() {
    let src = format!("[server]\nlisten = [\"127.0.0.1:1\"]\nkeepalive_timout = \"5s\"\n{MINIMAL}");
    let e = errors(&src);
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].line, e[0].column), (3, 1));
    assert_eq!(e[0].key, "server.keepalive_timout");
    assert!(e[0].message.contains("did you mean `keepalive_timeout`"), "{}", e[0].message);
    assert_eq!(e[0].to_string(), format!("test.toml:3:1: `server.keepalive_timout`: {}", e[0].message));
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let src = r#"
[server]
client_header_timeout = "ten seconds"
[limits]
plan = "gold"
max_headers = 0
[[zone]]
name = "a"
hosts = ["a.test"]
origin = "ftp://x"
orign = "x"
"#;
    let e = errors(src);
    let keys: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        ["server.client_header_timeout", "limits.plan", "limits.max_headers", "zone[0].orign", "zone[0].origin"],
        "{e:#?}"
    );
    assert_eq!(e[0].line, 3);
    assert!(e[3].message.contains("did you mean `origin`"));
}

#[test]
fn bad_values_name_the_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("[server]\nlisten = [\"localhost:80\"]\n", "server.listen", "not an IP:port"),
        ("[server]\naccess_log = 5\n", "server.access_log", "expected a string, found integer"),
        ("[server]\nkeepalive_timeout = \"0s\"\n", "server.keepalive_timeout", "longer than zero"),
        ("[limits]\nmax_uri_bytes = -1\n", "limits.max_uri_bytes", "integer from"),
    ];
    for (prefix, key, msg) in cases {
        let e = errors(&format!("{prefix}{MINIMAL}"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].key, *key);
        assert!(e[0].message.contains(msg), "{}: {}", key, e[0].message);
    }
}

#[test]
fn zone_problems_are_reported() {
    let cases: &[(&str, &str, &str)] = &[
        ("[[zone]]\nhosts = [\"a.test\"]\norigin = \"http://127.0.0.1:1\"\n", "zone[0].name", "required"),
        ("[[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\n", "zone[0].origin", "required"),
        ("[[zone]]\nname = \"a\"\nhosts = [\"10.0.0.1\"]\norigin = \"http://127.0.0.1:1\"\n", "zone[0].hosts", "IP address"),
        ("[[zone]]\nname = \"a\"\nhosts = [\"a b\"]\norigin = \"http://127.0.0.1:1\"\n", "zone[0].hosts", "not a host name"),
        ("[[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"http://127.0.0.1:1/path\"\n", "zone[0].origin", "without a path"),
        ("[[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"http://127.0.0.1:1\"\norigin_connect_retries = 11\n", "zone[0].origin_connect_retries", "from 0 to 10"),
        ("[[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"http://127.0.0.1:1\"\n[[zone]]\nname = \"b\"\nhosts = [\"A.test\"]\norigin = \"http://127.0.0.1:1\"\n", "zone[1].hosts", "already served by zone `a`"),
    ];
    for (src, key, msg) in cases {
        let e = errors(src);
        assert_eq!(e.len(), 1, "{src}: {e:?}");
        assert_eq!(e[0].key, *key, "{src}");
        assert!(e[0].message.contains(msg), "{src}: {}", e[0].message);
    }
}

#[test]
fn no_zone_is_an_error() {
    let e = errors("[server]\nlisten = [\"127.0.0.1:1\"]\n");
    assert_eq!(e[0].key, "zone");
}

#[test]
fn invalid_toml_is_located() {
    let e = errors("[server]\nlisten = [\"127.0.0.1:1\"\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].message.starts_with("invalid TOML"), "{}", e[0].message);
    assert!(e[0].line >= 2);
}
