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
pub use error::{Error, ErrorCode, Result};
pub use session::KeyCheck;
pub use tokens::{Credential, StoredTokens, TokenPools};
pub use transport::{KeySource, RelayAnswer, RelayTransport, Transport};
pub use verify::{AccountVerification, Verification};

/// A stable snake_case code for an error, for JSON output and programs.
pub fn error_code(e: &Error) -> &'static str {
    e.code().as_str()
}
