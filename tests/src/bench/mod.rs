//! The load generator behind `mimi-bench`: the relay and three gateways run
//! as real processes (so their memory can be measured), DNS in process; the
//! generator drives (a) a gateway alone, (b) the relay in front of it, and
//! (c) whole discoveries, at several connection counts.
//!
//! Requests for (a) and (b) come from a pool encapsulated before the timed
//! run, one pool entry per request (each is valid once: the gateway refuses
//! replays), so that the generator spends its time on the network and not on
//! HPKE. Every response is decrypted and checked.
//!
//! The files: [`setup`] (the processes and the DNS server), [`pool`] (the
//! pre-encapsulated requests and the connections that drive them),
//! [`scenarios`] (each timed run), [`mod@soak`] (many held connections, memory).

pub mod pool;
pub mod scenarios;
pub mod setup;
pub mod soak;

use std::time::Duration;

pub(crate) const CLIENT: [u8; 4] = [127, 0, 0, 2];
pub(crate) const DNS: [u8; 4] = [127, 0, 0, 6];
pub(crate) const GATEWAYS: [[u8; 4]; 3] = [[127, 0, 0, 4], [127, 0, 0, 5], [127, 0, 0, 7]];

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

pub(crate) use pool::{Pool, client_tls, drive};
use pool::{connect_all, send_checked};
use scenarios::fetch_keys;
pub use scenarios::*;
pub use setup::Setup;
use setup::addr_of;
pub(crate) use setup::identifier;
pub use soak::{SoakReport, soak};
