//! mimi-gateway: the provider's Oblivious HTTP gateway (RFC 9458) in front of
//! its MIMI discovery API (DESIGN §4, §5, §7).
//!
//! The gateway decrypts requests that arrive through a relay, checks them
//! (origin, `Date`, replay), answers identifierQuery from its embedded SQLite
//! directory or forwards it to the provider's own API, and encrypts the answer.
//! It never sees the client's address: only the relay's.
//!
//! # Layout
//!
//! - [`service`]: the gateway logic over bytes, without sockets ([`Gateway`]).
//! - [`inner`]: the targets behind it: embedded directory, upstream API, DNS.
//! - [`keys`]: the key file, rotation and the lock-free key ring.
//! - [`seeded_keys`]: keys every replica derives from one shared seed.
//! - [`tokens`]: lookup quotas: the Privacy Pass issuer and origin.
//! - [`secret`]: secrets in memory: wiped on drop, redacted in `Debug`.
//! - [`replay`]: replay protection, in memory or in Redis.
//! - [`directory`]: the directory in SQLite or PostgreSQL, and its import
//!   formats.
//! - [`outage`]: one log line per outage of a shared store.
//! - [`http`]: the HTTP surface (served by `mimi-server-core`, which it
//!   shares with the relay).
//! - [`check`]: what `mimi-gateway check` verifies before a start.
//! - [`outcome`]: what became of a request: the metrics' one vocabulary.
//! - [`config`], [`metrics`], [`error`].

pub mod authority;
pub mod check;
mod clock;
pub mod config;
pub mod directory;
pub mod error;
pub mod http;
pub mod inner;
pub mod key_file;
pub mod key_maintenance;
pub mod keys;
pub mod metrics;
pub mod outage;
pub mod outcome;
mod private_files;
pub mod replay;
pub mod secret;
pub mod seeded_keys;
pub mod service;
pub mod tokens;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mimi_server_core::tls;

pub use config::Config;
pub use error::{Error, Result};
pub use service::{Gateway, Settings};

/// Everything [`http::run`] needs besides its listener and shutdown, built
/// from a configuration.
#[derive(Debug)]
pub struct Assembled {
    /// The gateway.
    pub gateway: Arc<Gateway>,
    /// Its TLS configuration (none for plain HTTP).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Its HTTP options, the connection cap fitted under the process's
    /// open-file limit as it is now (raise it first).
    pub options: http::HttpOptions,
}

/// Builds the gateway a validated configuration describes, its TLS
/// configuration and HTTP options. Opens or creates the key file and the
/// directory; binds nothing.
pub async fn assemble(config: &Config) -> Result<Assembled> {
    config.validate()?;
    let options = config.http_options(mimi_server_core::limits::open_files()?)?;
    let keys = Arc::new(open_keys(config, SystemTime::now())?);
    let backend = match &config.upstream {
        Some(up) => {
            let roots = match &up.ca_file {
                Some(path) => tls::load_roots(path)?,
                None => Vec::new(),
            };
            let timeout = Duration::from_millis(up.timeout_ms);
            inner::Backend::Upstream(Box::new(inner::UpstreamApi::new(&up.url, timeout, &roots)?))
        }
        None => inner::Backend::Embedded(Arc::new(
            directory::Directory::connect(&config.directory).await?,
        )),
    };
    let dns = config.dns.as_ref().map(|d| inner::DnsForwarder {
        addr: d.resolver,
        timeout: Duration::from_millis(d.timeout_ms),
        bind: d.bind,
    });
    // Requests dated in the start second are refused with the in-memory
    // replay store (one sent, captured and replayed across a fast restart
    // within that second would otherwise be answered twice). Serving from
    // the next whole second on keeps that refusal for replays only: an
    // honest client's request is dated after the start.
    let started = SystemTime::now();
    if config.replay.store == config::ReplayStoreKind::Memory {
        let into_second = started
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(Duration::ZERO, |d| {
                Duration::from_nanos(u64::from(d.subsec_nanos()))
            });
        tokio::time::sleep(Duration::from_secs(1).saturating_sub(into_second)).await;
    }
    let settings = Settings {
        public_host: config.public_host.clone(),
        extra_origins: config.extra_origins.clone(),
        date_window: Duration::from_secs(config.replay.window_secs),
        future_skew: Duration::from_secs(config.replay.future_skew_secs),
        replay_capacity: config.replay.capacity,
        started: Some(started),
    };
    let mut gateway = Gateway::new(settings, keys, backend, dns);
    let mut redis = None;
    if config.replay.store == config::ReplayStoreKind::Redis {
        let store = Arc::new(replay::RedisReplay::new(&config.replay)?);
        if let Err(e) = store.ping(unix_now()).await {
            // Not fatal: requests fail closed until Redis answers.
            tracing::error!(error = %e, "replay store unreachable at start; refusing requests until it answers");
        }
        redis = Some(store.clone());
        gateway = gateway.with_replay_store(replay::ReplayStore::Redis(store));
    }
    let mut verifier = None;
    if config.tokens.required || !config.tokens.attester.is_empty() {
        let tokens = Arc::new(tokens::Tokens::open(
            &config.tokens,
            &config.public_host,
            redis,
            SystemTime::now(),
        )?);
        verifier = tokens.client_verifier();
        gateway = gateway.with_tokens(tokens);
    }
    let tls = match &config.tls {
        Some(files) => Some(tls::server_config_with_clients(
            &files.cert,
            &files.key,
            verifier,
        )?),
        None => None,
    };
    Ok(Assembled {
        gateway: Arc::new(gateway),
        tls,
        options,
    })
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    service::unix_secs(SystemTime::now())
}

/// The key manager `[keys]` describes: the key file, or the seed file and
/// its schedule.
pub fn open_keys(config: &Config, now: SystemTime) -> Result<keys::KeyManager> {
    match (&config.keys.source, &config.keys.seed_file) {
        (config::KeySourceKind::Seed, Some(seed_file)) => {
            keys::KeyManager::open_seeded(seed_file, config.schedule(), now)
        }
        _ => keys::KeyManager::open(&config.key_file, now),
    }
}
