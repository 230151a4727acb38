//! What an app configures: [`DiscovererOptions`], with the same meaning and
//! defaults as `mimi-discover`'s flags (README, "Configuration"), turned
//! into the client library's transport and options. Certificates and trust
//! stores are passed as text, which an app can bundle, rather than as paths.

use std::sync::Arc;
use std::time::Duration;

use mimi_client::transport::certificates_from_pem;
use mimi_client::{DnsMode, KeyCheck, Options, RelayTransport};

use crate::error::DiscoveryError;

/// How a discoverer reaches providers, checks what they say, and how much
/// it does at once. Only `relay` has no default.
#[derive(Debug, Clone, uniffi::Record)]
pub struct DiscovererOptions {
    /// The Oblivious HTTP relay: an origin (`https://relay.example`, whose
    /// resources are `/gateway/<host>`) or a URI template with `{gateway}`.
    pub relay: String,
    /// Relays for particular providers' gateways (relays with one resource
    /// per gateway); the others use `relay`.
    #[uniffi(default = [])]
    pub gateway_relays: Vec<GatewayRelay>,
    /// Where DNS questions go, as `mimi-discover --dns` writes it: `system`,
    /// `udp:ADDR:PORT`, `tcp:ADDR:PORT`, `doh:https://HOST[:PORT]/PATH`
    /// (HOST is resolved once, when the discoverer is built), or
    /// `oblivious:GATEWAY-HOST` (through the relay: no resolver sees what
    /// is looked up).
    #[uniffi(default = "system")]
    pub dns: String,
    /// Extra CA certificates (PEM text) trusted for the relay, providers'
    /// gateways and DNS-over-HTTPS, beside the built-in web roots.
    #[uniffi(default = None)]
    pub ca_certificates_pem: Option<String>,
    /// A file of DNSSEC trust anchors (DNSKEY records in zone-file form)
    /// instead of the root's, built in: for private roots and tests.
    #[uniffi(default = None)]
    pub trust_anchor_path: Option<String>,
    /// Refuse DNS answers that are not DNSSEC-signed.
    #[uniffi(default = false)]
    pub require_dnssec: bool,
    /// How a provider's key is checked before anything is encrypted to it;
    /// none: `TunnelShared`, the strongest.
    #[uniffi(default = None)]
    pub key_check: Option<KeyCheck>,
    /// Milliseconds a whole lookup may take, DNS and every provider included.
    #[uniffi(default = 10000)]
    pub timeout_ms: u64,
    /// Identifiers a batch looks up at once.
    #[uniffi(default = 8)]
    pub concurrency: u32,
    /// The bearer credential for the relay as attester, for providers that
    /// answer only with lookup tokens; none: only the relay's anonymous
    /// quota applies.
    #[uniffi(default = None)]
    pub credential: Option<Arc<Credential>>,
    /// Lookup tokens obtained at once (1 to 64).
    #[uniffi(default = 4)]
    pub token_batch: u32,
    /// A trust store of mapping authorities (one `v=MIMIA1; n=…; k=…[;
    /// scope=…]` line each), trusted beside the keys an identifier's domain
    /// publishes in DNSSEC-signed DNS.
    #[uniffi(default = None)]
    pub authority_keys: Option<String>,
    /// Show only accounts whose mapping a trusted authority signed.
    #[uniffi(default = false)]
    pub require_verified: bool,
}

/// A bearer credential for the relay as attester (a JWT from the relay
/// operator). An object, not text, so that printing the options (a data
/// class's `toString`, Python's `str`, a Rust `Debug`) never shows it.
#[derive(uniffi::Object)]
pub struct Credential(mimi_client::Credential);

#[uniffi::export]
impl Credential {
    /// The credential in `text` (one line of printable ASCII; surrounding
    /// white space is dropped).
    #[uniffi::constructor]
    pub fn new(text: String) -> Result<Arc<Self>, DiscoveryError> {
        Ok(Arc::new(Self(mimi_client::Credential::new(&text)?)))
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client's own Debug redacts it.
        self.0.fmt(f)
    }
}

/// The relay resource for one provider's gateway.
#[derive(Debug, Clone, uniffi::Record)]
pub struct GatewayRelay {
    /// The gateway host, as providers' records name it (`e=`).
    pub gateway: String,
    /// The relay resource URL for it.
    pub relay: String,
}

/// Why options are refused: a configuration error with its sentence.
fn config(message: String) -> DiscoveryError {
    DiscoveryError::from(mimi_client::Error::Config(message))
}

impl DiscovererOptions {
    /// The transport and options they describe; every field is checked
    /// here, before anything is sent.
    pub(crate) fn build(&self) -> Result<(RelayTransport, Options), DiscoveryError> {
        let timeout = Duration::from_millis(self.timeout_ms.max(1));
        let roots = match &self.ca_certificates_pem {
            Some(pem) => certificates_from_pem(pem.as_bytes(), "CA certificates")?,
            None => Vec::new(),
        };
        let mut transport = RelayTransport::new(&self.relay, &roots, timeout)?;
        for route in &self.gateway_relays {
            if mimi_proto::record::Endpoint::parse(&route.gateway).is_none() {
                return Err(config(format!(
                    "gateway relay: {:?} is not a gateway host",
                    route.gateway
                )));
            }
            transport = transport.with_relay_for(&route.gateway, &route.relay)?;
        }
        let dns: DnsMode = self.dns.parse()?;
        let token_batch = match self.token_batch {
            n @ 1..=64 => n as usize,
            n => return Err(config(format!("token_batch {n}: expected 1 to 64"))),
        };
        let options = Options {
            dns,
            dns_timeout: timeout,
            provider_timeout: timeout,
            lookup_timeout: Some(timeout),
            ca_roots: roots,
            trust_anchor: self.trust_anchor_path.as_ref().map(Into::into),
            require_dnssec: self.require_dnssec,
            concurrency: usize::try_from(self.concurrency.max(1)).unwrap_or(1),
            key_check: self.key_check.unwrap_or_default(),
            credential: self.credential.as_ref().map(|c| c.0.clone()),
            token_batch,
            authorities: match &self.authority_keys {
                Some(text) => mimi_client::verify::parse_trust_store(text)
                    .map_err(|e| config(format!("authority keys: {e}")))?,
                None => Vec::new(),
            },
            require_verified: self.require_verified,
            ..Options::default()
        };
        Ok((transport, options))
    }
}
