//! A fleet: several rampart processes on loopback sharing one Redis (redis-server from the
//! Debian package; scripts/test starts one for the run and names it in RAMPART_TEST_REDIS,
//! otherwise each test starts its own). Rate limits shared across nodes, Redis going away
//! and coming back, purges and configuration changes fanned out.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Behaviour, Client, Origin, free_port};

/// A redis-server of the test's own, on a free loopback port, stopped when dropped.
struct OwnRedis {
    child: Child,
    port: u16,
}

impl OwnRedis {
    fn start_on(port: u16) -> OwnRedis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--enable-debug-command", "local"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is needed (scripts/test installs the Debian package)");
        let redis = OwnRedis { child, port };
        redis.wait_ready();
        redis
    }

    fn start() -> OwnRedis {
        OwnRedis::start_on(free_port().port())
    }

    fn wait_ready(&self) {
        for _ in 0..500 {
            if ping(&format!("127.0.0.1:{}", self.port)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    /// Runs a command with redis-cli; its output.
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli is installed with redis-server");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn ping(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// The Redis a test uses: the run's (database `db`, so tests do not share keys), or one of
/// its own when the tests run without scripts/test.
fn redis_url(db: u8) -> (String, Option<OwnRedis>) {
    match std::env::var("RAMPART_TEST_REDIS") {
        Ok(addr) if !addr.is_empty() => {
            assert!(
                ping(&addr),
                "RAMPART_TEST_REDIS={addr} does not answer PING"
            );
            (format!("redis://{addr}/{db}"), None)
        }
        _ => {
            let own = OwnRedis::start();
            (format!("redis://127.0.0.1:{}/{db}", own.port), Some(own))
        }
    }
}

/// One rampart process of the fleet, with its own copy of the configuration file.
struct Node {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
    config: PathBuf,
    stderr: PathBuf,
}

impl Node {
    fn start(dir: &Path, name: &str, config: &str) -> Node {
        let addr = free_port();
        let admin = free_port();
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, common::without_bic(config)).unwrap();
        let stderr = dir.join(format!("{name}.err"));
        let child = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["run", "-c"])
            .arg(&path)
            .args([
                "--listen",
                &addr.to_string(),
                "--admin-listen",
                &admin.to_string(),
            ])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let node = Node {
            child,
            addr,
            admin,
            config: path,
            stderr,
        };
        for _ in 0..1000 {
            if std::net::TcpStream::connect(admin).is_ok() {
                return node;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{name} did not start: {}", node.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    async fn get(&self, path: &str) -> common::Response {
        let mut c = Client::connect(self.addr).await;
        c.send(format!("GET {path} HTTP/1.1\r\nHost: example.test\r\n\r\n").as_bytes())
            .await;
        c.response(false).await
    }

    /// What the edge cache did for a GET of `path`.
    async fn cache_status(&self, path: &str) -> String {
        self.get(path)
            .await
            .header("rampart-cache-status")
            .unwrap_or_default()
    }

    async fn admin(&self, method: &str, path: &str, body: &str) -> common::Response {
        let mut c = Client::connect(self.admin).await;
        c.send(
            format!(
                "{method} {path} HTTP/1.1\r\nHost: admin\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await;
        c.response(false).await
    }

    /// The value of a metric line starting with `prefix`, once it satisfies `until` (or
    /// whatever it is after 10 s).
    async fn metric_until(&self, prefix: &str, until: impl Fn(f64) -> bool) -> f64 {
        let mut value = f64::NAN;
        for _ in 0..500 {
            let text = self.admin("GET", "/metrics", "").await.text();
            value = text
                .lines()
                .find(|l| l.starts_with(prefix))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN);
            if until(value) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        value
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp_dir() -> common::TempDir {
    common::TempDir::new("fleet")
}

const SECRET: &str = "test fleet secret, 32 bytes long";

fn config(origin: SocketAddr, fleet: &str, zone_extra: &str) -> String {
    format!(
        r#"[server]
listen = ["127.0.0.1:0"]
access_log = "off"

{fleet}

[[zone]]
name = "example.test"
hosts = ["example.test"]
origin = "http://{origin}"
{zone_extra}
"#
    )
}

fn fleet_table(url: &str, extra: &str) -> String {
    format!(
        "[fleet]\nredis = \"{url}\"\nsecret = \"{SECRET}\"\nsync_interval = \"10ms\"\n{extra}\n"
    )
}

const TEN_A_MINUTE: &str = r#"
[[zone.rate_limit]]
id = "per-ip"
expression = 'http.request.uri.path eq "/api"'
characteristics = ["ip.src"]
period = 60
requests_per_period = 10
"#;

/// `count` nodes of one configuration, named `prefix0`…; with `[fleet]`, once every node
/// has seen all of them in Redis.
async fn start_nodes(dir: &Path, prefix: &str, count: usize, config: &str) -> Vec<Node> {
    let nodes: Vec<Node> = (0..count)
        .map(|i| Node::start(dir, &format!("{prefix}{i}"), config))
        .collect();
    if config.contains("[fleet]") {
        wait_for_nodes(&nodes).await;
    }
    nodes
}

/// The configuration of nodes on a Redis of the test's own, with a 50 ms timeout.
fn on_own_redis(origin: SocketAddr, redis: &OwnRedis) -> String {
    let url = format!("redis://127.0.0.1:{}/0", redis.port);
    config(
        origin,
        &fleet_table(&url, "timeout = \"50ms\""),
        TEN_A_MINUTE,
    )
}

async fn wait_for_nodes(nodes: &[Node]) {
    for n in nodes {
        let seen = n
            .metric_until("rampart_fleet_nodes ", |v| v >= nodes.len() as f64)
            .await;
        assert_eq!(seen, nodes.len() as f64, "{}", n.log());
    }
}

const OK_SYNCS: &str = "rampart_fleet_syncs_total{result=\"ok\"}";

/// Waits until every node has heard of every request made so far: each node completes two
/// syncs (the second one's batch was taken after the request), twice over (so that every
/// node's last sync started after every other node's hits were in Redis). Ordered by the
/// nodes' own sync counters, not by time.
async fn settle(nodes: &[Node]) {
    for _ in 0..2 {
        let mut before = Vec::new();
        for n in nodes {
            before.push(n.metric_until(OK_SYNCS, |_| true).await);
        }
        for (n, b) in nodes.iter().zip(before) {
            let now = n.metric_until(OK_SYNCS, |v| v >= b + 2.0).await;
            assert!(now >= b + 2.0, "{}", n.log());
        }
    }
}

/// `n` requests to /api, round robin over `nodes`, each node having heard of the previous
/// ones when `settled`: how many were admitted, and every status seen.
async fn round_robin(nodes: &[Node], n: usize, settled: bool) -> (usize, Vec<u16>) {
    let mut statuses = Vec::new();
    for i in 0..n {
        statuses.push(nodes[i % nodes.len()].get("/api").await.status);
        if settled {
            settle(nodes).await;
        }
    }
    let admitted = statuses.iter().filter(|&&s| s == 200).count();
    (admitted, statuses)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_holds_across_three_nodes_sharing_redis() {
    let origin = Origin::start(Behaviour::Echo).await;
    let dir = temp_dir();
    // Alone, each node counts its own: three nodes let three times the rate through.
    let alone = config(origin.addr, "", TEN_A_MINUTE);
    let nodes = start_nodes(&dir, "alone", 3, &alone).await;
    let (admitted, _) = round_robin(&nodes, 45, false).await;
    assert_eq!(admitted, 30);
    drop(nodes);

    let (url, _own) = redis_url(1);
    let shared = config(origin.addr, &fleet_table(&url, ""), TEN_A_MINUTE);
    let nodes = start_nodes(&dir, "shared", 3, &shared).await;
    // Every node has heard of the others' requests before the next. Each leaves one token to
    // each of the others: 10 − 2 (docs/fleet.md), and the refill adds one every 6 s.
    let (admitted, statuses) = round_robin(&nodes, 30, true).await;
    assert!(
        (8..=10).contains(&admitted),
        "{admitted} admitted: {statuses:?}\n{}",
        nodes[0].log()
    );
    // Once over, every node refuses, with the Retry-After of the fleet's counter.
    for n in &nodes {
        let r = n.get("/api").await;
        assert_eq!(r.status, 429);
        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=6).contains(&retry), "{retry}");
    }
    // One round trip per sync, not per request.
    let trips = nodes[0]
        .metric_until("rampart_fleet_round_trips_total", |_| true)
        .await;
    assert!(trips > 0.0);
}

/// A sliding-window rule: never more than its quota in the period, over the whole fleet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sliding_window_rule_never_admits_more_than_its_quota_across_three_nodes() {
    let origin = Origin::start(Behaviour::Echo).await;
    let dir = temp_dir();
    let (url, _own) = redis_url(5);
    let rule = format!("{TEN_A_MINUTE}algorithm = \"sliding_window\"\n");
    let shared = config(origin.addr, &fleet_table(&url, ""), &rule);
    let nodes = start_nodes(&dir, "window", 3, &shared).await;
    // A burst faster than the syncs: every node takes at most its share of the room, so the
    // fleet stays within the 10, whatever the timing.
    let (burst, statuses) = round_robin(&nodes, 60, false).await;
    assert!((1..=10).contains(&burst), "{burst} admitted: {statuses:?}");
    // Settled, each node sees the fleet's count exactly and leaves 2 (n − 1) shares of the
    // room to the others (docs/fleet.md): a node admits while the count is at most 10 − 5,
    // so the fleet stops at 6 (or where the burst left it).
    settle(&nodes).await;
    let (more, statuses) = round_robin(&nodes, 12, true).await;
    assert_eq!(
        burst + more,
        burst.max(6),
        "{burst} + {more} admitted: {statuses:?}"
    );
    // Refused everywhere until the oldest sub-window leaves the period: within 60 s plus one
    // sub-window (60 / 11 s for a quota of 10).
    for n in &nodes {
        let r = n.get("/api").await;
        assert_eq!(r.status, 429);
        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((50..=66).contains(&retry), "{retry}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_nodes_count_locally_at_their_share_and_share_again_when_it_is_back() {
    let origin = Origin::start(Behaviour::Echo).await;
    let dir = temp_dir();
    let mut redis = OwnRedis::start();
    let port = redis.port;
    let cfg = on_own_redis(origin.addr, &redis);
    let nodes = start_nodes(&dir, "node", 2, &cfg).await;
    let (admitted, _) = round_robin(&nodes, 4, true).await;
    assert_eq!(admitted, 4);

    // Redis goes away mid-run: requests keep being answered, each node now counts alone at
    // half the rule's rate (10 ÷ 2 nodes), in a store of its own.
    redis.kill();
    for n in &nodes {
        let fallback = n
            .metric_until("rampart_fleet_fallback ", |v| v == 1.0)
            .await;
        assert_eq!(fallback, 1.0, "{}", n.log());
    }
    let mut admitted = 0;
    for _ in 0..8 {
        if nodes[0].get("/api").await.status == 200 {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 5, "10 per minute ÷ 2 nodes");
    assert!(
        nodes[0]
            .log()
            .contains("rate limits are counted on this node alone at 1/2"),
        "{}",
        nodes[0].log()
    );
    let failed = nodes[0]
        .metric_until("rampart_fleet_syncs_total{result=", |_| true)
        .await;
    assert!(failed > 0.0);

    // Redis comes back (empty): the nodes reconnect by themselves and share again.
    let _redis = OwnRedis::start_on(port);
    for n in &nodes {
        let fallback = n
            .metric_until("rampart_fleet_fallback ", |v| v == 0.0)
            .await;
        assert_eq!(fallback, 0.0, "{}", n.log());
    }
    assert!(nodes[0].log().contains("rate limits are shared again"));
    let (admitted, statuses) = round_robin(&nodes, 16, true).await;
    assert!(
        (9..=10).contains(&admitted),
        "{admitted} admitted: {statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_on_one_node_reaches_the_others() {
    let body = "body { color: red }";
    let origin = Origin::start(Behaviour::Raw(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/css\r\nCache-Control: max-age=3600\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    ))
    .await;
    let dir = temp_dir();
    let (url, _own) = redis_url(2);
    let cfg = config(origin.addr, &fleet_table(&url, ""), "");
    let nodes = start_nodes(&dir, "node", 2, &cfg).await;
    for n in &nodes {
        assert_eq!(n.cache_status("/style.css").await, "MISS");
        assert_eq!(n.cache_status("/style.css").await, "HIT");
    }
    let r = nodes[0]
        .admin(
            "POST",
            "/client/v4/zones/example.test/purge_cache",
            r#"{"files": ["http://example.test/style.css"]}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let applied = nodes[1]
        .metric_until(
            "rampart_fleet_messages_total{kind=\"purge\",event=\"applied\"}",
            |v| v >= 1.0,
        )
        .await;
    assert_eq!(applied, 1.0, "{}", nodes[1].log());
    for n in &nodes {
        assert_eq!(n.cache_status("/style.css").await, "MISS");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_added_through_the_api_on_one_node_reaches_the_others_and_their_files() {
    let origin = Origin::start(Behaviour::Echo).await;
    let dir = temp_dir();
    let (url, _own) = redis_url(3);
    let cfg = config(origin.addr, &fleet_table(&url, ""), "");
    let nodes = start_nodes(&dir, "node", 3, &cfg).await;
    for n in &nodes {
        assert_eq!(n.get("/admin").await.status, 200);
    }
    let r = nodes[0]
        .admin(
            "POST",
            "/client/v4/zones/example.test/custom_rules",
            r#"{"expression": "starts_with(http.request.uri.path, \"/admin\")", "action": "block", "description": "no admin"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    for n in &nodes[1..] {
        let applied = n
            .metric_until(
                "rampart_fleet_messages_total{kind=\"config\",event=\"applied\"}",
                |v| v >= 1.0,
            )
            .await;
        assert_eq!(applied, 1.0, "{}", n.log());
        assert_eq!(n.get("/admin").await.status, 403);
        // The file is the source of truth: the rule is in it, and the rest of it too.
        let text = std::fs::read_to_string(&n.config).unwrap();
        assert!(
            text.contains("no admin") && text.contains("[fleet]"),
            "{text}"
        );
    }
    assert_eq!(nodes[0].get("/admin").await.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_out_of_memory_or_too_slow_is_a_failed_sync_and_requests_never_wait_for_it() {
    let origin = Origin::start(Behaviour::Echo).await;
    let dir = temp_dir();
    let redis = OwnRedis::start();
    let cfg = on_own_redis(origin.addr, &redis);
    let nodes = start_nodes(&dir, "node", 2, &cfg).await;

    // Out of memory: Redis refuses the script's writes.
    assert_eq!(
        redis.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]),
        "OK"
    );
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory", "1"]), "OK");
    for n in &nodes {
        let fallback = n
            .metric_until("rampart_fleet_fallback ", |v| v == 1.0)
            .await;
        assert_eq!(fallback, 1.0, "{}", n.log());
    }
    assert!(nodes[0].log().contains("OOM"), "{}", nodes[0].log());
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory", "0"]), "OK");
    for n in &nodes {
        assert_eq!(
            n.metric_until("rampart_fleet_fallback ", |v| v == 0.0)
                .await,
            0.0
        );
    }

    // Too slow: Redis blocked for 5 s. Syncs time out, the nodes count locally, and
    // requests are answered meanwhile (by the local counters: none waits for Redis).
    let sleeper = {
        let port = redis.port;
        std::thread::spawn(move || {
            Command::new("redis-cli")
                .args(["-p", &port.to_string(), "DEBUG", "SLEEP", "5"])
                .output()
                .unwrap()
        })
    };
    let timeouts = "rampart_fleet_syncs_total{result=\"timeout\"}";
    for n in &nodes {
        assert!(
            n.metric_until(timeouts, |v| v >= 2.0).await >= 2.0,
            "{}",
            n.log()
        );
    }
    for _ in 0..6 {
        let status = nodes[1].get("/api").await.status;
        assert!(status == 200 || status == 429, "{status}");
    }
    assert!(
        nodes[1].log().contains("no answer within 50ms"),
        "{}",
        nodes[1].log()
    );
    sleeper.join().unwrap();
    for n in &nodes {
        assert_eq!(
            n.metric_until("rampart_fleet_fallback ", |v| v == 0.0)
                .await,
            0.0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_is_not_valid_on_another_node_changes_nothing_there() {
    let origin = Origin::start(Behaviour::Echo).await;
    let (dir_a, dir_b) = (temp_dir(), temp_dir());
    let (url, _own) = redis_url(4);
    // Node A has an error page file that node B's directory lacks.
    std::fs::write(dir_a.join("block.html"), "<p>blocked ::RAY_ID::</p>").unwrap();
    let page = "[[zone.error_page]]\nfor = \"ip_block\"\nfile = \"block.html\"\n";
    let a = Node::start(
        &dir_a,
        "a",
        &config(origin.addr, &fleet_table(&url, ""), page),
    );
    let b_config = config(origin.addr, &fleet_table(&url, ""), "");
    let b = Node::start(&dir_b, "b", &b_config);
    let nodes = [a, b];
    wait_for_nodes(&nodes).await;
    let r = nodes[0]
        .admin(
            "POST",
            "/client/v4/zones/example.test/custom_rules",
            r#"{"expression": "http.request.uri.path eq \"/x\"", "action": "block"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(nodes[0].get("/x").await.status, 403);
    let rejected = nodes[1]
        .metric_until(
            "rampart_fleet_messages_total{kind=\"config\",event=\"rejected\"}",
            |v| v >= 1.0,
        )
        .await;
    assert_eq!(rejected, 1.0, "{}", nodes[1].log());
    let log = nodes[1].log();
    assert!(
        log.contains("block.html") && log.contains("is not valid on this node"),
        "{log}"
    );
    // Node B runs and keeps what it had, file included.
    assert_eq!(nodes[1].get("/x").await.status, 200);
    assert_eq!(
        std::fs::read_to_string(&nodes[1].config).unwrap(),
        common::without_bic(&b_config)
    );
}

/// The sync script (Lua, on Redis's clock) and its Rust twin `SharedState::add` give the same
/// state step by step, for GCRA and for sliding windows, across sub-windows and after a key
/// was idle longer than its window.
#[tokio::test]
async fn the_sync_script_and_its_rust_twin_agree() {
    use rampart_ratelimit::{Counting, Key, Quota, SharedState, SyncItem, counter_bits};
    let (url, _own) = redis_url(6);
    let mut conn = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let script = redis::Script::new(include_str!("../src/fleet/counters.lua"));
    let sliding = |p, n| {
        Quota::new(p, n, 0)
            .unwrap()
            .counted_by(Counting::SlidingWindow)
    };
    // 1 per 10 s counts in 47 sub-windows of 213 ms: the steps below cross several.
    for quota in [
        Quota::new(60, 7, 0).unwrap(),
        sliding(10, 1),
        sliding(10, 3),
        sliding(60, 100),
    ] {
        let width = match quota.counting() {
            Counting::Gcra => 0,
            Counting::SlidingWindow => counter_bits(quota.requests_per_period()),
        };
        let key = format!("rampart:test:twin:{}", fastrand::u64(..));
        let mut twin = SharedState::default();
        for step in 0..60u32 {
            if step > 0 {
                // As if the last write were further back: by up to a whole window and more
                // (sub-windows for a sliding window, ms for GCRA), so that every shift of the
                // counters is taken; once by a day.
                let back = match (step, width) {
                    (12, _) => 86_400_000,
                    (_, 0) => fastrand::u64(0..=quota.period_ms()),
                    (_, w) => fastrand::u64(0..=u64::from(48 / w) + 1),
                };
                let old = twin.base.saturating_sub(back);
                let _: () = redis::cmd("HSET")
                    .arg(&key)
                    .arg("b")
                    .arg(old)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                twin.base = old;
            }
            let item = SyncItem {
                key: Key::from_hash(1),
                quota,
                hits: fastrand::u32(0..=quota.requests_per_period().min(40)),
                blocked_until_ms: if step == 5 { 1_000 } else { 0 },
            };
            let reply: Vec<u64> = script
                .key("rampart:test:twin:nodes")
                .key(&key)
                .arg("twin")
                .arg(10_000)
                .arg(item.hits)
                .arg(quota.requests_per_period())
                .arg(quota.period_ms())
                .arg(item.blocked_until_ms)
                .arg(width)
                .invoke_async(&mut conn)
                .await
                .unwrap();
            twin.add(&item, reply[0]);
            assert_eq!(
                (reply[2], reply[3], reply[4]),
                (twin.base, twin.offset, twin.blocked_until_ms),
                "{quota:?}, step {step}"
            );
            tokio::time::sleep(Duration::from_millis(fastrand::u64(0..30))).await;
        }
    }
}
