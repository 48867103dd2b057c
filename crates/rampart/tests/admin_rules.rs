//! Custom rules through the management API: each change is checked by the configuration's
//! loader, kept in the file with its comments, in force for the next request (HTTP/1.1 and
//! HTTP/2), written to the audit log, and refused with 412 when `If-Match` is stale.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::http2::{self, h2c};
use common::{Behaviour, Client, Origin, Rampart};
use rampart::listen::Server;
use rampart::observe::{AccessLog, Metrics};
use serde_json::{Value, json};

const TOKEN: &str = "rampart_editor_secret";

struct Site {
    rampart: Rampart,
    file: PathBuf,
    audit: PathBuf,
    _origin: Origin,
    _dir: common::TempDir,
}

/// rampart started from a file (the API needs one to keep changes in).
async fn site(rules: &str) -> Site {
    let origin = Origin::start(Behaviour::Echo).await;
    let dir = common::TempDir::new("rules");
    let file = dir.join("site.toml");
    let hash = rampart::text::hex(&rampart::admin::auth::sha256(TOKEN.as_bytes()));
    let text = format!(
        "# the site's configuration\n[server]\nlisten = [\"127.0.0.1:0\"]\nadmin_listen = \"127.0.0.1:0\"\naccess_log = \"off\"\naudit_log = \"changes.jsonl\"\n\n\
         [[zone]]\nname = \"example.test\"\nhosts = [\"example.test\"]\norigin = \"http://{0}\"\n\n{rules}\n\
         [[zone]]\nname = \"other.test\"\nhosts = [\"other.test\"]\norigin = \"http://{0}\"\n\n\
         # who may change it\n[[api_token]]\nname = \"editor\"\nsha256 = \"{hash}\"\nscopes = [\"firewall:read\", \"firewall:edit\", \"zone:read\", \"zone:edit\"]\n",
        origin.addr
    );
    std::fs::write(&file, common::without_bic(&text)).unwrap();
    let loaded = rampart::config::load_file(&file).unwrap();
    let metrics = Arc::new(Metrics::new());
    let log = AccessLog::start(&loaded.config.server.access_log, &[], metrics.clone()).unwrap();
    let server = Server::start(loaded.config, log, metrics).await.unwrap();
    Site {
        rampart: Rampart {
            addr: server.local_addrs[0],
            admin: server.admin_addr,
            server: Some(server),
            log_path: dir.join("none.log"),
        },
        audit: dir.join("changes.jsonl"),
        file,
        _origin: origin,
        _dir: dir,
    }
}

/// A call to the API with the editor's token: the response.
async fn api(
    site: &Site,
    method: &str,
    path: &str,
    body: Option<Value>,
    if_match: Option<&str>,
) -> common::Response {
    let mut c = Client::connect(site.rampart.admin.unwrap()).await;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let precondition = if_match.map_or(String::new(), |t| format!("If-Match: {t}\r\n"));
    let raw = format!(
        "{method} /client/v4/zones/example.test{path} HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {TOKEN}\r\n{precondition}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.send(raw.as_bytes()).await;
    c.response(false).await
}

async fn status_of(site: &Site, path: &str) -> u16 {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: example.test\r\n\r\n");
    site.rampart.request(raw.as_bytes()).await.0.status
}

async fn h2_status_of(site: &Site, path: &str) -> u16 {
    let mut h2 = h2c(site.rampart.addr).await;
    let uri = format!("http://example.test{path}");
    http2::send(&mut h2, http2::get(&uri), None)
        .await
        .status
        .as_u16()
}

#[tokio::test]
async fn a_rule_created_through_the_api_blocks_the_next_request_and_is_kept_in_the_file() {
    let site = site("").await;
    assert_eq!(status_of(&site, "/admin/x").await, 200);

    let rule = json!({
        "id": "no-admin",
        "description": "keep /admin private",
        "expression": "starts_with(http.request.uri.path, \"/admin\")",
        "action": "block",
    });
    let r = api(&site, "POST", "/custom_rules", Some(rule), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"][0]["id"], "no-admin");

    // In force for the next request, over both protocols, in every spelling the rule covers.
    for path in ["/admin/x", "/%61dmin/x", "/./admin/x", "//admin/x"] {
        assert_eq!(status_of(&site, path).await, 403, "{path}");
    }
    assert_eq!(h2_status_of(&site, "/admin/x").await, 403);
    assert_eq!(status_of(&site, "/public").await, 200);
    // The rule is the zone's it was made for, not the next zone's in the file.
    let other = b"GET /admin/x HTTP/1.1\r\nHost: other.test\r\n\r\n";
    assert_eq!(site.rampart.request(other).await.0.status, 200);

    // Kept in the file, comments and all, and valid as it stands.
    let text = std::fs::read_to_string(&site.file).unwrap();
    assert!(text.starts_with("# the site's configuration\n"), "{text}");
    assert!(text.contains("# who may change it"), "{text}");
    assert!(text.contains("[[zone.custom_rule]]"), "{text}");
    assert!(text.contains("id = \"no-admin\""), "{text}");
    rampart::config::load_file(&site.file).unwrap();

    // The audit log says who did what, before and after.
    let audit = std::fs::read_to_string(&site.audit).unwrap();
    let line: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(line["who"], "editor");
    assert_eq!(line["what"], "custom rule created");
    assert_eq!(line["before"], Value::Null);
    assert_eq!(line["after"]["id"], "no-admin");

    // Deleted: the path is served again.
    let r = api(&site, "DELETE", "/custom_rules/no-admin", None, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(status_of(&site, "/admin/x").await, 200);
    assert!(
        !std::fs::read_to_string(&site.file)
            .unwrap()
            .contains("no-admin")
    );
}

#[tokio::test]
async fn a_bad_expression_is_refused_with_the_loaders_caret_and_a_pointer_and_changes_nothing() {
    let site = site("").await;
    let before = std::fs::read_to_string(&site.file).unwrap();
    let rule = json!({"expression": "http.request.uri.path eq", "action": "block"});
    let r = api(&site, "POST", "/custom_rules", Some(rule), None).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let error = &r.json()["errors"][0];
    assert_eq!(error["code"], 1004);
    assert_eq!(error["source"]["pointer"], "/expression");
    assert!(error["message"].as_str().unwrap().contains('^'), "{error}");
    let r = api(
        &site,
        "POST",
        "/custom_rules",
        Some(json!({"expression": "true", "action": "explode"})),
        None,
    )
    .await;
    assert_eq!(r.json()["errors"][0]["source"]["pointer"], "/action");
    let r = api(
        &site,
        "POST",
        "/custom_rules",
        Some(json!({"expresion": "true", "action": "block"})),
        None,
    )
    .await;
    let j = r.json();
    let pointers: Vec<&str> = j["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["source"]["pointer"].as_str())
        .collect();
    assert!(pointers.contains(&"/expresion"), "{pointers:?}");
    assert_eq!(std::fs::read_to_string(&site.file).unwrap(), before);
    assert!(!site.audit.exists());
}

#[tokio::test]
async fn if_match_protects_against_a_lost_update_and_rules_can_be_replaced_and_reordered() {
    let site = site(
        "# blocks /a\n[[zone.custom_rule]]\nexpression = 'http.request.uri.path eq \"/a\"' # by its place\naction = \"block\"\n\n\
         [[zone.custom_rule]]\nid = \"skip-b\"\nexpression = 'http.request.uri.path eq \"/b\"'\naction = \"skip\"\n",
    )
    .await;
    let r = api(&site, "GET", "/custom_rules", None, None).await;
    assert_eq!(r.status, 200);
    let tag = r.header("etag").unwrap();
    let ids: Vec<String> = r.json()["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["custom_rule.1", "skip-b"]);

    // Someone else changes the list: a write with the old tag gets 412 and the current tag.
    let other = json!({"expression": "http.request.uri.path eq \"/b\"", "action": "block"});
    let r = api(
        &site,
        "PUT",
        "/custom_rules/skip-b",
        Some(other.clone()),
        Some(&tag),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(status_of(&site, "/b").await, 403);
    let r = api(&site, "DELETE", "/custom_rules/skip-b", None, Some(&tag)).await;
    assert_eq!(r.status, 412);
    assert_eq!(r.json()["errors"][0]["code"], 1412);
    let fresh = r.header("etag").unwrap();
    assert_ne!(fresh, tag);
    assert_eq!(status_of(&site, "/b").await, 403, "nothing changed");

    // Reorder with the fresh tag; a rule without an id in the file keeps its implicit one.
    let order = json!({"order": ["skip-b", "custom_rule.1"]});
    let r = api(&site, "PUT", "/custom_rules", Some(order), Some(&fresh)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let ids: Vec<&str> = j["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["skip-b", "custom_rule.1"]);
    // The rules it did not rewrite keep their text, comments included; the moved one is
    // named by its old place now, so its name does not change.
    let text = std::fs::read_to_string(&site.file).unwrap();
    assert!(text.contains("# blocks /a\n"), "{text}");
    assert!(text.contains("# by its place"), "{text}");
    assert!(text.contains("id = \"custom_rule.1\""), "{text}");
    let audit = std::fs::read_to_string(&site.audit).unwrap();
    let line: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(line["before"], json!(["custom_rule.1", "skip-b"]));
    assert_eq!(line["after"], json!(["skip-b", "custom_rule.1"]));
    let r = api(
        &site,
        "PUT",
        "/custom_rules",
        Some(json!({"order": ["skip-b"]})),
        None,
    )
    .await;
    assert_eq!(r.status, 400, "an order that leaves a rule out");
    assert_eq!(
        api(&site, "DELETE", "/custom_rules/nope", None, None)
            .await
            .status,
        404
    );
    assert_eq!(status_of(&site, "/a").await, 403);
    assert_eq!(status_of(&site, "/b").await, 403);
}

#[tokio::test]
async fn the_embedded_default_has_no_file_to_keep_changes_in() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start(origin.addr).await;
    let mut c = Client::connect(rampart.admin.unwrap()).await;
    let body = r#"{"expression": "true", "action": "block"}"#;
    let raw = format!(
        "POST /client/v4/zones/example.test/custom_rules HTTP/1.1\r\nHost: admin\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.send(raw.as_bytes()).await;
    let r = c.response(false).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["code"], 1410);
    let raw = b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n";
    assert_eq!(rampart.request(raw).await.0.status, 200);
}

#[tokio::test]
async fn a_rate_limit_made_through_the_api_counts_from_the_next_request() {
    let site = site("").await;
    let limit = json!({
        "id": "api-burst",
        "expression": "starts_with(http.request.uri.path, \"/api\")",
        "characteristics": ["ip.src"],
        "period": 10,
        "requests_per_period": 2,
        "mitigation_timeout": 0,
    });
    let r = api(&site, "POST", "/rate_limits", Some(limit), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(status_of(&site, "/api/a").await, 200);
    assert_eq!(status_of(&site, "/api/b").await, 200);
    assert_eq!(status_of(&site, "/api/c").await, 429);
    assert_eq!(status_of(&site, "/other").await, 200);
    let text = std::fs::read_to_string(&site.file).unwrap();
    assert!(text.contains("[[zone.rate_limit]]"), "{text}");
    let line: Value = serde_json::from_str(
        std::fs::read_to_string(&site.audit)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["what"], "rate limiting rule created");
    // A period the limiter does not take is the loader's error, pointed at.
    let bad = json!({"expression": "true", "characteristics": ["ip.src"], "period": 7, "requests_per_period": 2});
    let r = api(&site, "POST", "/rate_limits", Some(bad), None).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["errors"][0]["source"]["pointer"], "/period");
    let r = api(&site, "GET", "/rate_limits/api-burst", None, None).await;
    assert_eq!(r.json()["result"]["requests_per_period"], 2);
}

#[tokio::test]
async fn an_ip_access_rule_made_through_the_api_blocks_the_address_and_its_removal_lets_it_in() {
    let site = site("").await;
    assert_eq!(status_of(&site, "/").await, 200);
    let rule = json!({"id": "loopback", "target": "ip_range", "value": "127.0.0.0/8", "mode": "block", "note": "test"});
    let r = api(&site, "POST", "/ip_access_rules", Some(rule), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(status_of(&site, "/").await, 403);
    assert_eq!(h2_status_of(&site, "/").await, 403);
    // Host bits set are the loader's error, pointed at.
    let bad = json!({"target": "ip_range", "value": "10.0.0.1/8", "mode": "block"});
    let r = api(&site, "POST", "/ip_access_rules", Some(bad), None).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["errors"][0]["source"]["pointer"], "/value");
    let r = api(&site, "DELETE", "/ip_access_rules/loopback", None, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(status_of(&site, "/").await, 200);
}

#[tokio::test]
async fn url_normalisation_is_read_and_set_through_the_api_and_the_rules_see_the_change() {
    let site = site(
        "[[zone.custom_rule]]\nid = \"admin\"\nexpression = 'http.request.uri.path eq \"/admin\"'\naction = \"block\"\n",
    )
    .await;
    let r = api(&site, "GET", "/url_normalization", None, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["result"],
        json!({"type": "cloudflare", "scope": "incoming"})
    );
    // Normalised for the rules: the encoded spelling is caught.
    assert_eq!(status_of(&site, "/%61dmin").await, 403);

    let r = api(
        &site,
        "PUT",
        "/url_normalization",
        Some(json!({"scope": "none"})),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["result"],
        json!({"type": "cloudflare", "scope": "none"})
    );
    // Now the rules see the path as sent.
    assert_eq!(status_of(&site, "/%61dmin").await, 200);
    assert_eq!(status_of(&site, "/admin").await, 403);
    let text = std::fs::read_to_string(&site.file).unwrap();
    assert!(text.contains("url_normalization = {"), "{text}");

    let r = api(
        &site,
        "PUT",
        "/url_normalization",
        Some(json!({"type": "sideways"})),
        None,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["errors"][0]["source"]["pointer"], "/type");
    let r = api(
        &site,
        "PUT",
        "/url_normalization",
        Some(json!({"mode": "x"})),
        None,
    )
    .await;
    assert_eq!(r.status, 400);
    // A stale If-Match: 412, nothing changed; the current tag: done.
    let tag = api(&site, "GET", "/url_normalization", None, None)
        .await
        .header("etag")
        .unwrap();
    let stale = "\"000000000000000000000000\"";
    let r = api(
        &site,
        "PUT",
        "/url_normalization",
        Some(json!({"scope": "both"})),
        Some(stale),
    )
    .await;
    assert_eq!(r.status, 412);
    let r = api(
        &site,
        "PUT",
        "/url_normalization",
        Some(json!({"scope": "incoming"})),
        Some(&tag),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_ne!(r.header("etag").unwrap(), tag);
    let line: Value = serde_json::from_str(
        std::fs::read_to_string(&site.audit)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["what"], "URL normalisation set");
    assert_eq!(line["before"]["scope"], "none");
    assert_eq!(line["after"]["scope"], "incoming");
}

/// A call to `/client/v4{path}` with the editor's token and a raw body.
async fn api_raw(site: &Site, method: &str, path: &str, body: &str) -> common::Response {
    let mut c = Client::connect(site.rampart.admin.unwrap()).await;
    let raw = format!(
        "{method} /client/v4{path} HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.send(raw.as_bytes()).await;
    c.response(false).await
}

#[tokio::test]
async fn lists_are_written_through_the_api_used_by_rules_and_guarded_by_the_loader() {
    let site = site("").await;
    let r = api_raw(
        &site,
        "PUT",
        "/lists/office",
        r#"{"kind": "ip", "items": ["127.0.0.1"], "description": "us"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        std::fs::read_to_string(&site.file)
            .unwrap()
            .contains("[[list]]")
    );
    let rule = json!({"id": "office", "expression": "ip.src in $office", "action": "block"});
    assert_eq!(
        api(&site, "POST", "/custom_rules", Some(rule), None)
            .await
            .status,
        200
    );
    assert_eq!(status_of(&site, "/").await, 403);

    // A rule names it: deleting it is the loader's error, and nothing changes.
    let r = api_raw(&site, "DELETE", "/lists/office", "").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(status_of(&site, "/").await, 403);
    let r = api_raw(
        &site,
        "PUT",
        "/lists/office",
        r#"{"kind": "ip", "items": ["10.0.0.1/8"]}"#,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = api_raw(&site, "GET", "/lists/office", "").await;
    assert_eq!(r.json()["result"]["items"], json!(["127.0.0.1"]));

    // Lists take bodies up to 10 MB: 150,000 addresses (about 2.3 MB) pass the API's 1 MB
    // bound for other bodies; 11 MB is 413.
    let items: Vec<String> = (0..150_000u32)
        .map(|i| format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255))
        .collect();
    let big = json!({"kind": "ip", "items": items}).to_string();
    assert!(big.len() > 2 << 20);
    let r = api_raw(&site, "PUT", "/lists/office", &big).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        status_of(&site, "/").await,
        200,
        "127.0.0.1 is no longer on the list"
    );
    let huge = format!(r#"{{"kind": "ip", "items": ["{}"]}}"#, "1".repeat(11 << 20));
    let r = api_raw(&site, "PUT", "/lists/office", &huge).await;
    assert_eq!(r.status, 413);
}

/// The security level and the Browser Integrity Check, read and changed as Cloudflare's zone
/// settings: the next request feels the change, the file keeps it, and over HTTP/2 too.
#[tokio::test]
async fn zone_settings_change_the_security_level_and_the_integrity_check_live() {
    let site = site("").await;
    let r = api(&site, "GET", "/settings/security_level", None, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["result"],
        json!({"id": "security_level", "value": "medium", "editable": true})
    );
    let tag = r.header("etag").unwrap();
    assert_eq!(status_of(&site, "/").await, 200);

    let r = api(
        &site,
        "PATCH",
        "/settings/security_level",
        Some(json!({"value": "under_attack"})),
        Some(&tag),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"]["value"], "under_attack");
    // Every visitor without a clearance is challenged now, over either protocol.
    assert_eq!(status_of(&site, "/").await, 403);
    assert_eq!(h2_status_of(&site, "/").await, 403);
    let file = std::fs::read_to_string(&site.file).unwrap();
    assert!(file.contains("security_level = \"under_attack\""), "{file}");
    // The old tag is stale; a value the setting does not take is refused.
    let stale = api(
        &site,
        "PATCH",
        "/settings/security_level",
        Some(json!({"value": "low"})),
        Some(&tag),
    )
    .await;
    assert_eq!(stale.status, 412);
    for bad in [
        json!({"value": "paranoid"}),
        json!({"value": "low", "x": 1}),
        json!({"level": "low"}),
    ] {
        let r = api(
            &site,
            "PATCH",
            "/settings/security_level",
            Some(bad.clone()),
            None,
        )
        .await;
        assert_eq!(r.status, 400, "{bad}");
    }
    let r = api(
        &site,
        "PATCH",
        "/settings/security_level",
        Some(json!({"value": "medium"})),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(status_of(&site, "/").await, 200);

    // The test harness turned the check off in the file; it goes on through the API, and a
    // request without a User-Agent meets it.
    let r = api(&site, "GET", "/settings/browser_check", None, None).await;
    assert_eq!(r.json()["result"]["value"], "off");
    let r = api(
        &site,
        "PATCH",
        "/settings/browser_check",
        Some(json!({"value": "on"})),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(status_of(&site, "/").await, 403);
    assert!(
        std::fs::read_to_string(&site.file)
            .unwrap()
            .contains("browser_integrity_check = true")
    );
    let r = api(&site, "GET", "/settings/no_such", None, None).await;
    assert_eq!(r.status, 404);
}
