//! Writing responses that rampart generates itself.

use std::net::IpAddr;
use std::time::SystemTime;

use tokio::io::AsyncWriteExt;

use super::Conn;
use crate::errors::pages::{ErrorPages, PageVars, render_page};
use crate::errors::{self, Problem};
use crate::observe::LogRecord;
use crate::pipeline::{RAY_ID_HEADER, RayId, Rejection, RequestContext};
use crate::state::Generation;

/// What a generated response needs to know about the request it answers.
pub(crate) struct Answering<'a> {
    pub ray_id: RayId,
    pub client_ip: IpAddr,
    pub zone: Option<&'a str>,
    pub accept: Option<&'a [u8]>,
    pub head_only: bool,
    pub close: bool,
    /// An HTTP/1.0 client whose connection stays open: it is told so (`Connection:
    /// keep-alive`), or it would take the response as the connection's last.
    pub http10_keep_alive: bool,
    pub docs_url: &'a str,
    pub pages: Option<&'a ErrorPages>,
}

impl<'a> Answering<'a> {
    /// How to answer a request that passed parsing: its ray id, client, zone, Accept, HEAD,
    /// and the zone's error pages.
    pub(crate) fn for_request(ctx: &'a RequestContext<'_>, close: bool) -> Answering<'a> {
        Answering {
            ray_id: ctx.ray_id,
            client_ip: ctx.client_ip,
            zone: ctx.zone.as_ref().map(|z| z.config.name.as_str()),
            accept: ctx.head.header("accept"),
            head_only: ctx.head.is_head(),
            close,
            http10_keep_alive: !close && ctx.head.version() == rampart_http::Version::Http10,
            docs_url: &ctx.generation.config.server.error_docs_url,
            pages: ctx
                .zone
                .as_ref()
                .map(|z| &z.config.security.error_pages)
                .filter(|p| !p.is_empty()),
        }
    }
}

/// Serialises a generated error: status line, headers and (unless HEAD) the negotiated body.
/// Returns the bytes and the Content-Type.
pub(crate) fn error_response(rejection: &Rejection, a: &Answering<'_>) -> (Vec<u8>, u16, String) {
    let entry = rejection.error.entry();
    let (status, content_type, body) = match &rejection.response {
        // A rule's own response is sent as configured, whatever the Accept.
        Some(custom) => (
            custom.status,
            custom.content_type.clone(),
            custom.body.to_vec(),
        ),
        None => {
            let format = errors::negotiate(a.accept);
            let page = a
                .pages
                .filter(|_| format == errors::Format::Html)
                .and_then(|p| p.for_generated(rejection.error));
            match page {
                Some(template) => {
                    let vars = PageVars {
                        ray_id: a.ray_id.as_str(),
                        client_ip: &a.client_ip.to_string(),
                        error_code: entry.code.unwrap_or(entry.status),
                        title: entry.title,
                        detail: &rejection.detail,
                    };
                    (
                        entry.status,
                        format.content_type().to_string(),
                        render_page(template, &vars),
                    )
                }
                None => {
                    let timestamp = crate::observe::rfc3339(SystemTime::now());
                    let problem = Problem {
                        error: rejection.error,
                        detail: &rejection.detail,
                        ray_id: a.ray_id.as_str(),
                        client_ip: a.client_ip,
                        zone: a.zone,
                        retry_after: rejection.retry_after,
                        timestamp: &timestamp,
                        docs_url: a.docs_url,
                    };
                    (
                        entry.status,
                        format.content_type().to_string(),
                        errors::render(&problem, format),
                    )
                }
            }
        }
    };
    let mut out = Vec::with_capacity(256 + body.len());
    rampart_http::write_status_line(
        &mut out,
        rampart_http::Version::Http11,
        status,
        rampart_http::canonical_reason(status),
    );
    write_date(&mut out);
    rampart_http::write_header(&mut out, "content-type", content_type.as_bytes());
    rampart_http::write_header(
        &mut out,
        "content-length",
        body.len().to_string().as_bytes(),
    );
    rampart_http::write_header(&mut out, "cache-control", b"no-store");
    rampart_http::write_header(&mut out, RAY_ID_HEADER, a.ray_id.as_bytes());
    if let Some(secs) = rejection.retry_after {
        rampart_http::write_header(&mut out, "retry-after", secs.to_string().as_bytes());
    }
    for (name, value) in &rejection.headers {
        rampart_http::write_header(&mut out, name, value.as_bytes());
    }
    if a.close {
        rampart_http::write_header(&mut out, "connection", b"close");
    } else if a.http10_keep_alive {
        rampart_http::write_header(&mut out, "connection", b"keep-alive");
    }
    rampart_http::write_end_of_head(&mut out);
    if !a.head_only {
        out.extend_from_slice(&body);
    }
    (out, status, content_type)
}

/// Starts a response: the status line (HTTP/1.1, canonical reason), Content-Type and
/// Content-Length. The caller adds any other fields and ends the head.
pub fn start_response(status: u16, content_type: &[u8], body_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body_len);
    rampart_http::write_status_line(
        &mut out,
        rampart_http::Version::Http11,
        status,
        rampart_http::canonical_reason(status),
    );
    rampart_http::write_header(&mut out, "content-type", content_type);
    rampart_http::write_header(&mut out, "content-length", body_len.to_string().as_bytes());
    out
}

/// Answers a request that passed parsing with a generated error, and fills the log record.
pub(crate) async fn reject(
    conn: &mut Conn,
    ctx: &RequestContext<'_>,
    rejection: &Rejection,
    close: bool,
    record: &mut LogRecord,
) {
    let answering = Answering::for_request(ctx, close || conn.rt.shutting_down());
    let (bytes, status, content_type) = error_response(rejection, &answering);
    let written = conn.stream.write_all(&bytes).await.is_ok();
    fill_record(
        record,
        rejection,
        status,
        &content_type,
        if written { bytes.len() as u64 } else { 0 },
    );
    conn.rt
        .metrics
        .generated_error(rejection.error.entry().name, rejection.error.status());
}

/// Records a generated error in the log line.
pub(crate) fn fill_record(
    record: &mut LogRecord,
    rejection: &Rejection,
    status: u16,
    content_type: &str,
    bytes: u64,
) {
    let entry = rejection.error.entry();
    record.edge_response_status = status;
    record.edge_response_bytes = bytes;
    record.edge_response_content_type = content_type.to_string();
    record.error_code = entry.code.unwrap_or(entry.status);
    record.error_reason = format!("{}: {}", entry.name, rejection.detail);
}

/// The whole body of the answer to a request whose Host differs from its TLS server name.
pub(crate) const SNI_MISMATCH_BODY: &str =
    "403 Forbidden: the Host header does not match the TLS server name\n";

/// The answer to a request whose Host differs from the TLS server name: 403 with a tiny
/// plain-text body and nothing else (no branding, no ray id), then the connection closes.
pub(crate) async fn sni_mismatch(conn: &mut Conn, head_only: bool) {
    const BODY: &str = SNI_MISMATCH_BODY;
    let mut out = format!(
        "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        BODY.len()
    );
    if !head_only {
        out.push_str(BODY);
    }
    let _ = conn.stream.write_all(out.as_bytes()).await;
    let _ = conn.stream.shutdown().await;
}

/// Answers bytes that never became a valid request head (malformed, too large, timed out),
/// logs what is known, and leaves the connection to be closed.
pub(crate) async fn reject_unparsed(
    conn: &mut Conn,
    generation: &Generation,
    rejection: Rejection,
) {
    let ray_id = RayId::generate();
    let started_at = SystemTime::now();
    let head_only = conn.buf.starts_with(b"HEAD ");
    let accept = sniff_accept(&conn.buf);
    let answering = Answering {
        ray_id,
        client_ip: conn.peer.ip(),
        zone: None,
        accept: accept.as_deref(),
        head_only,
        close: true,
        http10_keep_alive: false,
        docs_url: &generation.config.server.error_docs_url,
        pages: None,
    };
    let (bytes, status, content_type) = error_response(&rejection, &answering);
    let written = conn.stream.write_all(&bytes).await.is_ok();
    let _ = conn.stream.shutdown().await;
    let mut record = LogRecord {
        client_request_bytes: conn.buf.len() as u64,
        ..LogRecord::default()
    };
    fill_record(
        &mut record,
        &rejection,
        status,
        &content_type,
        if written { bytes.len() as u64 } else { 0 },
    );
    let rt = &conn.rt;
    rt.metrics
        .generated_error(rejection.error.entry().name, rejection.error.status());
    rt.metrics
        .request(None, "HTTP/1.1", rejection.error.status());
    let info = crate::observe::RequestInfo {
        ray_id: ray_id.as_str(),
        zone: "",
        started_at,
        client_ip: conn.peer.ip(),
        client_port: conn.peer.port(),
        host: "",
        method: "",
        uri: "",
        path: "",
        protocol: "HTTP/1.1",
        scheme: if conn.stream.is_tls() {
            "https"
        } else {
            "http"
        },
        user_agent: b"",
        referer: b"",
        country: "",
        asn: 0,
        security: None,
        sources: &[],
    };
    rt.log.write(&info, &record);
}

/// Finds an `Accept` field in bytes that did not parse as a whole, so even a malformed
/// request gets its error in the format it asked for. Best effort: the first line that
/// starts with `accept:` (any case) wins.
pub(crate) fn sniff_accept(buf: &[u8]) -> Option<Vec<u8>> {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(buf.len());
    buf[..end].split(|&b| b == b'\n').skip(1).find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        line[..colon]
            .eq_ignore_ascii_case(b"accept")
            .then(|| line[colon + 1..].trim_ascii().to_vec())
    })
}

/// A `date` field with the current time (RFC 9110 §6.6.1).
pub(crate) fn write_date(out: &mut Vec<u8>) {
    rampart_http::write_header(
        out,
        "date",
        httpdate::fmt_http_date(SystemTime::now()).as_bytes(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_is_found_in_a_malformed_head() {
        let raw = b"GET /a b HTTP/1.1\r\nHost: x\r\nACCEPT: application/json\r\n\r\n";
        assert_eq!(sniff_accept(raw).as_deref(), Some(&b"application/json"[..]));
        assert_eq!(sniff_accept(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), None);
    }
}
