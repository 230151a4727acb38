//! `[directory]`: where the directory lives.

use std::path::PathBuf;

use serde::Deserialize;

/// Where the directory lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectoryStore {
    /// An embedded SQLite file (`database`): one gateway.
    Sqlite,
    /// PostgreSQL (`url`): shared by replicas.
    Postgres,
}

/// `[directory]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectorySection {
    /// `"sqlite"` (default) or `"postgres"`.
    pub store: DirectoryStore,
    /// The SQLite file (store = "sqlite").
    pub database: PathBuf,
    /// The PostgreSQL connection URL or key=value string (store =
    /// "postgres"), without the password; `sslmode=require` for TLS.
    pub url: Option<String>,
    /// A file holding the PostgreSQL password (mode 0600).
    pub password_file: Option<PathBuf>,
    /// Extra trust anchors (PEM) for the PostgreSQL server's certificate.
    pub ca_file: Option<PathBuf>,
    /// Connections in the pool.
    pub pool_size: usize,
    /// Time allowed to get a connection, connect, or run a query's round trip.
    pub timeout_ms: u64,
}

impl Default for DirectorySection {
    fn default() -> Self {
        Self {
            store: DirectoryStore::Sqlite,
            database: PathBuf::from("mimi-gateway-directory.sqlite"),
            url: None,
            password_file: None,
            ca_file: None,
            pool_size: 16,
            timeout_ms: 2_000,
        }
    }
}
