//! Accepting connections: one loop per listener and worker, and the balancer that hands a
//! new connection to the worker serving fewest.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::Transport;
use crate::observe::Metrics;
use crate::runtime::Runtime;
use crate::worker::WorkerSlot;

/// Accepts connections and serves them: here, or on a less busy worker when `balance` says so.
pub(super) async fn accept_loop(
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
        Transport::Plain => super::detect::serve_plain(stream, peer, rt).await,
        // Boxed: the handshake state is large, and inline it would grow every plain
        // connection's task by as much.
        Transport::Tls => Box::pin(super::detect::serve_tls(stream, peer, rt)).await,
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
pub(super) struct Balancer {
    workers: Box<[WorkerSlot<BalancerSlot>]>,
}

struct BalancerSlot {
    /// Connections this worker serves or has been handed and not yet started (exported as
    /// `rampart_worker_connections`).
    open: prometheus_client::metrics::gauge::Gauge,
    handoffs: tokio::sync::mpsc::UnboundedSender<Handoff>,
}

/// A connection accepted by one worker, to be served by another.
pub(super) struct Handoff {
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
    pub(super) fn new(workers: usize, metrics: &Metrics) -> (Arc<Balancer>, Vec<HandoffQueue>) {
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

pub(super) type HandoffQueue = tokio::sync::mpsc::UnboundedReceiver<Handoff>;

/// Serves the connections other workers hand to this one.
pub(super) async fn receive_handoffs(mut queue: HandoffQueue, rt: Arc<Runtime>) {
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
