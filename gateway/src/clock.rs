//! Time as the key files and stores write it.

use std::time::{SystemTime, UNIX_EPOCH};

/// `t` in whole Unix seconds (0 before the epoch).
pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
