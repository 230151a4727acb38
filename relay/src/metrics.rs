//! The relay's metrics in atomics: counts by status and by gateway host,
//! never by client; written as OpenMetrics by server-core's [`Scrape`].

use std::sync::atomic::{AtomicU64, Ordering};

use mimi_server_core::metrics::{Labels, Scrape, label};

/// The statuses the relay answers with; anything else counts as "other".
const STATUSES: [u16; 15] = [
    200, 400, 403, 404, 405, 408, 413, 415, 422, 429, 500, 502, 503, 504, 0,
];

/// The relay's counters.
#[derive(Debug)]
pub struct Metrics {
    by_status: [AtomicU64; STATUSES.len()],
    forwards: Vec<AtomicU64>,
    key_fetches: Vec<AtomicU64>,
    tunnels: Vec<AtomicU64>,
    hosts: Vec<String>,
}

impl Metrics {
    /// Counters for the allowed `hosts`.
    pub fn new(hosts: &[String]) -> Self {
        Self {
            by_status: std::array::from_fn(|_| AtomicU64::new(0)),
            forwards: hosts.iter().map(|_| AtomicU64::new(0)).collect(),
            key_fetches: hosts.iter().map(|_| AtomicU64::new(0)).collect(),
            tunnels: hosts.iter().map(|_| AtomicU64::new(0)).collect(),
            hosts: hosts.to_vec(),
        }
    }

    /// Counts one answer with this status.
    pub fn status(&self, status: u16) {
        let i = STATUSES
            .iter()
            .position(|s| *s == status)
            .unwrap_or(STATUSES.len() - 1);
        self.by_status[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one request forwarded to gateway `index`.
    pub fn forwarded(&self, index: usize) {
        if let Some(c) = self.forwards.get(index) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one key list served for gateway `index`.
    pub fn keys_served(&self, index: usize) {
        if let Some(c) = self.key_fetches.get(index) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one tunnel opened to gateway `index`.
    pub fn tunnelled(&self, index: usize) {
        if let Some(c) = self.tunnels.get(index) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Adds these counters to a scrape.
    pub fn scrape(&self, scrape: &mut Scrape) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        scrape.counters(
            "responses",
            "Responses by status.",
            STATUSES.iter().zip(&self.by_status).map(|(s, c)| {
                let status = if *s == 0 {
                    "other".to_owned()
                } else {
                    s.to_string()
                };
                (label("status", status), get(c))
            }),
        );
        let by_gateway = |counts: &[AtomicU64]| -> Vec<(Labels, u64)> {
            self.hosts
                .iter()
                .zip(counts)
                .map(|(host, c)| (label("gateway", host.as_str()), get(c)))
                .collect()
        };
        scrape.counters(
            "forwarded",
            "Requests forwarded, by gateway.",
            by_gateway(&self.forwards),
        );
        scrape.counters(
            "keys_served",
            "Key lists served, by gateway.",
            by_gateway(&self.key_fetches),
        );
        scrape.counters(
            "tunnels",
            "CONNECT tunnels opened, by gateway.",
            by_gateway(&self.tunnels),
        );
    }
}
