//! Test harness: rampart in-process on an ephemeral port, a scriptable origin that records
//! exactly what it received, and a raw-bytes client, all on loopback.

#![allow(dead_code)]

pub mod browser;
pub mod http2;
pub mod pki;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart::listen::Server;
use rampart::observe::{AccessLog, Metrics};
use rampart_http::{BodyFraming, ChunkedDecoder, Limits, Parse, ResponseBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Generous bound on any single wait in a test, so a broken test fails instead of hanging.
/// Never used to assert how fast something happened.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A fresh directory under the system's temporary directory, removed with everything in it
/// when this is dropped (a test that panics still cleans up).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "rampart-{prefix}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// `name` inside the directory, written with `contents`.
    pub fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl AsRef<std::path::Path> for TempDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

/// A free loopback port for a child process to listen on, drawn from 20000–32000: below
/// Linux's ephemeral range (32768–60999), so that no connection of a test running beside this
/// one takes it as its local port before the child binds it (as happened once with a port
/// from `bind(":0")`).
pub fn free_port() -> SocketAddr {
    loop {
        let addr = SocketAddr::from(([127, 0, 0, 1], fastrand::u16(20_000..32_000)));
        if std::net::TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
}

/// Asserts that loading `src` fails with an error at `key` whose message has `message`
/// (and names the file).
pub fn assert_config_error(src: &str, key: &str, message: &str) {
    let err = match rampart::config::load_str("t.toml", src, None) {
        Ok(_) => panic!("accepted:\n{src}"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(key) && err.contains(message) && err.contains("t.toml:"),
        "{key} / {message}:\n{err}"
    );
}

/// A request as the origin received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub head: String,
    pub body: Vec<u8>,
}

impl Received {
    pub fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }
    /// Values of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Vec<String> {
        header_values(&self.head, name)
    }
}

/// A function from the received request to the raw response.
pub type Responder = Arc<dyn Fn(&Received) -> Vec<u8> + Send + Sync>;

/// The values of every field named `name` in a raw head.
fn header_values(head: &str, name: &str) -> Vec<String> {
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

/// How the test origin answers.
#[derive(Clone)]
pub enum Behaviour {
    /// Answer every request with these raw bytes.
    Raw(Vec<u8>),
    /// 200 with a body echoing the request line.
    Echo,
    /// Read the request, then never answer (for 524).
    Silent,
    /// Answer with these raw bytes after a delay.
    Delayed(Duration, Vec<u8>),
    /// Close the connection as soon as the request is read (for 502).
    CloseAfterRequest,
    /// Answer with a function of the received request.
    With(Responder),
}

/// A scriptable origin on 127.0.0.1.
pub struct Origin {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub connections: Arc<Mutex<usize>>,
}

impl Origin {
    pub async fn start(behaviour: Behaviour) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (r, c) = (received.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                *c.lock().unwrap() += 1;
                tokio::spawn(origin_connection(stream, behaviour.clone(), r.clone()));
            }
        });
        Origin {
            addr,
            received,
            connections,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn connection_count(&self) -> usize {
        *self.connections.lock().unwrap()
    }
}

async fn origin_connection(
    mut stream: TcpStream,
    behaviour: Behaviour,
    log: Arc<Mutex<Vec<Received>>>,
) {
    let mut buf = Vec::new();
    loop {
        let Some(req) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        log.lock().unwrap().push(req.clone());
        let reply = match &behaviour {
            Behaviour::Raw(bytes) => bytes.clone(),
            Behaviour::Echo => {
                let body = req.request_line().as_bytes().to_vec();
                let mut out = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                out.extend_from_slice(&body);
                out
            }
            Behaviour::Silent => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Behaviour::CloseAfterRequest => return,
            Behaviour::Delayed(d, bytes) => {
                tokio::time::sleep(*d).await;
                bytes.clone()
            }
            Behaviour::With(f) => f(&req),
        };
        if stream.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// Reads one full request (head and body) the way a strict origin would.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Received> {
    let limits = Limits::default();
    let (head, len) = loop {
        if !buf.is_empty()
            && let Ok(Parse::Complete(done)) = rampart_http::parse_request_head(buf, &limits)
        {
            break done;
        }
        if stream.read_buf(buf).await.ok()? == 0 {
            return None;
        }
    };
    let head_text = String::from_utf8_lossy(&buf[..len]).into_owned();
    buf.drain(..len);
    let mut body = Vec::new();
    match head.body() {
        BodyFraming::None => {}
        BodyFraming::ContentLength(n) => {
            while buf.len() < n as usize {
                if stream.read_buf(buf).await.ok()? == 0 {
                    return None;
                }
            }
            body = buf.drain(..n as usize).collect();
        }
        BodyFraming::Chunked => {
            let mut dec = ChunkedDecoder::new(16 * 1024);
            loop {
                let used = dec.decode(buf, &mut body).ok()?;
                buf.drain(..used);
                if dec.is_done() {
                    break;
                }
                if stream.read_buf(buf).await.ok()? == 0 {
                    return None;
                }
            }
        }
    }
    Some(Received {
        head: head_text,
        body,
    })
}

/// A response as the client saw it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers(name).into_iter().next()
    }
    pub fn headers(&self, name: &str) -> Vec<String> {
        header_values(&self.head, name)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// A byte stream a test client speaks over: TCP, or TLS over TCP.
pub trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

/// A raw client connection to rampart.
pub struct Client {
    pub stream: Box<dyn Stream>,
    buf: Vec<u8>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        Client::over(TcpStream::connect(addr).await.unwrap())
    }

    /// A client speaking over an established stream (e.g. TLS).
    pub fn over(stream: impl Stream + 'static) -> Client {
        Client {
            stream: Box::new(stream),
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).await.unwrap();
    }

    /// Reads one response. `head_request` says whether it answers a HEAD request.
    pub async fn response(&mut self, head_request: bool) -> Response {
        tokio::time::timeout(PATIENCE, self.read_response(head_request))
            .await
            .expect("no response in time")
            .expect("connection closed before a complete response")
    }

    async fn read_response(&mut self, head_request: bool) -> Option<Response> {
        let limits = Limits::default();
        loop {
            let (head, len) = loop {
                if !self.buf.is_empty() {
                    match rampart_http::parse_response_head(&self.buf, &limits) {
                        Ok(Parse::Complete(done)) => break done,
                        Ok(Parse::Partial) => {}
                        Err(e) => panic!(
                            "invalid response from rampart: {e}: {:?}",
                            String::from_utf8_lossy(&self.buf)
                        ),
                    }
                }
                if self.stream.read_buf(&mut self.buf).await.ok()? == 0 {
                    return None;
                }
            };
            let head_text = String::from_utf8_lossy(&self.buf[..len]).into_owned();
            self.buf.drain(..len);
            let status = head.status();
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            let mut body = Vec::new();
            match head.body(head_request) {
                ResponseBody::None => {}
                ResponseBody::ContentLength(n) => {
                    while self.buf.len() < n as usize {
                        if self.stream.read_buf(&mut self.buf).await.ok()? == 0 {
                            return None;
                        }
                    }
                    body = self.buf.drain(..n as usize).collect();
                }
                ResponseBody::Chunked => {
                    let mut dec = ChunkedDecoder::new(16 * 1024);
                    loop {
                        let used = dec.decode(&self.buf, &mut body).ok()?;
                        self.buf.drain(..used);
                        if dec.is_done() {
                            break;
                        }
                        if self.stream.read_buf(&mut self.buf).await.ok()? == 0 {
                            return None;
                        }
                    }
                }
                ResponseBody::CloseDelimited => {
                    while self.stream.read_buf(&mut self.buf).await.ok()? > 0 {}
                    body = std::mem::take(&mut self.buf);
                }
            }
            return Some(Response {
                status,
                head: head_text,
                body,
            });
        }
    }

    /// Reads the interim `100 Continue` response, if that is what comes next.
    pub async fn read_raw_until(&mut self, needle: &[u8]) -> Vec<u8> {
        tokio::time::timeout(PATIENCE, async {
            loop {
                if let Some(p) = self.buf.windows(needle.len()).position(|w| w == needle) {
                    let out: Vec<u8> = self.buf.drain(..p + needle.len()).collect();
                    return out;
                }
                if self.stream.read_buf(&mut self.buf).await.unwrap() == 0 {
                    panic!("closed before {:?}", String::from_utf8_lossy(needle));
                }
            }
        })
        .await
        .expect("timed out waiting for bytes")
    }

    /// True when the server closed the connection (EOF after any buffered bytes).
    pub async fn is_closed(&mut self) -> bool {
        let mut scratch = [0u8; 1024];
        match tokio::time::timeout(PATIENCE, self.stream.read(&mut scratch)).await {
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(_)) => false,
            Err(_) => false,
        }
    }
}

/// A running rampart with one zone `example.test` (and `*.example.test`) in front of `origin`.
pub struct Rampart {
    pub server: Option<Server>,
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub log_path: PathBuf,
}

/// The tests' hand-written requests carry no User-Agent, which the Browser Integrity Check
/// (on by default) refuses: a zone that does not say otherwise gets it off here. Its own
/// tests (tests/challenge.rs) turn it on.
pub fn without_bic(src: &str) -> String {
    if src.contains("browser_integrity_check") {
        return src.to_string();
    }
    src.replace("[[zone]]\n", "[[zone]]\nbrowser_integrity_check = false\n")
}

impl Rampart {
    /// Starts rampart; `extra` is TOML spliced into the config: `server_extra` inside
    /// `[server]`, `zone_extra` inside the zone, `rest` after it.
    pub async fn start_with(
        origin: SocketAddr,
        server_extra: &str,
        zone_extra: &str,
        rest: &str,
    ) -> Rampart {
        let zones = format!(
            "[[zone]]\nname = \"example.test\"\nhosts = [\"example.test\", \"*.example.test\"]\norigin = \"http://{origin}\"\n{zone_extra}\n{rest}"
        );
        Self::start_zones(server_extra, &zones).await
    }

    /// Starts rampart with `server_extra` inside `[server]` (which already has a loopback
    /// `listen`, `admin_listen` and the access log) and `zones` after it.
    pub async fn start_zones(server_extra: &str, zones: &str) -> Rampart {
        Rampart::start_listening("listen = [\"127.0.0.1:0\"]\n", server_extra, zones).await
    }

    /// rampart with `listeners` (the `listen` and `tls_listen` lines of `[server]`).
    pub async fn start_listening(listeners: &str, server_extra: &str, zones: &str) -> Rampart {
        let log_path = std::env::temp_dir().join(format!(
            "rampart-test-{}-{}.log",
            std::process::id(),
            fastrand::u64(..)
        ));
        let src = format!(
            "[server]\n{listeners}admin_listen = \"127.0.0.1:0\"\naccess_log = \"{}\"\n{server_extra}\n{zones}",
            log_path.display()
        );
        Rampart::from_source(&src, log_path).await
    }

    /// rampart with the whole configuration `src` (`log_path` is where tests read the
    /// access log, if `src` puts it there).
    pub async fn from_source(src: &str, log_path: PathBuf) -> Rampart {
        let src = &without_bic(src);
        let loaded = rampart::config::load_str("test.toml", src, None)
            .unwrap_or_else(|e| panic!("{e}\n{src}"));
        let metrics = Arc::new(Metrics::new());
        let log = AccessLog::start(
            &loaded.config.server.access_log,
            &loaded.config.server.access_log_fields,
            metrics.clone(),
        )
        .unwrap();
        let server = Server::start(loaded.config, log, metrics).await.unwrap();
        Rampart {
            addr: server.local_addrs[0],
            admin: server.admin_addr,
            server: Some(server),
            log_path,
        }
    }

    pub async fn start(origin: SocketAddr) -> Rampart {
        Self::start_with(origin, "", "", "").await
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// Sends one request on a new connection and reads the response.
    pub async fn request(&self, raw: &[u8]) -> (Response, Client) {
        let mut c = self.client().await;
        c.send(raw).await;
        let head_request = raw.starts_with(b"HEAD ");
        let r = c.response(head_request).await;
        (r, c)
    }

    /// Access log lines written so far, waiting until at least `n` are there.
    pub async fn log_lines(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
            let lines: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            if lines.len() >= n || tokio::time::Instant::now() > deadline {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The Prometheus text from /metrics.
    pub async fn metrics(&self) -> String {
        let mut c = Client::connect(self.admin.unwrap()).await;
        c.send(b"GET /metrics HTTP/1.1\r\nHost: admin\r\n\r\n")
            .await;
        c.response(false).await.text()
    }
}

impl Drop for Rampart {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log_path);
    }
}

/// Writes `block.html` and `401.html` into a fresh directory; returns it and zone TOML with a
/// rule blocking `/blocked` (page for `waf_block`) and the other page for origin 401s.
pub fn error_pages(block: &str, unauthorized: &str) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("rampart-pages-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("block.html"), block).unwrap();
    std::fs::write(dir.join("401.html"), unauthorized).unwrap();
    let zone = format!(
        "[[zone.custom_rule]]\nexpression = 'http.request.uri.path eq \"/blocked\"'\naction = \"block\"\n\
         [[zone.error_page]]\nfor = \"waf_block\"\nfile = \"{}\"\n[[zone.error_page]]\nfor = \"401\"\nfile = \"{}\"\n",
        dir.join("block.html").display(),
        dir.join("401.html").display()
    );
    (dir, zone)
}

/// An origin answering every request 401 with `WWW-Authenticate` and a 3-byte body.
pub async fn unauthorized_origin() -> Origin {
    Origin::start(Behaviour::Raw(
        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nwho".to_vec(),
    ))
    .await
}
