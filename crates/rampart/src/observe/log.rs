//! The access log: one JSON line per request, written off the request path.
//!
//! Request handling only ever calls [`AccessLog::write`], which never blocks: the line goes
//! into a bounded queue drained by a dedicated writer thread. When the queue is full or the
//! sink fails (a full disk), lines are dropped and counted in
//! `rampart_access_log_dropped_lines_total`; traffic never stalls on logging.

use std::io::Write;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use std::net::IpAddr;
use std::time::SystemTime;

use super::metrics::Metrics;
use crate::config::AccessLogTarget;
use crate::pipeline::SecurityMatch;

/// How many lines may wait for the writer before new ones are dropped (at 100,000 requests a
/// second, more than six batches' worth).
pub const QUEUE_LINES: usize = 64 * 1024;

/// How long the writer lets lines gather before it writes them.
pub const BATCH_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

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
    /// EdgeTimeToFirstByteMs.
    pub edge_time_to_first_byte_ms: u64,
    /// OriginResponseStatus (0 = no origin response).
    pub origin_response_status: u16,
    /// OriginResponseDurationMs.
    pub origin_response_duration_ms: u64,
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

/// Writes one JSON object, field names after Cloudflare's Logpush http_requests dataset.
/// Written by hand into one buffer: a log line costs one allocation, not one per field.
pub fn write_line(out: &mut Vec<u8>, r: &RequestInfo<'_>, o: &LogRecord) {
    let mut j = Json { out, first: true };
    j.out.push(b'{');
    j.str("RayID", r.ray_id);
    j.str("ZoneName", r.zone);
    j.display(
        "EdgeStartTimestamp",
        humantime::format_rfc3339_millis(r.started_at),
    );
    j.display(
        "EdgeEndTimestamp",
        humantime::format_rfc3339_millis(SystemTime::now()),
    );
    j.ip("ClientIP", r.client_ip);
    j.num("ClientSrcPort", u64::from(r.client_port));
    j.str("ClientRequestHost", r.host);
    j.str("ClientRequestMethod", r.method);
    j.str("ClientRequestURI", r.uri);
    j.str("ClientRequestPath", r.path);
    j.str("ClientRequestProtocol", r.protocol);
    j.str("ClientRequestScheme", r.scheme);
    j.num("ClientRequestBytes", o.client_request_bytes);
    j.str(
        "ClientRequestUserAgent",
        &String::from_utf8_lossy(r.user_agent),
    );
    j.str("ClientRequestReferer", &String::from_utf8_lossy(r.referer));
    j.str("ClientCountry", r.country);
    j.num("ClientASN", u64::from(r.asn));
    j.num("EdgeResponseStatus", u64::from(o.edge_response_status));
    j.num("EdgeResponseBytes", o.edge_response_bytes);
    j.str("EdgeResponseContentType", &o.edge_response_content_type);
    j.num("EdgeTimeToFirstByteMs", o.edge_time_to_first_byte_ms);
    j.num("OriginResponseStatus", u64::from(o.origin_response_status));
    j.num("OriginResponseDurationMs", o.origin_response_duration_ms);
    match o.origin_ip {
        Some(ip) => j.ip("OriginIP", ip),
        None => j.str("OriginIP", ""),
    }
    j.str("SecurityAction", r.security.map_or("", |m| m.action));
    j.str(
        "SecurityRuleID",
        r.security.map_or("", |m| m.rule_id.as_str()),
    );
    j.str(
        "SecurityRuleDescription",
        r.security.map_or("", |m| m.description.as_str()),
    );
    j.key("SecuritySources");
    j.out.push(b'[');
    for (i, s) in r.sources.iter().enumerate() {
        if i > 0 {
            j.out.push(b',');
        }
        escape(j.out, s);
    }
    j.out.push(b']');
    j.num("ErrorCode", u64::from(o.error_code));
    j.str("ErrorReason", &o.error_reason);
    j.out.extend_from_slice(b"}\n");
}

struct Json<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl Json<'_> {
    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
    }
    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        escape(self.out, v);
    }
    fn num(&mut self, k: &str, v: u64) {
        self.key(k);
        super::write_decimal(self.out, v);
    }
    fn ip(&mut self, k: &str, ip: std::net::IpAddr) {
        self.key(k);
        self.out.push(b'"');
        super::write_ip(self.out, ip);
        self.out.push(b'"');
    }
    fn display(&mut self, k: &str, v: impl std::fmt::Display) {
        self.key(k);
        self.out.push(b'"');
        let _ = write!(self.out, "{v}");
        self.out.push(b'"');
    }
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

/// Handle for writing access log lines. Cloning is cheap.
#[derive(Clone)]
pub struct AccessLog {
    tx: Option<SyncSender<Vec<u8>>>,
    metrics: Arc<Metrics>,
}

impl AccessLog {
    /// Opens the sink and starts the writer thread. A file that cannot be opened is an error.
    pub fn start(target: &AccessLogTarget, metrics: Arc<Metrics>) -> std::io::Result<AccessLog> {
        let sink: Box<dyn Write + Send> = match target {
            AccessLogTarget::Off => return Ok(AccessLog { tx: None, metrics }),
            AccessLogTarget::Stdout => Box::new(std::io::stdout()),
            AccessLogTarget::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        std::io::Error::new(
                            e.kind(),
                            format!("cannot open access log {}: {e}", path.display()),
                        )
                    })?,
            ),
        };
        let (tx, rx) = sync_channel(QUEUE_LINES);
        let m = metrics.clone();
        std::thread::Builder::new()
            .name("rampart-access-log".into())
            .spawn(move || writer(rx, sink, &m))?;
        Ok(AccessLog {
            tx: Some(tx),
            metrics,
        })
    }

    /// A log that writes nothing.
    pub fn off(metrics: Arc<Metrics>) -> AccessLog {
        AccessLog { tx: None, metrics }
    }

    /// Whether lines are written at all.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues the line of one request; never blocks.
    pub fn write(&self, request: &RequestInfo<'_>, outcome: &LogRecord) {
        let Some(tx) = &self.tx else { return };
        let mut line = Vec::with_capacity(768);
        write_line(&mut line, request, outcome);
        match tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.metrics.log_dropped().inc();
            }
        }
    }
}

fn writer(rx: Receiver<Vec<u8>>, sink: Box<dyn Write + Send>, metrics: &Metrics) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, sink);
    let mut pending = 0u64;
    let mut warned = false;
    while let Ok(line) = rx.recv() {
        // Wait a little before draining: while this thread sleeps (rather than blocks on the
        // queue), request threads hand over lines without waking it, so a busy edge pays
        // one wake-up per batch instead of one per request. Lines reach the sink within
        // `BATCH_DELAY` of being logged.
        std::thread::sleep(BATCH_DELAY);
        let mut batch = vec![line];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        for line in &batch {
            pending += 1;
            if out.write_all(line).is_err() {
                // The line may be partly in the buffer; count it lost either way.
                metrics.log_dropped().inc();
                pending -= 1;
            }
        }
        if out.flush().is_err() {
            metrics.log_dropped().inc_by(pending);
            if !warned {
                tracing::error!("access log sink is failing; lines are being dropped and counted");
                warned = true;
            }
            // Drop what is buffered so one failure (a full disk) does not poison later lines;
            // the sink itself is kept and tried again with the next batch.
            let (sink, _lost) = out.into_parts();
            out = std::io::BufWriter::with_capacity(64 * 1024, sink);
        } else {
            warned = false;
        }
        pending = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_line_is_valid_json_with_escaped_strings() {
        let m = SecurityMatch {
            action: "block",
            rule_id: "r\"1".into(),
            description: "a\\b\u{1}".into(),
            source: "firewallCustom",
        };
        let r = RequestInfo {
            ray_id: "abc",
            zone: "z",
            started_at: SystemTime::UNIX_EPOCH,
            client_ip: "192.0.2.1".parse().unwrap(),
            client_port: 5,
            host: "h",
            method: "GET",
            uri: "/\"x\"",
            path: "/",
            protocol: "HTTP/1.1",
            scheme: "https",
            user_agent: b"ua\xff",
            referer: b"",
            country: "",
            asn: 0,
            security: Some(&m),
            sources: &["firewallCustom", "rateLimit"],
        };
        let o = LogRecord {
            edge_response_status: 403,
            origin_ip: Some("10.0.0.1".parse().unwrap()),
            ..LogRecord::default()
        };
        let mut line = Vec::new();
        write_line(&mut line, &r, &o);
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
