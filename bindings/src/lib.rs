//! mimi-bindings: the client library ([`mimi_client`]) for apps written in
//! Kotlin, Swift and Python, through UniFFI.
//!
//! One object, [`Discoverer`], built from [`DiscovererOptions`]: its
//! `discover` and `discover_many` are async functions in every language
//! (coroutines, Swift `async`, `asyncio`), results are records
//! ([`Discovery`], [`LookupResult`]), and every error code of the README's
//! table is a typed error ([`DiscoveryError`]) with its sentence. The
//! discoverer owns its runtime: apps need no Rust async runtime of their
//! own, and closing or dropping it stops its work.
//!
//! # Layout
//!
//! - [`discoverer`]: the object, its runtime, cancellation, batches.
//! - [`options`]: what an app configures.
//! - [`results`]: what a lookup returns.
//! - [`error`]: the errors and their codes.
//! - [`threads`]: every discoverer's threads, stopped together before the
//!   process exits.
#![warn(missing_docs)]

pub mod discoverer;
pub mod error;
pub mod options;
pub mod results;
pub mod threads;

pub use discoverer::{Discoverer, ProgressListener};
pub use error::{DiscoveryError, ErrorCode};
pub use options::{Credential, DiscovererOptions, GatewayRelay};
pub use results::{AccountVerification, Discovery, LookupResult, ProviderOutcome, ProviderResult};
pub use threads::shutdown_all_discoverers;

uniffi::setup_scaffolding!();
