//! Thread per core: connections spread evenly over the worker threads, whatever the kernel's
//! `SO_REUSEPORT` hash does.

mod common;

use common::{Behaviour, Origin};
use std::sync::Arc;
use std::time::Duration;

/// `rampart_worker_connections` for each worker, from the metrics text.
fn per_worker(metrics: &rampart::observe::Metrics) -> Vec<i64> {
    let text = metrics.encode();
    let mut counts = Vec::new();
    for w in 0.. {
        let prefix = format!("rampart_worker_connections{{worker=\"{w}\"}} ");
        match text.lines().find_map(|l| l.strip_prefix(prefix.as_str())) {
            Some(v) => counts.push(v.parse().unwrap()),
            None => break,
        }
    }
    counts
}

/// 40 keep-alive connections over two workers: each worker serves 20, each connection is
/// answered (those handed from one worker to the other included), the counts follow the
/// clients that leave, and shutdown closes the idle rest. The kernel alone puts exactly 20 on each in about one run in
/// eight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_spread_evenly_over_the_workers() {
    let origin = Origin::start(Behaviour::Echo).await;
    let src = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nadmin_listen = \"off\"\naccess_log = \"off\"\nworkers = 2\n\
         client_header_timeout = \"60s\"\ndrain_timeout = \"2s\"\n\
         [[zone]]\nname = \"example.test\"\nhosts = [\"example.test\"]\norigin = \"http://{}\"\n",
        origin.addr
    );
    let loaded = rampart::config::load_str("t", &common::without_bic(&src), None).unwrap();
    let metrics = Arc::new(rampart::observe::Metrics::new());
    let log = rampart::observe::AccessLog::off(metrics.clone());
    let server = rampart::listen::Server::start_workers(loaded.config, log, metrics.clone(), 2)
        .await
        .unwrap();
    let mut clients = Vec::new();
    for _ in 0..40 {
        let mut c = common::Client::connect(server.local_addrs[0]).await;
        c.send(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
            .await;
        assert_eq!(c.response(false).await.status, 200);
        clients.push(c);
    }
    assert_eq!(per_worker(&metrics), [20, 20]);
    // Every connection still works: a second request on each.
    for c in &mut clients {
        c.send(b"GET /again HTTP/1.1\r\nHost: example.test\r\n\r\n")
            .await;
        assert_eq!(c.response(false).await.status, 200);
    }
    // Ten clients leave; the other thirty stay idle until shutdown, which each worker's
    // connections hear from that worker's copy of the signal and close at once.
    clients.truncate(30);
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    while per_worker(&metrics).iter().sum::<i64>() != 30 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(per_worker(&metrics).iter().sum::<i64>(), 30);
    // And one that connected and has sent nothing yet: shutdown closes it too, rather than
    // waiting out its header timeout (60 s, past the 2 s drain).
    let silent = tokio::net::TcpStream::connect(server.local_addrs[0])
        .await
        .unwrap();
    while per_worker(&metrics).iter().sum::<i64>() != 31 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.shutdown().await, 0, "idle connections closed");
    drop(silent);
    assert_eq!(per_worker(&metrics), [0, 0]);
    drop(clients);
}
