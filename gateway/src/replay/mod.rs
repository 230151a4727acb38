//! Replay protection (RFC 9458 §6.5): each encapsulated key is accepted
//! once while its request's `Date` is inside the window. Two stores: this
//! process's memory ([`memory`], one gateway) and Redis ([`redis`], shared
//! by replicas, so that a request answered by one replica and replayed to
//! another is refused). Both fail closed: when a store cannot vouch for a
//! request, the request is refused, never let through.

pub mod memory;
pub mod redis;
pub mod settings;

pub use memory::ReplayCache;
pub use redis::RedisReplay;

/// What a replay store decided about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// First time seen: go ahead.
    Fresh,
    /// Seen before: refuse.
    Replay,
    /// Dated outside `now - window ..= now + ahead`: refuse (`date` problem).
    OutsideWindow,
    /// The shard holds all it may, every entry inside the window: refuse
    /// without remembering (fail closed).
    Full,
    /// The shared store did not answer: refuse (fail closed).
    Unavailable,
    /// Dated at or before the second the shared store began remembering
    /// (given): refuse (`date` problem) with a retry date after it.
    BeforeStore(i64),
}

/// Where this gateway remembers what it has accepted.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReplayStore {
    /// In this process.
    Memory(ReplayCache),
    /// In Redis, shared with the other replicas.
    Redis(std::sync::Arc<RedisReplay>),
}

impl ReplayStore {
    /// Accepts `enc` (dated `date`, Unix seconds) once inside the window.
    pub async fn check_and_insert(&self, enc: &[u8], date: i64, now: i64) -> Verdict {
        match self {
            Self::Memory(cache) => cache.check_and_insert(enc, date, now),
            Self::Redis(redis) => redis.check_and_insert(enc, date, now).await,
        }
    }

    /// Whether a restarted gateway starts with an empty store (and so must
    /// refuse requests dated before its start for one window).
    pub fn forgets_on_restart(&self) -> bool {
        matches!(self, Self::Memory(_))
    }
}
