//! Origin pools: steering (round robin, least outstanding, hash, failover), passive and
//! active health, a failed connect retried on another origin, 530 / 1016 when every origin
//! is down, health in metrics and the admin plane, checks that never overlap and stop at
//! reload. Over HTTP/1.1 and HTTP/2.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::http2::{self, h2c};
use common::{Client, PATIENCE, Rampart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// A test origin that answers `200` with its own name, `/healthz` with a status the test
/// sets (or never, with 0), and `/held` only once the test releases it.
struct Backend {
    name: &'static str,
    addr: SocketAddr,
    /// The status `/healthz` answers; 0: read the request and never answer.
    health: Arc<AtomicU16>,
    /// The status every other request gets.
    status: Arc<AtomicU16>,
    /// Requests other than health checks, by path.
    served: Arc<Mutex<Vec<String>>>,
    health_checks: Arc<AtomicUsize>,
    /// Health check connections open now, and the most ever open at once.
    checks_open: Arc<AtomicUsize>,
    checks_open_max: Arc<AtomicUsize>,
    /// Permits for `/held` requests.
    gate: Arc<Semaphore>,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

impl Backend {
    async fn start(name: &'static str) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(name, listener)
    }

    fn serve(name: &'static str, listener: TcpListener) -> Backend {
        let b = Backend {
            name,
            addr: listener.local_addr().unwrap(),
            health: Arc::new(AtomicU16::new(200)),
            status: Arc::new(AtomicU16::new(200)),
            served: Arc::default(),
            health_checks: Arc::default(),
            checks_open: Arc::default(),
            checks_open_max: Arc::default(),
            gate: Arc::new(Semaphore::new(0)),
            tasks: Arc::default(),
        };
        let (health, served, checks) =
            (b.health.clone(), b.served.clone(), b.health_checks.clone());
        let (open, open_max, gate) = (
            b.checks_open.clone(),
            b.checks_open_max.clone(),
            b.gate.clone(),
        );
        let tasks = b.tasks.clone();
        let status = b.status.clone();
        b.tasks.lock().unwrap().spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let (health, served, checks) = (health.clone(), served.clone(), checks.clone());
                let status = status.clone();
                let (open, open_max, gate) = (open.clone(), open_max.clone(), gate.clone());
                tasks.lock().unwrap().spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let Some(end) = read_head(&mut s, &mut buf).await else { return };
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        buf.drain(..end);
                        let path = head.split(' ').nth(1).unwrap_or("").to_string();
                        if path == "/healthz" {
                            checks.fetch_add(1, Ordering::SeqCst);
                            let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                            open_max.fetch_max(now, Ordering::SeqCst);
                            let status = health.load(Ordering::SeqCst);
                            if status != 0 {
                                let reply = format!(
                                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                                );
                                let _ = s.write_all(reply.as_bytes()).await;
                            }
                            // Until the checker closes its connection.
                            let mut sink = [0u8; 64];
                            while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
                            open.fetch_sub(1, Ordering::SeqCst);
                            return;
                        }
                        served.lock().unwrap().push(path.clone());
                        if path == "/held" {
                            gate.acquire().await.unwrap().forget();
                        }
                        let reply = format!(
                            "HTTP/1.1 {} X\r\nContent-Length: {}\r\n\r\n{name}",
                            status.load(Ordering::SeqCst),
                            name.len()
                        );
                        if s.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        b
    }

    /// Stops listening and drops every connection: the port refuses from now on.
    fn stop(&self) {
        self.tasks.lock().unwrap().abort_all();
    }

    fn served(&self) -> usize {
        self.served.lock().unwrap().len()
    }
}

async fn read_head(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(i + 4);
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A zone `example.test` with one pool over `backends`.
fn pool_zone(backends: &[(&Backend, u32)], pool_extra: &str) -> String {
    let origins: Vec<String> = backends
        .iter()
        .map(|(b, w)| format!("{{ url = \"http://{}\", weight = {w} }}", b.addr))
        .collect();
    format!(
        "[[zone]]\nname = \"example.test\"\nhosts = [\"example.test\"]\n\n[[zone.origin_pool]]\nname = \"main\"\norigins = [{}]\n{pool_extra}\n",
        origins.join(", ")
    )
}

async fn start(zones: &str) -> Rampart {
    Rampart::start_zones("trusted_proxies = [\"127.0.0.1/32\"]\n", zones).await
}

/// The body (the origin's name) and status of a GET over a kept-alive HTTP/1.1 connection.
async fn get(c: &mut Client, path: &str, extra: &str) -> (u16, String) {
    c.send(format!("GET {path} HTTP/1.1\r\nHost: example.test\r\n{extra}\r\n").as_bytes())
        .await;
    let r = c.response(false).await;
    (r.status, r.text())
}

async fn get_h2(
    h2: &mut h2::client::SendRequest<bytes::Bytes>,
    path: &str,
    header: Option<(&str, &str)>,
) -> (u16, String) {
    let mut req = http::Request::get(format!("http://example.test{path}"));
    if let Some((n, v)) = header {
        req = req.header(n, v);
    }
    let r = http2::send(h2, req.body(()).unwrap(), None).await;
    (
        r.status.as_u16(),
        String::from_utf8_lossy(&r.body).into_owned(),
    )
}

/// `GET /client/v4/zones/example.test/origin_health`: origin URL → healthy.
async fn admin_health(r: &Rampart) -> Vec<(String, bool)> {
    let mut c = Client::connect(r.admin.unwrap()).await;
    c.send(b"GET /client/v4/zones/example.test/origin_health HTTP/1.1\r\nHost: admin\r\n\r\n")
        .await;
    let v = c.response(false).await.json();
    assert_eq!(v["success"], true, "{v}");
    v["result"]["origins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["origin"].as_str().unwrap().to_string(),
                o["healthy"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// Waits (at most PATIENCE) until the admin plane says `backend` is `healthy`.
async fn wait_health(r: &Rampart, backend: &Backend, healthy: bool) {
    let url = format!("http://{}", backend.addr);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if admin_health(r)
            .await
            .iter()
            .any(|(o, h)| *o == url && *h == healthy)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never became healthy={healthy}",
            backend.name
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn round_robin_follows_the_weights_over_h1_and_h2() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let r = start(&pool_zone(
        &[(&a, 2), (&b, 1)],
        "steering = \"round_robin\"",
    ))
    .await;
    let mut c = r.client().await;
    let mut seen = String::new();
    for _ in 0..12 {
        let (status, body) = get(&mut c, "/", "").await;
        assert_eq!(status, 200);
        seen.push_str(&body);
    }
    // Smooth weighted round robin: interleaved, two a for each b.
    assert_eq!(seen, "abaabaabaaba");
    let mut h2 = h2c(r.addr).await;
    let mut seen = String::new();
    for _ in 0..12 {
        let (status, body) = get_h2(&mut h2, "/", None).await;
        assert_eq!(status, 200);
        seen.push_str(&body);
    }
    assert_eq!(seen.matches('a').count(), 8, "{seen}");
    assert_eq!(seen.matches('b').count(), 4, "{seen}");
}

#[tokio::test]
async fn failover_when_an_origin_dies_mid_run_loses_no_request() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let r = start(&pool_zone(&[(&a, 1), (&b, 1)], "")).await;
    let mut c = r.client().await;
    for _ in 0..4 {
        assert_eq!(get(&mut c, "/", "").await.0, 200);
    }
    assert_eq!((a.served(), b.served()), (2, 2));
    a.stop();
    // Every request is answered: a refused connect goes to b at once, and after three
    // failures in a row a is out of traffic for its back-off.
    let mut c = r.client().await;
    for i in 0..20 {
        let (status, body) = get(&mut c, &format!("/h1/{i}"), "").await;
        assert_eq!((status, body.as_str()), (200, "b"));
    }
    // A POST whose connect was refused is sent to the other origin whole.
    c.send(b"POST /form HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\n\r\nhello")
        .await;
    assert_eq!(c.response(false).await.text(), "b");
    let mut h2 = h2c(r.addr).await;
    for i in 0..10 {
        let (status, body) = get_h2(&mut h2, &format!("/h2/{i}"), None).await;
        assert_eq!((status, body.as_str()), (200, "b"));
    }
    assert_eq!(
        admin_health(&r).await,
        vec![
            (format!("http://{}", a.addr), false),
            (format!("http://{}", b.addr), true)
        ]
    );
    let metrics = r.metrics().await;
    let line = |origin: &Backend| {
        format!(
            "rampart_origin_healthy{{zone=\"example.test\",pool=\"main\",origin=\"http://{}\"}}",
            origin.addr
        )
    };
    assert!(metrics.contains(&format!("{} 0", line(&a))), "{metrics}");
    assert!(metrics.contains(&format!("{} 1", line(&b))), "{metrics}");
    assert!(
        metrics.contains("rampart_origin_connect_retries_total{zone=\"example.test\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn answers_of_5xx_in_a_row_take_an_origin_out_for_its_backoff() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let passive = "passive_health = { failures = 2, backoff = \"1h\" }";
    let r = start(&pool_zone(&[(&a, 1), (&b, 1)], passive)).await;
    b.status.store(503, Ordering::SeqCst);
    let mut c = r.client().await;
    let mut h2 = h2c(r.addr).await;
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(get(&mut c, "/", "").await);
        answers.push(get_h2(&mut h2, "/", None).await);
    }
    // The origin's own 503s pass through untouched; after two in a row b is out.
    let from_b: Vec<_> = answers.iter().filter(|(_, body)| body == "b").collect();
    assert_eq!(from_b.len(), 2, "{answers:?}");
    assert!(from_b.iter().all(|(status, _)| *status == 503));
    assert!(
        answers[4..].iter().all(|a| *a == (200, "a".to_string())),
        "{answers:?}"
    );
    wait_health(&r, &b, false).await;
}

#[tokio::test]
async fn active_checks_take_an_origin_out_and_bring_it_back() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let check = "health_check = { path = \"/healthz\", interval = \"150ms\", timeout = \"100ms\", expected = [200, 204], unhealthy_after = 2, healthy_after = 2 }\npassive_health = false";
    let r = start(&pool_zone(&[(&a, 1), (&b, 1)], check)).await;
    wait_until(|| a.health_checks.load(Ordering::SeqCst) >= 1).await;
    a.health.store(503, Ordering::SeqCst);
    wait_health(&r, &a, false).await;
    let before = a.served();
    let mut c = r.client().await;
    let mut h2 = h2c(r.addr).await;
    for _ in 0..6 {
        assert_eq!(get(&mut c, "/", "").await.1, "b");
        assert_eq!(get_h2(&mut h2, "/", None).await.1, "b");
    }
    assert_eq!(
        a.served(),
        before,
        "an origin failing its checks got traffic"
    );
    // 204 is expected too: two passing checks bring it back.
    a.health.store(204, Ordering::SeqCst);
    wait_health(&r, &a, true).await;
    let mut seen = String::new();
    for _ in 0..4 {
        seen.push_str(&get(&mut c, "/", "").await.1);
        seen.push_str(&get_h2(&mut h2, "/", None).await.1);
    }
    assert_eq!(seen.matches('a').count(), 4, "{seen}");
    // What the checks said is counted.
    let metrics = r.metrics().await;
    assert!(
        metrics.contains(
            "rampart_origin_health_checks_total{zone=\"example.test\",pool=\"main\",origin=\""
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("result=\"fail\"") && metrics.contains("result=\"pass\""),
        "{metrics}"
    );
}

async fn wait_until(done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition never held"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn hash_steering_keeps_each_client_on_its_origin() {
    let backends = [
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    ];
    let list: Vec<(&Backend, u32)> = backends.iter().map(|b| (b, 1)).collect();
    let r = start(&pool_zone(
        &list,
        "steering = \"hash\"\nhash_header = \"X-Session\"",
    ))
    .await;
    let mut c = r.client().await;
    let mut h2 = h2c(r.addr).await;
    let mut owner = std::collections::HashMap::new();
    for s in 0..30 {
        let session = format!("user-{s}");
        let header = format!("X-Session: {session}\r\n");
        let first = get(&mut c, "/", &header).await.1;
        for _ in 0..3 {
            assert_eq!(
                get(&mut c, "/x", &header).await.1,
                first,
                "{session} moved over HTTP/1.1"
            );
            assert_eq!(
                get_h2(&mut h2, "/y", Some(("x-session", &session))).await.1,
                first,
                "{session} moved over HTTP/2"
            );
        }
        owner.insert(session, first);
    }
    let spread: std::collections::HashSet<&String> = owner.values().collect();
    assert_eq!(spread.len(), 3, "30 sessions all on {spread:?}");
    // Without the field, the client's IP is hashed: one client, one origin.
    let by_ip: std::collections::HashSet<String> = {
        let mut s = std::collections::HashSet::new();
        for _ in 0..6 {
            s.insert(
                get(&mut c, "/", "X-Forwarded-For: 198.51.100.7\r\n")
                    .await
                    .1,
            );
        }
        s
    };
    assert_eq!(by_ip.len(), 1, "{by_ip:?}");
    // Origin b leaves: its sessions move, every other session stays where it was.
    backends[1].stop();
    let mut c = r.client().await;
    for (session, was) in &owner {
        let now = get(&mut c, "/", &format!("X-Session: {session}\r\n"))
            .await
            .1;
        if was == "b" {
            assert_ne!(now, "b");
        } else {
            assert_eq!(&now, was, "{session} moved although its origin is up");
        }
    }
}

#[tokio::test]
async fn least_outstanding_sends_to_the_origin_with_fewest_in_flight_by_weight() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let r = start(&pool_zone(
        &[(&a, 3), (&b, 1)],
        "steering = \"least_outstanding\"",
    ))
    .await;
    let mut held = Vec::new();
    for i in 0..4 {
        let mut c = r.client().await;
        c.send(b"GET /held HTTP/1.1\r\nHost: example.test\r\n\r\n")
            .await;
        // The next request is picked only once this one is at its origin.
        wait_until(|| a.served() + b.served() == i + 1).await;
        held.push(c);
    }
    assert_eq!((a.served(), b.served()), (3, 1));
    a.gate.add_permits(3);
    b.gate.add_permits(1);
    for mut c in held {
        assert_eq!(c.response(false).await.status, 200);
    }
    // All answered: idle again, and both share the next requests.
    let mut c = r.client().await;
    let mut seen = String::new();
    for _ in 0..8 {
        seen.push_str(&get(&mut c, "/", "").await.1);
    }
    assert!(seen.contains('a') && seen.contains('b'), "{seen}");
}

#[tokio::test]
async fn failover_steering_uses_the_first_healthy_origin_then_the_next_pool() {
    let (a, b, c2) = (
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    );
    let zones = format!(
        "{}\n[[zone.origin_pool]]\nname = \"backup\"\norigins = [{{ url = \"http://{}\" }}]\n",
        pool_zone(&[(&a, 1), (&b, 1)], "steering = \"failover\""),
        c2.addr
    );
    let r = start(&zones).await;
    let mut c = r.client().await;
    for _ in 0..3 {
        assert_eq!(get(&mut c, "/", "").await.1, "a");
    }
    a.stop();
    for _ in 0..3 {
        assert_eq!(get(&mut c, "/", "").await.1, "b");
    }
    b.stop();
    // The first pool has no origin left: the next pool serves.
    let mut h2 = h2c(r.addr).await;
    for _ in 0..3 {
        assert_eq!(get_h2(&mut h2, "/", None).await.1, "c");
    }
}

#[tokio::test]
async fn every_origin_down_is_530_1016_without_a_connect() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let check = "health_check = { path = \"/healthz\", interval = \"100ms\", timeout = \"50ms\", unhealthy_after = 1, healthy_after = 1 }";
    let r = start(&pool_zone(&[(&a, 1), (&b, 1)], check)).await;
    a.health.store(500, Ordering::SeqCst);
    b.health.store(500, Ordering::SeqCst);
    wait_health(&r, &a, false).await;
    wait_health(&r, &b, false).await;
    let mut c = r.client().await;
    c.send(b"GET / HTTP/1.1\r\nHost: example.test\r\nAccept: application/json\r\n\r\n")
        .await;
    let res = c.response(false).await;
    assert_eq!(res.status, 530);
    assert_eq!(res.json()["error_code"], 1016, "{}", res.text());
    assert_eq!(res.header("retry-after").as_deref(), Some("60"));
    // The page says what happened, never where the origins are.
    assert!(!res.text().contains("127.0.0.1"), "{}", res.text());
    let mut h2 = h2c(r.addr).await;
    assert_eq!(get_h2(&mut h2, "/", None).await.0, 530);
    assert_eq!(a.served() + b.served(), 0);
    let log = r.log_lines(2).await;
    assert_eq!(log[0]["EdgeResponseStatus"], 530);
}

#[tokio::test]
async fn health_checks_never_overlap_and_stop_at_reload() {
    let a = Backend::start("a").await;
    // The check is never answered: each one ends by its timeout.
    a.health.store(0, Ordering::SeqCst);
    let check = "health_check = { path = \"/healthz\", interval = \"120ms\", timeout = \"80ms\" }";
    let zones = pool_zone(&[(&a, 1)], check);
    let r = start(&zones).await;
    let server = r.server.as_ref().unwrap();
    let load = |src: &str| {
        let src = format!("[server]\nlisten = [\"127.0.0.1:0\"]\n{src}");
        rampart::config::load_str("test.toml", &common::without_bic(&src), None)
            .unwrap()
            .config
    };
    wait_until(|| a.health_checks.load(Ordering::SeqCst) >= 2).await;
    // Reloads while a check is under way: the old checker stops, the new one waits for the
    // interval the old one started.
    for _ in 0..5 {
        server.reload(load(&zones));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    wait_until(|| a.health_checks.load(Ordering::SeqCst) >= 6).await;
    assert_eq!(
        a.checks_open_max.load(Ordering::SeqCst),
        1,
        "two checks of one origin were open at once"
    );
    // A configuration without the check: checking stops.
    server.reload(load(&pool_zone(&[(&a, 1)], "")));
    wait_until(|| a.checks_open.load(Ordering::SeqCst) == 0).await;
    let after = a.health_checks.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        a.health_checks.load(Ordering::SeqCst),
        after,
        "a check ran after the reload removed it"
    );
    // And the origin, no longer checked, takes traffic.
    let mut c = r.client().await;
    assert_eq!(get(&mut c, "/", "").await, (200, "a".to_string()));
}

#[test]
fn pool_configuration_errors_name_the_key() {
    let cases = [
        (
            "origin = [\"http://127.0.0.1:1\"]",
            "zone[0].origin",
            "[[zone.origin_pool]]",
        ),
        (
            "origin = \"http://127.0.0.1:1\"\n[[zone.origin_pool]]\norigins = [{ url = \"http://127.0.0.1:2\" }]",
            "zone[0].origin_pool",
            "not both",
        ),
        (
            "[[zone.origin_pool]]\norigins = []",
            "zone[0].origin_pool[0].origins",
            "at least one",
        ),
        (
            "[[zone.origin_pool]]\norigins = [{ url = \"ftp://x\" }]",
            "zone[0].origin_pool[0].origins[0].url",
            "not an origin URL",
        ),
        (
            "[[zone.origin_pool]]\norigins = [{ url = \"http://127.0.0.1:1\", weight = 0 }]",
            "zone[0].origin_pool[0].origins[0].weight",
            "from 1 to 100",
        ),
        (
            "[[zone.origin_pool]]\norigins = [{ url = \"http://127.0.0.1:1\" }]\n[[zone.origin_pool]]\norigins = [{ url = \"http://127.0.0.1:1/\" }]",
            "zone[0].origin_pool[1].origins[0].url",
            "already an origin",
        ),
        (
            "[[zone.origin_pool]]\norigins = [{ url = \"http://127.0.0.1:1\" }]\nsteering = \"random\"",
            "zone[0].origin_pool[0].steering",
            "round_robin",
        ),
        (
            "[[zone.origin_pool]]\norigins = [{ url = \"http://127.0.0.1:1\" }]\nhealth_check = { interval = 2, timeout = 2 }",
            "zone[0].origin_pool[0].health_check.timeout",
            "shorter than `interval`",
        ),
        (
            "[[zone.origin_pool]]\norigins = [{ url = \"http://127.0.0.1:1\" }]\nhealth_check = { expected = [\"200\"] }",
            "zone[0].origin_pool[0].health_check.expected",
            "status codes",
        ),
        (
            "[[zone.origin_pool]]\norigins = [{ url = \"http://127.0.0.1:1\" }]\nhealth_check = { path = \"healthz\" }",
            "zone[0].origin_pool[0].health_check.path",
            "not a path",
        ),
        (
            "[[zone.origin_pool]]\norigins = [{ url = \"http://127.0.0.1:1\" }]\npassive_health = { failures = 0 }",
            "zone[0].origin_pool[0].passive_health.failures",
            "from 1 to 1000",
        ),
        ("", "zone[0].origin", "required"),
    ];
    for (zone, key, message) in cases {
        let src = format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\n[[zone]]\nname = \"z\"\nhosts = [\"z.test\"]\n{zone}\n"
        );
        common::assert_config_error(&src, key, message);
    }
    // Integers are seconds; a pool may stand alone.
    let ok = "[server]\nlisten = [\"127.0.0.1:0\"]\n[[zone]]\nname = \"z\"\nhosts = [\"z.test\"]\n[[zone.origin_pool]]\norigins = [{ url = \"http://127.0.0.1:1\", weight = 5 }, { url = \"https://127.0.0.1:2\" }]\nsteering = \"least_outstanding\"\nhealth_check = { path = \"/up?full=1\", interval = 10, timeout = 2, expected = [200], unhealthy_after = 3, healthy_after = 2 }\npassive_health = { failures = 5, backoff = \"30s\" }\n";
    rampart::config::load_str("t.toml", &common::without_bic(ok), None)
        .unwrap_or_else(|e| panic!("{e}"));
}
