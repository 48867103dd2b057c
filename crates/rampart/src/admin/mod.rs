//! The admin listener: `/metrics` in the Prometheus text format. Loopback by default.

use std::sync::Arc;

use rampart_http::{Limits, Parse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::runtime::Runtime;

/// Serves the admin endpoints on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, rt: Arc<Runtime>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let rt = rt.clone();
        tokio::spawn(async move {
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(10), answer(stream, &rt)).await;
        });
    }
}

async fn answer(mut stream: TcpStream, rt: &Runtime) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let limits = Limits::default();
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        let head = match rampart_http::parse_request_head(&buf, &limits) {
            Ok(Parse::Complete((head, _))) => head,
            Ok(Parse::Partial) if buf.len() < 16 * 1024 => continue,
            _ => return reply(&mut stream, 400, "text/plain", b"bad request\n", false).await,
        };
        let body = match head.path() {
            "/metrics" => Some((
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                rt.metrics.encode().into_bytes(),
            )),
            "/healthz" => Some(("text/plain", b"ok\n".to_vec())),
            _ => None,
        };
        let head_only = head.is_head();
        return match body {
            None => {
                reply(
                    &mut stream,
                    404,
                    "text/plain",
                    b"not found: try /metrics\n",
                    head_only,
                )
                .await
            }
            Some((content_type, body)) if head.method() == "GET" || head_only => {
                reply(&mut stream, 200, content_type, &body, head_only).await
            }
            Some(_) => {
                reply(
                    &mut stream,
                    405,
                    "text/plain",
                    b"only GET and HEAD\n",
                    head_only,
                )
                .await
            }
        };
    }
}

/// Sends the answer and closes; for HEAD, the head only (with the body's length).
async fn reply(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    let mut out =
        crate::downstream::h1::start_response(status, content_type.as_bytes(), body.len());
    if status == 405 {
        rampart_http::write_header(&mut out, "allow", b"GET, HEAD");
    }
    rampart_http::write_header(&mut out, "connection", b"close");
    rampart_http::write_end_of_head(&mut out);
    if !head_only {
        out.extend_from_slice(body);
    }
    stream.write_all(&out).await?;
    stream.shutdown().await
}
