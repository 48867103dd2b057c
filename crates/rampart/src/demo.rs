//! The demo origin that `rampart run` starts beside the embedded default configuration, so a
//! new user sees the proxy work at once. It is a small, honest HTTP/1.1 server on loopback:
//!
//! - `/` a welcome page;
//! - `/status/NNN` answers with that status (try 401, 404, 429, 503: rampart passes them through);
//! - `/echo` answers with the request head the origin received (to see what rampart forwards).

use std::net::SocketAddr;

use rampart_http::{Limits, Parse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Starts the demo origin on an ephemeral loopback port and returns its address.
pub async fn start() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(connection(stream));
        }
    });
    Ok(addr)
}

async fn connection(mut stream: TcpStream) {
    let mut buf = Vec::with_capacity(4096);
    let limits = Limits::default();
    loop {
        let (head, len) = loop {
            match rampart_http::parse_request_head(&buf, &limits) {
                Ok(Parse::Complete(done)) => break done,
                Ok(Parse::Partial) => {}
                Err(_) => return,
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let raw_head = buf[..len].to_vec();
        buf.drain(..len);
        // The demo never reads bodies it does not need; skip a Content-Length body.
        if let rampart_http::BodyFraming::ContentLength(n) = head.body() {
            let mut left = n as usize;
            while left > 0 {
                if buf.is_empty() && !matches!(stream.read_buf(&mut buf).await, Ok(n) if n > 0) {
                    return;
                }
                let take = left.min(buf.len());
                buf.drain(..take);
                left -= take;
            }
        } else if head.body() != rampart_http::BodyFraming::None {
            return;
        }
        let (status, content_type, body) = page(head.path(), &raw_head);
        let mut out =
            crate::downstream::h1::start_response(status, content_type.as_bytes(), body.len());
        rampart_http::write_header(&mut out, "server", b"rampart-demo-origin");
        match status {
            401 => {
                rampart_http::write_header(&mut out, "www-authenticate", b"Basic realm=\"demo\"")
            }
            405 => rampart_http::write_header(&mut out, "allow", b"GET, HEAD"),
            429 | 503 => rampart_http::write_header(&mut out, "retry-after", b"30"),
            _ => {}
        }
        if content_type == "text/css" {
            // Cacheable, so that the edge cache can be seen at work.
            rampart_http::write_header(&mut out, "cache-control", b"public, max-age=300");
            rampart_http::write_header(&mut out, "etag", b"\"demo-1\"");
        }
        rampart_http::write_end_of_head(&mut out);
        if !head.is_head() {
            out.extend_from_slice(&body);
        }
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn page(path: &str, raw_head: &[u8]) -> (u16, &'static str, Vec<u8>) {
    if path == "/" {
        return (200, "text/html; charset=utf-8", WELCOME.as_bytes().to_vec());
    }
    if path == "/echo" {
        return (200, "text/plain; charset=utf-8", raw_head.to_vec());
    }
    if path == "/style.css" {
        return (200, "text/css", STYLE.as_bytes().to_vec());
    }
    if let Some(code) = path
        .strip_prefix("/status/")
        .and_then(|c| c.parse::<u16>().ok())
        && (200..600).contains(&code)
    {
        return (
            code,
            "text/plain; charset=utf-8",
            format!("the demo origin answered {code}\n").into_bytes(),
        );
    }
    (
        404,
        "text/plain; charset=utf-8",
        b"the demo origin has no such page\n".to_vec(),
    )
}

const WELCOME: &str = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>rampart is running</title>\
<link rel=\"stylesheet\" href=\"/style.css\"></head><body>\
<h1>rampart is running</h1><p>This page comes from the demo origin, through rampart.</p><ul>\
<li><a href=\"/echo\">/echo</a>: the request as the origin received it</li>\
<li><a href=\"/status/404\">/status/404</a>: an origin error, passed through untouched</li>\
<li><a href=\"/%zz\">/%zz</a>: a malformed request-target, answered by rampart with 400</li>\
<li><a href=\"/style.css\">/style.css</a>: cacheable, served from the edge cache after the first request \
(see its <code>rampart-cache-status</code>)</li></ul>\
<p>Edit a config file and run <code>rampart run -c FILE</code> to proxy your own site.</p></body></html>\n";

/// The welcome page's stylesheet: cacheable (max-age=300), and large enough to be compressed.
const STYLE: &str = "/* rampart demo origin: this stylesheet is cached at the edge. */
body { font: 16px/1.5 system-ui, -apple-system, \"Segoe UI\", Roboto, sans-serif; }
body { max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; }
h1 { font-size: 1.6rem; margin-bottom: 0.5rem; }
a { color: #0b57d0; text-decoration: none; }
a:hover { text-decoration: underline; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.9em; }
li { margin: 0.25rem 0; }
";
