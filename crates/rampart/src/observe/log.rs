//! The access log: one JSON line per request, written off the request path.
//!
//! Request handling only ever calls [`AccessLog::write`], which never blocks: the line goes
//! into a bounded queue drained by a dedicated writer thread. When the queue is full or the
//! sink fails (a full disk), lines are dropped and counted in
//! `rampart_access_log_dropped_lines_total`; traffic never stalls on logging.

use std::io::Write;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use serde::Serialize;

use super::metrics::Metrics;
use crate::config::AccessLogTarget;

/// How many lines may wait for the writer before new ones are dropped.
pub const QUEUE_LINES: usize = 16 * 1024;

/// One access log line. Field names follow Cloudflare's Logpush http_requests dataset.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)]
pub struct LogRecord {
    #[serde(rename = "RayID")]
    pub ray_id: String,
    pub zone_name: String,
    pub edge_start_timestamp: String,
    pub edge_end_timestamp: String,
    #[serde(rename = "ClientIP")]
    pub client_ip: String,
    pub client_src_port: u16,
    pub client_request_host: String,
    pub client_request_method: String,
    #[serde(rename = "ClientRequestURI")]
    pub client_request_uri: String,
    pub client_request_path: String,
    pub client_request_protocol: &'static str,
    pub client_request_scheme: &'static str,
    pub client_request_bytes: u64,
    pub client_request_user_agent: String,
    pub client_request_referer: String,
    pub client_country: String,
    #[serde(rename = "ClientASN")]
    pub client_asn: u32,
    pub edge_response_status: u16,
    pub edge_response_bytes: u64,
    pub edge_response_content_type: String,
    pub edge_time_to_first_byte_ms: u64,
    pub origin_response_status: u16,
    pub origin_response_duration_ms: u64,
    #[serde(rename = "OriginIP")]
    pub origin_ip: String,
    pub security_action: String,
    #[serde(rename = "SecurityRuleID")]
    pub security_rule_id: String,
    pub security_rule_description: String,
    pub security_sources: Vec<&'static str>,
    pub error_code: u16,
    pub error_reason: String,
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

    /// Queues `record`; never blocks.
    pub fn write(&self, record: &LogRecord) {
        let Some(tx) = &self.tx else { return };
        let mut line = serde_json::to_vec(record).unwrap_or_default();
        line.push(b'\n');
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
        let mut batch = vec![line];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
            if batch.len() >= 1024 {
                break;
            }
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
