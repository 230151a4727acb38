//! `mimi-bench`: what a private lookup costs under load, against the cost of
//! the cryptography itself. Prints a Markdown report (see BENCHMARKS.md).

use std::fmt::Write;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use mimi_testbed::bench::{self, BenchConfig, RunStats, Setup};
use mimi_testbed::{bench_cost, bench_stores};

/// Load-test the gateway, the relay and whole discoveries on loopback.
#[derive(Debug, Parser)]
#[command(name = "mimi-bench", version)]
struct Args {
    /// Seconds each timed run lasts.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Connection counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,64,1024")]
    concurrency: Vec<usize>,
    /// Largest pool of pre-encapsulated requests per run.
    #[arg(long, default_value_t = 150_000)]
    pool_cap: usize,
    /// Distinct identifiers in the world (one-at-a-time runs do not repeat a
    /// name while they last, so DNS answers are not cached ones).
    #[arg(long, default_value_t = 20_000)]
    identifiers: usize,
    /// Seconds spent measuring the in-process rate.
    #[arg(long, default_value_t = 3.0)]
    inprocess_secs: f64,
    /// Also soak: hold connections through the relay this many seconds while
    /// sampling every process's memory (0: no soak).
    #[arg(long, default_value_t = 0.0)]
    soak_secs: f64,
    /// Connections the soak holds.
    #[arg(long, default_value_t = 1000)]
    soak_connections: usize,
    /// Requests per second the soak sends, in all.
    #[arg(long, default_value_t = 1000.0)]
    soak_rate: f64,
    /// Only the soak.
    #[arg(long)]
    soak_only: bool,
    /// Also measure the shared stores (Redis, PostgreSQL) against the
    /// embedded ones: imports, lookups, gateway runs with 1 and 2 replicas.
    #[arg(long)]
    stores: bool,
    /// Only the shared stores.
    #[arg(long)]
    stores_only: bool,
    /// Entries imported into each directory for `--stores`.
    #[arg(long, default_value_t = 1_000_000)]
    stores_entries: usize,
    /// Lookups timed one after another against each directory.
    #[arg(long, default_value_t = 20_000)]
    stores_lookups: usize,
    /// Only the per-request cost of each party beside its floor (one X25519
    /// DH), at 64 connections.
    #[arg(long)]
    cost: bool,
    /// Only what lookup tokens cost: issuance per core, redemption beside
    /// the DH floor, the whole lookup with and without, and lookups per day
    /// for one address before and after quotas.
    #[arg(long)]
    tokens: bool,
    /// With `--cost`: sample the gateway and the relay with `perf record`
    /// into this directory and print their busiest symbols.
    #[arg(long)]
    profile: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let config = BenchConfig {
        duration: Duration::from_secs_f64(args.duration),
        concurrency: args.concurrency.clone(),
        pool_cap: args.pool_cap,
        identifiers: args.identifiers.max(1),
        inprocess_secs: args.inprocess_secs,
    };
    if args.tokens {
        let report = mimi_testbed::bench_tokens::run(args.duration).await?;
        print!("\n### Lookup tokens\n\nMachine: {}  \n{report}", machine());
        return Ok(());
    }
    if args.cost {
        let report = bench_cost::run(&bench_cost::CostConfig {
            duration: Duration::from_secs_f64(args.duration),
            connections: 64,
            pool_cap: args.pool_cap,
            identifiers: args.identifiers.max(1),
            profile: args.profile.clone(),
        })
        .await?;
        print!(
            "\n### Per-request cost\n\nMachine: {}  \n{report}",
            machine()
        );
        return Ok(());
    }
    if args.stores || args.stores_only {
        let stores = bench_stores::run(&bench_stores::StoresConfig {
            entries: args.stores_entries.max(1),
            lookups: args.stores_lookups.max(1),
            duration: Duration::from_secs_f64(args.duration),
            connections: 64,
            pool_cap: args.pool_cap,
        })
        .await?;
        print!("\n### Shared stores\n\nMachine: {}  \n{stores}", machine());
        if args.stores_only {
            return Ok(());
        }
    }
    let report = if args.soak_only {
        String::new()
    } else {
        run(&config).await?
    };
    print!("{report}");
    if args.soak_secs > 0.0 {
        let soak = soak(&args).await?;
        print!("{soak}");
    }
    Ok(())
}

async fn soak(args: &Args) -> Result<String> {
    eprintln!("starting DNS, 3 gateways and the relay for the soak ...");
    let setup = Setup::start(args.identifiers.max(1)).await?;
    eprintln!(
        "soak: {} connections for {} s ...",
        args.soak_connections, args.soak_secs
    );
    let r = bench::soak(
        &setup,
        args.soak_connections,
        Duration::from_secs_f64(args.soak_secs),
        args.soak_rate,
    )
    .await?;
    setup.stop().await?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n### Soak\n\nMachine: {}  \n{} TLS connections held through the relay for {:.1} s, {:.0} requests/s in all: **{} ok, {} errors**{}.\n",
        machine(),
        r.connections,
        r.elapsed.as_secs_f64(),
        args.soak_rate,
        r.ok,
        r.errors,
        if r.error_kinds.is_empty() {
            String::new()
        } else {
            let kinds: Vec<String> = r
                .error_kinds
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect();
            format!(" ({})", kinds.join(", "))
        }
    );
    let _ = writeln!(
        out,
        "| process | RSS at start MiB | peak MiB | 3 s after the connections closed MiB |\n|---|---|---|---|"
    );
    let mib = |k: u64| k as f64 / 1024.0;
    for (name, start, peak, end) in &r.rss {
        let _ = writeln!(
            out,
            "| {name} | {:.1} | {:.1} | {:.1} |",
            mib(*start),
            mib(*peak),
            mib(*end)
        );
    }
    Ok(out)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .map_or("unknown".into(), |kib| {
            format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpu}, {cores} cores, {mem} memory, Linux {}",
        kernel.trim()
    )
}

fn per_request_us(cpu_seconds: f64, requests: usize) -> f64 {
    if requests == 0 {
        f64::NAN
    } else {
        cpu_seconds * 1e6 / requests as f64
    }
}

fn note(s: &RunStats) -> String {
    let mut parts: Vec<String> = s
        .error_kinds
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    if s.pool_exhausted {
        parts.push("pool ran out".into());
    }
    format!(" {} |", parts.join(", "))
}

fn row(out: &mut String, s: &RunStats) {
    let _ = writeln!(
        out,
        "| {} | {} | {} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.0} | {:.0} |{}",
        s.scenario,
        s.connections,
        s.ok,
        s.elapsed.as_secs_f64(),
        s.throughput(),
        s.quantile_ms(0.5),
        s.quantile_ms(0.99),
        s.quantile_ms(0.999),
        s.errors,
        per_request_us(s.gateway_cpu, s.ok),
        per_request_us(s.relay_cpu, s.ok),
        note(s),
    );
}

async fn run(config: &BenchConfig) -> Result<String> {
    let mut out = String::new();
    let _ = writeln!(out, "### Run\n\nMachine: {}  ", machine());
    let _ = writeln!(
        out,
        "Runs of {:.1} s at {:?} connections; {} identifiers; pools of at most {} requests.\n",
        config.duration.as_secs_f64(),
        config.concurrency,
        config.identifiers,
        config.pool_cap
    );

    eprintln!("measuring the in-process rate ...");
    let secs = config.inprocess_secs;
    let inprocess = tokio::task::spawn_blocking(move || bench::inprocess_rate(secs)).await??;
    let _ = writeln!(
        out,
        "In-process decapsulate + seal response, all cores: **{inprocess:.0} requests/s**\n"
    );

    eprintln!("measuring how whole-request handling scales with cores ...");
    let (one, all, threads) =
        tokio::task::spawn_blocking(move || bench::inprocess_scaling(secs)).await??;
    let _ = writeln!(
        out,
        "In-process whole requests (decapsulate, checks, replay cache, SQLite, seal): 1 thread **{one:.0}/s**, {threads} threads **{all:.0}/s** (x{:.2})\n",
        all / one
    );

    eprintln!("starting DNS, 3 gateways and the relay ...");
    let setup = Setup::start(config.identifiers).await?;
    // Never more requests than the servers could possibly answer in a run.
    let pool_size =
        ((inprocess * config.duration.as_secs_f64()) as usize).clamp(100, config.pool_cap);

    let _ = writeln!(
        out,
        "| scenario | connections | ok | seconds | throughput/s | p50 ms | p99 ms | p99.9 ms | errors | gateway CPU µs/req | relay CPU µs/req | note |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut gateway_runs = Vec::new();
    let mut relay_runs = Vec::new();
    for &c in &config.concurrency {
        eprintln!("gateway alone, {c} connections ...");
        let s = bench::run_ohttp(&setup, false, c, config.duration, pool_size).await?;
        row(&mut out, &s);
        gateway_runs.push(s);
    }
    for &c in &config.concurrency {
        eprintln!("relay + gateway, {c} connections ...");
        let s = bench::run_ohttp(&setup, true, c, config.duration, pool_size).await?;
        row(&mut out, &s);
        relay_runs.push(s);
    }
    let mut full_runs = Vec::new();
    for &c in &config.concurrency {
        eprintln!("full discoveries, {c} at a time ...");
        let s = bench::run_full(&setup, c, config.duration).await?;
        row(&mut out, &s);
        full_runs.push(s);
    }
    const WAN: Duration = Duration::from_millis(20);
    eprintln!("full discoveries with a simulated 20 ms per provider exchange, 1 at a time ...");
    let wan = bench::run_full_delayed(&setup, 1, config.duration, WAN).await?;
    row(&mut out, &wan);
    eprintln!("DNS alone ...");
    let dns = bench::run_dns(&setup, config.duration).await?;
    row(&mut out, &dns);

    let _ = writeln!(out, "\n| process | peak RSS MiB |\n|---|---|");
    for (name, kib) in setup.peak_rss() {
        let _ = writeln!(
            out,
            "| {name} | {} |",
            kib.map_or("n/a".into(), |k| format!("{:.1}", k as f64 / 1024.0))
        );
    }

    let best = |runs: &[RunStats]| runs.iter().map(RunStats::throughput).fold(0.0, f64::max);
    let ratio1 = best(&gateway_runs) / inprocess;
    // Compare relay + gateway with the gateway alone at each connection count; report the best.
    let ratio2 = gateway_runs
        .iter()
        .zip(&relay_runs)
        .map(|(g, r)| r.throughput() / g.throughput().max(1e-9))
        .fold(0.0, f64::max);
    let c1 = |runs: &[RunStats]| {
        runs.iter()
            .find(|s| s.connections == 1)
            .map(|s| s.quantile_ms(0.5))
    };
    let ratio3 = match (c1(&full_runs), c1(&relay_runs)) {
        (Some(full), Some(ohttp)) => Some(full / (dns.quantile_ms(0.5) + ohttp)),
        _ => None,
    };
    let _ = writeln!(out, "\n| ratio | value | target |\n|---|---|---|");
    let _ = writeln!(
        out,
        "| gateway throughput (best) / in-process rate | {ratio1:.2} | >= 0.85 |"
    );
    let _ = writeln!(
        out,
        "| relay + gateway / gateway alone (best same-connections pair) | {ratio2:.2} | >= 0.90 |"
    );
    match ratio3 {
        Some(r) => {
            let _ = writeln!(
                out,
                "| full discovery p50 / (DNS p50 + one OHTTP round trip p50), 1 at a time | {r:.2} | <= 1.2 |"
            );
        }
        None => {
            let _ = writeln!(
                out,
                "| full discovery / (DNS + one OHTTP round trip) | needs a run at 1 connection | <= 1.2 |"
            );
        }
    }

    // What explains the ratios on a machine where every party shares the cores.
    let _ = writeln!(out, "\n| derived from the same run | value |\n|---|---|");
    let threads = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let per_core = inprocess / threads;
    let efficiency = gateway_runs
        .iter()
        .filter(|s| s.gateway_cpu > 0.0 && s.ok > 0)
        .map(|s| s.ok as f64 / s.gateway_cpu / per_core)
        .fold(0.0, f64::max);
    let _ = writeln!(
        out,
        "| gateway requests per gateway CPU-second / in-process rate per core (best) | {efficiency:.2} |"
    );
    for (g, r) in gateway_runs.iter().zip(&relay_runs) {
        let _ = writeln!(
            out,
            "| {} connections: CPU µs per request, gateway alone / relay + gateway (gateway + relay) | {:.0} / {:.0} + {:.0} |",
            g.connections,
            per_request_us(g.gateway_cpu, g.ok),
            per_request_us(r.gateway_cpu, r.ok),
            per_request_us(r.relay_cpu, r.ok),
        );
    }
    if let (Some(full), Some(ohttp)) = (c1(&full_runs), c1(&relay_runs)) {
        let _ = writeln!(
            out,
            "| full discovery p50 / (DNS p50 + 3 OHTTP round trips p50, i.e. providers in turn) | {:.2} |",
            full / (dns.quantile_ms(0.5) + 3.0 * ohttp)
        );
    }
    if let Some(ohttp) = c1(&relay_runs) {
        let wan_ms = WAN.as_secs_f64() * 1e3;
        let _ = writeln!(
            out,
            "| with {wan_ms:.0} ms added to every provider exchange: full discovery p50 / (DNS p50 + one round trip p50 + {wan_ms:.0} ms) | {:.2} |",
            wan.quantile_ms(0.5) / (dns.quantile_ms(0.5) + ohttp + wan_ms)
        );
    }
    if let Some(s) = full_runs.iter().find(|s| s.connections == 1) {
        let _ = writeln!(
            out,
            "| server CPU per full discovery at 1 at a time (3 gateways + relay), ms | {:.2} |",
            (s.gateway_cpu + s.relay_cpu) * 1e3 / s.ok.max(1) as f64
        );
    }
    setup.stop().await?;
    Ok(out)
}
