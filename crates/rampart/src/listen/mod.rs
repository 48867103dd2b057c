//! Accepting connections, and stopping gracefully.
//!
//! [`Server::start`] binds every listener before it returns, so a port that is taken is an
//! error at start-up, not later. [`Server::shutdown`] stops accepting, lets in-flight requests
//! finish (bounded by `drain_timeout`), then returns.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::h1::ClientStream;
use crate::observe::{AccessLog, Metrics};
use crate::state::Generation;

/// State shared by every connection.
pub struct Runtime {
    generation: ArcSwap<Generation>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Access log.
    pub log: AccessLog,
    shutting_down: AtomicBool,
    shutdown_tx: watch::Sender<bool>,
    open: AtomicUsize,
    idle: Notify,
}

impl Runtime {
    /// The current configuration generation. A request keeps the `Arc` it got at its start.
    pub fn generation(&self) -> Arc<Generation> {
        self.generation.load_full()
    }

    /// Swaps in a new configuration; requests already running keep the old one.
    pub fn reload(&self, config: Config) {
        let next = self.generation.load().reload(config);
        self.generation.store(Arc::new(next));
    }

    /// Whether shutdown has begun (responses then carry `Connection: close`).
    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// A receiver that changes to `true` when shutdown begins.
    ///
    /// On a worker thread this is the worker's own copy of the signal: connections wait on it
    /// between requests, and on a channel shared by every worker they would take its shared
    /// locks, from every core, twice per request.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        WORKER_SHUTDOWN
            .with(|w| w.borrow().clone())
            .unwrap_or_else(|| self.shutdown_tx.subscribe())
    }

    /// Marks a connection open until the guard drops.
    pub fn track(self: &Arc<Self>) -> ConnGuard {
        self.open.fetch_add(1, Ordering::AcqRel);
        self.metrics.open_connections().inc();
        ConnGuard(self.clone())
    }
}

/// Keeps a connection counted as open.
pub struct ConnGuard(Arc<Runtime>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.metrics.open_connections().dec();
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// A running server.
pub struct Server {
    runtime: Arc<Runtime>,
    /// The addresses actually bound (useful with port 0): `listen`, then `tls_listen`.
    pub local_addrs: Vec<SocketAddr>,
    /// The admin listener's address, when enabled.
    pub admin_addr: Option<SocketAddr>,
    accept_tasks: Vec<JoinHandle<()>>,
    workers: Vec<std::thread::JoinHandle<()>>,
    stop_workers: Option<watch::Sender<bool>>,
}

thread_local! {
    /// This thread's worker index (0 outside worker threads).
    static WORKER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// This worker's copy of the shutdown signal (none outside worker threads).
    static WORKER_SHUTDOWN: std::cell::RefCell<Option<watch::Receiver<bool>>> =
        const { std::cell::RefCell::new(None) };
}

/// The index of the worker thread running this code (0 outside worker threads). State that
/// workers would otherwise contend for (idle origin connections, access log lines waiting
/// for the writer) is kept apart by it.
pub(crate) fn worker_index() -> usize {
    WORKER.with(|w| w.get())
}

/// Marks the current thread as worker `index`.
pub(crate) fn set_worker_index(index: usize) {
    WORKER.with(|w| w.set(index));
}

/// One worker's part of state kept per worker, on cache lines of its own: two workers writing
/// to one line would pass it between their cores on every write.
#[repr(align(128))]
pub(crate) struct WorkerSlot<T>(pub T);

fn new_runtime(config: Config, log: AccessLog, metrics: Arc<Metrics>) -> Arc<Runtime> {
    let (shutdown_tx, _) = watch::channel(false);
    Arc::new(Runtime {
        generation: ArcSwap::from_pointee(Generation::new(config)),
        metrics,
        log,
        shutting_down: AtomicBool::new(false),
        shutdown_tx,
        open: AtomicUsize::new(0),
        idle: Notify::new(),
    })
}

/// Every address to listen on: the cleartext ones, then the TLS ones (the order of
/// [`Server::local_addrs`]).
fn listen_addresses(config: &Config) -> Vec<(SocketAddr, Transport)> {
    let plain = config.server.listen.iter().map(|a| (*a, Transport::Plain));
    let tls = config
        .server
        .tls_listen
        .iter()
        .map(|a| (*a, Transport::Tls));
    plain.chain(tls).collect()
}

/// Serves the admin endpoints on `listener`, if any, on the current runtime.
fn spawn_admin(
    listener: Option<TcpListener>,
    runtime: &Arc<Runtime>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> std::io::Result<Option<SocketAddr>> {
    let Some(l) = listener else { return Ok(None) };
    let addr = l.local_addr()?;
    tasks.push(tokio::spawn(crate::admin::serve(l, runtime.clone())));
    Ok(Some(addr))
}

fn bind_named(addr: SocketAddr, reuse_port: bool, what: &str) -> std::io::Result<TcpListener> {
    bind(addr, reuse_port)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {what}{addr}: {e}")))
}

impl Server {
    /// Binds every listener and starts serving `config`. Everything runs as tasks of the
    /// current tokio runtime (used by tests and embedders).
    pub async fn start(
        config: Config,
        log: AccessLog,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Server> {
        let listen = listen_addresses(&config);
        let admin = config.server.admin_listen;
        let runtime = new_runtime(config, log, metrics);
        let mut listeners = Vec::new();
        for (addr, transport) in &listen {
            listeners.push((bind_named(*addr, false, "")?, *transport));
        }
        let admin_listener = match admin {
            Some(addr) => Some(bind_named(addr, false, "the admin address ")?),
            None => None,
        };
        let mut local_addrs = Vec::new();
        let mut accept_tasks = Vec::new();
        for (l, transport) in listeners {
            local_addrs.push(l.local_addr()?);
            accept_tasks.push(tokio::spawn(accept_loop(
                l,
                runtime.clone(),
                transport,
                None,
            )));
        }
        let admin_addr = spawn_admin(admin_listener, &runtime, &mut accept_tasks)?;
        Ok(Server {
            runtime,
            local_addrs,
            admin_addr,
            accept_tasks,
            workers: Vec::new(),
            stop_workers: None,
        })
    }

    /// Thread per core: `workers` threads, each with its own single-threaded tokio runtime
    /// and its own `SO_REUSEPORT` listener on every address, so the kernel spreads
    /// connections over the threads and a connection never moves between them (no
    /// cross-thread wake-ups, which cost more than a quarter of the CPU time under load with
    /// a work-stealing runtime). The admin listener runs on the caller's runtime.
    pub async fn start_workers(
        config: Config,
        log: AccessLog,
        metrics: Arc<Metrics>,
        workers: usize,
    ) -> std::io::Result<Server> {
        let workers = workers.max(1);
        let listen = listen_addresses(&config);
        let admin = config.server.admin_listen;
        let runtime = new_runtime(config, log, metrics);
        // Bind every worker's listeners here, so a taken port fails start-up; port 0 is
        // resolved by the first bind and reused by the others.
        let mut per_worker: Vec<Vec<(std::net::TcpListener, Transport)>> =
            (0..workers).map(|_| Vec::new()).collect();
        let mut local_addrs = Vec::new();
        for (addr, transport) in &listen {
            // SO_REUSEPORT lets a socket join a port another process (or another entry of
            // this configuration) already listens on, silently splitting its connections: a
            // first bind without it finds a port that is taken.
            if addr.port() != 0 {
                drop(bind_named(*addr, false, "")?);
            }
            let first = bind_named(*addr, true, "")?;
            let actual = first.local_addr()?;
            local_addrs.push(actual);
            per_worker[0].push((first.into_std()?, *transport));
            for list in per_worker.iter_mut().skip(1) {
                list.push((bind_named(actual, true, "")?.into_std()?, *transport));
            }
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut threads = Vec::with_capacity(workers);
        let (balancer, queues) = Balancer::new(workers, &runtime.metrics);
        for (i, (listeners, queue)) in per_worker.into_iter().zip(queues).enumerate() {
            let rt = runtime.clone();
            let balancer = balancer.clone();
            let mut stop = stop_rx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("rampart-worker-{i}"))
                .spawn(move || {
                    set_worker_index(i);
                    let tokio_rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::error!("worker {i} cannot start its runtime: {e}");
                            return;
                        }
                    };
                    tokio_rt.block_on(async move {
                        // The worker's copy of the shutdown signal, set from the shared one.
                        let (local_tx, local_rx) = watch::channel(false);
                        WORKER_SHUTDOWN.with(|w| *w.borrow_mut() = Some(local_rx));
                        let mut shared = rt.shutdown_tx.subscribe();
                        tokio::spawn(async move {
                            let _ = shared.wait_for(|s| *s).await;
                            let _ = local_tx.send(true);
                        });
                        for (l, transport) in listeners {
                            match TcpListener::from_std(l) {
                                Ok(l) => {
                                    let balance = Some((balancer.clone(), i));
                                    tokio::spawn(accept_loop(l, rt.clone(), transport, balance));
                                }
                                Err(e) => tracing::error!("worker {i}: {e}"),
                            }
                        }
                        tokio::spawn(receive_handoffs(queue, rt.clone()));
                        let _ = stop.wait_for(|s| *s).await;
                    });
                })?;
            threads.push(thread);
        }
        let mut accept_tasks = Vec::new();
        let admin_listener = match admin {
            Some(addr) => Some(bind_named(addr, false, "the admin address ")?),
            None => None,
        };
        let admin_addr = spawn_admin(admin_listener, &runtime, &mut accept_tasks)?;
        Ok(Server {
            runtime,
            local_addrs,
            admin_addr,
            accept_tasks,
            workers: threads,
            stop_workers: Some(stop_tx),
        })
    }

    /// The shared runtime (for reloads and tests).
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Swaps in a new configuration (SIGHUP): requests that start from now on use it, those
    /// running keep theirs, rate-limit counters carry over. What was bound at start-up stays
    /// as it was: the keys of those settings that the new configuration changes are returned,
    /// for the caller to say a restart is needed for them.
    pub fn reload(&self, config: Config) -> Vec<&'static str> {
        let old = self.runtime.generation();
        let (was, now) = (&old.config.server, &config.server);
        let fixed = [
            ("server.listen", was.listen != now.listen),
            ("server.tls_listen", was.tls_listen != now.tls_listen),
            ("server.admin_listen", was.admin_listen != now.admin_listen),
            ("server.workers", was.workers != now.workers),
            ("server.access_log", was.access_log != now.access_log),
            (
                "server.access_log_fields",
                was.access_log_fields != now.access_log_fields,
            ),
        ]
        .into_iter()
        .filter_map(|(key, changed)| changed.then_some(key))
        .collect();
        self.runtime.reload(config);
        fixed
    }

    /// Stops accepting, waits for open connections to finish their in-flight request, at most
    /// `drain_timeout`, then returns how many connections were still open.
    pub async fn shutdown(self) -> usize {
        let rt = &self.runtime;
        rt.shutting_down.store(true, Ordering::Relaxed);
        let _ = rt.shutdown_tx.send(true);
        for t in &self.accept_tasks {
            t.abort();
        }
        let drain = rt.generation().config.server.drain_timeout;
        let deadline = tokio::time::Instant::now() + drain;
        let left = loop {
            let notified = rt.idle.notified();
            if rt.open.load(Ordering::Acquire) == 0 {
                break 0;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break rt.open.load(Ordering::Acquire);
            }
        };
        if let Some(stop) = &self.stop_workers {
            let _ = stop.send(true);
        }
        for t in self.workers {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        left
    }
}

fn bind(addr: SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// What a listener speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    /// Cleartext HTTP/1.1.
    Plain,
    /// TLS, then HTTP/1.1.
    Tls,
}

/// Accepts connections and serves them: here, or on a less busy worker when `balance` says so.
async fn accept_loop(
    listener: TcpListener,
    rt: Arc<Runtime>,
    transport: Transport,
    balance: Option<(Arc<Balancer>, usize)>,
) {
    let mut shutdown = rt.shutdown_signal();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let Some((balancer, me)) = &balance else {
                    tokio::spawn(serve(stream, peer, transport, rt.clone(), None));
                    continue;
                };
                let (to, guard) = balancer.assign(*me);
                if to == *me {
                    tokio::spawn(serve(stream, peer, transport, rt.clone(), Some(guard)));
                    continue;
                }
                // Out of this worker's event loop, into the other's when it arrives.
                let stream = match stream.into_std() {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!("cannot hand over a connection from {peer}: {e}");
                        continue;
                    }
                };
                let handoff = Handoff {
                    stream,
                    peer,
                    transport,
                    guard,
                };
                if let Err(back) = balancer.hand_off(to, handoff) {
                    // That worker has stopped (shutdown): serve the connection here.
                    tokio::spawn(serve_handed_over(back, rt.clone()));
                }
            }
            Err(e) => {
                // EMFILE and friends: back off briefly rather than spin.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serves one client connection to its end.
async fn serve(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    transport: Transport,
    rt: Arc<Runtime>,
    worker: Option<WorkerGuard>,
) {
    let _guard = rt.track();
    let _worker = worker;
    match transport {
        Transport::Plain => {
            crate::h1::serve(ClientStream::Plain(stream), None, peer, rt.clone()).await
        }
        // Boxed: the handshake state is large, and inline it would grow every plain
        // connection's task by as much.
        Transport::Tls => Box::pin(serve_tls(stream, peer, rt.clone())).await,
    }
}

/// Keeps connections spread evenly over the workers.
///
/// Each worker has its own `SO_REUSEPORT` listener, and the kernel picks the listener by a
/// hash of the connection's addresses: 64 connections over two workers commonly land as 38
/// and 26, and a keep-alive connection stays where it landed, so one worker's clients wait
/// longer than the other's for as long as they stay connected. A worker that accepts a
/// connection while another worker serves fewer passes it on to the one serving fewest (a
/// socket handed over once, at accept time; nothing per request). This is Envoy's
/// "exact balance" and what HAProxy does with its per-thread accept queues.
pub(crate) struct Balancer {
    workers: Box<[WorkerSlot<BalancerSlot>]>,
}

struct BalancerSlot {
    /// Connections this worker serves or has been handed and not yet started (exported as
    /// `rampart_worker_connections`).
    open: prometheus_client::metrics::gauge::Gauge,
    handoffs: tokio::sync::mpsc::UnboundedSender<Handoff>,
}

/// A connection accepted by one worker, to be served by another.
struct Handoff {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    transport: Transport,
    guard: WorkerGuard,
}

/// Counts a connection against its worker until dropped.
struct WorkerGuard {
    balancer: Arc<Balancer>,
    worker: usize,
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        self.balancer.workers[self.worker].0.open.dec();
    }
}

impl Balancer {
    /// A balancer for `workers` workers, and the queue each of them receives connections on.
    fn new(workers: usize, metrics: &Metrics) -> (Arc<Balancer>, Vec<HandoffQueue>) {
        let (slots, queues): (Vec<_>, Vec<_>) = (0..workers)
            .map(|w| {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                let slot = BalancerSlot {
                    open: metrics.worker_connections(w),
                    handoffs: tx,
                };
                (WorkerSlot(slot), rx)
            })
            .unzip();
        let workers = slots.into_boxed_slice();
        (Arc::new(Balancer { workers }), queues)
    }

    /// Which worker serves a connection accepted by worker `me`: `me`, unless another serves
    /// fewer (so no worker serves more than one connection more than another); the
    /// connection is counted against it from now on.
    fn assign(self: &Arc<Self>, me: usize) -> (usize, WorkerGuard) {
        let open = |w: usize| self.workers[w].0.open.get();
        let (least, fewest) = (0..self.workers.len())
            .map(|w| (w, open(w)))
            .min_by_key(|&(_, n)| n)
            .unwrap_or((me, 0));
        let to = if fewest < open(me) { least } else { me };
        self.workers[to].0.open.inc();
        let guard = WorkerGuard {
            balancer: self.clone(),
            worker: to,
        };
        (to, guard)
    }

    /// Queues `handoff` for worker `to`; gives it back if that worker has stopped.
    fn hand_off(&self, to: usize, handoff: Handoff) -> Result<(), Handoff> {
        self.workers[to].0.handoffs.send(handoff).map_err(|e| e.0)
    }
}

type HandoffQueue = tokio::sync::mpsc::UnboundedReceiver<Handoff>;

/// Serves the connections other workers hand to this one.
async fn receive_handoffs(mut queue: HandoffQueue, rt: Arc<Runtime>) {
    let mut shutdown = rt.shutdown_signal();
    loop {
        let handoff = tokio::select! {
            h = queue.recv() => h,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let Some(handoff) = handoff else { return };
        tokio::spawn(serve_handed_over(handoff, rt.clone()));
    }
}

/// Registers a handed-over connection with this worker's event loop and serves it.
async fn serve_handed_over(h: Handoff, rt: Arc<Runtime>) {
    match tokio::net::TcpStream::from_std(h.stream) {
        Ok(stream) => serve(stream, h.peer, h.transport, rt, Some(h.guard)).await,
        Err(e) => tracing::warn!("cannot take over a connection from {}: {e}", h.peer),
    }
}

/// Completes the TLS handshake with the certificate the client's SNI selects, then serves
/// HTTP/1.1 over it. A client naming a host no certificate covers, with no default
/// certificate configured, gets the fatal alert `unrecognized_name`. Handshake failures are
/// counted in the metrics, not logged: no request exists yet.
async fn serve_tls(stream: tokio::net::TcpStream, peer: SocketAddr, rt: Arc<Runtime>) {
    use tokio::io::AsyncWriteExt;
    let generation = rt.generation();
    let deadline = tokio::time::Instant::now() + generation.config.server.client_header_timeout;
    let acceptor =
        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
    let start = match tokio::time::timeout_at(deadline, acceptor).await {
        Ok(Ok(start)) => start,
        Ok(Err(_)) => return rt.metrics.tls_handshake_failure("bad_client_hello"),
        Err(_) => return rt.metrics.tls_handshake_failure("timeout"),
    };
    let sni: Option<Box<str>> = start
        .client_hello()
        .server_name()
        .map(|n| n.trim_end_matches('.').to_ascii_lowercase().into());
    let Some(config) = generation.certificate_for(sni.as_deref()) else {
        let mut io = start.io;
        let _ = io.write_all(&crate::tls::UNRECOGNIZED_NAME_ALERT).await;
        let _ = io.shutdown().await;
        return rt.metrics.tls_handshake_failure("unknown_sni");
    };
    let tls = match tokio::time::timeout_at(deadline, start.into_stream(config)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(_)) => return rt.metrics.tls_handshake_failure("handshake"),
        Err(_) => return rt.metrics.tls_handshake_failure("timeout"),
    };
    if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
        crate::h2::serve(ClientStream::Tls(Box::new(tls)), sni, true, peer, rt).await;
    } else {
        crate::h1::serve(ClientStream::Tls(Box::new(tls)), sni, peer, rt).await;
    }
}
