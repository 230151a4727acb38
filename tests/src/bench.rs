//! The load generator behind `mimi-bench`: the relay and three gateways run
//! as real processes (so their memory can be measured), DNS in process; the
//! generator drives (a) a gateway alone, (b) the relay in front of it, and
//! (c) whole discoveries, at several connection counts.
//!
//! Requests for (a) and (b) come from a pool encapsulated before the timed
//! run, one pool entry per request (each is valid once: the gateway refuses
//! replays), so that the generator spends its time on the network and not on
//! HPKE. Every response is decrypted and checked.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use mimi_client::{Discoverer, DnsMode, Options, RelayTransport, Transport};
use mimi_proto::codec::Codec;
use mimi_proto::oblivious::{self, GATEWAY_PATH, MEDIA_OHTTP_REQ};
use mimi_proto::{
    IdentifierQueryCode, IdentifierRequest, IdentifierResponse, SearchIdentifierType,
};
use rustls_pki_types::ServerName;

use crate::dns::{self, DnsServer};
use crate::pki::TestCa;
use crate::procs::{ServerProcess, binary};
use crate::recorder::Recorder;

const CLIENT: [u8; 4] = [127, 0, 0, 2];
const DNS: [u8; 4] = [127, 0, 0, 6];
const GATEWAYS: [[u8; 4]; 3] = [[127, 0, 0, 4], [127, 0, 0, 5], [127, 0, 0, 7]];

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Length of each timed run.
    pub duration: Duration,
    /// Connection counts to run each scenario at.
    pub concurrency: Vec<usize>,
    /// Largest request pool encapsulated for one run.
    pub pool_cap: usize,
    /// How many distinct identifiers the world holds.
    pub identifiers: usize,
    /// Seconds spent measuring the in-process rate.
    pub inprocess_secs: f64,
}

/// One timed run.
#[derive(Debug, Clone)]
pub struct RunStats {
    /// Which scenario.
    pub scenario: &'static str,
    /// Connections (or concurrent discoveries).
    pub connections: usize,
    /// Requests completed successfully.
    pub ok: usize,
    /// Requests that failed (any error, wrong status, or a wrong answer).
    pub errors: usize,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Successful requests' latencies, sorted, in microseconds.
    pub latencies_us: Vec<u32>,
    /// The pool ran out before the duration did.
    pub pool_exhausted: bool,
    /// CPU seconds the gateway process(es) used during the run.
    pub gateway_cpu: f64,
    /// CPU seconds the relay process used during the run.
    pub relay_cpu: f64,
    /// Failures by error code (full discoveries).
    pub error_kinds: std::collections::BTreeMap<String, usize>,
}

impl RunStats {
    /// An empty record for a run about to start.
    pub fn new(scenario: &'static str, connections: usize) -> Self {
        Self {
            scenario,
            connections,
            ok: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            latencies_us: Vec::new(),
            pool_exhausted: false,
            gateway_cpu: 0.0,
            relay_cpu: 0.0,
            error_kinds: Default::default(),
        }
    }

    /// Adds a worker's counts and latencies.
    fn absorb(&mut self, ok: usize, errors: usize, latencies: Vec<u32>) {
        self.ok += ok;
        self.errors += errors;
        self.latencies_us.extend(latencies);
    }

    /// Successful requests per second.
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q` quantile of latency, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * q).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }
}

/// The running servers.
pub struct Setup {
    dir: tempfile::TempDir,
    ca: TestCa,
    dns: Option<DnsServer>,
    /// Gateway processes with their address and host.
    pub gateways: Vec<(ServerProcess, SocketAddr, String)>,
    /// The relay process and its address.
    pub relay: (ServerProcess, SocketAddr),
    /// The DNS server's address.
    pub dns_addr: SocketAddr,
    /// Its private root's trust anchor, as a file.
    pub trust_anchor: std::path::PathBuf,
    identifiers: usize,
}

fn host_of(i: usize) -> String {
    format!("mimi.g{i}.bench.example")
}

pub(crate) fn identifier(k: usize) -> String {
    format!("user{k}.bench.example")
}

fn addr_of(url: &str) -> Result<SocketAddr> {
    url.rsplit('/')
        .next()
        .unwrap_or_default()
        .parse()
        .with_context(|| format!("no address in {url}"))
}

impl Setup {
    /// Starts DNS (in process), three gateway processes and a relay process.
    pub async fn start(identifiers: usize) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let ca = TestCa::new()?;
        std::fs::write(d.join("ca.pem"), ca.pem())?;
        let gateway_bin = binary("mimi-gateway", "mimi-gateway")?;
        let relay_bin = binary("mimi-relay", "mimi-relay")?;

        // DNS: every identifier lists all three providers.
        let mut records = Vec::with_capacity(identifiers * (GATEWAYS.len() + 1));
        for k in 0..identifiers {
            records.push((
                format!("_mimi.nomimi{k}.bench.example."),
                "v=spf1 -all".to_owned(),
            ));
            for (i, _) in GATEWAYS.iter().enumerate() {
                records.push((
                    format!("_mimi.{}.", identifier(k)),
                    format!("v=MIMI1; p={i}; e={}; s=g{i}", host_of(i)),
                ));
            }
        }
        let dns = dns::spawn(
            IpAddr::from(DNS),
            &[dns::Zone {
                origin: "bench.example.".into(),
                records,
                signed: true,
            }],
            Arc::new(Recorder::disabled()),
        )
        .await?;
        let dns_addr = dns.addr;
        let trust_anchor = dir.path().join("trust-anchor.txt");
        std::fs::write(&trust_anchor, &dns.trust_anchor)?;

        let mut csv = String::from("identifier,account\n");
        for k in 0..identifiers {
            csv.push_str(&format!(
                "{},mimi://bench.example/u/user{k}\n",
                identifier(k)
            ));
        }
        std::fs::write(d.join("people.csv"), csv)?;

        let mut gateways = Vec::new();
        for (i, ip) in GATEWAYS.iter().enumerate() {
            let ip = IpAddr::from(*ip);
            let host = host_of(i);
            let home = d.join(format!("g{i}"));
            std::fs::create_dir_all(&home)?;
            let leaf = ca.issue(&[&host, &ip.to_string()])?;
            std::fs::write(home.join("cert.pem"), &leaf.cert_pem)?;
            std::fs::write(home.join("key.pem"), &leaf.key_pem)?;
            let config = home.join("gateway.toml");
            std::fs::write(
                &config,
                format!(
                    "listen = \"{ip}:0\"\npublic_host = \"{host}\"\nkey_file = \"{h}/keys.json\"\n\
                     [tls]\ncert = \"{h}/cert.pem\"\nkey = \"{h}/key.pem\"\n\
                     [replay]\nwindow_secs = 600\ncapacity = 2000000\n\
                     [connections]\nmax_per_client = 2500\n\
                     [directory]\ndatabase = \"{h}/directory.sqlite\"\n",
                    h = home.display()
                ),
            )?;
            let status = std::process::Command::new(&gateway_bin)
                .arg("--config")
                .arg(&config)
                .args(["directory", "import"])
                .arg(d.join("people.csv"))
                .stdout(std::process::Stdio::null())
                .status()?;
            if !status.success() {
                bail!("directory import failed");
            }
            let process = ServerProcess::start(&gateway_bin, &config)?;
            let addr = addr_of(&process.url)?;
            gateways.push((process, addr, host));
        }

        let leaf = ca.issue(&["127.0.0.3"])?;
        std::fs::write(d.join("relay.pem"), &leaf.cert_pem)?;
        std::fs::write(d.join("relay.key"), &leaf.key_pem)?;
        let mut relay_config = format!(
            "listen = \"127.0.0.3:0\"\ngateway_ca_file = \"{d}/ca.pem\"\noutbound_bind = \"127.0.0.3\"\n\
             [tls]\ncert = \"{d}/relay.pem\"\nkey = \"{d}/relay.key\"\n\
             [rate]\nper_second = 1000000000.0\nburst = 1000000000\n\
             [limits]\nmax_concurrent = 8192\nmax_in_flight_per_client = 8192\n\
             [connections]\nmax_per_client = 2500\n",
            d = d.display()
        );
        for (_, addr, host) in &gateways {
            relay_config.push_str(&format!(
                "[[gateway]]\nhost = \"{host}\"\nurl = \"https://{addr}{GATEWAY_PATH}\"\n"
            ));
        }
        std::fs::write(d.join("relay.toml"), relay_config)?;
        let relay = ServerProcess::start(&relay_bin, &d.join("relay.toml"))?;
        let relay_addr = addr_of(&relay.url)?;
        Ok(Self {
            dir,
            ca,
            dns: Some(dns),
            gateways,
            relay: (relay, relay_addr),
            dns_addr,
            trust_anchor,
            identifiers,
        })
    }

    fn tls(&self) -> Result<Arc<rustls::ClientConfig>> {
        client_tls(&self.ca)
    }

    /// A client on 127.0.0.2 using the relay and the DNS server.
    fn discoverer(&self) -> Result<Discoverer<RelayTransport>> {
        self.discoverer_with(|t| t)
    }

    fn discoverer_with<T: Transport>(
        &self,
        wrap: impl FnOnce(RelayTransport) -> T,
    ) -> Result<Discoverer<T>> {
        let transport = RelayTransport::with_local_address(
            &format!("https://{}", self.relay.1),
            std::slice::from_ref(self.ca.der()),
            Duration::from_secs(10),
            Some(IpAddr::from(CLIENT)),
        )?;
        Ok(Discoverer::new(
            wrap(transport),
            Options {
                dns: DnsMode::Server {
                    addr: self.dns_addr,
                    tcp: false,
                },
                provider_timeout: Duration::from_secs(10),
                local_address: Some(IpAddr::from(CLIENT)),
                trust_anchor: Some(self.trust_anchor.clone()),
                ..Options::default()
            },
        )?)
    }

    /// CPU seconds used so far: (all gateways, relay).
    fn cpu(&self) -> (f64, f64) {
        let gateways = self
            .gateways
            .iter()
            .filter_map(|(p, _, _)| p.cpu_seconds())
            .sum();
        (gateways, self.relay.0.cpu_seconds().unwrap_or(0.0))
    }

    fn charge(&self, stats: &mut RunStats, before: (f64, f64)) {
        let after = self.cpu();
        stats.gateway_cpu = after.0 - before.0;
        stats.relay_cpu = after.1 - before.1;
    }

    /// Starts `mimi-tls-floor` beside gateway 0 (its address and
    /// certificate, another port), answering every request with
    /// `answer_len` bytes.
    pub fn start_tls_floor(&self, answer_len: usize) -> Result<ServerProcess> {
        let bin = binary("mimi-testbed", "mimi-tls-floor")?;
        let home = self.dir.path().join("g0");
        let listen = SocketAddr::new(self.gateways[0].1.ip(), 0).to_string();
        let len = answer_len.to_string();
        let (cert, key) = (home.join("cert.pem"), home.join("key.pem"));
        let args: [&std::ffi::OsStr; 8] = [
            "--listen".as_ref(),
            listen.as_ref(),
            "--cert-file".as_ref(),
            cert.as_os_str(),
            "--key-file".as_ref(),
            key.as_os_str(),
            "--answer-len".as_ref(),
            len.as_ref(),
        ];
        ServerProcess::start_with_args(&bin, &args)
    }

    /// The process id of the gateway the "gateway alone" runs load.
    pub fn gateway_pid(&self) -> u32 {
        self.gateways[0].0.pid()
    }

    /// The relay's process id.
    pub fn relay_pid(&self) -> u32 {
        self.relay.0.pid()
    }

    /// Peak RSS of each server process, in KiB.
    pub fn peak_rss(&self) -> Vec<(String, Option<u64>)> {
        let mut out = vec![("mimi-relay".to_string(), self.relay.0.peak_rss_kib())];
        for (p, _, host) in &self.gateways {
            out.push((format!("mimi-gateway {host}"), p.peak_rss_kib()));
        }
        out
    }

    /// Stops everything; every server must exit cleanly.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(dns) = self.dns.take() {
            dns.stop().await;
        }
        let status = self.relay.0.stop()?;
        if !status.success() {
            bail!("relay exited with {status}");
        }
        for (p, _, _) in self.gateways {
            let status = p.stop()?;
            if !status.success() {
                bail!("gateway exited with {status}");
            }
        }
        Ok(())
    }
}

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
struct Item {
    body: Bytes,
    context: Mutex<Option<oblivious::ClientResponse>>,
}

/// Requests encapsulated ahead of a run; each is taken once.
pub(crate) struct Pool {
    items: Vec<Item>,
    next: AtomicUsize,
    exhausted: AtomicBool,
    /// For a server that answers every request with the same bytes (the
    /// TLS floor): the answer's length, which then counts as success.
    fixed_answer: Option<usize>,
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

    fn take(&self) -> Option<&Item> {
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
fn check(pool: &Pool, item: &Item, status: u16, body: &[u8]) -> bool {
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
async fn connect_all(
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
struct Failure {
    /// What went wrong: an HTTP status, or what failed.
    kind: String,
    /// The connection can carry no more requests.
    closed: bool,
}

/// Sends pool request `item` to `path` on `sender`; `Ok` when its answer
/// opens to a 200 identifierQuery success.
async fn send_checked(
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
async fn gateway_pool(setup: &Setup, pool_size: usize) -> Result<Pool> {
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

async fn fetch_keys(setup: &Setup, gateway: SocketAddr) -> Result<Vec<u8>> {
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

/// What a soak run saw.
#[derive(Debug)]
pub struct SoakReport {
    /// Connections held through the relay.
    pub connections: usize,
    /// How long the load lasted.
    pub elapsed: Duration,
    /// Answers that opened to a success.
    pub ok: usize,
    /// Everything else (refused, failed, closed connections).
    pub errors: usize,
    /// The errors by kind: an HTTP status, or what failed.
    pub error_kinds: std::collections::BTreeMap<String, usize>,
    /// Each process: RSS in KiB before the load, at its peak during the
    /// load (sampled every 250 ms), and 3 s after the connections closed.
    pub rss: Vec<(String, u64, u64, u64)>,
}

fn rss_now(setup: &Setup) -> Vec<(String, u64)> {
    let mut out = vec![(
        "mimi-relay".to_string(),
        setup.relay.0.rss_kib().unwrap_or(0),
    )];
    for (p, _, host) in &setup.gateways {
        out.push((format!("mimi-gateway {host}"), p.rss_kib().unwrap_or(0)));
    }
    out
}

/// Holds `connections` TLS connections through the relay to one gateway for
/// `duration`, each sending a unique request at an even pace so that
/// `per_second` arrive in all, while the servers' memory is sampled.
pub async fn soak(
    setup: &Setup,
    connections: usize,
    duration: Duration,
    per_second: f64,
) -> Result<SoakReport> {
    let (gw_addr, host) = (setup.gateways[0].1, setup.gateways[0].2.clone());
    let keys = fetch_keys(setup, gw_addr).await?;
    let total = (per_second * duration.as_secs_f64() * 1.05) as usize + connections;
    let pool = Arc::new(Pool::build(&keys, &host, total, setup.identifiers)?);
    let start: Vec<(String, u64)> = rss_now(setup);
    let senders = connect_all(setup.relay.1, setup.tls()?, connections).await?;
    // Each connection sends one request every `gap`, the starts spread
    // over one gap, so the load is even.
    let gap = Duration::from_secs_f64(connections as f64 / per_second);
    let path = format!("/gateway/{host}");
    let started = Instant::now();
    let deadline = started + duration;
    let sampling = Arc::new(AtomicBool::new(true));
    let peak: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(start.iter().map(|r| r.1).collect()));
    let pids: Vec<u32> = std::iter::once(setup.relay.0.pid())
        .chain(setup.gateways.iter().map(|(p, _, _)| p.pid()))
        .collect();
    let sampler = {
        let (sampling, peak) = (sampling.clone(), peak.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                for (i, pid) in pids.iter().enumerate() {
                    let rss = crate::procs::status_kib(*pid, "VmRSS:").unwrap_or(0);
                    if let Ok(mut p) = peak.lock() {
                        p[i] = p[i].max(rss);
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let mut tasks = Vec::with_capacity(connections);
    for (n, mut sender) in senders.into_iter().enumerate() {
        let (pool, path) = (pool.clone(), path.clone());
        let offset = gap.mul_f64(n as f64 / connections as f64);
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut errors) = (0usize, 0usize);
            let mut kinds = std::collections::BTreeMap::<String, usize>::new();
            let mut next = started + offset;
            while next < deadline {
                tokio::time::sleep_until(next.into()).await;
                next += gap;
                let Some(item) = pool.take() else { break };
                match send_checked(&mut sender, &path, &pool, item).await {
                    Ok(()) => ok += 1,
                    Err(failure) => {
                        errors += 1;
                        *kinds.entry(failure.kind).or_insert(0) += 1;
                        if failure.closed {
                            break;
                        }
                    }
                }
            }
            (ok, errors, kinds)
        }));
    }
    let (mut ok, mut errors) = (0, 0);
    let mut error_kinds = std::collections::BTreeMap::new();
    for t in tasks {
        let (o, e, kinds) = t.await?;
        ok += o;
        errors += e;
        for (k, n) in kinds {
            *error_kinds.entry(k).or_insert(0) += n;
        }
    }
    let elapsed = started.elapsed();
    // The connections are closed as the tasks end; give the servers a
    // moment to let go, then look once more.
    tokio::time::sleep(Duration::from_secs(3)).await;
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    let end = rss_now(setup);
    let peak = peak.lock().map(|p| p.clone()).unwrap_or_default();
    let rss = start
        .into_iter()
        .zip(peak)
        .zip(end)
        .map(|(((name, s), p), (_, e))| (name, s, p, e))
        .collect();
    Ok(SoakReport {
        connections,
        elapsed,
        ok,
        errors,
        error_kinds,
        rss,
    })
}
