//! The analytics dashboard in a real browser: headless Chromium (Debian's `chromium`, which
//! scripts/test installs) loads the page from the admin listener with a token, after traffic
//! over the edge, and the numbers it shows are the analytics API's. A screenshot is saved
//! under the test output (`target/tmp/dashboard.png`).

mod common;

use common::{Behaviour, Client, Origin, Rampart};

const TOKEN: &str = "rampart_dashboard_reader";

fn config(origin: std::net::SocketAddr) -> String {
    let hash = rampart::text::hex(&rampart::admin::auth::sha256(TOKEN.as_bytes()));
    format!(
        "[[zone]]\nname = \"example.test\"\nhosts = [\"example.test\"]\norigin = \"http://{origin}\"\n\n\
         [[zone.custom_rule]]\nid = \"no-admin\"\nexpression = 'starts_with(http.request.uri.path, \"/admin\")'\naction = \"block\"\n\n\
         [[zone.rate_limit]]\nid = \"api\"\nexpression = 'starts_with(http.request.uri.path, \"/api\")'\ncharacteristics = [\"ip.src\"]\nperiod = 10\nrequests_per_period = 2\n\n\
         [[api_token]]\nname = \"dashboard\"\nsha256 = \"{hash}\"\nscopes = [\"analytics:read\", \"zone:read\"]\n"
    )
}

/// Chromium on `url`, with time for the page's requests.
fn chromium(url: &str, args: &[&str]) -> String {
    let mut all = vec!["--virtual-time-budget=8000"];
    all.extend_from_slice(args);
    common::browser::chromium(url, &all)
}

/// The text of the first element whose opening tag contains `marker`.
fn text_after(dom: &str, marker: &str) -> Option<String> {
    let at = dom.find(marker)?;
    let rest = &dom[at..];
    let start = rest.find('>')? + 1;
    let end = rest[start..].find('<')?;
    Some(rest[start..start + end].to_string())
}

/// The numbers of a table row (`<tr data-…="key">`): its cells' texts.
fn row_cells(dom: &str, marker: &str) -> Vec<String> {
    let Some(at) = dom.find(marker) else {
        return Vec::new();
    };
    let row = &dom[at..at + dom[at..].find("</tr>").unwrap()];
    row.split("<td")
        .skip(1)
        .map(|c| {
            let start = c.find('>').unwrap() + 1;
            c[start..start + c[start..].find('<').unwrap_or(0)].to_string()
        })
        .collect()
}

async fn get(rampart: &Rampart, path: &str) -> u16 {
    let mut c = Client::connect(rampart.addr).await;
    c.send(format!("GET {path} HTTP/1.1\r\nHost: example.test\r\n\r\n").as_bytes())
        .await;
    c.response(false).await.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_apis_numbers_in_a_browser() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start_zones("", &config(origin.addr)).await;
    // 200s, a firewall rule's 403s, a rate limit's 429s and 404s of the edge's own.
    for path in ["/", "/a", "/b"] {
        assert_eq!(get(&rampart, path).await, 200);
    }
    for path in ["/admin", "/admin/x"] {
        assert_eq!(get(&rampart, path).await, 403);
    }
    let api_statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(get(&rampart, "/api").await);
        }
        v
    };
    assert_eq!(api_statuses, [200, 200, 429, 429]);

    let admin = rampart.admin.unwrap();
    let url = format!("http://{admin}/#token={TOKEN}&zone=example.test");
    let dom = tokio::task::spawn_blocking({
        let url = url.clone();
        move || chromium(&url, &["--dump-dom"])
    })
    .await
    .unwrap();
    assert!(
        dom.contains("data-loaded=\"yes\""),
        "the page did not load its data: {dom}"
    );

    // The API's own answer for the same hour.
    let mut c = Client::connect(admin).await;
    c.send(
        format!(
            "GET /client/v4/zones/example.test/analytics?group_by=code HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    let api = c.response(false).await.json()["result"].clone();
    let total = api["totals"]["requests"].as_u64().unwrap();
    assert_eq!(total, 9);
    let shown = text_after(&dom, "data-total=\"requests\"").unwrap();
    assert_eq!(shown, total.to_string(), "requests shown");
    let by_code = |code: &str| -> u64 {
        api["series"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["requests"][code].as_u64())
            .sum()
    };
    // 4xx by cause: the edge's 1020 and 1015 rows hold the API's counts, with the
    // catalogue's explanation.
    let firewall = row_cells(&dom, "data-cause=\"1020\"");
    assert_eq!(firewall[0], "403", "{firewall:?}");
    assert!(firewall[1].contains("firewall rule"), "{firewall:?}");
    assert_eq!(firewall[2], by_code("1020").to_string());
    let limited = row_cells(&dom, "data-cause=\"1015\"");
    assert_eq!(limited[0], "429", "{limited:?}");
    assert_eq!(limited[2], by_code("1015").to_string());
    // Status classes add up to the total.
    let class = |c: &str| {
        row_cells(&dom, &format!("data-class=\"{c}\""))
            .get(1)
            .map_or(0, |n| n.parse::<u64>().unwrap())
    };
    assert_eq!(class("2xx"), 5);
    assert_eq!(class("4xx"), 4);
    // The top rule, and a security event per blocked request.
    assert_eq!(row_cells(&dom, "data-top=\"no-admin\"")[1], "2");
    assert_eq!(dom.matches("<tr data-ray=").count(), 4);
    assert!(dom.contains("/client/v4/zones/example.test/rate_limits/api\""));
    assert!(dom.contains("/client/v4/zones/example.test/custom_rules/no-admin\""));

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let arg = format!("--screenshot={}", shot.display());
    tokio::task::spawn_blocking(move || chromium(&url, &[&arg, "--window-size=1200,1400"]))
        .await
        .unwrap();
    assert!(
        std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000),
        "no screenshot at {}",
        shot.display()
    );
}

#[tokio::test]
async fn the_page_is_ours_with_no_outside_resources() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start_zones("", &config(origin.addr)).await;
    let mut c = Client::connect(rampart.admin.unwrap()).await;
    c.send(b"GET / HTTP/1.1\r\nHost: admin\r\n\r\n").await;
    let r = c.response(false).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").unwrap(),
        "text/html; charset=utf-8"
    );
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"));
    let page = r.text();
    for outside in ["https://", "<link", "src=", "@import", "url("] {
        assert!(!page.contains(outside), "the page refers to {outside}");
    }
    // The one `http://` is SVG's namespace name, not a resource.
    assert_eq!(
        page.matches("http://").count(),
        page.matches("http://www.w3.org/2000/svg").count()
    );
    // The catalogue is filled in.
    assert!(page.contains("\"1020\":[403,"), "{page}");
}
