//! Replay protection (RFC 9458 §6.5): the encapsulated-key values seen inside
//! the `Date` window are remembered, in bounded memory.
//!
//! The set is split into shards, each behind its own small lock, chosen by
//! the key's first bytes (random: they are an ephemeral public key), so
//! concurrent requests almost never wait for each other.
//!
//! When a shard is full its oldest entry is forgotten and the shard's *floor*
//! rises to that entry's `Date`: from then on a request dated at or before the
//! floor is refused as a replay-risk. A replay carries the original's `Date`,
//! so forgetting an entry never lets its replay through; under a flood the
//! effective window shrinks instead.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

const SHARDS: usize = 64;

/// What [`ReplayCache::check_and_insert`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// First time seen: go ahead.
    Fresh,
    /// Seen before: refuse.
    Replay,
    /// Too old to tell (at or below the floor after evictions): refuse.
    TooOld,
}

#[derive(Debug, Default)]
struct Shard {
    seen: HashSet<[u8; 32]>,
    order: VecDeque<(i64, [u8; 32])>,
    floor: Option<i64>,
}

/// The set of encapsulated keys seen recently.
#[derive(Debug)]
pub struct ReplayCache {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    window: i64,
}

impl ReplayCache {
    /// A cache remembering about `capacity` entries for `window_secs` seconds
    /// either side of now.
    pub fn new(capacity: usize, window_secs: u64) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            window: i64::try_from(window_secs).unwrap_or(i64::MAX),
        }
    }

    /// Records `enc` (the request's encapsulated key) with the request's
    /// `date` (Unix seconds), unless it was seen before. `now` is Unix seconds.
    pub fn check_and_insert(&self, enc: &[u8], date: i64, now: i64) -> Verdict {
        let mut key = [0u8; 32];
        let n = enc.len().min(32);
        key[..n].copy_from_slice(&enc[..n]);
        let shard = &self.shards[usize::from(key[0]) % SHARDS];
        let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
        // Entries whose date has left the window can no longer be replayed.
        while let Some(&(d, k)) = shard.order.front() {
            if d >= now.saturating_sub(self.window) {
                break;
            }
            shard.order.pop_front();
            shard.seen.remove(&k);
        }
        if shard.floor.is_some_and(|f| date <= f) {
            return Verdict::TooOld;
        }
        if !shard.seen.insert(key) {
            return Verdict::Replay;
        }
        // Keep `order` sorted by date so eviction forgets the oldest first.
        let at = shard.order.partition_point(|&(d, _)| d <= date);
        shard.order.insert(at, (date, key));
        if shard.order.len() > self.per_shard {
            if let Some((d, k)) = shard.order.pop_front() {
                shard.seen.remove(&k);
                shard.floor = Some(shard.floor.map_or(d, |f| f.max(d)));
            }
        }
        Verdict::Fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(i: u32) -> [u8; 32] {
        let mut k = [0u8; 32];
        // Same shard for all: the first byte picks it.
        k[1..5].copy_from_slice(&i.to_be_bytes());
        k
    }

    #[test]
    fn second_sight_is_a_replay() {
        let c = ReplayCache::new(1000, 60);
        assert_eq!(c.check_and_insert(&enc(1), 100, 100), Verdict::Fresh);
        assert_eq!(c.check_and_insert(&enc(1), 100, 101), Verdict::Replay);
        assert_eq!(c.check_and_insert(&enc(2), 100, 101), Verdict::Fresh);
    }

    #[test]
    fn entries_leave_with_the_window() {
        let c = ReplayCache::new(1000, 60);
        assert_eq!(c.check_and_insert(&enc(1), 100, 100), Verdict::Fresh);
        // 200 is far past the window: the entry is gone, and the gateway's
        // date check (not this cache) refuses a request dated 100 by then.
        assert_eq!(c.check_and_insert(&enc(1), 100, 200), Verdict::Fresh);
    }

    #[test]
    fn eviction_raises_the_floor_so_evicted_replays_still_fail() {
        // One entry per shard.
        let c = ReplayCache::new(SHARDS, 60);
        assert_eq!(c.check_and_insert(&enc(1), 100, 100), Verdict::Fresh);
        assert_eq!(c.check_and_insert(&enc(2), 101, 101), Verdict::Fresh);
        // enc(1) was evicted: its replay, dated 100, is still refused.
        assert_eq!(c.check_and_insert(&enc(1), 100, 102), Verdict::TooOld);
        // Newer requests go on.
        assert_eq!(c.check_and_insert(&enc(3), 102, 102), Verdict::Fresh);
        assert_eq!(c.check_and_insert(&enc(2), 101, 102), Verdict::TooOld);
    }

    #[test]
    fn memory_stays_bounded() {
        let c = ReplayCache::new(SHARDS * 10, 1_000_000);
        for i in 0..10_000 {
            c.check_and_insert(&enc(i), i64::from(i), i64::from(i));
        }
        let total: usize = c.shards.iter().map(|s| s.lock().unwrap().seen.len()).sum();
        assert!(total <= SHARDS * 10, "{total}");
    }
}
