//! Kept-alive HTTP/1.1 connections to one origin.
//!
//! Idle connections are kept per worker thread. A socket belongs to the event loop of the
//! worker that opened it; reused by another worker, each of its reads would need the first
//! worker's loop to notice the readiness and wake the second (a thread hop and an eventfd
//! write per response, measured with strace).

use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::time::Sleep;

use super::OriginConn;
use crate::stream::OriginStream;
use crate::worker::{WorkerSlot, worker_index};

/// Most idle connections kept per origin and worker.
pub const MAX_IDLE_PER_ORIGIN: usize = 512;

/// An idle pooled connection older than this is closed rather than reused (origins commonly
/// close idle keep-alive connections after 60 s or more; staying under that avoids most races).
pub const MAX_IDLE_TIME: Duration = Duration::from_secs(50);

/// Idle lists per origin: one per worker thread (up to this many), so that a connection is
/// only ever reused by the worker whose event loop it is registered with.
const POOL_SHARDS: usize = 64;

struct Idle {
    stream: OriginStream,
    addr: std::net::SocketAddr,
    timer: Pin<Box<Sleep>>,
    since: Instant,
}

/// One origin's idle connections, per worker.
pub(super) struct IdleLists {
    lists: Box<[WorkerSlot<Mutex<Vec<Idle>>>]>,
}

impl IdleLists {
    pub(super) fn new() -> IdleLists {
        IdleLists {
            lists: (0..POOL_SHARDS)
                .map(|_| WorkerSlot(Mutex::new(Vec::new())))
                .collect(),
        }
    }

    /// This worker's idle list.
    fn here(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        let shard = worker_index() % self.lists.len();
        self.lists[shard]
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently used connection that is still open.
    pub(super) fn take(&self) -> Option<OriginConn> {
        let mut idle = self.here();
        while let Some(mut c) = idle.pop() {
            if c.since.elapsed() > MAX_IDLE_TIME {
                continue;
            }
            // A connection the origin closed while idle reads EOF (or has stray bytes, which
            // make it unusable too); a live one would block.
            if c.stream.is_idle_and_open() {
                return Some(OriginConn {
                    stream: c.stream,
                    addr: c.addr,
                    reused: true,
                    timer: c.timer,
                });
            }
        }
        None
    }

    /// Keeps a connection whose exchange completed cleanly.
    pub(super) fn put(&self, conn: OriginConn) {
        let mut idle = self.here();
        if idle.len() >= MAX_IDLE_PER_ORIGIN {
            idle.remove(0);
        }
        idle.push(Idle {
            stream: conn.stream,
            addr: conn.addr,
            timer: conn.timer,
            since: Instant::now(),
        });
    }
}
