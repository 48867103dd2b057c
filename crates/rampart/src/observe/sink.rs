//! The access log's HTTP sink: lines sent to a collector (ClickHouse's HTTP interface, Loki,
//! Elasticsearch, Vector, anything that takes NDJSON in a POST) in gzip batches.
//!
//! - **Bounded memory.** Lines gather into a batch of at most `batch_bytes`, sealed (gzipped)
//!   when full or `flush_interval` after its first line. Sealed batches wait in memory up to
//!   `memory_limit` bytes; beyond that they go to `spill_dir`.
//! - **Retry with back-off.** One delivery thread posts batches in order, oldest first (memory,
//!   then disk); a failure (connection, timeout, 5xx, 408, 429) is retried after 1 s doubling
//!   to 60 s. A batch the collector refuses outright (another 4xx) is dropped and counted, so
//!   one bad batch cannot stop the rest.
//! - **Spill to disk, then deliver.** Spilled batches are files `<seq>-<lines>.ndjson.gz`,
//!   written whole (`config::save::write_atomically`: temporary file, fsync, rename) and deleted once delivered, also after a
//!   restart. Over `spill_limit` bytes the oldest files go, their lines counted as dropped.
//! - **Counted.** Every line that never reaches the collector is added to
//!   `rampart_access_log_dropped_lines_total`; nothing is dropped while the spill directory
//!   has room. At shutdown, what cannot be delivered within one attempt is spilled.
//!
//! Delivery is at least once: a collector that took a batch but failed to answer gets it
//! again.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::log_sink::HttpSinkConfig;
use crate::observe::Metrics;

/// A sealed batch.
struct Batch {
    gz: Vec<u8>,
    lines: u64,
}

struct Inner {
    /// Lines not yet sealed.
    open: Vec<u8>,
    open_lines: u64,
    /// When the open batch got its first line.
    opened: Option<Instant>,
    /// Sealed batches in memory, oldest first.
    sealed: VecDeque<Batch>,
    sealed_bytes: u64,
    closed: bool,
}

struct Shared {
    config: HttpSinkConfig,
    inner: Mutex<Inner>,
    wake: Condvar,
    metrics: Arc<Metrics>,
    /// Serialises the spill directory's writers (the log writer thread and the delivery
    /// thread) and numbers its files.
    spill: Mutex<u64>,
    /// The spilled file being delivered: never chosen to make room.
    in_flight: Mutex<Option<PathBuf>>,
}

/// The `Write` end the access log's writer thread writes lines to.
pub struct HttpSink {
    shared: Arc<Shared>,
    delivery: Option<std::thread::JoinHandle<()>>,
}

impl HttpSink {
    /// Starts the delivery thread; batches spilled by an earlier run are delivered first.
    pub fn start(config: &HttpSinkConfig, metrics: Arc<Metrics>) -> std::io::Result<HttpSink> {
        std::fs::create_dir_all(&config.spill_dir).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot create the log spill directory {} (server.log_sink.spill_dir): {e}",
                    config.spill_dir.display()
                ),
            )
        })?;
        // A temporary file is a batch whose writing was cut short (a crash, a full disk).
        for e in std::fs::read_dir(&config.spill_dir)?.flatten() {
            if e.file_name().to_string_lossy().ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let next = spilled(&config.spill_dir)
            .last()
            .map_or(0, |(seq, _, _)| seq + 1);
        let shared = Arc::new(Shared {
            config: config.clone(),
            inner: Mutex::new(Inner {
                open: Vec::new(),
                open_lines: 0,
                opened: None,
                sealed: VecDeque::new(),
                sealed_bytes: 0,
                closed: false,
            }),
            wake: Condvar::new(),
            metrics,
            spill: Mutex::new(next),
            in_flight: Mutex::new(None),
        });
        let s = shared.clone();
        let delivery = std::thread::Builder::new()
            .name("rampart-log-sink".into())
            .spawn(move || deliver(&s))?;
        Ok(HttpSink {
            shared,
            delivery: Some(delivery),
        })
    }
}

impl Write for HttpSink {
    /// Takes whole lines (the writer hands over whole buffers of them), cut into batches of at
    /// most `batch_bytes` at line ends (a longer line is a batch of its own); never fails.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let sh = &self.shared;
        let limit = usize::try_from(sh.config.batch_bytes).unwrap_or(usize::MAX);
        let mut rest = buf;
        while !rest.is_empty() {
            let mut inner = lock(&sh.inner);
            let room = limit.saturating_sub(inner.open.len());
            let take = if rest.len() <= room {
                rest.len()
            } else {
                match rest[..room].iter().rposition(|&b| b == b'\n') {
                    Some(end) => end + 1,
                    // Not even one line fits: seal what is open, or take the line alone.
                    None if !inner.open.is_empty() => 0,
                    None => rest
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(rest.len(), |end| end + 1),
                }
            };
            let (part, tail) = rest.split_at(take);
            rest = tail;
            inner.open.extend_from_slice(part);
            inner.open_lines += part.iter().filter(|&&b| b == b'\n').count() as u64;
            let first = inner.opened.is_none() && !part.is_empty();
            if first {
                inner.opened = Some(Instant::now());
            }
            if inner.open.len() >= limit || !rest.is_empty() {
                seal(sh, inner);
            } else if first {
                // The delivery thread times the batch from its first line.
                drop(inner);
                sh.wake.notify_all();
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for HttpSink {
    /// Seals what is open and lets the delivery thread make one last attempt, spilling what
    /// it cannot deliver.
    fn drop(&mut self) {
        {
            let mut inner = lock(&self.shared.inner);
            inner.closed = true;
        }
        self.shared.wake.notify_all();
        if let Some(t) = self.delivery.take() {
            let _ = t.join();
        }
    }
}

/// The sink's locks guard plain values updated in place: a panic cannot leave one
/// half-written, so a poisoned lock is still consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Seals the open batch: gzipped into memory, or to disk when memory is full.
fn seal(sh: &Shared, mut inner: MutexGuard<'_, Inner>) {
    if inner.open.is_empty() {
        return;
    }
    let raw = std::mem::take(&mut inner.open);
    let lines = std::mem::take(&mut inner.open_lines);
    inner.opened = None;
    drop(inner);
    let batch = Batch {
        gz: gzip(&raw),
        lines,
    };
    let mut inner = lock(&sh.inner);
    if inner.sealed_bytes + batch.gz.len() as u64 <= sh.config.memory_limit {
        inner.sealed_bytes += batch.gz.len() as u64;
        inner.sealed.push_back(batch);
        drop(inner);
    } else {
        drop(inner);
        spill(sh, &batch);
    }
    sh.wake.notify_all();
}

fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(raw.len() / 8),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(raw);
    enc.finish().unwrap_or_default()
}

/// The spilled batches, oldest first: (sequence, lines, path).
fn spilled(dir: &Path) -> Vec<(u64, u64, PathBuf)> {
    let mut out: Vec<(u64, u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (seq, lines) = name.strip_suffix(".ndjson.gz")?.split_once('-')?;
            Some((seq.parse().ok()?, lines.parse().ok()?, e.path()))
        })
        .collect();
    out.sort_unstable();
    out
}

/// Writes a batch to the spill directory, making room under `spill_limit` by dropping the
/// oldest files (their lines counted); a batch that cannot be written is counted as dropped.
fn spill(sh: &Shared, batch: &Batch) {
    let c = &sh.config;
    let mut next = lock(&sh.spill);
    let in_flight = lock(&sh.in_flight).clone();
    // Sizes as listed; the file being delivered is neither counted nor chosen.
    let mut files: VecDeque<(u64, u64, PathBuf)> = spilled(&c.spill_dir)
        .into_iter()
        .filter(|(_, _, p)| Some(p) != in_flight.as_ref())
        .filter_map(|(_, lines, p)| Some((std::fs::metadata(&p).ok()?.len(), lines, p)))
        .collect();
    let mut used: u64 = files.iter().map(|(size, _, _)| size).sum();
    let mut dropped = 0;
    while used + batch.gz.len() as u64 > c.spill_limit {
        let Some((size, lines, path)) = files.pop_front() else {
            break;
        };
        used -= size;
        if std::fs::remove_file(&path).is_ok() {
            dropped += lines;
        }
    }
    let written = if used + batch.gz.len() as u64 <= c.spill_limit {
        let name = format!("{:012}-{}.ndjson.gz", *next, batch.lines);
        *next += 1;
        crate::config::save::write_atomically(&c.spill_dir.join(name), &batch.gz)
    } else {
        Err(std::io::Error::other("larger than spill_limit"))
    };
    if let Err(e) = written {
        dropped += batch.lines;
        tracing::error!(
            "log sink: a batch of {} lines could not be spilled to {}: {e}; dropped",
            batch.lines,
            c.spill_dir.display()
        );
    }
    if dropped > 0 {
        sh.metrics.log_dropped().inc_by(dropped);
        tracing::error!(
            "log sink: {dropped} lines dropped: the collector is away and {} is full (spill_limit)",
            c.spill_dir.display()
        );
    }
}

/// What to send next.
enum Next {
    Memory,
    Disk(u64, PathBuf),
}

/// The delivery thread.
fn deliver(sh: &Shared) {
    let c = &sh.config;
    let mut failures = 0u32;
    loop {
        // Wait for something to send (or for the open batch to come of age).
        let mut inner = lock(&sh.inner);
        let closing = inner.closed;
        let due = inner
            .opened
            .is_some_and(|t| closing || t.elapsed() >= c.flush_interval);
        if due {
            seal(sh, inner);
            inner = lock(&sh.inner);
        }
        let next = if !inner.sealed.is_empty() {
            Some(Next::Memory)
        } else if closing {
            // At shutdown only what is in memory is sent; the disk keeps its batches for the
            // next start.
            None
        } else {
            spilled(&c.spill_dir)
                .into_iter()
                .next()
                .map(|(_, lines, path)| Next::Disk(lines, path))
        };
        let Some(next) = next else {
            if closing {
                return;
            }
            let wait = inner.opened.map_or(c.flush_interval, |t| {
                c.flush_interval.saturating_sub(t.elapsed())
            });
            drop(
                sh.wake
                    .wait_timeout(inner, wait.max(Duration::from_millis(1))),
            );
            continue;
        };
        let (body, lines) = match &next {
            // The batch stays first in the queue while it is sent: a failure keeps it there.
            Next::Memory => match inner.sealed.front() {
                Some(b) => {
                    let batch = (b.gz.clone(), b.lines);
                    drop(inner);
                    batch
                }
                None => continue,
            },
            Next::Disk(lines, path) => {
                drop(inner);
                *lock(&sh.in_flight) = Some(path.clone());
                match std::fs::read(path) {
                    Ok(b) => (b, *lines),
                    Err(e) => {
                        tracing::error!("log sink: cannot read {}: {e}; dropped", path.display());
                        let _ = std::fs::remove_file(path);
                        sh.metrics.log_dropped().inc_by(*lines);
                        *lock(&sh.in_flight) = None;
                        continue;
                    }
                }
            }
        };
        let outcome = post(c, &body);
        let delivered_file = || {
            if let Next::Disk(_, path) = &next {
                let _ = std::fs::remove_file(path);
            }
            *lock(&sh.in_flight) = None;
        };
        let done = match &outcome {
            Ok(()) => true,
            Err(Failure::Refused(status)) => {
                sh.metrics.log_dropped().inc_by(lines);
                tracing::error!(
                    "log sink: {} refused a batch of {lines} lines with {status}; dropped",
                    c.url
                );
                true
            }
            Err(Failure::Retry(_)) => false,
        };
        if done {
            match &next {
                Next::Memory => {
                    let mut inner = lock(&sh.inner);
                    if let Some(b) = inner.sealed.pop_front() {
                        inner.sealed_bytes -= b.gz.len() as u64;
                    }
                }
                Next::Disk(..) => delivered_file(),
            }
            if failures > 0 {
                tracing::info!("log sink: {} takes batches again", c.url);
            }
            failures = 0;
            continue;
        }
        let Err(Failure::Retry(why)) = outcome else {
            continue;
        };
        *lock(&sh.in_flight) = None;
        failures += 1;
        if closing {
            // One attempt at shutdown: what is left waits on disk for the next start.
            let mut inner = lock(&sh.inner);
            let left: Vec<Batch> = inner.sealed.drain(..).collect();
            inner.sealed_bytes = 0;
            drop(inner);
            for b in &left {
                spill(sh, b);
            }
            tracing::warn!(
                "log sink: {} is away at shutdown ({why}); {} batches kept in {}",
                c.url,
                left.len(),
                c.spill_dir.display()
            );
            return;
        }
        let backoff = Duration::from_secs(1 << (failures - 1).min(6)).min(Duration::from_secs(60));
        if failures == 1 || failures.is_power_of_two() {
            tracing::error!(
                "log sink: cannot deliver to {} ({why}); {failures} failures in a row, next attempt in {}s; batches wait in memory, then in {}",
                c.url,
                backoff.as_secs(),
                c.spill_dir.display()
            );
        }
        let inner = lock(&sh.inner);
        drop(sh.wake.wait_timeout_while(inner, backoff, |i| !i.closed));
    }
}

enum Failure {
    /// Try again later: connection, timeout, 5xx, 408, 429.
    Retry(String),
    /// The collector refuses this batch: another 4xx.
    Refused(u16),
}

/// One POST of a gzipped batch; `Ok` for a 2xx answer.
fn post(c: &HttpSinkConfig, body: &[u8]) -> Result<(), Failure> {
    let retry = |e: std::io::Error| Failure::Retry(e.to_string());
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(c.host.as_str(), c.port))
        .map_err(retry)?
        .next()
        .ok_or_else(|| Failure::Retry(format!("{} has no address", c.host)))?;
    let tcp = std::net::TcpStream::connect_timeout(&addr, c.timeout).map_err(retry)?;
    tcp.set_read_timeout(Some(c.timeout)).map_err(retry)?;
    tcp.set_write_timeout(Some(c.timeout)).map_err(retry)?;
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-ndjson\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: rampart\r\n",
        c.path,
        host_field(c),
        body.len()
    );
    for (name, value) in &c.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let status = if c.tls {
        let tls = crate::tls::OriginTls::new(true, None, false).map_err(Failure::Retry)?;
        let name = rustls::pki_types::ServerName::try_from(c.host.clone())
            .map_err(|e| Failure::Retry(e.to_string()))?;
        let conn = rustls::ClientConnection::new(tls.config, name)
            .map_err(|e| Failure::Retry(e.to_string()))?;
        exchange(rustls::StreamOwned::new(conn, tcp), &head, body).map_err(retry)?
    } else {
        exchange(tcp, &head, body).map_err(retry)?
    };
    match status {
        200..=299 => Ok(()),
        408 | 429 | 500.. => Err(Failure::Retry(format!("answered {status}"))),
        _ => Err(Failure::Refused(status)),
    }
}

fn host_field(c: &HttpSinkConfig) -> String {
    let host = if c.host.contains(':') {
        format!("[{}]", c.host)
    } else {
        c.host.clone()
    };
    match (c.tls, c.port) {
        (false, 80) | (true, 443) => host,
        (_, port) => format!("{host}:{port}"),
    }
}

/// Sends the request and reads the status code of the answer.
fn exchange(mut s: impl std::io::Read + Write, head: &str, body: &[u8]) -> std::io::Result<u16> {
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    s.flush()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !got.windows(2).any(|w| w == b"\r\n") && got.len() < 4096 {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    let line = text.split("\r\n").next().unwrap_or_default();
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .filter(|_| line.starts_with("HTTP/1."))
        .ok_or_else(|| std::io::Error::other("the collector's answer is not HTTP/1.1"))
}
