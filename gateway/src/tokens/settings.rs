//! `[tokens]`: what the issuer and origin are configured with.

use std::path::PathBuf;

use serde::Deserialize;

/// Where spent token nonces are remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpentStoreKind {
    /// An SQLite file (`spent_database`): one gateway.
    Sqlite,
    /// The Redis of `[replay]`: shared by replicas.
    Redis,
}

/// `[tokens]`: Privacy Pass issuer and origin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensSection {
    /// identifierQuery needs a valid, unspent token (default: off).
    pub required: bool,
    /// The issuer's token keys (mode 0600, created on first start; the
    /// same file on every replica).
    pub key_file: PathBuf,
    /// Where spent nonces are kept: `"sqlite"` (default) or `"redis"`.
    pub spent_store: SpentStoreKind,
    /// The SQLite file for spent nonces (spent_store = "sqlite").
    pub spent_database: PathBuf,
    /// Longest `max-age` on the issuer directory.
    pub max_age_secs: u64,
    /// How long a new token key is published before it is used.
    pub publish_ahead_secs: u64,
    /// How long a replaced token key still verifies tokens.
    pub grace_secs: u64,
    /// The attesters allowed to request tokens.
    pub attester: Vec<AttesterSection>,
}

impl Default for TokensSection {
    fn default() -> Self {
        Self {
            required: false,
            key_file: PathBuf::from("mimi-gateway-token-keys.json"),
            spent_store: SpentStoreKind::Sqlite,
            spent_database: PathBuf::from("mimi-gateway-spent-tokens.sqlite"),
            max_age_secs: 3600,
            publish_ahead_secs: 3600,
            grace_secs: 7 * 24 * 3600,
            attester: Vec::new(),
        }
    }
}

/// `[[tokens.attester]]`: one attester (a relay operator) and its budget.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttesterSection {
    /// A name for metrics and logs.
    pub name: String,
    /// Its TLS client certificate (PEM), pinned by fingerprint.
    pub certificate: PathBuf,
    /// Tokens it may have issued per window (1 to 100,000,000).
    pub budget: u64,
    /// The window (60 s to 30 days).
    #[serde(default = "default_attester_window")]
    pub window_secs: u64,
}

fn default_attester_window() -> u64 {
    3600
}
