//! The analytics API over the admin listener: traffic sent to the edge over HTTP/1.1 and
//! HTTP/2 shows up, per zone, in the series, totals, top lists and security events; tokens
//! without `analytics:read`, unknown zones and bad parameters are refused.

mod common;

use common::http2::{self, h2c};
use common::{Behaviour, Client, Origin, Rampart};

const READER: &str = "rampart_analytics_reader";
const OTHER: &str = "rampart_zone_reader_only";

fn config(origin: std::net::SocketAddr) -> String {
    let hash = |t: &str| rampart::text::hex(&rampart::admin::auth::sha256(t.as_bytes()));
    format!(
        "[[zone]]\nname = \"example.test\"\nhosts = [\"example.test\"]\norigin = \"http://{origin}\"\n\n\
         [[zone.custom_rule]]\nid = \"no-admin\"\nexpression = 'starts_with(http.request.uri.path, \"/admin\")'\naction = \"block\"\n\n\
         [[zone]]\nname = \"other.test\"\nhosts = [\"other.test\"]\norigin = \"http://{origin}\"\n\n\
         [[api_token]]\nname = \"reader\"\nsha256 = \"{}\"\nscopes = [\"analytics:read\"]\n\n\
         [[api_token]]\nname = \"zones\"\nsha256 = \"{}\"\nscopes = [\"zone:read\"]\n",
        hash(READER),
        hash(OTHER)
    )
}

async fn api(rampart: &Rampart, path: &str, token: &str) -> common::Response {
    let mut c = Client::connect(rampart.admin.unwrap()).await;
    c.send(
        format!("GET {path} HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {token}\r\n\r\n")
            .as_bytes(),
    )
    .await;
    c.response(false).await
}

async fn edge(rampart: &Rampart, host: &str, path: &str) -> u16 {
    let mut c = Client::connect(rampart.addr).await;
    c.send(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: probe/1\r\n\r\n").as_bytes(),
    )
    .await;
    c.response(false).await.status
}

#[tokio::test]
async fn edge_traffic_shows_up_per_zone_by_status_with_tops_and_security_events() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start_zones("", &config(origin.addr)).await;
    for _ in 0..5 {
        assert_eq!(edge(&rampart, "example.test", "/").await, 200);
    }
    // The rule's spellings: each is blocked and each is a security event.
    for path in ["/admin", "/admin/users", "/admin?x=1"] {
        assert_eq!(edge(&rampart, "example.test", path).await, 403);
    }
    assert_eq!(edge(&rampart, "other.test", "/").await, 200);
    let mut h2 = h2c(rampart.addr).await;
    let r = http2::send(&mut h2, http2::get("http://example.test/h2"), None).await;
    assert_eq!(r.status, 200);

    let path = "/client/v4/zones/example.test/analytics?group_by=status";
    let r = api(&rampart, path, READER).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let result = &r.json()["result"];
    assert_eq!(result["totals"]["requests"], 9, "{result}");
    // The last hour by minute: 61 buckets unless now is a whole minute (both ends partial).
    let buckets = result["series"].as_array().unwrap().len();
    assert!((60..=61).contains(&buckets), "{buckets}");
    let mut by_status = std::collections::BTreeMap::new();
    for bucket in result["series"].as_array().unwrap() {
        for (status, n) in bucket["requests"].as_object().unwrap() {
            *by_status.entry(status.clone()).or_insert(0) += n.as_u64().unwrap();
        }
    }
    assert_eq!(by_status["200"], 6);
    assert_eq!(by_status["403"], 3);
    assert_eq!(result["top"]["paths"][0]["value"], "/", "{result}");
    assert_eq!(result["top"]["paths"][0]["count"], 5);
    assert_eq!(result["top"]["rule_ids"][0]["value"], "no-admin");
    assert_eq!(result["top"]["rule_ids"][0]["count"], 3);
    assert_eq!(result["top"]["user_agents"][0]["value"], "probe/1");
    let events = result["security_events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["source"], "firewallCustom");
    assert_eq!(events[0]["action"], "block");
    assert_eq!(events[0]["status"], 403);

    // By security source and by edge error code.
    let r = api(
        &rampart,
        "/client/v4/zones/example.test/analytics?group_by=code&step=1h",
        READER,
    )
    .await;
    let series = r.json()["result"]["series"].clone();
    let hours: Vec<&str> = series
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["time"].as_str().unwrap())
        .collect();
    assert!(hours.iter().all(|t| t.ends_with(":00:00.000Z")), "{series}");
    let now = series.as_array().unwrap().last().unwrap();
    assert_eq!(now["requests"]["1020"], 3, "{series}");
    assert_eq!(now["requests"]["0"], 6, "{series}");

    // The other zone sees its own request only.
    let r = api(&rampart, "/client/v4/zones/other.test/analytics", READER).await;
    assert_eq!(r.json()["result"]["totals"]["requests"], 1);
}

#[tokio::test]
async fn scopes_zones_and_parameters_are_checked() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start_zones("", &config(origin.addr)).await;
    let r = api(&rampart, "/client/v4/zones/example.test/analytics", OTHER).await;
    assert_eq!(r.status, 403);
    let r = api(&rampart, "/client/v4/zones/nope.test/analytics", READER).await;
    assert_eq!(r.status, 404);
    for bad in ["group_by=path", "step=30s", "since=tomorrow", "since=0"] {
        let r = api(
            &rampart,
            &format!("/client/v4/zones/example.test/analytics?{bad}"),
            READER,
        )
        .await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.json()["success"], false);
        assert_eq!(r.json()["errors"][0]["code"], 1004, "{bad}");
    }
}

/// With `[analytics] data_dir`, what was counted is there again after a restart.
#[tokio::test]
async fn counts_survive_a_restart_with_a_data_dir() {
    let origin = Origin::start(Behaviour::Echo).await;
    let dir = common::TempDir::new("analytics");
    let server = format!("[analytics]\ndata_dir = \"{}\"\n", dir.path().display());
    let config = format!("{server}\n{}", config(origin.addr));
    let mut rampart = Rampart::start_zones("", &config).await;
    for path in ["/", "/a", "/admin"] {
        edge(&rampart, "example.test", path).await;
    }
    rampart.server.take().unwrap().shutdown().await;
    assert!(dir.path().join("analytics.sqlite").exists());
    let rampart = Rampart::start_zones("", &config).await;
    let r = api(&rampart, "/client/v4/zones/example.test/analytics", READER).await;
    let result = &r.json()["result"];
    assert_eq!(result["totals"]["requests"], 3, "{result}");
    assert_eq!(result["security_events"][0]["rule_id"], "no-admin");
}
