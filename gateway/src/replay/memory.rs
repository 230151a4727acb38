//! The in-memory replay store: the encapsulated keys of requests dated
//! inside the window are remembered, in bounded memory, and nothing inside
//! the window is ever forgotten.
//!
//! A replay is byte-for-byte the original, so it carries the original's
//! `Date`: each entry lives in the slot of its own second, and a request is
//! checked against that slot only. Slots form a ring of
//! `window + ahead + 1` seconds; a slot is emptied when its second leaves
//! the window. There is no eviction, and so no floor that could be pushed:
//! requests dated ahead are bounded by `ahead` (the gateway's skew check),
//! and when a shard is full of entries still inside the window the *new*
//! request is refused ([`Verdict::Full`]) rather than any entry forgotten.
//! Sized as documented (capacity above what the gateway can decrypt in
//! `window + ahead` seconds), a flood of valid requests cannot fill it.
//!
//! Entries are 64-bit fingerprints under a key drawn at start, which also
//! picks the shard: a client choosing its ephemeral keys can neither aim at
//! one shard nor make its requests collide with another client's.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

const SHARDS: usize = 64;

pub use super::Verdict;

#[derive(Debug)]
struct Slot {
    second: i64,
    seen: HashSet<u64>,
}

#[derive(Debug)]
struct Shard {
    slots: Vec<Slot>,
    count: usize,
}

impl Shard {
    /// Empties the slots whose second has left the window.
    fn expire(&mut self, oldest: i64) {
        for slot in &mut self.slots {
            if slot.second < oldest && !slot.seen.is_empty() {
                self.count -= slot.seen.len();
                slot.seen.clear();
            }
        }
    }
}

/// The set of encapsulated keys seen recently.
#[derive(Debug)]
pub struct ReplayCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    window: i64,
    ahead: i64,
    key: RandomState,
}

impl ReplayCache {
    /// A cache remembering up to about `capacity` requests dated from
    /// `window_secs` before now to `ahead_secs` after it.
    pub fn new(capacity: usize, window_secs: u64, ahead_secs: u64) -> Self {
        let window = i64::try_from(window_secs).unwrap_or(i64::MAX / 4);
        let ahead = i64::try_from(ahead_secs).unwrap_or(i64::MAX / 4);
        let len = usize::try_from(window + ahead + 1).unwrap_or(usize::MAX);
        let shard = || {
            Mutex::new(Shard {
                slots: (0..len)
                    .map(|_| Slot {
                        second: i64::MIN,
                        seen: HashSet::new(),
                    })
                    .collect(),
                count: 0,
            })
        };
        Self {
            shards: (0..SHARDS).map(|_| shard()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            window,
            ahead,
            key: RandomState::new(),
        }
    }

    /// Records `enc` (the request's encapsulated key) under the request's
    /// `date` (Unix seconds), unless it was seen before. `now` is Unix seconds.
    pub fn check_and_insert(&self, enc: &[u8], date: i64, now: i64) -> Verdict {
        let oldest = now.saturating_sub(self.window);
        if date < oldest || date > now.saturating_add(self.ahead) {
            return Verdict::OutsideWindow;
        }
        let print = self.key.hash_one(enc);
        // The top bits pick the shard; the set hashes the whole value again.
        let shard = &self.shards[(print >> 58) as usize % SHARDS];
        let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
        let len = shard.slots.len() as i64;
        let at = usize::try_from(date.rem_euclid(len)).unwrap_or(0);
        if shard.slots[at].second != date {
            // The seconds inside the range map to distinct slots, so what
            // this slot holds is from a second that has left the window.
            let stale = std::mem::take(&mut shard.slots[at].seen);
            shard.count -= stale.len();
            shard.slots[at] = Slot {
                second: date,
                seen: recycle(stale),
            };
        }
        if shard.slots[at].seen.contains(&print) {
            return Verdict::Replay;
        }
        if shard.count >= self.per_shard {
            shard.expire(oldest);
            if shard.count >= self.per_shard {
                return Verdict::Full;
            }
        }
        shard.slots[at].seen.insert(print);
        shard.count += 1;
        Verdict::Fresh
    }

    /// Requests remembered now (for tests and metrics).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.count))
            .sum()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An emptied set, keeping its memory unless a flood left it far larger
/// than a slot usually needs.
fn recycle(mut set: HashSet<u64>) -> HashSet<u64> {
    if set.capacity() > 4 * set.len().max(1024) {
        return HashSet::new();
    }
    set.clear();
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(i: u32) -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&i.to_be_bytes());
        k
    }

    #[test]
    fn second_sight_is_a_replay() {
        let c = ReplayCache::new(1000, 60, 10);
        assert_eq!(c.check_and_insert(&enc(1), 100, 100), Verdict::Fresh);
        assert_eq!(c.check_and_insert(&enc(1), 100, 101), Verdict::Replay);
        assert_eq!(c.check_and_insert(&enc(2), 100, 101), Verdict::Fresh);
        // Remembered until its second leaves the window, not a moment less.
        assert_eq!(c.check_and_insert(&enc(1), 100, 160), Verdict::Replay);
        assert_eq!(
            c.check_and_insert(&enc(1), 100, 161),
            Verdict::OutsideWindow
        );
    }

    #[test]
    fn the_range_is_the_window_behind_and_the_skew_ahead() {
        let c = ReplayCache::new(1000, 60, 10);
        assert_eq!(c.check_and_insert(&enc(1), 40, 100), Verdict::Fresh);
        assert_eq!(c.check_and_insert(&enc(2), 39, 100), Verdict::OutsideWindow);
        assert_eq!(c.check_and_insert(&enc(3), 110, 100), Verdict::Fresh);
        assert_eq!(
            c.check_and_insert(&enc(4), 111, 100),
            Verdict::OutsideWindow
        );
    }

    #[test]
    fn slots_are_reused_as_time_passes_and_memory_stays_bounded() {
        // 20 a shard: far less than the 6,000 requests below, far more
        // than the ~3.3 a shard one ring (71 seconds, 3 a second) holds.
        let c = ReplayCache::new(SHARDS * 20, 60, 10);
        for now in 1_000..3_000i64 {
            for i in 0..3 {
                let id = u32::try_from(now * 3 + i).unwrap();
                assert_eq!(c.check_and_insert(&enc(id), now, now), Verdict::Fresh);
            }
            assert!(c.len() <= SHARDS * 20, "{}", c.len());
        }
    }

    #[test]
    fn a_flood_never_pushes_out_what_is_inside_the_window() {
        // Tiny: 2 entries per shard.
        let c = ReplayCache::new(SHARDS * 2, 60, 10);
        let now = 1_000;
        let mut fresh = Vec::new();
        let mut full = 0;
        for i in 0..2_000 {
            match c.check_and_insert(&enc(i), now + 10, now) {
                Verdict::Fresh => fresh.push(i),
                Verdict::Full => full += 1,
                v => panic!("{v:?}"),
            }
        }
        assert!(full > 0, "the flood filled the cache");
        assert!(c.len() <= SHARDS * 2);
        // Every request it accepted is still refused as a replay, at any
        // time inside its window: nothing was forgotten to make room.
        for later in [now, now + 30, now + 70] {
            for &i in &fresh {
                assert_eq!(
                    c.check_and_insert(&enc(i), now + 10, later),
                    Verdict::Replay
                );
            }
        }
        // Once the flood's second has left the window, room comes back.
        assert_eq!(
            c.check_and_insert(&enc(9_999), now + 71, now + 71),
            Verdict::Fresh
        );
    }
}
