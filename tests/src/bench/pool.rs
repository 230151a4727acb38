//! Requests encapsulated before the timed run, and the connections that send them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use mimi_proto::codec::Codec;
use mimi_proto::oblivious::{self, MEDIA_OHTTP_REQ};
use mimi_proto::{
    IdentifierQueryCode, IdentifierRequest, IdentifierResponse, SearchIdentifierType,
};
use rustls_pki_types::ServerName;

use super::*;
use crate::pki::TestCa;

/// The generator's TLS configuration: trusts `ca` only, HTTP/1.1.
pub(crate) fn client_tls(ca: &TestCa) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone())?;
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// One pre-encapsulated request and the context to open its answer.
pub(super) struct Item {
    pub(super) body: Bytes,
    pub(super) context: Mutex<Option<oblivious::ClientResponse>>,
}

/// Requests encapsulated ahead of a run; each is taken once.
pub(crate) struct Pool {
    pub(super) items: Vec<Item>,
    pub(super) next: AtomicUsize,
    pub(super) exhausted: AtomicBool,
    /// For a server that answers every request with the same bytes (the
    /// TLS floor): the answer's length, which then counts as success.
    pub(super) fixed_answer: Option<usize>,
}

impl Pool {
    /// Encapsulates `n` identifierQuery requests to `host` on every core.
    pub(crate) fn build(keys: &[u8], host: &str, n: usize, identifiers: usize) -> Result<Self> {
        let entry = oblivious::decode_key_config_list(keys)?.remove(0);
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        let date = SystemTime::now();
        let chunks: Vec<Result<Vec<Item>>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let entry = &entry;
                    s.spawn(move || -> Result<Vec<Item>> {
                        let mut out = Vec::new();
                        for k in (t..n).step_by(threads) {
                            let request = IdentifierRequest::single(
                                SearchIdentifierType::Handle,
                                &identifier(k % identifiers),
                            );
                            let inner = oblivious::identifier_query(host, &request, date, None)?;
                            let (enc, context) =
                                oblivious::ClientRequest::new(entry).encapsulate(&inner)?;
                            out.push(Item {
                                body: Bytes::from(enc),
                                context: Mutex::new(Some(context)),
                            });
                        }
                        Ok(out)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("pool thread panicked")))
                })
                .collect()
        });
        let mut items = Vec::with_capacity(n);
        for c in chunks {
            items.extend(c?);
        }
        Ok(Self {
            items,
            next: AtomicUsize::new(0),
            exhausted: AtomicBool::new(false),
            fixed_answer: None,
        })
    }

    /// The same requests, each answer counted a success when it is a 200 of
    /// `len` bytes: for a server that does not open them.
    pub(crate) fn expecting_fixed_answer(self, len: usize) -> Self {
        Self {
            fixed_answer: Some(len),
            ..self
        }
    }

    /// The encapsulated requests, in order.
    pub(crate) fn bodies(&self) -> impl Iterator<Item = Bytes> + '_ {
        self.items.iter().map(|i| i.body.clone())
    }

    pub(super) fn take(&self) -> Option<&Item> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let item = self.items.get(i);
        if item.is_none() {
            self.exhausted.store(true, Ordering::Relaxed);
        }
        item
    }
}

/// Whether an encapsulated answer opens to a 200 identifierQuery success
/// (or, for a pool expecting a fixed answer, has its length).
pub(super) fn check(pool: &Pool, item: &Item, status: u16, body: &[u8]) -> bool {
    if status != 200 {
        return false;
    }
    if let Some(len) = pool.fixed_answer {
        return body.len() == len;
    }
    let Some(context) = item.context.lock().ok().and_then(|mut c| c.take()) else {
        return false;
    };
    let Ok(plain) = context.decapsulate(body) else {
        return false;
    };
    let Ok(msg) = oblivious::decode_message(&plain) else {
        return false;
    };
    msg.control().status().map(|s| s.code()) == Some(200)
        && IdentifierResponse::from_bytes(msg.content())
            .is_ok_and(|r| r.response_code == IdentifierQueryCode::Success)
}

/// `connections` HTTP/1.1 keep-alive TLS connections from the client
/// address to `target`, each ready for requests.
pub(super) async fn connect_all(
    target: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    connections: usize,
) -> Result<Vec<hyper::client::conn::http1::SendRequest<Full<Bytes>>>> {
    let connector = tokio_rustls::TlsConnector::from(tls);
    let server_name = ServerName::IpAddress(target.ip().into());
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from((CLIENT, 0)))?;
        let tcp = socket.connect(target).await?;
        tcp.set_nodelay(true)?;
        let stream = connector.connect(server_name.clone(), tcp).await?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        senders.push(sender);
    }
    Ok(senders)
}

/// Why one request did not come back as a checked success.
pub(super) struct Failure {
    /// What went wrong: an HTTP status, or what failed.
    pub(super) kind: String,
    /// The connection can carry no more requests.
    pub(super) closed: bool,
}

/// Sends pool request `item` to `path` on `sender`; `Ok` when its answer
/// opens to a 200 identifierQuery success.
pub(super) async fn send_checked(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    path: &str,
    pool: &Pool,
    item: &Item,
) -> std::result::Result<(), Failure> {
    let fail = |kind: String, closed: bool| Failure { kind, closed };
    let req = http::Request::post(path)
        .header("host", "bench")
        .header("content-type", MEDIA_OHTTP_REQ)
        .body(Full::new(item.body.clone()))
        .map_err(|_| fail("request".into(), false))?;
    sender
        .ready()
        .await
        .map_err(|_| fail("connection closed".into(), true))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| fail(format!("send: {e}"), true))?;
    let status = resp.status().as_u16();
    match resp.into_body().collect().await.map(|c| c.to_bytes()) {
        Ok(b) if check(pool, item, status, &b) => Ok(()),
        _ => Err(fail(format!("status {status}"), false)),
    }
}

/// Drives `connections` HTTP/1.1 connections (TLS, from 127.0.0.2) to
/// `target` for `duration`, each sending pool requests to `path` back to back.
pub(crate) async fn drive(
    scenario: &'static str,
    target: SocketAddr,
    path: String,
    tls: Arc<rustls::ClientConfig>,
    pool: Arc<Pool>,
    connections: usize,
    duration: Duration,
) -> Result<RunStats> {
    // Connect everything first, so the timed part is only requests.
    let senders = connect_all(target, tls, connections).await?;
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(connections);
    for mut sender in senders {
        let (pool, path) = (pool.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut errors, mut lat) = (0usize, 0usize, Vec::new());
            while Instant::now() < deadline {
                let Some(item) = pool.take() else { break };
                let t0 = Instant::now();
                match send_checked(&mut sender, &path, &pool, item).await {
                    Ok(()) => {
                        ok += 1;
                        let us = t0.elapsed().as_micros();
                        lat.push(u32::try_from(us).unwrap_or(u32::MAX));
                    }
                    Err(failure) => {
                        errors += 1;
                        if failure.closed {
                            break;
                        }
                    }
                }
            }
            (ok, errors, lat)
        }));
    }
    let mut stats = RunStats::new(scenario, connections);
    for t in tasks {
        let (ok, errors, lat) = t.await?;
        stats.absorb(ok, errors, lat);
    }
    stats.elapsed = started.elapsed();
    stats.pool_exhausted = pool.exhausted.load(Ordering::Relaxed);
    stats.latencies_us.sort_unstable();
    Ok(stats)
}
