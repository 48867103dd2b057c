//! The corpus: what real clients send must pass; each heuristic has its own failing case.

use super::*;

fn verdict(headers: &[(&str, &str)]) -> Option<&'static str> {
    let seen = Seen::of(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
    check(&seen).map(|c| c.id)
}

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const SAFARI: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15";
const IOS_CHROME: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1";
const SAMSUNG: &str = "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36";
const EDGE: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";
const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const HINTS: &str = "\"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\", \"Google Chrome\";v=\"131\"";

/// Real clients, as they send their headers (names in the case each sends them).
#[test]
fn real_browsers_and_clients_pass() {
    let corpus: &[(&str, &[(&str, &str)])] = &[
        (
            "Chrome",
            &[
                ("user-agent", CHROME),
                ("accept", HTML),
                ("sec-ch-ua", HINTS),
                ("sec-ch-ua-mobile", "?0"),
            ],
        ),
        (
            "Edge",
            &[("user-agent", EDGE), ("accept", HTML), ("sec-ch-ua", HINTS)],
        ),
        (
            "Samsung Internet",
            &[
                ("user-agent", SAMSUNG),
                ("accept", HTML),
                ("sec-ch-ua", HINTS),
                ("sec-ch-ua-mobile", "?1"),
            ],
        ),
        (
            "Chrome fetching an image",
            &[
                ("user-agent", CHROME),
                ("accept", "image/avif,image/webp,*/*"),
                ("sec-ch-ua", HINTS),
            ],
        ),
        (
            "Firefox",
            &[
                ("User-Agent", FIREFOX),
                ("Accept", HTML),
                ("Accept-Language", "en-GB,en;q=0.5"),
            ],
        ),
        (
            "Firefox with resistFingerprinting",
            &[
                (
                    "User-Agent",
                    "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0",
                ),
                ("Accept", "*/*"),
            ],
        ),
        ("Safari", &[("User-Agent", SAFARI), ("Accept", HTML)]),
        (
            "Chrome on iOS",
            &[("User-Agent", IOS_CHROME), ("Accept", HTML)],
        ),
        (
            "Tor Browser",
            &[
                (
                    "User-Agent",
                    "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0",
                ),
                ("Accept", HTML),
            ],
        ),
        ("curl", &[("User-Agent", "curl/8.11.0"), ("Accept", "*/*")]),
        (
            "curl -A with a browser's User-Agent",
            &[("User-Agent", CHROME), ("Accept", "*/*")],
        ),
        (
            "curl -H 'Accept:' -A custom",
            &[("User-Agent", "my-monitor/1.0")],
        ),
        (
            "wget",
            &[
                ("User-Agent", "Wget/1.24.5"),
                ("Accept", "*/*"),
                ("Accept-Encoding", "identity"),
            ],
        ),
        (
            "python-requests",
            &[("User-Agent", "python-requests/2.32.3"), ("Accept", "*/*")],
        ),
        ("Go", &[("User-Agent", "Go-http-client/2.0")]),
        (
            "okhttp",
            &[("User-Agent", "okhttp/4.12.0"), ("Accept-Encoding", "gzip")],
        ),
        ("Java", &[("User-Agent", "Java/21.0.5"), ("Accept", "*/*")]),
        ("node", &[("user-agent", "node"), ("accept", "*/*")]),
        (
            "axios",
            &[
                ("User-Agent", "axios/1.7.9"),
                ("Accept", "application/json, text/plain, */*"),
            ],
        ),
        (
            "Postman",
            &[("User-Agent", "PostmanRuntime/7.43.0"), ("Accept", "*/*")],
        ),
        (
            "Feedly",
            &[
                (
                    "User-Agent",
                    "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 3 subscribers)",
                ),
                ("Accept", "application/rss+xml"),
            ],
        ),
        (
            "NetNewsWire",
            &[
                (
                    "User-Agent",
                    "NetNewsWire (RSS Reader; https://netnewswire.com/)",
                ),
                ("Accept", "*/*"),
            ],
        ),
        (
            "Internet Archive",
            &[
                (
                    "User-Agent",
                    "Mozilla/5.0 (compatible; archive.org_bot +http://archive.org/details/archive.org_bot)",
                ),
                ("Accept", "*/*"),
            ],
        ),
        (
            "Googlebot",
            &[
                (
                    "User-Agent",
                    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                ),
                ("Accept", "*/*"),
            ],
        ),
        (
            "Googlebot without Accept",
            &[(
                "User-Agent",
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            )],
        ),
        ("a health checker", &[("User-Agent", "kube-probe/1.31")]),
    ];
    for (name, headers) in corpus {
        assert_eq!(verdict(headers), None, "{name} must pass");
    }
}

#[test]
fn each_heuristic_catches_its_case_and_only_its_own() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("no_user_agent", &[("Accept", "*/*")]),
        ("empty_user_agent", &[("User-Agent", ""), ("Accept", "*/*")]),
        (
            "empty_user_agent",
            &[("User-Agent", "   "), ("Accept", "*/*")],
        ),
        (
            "attack_tool",
            &[
                ("User-Agent", "sqlmap/1.8.11#stable (https://sqlmap.org)"),
                ("Accept", "*/*"),
            ],
        ),
        (
            "attack_tool",
            &[(
                "User-Agent",
                "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000001)",
            )],
        ),
        (
            "attack_tool",
            &[(
                "User-Agent",
                "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
            )],
        ),
        (
            "attack_tool",
            &[
                (
                    "User-Agent",
                    "Mozilla/5.0 (Windows NT 10.0) Chrome/120 Safari/537.36 NUCLEI",
                ),
                ("Accept", "*/*"),
            ],
        ),
        ("browser_without_accept", &[("User-Agent", CHROME)]),
        (
            "browser_without_accept",
            &[("User-Agent", FIREFOX), ("Accept-Language", "en")],
        ),
        (
            "client_hints_from_non_chromium",
            &[
                ("User-Agent", FIREFOX),
                ("Accept", HTML),
                ("Sec-CH-UA", HINTS),
            ],
        ),
        (
            "client_hints_from_non_chromium",
            &[
                ("user-agent", SAFARI),
                ("accept", HTML),
                ("sec-ch-ua", HINTS),
            ],
        ),
    ];
    for (expected, headers) in cases {
        assert_eq!(verdict(headers), Some(*expected), "{headers:?}");
    }
    // Every row of the table has a case above.
    for c in CHECKS {
        assert!(
            cases.iter().any(|(id, _)| *id == c.id),
            "{} has no case",
            c.id
        );
    }
}

#[test]
fn the_first_user_agent_counts_and_names_are_matched_in_any_case() {
    assert_eq!(
        verdict(&[("USER-AGENT", "sqlmap/1.0"), ("User-Agent", "curl/8")]),
        Some("attack_tool")
    );
    assert_eq!(verdict(&[("uSeR-aGeNt", "curl/8")]), None);
}
