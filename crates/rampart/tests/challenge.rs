//! Challenges over the wire: the page for browsers and the problem for other clients, a
//! solution posted to the endpoint, the clearance it earns and what that clearance does not
//! open (another address, another User-Agent, a forged or replayed one, a later block rule),
//! the exemptions and their look-alikes, the security level from threat lists, and the
//! Browser Integrity Check.

mod common;

use common::{Behaviour, Origin, Rampart, Response, TempDir};

const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const HTML: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

/// rampart for `shop.test` (loopback may name the client with X-Forwarded-For), the zone's
/// table ending with `zone_extra`, then `rest` (root tables).
async fn shop(zone_extra: &str, rest: &str) -> (Rampart, Origin) {
    let origin = Origin::start(Behaviour::Echo).await;
    let zones = format!(
        "[[zone]]\nname = \"shop\"\nhosts = [\"shop.test\"]\norigin = \"http://{}\"\n{zone_extra}\n{rest}",
        origin.addr
    );
    let rampart = Rampart::start_zones("trusted_proxies = [\"127.0.0.1\"]\n", &zones).await;
    (rampart, origin)
}

/// GET `path` from `ip` with a browser's User-Agent and `extra` header lines.
async fn get(r: &Rampart, path: &str, ip: &str, extra: &str) -> Response {
    let raw = format!(
        "GET {path} HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: {BROWSER}\r\nX-Forwarded-For: {ip}\r\n{extra}\r\n"
    );
    r.request(raw.as_bytes()).await.0
}

/// The page's hidden field `name`.
fn field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    let value = &page[at..at + page[at..].find('"').unwrap()];
    value
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

fn difficulty(page: &str) -> u8 {
    let at = page.find("data-difficulty=\"").unwrap() + "data-difficulty=\"".len();
    page[at..at + page[at..].find('"').unwrap()]
        .parse()
        .unwrap()
}

/// The counter that solves the page's challenge, found as the browser would.
fn solve(page: &str) -> String {
    let token = field(page, "t");
    let bits = difficulty(page);
    (0u64..)
        .map(|n| n.to_string())
        .find(|c| rampart_challenge::solved(&token, c, bits))
        .unwrap()
}

fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Posts a solution of `page` (its counter `n`) from `ip` with `ua`.
async fn post_solution(r: &Rampart, page: &str, n: &str, ip: &str, ua: &str) -> Response {
    let body = format!(
        "t={}&r={}&n={}&ms=12",
        escape(&field(page, "t")),
        escape(&field(page, "r")),
        escape(n)
    );
    let raw = format!(
        "POST /cdn-cgi/rampart/challenge HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: {ua}\r\nX-Forwarded-For: {ip}\r\nAccept: {HTML}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    r.request(raw.as_bytes()).await.0
}

fn clearance(r: &Response) -> String {
    let cookie = r.header("set-cookie").expect("a clearance cookie");
    cookie.split(';').next().unwrap().to_string()
}

const CHALLENGE_ALL: &str = "[zone.challenge]\ndifficulty = 8\n\n[[zone.custom_rule]]\nid = \"everyone\"\nexpression = 'not starts_with(http.request.uri.path, \"/open\")'\naction = \"js_challenge\"\n\n[[zone.custom_rule]]\nid = \"admin\"\nexpression = 'starts_with(http.request.uri.path, \"/admin\")'\naction = \"block\"\n";

#[tokio::test]
async fn a_browser_solves_the_page_and_its_clearance_opens_the_site_for_it_only() {
    let (r, origin) = shop(CHALLENGE_ALL, "").await;
    let ip = "192.0.2.10";
    let page = get(&r, "/cart?item=1", ip, &format!("Accept: {HTML}\r\n")).await;
    assert_eq!(page.status, 403, "{}", page.text());
    assert_eq!(
        page.header("rampart-mitigated").as_deref(),
        Some("challenge")
    );
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(page.header("cache-control").as_deref(), Some("no-store"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'sha256-"),
        "{csp}"
    );
    let html = page.text();
    assert_eq!(field(&html, "r"), "/cart?item=1");
    assert!(!html.contains("everyone"), "the rule's id is not shown");
    assert_eq!(origin.received.lock().unwrap().len(), 0);

    // A wrong counter is refused, with a new challenge.
    let wrong = (0u64..)
        .map(|n| n.to_string())
        .find(|c| !rampart_challenge::solved(&field(&html, "t"), c, difficulty(&html)))
        .unwrap();
    let refused = post_solution(&r, &html, &wrong, ip, BROWSER).await;
    assert_eq!(refused.status, 403);
    assert!(refused.text().contains("data-token"), "a new challenge");

    let n = solve(&html);
    let solved = post_solution(&r, &html, &n, ip, BROWSER).await;
    assert_eq!(solved.status, 303, "{}", solved.text());
    assert_eq!(solved.header("location").as_deref(), Some("/cart?item=1"));
    let set = solved.header("set-cookie").unwrap();
    assert!(
        set.contains("; Path=/; Max-Age=1800; HttpOnly; SameSite=Lax"),
        "{set}"
    );
    let cookie = clearance(&solved);

    // The clearance opens the site for this client...
    let with = format!("Accept: {HTML}\r\nCookie: theme=dark; {cookie}\r\n");
    let back = get(&r, "/cart?item=1", ip, &with).await;
    assert_eq!(back.status, 200, "{}", back.text());
    assert_eq!(origin.received.lock().unwrap().len(), 1);
    // ...but is no pass past a block rule after the challenge.
    assert_eq!(get(&r, "/admin", ip, &with).await.status, 403);
    assert!(get(&r, "/admin", ip, &with).await.text().contains("1020"));
    // The same solution again: solved already.
    let replay = post_solution(&r, &html, &n, ip, BROWSER).await;
    assert_eq!(replay.status, 403);
    // Another address, another User-Agent, an altered cookie: challenged.
    assert_eq!(get(&r, "/cart", "192.0.2.11", &with).await.status, 403);
    let other_ua = format!(
        "GET /cart HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: curl/8.11\r\nX-Forwarded-For: {ip}\r\nAccept: {HTML}\r\nCookie: {cookie}\r\n\r\n"
    );
    assert_eq!(r.request(other_ua.as_bytes()).await.0.status, 403);
    let mut forged = cookie.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    let forged_try = get(
        &r,
        "/cart",
        ip,
        &format!("Accept: {HTML}\r\nCookie: {forged}\r\n"),
    )
    .await;
    assert_eq!(forged_try.status, 403);
    // A solution posted from elsewhere earns nothing.
    let page2 = get(&r, "/", ip, &format!("Accept: {HTML}\r\n"))
        .await
        .text();
    let stolen = post_solution(&r, &page2, &solve(&page2), "198.51.100.1", BROWSER).await;
    assert_eq!(stolen.status, 403);

    // Each refusal's reason is in the log.
    let lines = r.log_lines(12).await;
    let reasons: Vec<String> = lines
        .iter()
        .map(|l| l["ErrorReason"].as_str().unwrap_or("").to_string())
        .collect();
    for expected in [
        "challenge refused: the counter does not solve the challenge",
        "challenge solved in 12 ms",
        "challenge refused: the challenge was solved already",
        "clearance refused: it was issued to another client address",
        "clearance refused: it was issued to another User-Agent",
        "clearance refused: its signature does not verify",
        "challenge refused: it was issued to another client address",
    ] {
        assert!(
            reasons.iter().any(|r| r.starts_with(expected)),
            "{expected} not in {reasons:#?}"
        );
    }
    let challenged = lines
        .iter()
        .find(|l| l["SecurityAction"] == "js_challenge")
        .expect("a challenged request in the log");
    assert_eq!(challenged["SecurityRuleID"], "everyone");
    assert_eq!(challenged["EdgeResponseStatus"], 403);
}

#[tokio::test]
async fn clients_that_do_not_ask_for_html_get_the_problem_not_the_page() {
    let (r, _origin) = shop(CHALLENGE_ALL, "").await;
    for accept in [
        "Accept: application/json\r\n",
        "Accept: */*\r\n",
        "",
        "Accept: text/html;q=0, */*\r\n",
    ] {
        let resp = get(&r, "/api/items", "192.0.2.20", accept).await;
        assert_eq!(resp.status, 403, "{accept}");
        assert_eq!(
            resp.header("rampart-mitigated").as_deref(),
            Some("challenge")
        );
        let ct = resp.header("content-type").unwrap();
        assert!(
            ct == "application/json" || ct == "application/problem+json",
            "{accept}: {ct}"
        );
        let problem = resp.json();
        assert_eq!(problem["status"], 403);
        assert!(
            problem["type"].as_str().unwrap().ends_with("challenge"),
            "{problem}"
        );
        assert!(!resp.text().contains("data-token"));
    }
    // Over HTTP/1.0 and with HEAD too.
    let raw = "HEAD / HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: x\r\nAccept: text/html\r\n\r\n";
    let head = r.request(raw.as_bytes()).await.0;
    assert_eq!(head.status, 403);
    assert!(head.body.is_empty());
}

#[tokio::test]
async fn feeds_robots_well_known_and_favicon_pass_but_their_look_alikes_do_not() {
    let (r, _origin) = shop(CHALLENGE_ALL, "").await;
    let ip = "192.0.2.30";
    for path in [
        "/robots.txt",
        "/favicon.ico",
        "/.well-known/security.txt",
        "/feed",
        "/blog/feed/",
        "/index.xml",
        "/news.rss",
        "/posts.atom",
    ] {
        assert_eq!(get(&r, path, ip, "").await.status, 200, "{path}");
    }
    // Claiming to want a feed opens nothing by default: any client can say so.
    assert_eq!(
        get(&r, "/some/page", ip, "Accept: application/rss+xml\r\n")
            .await
            .status,
        403
    );
    for path in [
        "/ROBOTS.TXT",
        "/robots.txt.bak",
        "/.well-known/../admin",
        "/.well-known/%2e%2e/cart",
        "/admin;.rss",
        "/cart;x=/feed",
        "//robots.txt/../cart",
        "/wp-login.php/feed",
        "/.well-known/..;/admin",
        "/.well-known/..%5Cadmin",
        "/.well-known/%2e%2e%2fadmin",
        "/robots.txt;jsessionid=1",
    ] {
        assert_eq!(get(&r, path, ip, "").await.status, 403, "{path}");
    }
    // A feed Accept beside HTML is a browser: challenged.
    assert_eq!(
        get(
            &r,
            "/page",
            ip,
            "Accept: text/html, application/rss+xml\r\n"
        )
        .await
        .status,
        403
    );
    // And the exemptions can be turned off.
    let (strict, _o) = shop(
        "[zone.challenge]\ndifficulty = 8\nexempt = [\"favicon.ico\"]\n[[zone.custom_rule]]\nexpression = 'true'\naction = \"managed_challenge\"\n",
        "",
    )
    .await;
    assert_eq!(get(&strict, "/robots.txt", ip, "").await.status, 403);
    assert_eq!(get(&strict, "/feed", ip, "").await.status, 403);
    assert_eq!(get(&strict, "/favicon.ico", ip, "").await.status, 200);
    // The feed Accept is an opt-in.
    let (readers, _o) = shop(
        "[zone.challenge]\nexempt = [\"feed_accept\"]\n[[zone.custom_rule]]\nexpression = 'true'\naction = \"js_challenge\"\n",
        "",
    )
    .await;
    let feed = "Accept: application/atom+xml\r\n";
    assert_eq!(get(&readers, "/blog/posts", ip, feed).await.status, 200);
    let raw = format!(
        "POST /blog/posts HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: x\r\n{feed}Content-Length: 0\r\n\r\n"
    );
    assert_eq!(
        readers.request(raw.as_bytes()).await.0.status,
        403,
        "only GET and HEAD"
    );
}

/// The endpoint gives out a challenge of the kind the refused one was: asking it for the
/// waiting path does not turn a JS challenge into a managed one.
#[tokio::test]
async fn the_waiting_path_cannot_be_asked_for() {
    let (r, _origin) = shop(CHALLENGE_ALL, "").await;
    let ip = "192.0.2.31";
    let html = format!("Accept: {HTML}\r\n");
    let page = get(&r, "/cdn-cgi/rampart/challenge?n=wait&r=/", ip, &html).await;
    assert_eq!(page.status, 403);
    assert!(page.text().contains("data-token") && !page.text().contains("http-equiv"));
    // Nor with a real JS challenge's token.
    let js = get(&r, "/", ip, &html).await.text();
    let url = format!(
        "/cdn-cgi/rampart/challenge?t={}&n=wait&r=%2F",
        field(&js, "t")
    );
    let again = get(&r, &url, ip, &html).await;
    assert_eq!(again.status, 403);
    assert!(!again.text().contains("http-equiv"));
    assert!(again.text().contains("data-retry=\"1\""));
}

#[tokio::test]
async fn the_security_level_challenges_by_threat_score_and_rules_see_it() {
    let dir = TempDir::new("threats");
    std::fs::write(
        dir.join("bad.netset"),
        "# FireHOL-style\n203.0.113.0/24\n2001:db8:bad::/48 # comment\n",
    )
    .unwrap();
    std::fs::write(dir.join("meh.txt"), "198.51.100.7\n").unwrap();
    std::fs::write(dir.join("good.txt"), "192.0.2.99\n").unwrap();
    let rest = format!(
        "[[threat_list]]\npath = \"{}\"\nscore = 60\n\n[[threat_list]]\npath = \"{}\"\nscore = 10\n\n[[threat_list]]\npath = \"{}\"\nscore = 0\n",
        dir.join("bad.netset").display(),
        dir.join("meh.txt").display(),
        dir.join("good.txt").display()
    );
    let rules = "security_level = \"medium\"\n[zone.challenge]\ndifficulty = 8\n[[zone.custom_rule]]\nid = \"score\"\nexpression = 'cf.threat_score ge 50 and http.request.uri.path eq \"/blocked\"'\naction = \"block\"\n[[zone.custom_rule]]\nid = \"managed\"\nexpression = 'http.request.uri.path eq \"/managed\"'\naction = \"managed_challenge\"\n";
    let (r, _origin) = shop(rules, &rest).await;
    let html = format!("Accept: {HTML}\r\n");
    // 60 > 14: challenged; 10 is not; unknown is 0.
    let bad = get(&r, "/", "203.0.113.5", &html).await;
    assert_eq!(bad.status, 403);
    assert!(bad.text().contains("data-token"));
    assert_eq!(get(&r, "/", "2001:db8:bad:1::5", &html).await.status, 403);
    assert_eq!(get(&r, "/", "198.51.100.7", &html).await.status, 200);
    assert_eq!(get(&r, "/", "192.0.2.1", &html).await.status, 200);
    // cf.threat_score in a rule.
    assert!(
        get(&r, "/blocked", "203.0.113.5", &html)
            .await
            .text()
            .contains("1020")
    );
    assert_eq!(get(&r, "/blocked", "198.51.100.7", &html).await.status, 200);
    // A managed challenge lets a good reputation (a list of score 0) through without work.
    assert_eq!(get(&r, "/managed", "192.0.2.99", &html).await.status, 200);
    assert_eq!(get(&r, "/managed", "192.0.2.1", &html).await.status, 403);
    let lines = r.log_lines(4).await;
    assert!(
        lines
            .iter()
            .any(|l| l["SecurityAction"] == "managed_challenge"
                && l["SecuritySources"].to_string().contains("securitylevel"))
    );
}

#[tokio::test]
async fn under_attack_challenges_everyone_without_a_clearance_and_the_wait_path_works() {
    let (r, origin) = shop(
        "security_level = \"under_attack\"\n[zone.challenge]\ndifficulty = 8\nno_script_wait = 1\n[[zone.custom_rule]]\nexpression = 'http.request.uri.path eq \"/m\"'\naction = \"managed_challenge\"\n",
        "",
    )
    .await;
    let ip = "192.0.2.40";
    let html = format!("Accept: {HTML}\r\n");
    let page = get(&r, "/", ip, &html).await.text();
    assert!(
        !page.contains("http-equiv"),
        "a JS challenge has no waiting path"
    );
    let solved = post_solution(&r, &page, &solve(&page), ip, BROWSER).await;
    assert_eq!(solved.status, 303);
    let cookie = clearance(&solved);
    assert_eq!(
        get(&r, "/", ip, &format!("{html}Cookie: {cookie}\r\n"))
            .await
            .status,
        200
    );
    assert_eq!(origin.received.lock().unwrap().len(), 1);

    // A managed challenge's page without JavaScript: wait, then follow the refresh.
    let managed = get(&r, "/m", "192.0.2.41", &html).await.text();
    let at = managed.find("url=").unwrap() + 4;
    let url = managed[at..at + managed[at..].find('"').unwrap()].replace("&amp;", "&");
    let follow = format!(
        "GET {url} HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: {BROWSER}\r\nX-Forwarded-For: 192.0.2.41\r\nAccept: {HTML}\r\n\r\n"
    );
    assert_eq!(
        r.request(follow.as_bytes()).await.0.status,
        403,
        "too early"
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let passed = r.request(follow.as_bytes()).await.0;
    assert_eq!(passed.status, 303, "{}", passed.text());
    assert_eq!(passed.header("location").as_deref(), Some("/m"));
}

#[tokio::test]
async fn a_rate_limit_can_challenge_instead_of_blocking() {
    let (r, _origin) = shop(
        "[zone.challenge]\ndifficulty = 8\n[[zone.rate_limit]]\nexpression = 'true'\ncharacteristics = [\"ip.src\"]\nperiod = 10\nrequests_per_period = 2\naction = \"managed_challenge\"\n",
        "",
    )
    .await;
    let html = format!("Accept: {HTML}\r\n");
    assert_eq!(get(&r, "/", "192.0.2.50", &html).await.status, 200);
    assert_eq!(get(&r, "/", "192.0.2.50", &html).await.status, 200);
    let over = get(&r, "/", "192.0.2.50", &html).await;
    assert_eq!(over.status, 403);
    let page = over.text();
    let solved = post_solution(&r, &page, &solve(&page), "192.0.2.50", BROWSER).await;
    let cookie = clearance(&solved);
    assert_eq!(
        get(
            &r,
            "/",
            "192.0.2.50",
            &format!("{html}Cookie: {cookie}\r\n")
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn the_browser_integrity_check_refuses_what_no_real_client_sends() {
    let (r, _origin) = shop(
        "browser_integrity_check = true\n[[zone.custom_rule]]\nexpression = 'starts_with(http.request.uri.path, \"/hooks/\")'\naction = \"skip\"\nskip = [\"bic\"]\n",
        "",
    )
    .await;
    let raw = |head: &str| format!("GET /x HTTP/1.1\r\nHost: shop.test\r\n{head}\r\n");
    for (head, why) in [
        ("", "no User-Agent"),
        ("User-Agent: \r\n", "empty"),
        (
            "User-Agent: sqlmap/1.8#stable\r\nAccept: */*\r\n",
            "attack tool",
        ),
        (
            "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36\r\n",
            "browser without Accept",
        ),
    ] {
        let resp = r.request(raw(head).as_bytes()).await.0;
        assert_eq!(resp.status, 403, "{why}");
        assert!(resp.text().contains("1010"), "{why}: {}", resp.text());
    }
    for head in [
        "User-Agent: curl/8.11.0\r\nAccept: */*\r\n",
        "User-Agent: python-requests/2.32\r\n",
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36\r\nAccept: */*\r\n",
    ] {
        assert_eq!(
            r.request(raw(head).as_bytes()).await.0.status,
            200,
            "{head}"
        );
    }
    // A skip rule turns it off where it matches.
    let raw = "GET /hooks/github HTTP/1.1\r\nHost: shop.test\r\n\r\n";
    assert_eq!(r.request(raw.as_bytes()).await.0.status, 200);
    let line = r
        .log_lines(8)
        .await
        .into_iter()
        .find(|l| l["SecuritySources"].to_string().contains("bic"))
        .unwrap();
    assert_eq!(line["SecurityRuleID"], "no_user_agent");
}

/// An IP access rule may challenge instead of blocking: a block rule still wins, and the
/// endpoint stays open to the challenged client so that it can earn its clearance.
#[tokio::test]
async fn ip_access_rules_can_challenge_a_range() {
    let (r, _origin) = shop(
        "[zone.challenge]\ndifficulty = 8\n[[zone.ip_access_rule]]\nid = \"suspect\"\ntarget = \"ip_range\"\nvalue = \"203.0.113.0/24\"\nmode = \"js_challenge\"\n[[zone.ip_access_rule]]\ntarget = \"ip\"\nvalue = \"203.0.113.66\"\nmode = \"block\"\n",
        "",
    )
    .await;
    let html = format!("Accept: {HTML}\r\n");
    assert_eq!(get(&r, "/", "192.0.2.1", &html).await.status, 200);
    let blocked = get(&r, "/", "203.0.113.66", &html).await;
    assert_eq!(blocked.status, 403);
    assert!(blocked.text().contains("1006"));
    let page = get(&r, "/", "203.0.113.5", &html).await;
    assert_eq!(page.status, 403);
    let page = page.text();
    let solved = post_solution(&r, &page, &solve(&page), "203.0.113.5", BROWSER).await;
    assert_eq!(solved.status, 303, "{}", solved.text());
    let cookie = clearance(&solved);
    assert_eq!(
        get(
            &r,
            "/",
            "203.0.113.5",
            &format!("{html}Cookie: {cookie}\r\n")
        )
        .await
        .status,
        200
    );
    let line = r
        .log_lines(5)
        .await
        .into_iter()
        .find(|l| l["SecurityAction"] == "js_challenge")
        .unwrap();
    assert_eq!(line["SecurityRuleID"], "suspect");
}
