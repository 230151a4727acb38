//! mimi-relay: the Oblivious HTTP relay (RFC 9458) that operators run for
//! private MIMI discovery (DESIGN §6, §8).
//!
//! The relay sees who asks (the client's address) and where (the gateway
//! host), but never what: it forwards opaque encapsulated requests to an
//! allowlist of gateways, copying nothing of the client's request but the
//! body and its media type, and serves gateways' key lists from a shared
//! cache so every client gets the same bytes.
//!
//! # Layout
//!
//! - [`http`]: the routes and the [`Relay`] itself (served by
//!   `mimi-server-core`, which it shares with the gateway).
//! - [`targets`]: the allowlist and the `/gateway/<host>` mapping.
//! - [`upstream`]: the pooled client towards gateways.
//! - [`keycache`]: the shared, coalescing key cache.
//! - [`ratelimit`]: per-client token buckets in bounded memory.
//! - [`tunnel`]: `CONNECT` tunnels to allowlisted gateways, bounded.
//! - [`attester`]: the Privacy Pass attester: quotas, credentials, issuers.
//! - [`check`]: what `mimi-relay check` verifies before a start.
//! - [`config`], [`metrics`], [`error`].

pub mod attester;
pub mod check;
pub mod config;
pub mod error;
pub mod http;
pub mod keycache;
pub mod metrics;
pub mod ratelimit;
pub mod targets;
pub mod tunnel;
pub mod upstream;

use std::sync::Arc;
use std::time::Duration;

use mimi_server_core::tls;

pub use config::Config;
pub use error::{Error, Result};
pub use http::Relay;

/// Builds the relay a configuration describes, and its TLS configuration
/// (none for plain HTTP). Binds nothing; the connection cap is fitted under
/// the process's open-file limit as it is now.
pub fn assemble(config: &Config) -> Result<(Arc<Relay>, Option<Arc<rustls::ServerConfig>>)> {
    config.validate()?;
    let entries: Vec<(String, Option<String>)> = config
        .gateway
        .iter()
        .map(|g| (g.host.clone(), g.url.clone()))
        .collect();
    let allowlist = targets::Allowlist::new(&entries)?;
    let roots = match &config.gateway_ca_file {
        Some(path) => tls::load_roots(path)?,
        None => Vec::new(),
    };
    let upstream = upstream::Upstream::new(
        &roots,
        Duration::from_millis(config.limits.upstream_timeout_ms),
        config.outbound_bind,
    )?;
    let keys = keycache::KeyCache::new(
        allowlist.len(),
        Duration::from_secs(config.key_cache.min_age_secs),
        Duration::from_secs(config.key_cache.max_age_secs),
    );
    let tls = match &config.tls {
        Some(files) => Some(tls::server_config(&files.cert, &files.key)?),
        None => None,
    };
    let mut relay = Relay::new(
        allowlist,
        keys,
        upstream,
        config.options(mimi_server_core::limits::open_files()?)?,
        config.outbound_bind,
    );
    if let Some(a) = &config.attester {
        let verifier = match &a.jwks_file {
            Some(path) => Some(attester::Verifier::from_jwks_file(
                path,
                a.jwt_issuer.clone(),
                a.jwt_audience.clone(),
            )?),
            None => None,
        };
        let client = upstream::Upstream::with_identity(
            &roots,
            Duration::from_millis(config.limits.upstream_timeout_ms),
            config.outbound_bind,
            &a.client_cert,
            &a.client_key,
        )?;
        let settings = attester::Settings {
            issuers: config
                .gateway
                .iter()
                .filter(|g| g.issuer)
                .map(|g| g.host.clone())
                .collect(),
            verifier,
            account_quota: a.account_quota,
            anonymous_quota: a.anonymous_quota,
            window_secs: a.window_secs,
            max_clients: a.max_clients,
        };
        relay = relay.with_attester(attester::Attester::new(settings, client));
    }
    Ok((Arc::new(relay), tls))
}
