//! `[replay]`: where replay state lives.

use std::path::PathBuf;

use serde::Deserialize;

/// Where replay state lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplayStoreKind {
    /// This process's memory: one gateway.
    Memory,
    /// Redis (`redis_url`): shared by replicas.
    Redis,
}

/// `[replay]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplaySection {
    /// `"memory"` (default) or `"redis"`.
    pub store: ReplayStoreKind,
    /// `redis://host:port/db`, `rediss://…` (TLS) or `unix:///path`, without
    /// the password (store = "redis").
    pub redis_url: Option<String>,
    /// A file holding the Redis password (mode 0600).
    pub password_file: Option<PathBuf>,
    /// Extra trust anchors (PEM) for a `rediss://` server (default: the
    /// system's).
    pub ca_file: Option<PathBuf>,
    /// Time allowed for Redis to answer (or a connection to be made) before
    /// the request is refused.
    pub timeout_ms: u64,
    /// Prefix of the keys written, so that gateways of several providers
    /// can share one Redis.
    pub key_prefix: String,
    /// How far the inner `Date` may be from the gateway's clock.
    pub window_secs: u64,
    /// How many requests are remembered.
    pub capacity: usize,
    /// How far ahead of the gateway's clock a request may be dated. Smaller
    /// than the window, so that a flood of requests dated ahead cannot fill
    /// the cache with entries that outlive honest ones.
    pub future_skew_secs: u64,
}

impl Default for ReplaySection {
    fn default() -> Self {
        Self {
            store: ReplayStoreKind::Memory,
            redis_url: None,
            password_file: None,
            ca_file: None,
            timeout_ms: 500,
            key_prefix: "mimi:replay:".into(),
            window_secs: 60,
            capacity: 4_000_000,
            future_skew_secs: 10,
        }
    }
}
