//! The accept loop: a bound listener, optional TLS, HTTP/1.1 and HTTP/2,
//! connection caps, timeouts, and a bounded graceful shutdown.
//!
//! What a client can hold, and for how long:
//! - a connection at all: only within the global cap and its address's cap
//!   (IPv6 by /64); others are closed on accept, before any byte is read;
//! - a silent connection: its first byte and TLS handshake must arrive
//!   within `handshake_timeout`;
//! - its first request's headers: `header_timeout`, counted from the end of
//!   the TLS handshake (or the first byte, without TLS), on HTTP/1.1 and
//!   HTTP/2 alike, so that a connection that completes a handshake and goes
//!   silent costs an attacker a request within that time, not `idle_timeout`;
//! - later requests' headers: `header_timeout` (hyper's, HTTP/1.1; it also
//!   runs while a keep-alive connection waits for its next request, so an
//!   idle HTTP/1.1 connection is closed after the shorter of the two);
//! - a connection with no request in flight: `idle_timeout`, counted from the
//!   last answer, whatever bytes trickle in meanwhile (HTTP/1.1 keep-alive,
//!   a half-open socket, an HTTP/2 connection kept alive with PINGs or
//!   unfinished HEADERS frames). HTTP/2 gets a GOAWAY first.
//!
//! Nothing here logs per connection: a client must not be able to write our
//! logs at will. What happens is counted in [`ConnectionStats`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client_auth::PeerCertificate;
use crate::limits::ConnectionLimits;
use crate::per_key::{PerKey, client_key};

/// After an idle connection is asked to close (HTTP/2: GOAWAY), how long it
/// may take before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What happened to connections, for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    accepted: AtomicU64,
    open: AtomicU64,
    refused_total_cap: AtomicU64,
    refused_client_cap: AtomicU64,
    handshake_timeouts: AtomicU64,
    header_timeouts: AtomicU64,
    idle_closed: AtomicU64,
}

impl ConnectionStats {
    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// These counters alone as OpenMetrics text, each name prefixed with
    /// `prefix` (e.g. `mimi_relay`).
    pub fn render(&self, prefix: &str) -> String {
        let mut scrape = crate::metrics::Scrape::default();
        self.scrape(&mut scrape);
        scrape.render(prefix)
    }

    /// Adds these counters to a scrape.
    pub fn scrape(&self, scrape: &mut crate::metrics::Scrape) {
        use crate::metrics::label;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        scrape.counter(
            "connections_accepted",
            "Connections accepted.",
            get(&self.accepted),
        );
        scrape.gauge(
            "connections_open",
            "Connections open now.",
            i64::try_from(get(&self.open)).unwrap_or(i64::MAX),
        );
        scrape.counters(
            "connections_refused",
            "Connections closed on accept, by the cap they met.",
            [
                (label("cap", "total"), get(&self.refused_total_cap)),
                (label("cap", "per_client"), get(&self.refused_client_cap)),
            ],
        );
        scrape.counters(
            "connections_timed_out",
            "Connections closed by a timeout.",
            [
                (label("phase", "handshake"), get(&self.handshake_timeouts)),
                (label("phase", "first_request"), get(&self.header_timeouts)),
                (label("phase", "idle"), get(&self.idle_closed)),
            ],
        );
    }
}

/// When a connection last finished a request, and how many it has in flight.
#[derive(Debug)]
struct Activity {
    /// When HTTP began: the end of the TLS handshake, or the first byte.
    born: Instant,
    /// Requests begun, ever (a request begins once its headers are in).
    begun: AtomicU64,
    /// Requests in flight.
    in_flight: AtomicU64,
    /// Milliseconds after `born` when the last request finished.
    last_done_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            born: Instant::now(),
            begun: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            last_done_ms: AtomicU64::new(0),
        }
    }

    /// Whether no request has begun on this connection yet.
    fn unused(&self) -> bool {
        self.begun.load(Ordering::Acquire) == 0
    }

    /// When the connection is to be closed if nothing happens before then:
    /// `header` after it began while no request has, else `idle` after the
    /// last answer.
    fn idle_at(&self, header: Duration, idle: Duration) -> Instant {
        if self.unused() {
            return self.born + header;
        }
        let last = Duration::from_millis(self.last_done_ms.load(Ordering::Relaxed));
        self.born + last + idle
    }

    fn is_idle(&self, header: Duration, idle: Duration) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && Instant::now() >= self.idle_at(header, idle)
    }
}

/// Counts a request in flight while it lives.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.begun.fetch_add(1, Ordering::AcqRel);
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let ms = u64::try_from(self.0.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_done_ms.fetch_max(ms, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accepts connections on `listener` until `shutdown` completes, serving each
/// with `handler` (given the client's address, for per-client limits only);
/// then lets open connections finish their requests for at most
/// `limits.drain_timeout`.
pub async fn serve<H, F>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: ConnectionLimits,
    stats: Arc<ConnectionStats>,
    handler: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024)
        // Answers carry what the handler sets and nothing else.
        .auto_date_header(false);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .max_header_list_size(64 * 1024)
        .auto_date_header(false);
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let total = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_client = PerKey::new(limits.max_per_client);
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off, go on.
                    // Not per client: at most 20 lines a second.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Over a cap: closed at once, nothing read, nothing logged.
        let Ok(slot) = total.clone().try_acquire_owned() else {
            stats.refused_total_cap.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let Some(place) = per_client.take(client_key(peer.ip())) else {
            stats.refused_client_cap.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        stats.open.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            builder: builder.clone(),
            limits,
            stats: stats.clone(),
            stop: stop.clone(),
        };
        let tls = tls.clone();
        let handler = handler.clone();
        tracker.spawn(async move {
            connection.run(stream, peer, tls, handler).await;
            connection.stats.open.fetch_sub(1, Ordering::Relaxed);
            drop((slot, place));
        });
    }
    drop(listener);
    stop.cancel();
    tracker.close();
    if tokio::time::timeout(limits.drain_timeout, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = stats.open(),
            "connections still open after the drain timeout; closing them"
        );
    }
}

/// One accepted connection and what it needs.
struct Connection {
    builder: Builder<TokioExecutor>,
    limits: ConnectionLimits,
    stats: Arc<ConnectionStats>,
    stop: CancellationToken,
}

impl Connection {
    async fn run<H, F>(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
        handler: H,
    ) where
        H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    {
        let deadline = Instant::now() + self.limits.handshake_timeout;
        // The first byte (or the end of the stream) before anything else.
        // `peek`, not `readable`: readiness may be reported spuriously.
        let mut first = [0u8; 1];
        if tokio::time::timeout_at(deadline, stream.peek(&mut first))
            .await
            .is_err()
        {
            self.stats
                .handshake_timeouts
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        match tls {
            Some(acceptor) => {
                match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        let client = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .map(|c| PeerCertificate::of(c));
                        self.http(stream, peer, client, handler).await;
                    }
                    Ok(Err(_)) => {}
                    Err(_) => {
                        self.stats
                            .handshake_timeouts
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            None => self.http(stream, peer, None, handler).await,
        }
    }

    async fn http<S, H, F>(
        &self,
        stream: S,
        peer: SocketAddr,
        client: Option<PeerCertificate>,
        handler: H,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    {
        let activity = Arc::new(Activity::new());
        let counted = activity.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            if let Some(client) = client {
                req.extensions_mut().insert(client);
            }
            let in_flight = InFlight::begin(&counted);
            let answer = handler(req, peer);
            async move {
                let resp = answer.await;
                drop(in_flight);
                Ok::<_, Infallible>(resp)
            }
        });
        let conn = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service);
        tokio::pin!(conn);
        let idle = self.limits.idle_timeout;
        let header = self.limits.header_timeout;
        let mut closing: Option<Instant> = None;
        loop {
            let wake = closing.unwrap_or_else(|| {
                // Never later than one idle period from now: a connection
                // waiting for its first request must notice when that
                // request comes and its idle clock starts.
                let at = activity.idle_at(header, idle).min(Instant::now() + idle);
                // Past already: a request is in flight; look again later.
                if at > Instant::now() {
                    at
                } else {
                    Instant::now() + idle
                }
            });
            tokio::select! {
                _ = conn.as_mut() => return,
                () = self.stop.cancelled(), if closing.is_none() => {
                    conn.as_mut().graceful_shutdown();
                    // Shutdown's own drain timeout bounds this one.
                    closing = Some(Instant::now() + self.limits.drain_timeout);
                }
                () = tokio::time::sleep_until(wake) => {
                    if closing.is_some() {
                        return;
                    }
                    if activity.is_idle(header, idle) {
                        if activity.unused() {
                            // Nothing to finish: no request ever began.
                            self.stats.header_timeouts.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        self.stats.idle_closed.fetch_add(1, Ordering::Relaxed);
                        conn.as_mut().graceful_shutdown();
                        closing = Some(Instant::now() + CLOSE_GRACE);
                    }
                }
            }
        }
    }
}
