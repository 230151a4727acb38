//! Wire formats of oblivious MIMI discovery, as pure functions over bytes.
//!
//! This crate is the contract of `DESIGN.md` in code: the relay, the gateway
//! and the client all build on it, and it does no I/O and reads no clock
//! (time comes in as an argument).
//!
//! # Layout
//!
//! - [`identifier`]: the three kinds of MIMI identifier, normalised, and the
//!   DNS name each is looked up at (DESIGN §2).
//! - [`record`]: the `v=MIMI1` TXT record (§3).
//! - [`codec`]: MLS variable-length vectors; [`query`]: the identifierQuery
//!   messages and MIMI URIs; [`directory`]: the directory document (§5).
//! - [`oblivious`]: OHTTP media types and paths, key configuration lists,
//!   padded Binary HTTP, problem details and the `Date` check (§4).
//! - `hpke` (crate-private): RFC 9180 base mode for our suites, on
//!   aws-lc-rs; the OHTTP encapsulation built on it, which is its only
//!   public face, is in [`oblivious`].
//! - [`privacypass`]: lookup quotas' tokens (DESIGN §10): challenges,
//!   token requests and responses, batches, the `PrivateToken` headers, the
//!   issuer directory, and type 2 (Blind RSA) issuance and verification.
//! - [`mapping`]: mappings signed by mapping authorities (DESIGN §11): the
//!   assertion (COSE_Sign1 over a CWT, Ed25519), the `v=MIMIA1` authority
//!   key record, the client's verdict, and the response component that
//!   carries assertions.
//! - [`error`]: the crate's one error type.
#![warn(missing_docs)]

pub mod codec;
pub mod directory;
pub mod domain;
pub mod error;
mod hpke;
pub mod identifier;
pub mod mapping;
pub mod oblivious;
pub mod privacypass;
pub mod query;
pub mod record;

pub use error::{Error, RecordProblem, Result};
pub use identifier::Identifier;
pub use query::{
    IdentifierQueryCode, IdentifierRequest, IdentifierResponse, MimiUri, SearchIdentifierType,
};
pub use record::MimiRecord;

// Re-exported so that users build requests with the same versions we do.
pub use bhttp;
