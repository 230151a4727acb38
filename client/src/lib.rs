//! mimi-client: private MIMI contact discovery (DESIGN §1 to §5, §7).
//!
//! Step 1 asks DNS which providers an identifier is on; step 2 asks each
//! provider, through an Oblivious HTTP relay, which account the identifier
//! maps to. The relay learns who asks but not what; the provider learns what
//! is asked but not who.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mimi_client::Error> {
//! use mimi_client::{Discoverer, Options, RelayTransport};
//! let relay = RelayTransport::new("https://relay.example", &[], std::time::Duration::from_secs(10))?;
//! let discoverer = Discoverer::new(relay, Options::default())?;
//! let found = discoverer.discover("alice.example.com").await?;
//! for account in found.accounts() {
//!     println!("{account}");
//! }
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`discover`]: the [`Discoverer`] and its results.
//! - [`dns`]: step 1 in its modes (system, server, DoH, oblivious, fixed).
//! - [`session`]: one oblivious exchange, with key caching and the allowed retries.
//! - [`tokens`]: lookup tokens (Privacy Pass) for providers that require them.
//! - [`transport`]: the [`Transport`] trait and the relay client.
//! - [`verify`]: signed mappings (DESIGN §11): the authority keys trusted
//!   for an identifier, and the verdict on each found account.
//! - [`error`]: the crate's one error type.
#![warn(missing_docs)]

pub mod discover;
pub mod dns;
pub mod error;
pub mod session;
pub mod tokens;
pub mod transport;
pub mod verify;

pub use discover::{Discoverer, Discovery, Options, Outcome, ProviderResult};
pub use dns::{DnsMode, Dnssec};
pub use error::{Error, Result};
pub use session::KeyCheck;
pub use tokens::{Credential, StoredTokens, TokenPools};
pub use transport::{KeySource, RelayAnswer, RelayTransport, Transport};
pub use verify::{AccountVerification, Verification};

/// A stable snake_case code for an error, for JSON output and programs.
pub fn error_code(e: &Error) -> &'static str {
    match e {
        Error::InvalidIdentifier(_) => "invalid_identifier",
        Error::InvalidRelayUrl(_) => "invalid_relay_url",
        Error::InsecureRelay(_) => "insecure_relay",
        Error::Config(_) => "config",
        Error::NoMimiRecord => "no_mimi_record",
        Error::OnlyInvalidRecords(_) => "only_invalid_records",
        Error::NameNotFound => "name_not_found",
        Error::DnsTimeout => "dns_timeout",
        Error::DnsFailed(_) => "dns_failed",
        Error::DnsBogus => "dns_bogus",
        Error::DnsInsecure => "dns_insecure",
        Error::RelayUnreachable => "relay_unreachable",
        Error::RateLimited(_) => "rate_limited",
        Error::UnknownGateway => "unknown_gateway",
        Error::RelayRefused(_) => "relay_refused",
        Error::GatewayUnreachable(_) => "gateway_unreachable",
        Error::Timeout => "timeout",
        Error::TunnelRefused(_) => "tunnel_refused",
        Error::TunnelFailed(_) => "tunnel_failed",
        Error::KeyInconsistent => "key_inconsistent",
        Error::NoUsableKey => "no_usable_key",
        Error::KeyMismatch => "key_mismatch",
        Error::DateRejected => "date_rejected",
        Error::ProviderRefused(_) => "provider_refused",
        Error::Unsupported => "unsupported",
        Error::Forbidden => "forbidden",
        Error::Ambiguous => "ambiguous",
        Error::MalformedAnswer => "malformed_answer",
        Error::QuotaReached { .. } => "quota_reached",
        Error::NoCredential => "no_credential",
        Error::CredentialRejected => "credential_rejected",
        Error::IssuerUnavailable(_) => "issuer_unavailable",
        Error::TokenChallengeRefused => "token_challenge_refused",
        Error::TokenRefused => "token_refused",
        Error::InvalidMapping(_) => "invalid_mapping",
        Error::Unverified(_) => "unverified",
    }
}
