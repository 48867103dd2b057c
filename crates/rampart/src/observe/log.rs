//! The access log: one JSON line per request, written off the request path.
//!
//! Request handling only ever calls [`AccessLog::write`], which never blocks on the sink: the
//! line is appended to its worker thread's buffer, which a dedicated writer thread swaps out
//! and writes every [`BATCH_DELAY`]. A request costs no allocation, no channel operation and
//! (but for the first line of a batch) no wake-up. When a worker's buffer is full or the sink
//! fails (a full disk), lines are dropped and counted in
//! `rampart_access_log_dropped_lines_total`; traffic never stalls on logging.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use super::SecurityMatch;
use super::metrics::Metrics;
use crate::config::{AccessLogTarget, LogField};
use crate::worker::WorkerSlot;

/// How many bytes of lines may wait for the writer in one worker's buffer before new lines
/// are dropped (a sink that does not keep up, a full disk): with lines of every field, about
/// 50 ms of 100,000 requests a second on one worker; the writer is woken to take a buffer
/// long before, at [`EARLY_WRITE_BYTES`].
pub const WAITING_BYTES: usize = 4 << 20;

/// A worker's buffer this full wakes the writer before [`BATCH_DELAY`] has passed.
pub const EARLY_WRITE_BYTES: usize = 256 << 10;

/// How long the writer lets lines gather before it writes them.
pub const BATCH_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

/// Buffers of lines, one per worker thread (up to this many; more workers share them).
const SHARDS: usize = 64;

/// A batch buffer whose capacity grew beyond this is not kept for the next batch.
const KEPT_CAPACITY: usize = 1 << 20;

/// What happened to a request, filled in by the protocol driver as the request is handled.
#[derive(Debug, Default)]
pub struct LogRecord {
    /// ClientRequestBytes: head and body as received.
    pub client_request_bytes: u64,
    /// EdgeResponseStatus (499 when the client left first).
    pub edge_response_status: u16,
    /// EdgeResponseBytes.
    pub edge_response_bytes: u64,
    /// EdgeResponseContentType.
    pub edge_response_content_type: String,
    /// EdgeResponseCutShort: the body ended abnormally after the head went out.
    pub cut_short: bool,
    /// CacheCacheStatus.
    pub cache_status: Option<&'static str>,
    /// CacheResponseBytes.
    pub cache_response_bytes: u64,
    /// EdgeTimeToFirstByteMs.
    pub edge_time_to_first_byte_ms: u64,
    /// OriginResponseStatus (0 = no origin response).
    pub origin_response_status: u16,
    /// OriginResponseDurationMs (logged in whole milliseconds).
    pub origin_response_duration: Duration,
    /// OriginIP.
    pub origin_ip: Option<IpAddr>,
    /// ErrorCode of a generated error: its 1xxx code, else its status; 0 otherwise.
    pub error_code: u16,
    /// ErrorReason: `name: detail` of a generated error.
    pub error_reason: String,
}

/// What is known about the request itself, borrowed from it, for its log line.
#[derive(Debug)]
pub struct RequestInfo<'a> {
    /// RayID.
    pub ray_id: &'a str,
    /// ZoneName ("" before routing).
    pub zone: &'a str,
    /// EdgeStartTimestamp.
    pub started_at: SystemTime,
    /// ClientIP.
    pub client_ip: IpAddr,
    /// ClientSrcPort.
    pub client_port: u16,
    /// ClientRequestHost.
    pub host: &'a str,
    /// ClientRequestMethod.
    pub method: &'a str,
    /// ClientRequestURI.
    pub uri: &'a str,
    /// ClientRequestPath.
    pub path: &'a str,
    /// ClientRequestProtocol.
    pub protocol: &'static str,
    /// ClientRequestScheme: `http` or `https`.
    pub scheme: &'static str,
    /// ClientRequestUserAgent.
    pub user_agent: &'a [u8],
    /// ClientRequestReferer.
    pub referer: &'a [u8],
    /// ClientCountry.
    pub country: &'a str,
    /// ClientASN.
    pub asn: u32,
    /// SecurityAction, SecurityRuleID, SecurityRuleDescription: the deciding match.
    pub security: Option<&'a SecurityMatch>,
    /// SecuritySources.
    pub sources: &'a [&'static str],
}

/// Writes one JSON object with `fields` in their order. Written by hand into one buffer: a
/// log line costs no allocation of its own.
pub fn write_line(out: &mut Vec<u8>, fields: &[LogField], r: &RequestInfo<'_>, o: &LogRecord) {
    out.push(b'{');
    for (i, &f) in fields.iter().enumerate() {
        let key = f.key();
        out.extend_from_slice(if i == 0 { &key[1..] } else { key });
        write_value(out, f, r, o);
    }
    out.extend_from_slice(b"}\n");
}

/// The JSON value of one field.
fn write_value(out: &mut Vec<u8>, f: LogField, r: &RequestInfo<'_>, o: &LogRecord) {
    use crate::text::write_decimal as num;
    let security = r.security;
    match f {
        LogField::RayID => escape(out, r.ray_id),
        LogField::ZoneName => escape(out, r.zone),
        LogField::EdgeStartTimestamp => time(out, r.started_at),
        LogField::EdgeEndTimestamp => time(out, SystemTime::now()),
        LogField::ClientIP => ip(out, r.client_ip),
        LogField::ClientSrcPort => num(out, u64::from(r.client_port)),
        LogField::ClientRequestHost => escape(out, r.host),
        LogField::ClientRequestMethod => escape(out, r.method),
        LogField::ClientRequestURI => escape(out, r.uri),
        LogField::ClientRequestPath => escape(out, r.path),
        LogField::ClientRequestProtocol => escape(out, r.protocol),
        LogField::ClientRequestScheme => escape(out, r.scheme),
        LogField::ClientRequestBytes => num(out, o.client_request_bytes),
        LogField::ClientRequestUserAgent => escape(out, &String::from_utf8_lossy(r.user_agent)),
        LogField::ClientRequestReferer => escape(out, &String::from_utf8_lossy(r.referer)),
        LogField::ClientCountry => escape(out, r.country),
        LogField::ClientASN => num(out, u64::from(r.asn)),
        LogField::EdgeResponseStatus => num(out, u64::from(o.edge_response_status)),
        LogField::EdgeResponseBytes => num(out, o.edge_response_bytes),
        LogField::EdgeResponseContentType => escape(out, &o.edge_response_content_type),
        LogField::EdgeResponseCutShort => {
            out.extend_from_slice(if o.cut_short { b"true" } else { b"false" })
        }
        LogField::EdgeTimeToFirstByteMs => num(out, o.edge_time_to_first_byte_ms),
        LogField::OriginResponseStatus => num(out, u64::from(o.origin_response_status)),
        LogField::OriginResponseDurationMs => {
            num(out, o.origin_response_duration.as_millis() as u64)
        }
        LogField::OriginIP => match o.origin_ip {
            Some(a) => ip(out, a),
            None => escape(out, ""),
        },
        LogField::SecurityAction => escape(out, security.map_or("", |m| m.action)),
        LogField::SecurityRuleID => escape(out, security.map_or("", |m| m.rule_id.as_str())),
        LogField::SecurityRuleDescription => {
            escape(out, security.map_or("", |m| m.description.as_str()))
        }
        LogField::SecuritySources => {
            out.push(b'[');
            for (i, s) in r.sources.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                escape(out, s);
            }
            out.push(b']');
        }
        LogField::CacheCacheStatus => escape(out, o.cache_status.unwrap_or("")),
        LogField::CacheResponseBytes => num(out, o.cache_response_bytes),
        LogField::ErrorCode => num(out, u64::from(o.error_code)),
        LogField::ErrorReason => escape(out, &o.error_reason),
    }
}

/// An address as a JSON string.
fn ip(out: &mut Vec<u8>, ip: IpAddr) {
    out.push(b'"');
    crate::text::write_ip(out, ip);
    out.push(b'"');
}

/// A time as an RFC 3339 JSON string, to the millisecond.
fn time(out: &mut Vec<u8>, t: SystemTime) {
    out.push(b'"');
    crate::text::write_rfc3339_millis(out, t);
    out.push(b'"');
}

/// A JSON string (RFC 8259 §7): quotes, backslashes and control characters escaped.
fn escape(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    // Runs of bytes that need no escaping are copied whole.
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !matches!(b, b'"' | b'\\' | 0..=0x1f | 0x7f) {
            continue;
        }
        out.extend_from_slice(&bytes[run..i]);
        run = i + 1;
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            _ => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// Opens (creating it if need be) the access log file, to append.
fn open_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot open the access log {} (server.access_log): {e}",
                    path.display()
                ),
            )
        })
}

/// Handle for writing access log lines. Cloning is cheap.
#[derive(Clone)]
pub struct AccessLog {
    writer: Option<Arc<Writer>>,
    metrics: Arc<Metrics>,
}

/// The writer thread and what it drains. Dropping the last handle lets the thread write what
/// is waiting and end.
struct Writer {
    queue: Arc<Queue>,
    /// What each line holds, in order.
    fields: Box<[LogField]>,
    thread: std::thread::Thread,
    join: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Lines waiting for the writer.
struct Queue {
    shards: Box<[Shard]>,
    /// A shard holding this many bytes takes no more lines until the writer empties it.
    waiting_bytes: usize,
    /// Set by the first line after the writer last looked; the writer parks while it is clear.
    pending: AtomicBool,
    /// No more lines are taken; the writer writes what is waiting and ends.
    closed: AtomicBool,
    /// The writer reopens the file after its next batch (logrotate moved it).
    reopen: AtomicBool,
}

/// One worker's lines.
type Shard = WorkerSlot<Mutex<Vec<u8>>>;

fn lock(shard: &Shard) -> MutexGuard<'_, Vec<u8>> {
    shard.0.lock().unwrap_or_else(|p| p.into_inner())
}

impl AccessLog {
    /// Opens the sink and starts the writer thread; lines hold `fields`, in that order. A
    /// file that cannot be opened is an error.
    pub fn start(
        target: &AccessLogTarget,
        fields: &[LogField],
        metrics: Arc<Metrics>,
    ) -> std::io::Result<AccessLog> {
        AccessLog::start_with(target, fields, metrics, WAITING_BYTES)
    }

    /// [`AccessLog::start`] with `waiting_bytes` in place of [`WAITING_BYTES`].
    fn start_with(
        target: &AccessLogTarget,
        fields: &[LogField],
        metrics: Arc<Metrics>,
        waiting_bytes: usize,
    ) -> std::io::Result<AccessLog> {
        let sink: Box<dyn Write + Send> = match target {
            AccessLogTarget::Off => return Ok(AccessLog::off(metrics)),
            AccessLogTarget::Stdout => Box::new(std::io::stdout()),
            AccessLogTarget::File(path) => Box::new(open_file(path)?),
            AccessLogTarget::Http(sink) => {
                Box::new(super::sink::HttpSink::start(sink, metrics.clone())?)
            }
        };
        let queue = Arc::new(Queue {
            shards: (0..SHARDS)
                .map(|_| WorkerSlot(Mutex::new(Vec::new())))
                .collect(),
            waiting_bytes,
            pending: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            reopen: AtomicBool::new(false),
        });
        let (q, m) = (queue.clone(), metrics.clone());
        let path = match target {
            AccessLogTarget::File(p) => Some(p.clone()),
            _ => None,
        };
        let join = std::thread::Builder::new()
            .name("rampart-access-log".into())
            .spawn(move || write_batches(&q, sink, &m, path.as_deref()))?;
        let writer = Writer {
            queue,
            fields: fields.into(),
            thread: join.thread().clone(),
            join: Mutex::new(Some(join)),
        };
        Ok(AccessLog {
            writer: Some(Arc::new(writer)),
            metrics,
        })
    }

    /// A log that writes nothing.
    pub fn off(metrics: Arc<Metrics>) -> AccessLog {
        AccessLog {
            writer: None,
            metrics,
        }
    }

    /// Whether lines are written at all.
    pub fn enabled(&self) -> bool {
        self.writer.is_some()
    }

    /// Whether lines are written and hold `field` (to skip gathering what is not logged).
    pub fn logs(&self, field: LogField) -> bool {
        self.writer
            .as_ref()
            .is_some_and(|w| w.fields.contains(&field))
    }

    /// Adds the line of one request to this worker's buffer; never waits for the sink.
    pub fn write(&self, request: &RequestInfo<'_>, outcome: &LogRecord) {
        let Some(w) = &self.writer else { return };
        let q = &w.queue;
        {
            let mut lines = lock(&q.shards[crate::worker::worker_index() % SHARDS]);
            if lines.len() >= q.waiting_bytes || q.closed.load(Ordering::Relaxed) {
                drop(lines);
                self.metrics.log_dropped().inc();
                return;
            }
            write_line(&mut lines, &w.fields, request, outcome);
            if lines.len() >= EARLY_WRITE_BYTES {
                // The writer ends its wait for more lines now (and as often as lines come,
                // until it has taken these).
                drop(lines);
                q.pending.store(true, Ordering::Release);
                w.thread.unpark();
                return;
            }
        }
        // Only the first line after the writer last looked wakes it.
        if !q.pending.load(Ordering::Relaxed) && !q.pending.swap(true, Ordering::AcqRel) {
            w.thread.unpark();
        }
    }

    /// Has the writer reopen the file at its path after writing what is waiting (SIGUSR1,
    /// SIGHUP): once logrotate has renamed it, new lines go to a new file of the old name.
    /// Nothing happens for standard output or when the log is off.
    pub fn reopen(&self) {
        let Some(w) = &self.writer else { return };
        w.queue.reopen.store(true, Ordering::Release);
        w.queue.pending.store(true, Ordering::Release);
        w.thread.unpark();
    }

    /// Writes every line logged so far and stops the writer (at shutdown, once requests
    /// have finished). Lines logged afterwards are dropped and counted.
    pub fn close(&self) {
        let Some(w) = &self.writer else { return };
        w.close();
        let join = w.join.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(join) = join {
            let _ = join.join();
        }
    }
}

impl Writer {
    fn close(&self) {
        self.queue.closed.store(true, Ordering::Release);
        self.queue.pending.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close();
    }
}

/// The writer thread: waits for a first line, lets more gather for [`BATCH_DELAY`] (request
/// threads append meanwhile without waking it), then writes every worker's buffer.
fn write_batches(
    q: &Queue,
    mut sink: Box<dyn Write + Send>,
    metrics: &Metrics,
    path: Option<&std::path::Path>,
) {
    let mut batch = Vec::new();
    let mut warned = false;
    let mut mid_line = false;
    loop {
        let closing = q.closed.load(Ordering::Acquire);
        if !q.pending.load(Ordering::Acquire) {
            if closing {
                return;
            }
            std::thread::park();
            continue;
        }
        if !closing {
            // Lines gather; while `pending` is set no request thread wakes the writer, but
            // one whose buffer passes EARLY_WRITE_BYTES does, to end the wait early.
            std::thread::park_timeout(BATCH_DELAY);
        }
        q.pending.store(false, Ordering::Release);
        let mut lost = 0;
        for shard in q.shards.iter() {
            {
                let mut lines = lock(shard);
                // Only buffers with lines are traded, so the writer's spare capacity moves
                // between the workers' buffers and is not spread over every shard.
                if lines.is_empty() {
                    continue;
                }
                std::mem::swap(&mut *lines, &mut batch);
            }
            lost += write_lines(&mut sink, &batch, &mut mid_line);
            batch.clear();
            if batch.capacity() > KEPT_CAPACITY {
                batch = Vec::new();
            }
        }
        let flushed = sink.flush().is_ok();
        metrics.log_dropped().inc_by(lost);
        if q.reopen.swap(false, Ordering::AcqRel)
            && let Some(path) = path
        {
            match open_file(path) {
                Ok(file) => {
                    sink = Box::new(file);
                    mid_line = false;
                    tracing::info!("access log reopened: {}", path.display());
                }
                Err(e) => tracing::error!("{e}; still writing to the file open before"),
            }
        }
        if lost > 0 || !flushed {
            if !warned {
                tracing::error!("access log sink is failing; lines are being dropped and counted");
                warned = true;
            }
        } else {
            warned = false;
        }
    }
}

/// Writes whole lines to the sink; returns how many were lost to a failing sink (a line
/// written in part counts as lost). The sink is kept and tried again with the next batch.
///
/// A write cut short mid-line (a full disk) leaves a piece of a line in the sink, and
/// `mid_line` says so: the next write first ends that piece with a newline, so that the lines
/// after it stay whole lines instead of being glued onto it.
fn write_lines(sink: &mut dyn Write, lines: &[u8], mid_line: &mut bool) -> u64 {
    let all = || lines.iter().filter(|&&b| b == b'\n').count() as u64;
    if *mid_line {
        match sink.write(b"\n") {
            Ok(1) => *mid_line = false,
            _ => return all(),
        }
    }
    let mut done = 0;
    while done < lines.len() {
        match sink.write(&lines[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if done > 0 && done < lines.len() && lines[done - 1] != b'\n' {
        *mid_line = true;
    }
    lines[done..].iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that takes `room` bytes, then fails (a full disk) until given more room.
    struct Disk {
        data: Vec<u8>,
        room: usize,
    }

    impl Write for Disk {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::Error::other("no space left on device"));
            }
            let n = buf.len().min(self.room);
            self.data.extend_from_slice(&buf[..n]);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A disk that fills mid-line: the lines written after it has room again are whole lines,
    /// not glued onto the piece left behind; what was lost is counted.
    #[test]
    fn a_full_disk_leaves_no_line_glued_to_a_piece_of_another() {
        let mut disk = Disk {
            data: Vec::new(),
            room: 10,
        };
        let mut mid_line = false;
        let lost = write_lines(&mut disk, b"{\"a\":1}\n{\"b\":2}\n", &mut mid_line);
        assert_eq!(lost, 1);
        assert!(mid_line);
        // Still full: everything of the next batch is lost, nothing written.
        assert_eq!(write_lines(&mut disk, b"{\"c\":3}\n", &mut mid_line), 1);
        disk.room = 1000;
        assert_eq!(write_lines(&mut disk, b"{\"d\":4}\n", &mut mid_line), 0);
        assert!(!mid_line);
        let text = String::from_utf8(disk.data).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"\n{\"d\":4}\n");
        assert!(
            text.lines()
                .last()
                .is_some_and(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        );
    }

    /// Every ASCII character, alone and between runs, and non-ASCII text: escaped strings
    /// read back as the original.
    #[test]
    fn escaping_round_trips_through_a_json_parser() {
        let mut cases: Vec<String> = (0..128u8).map(|c| format!("ab{}cd", c as char)).collect();
        cases.push((0..128u8).map(char::from).collect());
        cases.push("\"\"\\\\ é ü 日本 \u{7f}\u{1f}".into());
        cases.push(String::new());
        for case in cases {
            let mut out = Vec::new();
            escape(&mut out, &case);
            let back: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, case);
        }
    }

    fn request(uri: &str) -> RequestInfo<'_> {
        RequestInfo {
            ray_id: "abc",
            zone: "z",
            started_at: SystemTime::now(),
            client_ip: "192.0.2.1".parse().unwrap(),
            client_port: 5,
            host: "h",
            method: "GET",
            uri,
            path: "/",
            protocol: "HTTP/1.1",
            scheme: "http",
            user_agent: b"",
            referer: b"",
            country: "",
            asn: 0,
            security: None,
            sources: &[],
        }
    }

    fn temp_log(name: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!(
            "rampart-log-unit-{name}-{}.log",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        path
    }

    /// Buffers of lines stay with the workers that write: shards no worker uses hold no
    /// memory, however many batches pass (the writer's spare buffer once wandered into
    /// every shard in turn, 64 of them, and the memory with it).
    #[test]
    fn idle_shards_hold_no_memory_after_many_batches() {
        let path = temp_log("idle-shards");
        let log = AccessLog::start(
            &AccessLogTarget::File(path.clone()),
            LogField::ALL,
            Arc::new(Metrics::new()),
        )
        .unwrap();
        let writer = log.writer.clone().unwrap();
        crate::worker::set_worker_index(3);
        for n in 0..20_000 {
            log.write(&request(&format!("/{n}")), &LogRecord::default());
            if n % 500 == 0 {
                // Let batches pass.
                std::thread::sleep(BATCH_DELAY / 10);
            }
        }
        log.close();
        let _ = std::fs::remove_file(&path);
        for (i, shard) in writer.queue.shards.iter().enumerate() {
            if i != 3 {
                assert_eq!(lock(shard).capacity(), 0, "shard {i} holds a buffer");
            }
        }
    }

    /// Four workers, each with its own buffer, log 5,000 lines each while the writer drains:
    /// after `close`, every line is in the file once, whole, and each worker's lines are in
    /// the order it logged them.
    #[test]
    fn every_line_from_every_worker_is_written_once_in_order() {
        let path = temp_log("order");
        let metrics = Arc::new(Metrics::new());
        let log = AccessLog::start(
            &AccessLogTarget::File(path.clone()),
            LogField::ALL,
            metrics.clone(),
        )
        .unwrap();
        let threads: Vec<_> = (0..4)
            .map(|w| {
                let log = log.clone();
                std::thread::spawn(move || {
                    crate::worker::set_worker_index(w);
                    for n in 0..5_000 {
                        let uri = format!("/{w}/{n}");
                        log.write(&request(&uri), &LogRecord::default());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        log.close();
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let mut next = [0u32; 4];
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let uri = v["ClientRequestURI"].as_str().unwrap();
            let (w, n) = uri[1..].split_once('/').unwrap();
            let w: usize = w.parse().unwrap();
            assert_eq!(
                n.parse::<u32>().unwrap(),
                next[w],
                "worker {w}'s lines in order"
            );
            next[w] += 1;
        }
        assert_eq!(next, [5_000; 4]);
        assert_eq!(metrics.log_dropped().get(), 0);
    }

    /// A buffer that fills faster than the writer drains it drops lines and counts them:
    /// lines written plus lines counted as dropped is every line logged. After `close`,
    /// lines are dropped and counted too.
    #[test]
    fn lines_beyond_the_waiting_limit_are_dropped_and_counted() {
        let path = temp_log("limit");
        let metrics = Arc::new(Metrics::new());
        let mut one = Vec::new();
        write_line(
            &mut one,
            LogField::ALL,
            &request("/"),
            &LogRecord::default(),
        );
        let log = AccessLog::start_with(
            &AccessLogTarget::File(path.clone()),
            LogField::ALL,
            metrics.clone(),
            3 * one.len(),
        )
        .unwrap();
        for _ in 0..1_000 {
            log.write(&request("/"), &LogRecord::default());
        }
        log.close();
        log.write(&request("/"), &LogRecord::default());
        let written = std::fs::read_to_string(&path).unwrap().lines().count() as u64;
        let _ = std::fs::remove_file(&path);
        let dropped = metrics.log_dropped().get();
        assert!(written >= 3, "{written} lines written");
        assert!(dropped >= 900, "{dropped} lines dropped");
        assert_eq!(written + dropped, 1_001);
    }

    #[test]
    fn a_line_is_valid_json_with_escaped_strings() {
        let m = SecurityMatch {
            action: "block",
            rule_id: "r\"1".into(),
            description: "a\\b\u{1}".into(),
            source: "firewallCustom",
        };
        let r = RequestInfo {
            started_at: SystemTime::UNIX_EPOCH,
            scheme: "https",
            user_agent: b"ua\xff",
            security: Some(&m),
            sources: &["firewallCustom", "rateLimit"],
            ..request("/\"x\"")
        };
        let o = LogRecord {
            edge_response_status: 403,
            origin_ip: Some("10.0.0.1".parse().unwrap()),
            ..LogRecord::default()
        };
        let mut line = Vec::new();
        write_line(&mut line, LogField::ALL, &r, &o);
        assert!(line.ends_with(b"}\n"));
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["ClientRequestURI"], "/\"x\"");
        assert_eq!(v["SecurityRuleID"], "r\"1");
        assert_eq!(v["SecurityRuleDescription"], "a\\b\u{1}");
        assert_eq!(v["ClientRequestUserAgent"], "ua\u{fffd}");
        assert_eq!(v["EdgeStartTimestamp"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["OriginIP"], "10.0.0.1");
        assert_eq!(
            v["SecuritySources"],
            serde_json::json!(["firewallCustom", "rateLimit"])
        );
        assert_eq!(v["EdgeResponseStatus"], 403);
    }
}
