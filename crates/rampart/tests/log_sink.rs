//! The access log sent to a collector over HTTP: gzip NDJSON batches, a collector that goes
//! away and comes back (batches spill to disk, then are delivered, none lost), a collector
//! that refuses a batch, and a spill directory that fills up (lines dropped and counted).

mod common;

use std::collections::HashSet;
use std::io::Read as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Behaviour, Origin, PATIENCE, Rampart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A collector on a fixed loopback port that can go away and come back: it answers every
/// POST with `status` and keeps the lines of those it answered 2xx.
struct Collector {
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<serde_json::Value>>>,
    posts: Arc<Mutex<Vec<(String, usize)>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Collector {
    async fn start(status: u16) -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut c = Collector {
            addr,
            lines: Arc::default(),
            posts: Arc::default(),
            task: None,
        };
        c.serve(listener, status);
        c
    }

    fn serve(&mut self, listener: TcpListener, status: u16) {
        let (lines, posts) = (self.lines.clone(), self.posts.clone());
        self.task = Some(tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let (lines, posts) = (lines.clone(), posts.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + length {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let mut text = String::new();
                    flate2::read::GzDecoder::new(&buf[head_end..head_end + length])
                        .read_to_string(&mut text)
                        .unwrap();
                    let n = text.lines().count();
                    posts.lock().unwrap().push((head, n));
                    if (200..300).contains(&status) {
                        lines
                            .lock()
                            .unwrap()
                            .extend(text.lines().map(|l| serde_json::from_str(l).unwrap()));
                    }
                    let _ = s
                        .write_all(
                            format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n").as_bytes(),
                        )
                        .await;
                });
            }
        }));
    }

    /// Stops listening: connections are refused until [`Collector::back`].
    fn away(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    async fn back(&mut self, status: u16) {
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                // The aborted task's listener is closed asynchronously.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        };
        self.serve(listener, status);
    }

    /// The Ray IDs received, once there are at least `n` of them distinct (or whatever came
    /// within the patience).
    async fn rays(&self, n: usize) -> HashSet<String> {
        let deadline = tokio::time::Instant::now() + PATIENCE * 2;
        loop {
            let rays: HashSet<String> = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .map(|l| l["RayID"].as_str().unwrap().to_string())
                .collect();
            if rays.len() >= n || tokio::time::Instant::now() > deadline {
                return rays;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn spill_dir() -> common::TempDir {
    common::TempDir::new("spill")
}

async fn rampart(origin: SocketAddr, collector: SocketAddr, spill: &Path, sink: &str) -> Rampart {
    let src = format!(
        r#"[server]
listen = ["127.0.0.1:0"]
admin_listen = "127.0.0.1:0"
access_log = "http://{collector}/ingest?table=requests"

[server.log_sink]
spill_dir = "{}"
flush_interval = "50ms"
headers = {{ Authorization = "Bearer t0ken" }}
{sink}

[[zone]]
name = "example.test"
hosts = ["example.test"]
origin = "http://{origin}"
"#,
        spill.display()
    );
    Rampart::from_source(&src, spill.join("unused.log")).await
}

async fn send(r: &Rampart, n: usize) {
    for _ in 0..n {
        let (resp, _) = r
            .request(b"GET /x HTTP/1.1\r\nHost: example.test\r\n\r\n")
            .await;
        assert_eq!(resp.status, 200);
    }
}

fn dropped(metrics: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with("rampart_access_log_dropped_lines_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn spilled_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".ndjson.gz"))
        .count()
}

#[tokio::test]
async fn lines_reach_the_collector_survive_its_absence_on_disk_and_none_is_lost() {
    let origin = Origin::start(Behaviour::Echo).await;
    let mut collector = Collector::start(200).await;
    let spill = spill_dir();
    // Little memory for waiting batches: they go to disk quickly while the collector is away.
    let r = rampart(
        origin.addr,
        collector.addr,
        &spill,
        "memory_limit = \"1KB\"\nbatch_bytes = \"4KB\"",
    )
    .await;

    send(&r, 40).await;
    assert_eq!(collector.rays(40).await.len(), 40);
    let (head, _) = collector.posts.lock().unwrap()[0].clone();
    assert!(
        head.starts_with("POST /ingest?table=requests HTTP/1.1\r\n"),
        "{head}"
    );
    for field in [
        "Content-Encoding: gzip",
        "Content-Type: application/x-ndjson",
        "Authorization: Bearer t0ken",
    ] {
        assert!(head.contains(field), "{head}");
    }

    collector.away();
    send(&r, 300).await;
    // Waiting batches beyond 1 KB went to disk.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while spilled_files(&spill) == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(spilled_files(&spill) > 0);

    collector.back(200).await;
    let rays = collector.rays(340).await;
    assert_eq!(
        rays.len(),
        340,
        "every line delivered once the collector is back"
    );
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while spilled_files(&spill) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(spilled_files(&spill), 0, "delivered batches leave the disk");
    assert_eq!(dropped(&r.metrics().await), 0);
}

#[tokio::test]
async fn a_batch_the_collector_refuses_is_dropped_and_counted_and_a_full_spill_drops_the_oldest() {
    let origin = Origin::start(Behaviour::Echo).await;
    // 400: this batch will never be taken; the sink moves on.
    let mut collector = Collector::start(400).await;
    let spill = spill_dir();
    let r = rampart(
        origin.addr,
        collector.addr,
        &spill,
        "memory_limit = \"1KB\"\nbatch_bytes = \"2KB\"\nspill_limit = \"3KB\"",
    )
    .await;
    send(&r, 5).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while dropped(&r.metrics().await) < 5 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(dropped(&r.metrics().await), 5);

    // Away, with 3 KB of disk: the oldest batches make room for the newest, counted.
    collector.away();
    send(&r, 200).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while dropped(&r.metrics().await) <= 5 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lost = dropped(&r.metrics().await) - 5;
    assert!(lost > 0 && lost < 200, "{lost}");
    let on_disk: u64 = std::fs::read_dir(&spill)
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(on_disk <= 3 * 1024, "{on_disk}");

    // Back: what was kept arrives; with what was counted, every line is accounted for.
    collector.back(200).await;
    let deadline = tokio::time::Instant::now() + PATIENCE * 2;
    loop {
        let received = collector.rays(0).await.len() as u64;
        let lost = dropped(&r.metrics().await) - 5;
        if received + lost == 200 || tokio::time::Instant::now() > deadline {
            assert_eq!(received + lost, 200, "{received} received, {lost} dropped");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn sink_settings_are_checked_with_their_keys() {
    common::assert_config_error(
        "[server]\naccess_log = \"ftp://x/\"\n",
        "server.access_log",
        "",
    );
    common::assert_config_error(
        "[server]\naccess_log = \"http://127.0.0.1:9/\"\n[server.log_sink]\nheaders = { \"bad name\" = \"x\" }\n",
        "server.log_sink.headers.bad name",
        "a header needs a field name",
    );
    common::assert_config_error(
        "[server]\naccess_log = \"http://127.0.0.1:9/\"\n[server.log_sink]\nspill_limt = \"1GB\"\n",
        "server.log_sink.spill_limt",
        "did you mean `spill_limit`",
    );
    let loaded = rampart::config::load_str(
        "t.toml",
        "[server]\naccess_log = \"-\"\n[server.log_sink]\ntimeout = \"5s\"\n[[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"http://127.0.0.1:1\"\n",
        None,
    )
    .unwrap();
    assert!(loaded.warnings[0].to_string().contains("has no effect"));
}
