//! The cache's disk tier: what it stores survives a restart, over HTTP/1.1 and HTTP/2; what
//! is torn or corrupt is never served; purge reaches it; the bound in bytes holds; a body over
//! max_object_size is never stored.

mod common;

use std::path::{Path, PathBuf};

use common::http2::{self, h2c};
use common::*;

fn object(path: &str) -> Vec<u8> {
    let body = format!("the body of {path}");
    format!(
        "HTTP/1.1 200 OK\r\nCache-Control: max-age=3600\r\nETag: \"e\"\r\nCache-Tag: t\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn start(origin: &Origin, dir: &Path, extra: &str) -> Rampart {
    let cache = format!("[cache]\ndisk_path = \"{}\"\n{extra}", dir.display());
    Rampart::start_with(origin.addr, "", "", &cache).await
}

fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!("rampart-disk-{}", fastrand::u64(..)))
}

async fn get(rampart: &Rampart, path: &str) -> Response {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: example.test\r\n\r\n");
    rampart.request(raw.as_bytes()).await.0
}

/// The admin listener's cache statistics.
async fn stats(rampart: &Rampart) -> serde_json::Value {
    let mut c = Client::connect(rampart.admin.unwrap()).await;
    c.send(b"GET /client/v4/cache HTTP/1.1\r\nHost: admin\r\n\r\n")
        .await;
    c.response(false).await.json()["result"].clone()
}

/// Waits (boundedly) until the disk tier holds `n` objects: writes happen behind requests.
async fn disk_holds(rampart: &Rampart, n: u64) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let s = stats(rampart).await;
        if s["disk"]["objects"] == n {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "disk: {s}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn stop(mut rampart: Rampart) {
    rampart.server.take().unwrap().shutdown().await;
}

fn cache_status(r: &Response) -> String {
    r.header("rampart-cache-status").unwrap_or_default()
}

#[tokio::test]
async fn objects_on_disk_survive_a_restart_over_http1_and_http2() {
    let origin = Origin::start(Behaviour::With(std::sync::Arc::new(|r: &Received| {
        object(r.request_line().split(' ').nth(1).unwrap())
    })))
    .await;
    let dir = temp_dir();
    let rampart = start(&origin, &dir, "").await;
    assert_eq!(cache_status(&get(&rampart, "/a.css").await), "MISS");
    assert_eq!(cache_status(&get(&rampart, "/b.js").await), "MISS");
    disk_holds(&rampart, 2).await;
    stop(rampart).await;

    let rampart = start(&origin, &dir, "").await;
    assert_eq!(stats(&rampart).await["disk"]["objects"], 2);
    assert_eq!(stats(&rampart).await["objects"], 0, "memory starts empty");
    let r = get(&rampart, "/a.css").await;
    assert_eq!((r.status, cache_status(&r).as_str()), (200, "HIT"));
    assert_eq!(r.text(), "the body of /a.css");
    assert_eq!(r.header("etag").as_deref(), Some("\"e\""));
    let mut h2 = h2c(rampart.addr).await;
    let r = http2::send(&mut h2, http2::get("http://example.test/b.js"), None).await;
    assert_eq!(r.headers["rampart-cache-status"], "HIT");
    assert_eq!(r.body, b"the body of /b.js");
    // Conditionals are answered from a disk object as from memory.
    let raw = b"GET /b.js HTTP/1.1\r\nHost: example.test\r\nIf-None-Match: \"e\"\r\n\r\n";
    assert_eq!(rampart.request(raw).await.0.status, 304);
    assert_eq!(origin.received().len(), 2, "nothing fetched again");

    // Purge reaches the disk: after a restart, the purged object is gone.
    let mut c = Client::connect(rampart.admin.unwrap()).await;
    let body = r#"{"files": ["http://example.test/a.css"]}"#;
    c.send(
        format!(
            "POST /client/v4/zones/example.test/purge_cache HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(c.response(false).await.json()["success"], true);
    stop(rampart).await;
    let rampart = start(&origin, &dir, "").await;
    assert_eq!(stats(&rampart).await["disk"]["objects"], 1);
    assert_eq!(cache_status(&get(&rampart, "/a.css").await), "MISS");
    assert_eq!(cache_status(&get(&rampart, "/b.js").await), "HIT");
    stop(rampart).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_torn_or_corrupt_file_is_never_served() {
    let origin = Origin::start(Behaviour::Raw(object("/x"))).await;
    let dir = temp_dir();
    let rampart = start(&origin, &dir, "").await;
    get(&rampart, "/a.css").await;
    get(&rampart, "/b.css").await;
    disk_holds(&rampart, 2).await;
    stop(rampart).await;
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    assert_eq!(files.len(), 2);
    // One torn (a crash mid-write), one with a flipped bit in its body.
    let torn = std::fs::read(&files[0]).unwrap();
    std::fs::write(&files[0], &torn[..torn.len() / 2]).unwrap();
    let mut flipped = std::fs::read(&files[1]).unwrap();
    let at = flipped.len() - 12;
    flipped[at] ^= 0x20;
    std::fs::write(&files[1], flipped).unwrap();

    let rampart = start(&origin, &dir, "").await;
    assert_eq!(
        stats(&rampart).await["disk"]["objects"],
        1,
        "the torn one is dropped at once"
    );
    for path in ["/a.css", "/b.css"] {
        let r = get(&rampart, path).await;
        assert_eq!(cache_status(&r), "MISS", "{path}");
        assert_eq!(r.text(), "the body of /x");
    }
    assert_eq!(origin.received().len(), 4);
    stop(rampart).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_disk_bound_holds() {
    let origin = Origin::start(Behaviour::With(std::sync::Arc::new(|r: &Received| {
        object(r.request_line().split(' ').nth(1).unwrap())
    })))
    .await;
    let dir = temp_dir();
    // Each file is a few hundred bytes: 2 KB holds a handful.
    let rampart = start(&origin, &dir, "disk = \"2KB\"\n").await;
    for i in 0..30 {
        get(&rampart, &format!("/{i}.css")).await;
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let s = stats(&rampart).await;
        let on_disk: u64 = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum();
        assert!(s["disk"]["bytes"].as_u64().unwrap() <= 2048, "{s}");
        assert!(on_disk <= 2048 + 1024, "{on_disk} bytes of files");
        if s["disk"]["objects"].as_u64().unwrap() > 0 && on_disk <= 2048 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{s}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop(rampart).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_disk_path_that_is_a_file_is_a_config_error_and_a_reload_says_cache_needs_a_restart() {
    let file = std::env::temp_dir().join(format!("rampart-not-a-dir-{}", fastrand::u64(..)));
    std::fs::write(&file, "x").unwrap();
    let src = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[[zone]]\nname = \"z\"\nhosts = [\"a.test\"]\norigin = \"http://127.0.0.1:1\"\n[cache]\ndisk_path = \"{}\"\n",
        file.display()
    );
    let e = rampart::config::load_str("site.toml", &src, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("site.toml:8") && e.contains("cache.disk_path") && e.contains("not a directory"),
        "{e}"
    );
    let _ = std::fs::remove_file(file);

    let origin = Origin::start(Behaviour::Raw(object("/x"))).await;
    let rampart = Rampart::start(origin.addr).await;
    let changed = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[[zone]]\nname = \"z\"\nhosts = [\"a.test\"]\norigin = \"http://{}\"\n[cache]\nmemory = \"1MB\"\n",
        origin.addr
    );
    let loaded = rampart::config::load_str("site.toml", &changed, None).unwrap();
    let fixed = rampart.server.as_ref().unwrap().reload(loaded.config);
    assert!(fixed.contains(&"cache"), "{fixed:?}");
}

#[tokio::test]
async fn a_body_over_max_object_size_streams_through_uncached() {
    let big = "x".repeat(5000);
    let responder: Responder = std::sync::Arc::new(move |r: &Received| {
        let path = r
            .request_line()
            .split(' ')
            .nth(1)
            .unwrap_or("/")
            .to_string();
        if path == "/chunked.js" {
            // No Content-Length: found too large only as it streams.
            format!(
                "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
                big.len(),
                big.len()
            )
            .into_bytes()
        } else {
            format!(
                "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: {}\r\n\r\n{big}",
                big.len()
            )
            .into_bytes()
        }
    });
    let origin = Origin::start(Behaviour::With(responder)).await;
    let rampart =
        Rampart::start_with(origin.addr, "", "", "[cache]\nmax_object_size = \"4KB\"\n").await;
    for path in ["/big.js", "/chunked.js"] {
        for _ in 0..2 {
            let r = get(&rampart, path).await;
            assert_eq!(r.status, 200);
            assert_eq!(cache_status(&r), "MISS", "{path}: never stored");
            assert_eq!(r.body.len(), if path == "/big.js" { 5000 } else { 10000 });
        }
    }
    assert_eq!(origin.received().len(), 4);
    assert_eq!(stats(&rampart).await["objects"], 0);
}
