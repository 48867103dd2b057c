//! Accepting connections, and stopping gracefully.
//!
//! [`Server::start`] binds every listener before it returns, so a port that is taken is an
//! error at start-up, not later. [`Server::shutdown`] stops accepting, lets in-flight requests
//! finish (bounded by `drain_timeout`), then returns.
//!
//! - `accept.rs`: the accept loops, one per listener and worker, and the balancer that keeps
//!   connections spread evenly over the workers;
//! - `detect.rs`: what a connection speaks, decided in one place (TLS with ALPN `h2` or
//!   HTTP/1.1; in cleartext, the HTTP/2 preface or HTTP/1.1), then handed to its driver in
//!   [`crate::downstream`].

mod accept;
mod detect;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::observe::{AccessLog, Metrics};
use crate::runtime::Runtime;
use accept::{Balancer, accept_loop, receive_handoffs};

pub use detect::PREFACE;

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
    bind(addr, reuse_port).map_err(|e| {
        let hint = match (e.kind(), what.is_empty()) {
            (std::io::ErrorKind::AddrInUse, true) => {
                "; another program holds it: choose another address with `server.listen` (or \
                 `tls_listen`), or `rampart run --listen ADDR`"
            }
            (std::io::ErrorKind::AddrInUse, false) => {
                "; another program holds it (Prometheus's own port is 9090): choose another \
                 address with `server.admin_listen`, or `rampart run --admin-listen ADDR` \
                 (`off` serves no metrics)"
            }
            _ => "",
        };
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {what}{addr}: {e}{hint}"),
        )
    })
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
        let runtime = Runtime::new(config, log, metrics)?;
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
        crate::fleet::start(&runtime, &mut accept_tasks);
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
        let runtime = Runtime::new(config, log, metrics)?;
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
                    crate::worker::set_worker_index(i);
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
                        rt.install_worker_signal();
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
        crate::fleet::start(&runtime, &mut accept_tasks);
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
            // The cache and what it holds outlive a reload.
            ("cache", old.config.cache != config.cache),
            // The fleet's connections, tasks and counters are made once.
            ("fleet", old.config.fleet != config.fleet),
            // The analytics store is opened once.
            ("analytics", old.config.analytics != config.analytics),
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
        rt.begin_shutdown();
        for t in &self.accept_tasks {
            t.abort();
        }
        let drain = rt.generation().config.server.drain_timeout;
        let left = rt.drained(tokio::time::Instant::now() + drain).await;
        if let Some(stop) = &self.stop_workers {
            let _ = stop.send(true);
        }
        for t in self.workers {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        // The analytics database gets the open minutes, for as long as a drain may take.
        let runtime = self.runtime.clone();
        let close = tokio::task::spawn_blocking(move || runtime.analytics.close());
        if tokio::time::timeout(drain, close).await.is_err() {
            tracing::error!("analytics: the database's writer did not finish within {drain:?}");
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

/// What a listener takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    /// Cleartext: HTTP/1.1, or HTTP/2 with prior knowledge.
    Plain,
    /// TLS, then HTTP/2 or HTTP/1.1 as ALPN chose.
    Tls,
}
