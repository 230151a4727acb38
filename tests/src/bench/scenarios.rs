//! Each timed run: a gateway alone, the relay before it, the TLS floor, whole discoveries, DNS, and the in-process rates.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use mimi_client::{Discoverer, RelayTransport, Transport};
use mimi_proto::oblivious::{self, GATEWAY_PATH};
use rustls_pki_types::ServerName;

use super::*;
use crate::procs::ServerProcess;

/// The in-process rate of the gateway's unavoidable work (decapsulate a
/// request, seal a response) on every core, in requests per second.
pub fn inprocess_rate(seconds: f64) -> Result<f64> {
    let server = oblivious::ServerKey::derive(1, &[5; 32])?;
    let list = oblivious::encode_key_config_list([&server]);
    let n = 4000;
    let pool = Pool::build(&list, "mimi.bench.example", n, 10)?;
    let response = oblivious::encode_response(
        200,
        &[("content-type", "application/octet-stream")],
        &[0; 64],
    )?;
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    // Warm up, then time whole passes over the pool on every core.
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while started.elapsed().as_secs_f64() < seconds {
                    for item in pool.items.iter().take(500) {
                        if let Ok((_, ctx)) = server.decapsulate(&item.body) {
                            let _ = ctx.encapsulate(&response);
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// Runs scenario (a) or (b) at one connection count with a fresh pool.
pub async fn run_ohttp(
    setup: &Setup,
    via_relay: bool,
    connections: usize,
    duration: Duration,
    pool_size: usize,
) -> Result<RunStats> {
    let (gw_addr, host) = (setup.gateways[0].1, setup.gateways[0].2.clone());
    let pool = gateway_pool(setup, pool_size).await?;
    let (target, path, scenario) = if via_relay {
        (setup.relay.1, format!("/gateway/{host}"), "relay + gateway")
    } else {
        (gw_addr, GATEWAY_PATH.to_owned(), "gateway alone")
    };
    let before = setup.cpu();
    let mut stats = drive(
        scenario,
        target,
        path,
        setup.tls()?,
        Arc::new(pool),
        connections,
        duration,
    )
    .await?;
    setup.charge(&mut stats, before);
    Ok(stats)
}

/// `pool_size` requests to gateway 0, encapsulated to its current key.
pub(super) async fn gateway_pool(setup: &Setup, pool_size: usize) -> Result<Pool> {
    let (gw_addr, host) = (setup.gateways[0].1, &setup.gateways[0].2);
    let keys = fetch_keys(setup, gw_addr).await?;
    Pool::build(&keys, host, pool_size, setup.identifiers)
}

/// Loads the TLS floor server `floor` (see `mimi-tls-floor`) like a gateway,
/// with the same requests; the floor's CPU is charged as the gateway's.
pub async fn run_tls_floor(
    setup: &Setup,
    floor: &ServerProcess,
    answer_len: usize,
    connections: usize,
    duration: Duration,
    pool_size: usize,
) -> Result<RunStats> {
    let pool = gateway_pool(setup, pool_size)
        .await?
        .expecting_fixed_answer(answer_len);
    let target = addr_of(&floor.url)?;
    let before = floor.cpu_seconds().unwrap_or(0.0);
    let mut stats = drive(
        "TLS floor",
        target,
        GATEWAY_PATH.to_owned(),
        setup.tls()?,
        Arc::new(pool),
        connections,
        duration,
    )
    .await?;
    stats.gateway_cpu = floor.cpu_seconds().unwrap_or(0.0) - before;
    Ok(stats)
}

pub(super) async fn fetch_keys(setup: &Setup, gateway: SocketAddr) -> Result<Vec<u8>> {
    fetch_keys_with(&setup.tls()?, gateway).await
}

/// A gateway's key list, fetched over TLS with `tls`.
pub(crate) async fn fetch_keys_with(
    tls: &Arc<rustls::ClientConfig>,
    gateway: SocketAddr,
) -> Result<Vec<u8>> {
    let connector = tokio_rustls::TlsConnector::from(tls.clone());
    let tcp = tokio::net::TcpStream::connect(gateway).await?;
    let stream = connector
        .connect(ServerName::IpAddress(gateway.ip().into()), tcp)
        .await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let resp = sender
        .send_request(
            http::Request::get(GATEWAY_PATH)
                .header("host", "bench")
                .body(Full::new(Bytes::new()))?,
        )
        .await?;
    Ok(resp.into_body().collect().await?.to_bytes().to_vec())
}

/// Scenario (c): whole discoveries (DNS, then three providers through the
/// relay), `concurrency` at a time.
pub async fn run_full(setup: &Setup, concurrency: usize, duration: Duration) -> Result<RunStats> {
    run_full_with(
        setup,
        setup.discoverer()?,
        "full discovery",
        concurrency,
        duration,
    )
    .await
}

/// A transport that waits `delay` before each exchange with a gateway: a
/// simulated wide-area round trip between the client's relay and providers.
#[derive(Clone)]
pub struct Delayed {
    inner: RelayTransport,
    delay: Duration,
}

impl Transport for Delayed {
    async fn fetch_keys(
        &self,
        gateway: &str,
        source: mimi_client::KeySource,
    ) -> mimi_client::Result<mimi_client::RelayAnswer> {
        tokio::time::sleep(self.delay).await;
        self.inner.fetch_keys(gateway, source).await
    }

    async fn post(
        &self,
        gateway: &str,
        body: Vec<u8>,
    ) -> mimi_client::Result<mimi_client::RelayAnswer> {
        tokio::time::sleep(self.delay).await;
        self.inner.post(gateway, body).await
    }
}

/// Scenario (c) with `delay` added to every exchange with a provider, so
/// that waiting dominates and parallel querying shows.
pub async fn run_full_delayed(
    setup: &Setup,
    concurrency: usize,
    duration: Duration,
    delay: Duration,
) -> Result<RunStats> {
    let discoverer = setup.discoverer_with(|inner| Delayed { inner, delay })?;
    run_full_with(
        setup,
        discoverer,
        "full discovery, +delay per provider exchange",
        concurrency,
        duration,
    )
    .await
}

async fn run_full_with<T: Transport>(
    setup: &Setup,
    discoverer: Discoverer<T>,
    scenario: &'static str,
    concurrency: usize,
    duration: Duration,
) -> Result<RunStats> {
    // Keys are fetched and checked once per provider: warm them.
    discoverer.discover(&identifier(0)).await?;
    let before = setup.cpu();
    let next = Arc::new(AtomicUsize::new(1));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (d, next, identifiers) = (discoverer.clone(), next.clone(), setup.identifiers);
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut errors, mut lat) = (0usize, 0usize, Vec::new());
            let mut kinds = std::collections::BTreeMap::<String, usize>::new();
            while Instant::now() < deadline {
                let k = next.fetch_add(1, Ordering::Relaxed) % identifiers;
                let t0 = Instant::now();
                match d.discover(&identifier(k)).await {
                    Ok(found) if found.accounts().count() == GATEWAYS.len() => {
                        ok += 1;
                        lat.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
                    }
                    Ok(found) => {
                        errors += 1;
                        for p in &found.providers {
                            if let mimi_client::Outcome::Error { code, .. } = &p.outcome {
                                *kinds.entry(code.as_str().to_owned()).or_insert(0) += 1;
                            }
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        *kinds
                            .entry(mimi_client::error_code(&e).to_owned())
                            .or_insert(0) += 1;
                    }
                }
            }
            (ok, errors, lat, kinds)
        }));
    }
    let mut stats = RunStats::new(scenario, concurrency);
    for t in tasks {
        let (ok, errors, lat, kinds) = t.await?;
        stats.absorb(ok, errors, lat);
        for (k, n) in kinds {
            *stats.error_kinds.entry(k).or_insert(0) += n;
        }
    }
    stats.elapsed = started.elapsed();
    stats.latencies_us.sort_unstable();
    setup.charge(&mut stats, before);
    Ok(stats)
}

/// DNS alone, one query at a time, through the client's own resolver: the
/// discovery of an identifier whose name holds no MIMI record ends after
/// step 1. Every name is asked once, so no answer comes from a cache.
pub async fn run_dns(setup: &Setup, duration: Duration) -> Result<RunStats> {
    let discoverer = setup.discoverer()?;
    let mut stats = RunStats::new("DNS alone (client resolver)", 1);
    let started = Instant::now();
    let mut k = 0usize;
    // Each name once: a repeated one would be answered from the resolver's cache.
    while started.elapsed() < duration && k < setup.identifiers {
        let t0 = Instant::now();
        match discoverer
            .discover(&format!("nomimi{k}.bench.example"))
            .await
        {
            Err(mimi_client::Error::NoMimiRecord) => {
                stats.ok += 1;
                stats
                    .latencies_us
                    .push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
            }
            _ => stats.errors += 1,
        }
        k += 1;
    }
    stats.elapsed = started.elapsed();
    stats.latencies_us.sort_unstable();
    Ok(stats)
}

/// A gateway in process for `host`: fresh keys, an embedded SQLite directory
/// holding the first 100 identifiers, the in-memory replay cache. Returns
/// the directory's temporary home (keep it), the gateway and its key list.
pub(crate) fn inprocess_gateway(
    rt: &tokio::runtime::Handle,
    host: &str,
) -> Result<(tempfile::TempDir, mimi_gateway::Gateway, Vec<u8>)> {
    use mimi_gateway::directory::{Directory, Entry};
    use mimi_gateway::{Gateway, Settings};
    let dir = tempfile::tempdir()?;
    let keys = Arc::new(mimi_gateway::keys::KeyManager::open(
        &dir.path().join("keys.json"),
        SystemTime::now(),
    )?);
    let directory = Directory::open(&dir.path().join("dir.sqlite"))?;
    for k in 0..100 {
        rt.block_on(directory.add(&Entry {
            identifier: identifier(k),
            account: format!("mimi://bench.example/u/user{k}"),
            searchable: true,
            assertion: None,
        }))?;
    }
    let gateway = Gateway::new(
        Settings {
            public_host: host.into(),
            extra_origins: vec![],
            date_window: Duration::from_secs(600),
            future_skew: Duration::from_secs(10),
            replay_capacity: 10_000_000,
            started: None,
        },
        keys.clone(),
        mimi_gateway::inner::Backend::Embedded(Arc::new(directory)),
        None,
    );
    let list = keys.ring().encoded_list().to_vec();
    Ok((dir, gateway, list))
}

/// Whole-request handling in process (decapsulate, checks, replay cache,
/// SQLite lookup, seal) on 1 thread and on every core: requests per second.
/// If anything on the path queued behind one lock, the second would not grow.
pub fn inprocess_scaling(seconds: f64) -> Result<(f64, f64, usize)> {
    // The directory's writes run on the runtime's blocking threads.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let rt = runtime.handle().clone();
    let host = "mimi.inprocess.example";
    let (_dir, gateway, list) = inprocess_gateway(&rt, host)?;
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    // Calibrate: how many one thread does in `seconds`, to size the pools.
    let probe = Pool::build(&list, host, 2000, 100)?;
    let t0 = Instant::now();
    for item in &probe.items {
        rt.block_on(gateway.handle(&item.body, SystemTime::now()))?;
    }
    let per_thread = ((2000.0 / t0.elapsed().as_secs_f64()) * seconds) as usize + 1;
    let mut rates = Vec::new();
    for n in [1, threads] {
        let pool = Pool::build(&list, host, per_thread * n, 100)?;
        let started = Instant::now();
        let failures = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..n {
                s.spawn(|| {
                    while let Some(item) = pool.take() {
                        if rt
                            .block_on(gateway.handle(&item.body, SystemTime::now()))
                            .is_err()
                        {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        if failures.load(Ordering::Relaxed) > 0 {
            bail!("in-process requests failed");
        }
        rates.push(pool.items.len() as f64 / started.elapsed().as_secs_f64());
    }
    Ok((rates[0], rates[1], threads))
}
