//! Prometheus text metrics in atomics: counts by status and by gateway host,
//! never by client.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

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

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(1024);
        out.push_str("# HELP mimi_relay_responses_total Responses by status.\n# TYPE mimi_relay_responses_total counter\n");
        for (s, c) in STATUSES.iter().zip(&self.by_status) {
            let label = if *s == 0 {
                "other".to_string()
            } else {
                s.to_string()
            };
            let _ = writeln!(
                out,
                "mimi_relay_responses_total{{status=\"{label}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP mimi_relay_forwarded_total Requests forwarded, by gateway.\n# TYPE mimi_relay_forwarded_total counter\n");
        for (h, c) in self.hosts.iter().zip(&self.forwards) {
            let _ = writeln!(
                out,
                "mimi_relay_forwarded_total{{gateway=\"{h}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP mimi_relay_keys_served_total Key lists served, by gateway.\n# TYPE mimi_relay_keys_served_total counter\n");
        for (h, c) in self.hosts.iter().zip(&self.key_fetches) {
            let _ = writeln!(
                out,
                "mimi_relay_keys_served_total{{gateway=\"{h}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP mimi_relay_tunnels_total CONNECT tunnels opened, by gateway.\n# TYPE mimi_relay_tunnels_total counter\n");
        for (h, c) in self.hosts.iter().zip(&self.tunnels) {
            let _ = writeln!(
                out,
                "mimi_relay_tunnels_total{{gateway=\"{h}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        out
    }
}
