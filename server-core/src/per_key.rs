//! Counted places by key (a client address, a gateway): at most `max` held
//! at once per key, each given back when its guard is dropped, so that no
//! one client (and no slow gateway) can take everyone else's share.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
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

    /// How many keys hold a place now (memory is bounded by what is held).
    pub fn keys(&self) -> usize {
        self.held.lock().map_or(0, |m| m.len())
    }
}

/// The address a client is counted under: IPv4 as is, IPv6 by its /64 (one
/// host usually holds a whole /64), IPv4-mapped IPv6 as IPv4.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::V6(seg.into())
            }
        },
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

    #[test]
    fn an_ipv6_64_is_one_client() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }
}
