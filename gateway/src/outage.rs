//! One log line per outage of a shared store, not one per request: a replica
//! that cannot reach Redis or PostgreSQL under load would otherwise write a
//! line for every request it refuses.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether a store is known to be down, and the logging that goes with it.
#[derive(Debug, Default)]
pub struct Outage {
    down: AtomicBool,
}

impl Outage {
    /// Records a failure; logs it if the store was thought up.
    pub fn failed(&self, store: &'static str, error: &dyn std::fmt::Display) {
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::error!(store, %error, "shared store unreachable: failing closed until it returns");
        }
    }

    /// Records a success; logs the recovery if the store was thought down.
    /// A load and a compare on the hot path while the store is up.
    pub fn succeeded(&self, store: &'static str) {
        if self.down.load(Ordering::Relaxed) && self.down.swap(false, Ordering::Relaxed) {
            tracing::info!(store, "shared store reachable again");
        }
    }

    /// Whether the store is thought down.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }
}
