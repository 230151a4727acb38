//! Counted places by key (a client, a gateway): at most `max` held at once
//! per key, each given back when its guard is dropped. So that no client,
//! and no slow gateway, can take everyone else's share of the relay.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// At most `max` places per key.
#[derive(Debug)]
pub struct PerKey<K: Eq + Hash + Clone> {
    max: u32,
    held: Arc<Mutex<HashMap<K, u32>>>,
}

/// One place; given back on drop.
#[derive(Debug)]
pub struct Place<K: Eq + Hash + Clone> {
    key: K,
    held: Arc<Mutex<HashMap<K, u32>>>,
}

impl<K: Eq + Hash + Clone> Drop for Place<K> {
    fn drop(&mut self) {
        let mut map = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

impl<K: Eq + Hash + Clone> PerKey<K> {
    /// At most `max` places per key (at least one).
    pub fn new(max: u32) -> Self {
        Self {
            max: max.max(1),
            held: Arc::default(),
        }
    }

    /// A place for `key`, or `None` when it holds `max` already.
    pub fn take(&self, key: K) -> Option<Place<K>> {
        let mut map = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(key.clone()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Place {
            key,
            held: self.held.clone(),
        })
    }

    /// How many keys hold a place now (memory is bounded by what is in flight).
    pub fn keys(&self) -> usize {
        self.held.lock().map_or(0, |m| m.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_capped_per_key_and_given_back() {
        let p = PerKey::new(2);
        let a1 = p.take("a").unwrap();
        let _a2 = p.take("a").unwrap();
        assert!(p.take("a").is_none());
        let _b = p.take("b").unwrap();
        drop(a1);
        assert!(p.take("a").is_some());
        assert_eq!(p.keys(), 2);
    }
}
