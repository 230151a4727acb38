//! Per-client rate limiting: a token bucket per client address (IPv6 by /64,
//! since one host holds a whole /64), in bounded memory.
//!
//! Buckets live in shards, each behind its own small lock. A bucket that has
//! refilled completely is no different from no bucket, so idle ones are
//! dropped first when a shard is full; if it is still full, the least
//! recently seen client is forgotten. Nothing here is ever logged.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SHARDS: usize = 32;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The rate limiter.
#[derive(Debug)]
pub struct RateLimiter {
    shards: Vec<Mutex<HashMap<IpAddr, Bucket>>>,
    hasher: RandomState,
    rate: f64,
    burst: f64,
    per_shard: usize,
}

impl RateLimiter {
    /// `rate` requests per second with bursts of `burst`, remembering about
    /// `max_clients` clients.
    pub fn new(rate: f64, burst: u32, max_clients: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            rate: rate.max(f64::MIN_POSITIVE),
            burst: f64::from(burst.max(1)),
            per_shard: max_clients.div_ceil(SHARDS).max(1),
        }
    }

    /// Takes one token for `client`; `Err(seconds)` to wait when there is none.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        let key = mimi_server_core::per_key::client_key(client);
        let shard = &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS];
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(&key) && map.len() >= self.per_shard {
            self.make_room(&mut map, now);
        }
        let bucket = map.entry(key).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.rate;
            Err(Duration::from_secs_f64(wait).as_secs().max(1))
        }
    }

    fn make_room(&self, map: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        // A bucket that has refilled is the same as none: forget those first.
        map.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * self.rate < self.burst
        });
        if map.len() >= self.per_shard {
            if let Some(oldest) = map.iter().min_by_key(|(_, b)| b.last).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
    }

    /// How many clients are remembered (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |m| m.len()))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn burst_then_refusal_then_refill() {
        let l = RateLimiter::new(2.0, 3, 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check(ip("127.0.0.2"), t0), Ok(()));
        }
        assert_eq!(l.check(ip("127.0.0.2"), t0), Err(1));
        // Another client is not affected.
        assert_eq!(l.check(ip("127.0.0.9"), t0), Ok(()));
        // Half a second later one token is back.
        assert_eq!(
            l.check(ip("127.0.0.2"), t0 + Duration::from_millis(500)),
            Ok(())
        );
        assert!(
            l.check(ip("127.0.0.2"), t0 + Duration::from_millis(500))
                .is_err()
        );
    }

    #[test]
    fn retry_after_reflects_the_rate() {
        let l = RateLimiter::new(0.1, 1, 100);
        let t0 = Instant::now();
        l.check(ip("10.0.0.1"), t0).unwrap();
        assert_eq!(l.check(ip("10.0.0.1"), t0), Err(10));
    }

    #[test]
    fn ipv6_shares_a_bucket_per_64() {
        let l = RateLimiter::new(1.0, 1, 100);
        let t0 = Instant::now();
        l.check(ip("2001:db8:1:2::1"), t0).unwrap();
        assert!(l.check(ip("2001:db8:1:2::ffff"), t0).is_err());
        assert!(l.check(ip("2001:db8:1:3::1"), t0).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let l = RateLimiter::new(1.0, 5, SHARDS * 4);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let _ = l.check(IpAddr::V4(i.into()), t0);
        }
        assert!(l.tracked() <= SHARDS * 4, "{}", l.tracked());
    }
}
