//! `mimi-bench --cost`: what one request costs each party, each figure beside
//! its floor from the same run (BENCHMARKS.md, "Per-request cost").
//!
//! - The floor: one X25519 Diffie-Hellman, the least work a gateway must do
//!   per request, timed with every implementation available to Rust here
//!   (aws-lc-rs, ring, x25519-dalek); the fastest is the floor.
//! - In process, on one thread: a whole gateway request (decapsulate, checks,
//!   replay cache, SQLite lookup, seal) and a client's encapsulation, each
//!   timed in rounds alternating with rounds of the fastest DH, and held
//!   against the lower of that and the separate floor.
//! - Over the network: the gateway's and the relay's own CPU per request at
//!   64 TLS keep-alive connections, read from `/proc`.
//! - The network side's own floor: `mimi-tls-floor`, the same server stack
//!   answering every request with fixed bytes, loaded the same way.
//! - With `--profile DIR`, `perf record` samples the gateway, the relay and
//!   the floor during those runs: the busiest symbols, and the kernel's share.

use std::fmt::Write;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use mimi_proto::oblivious;
use mimi_proto::{IdentifierRequest, SearchIdentifierType};

use crate::bench::{self, Pool, RunStats, Setup, identifier};

/// What `--cost` runs.
#[derive(Debug, Clone)]
pub struct CostConfig {
    /// Length of each loaded run.
    pub duration: Duration,
    /// Connections of the loaded runs.
    pub connections: usize,
    /// Largest request pool.
    pub pool_cap: usize,
    /// Identifiers in the world.
    pub identifiers: usize,
    /// Where `perf record` writes its data; `None`: no profile.
    pub profile: Option<PathBuf>,
}

/// Rounds of each timed loop; the best round is reported, as the least
/// disturbed by whatever else the machine was doing.
const ROUNDS: usize = 15;
/// Operations per round.
const PER_ROUND: usize = 1000;

/// The best of [`ROUNDS`] rounds of `PER_ROUND` calls, in µs per call.
fn best_us(mut f: impl FnMut()) -> f64 {
    (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..PER_ROUND {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / PER_ROUND as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// A round of `PER_ROUND` X25519 DHs with aws-lc-rs, the fastest here.
pub(crate) fn aws_lc_dh_round() -> Result<f64> {
    use aws_lc_rs::agreement as aws;
    let key = |b| {
        aws::PrivateKey::from_private_key(&aws::X25519, &[b; 32])
            .map_err(|_| anyhow::anyhow!("aws-lc-rs key"))
    };
    let peer = key(9)?
        .compute_public_key()
        .map_err(|_| anyhow::anyhow!("aws-lc-rs public key"))?;
    let ours = key(7)?;
    let t = Instant::now();
    for _ in 0..PER_ROUND {
        let p = aws::UnparsedPublicKey::new(&aws::X25519, black_box(peer.as_ref()));
        let _ = aws::agree(&ours, p, (), |k| {
            black_box(k);
            Ok(())
        });
    }
    Ok(t.elapsed().as_secs_f64() * 1e6 / PER_ROUND as f64)
}

/// Times `round` (which returns µs per call) in [`ROUNDS`] rounds, each
/// right after a round of the floor, so that both see the machine in the
/// same state: (best of `round`, best of the floor beside it).
fn beside_floor(mut round: impl FnMut() -> Result<f64>) -> Result<(f64, f64)> {
    let (mut figure, mut floor) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..ROUNDS {
        floor = floor.min(aws_lc_dh_round()?);
        figure = figure.min(round()?);
    }
    Ok((figure, floor))
}

/// One X25519 DH with each implementation: (name, µs).
pub fn dh_floors() -> Result<Vec<(&'static str, f64)>> {
    use aws_lc_rs::agreement as aws;
    let peer_sk = aws::PrivateKey::from_private_key(&aws::X25519, &[9; 32])
        .map_err(|_| anyhow::anyhow!("aws-lc-rs key"))?;
    let peer = peer_sk
        .compute_public_key()
        .map_err(|_| anyhow::anyhow!("aws-lc-rs public key"))?;
    let peer: [u8; 32] = peer.as_ref().try_into()?;
    let ours = aws::PrivateKey::from_private_key(&aws::X25519, &[7; 32])
        .map_err(|_| anyhow::anyhow!("aws-lc-rs key"))?;
    let aws_lc = best_us(|| {
        let p = aws::UnparsedPublicKey::new(&aws::X25519, black_box(&peer[..]));
        let _ = aws::agree(&ours, p, (), |k| {
            black_box(k);
            Ok(())
        });
    });
    let dalek = best_us(|| {
        black_box(x25519_dalek::x25519(black_box([7; 32]), black_box(peer)));
    });
    // ring only has ephemeral keys: make them outside the timed loop.
    let rng = ring::rand::SystemRandom::new();
    let mut ring_best = f64::INFINITY;
    for _ in 0..ROUNDS {
        let keys = (0..PER_ROUND)
            .map(|_| ring::agreement::EphemeralPrivateKey::generate(&ring::agreement::X25519, &rng))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| anyhow::anyhow!("ring key"))?;
        let t = Instant::now();
        for k in keys {
            let p = ring::agreement::UnparsedPublicKey::new(&ring::agreement::X25519, &peer[..]);
            let _ = ring::agreement::agree_ephemeral(k, &p, |s| {
                black_box(s);
            });
        }
        ring_best = ring_best.min(t.elapsed().as_secs_f64() * 1e6 / PER_ROUND as f64);
    }
    Ok(vec![
        ("aws-lc-rs", aws_lc),
        ("ring (ephemeral keys only)", ring_best),
        ("x25519-dalek", dalek),
    ])
}

fn inner_request(host: &str) -> Result<Vec<u8>> {
    let request = IdentifierRequest::single(SearchIdentifierType::Handle, &identifier(0));
    Ok(oblivious::identifier_query(
        host,
        &request,
        SystemTime::now(),
        None,
    )?)
}

/// A client's encapsulation of one padded identifierQuery, and the floor
/// timed beside it, in µs.
pub fn client_encapsulation() -> Result<(f64, f64)> {
    let server = oblivious::ServerKey::derive(1, &[5; 32])?;
    let list = oblivious::encode_key_config_list([&server]);
    let entry = oblivious::decode_key_config_list(&list)?.remove(0);
    let request = inner_request("mimi.cost.example")?;
    beside_floor(|| {
        let t = Instant::now();
        for _ in 0..PER_ROUND {
            black_box(oblivious::ClientRequest::new(&entry).encapsulate(&request)?);
        }
        Ok(t.elapsed().as_secs_f64() * 1e6 / PER_ROUND as f64)
    })
}

/// A whole gateway request in process, on one thread (the embedded SQLite
/// directory, the in-memory replay cache, every check), and the floor timed
/// beside it, in µs.
pub fn gateway_whole_request() -> Result<(f64, f64)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let host = "mimi.cost.example";
    let (_dir, gateway, list) = bench::inprocess_gateway(rt.handle(), host)?;
    let pool = Pool::build(&list, host, (ROUNDS + 1) * PER_ROUND, 100)?;
    let mut items = pool.bodies();
    let mut round = || -> Result<f64> {
        let batch: Vec<_> = items.by_ref().take(PER_ROUND).collect();
        let t = Instant::now();
        for body in &batch {
            rt.block_on(gateway.handle(body, SystemTime::now()))
                .context("in-process request failed")?;
        }
        Ok(t.elapsed().as_secs_f64() * 1e6 / batch.len().max(1) as f64)
    };
    round()?; // warm up
    let result = beside_floor(round)?;
    let answered = gateway.metrics().get(mimi_gateway::outcome::Outcome::Ok);
    if answered != ((ROUNDS + 1) * PER_ROUND) as u64 {
        bail!("in process, only {answered} requests were answered ok");
    }
    Ok(result)
}

/// `perf record` of one process while a run lasts.
struct Profile {
    child: std::process::Child,
    data: PathBuf,
}

impl Profile {
    fn start(dir: &Path, name: &str, pid: u32, secs: f64) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let data = dir.join(format!("{name}.perf.data"));
        let child = Command::new("perf")
            .args(["record", "-q", "-F", "1999", "-p", &pid.to_string(), "-o"])
            .arg(&data)
            .args(["--", "sleep", &format!("{secs:.1}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("perf record (Debian package linux-perf)")?;
        Ok(Self { child, data })
    }

    /// The symbols with the most self time, and the kernel's share.
    fn finish(mut self) -> Result<ProfileSummary> {
        self.child.wait()?;
        let out = Command::new("perf")
            .args([
                "report",
                "--stdio",
                "--no-children",
                "--sort",
                "symbol",
                "-i",
            ])
            .arg(&self.data)
            .stderr(Stdio::null())
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let rows: Vec<(f64, bool, String)> = text
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains('%'))
            .filter_map(|l| {
                let (pct, rest) = l.trim().split_once('%')?;
                let rest = rest.trim();
                let kernel = rest.starts_with("[k]");
                let sym = rest.trim_start_matches("[.]").trim_start_matches("[k]");
                Some((pct.trim().parse().ok()?, kernel, sym.trim().to_owned()))
            })
            .collect();
        Ok(ProfileSummary {
            kernel_pct: rows.iter().filter(|r| r.1).map(|r| r.0).sum(),
            top: rows.iter().take(15).map(|r| (r.0, r.2.clone())).collect(),
        })
    }
}

/// What `perf report` says of one loaded process.
struct ProfileSummary {
    /// The symbols with the most self time: (percent, symbol).
    top: Vec<(f64, String)>,
    /// Percent of all samples in the kernel.
    kernel_pct: f64,
}

fn profile_table(out: &mut String, title: &str, rows: &[(f64, String)]) {
    let _ = writeln!(out, "\n{title}\n\n| self % | symbol |\n|---|---|");
    for (pct, sym) in rows {
        let short: String = sym.chars().take(90).collect();
        let _ = writeln!(out, "| {pct:.1} | `{short}` |");
    }
}

/// One loaded run of the process `pid`, profiled as `name` when asked: the
/// run and the profile.
async fn profiled(
    config: &CostConfig,
    name: &str,
    pid: u32,
    run: impl Future<Output = Result<RunStats>>,
) -> Result<(RunStats, Option<ProfileSummary>)> {
    let profile = match &config.profile {
        Some(dir) => Some(Profile::start(
            dir,
            name,
            pid,
            config.duration.as_secs_f64(),
        )?),
        None => None,
    };
    let stats = run.await?;
    let profile = match profile {
        Some(p) => Some(p.finish()?),
        None => None,
    };
    Ok((stats, profile))
}

/// The length of an encapsulated answer to an identifierQuery: the padded
/// Binary HTTP response, the response nonce (16 bytes, for AES-128-GCM) and
/// the AEAD tag (16 bytes).
const ANSWER_LEN: usize = mimi_proto::oblivious::MIN_PADDED_RESPONSE_LEN + 16 + 16;

/// Runs everything and returns the Markdown report.
pub async fn run(config: &CostConfig) -> Result<String> {
    let mut out = String::new();
    eprintln!("timing X25519 with each implementation ...");
    let floors = tokio::task::spawn_blocking(dh_floors).await??;
    let (floor_name, floor) = floors
        .iter()
        .copied()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .context("no floor")?;
    eprintln!("timing a whole request in process ...");
    let (whole, whole_floor) = tokio::task::spawn_blocking(gateway_whole_request).await??;
    eprintln!("timing a client's encapsulation ...");
    let (encap, encap_floor) = tokio::task::spawn_blocking(client_encapsulation).await??;
    // Each in-process figure is held against the floor timed in the rounds
    // around it, or the separate floor if that was lower.
    let whole_floor = whole_floor.min(floor);
    let encap_floor = encap_floor.min(floor);

    eprintln!("starting DNS, 3 gateways and the relay ...");
    let setup = Setup::start(config.identifiers).await?;
    let per_sec = 1e6 / whole * 2.0;
    let pool_size =
        ((per_sec * config.duration.as_secs_f64()) as usize).clamp(100, config.pool_cap);
    eprintln!(
        "gateway alone, {} connections ({pool_size} requests ready) ...",
        config.connections
    );
    let (n, duration) = (config.connections, config.duration);
    let (gw, gw_profile) = profiled(
        config,
        "gateway",
        setup.gateway_pid(),
        bench::run_ohttp(&setup, false, n, duration, pool_size),
    )
    .await?;
    eprintln!("relay + gateway, {} connections ...", config.connections);
    let (relay, relay_profile) = profiled(
        config,
        "relay",
        setup.relay_pid(),
        bench::run_ohttp(&setup, true, n, duration, pool_size),
    )
    .await?;
    eprintln!(
        "TLS floor (a fixed answer on the same stack), {} connections ...",
        config.connections
    );
    let floor_server = setup.start_tls_floor(ANSWER_LEN)?;
    let floor_run = profiled(
        config,
        "tls-floor",
        floor_server.pid(),
        bench::run_tls_floor(&setup, &floor_server, ANSWER_LEN, n, duration, pool_size),
    )
    .await;
    floor_server.stop()?;
    let (stack, stack_profile) = floor_run?;
    setup.stop().await?;

    let per_req = |cpu: f64, n: usize| cpu * 1e6 / n.max(1) as f64;
    let gw_cpu = per_req(gw.gateway_cpu, gw.ok);
    let relay_cpu = per_req(relay.relay_cpu, relay.ok);
    let stack_cpu = per_req(stack.gateway_cpu, stack.ok);

    let _ = writeln!(out, "| X25519 DH, one thread | µs |\n|---|---|");
    for (name, us) in &floors {
        let _ = writeln!(out, "| {name} | {us:.1} |");
    }
    let _ = writeln!(
        out,
        "\nFloor: **{floor:.1} µs** ({floor_name}).\n\n\
         | target | figure | floor or base | ratio | target ratio | met |\n|---|---|---|---|---|---|"
    );
    let mut target = |name: &str, figure: f64, base: f64, base_name: &str, limit: f64| {
        let ratio = figure / base;
        let _ = writeln!(
            out,
            "| {name} | {figure:.1} µs | {base:.1} µs ({base_name}) | {ratio:.2} | <= {limit} | {} |",
            if ratio <= limit { "yes" } else { "no" }
        );
    };
    target(
        "gateway, whole request in process (one thread)",
        whole,
        whole_floor,
        "DH floor beside it",
        1.6,
    );
    target(
        &format!(
            "gateway over TLS, CPU per request ({} connections, {} ok, {} errors)",
            config.connections, gw.ok, gw.errors
        ),
        gw_cpu,
        whole,
        "in-process request",
        1.25,
    );
    target(
        &format!(
            "relay, CPU per forwarded request ({} connections, {} ok, {} errors)",
            config.connections, relay.ok, relay.errors
        ),
        relay_cpu,
        20.0,
        "fixed budget",
        1.0,
    );
    target(
        "client, encapsulation of one padded request",
        encap,
        encap_floor,
        "DH floor beside it",
        1.6,
    );
    let _ = writeln!(
        out,
        "\nThe stack's own floor: `mimi-tls-floor` serves every request with a fixed \
         {ANSWER_LEN}-byte answer on the same accept loop, TLS and HTTP, \
         doing nothing else ({} connections, {} ok, {} errors). \"In the kernel\" is \
         the kernel's share of the process's `perf` samples (with `--profile`).\n\n\
         | CPU per request | µs | in the kernel, µs |\n|---|---|---|",
        config.connections, stack.ok, stack.errors,
    );
    let kernel = |cpu: f64, p: &Option<ProfileSummary>| {
        p.as_ref().map_or("-".to_owned(), |p| {
            format!("{:.1}", cpu * p.kernel_pct / 100.0)
        })
    };
    let mut row = |name: &str, cpu: f64, kernel: String| {
        let _ = writeln!(out, "| {name} | {cpu:.1} | {kernel} |");
    };
    row(
        "TLS floor: read one request, send one fixed answer",
        stack_cpu,
        kernel(stack_cpu, &stack_profile),
    );
    row(
        "gateway over TLS, all of it",
        gw_cpu,
        kernel(gw_cpu, &gw_profile),
    );
    row(
        "gateway over TLS, beyond its in-process request",
        gw_cpu - whole,
        "-".into(),
    );
    row(
        "what the gateway target leaves for the stack (0.25 × in-process)",
        0.25 * whole,
        "-".into(),
    );
    row(
        "relay (serves one exchange and makes one)",
        relay_cpu,
        kernel(relay_cpu, &relay_profile),
    );
    row("relay budget", 20.0, "-".into());
    for (title, profile) in [
        ("Gateway", &gw_profile),
        ("Relay", &relay_profile),
        ("TLS floor", &stack_profile),
    ] {
        if let Some(p) = profile {
            profile_table(
                &mut out,
                &format!("{title} under load, busiest symbols (`perf record`, self time):"),
                &p.top,
            );
        }
    }
    Ok(out)
}
