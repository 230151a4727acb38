//! Every discoverer's threads, process-wide, so that they can all be
//! stopped, and waited for, before the foreign runtime stops answering.
//!
//! Why: a discoverer's thread calls into the app's language (a lookup
//! finishing wakes the awaiting coroutine; a batch calls its listener). A
//! thread that does so while CPython finalizes is ended by the interpreter
//! with `pthread_exit`, whose unwinding through the runtime's frames aborts
//! the process ("FATAL: exception not rethrown"): a script that exits right
//! after its last lookup crashed now and then. Python's package therefore
//! calls [`shutdown_all_discoverers`] from `atexit`, which runs before
//! finalization, while such a thread can still finish its call.

use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

/// A discoverer's runtime, taken (and shut down) once.
pub(crate) type RuntimeSlot = Mutex<Option<Runtime>>;

/// How many discoverer threads are alive, and a way to wait for none.
struct Threads {
    alive: Mutex<usize>,
    changed: Condvar,
}

static THREADS: Threads = Threads {
    alive: Mutex::new(0),
    changed: Condvar::new(),
};

/// Every discoverer's runtime slot; a dropped discoverer's is gone (its
/// threads, still counted in [`THREADS`], are already stopping).
static RUNTIMES: Mutex<Vec<Weak<RuntimeSlot>>> = Mutex::new(Vec::new());

/// Counts the runtime's threads (workers and blocking pool) in and out.
pub(crate) fn counted(builder: &mut tokio::runtime::Builder) -> &mut tokio::runtime::Builder {
    builder
        .on_thread_start(|| {
            *THREADS.alive.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        })
        .on_thread_stop(|| {
            let mut alive = THREADS.alive.lock().unwrap_or_else(PoisonError::into_inner);
            *alive = alive.saturating_sub(1);
            THREADS.changed.notify_all();
        })
}

/// Registers a new discoverer's runtime, so that shutting all down finds it.
pub(crate) fn register(runtime: Runtime) -> Arc<RuntimeSlot> {
    let slot = Arc::new(Mutex::new(Some(runtime)));
    let mut runtimes = RUNTIMES.lock().unwrap_or_else(PoisonError::into_inner);
    runtimes.retain(|r| r.strong_count() > 0);
    runtimes.push(Arc::downgrade(&slot));
    slot
}

/// Shuts `slot`'s runtime down without waiting (callable from any thread,
/// an async one included). Idempotent.
pub(crate) fn shut_down(slot: &RuntimeSlot) {
    let runtime = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(runtime) = runtime {
        runtime.shutdown_background();
    }
}

/// Shuts down every discoverer of the process, as `shutdown()` does each,
/// and waits up to `timeout_ms` until none of their threads is left.
/// Returns whether none is.
///
/// Call it before the process exits: Python's package does so at
/// interpreter exit, because a discoverer's thread calling into Python
/// while it finalizes aborts the process. It blocks: not from a coroutine.
#[uniffi::export]
pub fn shutdown_all_discoverers(timeout_ms: u32) -> bool {
    let slots: Vec<Arc<RuntimeSlot>> = RUNTIMES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain(..)
        .filter_map(|r| r.upgrade())
        .collect();
    for slot in &slots {
        shut_down(slot);
    }
    let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
    let mut alive = THREADS.alive.lock().unwrap_or_else(PoisonError::into_inner);
    while *alive > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        alive = THREADS
            .changed
            .wait_timeout(alive, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    true
}

/// How many discoverer threads are alive (for tests).
#[doc(hidden)]
pub fn discoverer_threads_alive() -> usize {
    *THREADS.alive.lock().unwrap_or_else(PoisonError::into_inner)
}
