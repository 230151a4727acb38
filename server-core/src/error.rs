//! The server core's one error type.

/// What can go wrong setting a server up (never while serving: connection
/// problems are counted, not returned).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of its documented range.
    #[error("configuration: {0}")]
    Config(String),
    /// The TLS certificate, key or CA file could not be loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// A socket could not be bound, or a process limit not read.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
