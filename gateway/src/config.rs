//! Configuration: a TOML file (every field optional, with the defaults named
//! here) that command-line flags override, validated before anything binds.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mimi_proto::record::Endpoint;
pub use mimi_server_core::config_file::TlsFiles;
pub use mimi_server_core::config_file::TomlFile;
use mimi_server_core::{ConnectionsSection, in_range};
use serde::Deserialize;

pub use crate::directory::settings::{DirectorySection, DirectoryStore};
use crate::error::{Error, Result};
use crate::http::HttpOptions;
use crate::keys::RotationPolicy;
pub use crate::replay::settings::{ReplaySection, ReplayStoreKind};
pub use crate::tokens::settings::{AttesterSection, SpentStoreKind, TokensSection};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the gateway listens.
    pub listen: SocketAddr,
    /// Where `/metrics` and `/healthz` are served; none if absent.
    pub admin_listen: Option<SocketAddr>,
    /// The host (and optional `:port`) published in DNS as `e=`.
    pub public_host: String,
    /// Further authorities accepted as this gateway's origin.
    pub extra_origins: Vec<String>,
    /// The key file (created on first start).
    pub key_file: PathBuf,
    /// Serve plain HTTP instead of TLS: only behind a TLS-terminating proxy.
    pub plain_http: bool,
    /// The TLS certificate and key.
    pub tls: Option<TlsFiles>,
    /// Key lifetimes.
    pub keys: KeysSection,
    /// Replay protection.
    pub replay: ReplaySection,
    /// Connections: caps and timeouts.
    pub connections: ConnectionsSection,
    /// Request limits.
    pub limits: LimitsSection,
    /// The embedded directory.
    pub directory: DirectorySection,
    /// The provider's own discovery API, instead of the embedded directory.
    pub upstream: Option<UpstreamSection>,
    /// A DNS resolver for oblivious DNS (`/dns-query`).
    pub dns: Option<DnsSection>,
    /// Lookup quotas: the token issuer and origin (DESIGN §10).
    pub tokens: TokensSection,
}

/// Where the gateway's keys come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeySourceKind {
    /// The key file (`key_file`), rotated by `keys rotate` or `rotate_after_secs`.
    File,
    /// Derived from the shared seed file (`seed_file`) and the schedule
    /// (`period_secs`): every replica with the same file serves the same keys.
    Seed,
}

/// `[keys]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysSection {
    /// `"file"` (default) or `"seed"`.
    pub source: KeySourceKind,
    /// The seed file (source = "seed"; mode 0600, the same on every replica).
    pub seed_file: Option<PathBuf>,
    /// How long each derived key is current (source = "seed").
    pub period_secs: u64,
    /// Longest `max-age` on the key list.
    pub max_age_secs: u64,
    /// How long a new key is published before it is used.
    pub publish_ahead_secs: u64,
    /// How long a replaced key is still accepted.
    pub grace_secs: u64,
    /// Rotate automatically when the newest key is this old; 0: never.
    pub rotate_after_secs: u64,
}

impl Default for KeysSection {
    fn default() -> Self {
        Self {
            source: KeySourceKind::File,
            seed_file: None,
            period_secs: 86_400,
            max_age_secs: 3600,
            publish_ahead_secs: 3600,
            grace_secs: 24 * 3600,
            rotate_after_secs: 0,
        }
    }
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Largest encapsulated request.
    pub max_body_bytes: usize,
    /// Time allowed for the body.
    pub body_timeout_ms: u64,
    /// Time allowed for a whole request.
    pub request_timeout_ms: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024,
            body_timeout_ms: 10_000,
            request_timeout_ms: 15_000,
        }
    }
}

/// `[upstream]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSection {
    /// Base URL of the provider's discovery API.
    pub url: String,
    /// Time allowed for its answer.
    #[serde(default = "default_upstream_timeout")]
    pub timeout_ms: u64,
    /// Extra trust anchors for it (PEM).
    pub ca_file: Option<PathBuf>,
}

fn default_upstream_timeout() -> u64 {
    5_000
}

/// `[dns]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSection {
    /// The resolver's address.
    pub resolver: SocketAddr,
    /// Time allowed for its answer.
    #[serde(default = "default_dns_timeout")]
    pub timeout_ms: u64,
    /// The local address queries leave from (default: any).
    pub bind: Option<std::net::IpAddr>,
}

fn default_dns_timeout() -> u64 {
    2_000
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 8443).into(),
            admin_listen: None,
            public_host: String::new(),
            extra_origins: Vec::new(),
            key_file: PathBuf::from("mimi-gateway-keys.json"),
            plain_http: false,
            tls: None,
            keys: KeysSection::default(),
            replay: ReplaySection::default(),
            connections: ConnectionsSection::default(),
            limits: LimitsSection::default(),
            directory: DirectorySection::default(),
            upstream: None,
            dns: None,
            tokens: TokensSection::default(),
        }
    }
}

impl TomlFile for Config {}

impl Config {
    /// Checks everything that can be checked before binding a socket.
    fn validate_tokens(&self) -> Result<()> {
        let t = &self.tokens;
        in_range("tokens.max_age_secs", t.max_age_secs, 10, 604_800)?;
        in_range(
            "tokens.publish_ahead_secs",
            t.publish_ahead_secs,
            t.max_age_secs,
            2_592_000,
        )?;
        in_range(
            "tokens.grace_secs",
            t.grace_secs,
            t.max_age_secs,
            31_536_000,
        )?;
        for a in &t.attester {
            in_range("tokens.attester.budget", a.budget, 1, 100_000_000)?;
            in_range("tokens.attester.window_secs", a.window_secs, 60, 2_592_000)?;
        }
        if !t.attester.is_empty() && self.tls.is_none() {
            return Err(Error::Config(
                "tokens.attester needs [tls]: attesters authenticate with client certificates"
                    .into(),
            ));
        }
        if t.spent_store == SpentStoreKind::Redis && self.replay.store != ReplayStoreKind::Redis {
            return Err(Error::Config(
                "tokens.spent_store = \"redis\" uses [replay]'s Redis: set replay.store = \"redis\""
                    .into(),
            ));
        }
        Ok(())
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(m.to_owned()));
        if self.public_host.is_empty() {
            return bad("public_host is required: the host published in DNS as e=");
        }
        if Endpoint::parse(&self.public_host).is_none_or(|e| e.to_string() != self.public_host) {
            return bad("public_host must be a lower-case host name with an optional :port");
        }
        mimi_server_core::config_file::check_tls_choice(self.tls.as_ref(), self.plain_http)?;
        self.connections.validate()?;
        self.validate_tokens()?;
        let k = &self.keys;
        in_range("keys.max_age_secs", k.max_age_secs, 10, 604_800)?;
        if k.publish_ahead_secs < k.max_age_secs {
            return bad(
                "keys.publish_ahead_secs must be at least keys.max_age_secs: a new key must reach every cached copy (the relay's shared one included) before it is used, or clients' key checks fail",
            );
        }
        in_range(
            "keys.publish_ahead_secs",
            k.publish_ahead_secs,
            k.max_age_secs,
            2_592_000,
        )?;
        if k.grace_secs < k.max_age_secs {
            return bad(
                "keys.grace_secs must be at least keys.max_age_secs, or cached key lists would break",
            );
        }
        in_range("keys.grace_secs", k.grace_secs, k.max_age_secs, 2_592_000)?;
        if k.rotate_after_secs != 0 {
            // Sooner, and new keys would pile up before any is used.
            in_range(
                "keys.rotate_after_secs (0: never)",
                k.rotate_after_secs,
                k.publish_ahead_secs,
                31_536_000,
            )?;
        }
        if k.source == KeySourceKind::Seed {
            if k.seed_file.is_none() {
                return bad("keys.seed_file is required with source = \"seed\"");
            }
            if k.rotate_after_secs != 0 {
                return bad(
                    "keys.rotate_after_secs applies to source = \"file\"; with a seed, keys change every keys.period_secs",
                );
            }
            // The next key is published one publish_ahead before its period;
            // keys stay accepted grace after theirs; key ids (one byte) must
            // not come round again while a key is accepted.
            in_range(
                "keys.period_secs",
                k.period_secs,
                k.publish_ahead_secs.max(10),
                31_536_000,
            )?;
            if k.grace_secs / k.period_secs > 250 {
                return bad(
                    "keys.grace_secs must be under 250 × keys.period_secs: key ids would repeat",
                );
            }
        }
        let r = &self.replay;
        if r.store == ReplayStoreKind::Redis {
            match r.redis_url.as_deref() {
                None => return bad("replay.redis_url is required with store = \"redis\""),
                Some(u)
                    if !["redis://", "rediss://", "unix://", "redis+unix://"]
                        .iter()
                        .any(|p| u.starts_with(p)) =>
                {
                    return bad("replay.redis_url must start with redis://, rediss:// or unix://");
                }
                Some(_) => {}
            }
        }
        in_range("replay.timeout_ms", r.timeout_ms, 10, 10_000)?;
        let d = &self.directory;
        if d.store == DirectoryStore::Postgres && d.url.is_none() {
            return bad("directory.url is required with store = \"postgres\"");
        }
        in_range("directory.pool_size", d.pool_size, 1, 1_000)?;
        in_range("directory.timeout_ms", d.timeout_ms, 10, 60_000)?;
        in_range("replay.window_secs", r.window_secs, 10, 600)?;
        in_range("replay.capacity", r.capacity, 1_000, 100_000_000)?;
        in_range(
            "replay.future_skew_secs",
            r.future_skew_secs,
            0,
            r.window_secs,
        )?;
        let l = &self.limits;
        in_range("limits.max_body_bytes", l.max_body_bytes, 64, 1 << 20)?;
        in_range("limits.body_timeout_ms", l.body_timeout_ms, 100, 120_000)?;
        in_range(
            "limits.request_timeout_ms",
            l.request_timeout_ms,
            100,
            300_000,
        )?;
        if let Some(up) = &self.upstream {
            in_range("upstream.timeout_ms", up.timeout_ms, 100, 120_000)?;
        }
        if let Some(dns) = &self.dns {
            in_range("dns.timeout_ms", dns.timeout_ms, 100, 30_000)?;
        }
        if let Some(up) = &self.upstream {
            if !(up.url.starts_with("https://") || up.url.starts_with("http://")) {
                return bad("upstream.url must start with https:// or http://");
            }
        }
        Ok(())
    }

    /// The HTTP options this configuration gives, the connection cap fitted
    /// under `open_files` (with room for upstream and DNS sockets).
    pub fn http_options(&self, open_files: u64) -> Result<HttpOptions> {
        let ms = Duration::from_millis;
        Ok(HttpOptions {
            connections: self.connections.limits(open_files, 1024, 1024)?,
            max_body: self.limits.max_body_bytes,
            body_timeout: ms(self.limits.body_timeout_ms),
            request_timeout: ms(self.limits.request_timeout_ms),
            key_max_age: Duration::from_secs(self.keys.max_age_secs),
            rotate_after: (self.keys.rotate_after_secs > 0)
                .then(|| Duration::from_secs(self.keys.rotate_after_secs)),
            rotation: self.rotation(),
        })
    }

    /// The seed schedule (`[keys] source = "seed"`).
    pub fn schedule(&self) -> crate::seeded_keys::Schedule {
        crate::seeded_keys::Schedule {
            period: Duration::from_secs(self.keys.period_secs),
            publish_ahead: Duration::from_secs(self.keys.publish_ahead_secs),
            grace: Duration::from_secs(self.keys.grace_secs),
        }
    }

    /// The key rotation policy.
    pub fn rotation(&self) -> RotationPolicy {
        RotationPolicy {
            publish_ahead: Duration::from_secs(self.keys.publish_ahead_secs),
            grace: Duration::from_secs(self.keys.grace_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses_and_validates() {
        let text = include_str!("../gateway.example.toml");
        let config = Config::parse(text).unwrap();
        config.validate().unwrap();
        assert_eq!(config.public_host, "mimi.provider.example");
        assert!(config.tls.is_some());
    }

    #[test]
    fn the_replica_example_config_parses_and_validates() {
        // The README's "Running several replicas" points at this file.
        let config = Config::parse(include_str!("../../deploy/replicas/gateway.toml")).unwrap();
        config.validate().unwrap();
        assert_eq!(config.keys.source, KeySourceKind::Seed);
        assert_eq!(config.replay.store, ReplayStoreKind::Redis);
        assert_eq!(config.directory.store, DirectoryStore::Postgres);
        assert!(config.replay.password_file.is_some() && config.directory.password_file.is_some());
        assert!(
            !config.replay.redis_url.unwrap().contains('@'),
            "no password in the URL"
        );
    }

    #[test]
    fn shared_stores_need_their_settings() {
        let mut c = Config::parse("public_host = \"m.example\"\nplain_http = true").unwrap();
        c.replay.store = ReplayStoreKind::Redis;
        assert!(matches!(c.validate(), Err(Error::Config(m)) if m.contains("redis_url")));
        c.replay.redis_url = Some("http://redis.example".into());
        assert!(matches!(c.validate(), Err(Error::Config(m)) if m.contains("redis://")));
        c.replay.redis_url = Some("redis://redis.example".into());
        c.validate().unwrap();
        c.directory.store = DirectoryStore::Postgres;
        assert!(matches!(c.validate(), Err(Error::Config(m)) if m.contains("directory.url")));
        c.directory.url = Some("host=/run/postgresql".into());
        c.validate().unwrap();
        c.keys.source = KeySourceKind::Seed;
        assert!(matches!(c.validate(), Err(Error::Config(m)) if m.contains("seed_file")));
        c.keys.seed_file = Some("seed.json".into());
        c.keys.period_secs = c.keys.publish_ahead_secs - 1;
        assert!(matches!(c.validate(), Err(e) if e.to_string().contains("period_secs")));
        c.keys.period_secs = c.keys.publish_ahead_secs;
        c.validate().unwrap();
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(matches!(
            Config::parse("listne = \"1.2.3.4:5\""),
            Err(mimi_server_core::Error::Config(_))
        ));
        assert!(matches!(
            Config::parse("[keys]\nmax_age = 1"),
            Err(mimi_server_core::Error::Config(_))
        ));
    }

    #[test]
    fn validation_explains_what_is_wrong() {
        let mut c = Config::parse("public_host = \"m.example\"\nplain_http = true").unwrap();
        c.validate().unwrap();
        c.plain_http = false;
        assert!(matches!(c.validate(), Err(e) if e.to_string().contains("TLS")));
        c.plain_http = true;
        c.public_host = "https://m.example".into();
        assert!(matches!(c.validate(), Err(Error::Config(m)) if m.contains("public_host")));
        c.public_host = "M.example".into();
        assert!(c.validate().is_err());
        c.public_host = "m.example:8443".into();
        c.validate().unwrap();
        c.keys.publish_ahead_secs = c.keys.max_age_secs - 1;
        assert!(
            matches!(c.validate(), Err(Error::Config(m)) if m.contains("publish_ahead_secs")),
            "a new key must reach every cached copy before it is used"
        );
        c.keys.publish_ahead_secs = c.keys.max_age_secs;
        c.validate().unwrap();
        c.keys.grace_secs = 1;
        assert!(c.validate().is_err());
    }
}
