//! Replays generated edge traffic (`rampart_ratelimit::traffic::edge_traffic`) against
//! rampart nodes, round robin, at the sequence's own times, and reports how the nodes'
//! rate-limit decisions compare with an exact sliding log. Used by `bench/fleet-accuracy`.
//!
//! ```text
//! fleet_replay NODE[,NODE...] MINUTES LABEL
//! ```
//!
//! Each client of the sequence is named by `X-Real-IP: 10.x.y.z` (the nodes trust the
//! replayer's address for it). The rule being measured is 100 requests per 60 s per client,
//! throttled (no block), on `GET /small`. Prints one Markdown table row.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: usize = 100;
const PERIOD_MS: u64 = 60_000;

type Pool = Arc<Mutex<Vec<TcpStream>>>;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, nodes, minutes, label] = args.as_slice() else {
        eprintln!("usage: fleet_replay NODE[,NODE...] MINUTES LABEL");
        std::process::exit(2);
    };
    let nodes: Vec<SocketAddr> = nodes.split(',').map(|n| n.parse().unwrap()).collect();
    let span_ms = minutes.parse::<u64>().unwrap() * 60_000;
    let (mut requests, _) = rampart_ratelimit::traffic::edge_traffic(42);
    requests.retain(|&(t, _)| t < span_ms);
    let pools: Vec<Pool> = nodes.iter().map(|_| Pool::default()).collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let start = Instant::now();
    let mut late = 0u64;
    for (i, &(t, client)) in requests.iter().enumerate() {
        let at = start + Duration::from_millis(t);
        if Instant::now() > at + Duration::from_millis(5) {
            late += 1;
        }
        tokio::time::sleep_until(at.into()).await;
        let node = i % nodes.len();
        let (addr, pool, tx) = (nodes[node], pools[node].clone(), tx.clone());
        tokio::spawn(async move {
            let sent = start.elapsed().as_millis() as u64;
            let status = request(addr, &pool, client).await;
            let _ = tx.send((sent, client, status));
        });
    }
    drop(tx);
    let mut results = Vec::with_capacity(requests.len());
    while let Some(r) = rx.recv().await {
        results.push(r);
    }
    results.sort_unstable();
    report(label, &results, late);
}

/// One request; its status (0 when it failed). A kept-alive connection the node has closed
/// meanwhile is replaced by a new one, once.
async fn request(addr: SocketAddr, pool: &Pool, client: u64) -> u16 {
    let kept = pool.lock().unwrap().pop();
    if let Some(conn) = kept {
        match exchange(conn, pool, client).await {
            0 => {}
            status => return status,
        }
    }
    match TcpStream::connect(addr).await {
        Ok(conn) => exchange(conn, pool, client).await,
        Err(_) => 0,
    }
}

async fn exchange(mut conn: TcpStream, pool: &Pool, client: u64) -> u16 {
    let ip = format!(
        "10.{}.{}.{}",
        (client >> 16) & 255,
        (client >> 8) & 255,
        client & 255
    );
    let req = format!(
        "GET /small HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: fleet-replay\r\nX-Real-IP: {ip}\r\n\r\n"
    );
    if conn.write_all(req.as_bytes()).await.is_err() {
        return 0;
    }
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return 0,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length: Option<usize> = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok());
    let Some(length) = length else {
        return status; // Not kept: the body's end is unknown.
    };
    while buf.len() < head_end + length {
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return status,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    if !head.contains("connection: close") {
        pool.lock().unwrap().push(conn);
    }
    status
}

/// Compares the decisions with an exact sliding log ("fewer than 100 accepted in the last
/// 60 s"), closed loop (the log counts what it accepted) and on the nodes' own history.
fn report(label: &str, results: &[(u64, u64, u16)], late: u64) {
    let mut closed: HashMap<u64, VecDeque<u64>> = HashMap::new();
    let mut own: HashMap<u64, VecDeque<u64>> = HashMap::new();
    let (mut wrong_closed, mut wrong_own, mut admitted, mut log_admitted, mut failed) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut most = 0;
    for &(t, client, status) in results {
        if status != 200 && status != 429 {
            failed += 1;
            continue;
        }
        let yes = status == 200;
        let log = closed.entry(client).or_default();
        while log.front().is_some_and(|&f| f + PERIOD_MS <= t) {
            log.pop_front();
        }
        let exact = log.len() < LIMIT;
        if exact {
            log.push_back(t);
            log_admitted += 1;
        }
        let mine = own.entry(client).or_default();
        while mine.front().is_some_and(|&f| f + PERIOD_MS <= t) {
            mine.pop_front();
        }
        let exact_own = mine.len() < LIMIT;
        if yes {
            mine.push_back(t);
            admitted += 1;
            most = most.max(mine.len());
        }
        wrong_closed += u64::from(yes != exact);
        wrong_own += u64::from(yes != exact_own);
    }
    let n = results.len() as f64;
    println!(
        "| {label} | {} | {:.3} % | {:.3} % | {:.3} | {most} | {failed} | {late} |",
        results.len(),
        100.0 * wrong_closed as f64 / n,
        100.0 * wrong_own as f64 / n,
        admitted as f64 / log_admitted.max(1) as f64,
    );
}
