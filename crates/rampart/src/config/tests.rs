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
    assert_eq!(
        loaded.config.server.listen,
        vec!["127.0.0.1:8080".parse().unwrap()]
    );
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
    assert_eq!(
        (
            c.limits.max_uri_bytes,
            c.limits.max_header_bytes,
            c.limits.max_headers
        ),
        (100, 1000, 10)
    );
    assert_eq!(c.zones[0].origin_connect_retries, 3);
    assert_eq!(c.zones[0].origin_response_timeout, Duration::from_secs(7));
}

#[test]
fn max_body_bytes_overrides_the_plan() {
    let src = format!("[limits]\nplan = \"enterprise\"\nmax_body_bytes = 1048576\n{MINIMAL}");
    assert_eq!(
        load_str("t", &src, None)
            .unwrap()
            .config
            .limits
            .max_body_bytes,
        1_048_576
    );
}

#[test]
fn unknown_keys_are_errors_with_location_and_suggestion() {
    let src = format!("[server]\nlisten = [\"127.0.0.1:1\"]\nkeepalive_timout = \"5s\"\n{MINIMAL}");
    let e = errors(&src);
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].line, e[0].column), (3, 1));
    assert_eq!(e[0].key, "server.keepalive_timout");
    assert!(
        e[0].message.contains("did you mean `keepalive_timeout`"),
        "{}",
        e[0].message
    );
    assert_eq!(
        e[0].to_string(),
        format!("test.toml:3:1: `server.keepalive_timout`: {}", e[0].message)
    );
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
        [
            "server.client_header_timeout",
            "limits.plan",
            "limits.max_headers",
            "zone[0].orign",
            "zone[0].origin"
        ],
        "{e:#?}"
    );
    assert_eq!(e[0].line, 3);
    assert!(e[3].message.contains("did you mean `origin`"));
}

#[test]
fn bad_values_name_the_key() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[server]\nlisten = [\"localhost:80\"]\n",
            "server.listen",
            "not an IP:port",
        ),
        (
            "[server]\naccess_log = 5\n",
            "server.access_log",
            "expected a string, found integer",
        ),
        (
            "[server]\nlisten = []\n",
            "server.listen",
            "no address to listen on",
        ),
        (
            "[server]\naccess_log_fields = [\"ClientIp\"]\n",
            "server.access_log_fields",
            "`ClientIp` is not an access log field; did you mean `ClientIP`?",
        ),
        (
            "[server]\naccess_log_fields = [\"RayID\", \"RayID\"]\n",
            "server.access_log_fields",
            "`RayID` is listed twice",
        ),
        (
            "[server]\naccess_log_fields = []\n",
            "server.access_log_fields",
            "lists no field",
        ),
        (
            "[server]\nkeepalive_timeout = \"0s\"\n",
            "server.keepalive_timeout",
            "longer than zero",
        ),
        (
            "[limits]\nmax_uri_bytes = -1\n",
            "limits.max_uri_bytes",
            "integer from",
        ),
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
        (
            "[[zone]]\nhosts = [\"a.test\"]\norigin = \"http://127.0.0.1:1\"\n",
            "zone[0].name",
            "required",
        ),
        (
            "[[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\n",
            "zone[0].origin",
            "required",
        ),
        (
            "[[zone]]\nname = \"a\"\nhosts = []\norigin = \"http://127.0.0.1:1\"\n",
            "zone[0].hosts",
            "a zone needs at least one host",
        ),
        (
            "[[zone]]\nname = \"a\"\nhosts = [\"10.0.0.1\"]\norigin = \"http://127.0.0.1:1\"\n",
            "zone[0].hosts",
            "IP address",
        ),
        (
            "[[zone]]\nname = \"a\"\nhosts = [\"a b\"]\norigin = \"http://127.0.0.1:1\"\n",
            "zone[0].hosts",
            "not a host name",
        ),
        (
            "[[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"http://127.0.0.1:1/path\"\n",
            "zone[0].origin",
            "without a path",
        ),
        (
            "[[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"http://127.0.0.1:1\"\norigin_connect_retries = 11\n",
            "zone[0].origin_connect_retries",
            "from 0 to 10",
        ),
        (
            "[[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"http://127.0.0.1:1\"\n[[zone]]\nname = \"b\"\nhosts = [\"A.test\"]\norigin = \"http://127.0.0.1:1\"\n",
            "zone[1].hosts",
            "already served by zone `a`",
        ),
        (
            "[[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"http://127.0.0.1:1\"\n[[zone]]\nname = \"a\"\nhosts = [\"b.test\"]\norigin = \"http://127.0.0.1:1\"\n",
            "zone[1].name",
            "already named `a`",
        ),
        (
            "[[zone]]\nname = \"a\"\nhosts = [\"a.test\", \"A.test\"]\norigin = \"http://127.0.0.1:1\"\n",
            "zone[0].hosts",
            "listed twice in this zone",
        ),
    ];
    for (src, key, msg) in cases {
        let e = errors(src);
        assert_eq!(e.len(), 1, "{src}: {e:?}");
        assert_eq!(e[0].key, *key, "{src}");
        assert!(e[0].message.contains(msg), "{src}: {}", e[0].message);
    }
}

#[test]
fn listeners_that_share_a_port_are_an_error() {
    for (server, key) in [
        (
            "listen = [\"127.0.0.1:8080\", \"127.0.0.1:8080\"]",
            "server.listen",
        ),
        (
            "listen = [\"0.0.0.0:8080\"]\ntls_listen = [\"127.0.0.1:8080\"]",
            "server.tls_listen",
        ),
        (
            "listen = [\"127.0.0.1:8080\"]\nadmin_listen = \"127.0.0.1:8080\"",
            "server.admin_listen",
        ),
    ] {
        let e = errors(&format!("[server]\n{server}\n{MINIMAL}"));
        assert_eq!(e.len(), 1, "{server}: {e:?}");
        assert_eq!(e[0].key, key, "{server}");
        assert!(e[0].message.contains("same port"), "{}", e[0].message);
    }
    // Different ports, or port 0 (any free port), are fine.
    let ok = "[server]\nlisten = [\"127.0.0.1:0\", \"127.0.0.1:0\", \"127.0.0.1:8081\"]\nadmin_listen = \"127.0.0.1:9090\"\n";
    assert!(load_str("t", &format!("{ok}{MINIMAL}"), None).is_ok());
}

#[test]
fn an_access_log_that_cannot_be_written_is_an_error() {
    for (value, msg) in [
        ("\"\"", "an empty path"),
        (
            "\"/nonexistent-dir/access.log\"",
            "its directory does not exist",
        ),
        ("\"/tmp\"", "it is a directory"),
    ] {
        let e = errors(&format!("[server]\naccess_log = {value}\n{MINIMAL}"));
        assert_eq!(e.len(), 1, "{value}: {e:?}");
        assert_eq!((e[0].key.as_str(), e[0].line), ("server.access_log", 2));
        assert!(e[0].message.contains(msg), "{}", e[0].message);
    }
}

#[test]
fn no_zone_is_an_error() {
    let e = errors("[server]\nlisten = [\"127.0.0.1:1\"]\n");
    assert_eq!(e[0].key, "zone");
    // An empty list is no better, and is located.
    let e = errors("# no zones yet\nzone = []\n[server]\nlisten = [\"127.0.0.1:1\"]\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].key.as_str(), e[0].line), ("zone", 2));
    assert!(e[0].message.contains("empty"), "{}", e[0].message);
}

#[test]
fn a_duplicate_key_is_named() {
    let e = errors("[server]\nworkers = 2\nworkers = 3\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].key.as_str(), e[0].line), ("workers", 3));
    assert!(e[0].message.contains("duplicate key"), "{}", e[0].message);
}

#[test]
fn invalid_toml_is_located() {
    let e = errors("[server]\nlisten = [\"127.0.0.1:1\"\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].message.starts_with("invalid TOML"), "{}", e[0].message);
    assert!(e[0].line >= 2);
}

fn zone_with(extra: &str) -> String {
    format!("{MINIMAL}{extra}")
}

#[test]
fn security_tables_load() {
    let src = zone_with(
        r#"
[[zone.custom_rule]]
description = "admin"
expression = 'http.request.uri.path wildcard "/admin*"'
action = "block"
response = { status = 418, content_type = "application/json", body = '{"error":"no"}' }
[[zone.custom_rule]]
expression = 'http.host eq "x"'
action = "skip"
skip = ["rate_limit"]
[[zone.ip_access_rule]]
target = "ip_range"
value = "198.51.100.0/24"
mode = "block"
[[zone.rate_limit]]
expression = 'http.request.uri.path eq "/login"'
characteristics = ["ip.src", "header:X-Api-Key"]
period = 60
requests_per_period = 5
mitigation_timeout = 600
"#,
    );
    let c = load_str("t", &src, None).unwrap().config;
    let s = &c.zones[0].security;
    assert_eq!(s.custom_rules.as_ref().unwrap().len(), 2);
    assert_eq!(s.ip_access.rules.len(), 1);
    assert_eq!(
        s.rate_limits[0].characteristics[1],
        security::Characteristic::Header("x-api-key".into())
    );
}

#[test]
fn security_mistakes_are_reported_with_location_and_caret() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[[zone.custom_rule]]\nexpression = 'http.request.uri.paht eq \"/\"'\naction = \"block\"\n",
            "zone[0].custom_rule[0].expression",
            "did you mean `http.request.uri.path`",
        ),
        (
            "[[zone.custom_rule]]\nexpression = 'true'\naction = \"block\"\nresponse = { status = 503, body = \"x\" }\n",
            "zone[0].custom_rule[0].response.status",
            "from 400 to 499",
        ),
        (
            "[[zone.custom_rule]]\nexpression = 'true'\naction = \"block\"\nresponse = { status = 403, content_type = \"image/png\" }\n",
            "zone[0].custom_rule[0].response.content_type",
            "not allowed",
        ),
        (
            "[[zone.custom_rule]]\nexpression = 'true'\naction = \"captcha\"\n",
            "zone[0].custom_rule[0].action",
            "one of: block, log, skip, js_challenge, managed_challenge",
        ),
        (
            "[[zone.custom_rule]]\nexpression = 'true'\naction = \"block\"\nresponse = { status = 403, body = \"",
            "",
            "",
        ),
        (
            "[[zone.ip_access_rule]]\ntarget = \"ip_range\"\nvalue = \"198.51.100.1/24\"\nmode = \"block\"\n",
            "zone[0].ip_access_rule[0].value",
            "host bits set; did you mean `198.51.100.0/24`",
        ),
        (
            "[[zone.ip_access_rule]]\ntarget = \"ip_rnge\"\nvalue = \"1.2.3.4\"\nmode = \"block\"\n",
            "zone[0].ip_access_rule[0].target",
            "unknown target",
        ),
        (
            "[[zone.rate_limit]]\nexpression = 'true'\ncharacteristics = [\"ip.src\"]\nperiod = 30\nrequests_per_period = 5\n",
            "zone[0].rate_limit[0].period",
            "30",
        ),
        (
            "[[zone.rate_limit]]\nexpression = 'true'\ncharacteristics = [\"ip.dst\"]\nperiod = 60\nrequests_per_period = 5\n",
            "zone[0].rate_limit[0].characteristics",
            "unknown characteristic `ip.dst`",
        ),
        (
            "[[zone.rate_limit]]\nexpression = 'true'\ncharacteristics = [\"ip.src\"]\nperiod = 60\nrequests_per_period = 5\nmitigation_timeout = 7\n",
            "zone[0].rate_limit[0].mitigation_timeout",
            "7",
        ),
        (
            "[[zone.rate_limit]]\nexpression = 'true'\ncharacteristics = [\"ip.src\"]\nperiod = 60\nrequests_per_period = 5\nalgorithm = \"sliding-window\"\n",
            "zone[0].rate_limit[0].algorithm",
            "unknown algorithm `sliding-window`; one of: gcra, sliding_window",
        ),
        (
            "[analytics]\nretention = \"10m\"\n",
            "analytics.retention",
            "must be at least 1h",
        ),
        (
            "[analytics]\ndata_dir = \"\"\n",
            "analytics.data_dir",
            "must name a directory",
        ),
        (
            "[analytics]\nmax_size = \"10KB\"\n",
            "analytics.max_size",
            "must be at least 1MB",
        ),
        (
            "[[zone.error_page]]\nfor = \"404\"\nfile = \"/nonexistent/page.html\"\n",
            "zone[0].error_page[0].file",
            "cannot read",
        ),
        (
            "[[zone.error_page]]\nfor = \"3xx\"\nfile = \"x\"\n",
            "zone[0].error_page[0].for",
            "not a page target",
        ),
    ];
    for (extra, key, msg) in cases {
        if key.is_empty() {
            // Unterminated TOML string: a TOML error, still located.
            let e = errors(&zone_with(extra));
            assert!(e[0].message.starts_with("invalid TOML"));
            continue;
        }
        let e = errors(&zone_with(extra));
        assert!(
            e.iter().any(|e| e.key == *key && e.message.contains(msg)),
            "{extra}\nwanted `{key}`: {msg}\ngot: {e:#?}"
        );
    }
}

#[test]
fn an_expression_error_points_into_the_file_and_shows_the_caret() {
    let src =
        zone_with("[[zone.custom_rule]]\nexpression = 'http.host eq 5'\naction = \"block\"\n");
    let e = errors(&src);
    assert_eq!(e.len(), 1);
    let line_of_expression = src
        .lines()
        .position(|l| l.starts_with("expression"))
        .unwrap()
        + 1;
    assert_eq!(e[0].line, line_of_expression);
    assert!(e[0].message.contains('^'), "{}", e[0].message);
}

#[test]
fn trusted_proxies_and_geoip_are_checked() {
    let e = errors(&format!(
        "[server]\ntrusted_proxies = [\"10.0.0.1/8\", \"nope\"]\n{MINIMAL}"
    ));
    assert_eq!(e.len(), 2);
    assert!(e[0].message.contains("host bits"));
    let e = errors(&format!(
        "[geoip]\ncountry_db = \"/nonexistent.mmdb\"\n{MINIMAL}"
    ));
    assert_eq!(e[0].key, "geoip.country_db");
    assert!(e[0].message.contains("/nonexistent.mmdb"));
}

#[test]
fn country_rules_without_a_database_are_a_warning() {
    let src = zone_with(
        "[[zone.ip_access_rule]]\ntarget = \"country\"\nvalue = \"FR\"\nmode = \"block\"\n",
    );
    let loaded = load_str("t", &src, None).unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert!(loaded.warnings[0].message.contains("country_db"));
}

#[test]
fn access_log_fields_are_every_field_unless_listed_and_keep_their_order() {
    use crate::config::LogField;
    let all = load_str("t.toml", MINIMAL, None).unwrap().config;
    assert_eq!(all.server.access_log_fields, LogField::ALL);
    let src =
        format!("[server]\naccess_log_fields = [\"EdgeResponseStatus\", \"ClientIP\"]\n{MINIMAL}");
    let some = load_str("t.toml", &src, None).unwrap().config;
    assert_eq!(
        some.server.access_log_fields,
        [LogField::EdgeResponseStatus, LogField::ClientIP]
    );
}

#[test]
fn every_wrong_number_of_a_rate_limit_is_reported() {
    let e = errors(&zone_with(
        "[[zone.rate_limit]]\nexpression = 'true'\ncharacteristics = [\"ip.src\"]\nperiod = 7\nrequests_per_period = 0\nmitigation_timeout = 5\n",
    ));
    let keys: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "zone[0].rate_limit[0].period",
            "zone[0].rate_limit[0].requests_per_period",
            "zone[0].rate_limit[0].mitigation_timeout"
        ],
        "{e:#?}"
    );
}

#[test]
fn request_handling_keys_have_cloudflare_s_defaults_and_exact_errors() {
    let c = load_str("t", MINIMAL, None).unwrap().config;
    let h = c.zones[0].request;
    assert_eq!(
        h.url_normalization.for_rules(),
        Some(rampart_http::Normalization::Cloudflare)
    );
    assert!(!h.url_normalization.to_origin());
    assert_eq!(h.max_body_inspection, 128 * 1024);
    assert_eq!(h.underscores_in_headers, request::Underscores::Pass);
    let src = format!(
        "{MINIMAL}url_normalization = {{ type = \"rfc3986\", scope = \"both\" }}\nmax_body_inspection = 0\nunderscores_in_headers = \"drop\"\n"
    );
    let h = load_str("t", &src, None).unwrap().config.zones[0].request;
    assert_eq!(
        h.url_normalization.for_rules(),
        Some(rampart_http::Normalization::Rfc3986)
    );
    assert!(h.url_normalization.to_origin());
    assert_eq!(h.max_body_inspection, 0);
    assert_eq!(h.underscores_in_headers, request::Underscores::Drop);
    let src = format!(
        "{MINIMAL}url_normalization = {{ type = \"nginx\", scope = \"out\", mode = 1 }}\nmax_body_inspection = -1\nunderscores_in_headers = \"allow\"\n"
    );
    let e: Vec<String> = errors(&src).iter().map(|e| e.to_string()).collect();
    let all = e.join("\n");
    for want in [
        "`zone[0].url_normalization.type`: unknown value `nginx`; one of: cloudflare, rfc3986",
        "`zone[0].url_normalization.scope`: unknown value `out`; one of: incoming, both, none",
        "`zone[0].url_normalization.mode`: unknown key",
        "`zone[0].max_body_inspection`: must be an integer from 0 to 16777216",
        "`zone[0].underscores_in_headers`: unknown value `allow`; one of: pass, drop, reject",
    ] {
        assert!(all.contains(want), "{want}\n{all}");
    }
    assert_eq!(e.len(), 5, "{all}");
}

#[test]
fn only_rules_that_read_the_body_make_their_phase_wait_for_it() {
    let src = format!(
        "{MINIMAL}[[zone.custom_rule]]\nexpression = 'http.request.body.size > 10'\naction = \"block\"\n[[zone.rate_limit]]\nexpression = 'len(http.request.body.raw) > 0'\ncharacteristics = [\"ip.src\"]\nperiod = 10\nrequests_per_period = 5\n"
    );
    let c = load_str("t", &src, None).unwrap().config;
    let readers = c.zones[0].security.body_readers;
    assert!(!readers.custom_rules, "the size is in the head");
    assert!(readers.rate_limits);
}

#[test]
fn api_tokens_are_read_and_their_mistakes_named() {
    let hash = "ab".repeat(32);
    let good = format!(
        "{MINIMAL}\n[[api_token]]\nname = \"ops\"\nsha256 = \"{hash}\"\nscopes = [\"cache:purge\", \"zone:read\"]\nzones = [\"example.test\"]\n"
    );
    let loaded = load_str("test.toml", &good, None).unwrap();
    let t = &loaded.config.api_tokens[0];
    assert_eq!(t.name, "ops");
    assert_eq!(t.sha256, [0xab; 32]);
    assert!(t.has(api::Scope::CachePurge) && !t.has(api::Scope::FirewallEdit));
    assert!(t.covers("example.test") && !t.covers("other.test"));

    let bad = format!(
        "{MINIMAL}\n[[api_token]]\nname = \"ops\"\nsha256 = \"{}\"\nscopes = [\"cache:purge\", \"cache:pruge\"]\nzones = [\"nowhere\"]\n\n[[api_token]]\nsha256 = \"{hash}\"\nscopes = []\n",
        &hash[..60]
    );
    let e = errors(&bad);
    let keyed: Vec<(&str, usize)> = e.iter().map(|e| (e.key.as_str(), e.line)).collect();
    assert_eq!(
        keyed,
        [
            ("api_token[0].sha256", 9),
            ("api_token[0].scopes", 10),
            ("api_token[0].zones", 11),
            ("api_token[1].name", 13),
            ("api_token[1].scopes", 15),
        ],
        "{e:#?}"
    );
    assert!(e[0].message.contains("64 hex digits"), "{}", e[0].message);
    assert!(
        e[1].message.contains("unknown scope `cache:pruge`"),
        "{}",
        e[1].message
    );
    assert!(
        e[2].message.contains("no [[zone]] is named `nowhere`"),
        "{}",
        e[2].message
    );
    assert!(
        e[4].message.contains("at least one scope"),
        "{}",
        e[4].message
    );
}
