//! The management API's tokens and limits, over the admin listener: 401 without a token or
//! with a bad one, 403 for a scope or zone the token lacks, 429 past 200 requests a second
//! from one IP, and tokens taking effect on reload.

mod common;

use common::{Behaviour, Client, Origin, Rampart};

const PURGER: &str = "rampart_purger_secret";
const READER: &str = "rampart_reader_secret";

fn sha256_hex(s: &str) -> String {
    rampart::text::hex(&rampart::admin::auth::sha256(s.as_bytes()))
}

fn tokens() -> String {
    format!(
        "[[api_token]]\nname = \"purger\"\nsha256 = \"{}\"\nscopes = [\"cache:purge\"]\nzones = [\"example.test\"]\n\n\
         [[api_token]]\nname = \"reader\"\nsha256 = \"{}\"\nscopes = [\"zone:read\", \"analytics:read\"]\n",
        sha256_hex(PURGER),
        sha256_hex(READER)
    )
}

fn zones(origin: std::net::SocketAddr, extra: &str) -> String {
    format!(
        "[[zone]]\nname = \"example.test\"\nhosts = [\"example.test\"]\norigin = \"http://{origin}\"\n\n\
         [[zone]]\nname = \"other.test\"\nhosts = [\"other.test\"]\norigin = \"http://{origin}\"\n\n{extra}"
    )
}

/// One request to the admin listener (a POST sends a JSON purge body): the response.
async fn call(
    rampart: &Rampart,
    method: &str,
    path: &str,
    authorization: Option<&str>,
) -> common::Response {
    call_typed(rampart, method, path, authorization, "application/json").await
}

async fn call_typed(
    rampart: &Rampart,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    content_type: &str,
) -> common::Response {
    let mut c = Client::connect(rampart.admin.unwrap()).await;
    let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    let body = if method == "POST" {
        r#"{"purge_everything": true}"#
    } else {
        ""
    };
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: admin\r\n{auth}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.send(raw.as_bytes()).await;
    c.response(false).await
}

fn code_of(r: &common::Response) -> i64 {
    r.json()["errors"][0]["code"].as_i64().unwrap_or(0)
}

#[tokio::test]
async fn tokens_decide_who_may_do_what() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start_zones("", &zones(origin.addr, &tokens())).await;
    let purge = "/client/v4/zones/example.test/purge_cache";
    let bearer = |t: &str| format!("Bearer {t}");

    // No token, another scheme, a wrong token: 401 with the Bearer challenge, code 10000.
    let r = call(&rampart, "POST", purge, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate").unwrap(),
        "Bearer realm=\"rampart\""
    );
    assert_eq!(code_of(&r), 10000);
    assert_eq!(r.json()["success"], false);
    let r = call(&rampart, "POST", purge, Some("Basic cHVyZ2VyOng=")).await;
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("invalid_request")
    );
    for wrong in [
        "rampart_purger_secreT",
        "rampart_purger_secre",
        "rampart_purger_secret ",
    ] {
        let r = call(&rampart, "POST", purge, Some(&format!("Bearer {wrong}x"))).await;
        assert_eq!(r.status, 401, "{wrong}");
        assert!(
            r.header("www-authenticate")
                .unwrap()
                .contains("invalid_token")
        );
    }

    // The purger may purge its zone, and only that.
    let r = call(&rampart, "POST", purge, Some(&bearer(PURGER))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["success"], true);
    let r = call(&rampart, "POST", purge, Some(&format!("bearer {PURGER}"))).await;
    assert_eq!(r.status, 200, "the scheme is case-insensitive");
    let other = "/client/v4/zones/other.test/purge_cache";
    let r = call(&rampart, "POST", other, Some(&bearer(PURGER))).await;
    assert_eq!(r.status, 403);
    assert_eq!(code_of(&r), 10000);
    let health = "/client/v4/zones/example.test/origin_health";
    let r = call(&rampart, "GET", health, Some(&bearer(PURGER))).await;
    assert_eq!(r.status, 403);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );

    // The reader reads every zone, and purges none.
    let r = call(&rampart, "GET", health, Some(&bearer(READER))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = call(
        &rampart,
        "GET",
        "/client/v4/zones/other.test/origin_health",
        Some(&bearer(READER)),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = call(&rampart, "POST", purge, Some(&bearer(READER))).await;
    assert_eq!(r.status, 403);

    // Verify says whose token it is.
    let r = call(
        &rampart,
        "GET",
        "/client/v4/user/tokens/verify",
        Some(&bearer(READER)),
    )
    .await;
    assert_eq!(r.status, 200);
    let result = &r.json()["result"];
    assert_eq!(result["id"], "reader");
    assert_eq!(result["status"], "active");
    assert_eq!(
        result["scopes"],
        serde_json::json!(["zone:read", "analytics:read"])
    );
    let r = call(&rampart, "GET", "/client/v4/user/tokens/verify", None).await;
    assert_eq!(r.status, 401);

    // Metrics and health need no token.
    assert_eq!(call(&rampart, "GET", "/metrics", None).await.status, 200);
    assert_eq!(call(&rampart, "GET", "/healthz", None).await.status, 200);
}

#[tokio::test]
async fn without_tokens_loopback_is_served_and_a_reload_adding_tokens_closes_the_api() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start_zones("", &zones(origin.addr, "")).await;
    let verify = "/client/v4/user/tokens/verify";
    let r = call(&rampart, "GET", verify, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"]["id"], "loopback");

    let admin = rampart.admin.unwrap();
    let src = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\naccess_log = \"off\"\nadmin_listen = \"{admin}\"\n\n{}",
        zones(origin.addr, &tokens())
    );
    let loaded = rampart::config::load_str("reload.toml", &src, None).unwrap();
    rampart.server.as_ref().unwrap().reload(loaded.config);
    let r = call(&rampart, "GET", verify, None).await;
    assert_eq!(r.status, 401);
    let r = call(&rampart, "GET", verify, Some(&format!("Bearer {PURGER}"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["result"]["id"], "purger");
}

#[tokio::test]
async fn one_ip_past_200_requests_a_second_gets_429_with_retry_after() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start_zones("", &zones(origin.addr, &tokens())).await;
    let mut c = Client::connect(rampart.admin.unwrap()).await;
    // 200 at once and 200 a second after: a burst of 2,000 is refused unless it took ten
    // seconds, so the first 429 comes at request 201 on any machine that can run the tests.
    let mut limited = None;
    for i in 0..2_000 {
        c.send(b"GET /client/v4/user/tokens/verify HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer rampart_reader_secret\r\n\r\n")
            .await;
        let r = c.response(false).await;
        if r.status == 429 {
            limited = Some((i, r));
            break;
        }
        assert_eq!(r.status, 200);
    }
    let (i, r) = limited.expect("no 429 in 2,000 requests");
    assert!(i >= 200, "refused at request {i}, within the first 200");
    assert_eq!(r.header("retry-after").unwrap(), "1");
    assert_eq!(code_of(&r), 971);
    assert_eq!(r.header("ratelimit-policy").unwrap(), "\"api\";q=200;w=1");
    assert!(r.header("ratelimit").unwrap().starts_with("\"api\";r=0;t="));
}

#[test]
fn token_create_prints_a_token_and_lines_that_let_it_in_and_the_cli_sends_it() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["token", "create", "--name", "ops", "--scope", "cache:purge"])
        .args(["--zone", "example.test"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (token, lines) = stdout.split_once('\n').unwrap();
    assert!(
        token.starts_with("rampart_") && token.len() == 8 + 64,
        "{token}"
    );
    assert!(!lines.contains(token), "the lines hold only the hash");
    assert!(lines.contains(&sha256_hex(token)), "{lines}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (_origin, rampart) = runtime.block_on(async {
        let origin = Origin::start(Behaviour::Echo).await;
        let rampart = Rampart::start_zones("", &zones(origin.addr, lines)).await;
        (origin, rampart)
    });
    let config = std::env::temp_dir().join(format!("rampart-token-{}.toml", fastrand::u64(..)));
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:1\"]\nadmin_listen = \"{}\"\n[[zone]]\nname = \"example.test\"\nhosts = [\"example.test\"]\norigin = \"http://127.0.0.1:1\"\n",
            rampart.admin.unwrap()
        ),
    )
    .unwrap();
    let purge = |token: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rampart"));
        cmd.args(["cache", "purge", "-c", config.to_str().unwrap()])
            .args(["--zone", "example.test", "--everything"])
            .env_remove("RAMPART_API_TOKEN");
        if let Some(t) = token {
            cmd.env("RAMPART_API_TOKEN", t);
        }
        cmd.output().unwrap()
    };
    let refused = purge(None);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Authentication error"),
        "{refused:?}"
    );
    let done = purge(Some(token));
    assert!(done.status.success(), "{done:?}");
    assert_eq!(
        String::from_utf8_lossy(&done.stdout),
        "purged 0 objects of zone example.test\n"
    );
    drop(rampart);
    let _ = std::fs::remove_file(config);
}

#[tokio::test]
async fn zones_are_listed_by_page_for_what_the_token_covers_and_mistakes_get_the_envelope() {
    let origin = Origin::start(Behaviour::Echo).await;
    let mut extra = tokens();
    extra.push_str(&format!(
        "\n[[api_token]]\nname = \"one-zone\"\nsha256 = \"{}\"\nscopes = [\"zone:read\"]\nzones = [\"other.test\"]\n",
        sha256_hex("rampart_one_zone")
    ));
    extra.push_str(&format!(
        "\n[[api_token]]\nname = \"zone-editor\"\nsha256 = \"{}\"\nscopes = [\"firewall:read\", \"firewall:edit\"]\nzones = [\"example.test\"]\n",
        sha256_hex("rampart_zone_editor")
    ));
    let rampart = Rampart::start_zones("", &zones(origin.addr, &extra)).await;
    let reader = format!("Bearer {READER}");

    let r = call(&rampart, "GET", "/client/v4/zones", Some(&reader)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let names: Vec<&str> = j["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["example.test", "other.test"]);
    assert_eq!(j["result_info"]["total_count"], 2);
    assert_eq!(j["result_info"]["per_page"], 20);
    // per_page is at least 5: page 2 of 5 a page is empty.
    let r = call(
        &rampart,
        "GET",
        "/client/v4/zones?page=2&per_page=1",
        Some(&reader),
    )
    .await;
    let j = r.json();
    assert_eq!(j["result_info"]["per_page"], 5);
    assert_eq!(j["result_info"]["count"], 0);
    assert_eq!(j["result_info"]["total_pages"], 1);
    let r = call(&rampart, "GET", "/client/v4/zones?page=two", Some(&reader)).await;
    assert_eq!(r.status, 400);

    // A token for one zone sees one zone, and not the other's details.
    let one = "Bearer rampart_one_zone";
    let r = call(&rampart, "GET", "/client/v4/zones", Some(one)).await;
    assert_eq!(r.json()["result"][0]["name"], "other.test");
    assert_eq!(r.json()["result_info"]["total_count"], 1);
    assert_eq!(
        call(&rampart, "GET", "/client/v4/zones/other.test", Some(one))
            .await
            .status,
        200
    );
    assert_eq!(
        call(&rampart, "GET", "/client/v4/zones/example.test", Some(one))
            .await
            .status,
        403
    );
    let r = call(
        &rampart,
        "GET",
        "/client/v4/zones/example.test",
        Some(&reader),
    )
    .await;
    assert_eq!(
        r.json()["result"]["hosts"],
        serde_json::json!(["example.test"])
    );
    let r = call(
        &rampart,
        "GET",
        "/client/v4/zones/nowhere.test",
        Some(&reader),
    )
    .await;
    assert_eq!((r.status, code_of(&r)), (404, 7003));

    // Lists belong to every zone: a token for one zone may not change them.
    let editor = "Bearer rampart_zone_editor";
    let r = call(&rampart, "PUT", "/client/v4/lists/office", Some(editor)).await;
    assert_eq!((r.status, code_of(&r)), (403, 10000));

    // Unknown route, wrong method, a body that is not JSON.
    let r = call(&rampart, "GET", "/client/v4/nothing/here", Some(&reader)).await;
    assert_eq!((r.status, code_of(&r)), (404, 7000));
    assert_eq!(r.json()["success"], false);
    let r = call(&rampart, "DELETE", "/client/v4/zones", Some(&reader)).await;
    assert_eq!((r.status, code_of(&r)), (405, 7001));
    assert_eq!(r.header("allow").unwrap(), "GET,HEAD");
    let purge = "/client/v4/zones/example.test/purge_cache";
    let r = call_typed(
        &rampart,
        "POST",
        purge,
        Some(&format!("Bearer {PURGER}")),
        "text/plain",
    )
    .await;
    assert_eq!((r.status, code_of(&r)), (415, 6003));
    let r = call_typed(
        &rampart,
        "POST",
        purge,
        Some(&format!("Bearer {PURGER}")),
        "application/json; charset=utf-8",
    )
    .await;
    assert_eq!(r.status, 200);
}

/// `/client/v4/openapi.json` is public, OpenAPI 3.1, and every operation it lists is routed:
/// each one, asked without a token, meets the guard (401 with the Bearer challenge), never
/// the 404 or 405 of a route that does not exist. (scripts/api-schema runs schemathesis
/// against it for the rest.)
#[tokio::test]
async fn the_openapi_document_is_served_and_every_operation_in_it_is_routed() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start_zones("", &zones(origin.addr, &tokens())).await;
    let r = call(&rampart, "GET", "/client/v4/openapi.json", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], "/client/v4");
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let path = path
            .replace("{zone}", "example.test")
            .replace("{id}", "r1")
            .replace("{name}", "office");
        for method in item.as_object().unwrap().keys() {
            let method = method.to_ascii_uppercase();
            let r = call(&rampart, &method, &format!("/client/v4{path}"), None).await;
            assert_eq!(r.status, 401, "{method} {path}: {}", r.text());
            assert!(r.header("www-authenticate").is_some(), "{method} {path}");
            operations += 1;
        }
    }
    assert!(operations >= 31, "{operations} operations");
    // And what is not in it is not routed.
    let r = call(
        &rampart,
        "GET",
        "/client/v4/zones/example.test/nothing",
        None,
    )
    .await;
    assert_eq!((r.status, code_of(&r)), (404, 7000));
    let r = call(&rampart, "PATCH", "/client/v4/zones", None).await;
    assert_eq!((r.status, code_of(&r)), (405, 7001));
    assert_eq!(r.header("allow").as_deref(), Some("GET,HEAD"));
}
