//! mimi-server-core: what the relay and the gateway both need to serve.
//!
//! - [`mod@serve`]: the accept loop, with a global and a per-client-address
//!   connection cap, first-byte, handshake, header and idle timeouts, and a
//!   bounded graceful shutdown.
//! - [`admin`]: the admin listener (`/healthz`, `/metrics`).
//! - [`limits`]: the shared `[connections]` configuration, each number with
//!   its range, and the open-file limit.
//! - [`tls`]: rustls server and client configurations from PEM files, and
//!   the HTTPS client both servers use towards what is behind them.
//! - [`config_file`]: reading the TOML file; the `[tls]` section.
//! - [`process`]: logging, binding and announcing listeners, signals.
//! - [`per_key`]: counted places per client address (or any key).
//! - [`report`]: what a `check` subcommand prints.

pub mod admin;
pub mod client_auth;
pub mod config_file;
pub mod error;
pub mod layer;
pub mod limits;
pub mod metrics;
pub mod per_key;
pub mod process;
pub mod report;
pub mod request;
pub mod serve;
pub mod tls;

pub use error::{Error, Result};
pub use limits::{ConnectionLimits, ConnectionsSection, in_range};
pub use serve::{ConnectionStats, serve};
