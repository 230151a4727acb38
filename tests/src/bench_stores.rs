//! `mimi-bench --stores`: what the shared stores cost. Redis and PostgreSQL
//! run as real servers on this machine (unix sockets); gateways run as
//! processes. Measured: seconds to import N entries into SQLite and into
//! PostgreSQL, lookup latency with N entries in each, and the gateway's
//! throughput and p99 at 64 TLS connections with each replay store and each
//! directory, with one replica and with two.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mimi_gateway::config::{DirectorySection, DirectoryStore};
use mimi_gateway::directory::{Directory, Entry};
use mimi_proto::SearchIdentifierType;
use mimi_proto::oblivious::GATEWAY_PATH;

use crate::bench::{Pool, RunStats, client_tls, drive, identifier};
use crate::engines::{PostgresServer, RedisServer};
use crate::pki::TestCa;
use crate::procs::{ServerProcess, binary};

const HOST: &str = "mimi.stores.bench.example";
const REPLICAS: [&str; 2] = ["127.0.0.4", "127.0.0.5"];

/// What to run.
#[derive(Debug, Clone)]
pub struct StoresConfig {
    /// Entries imported into each directory.
    pub entries: usize,
    /// Lookups timed one after another against each directory.
    pub lookups: usize,
    /// Length of each gateway run.
    pub duration: Duration,
    /// Connections in each gateway run.
    pub connections: usize,
    /// Largest request pool per gateway run.
    pub pool_cap: usize,
}

fn base() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    target.join("tmp").join("engines")
}

fn entries(n: usize) -> Vec<Entry> {
    (0..n)
        .map(|k| Entry {
            identifier: identifier(k),
            account: format!("mimi://stores.bench.example/u/user{k}"),
            searchable: true,
            assertion: None,
        })
        .collect()
}

/// Lookup latencies in µs (sorted) for `n` identifiers spread over the directory.
async fn lookup_latencies(dir: &Directory, entries: usize, n: usize) -> Result<Vec<u32>> {
    let mut out = Vec::with_capacity(n);
    // A fixed stride through the names: every lookup hits a different entry.
    let stride = 7_919usize;
    for i in 0..n {
        let name = identifier(i.wrapping_mul(stride) % entries);
        let t0 = Instant::now();
        let found = dir.lookup(SearchIdentifierType::Handle, &name).await?;
        out.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
        anyhow::ensure!(found.len() == 1, "{name} not found");
    }
    out.sort_unstable();
    Ok(out)
}

fn quantile_us(sorted: &[u32], q: f64) -> u32 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn gateway_config(
    dir: &Path,
    name: &str,
    ip: &str,
    redis: Option<&str>,
    postgres: Option<&str>,
) -> Result<PathBuf> {
    let path = dir.join(format!("{name}.toml"));
    let mut text = format!(
        "listen = \"{ip}:0\"\npublic_host = \"{HOST}\"\n[tls]\ncert = \"{d}/gw.pem\"\nkey = \"{d}/gw.key\"\n[keys]\nsource = \"seed\"\nseed_file = \"{d}/seed.json\"\n[connections]\nmax_per_client = 2500\n[replay]\nwindow_secs = 600\n",
        d = dir.display()
    );
    if let Some(url) = redis {
        let _ = writeln!(text, "store = \"redis\"\nredis_url = \"{url}\"");
    }
    match postgres {
        Some(url) => {
            let _ = writeln!(text, "[directory]\nstore = \"postgres\"\nurl = \"{url}\"");
        }
        None => {
            let _ = writeln!(
                text,
                "[directory]\ndatabase = \"{}/dir.sqlite\"",
                dir.display()
            );
        }
    }
    std::fs::write(&path, text)?;
    Ok(path)
}

/// One gateway run: `replicas` processes with the stores named, 64
/// connections split over them, every answer checked.
async fn gateway_run(
    dir: &Path,
    ca: &TestCa,
    config: &StoresConfig,
    replicas: usize,
    redis: Option<&str>,
    postgres: Option<&str>,
    identifiers: usize,
) -> Result<RunStats> {
    let bin = binary("mimi-gateway", "mimi-gateway")?;
    let mut procs = Vec::new();
    for (i, ip) in REPLICAS.iter().take(replicas).enumerate() {
        let cfg = gateway_config(dir, &format!("gw{i}"), ip, redis, postgres)?;
        procs.push(tokio::task::block_in_place(|| {
            ServerProcess::start(&bin, &cfg)
        })?);
    }
    let addrs: Vec<SocketAddr> = procs
        .iter()
        .map(|p| p.url.rsplit('/').next().unwrap_or_default().parse())
        .collect::<Result<_, _>>()
        .context("gateway address")?;
    let tls = client_tls(ca)?;
    let keys = crate::bench::fetch_keys_with(&tls, addrs[0]).await?;
    // The pool's requests are dated once, when it is built: after the second
    // in which a fresh Redis began remembering, which refuses its own second.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    // Enough for the run at the rate the machine allows, capped.
    let pool = Arc::new(Pool::build(&keys, HOST, config.pool_cap, identifiers)?);
    let per = config.connections / replicas;
    let cpu0: f64 = procs.iter().filter_map(ServerProcess::cpu_seconds).sum();
    let runs = addrs.iter().map(|addr| {
        drive(
            "stores",
            *addr,
            GATEWAY_PATH.to_owned(),
            tls.clone(),
            pool.clone(),
            per,
            config.duration,
        )
    });
    let results = futures::future::join_all(runs).await;
    let mut stats = RunStats::new("stores", config.connections);
    for r in results {
        let r = r?;
        stats.ok += r.ok;
        stats.errors += r.errors;
        stats.latencies_us.extend(r.latencies_us);
        stats.elapsed = stats.elapsed.max(r.elapsed);
        stats.pool_exhausted |= r.pool_exhausted;
    }
    stats.latencies_us.sort_unstable();
    stats.gateway_cpu = procs
        .iter()
        .filter_map(ServerProcess::cpu_seconds)
        .sum::<f64>()
        - cpu0;
    tokio::task::block_in_place(|| -> Result<()> {
        for p in procs {
            p.stop()?;
        }
        Ok(())
    })?;
    Ok(stats)
}

/// Runs everything; returns the Markdown section.
pub async fn run(config: &StoresConfig) -> Result<String> {
    let base = base();
    let (redis, postgres) = tokio::task::block_in_place(|| -> Result<_> {
        Ok((RedisServer::start(&base)?, PostgresServer::start(&base)?))
    })?;
    let tmp = tempfile::tempdir_in({
        std::fs::create_dir_all(&base)?;
        &base
    })?;
    let dir = tmp.path();
    let mut out = String::new();
    let n = config.entries;

    // Import.
    let list = entries(n);
    eprintln!("importing {n} entries into SQLite and PostgreSQL ...");
    let sqlite = Directory::open(&dir.join("dir.sqlite"))?;
    let t0 = Instant::now();
    sqlite.import(&list).await?;
    let sqlite_import = t0.elapsed();
    let section = DirectorySection {
        store: DirectoryStore::Postgres,
        url: Some(postgres.url()),
        ..DirectorySection::default()
    };
    let pg = Directory::connect(&section).await?;
    let t0 = Instant::now();
    pg.import(&list).await?;
    let pg_import = t0.elapsed();
    drop(list);
    let _ = writeln!(
        out,
        "Redis and PostgreSQL on this machine, over unix sockets.\n\n| directory | import {n} entries (s) | lookups | p50 µs | p99 µs |\n|---|---|---|---|---|"
    );
    for (name, dir_store, import) in [
        ("SQLite", &sqlite, sqlite_import),
        ("PostgreSQL", &pg, pg_import),
    ] {
        let lat = lookup_latencies(dir_store, n, config.lookups).await?;
        let _ = writeln!(
            out,
            "| {name} | {:.1} | {} one after another | {} | {} |",
            import.as_secs_f64(),
            lat.len(),
            quantile_us(&lat, 0.5),
            quantile_us(&lat, 0.99)
        );
    }
    drop((sqlite, pg));

    // Gateway runs.
    let ca = TestCa::new()?;
    let leaf = ca.issue(&[HOST, REPLICAS[0], REPLICAS[1]])?;
    std::fs::write(dir.join("gw.pem"), &leaf.cert_pem)?;
    std::fs::write(dir.join("gw.key"), &leaf.key_pem)?;
    let _ = writeln!(
        out,
        "\nGateway processes answering identifierQuery from the {n}-entry directory, {} TLS connections from one generator, {:.0} s each, every answer opened and checked:\n\n| replay store | directory | replicas | ok | errors | req/s | p50 ms | p99 ms | gateway CPU µs/req |\n|---|---|---|---|---|---|---|---|---|",
        config.connections,
        config.duration.as_secs_f64()
    );
    let redis_url = redis.url();
    let pg_url = postgres.url();
    // (replay store, its URL, directory, its URL, replicas)
    type Run<'a> = (&'a str, Option<&'a str>, &'a str, Option<&'a str>, usize);
    let runs: [Run<'_>; 5] = [
        ("memory", None, "SQLite", None, 1),
        ("Redis", Some(&redis_url), "SQLite", None, 1),
        ("memory", None, "PostgreSQL", Some(&pg_url), 1),
        ("Redis", Some(&redis_url), "PostgreSQL", Some(&pg_url), 1),
        ("Redis", Some(&redis_url), "PostgreSQL", Some(&pg_url), 2),
    ];
    for (replay, redis_url, directory, pg_url, replicas) in runs {
        eprintln!("gateway run: {replay} replay, {directory}, {replicas} replica(s) ...");
        let s = gateway_run(dir, &ca, config, replicas, redis_url, pg_url, n).await?;
        let _ = writeln!(
            out,
            "| {replay} | {directory} | {replicas} | {} | {} | {:.0} | {:.2} | {:.2} | {:.0} |{}",
            s.ok,
            s.errors,
            s.throughput(),
            s.quantile_ms(0.5),
            s.quantile_ms(0.99),
            s.gateway_cpu * 1e6 / s.ok.max(1) as f64,
            if s.pool_exhausted {
                " (pool ran out)"
            } else {
                ""
            }
        );
    }
    drop((redis, postgres));
    Ok(out)
}
