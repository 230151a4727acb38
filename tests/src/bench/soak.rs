//! The soak: many connections held through the relay, memory read as it runs.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::*;

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

pub(super) fn rss_now(setup: &Setup) -> Vec<(String, u64)> {
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
