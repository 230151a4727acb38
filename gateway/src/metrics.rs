//! The gateway's metrics, kept in atomics so that counting never takes a
//! lock on the request path, and written as OpenMetrics by server-core's
//! [`Scrape`]. Labels are outcomes and key ids only: never an identifier,
//! an account or an address.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mimi_server_core::metrics::{Scrape, label};

use crate::outcome::Outcome;

/// Upper bounds of the decapsulation latency histogram, in microseconds.
const BUCKETS_US: [u64; 10] = [
    50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 50_000, 100_000,
];

/// The gateway's counters.
#[derive(Debug)]
pub struct Metrics {
    connections: std::sync::Arc<mimi_server_core::ConnectionStats>,
    outcomes: [AtomicU64; Outcome::ALL.len()],
    buckets: [AtomicU64; BUCKETS_US.len()],
    decap_count: AtomicU64,
    decap_sum_us: AtomicU64,
    accounts_capped: AtomicU64,
    tokens_issued: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            connections: std::sync::Arc::default(),
            outcomes: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            decap_count: AtomicU64::new(0),
            decap_sum_us: AtomicU64::new(0),
            accounts_capped: AtomicU64::new(0),
            tokens_issued: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counts one request with this outcome.
    pub fn count(&self, outcome: Outcome) {
        self.outcomes[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts tokens issued (blind signatures: nothing about who got them).
    pub fn tokens_issued(&self, n: u64) {
        self.tokens_issued.fetch_add(n, Ordering::Relaxed);
    }

    /// Records how long one decapsulation took.
    pub fn decapsulated(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        if let Some(i) = BUCKETS_US.iter().position(|b| us <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.decap_count.fetch_add(1, Ordering::Relaxed);
        self.decap_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Counts one answer that had more accounts than a client is sent.
    pub fn accounts_capped(&self) {
        self.accounts_capped.fetch_add(1, Ordering::Relaxed);
    }

    /// How many answers were cut to the most accounts a client is sent.
    pub fn capped_answers(&self) -> u64 {
        self.accounts_capped.load(Ordering::Relaxed)
    }

    /// How many requests had this outcome.
    pub fn get(&self, outcome: Outcome) -> u64 {
        self.outcomes[outcome as usize].load(Ordering::Relaxed)
    }

    /// The OpenMetrics text, with the live key ids.
    pub fn render(&self, key_ids: &[u8]) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut scrape = Scrape::default();
        scrape.counters(
            "requests",
            "Requests to the gateway resource by outcome.",
            Outcome::ALL
                .iter()
                .zip(&self.outcomes)
                .map(|(outcome, c)| (label("outcome", outcome.as_str()), get(c))),
        );
        scrape.histogram(
            "decapsulation_seconds",
            "Time to decapsulate a request.",
            get(&self.decap_sum_us) as f64 / 1e6,
            get(&self.decap_count),
            BUCKETS_US
                .iter()
                .zip(&self.buckets)
                .map(|(bound, c)| (*bound as f64 / 1e6, get(c)))
                .collect(),
        );
        scrape.counter(
            "accounts_capped",
            "identifierQuery answers cut to the most accounts sent for one identifier.",
            self.capped_answers(),
        );
        scrape.counter(
            "tokens_issued",
            "Tokens issued to attesters (blind signatures).",
            get(&self.tokens_issued),
        );
        scrape.gauges(
            "live_key",
            "Key ids accepted now (1 = first in the served list).",
            key_ids.iter().enumerate().map(|(pos, id)| {
                let labels = vec![
                    ("key_id", id.to_string()),
                    ("position", (pos + 1).to_string()),
                ];
                (labels, 1)
            }),
        );
        self.connections.scrape(&mut scrape);
        scrape.render("mimi_gateway")
    }

    /// What happened to connections on the main listener.
    pub fn connections(&self) -> &std::sync::Arc<mimi_server_core::ConnectionStats> {
        &self.connections
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_histogram_and_keys() {
        let m = Metrics::default();
        m.count(Outcome::Ok);
        m.count(Outcome::Ok);
        m.count(Outcome::Replay);
        m.decapsulated(Duration::from_micros(80));
        m.decapsulated(Duration::from_millis(3));
        let text = m.render(&[4, 3]);
        assert!(text.contains("mimi_gateway_requests_total{outcome=\"ok\"} 2\n"));
        assert!(text.contains("mimi_gateway_requests_total{outcome=\"replay\"} 1\n"));
        assert!(text.contains("mimi_gateway_decapsulation_seconds_bucket{le=\"0.0001\"} 1\n"));
        assert!(text.contains("mimi_gateway_decapsulation_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(text.contains("mimi_gateway_decapsulation_seconds_count 2\n"));
        assert!(text.contains("mimi_gateway_live_key{key_id=\"4\",position=\"1\"} 1\n"));
        assert_eq!(m.get(Outcome::Ok), 2);
    }
}
