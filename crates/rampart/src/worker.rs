//! Which worker thread code runs on, and per-worker slots for state that workers would
//! otherwise contend for (idle origin connections, access log lines waiting for the writer).

thread_local! {
    /// This thread's worker index (0 outside worker threads).
    static WORKER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The index of the worker thread running this code (0 outside worker threads).
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
