//! Configuration: a TOML file that command-line flags override, validated
//! before anything binds.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use mimi_server_core::config_file::TlsFiles;
pub use mimi_server_core::config_file::TomlFile;
use mimi_server_core::{ConnectionsSection, in_range};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::http::Options;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the relay listens.
    pub listen: SocketAddr,
    /// Where `/metrics` and `/healthz` are served; none if absent.
    pub admin_listen: Option<SocketAddr>,
    /// Serve plain HTTP instead of TLS: only behind a TLS-terminating proxy.
    pub plain_http: bool,
    /// The listener's TLS certificate and key.
    pub tls: Option<TlsFiles>,
    /// Extra trust anchors for gateways (PEM), beside the webpki roots.
    pub gateway_ca_file: Option<PathBuf>,
    /// The local address connections to gateways leave from (default: any).
    pub outbound_bind: Option<std::net::IpAddr>,
    /// The gateways served.
    pub gateway: Vec<GatewayEntry>,
    /// Connections: caps and timeouts.
    pub connections: ConnectionsSection,
    /// Limits.
    pub limits: LimitsSection,
    /// Per-client rate limiting.
    pub rate: RateSection,
    /// The shared key cache.
    pub key_cache: KeyCacheSection,
    /// The relay as Privacy Pass attester (DESIGN §10); none if absent.
    pub attester: Option<AttesterSection>,
}

/// `[attester]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttesterSection {
    /// The client certificate (PEM) the relay presents to issuers.
    pub client_cert: PathBuf,
    /// Its private key (PEM).
    pub client_key: PathBuf,
    /// The operator's JWKS file (EdDSA, ES256 keys) for account
    /// credentials; absent: no accounts, only anonymous clients.
    pub jwks_file: Option<PathBuf>,
    /// The `iss` credentials must carry, if set.
    pub jwt_issuer: Option<String>,
    /// The `aud` credentials must carry, if set.
    pub jwt_audience: Option<String>,
    /// Tokens per account and window (1 to 1,000,000).
    #[serde(default = "default_account_quota")]
    pub account_quota: u64,
    /// Tokens per anonymous address (IPv6: /64) and window (0 to
    /// 1,000,000; 0: anonymous clients get none).
    #[serde(default)]
    pub anonymous_quota: u64,
    /// The window (60 s to 30 days).
    #[serde(default = "default_quota_window")]
    pub window_secs: u64,
    /// Clients counted in one window, at most (memory bound; more are
    /// refused until the window ends).
    #[serde(default = "default_quota_clients")]
    pub max_clients: usize,
}

fn default_account_quota() -> u64 {
    1_000
}

fn default_quota_window() -> u64 {
    86_400
}

fn default_quota_clients() -> usize {
    1_000_000
}

/// One `[[gateway]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayEntry {
    /// The host clients name (the `e=` of DNS records), with optional `:port`.
    pub host: String,
    /// The gateway resource's URL, when not `https://<host>/.well-known/ohttp-gateway`.
    pub url: Option<String>,
    /// Attest for this provider's token issuer (`/issuer/<host>`; needs
    /// `[attester]`).
    #[serde(default)]
    pub issuer: bool,
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Largest request body forwarded.
    pub max_body_bytes: usize,
    /// Time allowed for the body.
    pub body_timeout_ms: u64,
    /// Time allowed for the gateway's answer.
    pub upstream_timeout_ms: u64,
    /// Requests in flight at once.
    pub max_concurrent: usize,
    /// Requests one client (IPv6: one /64) may have in flight at once.
    pub max_in_flight_per_client: u32,
    /// Requests in flight to one gateway at once.
    pub max_in_flight_per_gateway: u32,
    /// `CONNECT` tunnels one client may hold open at once.
    pub tunnels_per_client: u32,
    /// `CONNECT` tunnels open at once, in all.
    pub max_tunnels: usize,
    /// How long a tunnel may stay open.
    pub tunnel_lifetime_ms: u64,
    /// Bytes a tunnel carries each way, at most.
    pub tunnel_max_bytes: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024,
            body_timeout_ms: 10_000,
            upstream_timeout_ms: 10_000,
            max_concurrent: 1024,
            max_in_flight_per_client: 32,
            max_in_flight_per_gateway: 512,
            tunnels_per_client: 8,
            max_tunnels: 1024,
            tunnel_lifetime_ms: 30_000,
            tunnel_max_bytes: 64 * 1024,
        }
    }
}

/// `[rate]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateSection {
    /// Requests per second per client.
    pub per_second: f64,
    /// Burst per client.
    pub burst: u32,
    /// Clients remembered (memory bound).
    pub max_clients: usize,
}

impl Default for RateSection {
    fn default() -> Self {
        Self {
            per_second: 10.0,
            burst: 50,
            max_clients: 100_000,
        }
    }
}

/// `[key_cache]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyCacheSection {
    /// Shortest time key lists are kept, whatever the gateway says.
    pub min_age_secs: u64,
    /// Longest time key lists are kept, whatever the gateway says.
    pub max_age_secs: u64,
}

impl Default for KeyCacheSection {
    fn default() -> Self {
        Self {
            min_age_secs: 60,
            max_age_secs: 3600,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 8444).into(),
            admin_listen: None,
            plain_http: false,
            tls: None,
            gateway_ca_file: None,
            outbound_bind: None,
            gateway: Vec::new(),
            connections: ConnectionsSection::default(),
            limits: LimitsSection::default(),
            rate: RateSection::default(),
            key_cache: KeyCacheSection::default(),
            attester: None,
        }
    }
}

impl TomlFile for Config {}

impl Config {
    /// Checks what can be checked before binding: every number against the
    /// range documented in `relay.example.toml`.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(m.to_owned()));
        mimi_server_core::config_file::check_tls_choice(self.tls.as_ref(), self.plain_http)?;
        if self.gateway.is_empty() {
            return bad("no [[gateway]] configured: the relay would refuse everything");
        }
        match &self.attester {
            Some(a) => {
                in_range("attester.account_quota", a.account_quota, 1, 1_000_000)?;
                in_range("attester.anonymous_quota", a.anonymous_quota, 0, 1_000_000)?;
                in_range("attester.window_secs", a.window_secs, 60, 2_592_000)?;
                in_range("attester.max_clients", a.max_clients, 1, 100_000_000)?;
            }
            None if self.gateway.iter().any(|g| g.issuer) => {
                return bad("a [[gateway]] has issuer = true but there is no [attester] section");
            }
            None => {}
        }
        self.connections.validate()?;
        let l = &self.limits;
        in_range("limits.max_body_bytes", l.max_body_bytes, 64, 1 << 20)?;
        in_range("limits.body_timeout_ms", l.body_timeout_ms, 100, 120_000)?;
        in_range(
            "limits.upstream_timeout_ms",
            l.upstream_timeout_ms,
            100,
            120_000,
        )?;
        in_range("limits.max_concurrent", l.max_concurrent, 1, 1_000_000)?;
        // Above max_concurrent they are allowed, and have no effect.
        in_range(
            "limits.max_in_flight_per_client",
            l.max_in_flight_per_client,
            1,
            1_000_000,
        )?;
        in_range(
            "limits.max_in_flight_per_gateway",
            l.max_in_flight_per_gateway,
            1,
            1_000_000,
        )?;
        in_range("limits.max_tunnels", l.max_tunnels, 1, 1_000_000)?;
        in_range(
            "limits.tunnels_per_client",
            l.tunnels_per_client,
            1,
            u32::try_from(l.max_tunnels).unwrap_or(u32::MAX),
        )?;
        in_range(
            "limits.tunnel_lifetime_ms",
            l.tunnel_lifetime_ms,
            100,
            600_000,
        )?;
        // A TLS handshake and a key list must fit.
        in_range(
            "limits.tunnel_max_bytes",
            l.tunnel_max_bytes,
            16 * 1024,
            16 << 20,
        )?;
        // Outside it, the token bucket's arithmetic overflows (1e-30 did).
        in_range("rate.per_second", self.rate.per_second, 1e-3, 1e9)?;
        in_range("rate.burst", self.rate.burst, 1, 1_000_000_000)?;
        in_range("rate.max_clients", self.rate.max_clients, 1, 100_000_000)?;
        in_range(
            "key_cache.min_age_secs",
            self.key_cache.min_age_secs,
            0,
            86_400,
        )?;
        in_range(
            "key_cache.max_age_secs",
            self.key_cache.max_age_secs,
            self.key_cache.min_age_secs,
            604_800,
        )?;
        Ok(())
    }

    /// The relay's runtime options, its connection cap fitted under
    /// `open_files` (with room for its upstream connections and tunnels).
    pub fn options(&self, open_files: u64) -> Result<Options> {
        let ms = Duration::from_millis;
        let upstream = (self.limits.max_concurrent + self.limits.max_tunnels) as u64;
        Ok(Options {
            connections: self.connections.limits(open_files, upstream, 256)?,
            max_body: self.limits.max_body_bytes,
            body_timeout: ms(self.limits.body_timeout_ms),
            max_concurrent: self.limits.max_concurrent,
            max_in_flight_per_client: self.limits.max_in_flight_per_client,
            max_in_flight_per_gateway: self.limits.max_in_flight_per_gateway,
            rate: self.rate.per_second,
            burst: self.rate.burst,
            max_clients: self.rate.max_clients,
            tunnels: crate::tunnel::TunnelLimits {
                per_client: self.limits.tunnels_per_client,
                total: self.limits.max_tunnels,
                lifetime: ms(self.limits.tunnel_lifetime_ms),
                max_bytes: self.limits.tunnel_max_bytes,
                connect_timeout: ms(self.limits.upstream_timeout_ms),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replica_example_config_parses_and_validates() {
        // The README's "Running several replicas" points at this file.
        let config = Config::parse(include_str!("../../deploy/replicas/relay.toml")).unwrap();
        config.validate().unwrap();
        assert_eq!(
            config.key_cache.min_age_secs, 0,
            "follows the gateway's max-age"
        );
    }

    #[test]
    fn the_example_config_parses_and_validates() {
        let config = Config::parse(include_str!("../relay.example.toml")).unwrap();
        config.validate().unwrap();
        assert_eq!(config.gateway.len(), 2);
        assert_eq!(
            config.gateway[1].url.as_deref(),
            Some("https://gw.internal.other.example:8443/.well-known/ohttp-gateway")
        );
        crate::assemble(&Config {
            tls: None,
            plain_http: true,
            ..config
        })
        .unwrap();
    }

    #[test]
    fn mistakes_are_refused_with_a_reason() {
        assert!(matches!(
            Config::parse("[[gateway]]\nhost = \"a.example\"\nport = 1"),
            Err(mimi_server_core::Error::Config(_))
        ));
        let mut c = Config::parse("plain_http = true\n[[gateway]]\nhost = \"a.example\"").unwrap();
        c.validate().unwrap();
        c.gateway.clear();
        assert!(matches!(c.validate(), Err(Error::Config(m)) if m.contains("gateway")));
        let c = Config::parse("[[gateway]]\nhost = \"a.example\"").unwrap();
        assert!(matches!(c.validate(), Err(e) if e.to_string().contains("TLS")));
        let c = Config::parse(
            "plain_http = true\n[rate]\nper_second = 0.0\n[[gateway]]\nhost = \"a.example\"",
        )
        .unwrap();
        assert!(c.validate().is_err());
        // A rate so small it would overflow the wait computation.
        let c = Config::parse(
            "plain_http = true\n[rate]\nper_second = 1e-30\n[[gateway]]\nhost = \"a.example\"",
        )
        .unwrap();
        assert!(
            matches!(c.validate(), Err(Error::Server(e)) if e.to_string().contains("per_second"))
        );
        let c = Config::parse(
            "plain_http = true\n[limits]\nmax_in_flight_per_client = 0\n[[gateway]]\nhost = \"a.example\"",
        )
        .unwrap();
        assert!(c.validate().is_err());
    }
}
