//! The [`Discoverer`] object: a client library discoverer with a tokio
//! runtime of its own, so that apps need no Rust async runtime and the
//! foreign language's own async (`asyncio`, coroutines, Swift concurrency)
//! awaits the lookups.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, PoisonError};

use futures::StreamExt;
use tokio::runtime::Handle;
use tokio_util::task::AbortOnDropHandle;

use crate::error::DiscoveryError;
use crate::options::DiscovererOptions;
use crate::results::{Discovery, LookupResult};
use crate::threads::{self, RuntimeSlot};

type Inner = mimi_client::Discoverer<mimi_client::RelayTransport>;

/// Told about each identifier of a batch as it finishes, from one of the
/// discoverer's threads (the app hops to its UI thread itself).
#[uniffi::export(with_foreign)]
pub trait ProgressListener: Send + Sync {
    /// The identifier at `index` of the batch finished with `result`;
    /// `done` of `total` have finished so far.
    fn on_result(&self, index: u32, result: LookupResult, done: u32, total: u32);
}

/// Discovers MIMI contacts privately: step 1 asks DNS which providers an
/// identifier is on, step 2 asks each through the Oblivious HTTP relay.
///
/// Safe to share between threads; lookups run on the discoverer's own
/// threads. Cancelling a lookup (a cancelled coroutine, task or `asyncio`
/// task) stops its work; [`Discoverer::shutdown`], or dropping the last
/// reference, stops everything it is doing.
#[derive(uniffi::Object)]
pub struct Discoverer {
    inner: Inner,
    handle: Handle,
    /// Taken by `shutdown` (or drop, or [`threads::shutdown_all_discoverers`]):
    /// shutting it down ends every task.
    runtime: Arc<RuntimeSlot>,
    /// Calls whose work is running on the runtime now.
    running: Arc<AtomicU32>,
}

/// Counts one call's work as running until the work ends or is dropped
/// (aborted by a cancelled caller, or by shutdown).
struct Running(Arc<AtomicU32>);

impl Running {
    fn start(count: &Arc<AtomicU32>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Discoverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discoverer")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[uniffi::export]
impl Discoverer {
    /// A discoverer configured by `options`, which are all checked here:
    /// nothing is sent until a lookup asks.
    #[uniffi::constructor]
    pub fn new(options: DiscovererOptions) -> Result<Arc<Self>, DiscoveryError> {
        // Bad options are refused before any thread starts.
        let (transport, options) = options.build()?;
        let runtime = threads::counted(&mut tokio::runtime::Builder::new_multi_thread())
            .worker_threads(worker_threads())
            .thread_name("mimi-discovery")
            .enable_all()
            .build()
            .map_err(|e| DiscoveryError::Internal(format!("cannot start threads: {e}")))?;
        // The resolver and HTTP client are made inside the runtime they use.
        let inner = {
            let _entered = runtime.enter();
            mimi_client::Discoverer::new(transport, options)?
        };
        Ok(Arc::new(Self {
            inner,
            handle: runtime.handle().clone(),
            runtime: threads::register(runtime),
            running: Arc::default(),
        }))
    }

    /// Discovers one identifier (a handle, email address or `+E.164` phone
    /// number, as a user typed it). Throws when the identifier cannot be
    /// looked up at all; each provider's own failure is in its outcome.
    pub async fn discover(&self, identifier: String) -> Result<Discovery, DiscoveryError> {
        let inner = self.inner.clone();
        self.run(async move { inner.discover(&identifier).await.map(Into::into) })
            .await?
            .map_err(Into::into)
    }

    /// Discovers every identifier, `concurrency` at a time, and returns one
    /// result per identifier in input order. `listener`, if given, hears of
    /// each as it finishes.
    pub async fn discover_many(
        &self,
        identifiers: Vec<String>,
        listener: Option<Arc<dyn ProgressListener>>,
    ) -> Result<Vec<LookupResult>, DiscoveryError> {
        let inner = self.inner.clone();
        self.run(async move {
            let total = u32::try_from(identifiers.len()).unwrap_or(u32::MAX);
            let mut results: Vec<Option<LookupResult>> = vec![None; identifiers.len()];
            let mut stream = inner.discover_many(&identifiers);
            let mut done = 0;
            while let Some((index, result)) = stream.next().await {
                let result = LookupResult::from(result.map(Into::into).map_err(Into::into));
                done += 1;
                if let Some(listener) = &listener {
                    let at = u32::try_from(index).unwrap_or(u32::MAX);
                    listener.on_result(at, result.clone(), done, total);
                }
                results[index] = Some(result);
            }
            // The stream yields each index once; a hole would be a bug here,
            // and is reported as one rather than dropped.
            results
                .into_iter()
                .map(|r| {
                    r.unwrap_or_else(|| {
                        LookupResult::from(Err(DiscoveryError::Internal(
                            "a lookup of the batch was lost".into(),
                        )))
                    })
                })
                .collect()
        })
        .await
    }

    /// Stops every lookup in progress (they throw `ShutDown`) and refuses new
    /// ones. Idempotent; dropping the discoverer does the same.
    pub fn shutdown(&self) {
        // Not a blocking shutdown: this may be called from any thread, an
        // async one included.
        threads::shut_down(&self.runtime);
    }

    /// How many calls (`discover`, `discover_many`) have work running now:
    /// a cancelled or shut-down call's work stops, and leaves this count.
    pub fn calls_in_progress(&self) -> u32 {
        self.running.load(Ordering::Relaxed)
    }

    /// Whether [`Discoverer::shutdown`] was called.
    ///
    /// (Not `close`: Kotlin objects have their own `close()`, which frees
    /// the foreign handle.)
    pub fn is_shut_down(&self) -> bool {
        self.runtime
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }
}

impl Discoverer {
    /// Runs `work` on the discoverer's runtime and waits for it from
    /// whatever executor polls this future. Dropping the wait (a cancelled
    /// caller) aborts the work; a shut-down runtime ends it with `ShutDown`.
    async fn run<F>(&self, work: F) -> Result<F::Output, DiscoveryError>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if self.is_shut_down() {
            return Err(DiscoveryError::shut_down());
        }
        let running = Running::start(&self.running);
        let task = AbortOnDropHandle::new(self.handle.spawn(async move {
            let _running = running;
            work.await
        }));
        task.await.map_err(|e| {
            if e.is_cancelled() {
                DiscoveryError::shut_down()
            } else {
                DiscoveryError::Internal("a lookup task of the library failed".into())
            }
        })
    }
}

impl Drop for Discoverer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The runtime's threads: the lookups' cryptography runs on them, so as
/// many as the device has cores, up to four (a discovery library should not
/// take a server's every core).
fn worker_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().min(4))
        .unwrap_or(2)
}
