//! Privacy Pass (RFC 9576, 9577, 9578) for lookup quotas (DESIGN §10):
//! token type 0x0002 (Blind RSA, 2048-bit, RSABSSA-SHA384-PSS-Deterministic)
//! only, as pure functions over bytes.
//!
//! - [`wire`]: `TokenChallenge`, `TokenRequest`, `TokenResponse`, `Token`,
//!   and the arbitrary batch of draft-ietf-privacypass-batched-tokens.
//! - [`header`]: the `PrivateToken` HTTP authentication scheme (RFC 9577 §2).
//! - [`directory`]: the issuer directory (RFC 9578 §4).
//! - [`blind_rsa`]: keys, issuance, finalisation and verification, on the
//!   `blind-rsa-signatures` crate (RFC 9474), checked against RFC 9578's
//!   test vectors and, for verification, Python's `cryptography`.

pub mod blind_rsa;
pub mod directory;
pub mod header;
pub mod wire;

pub use blind_rsa::{IssuerKey, PendingToken, TokenKey};
pub use directory::{IssuerDirectory, TokenKeyEntry};
pub use wire::{
    BatchTokenRequest, BatchTokenResponse, Token, TokenChallenge, TokenRequest, TokenResponse,
};

/// Token type 0x0002: Blind RSA (2048-bit), publicly verifiable.
pub const TOKEN_TYPE_BLIND_RSA: u16 = 0x0002;
/// `Nk` for token type 2: the modulus length, in bytes.
pub const NK: usize = 256;
/// `Nid`: the length of a token key id (SHA-256 of the key's SPKI).
pub const NID: usize = 32;
/// The length of a token's nonce.
pub const NONCE_LEN: usize = 32;

/// The issuer directory's well-known path (RFC 9578 §4).
pub const ISSUER_DIRECTORY_PATH: &str = "/.well-known/private-token-issuer-directory";
/// Where our gateways take token requests (named in the directory).
pub const ISSUER_REQUEST_PATH: &str = "/.well-known/private-token-request";
/// `application/private-token-issuer-directory`.
pub const MEDIA_ISSUER_DIRECTORY: &str = "application/private-token-issuer-directory";
/// `application/private-token-request` (RFC 9578 §5.1, §6.1).
pub const MEDIA_TOKEN_REQUEST: &str = "application/private-token-request";
/// `application/private-token-response`.
pub const MEDIA_TOKEN_RESPONSE: &str = "application/private-token-response";
/// `application/private-token-arbitrary-batch-request` (batched tokens).
pub const MEDIA_BATCH_REQUEST: &str = "application/private-token-arbitrary-batch-request";
/// `application/private-token-arbitrary-batch-response`.
pub const MEDIA_BATCH_RESPONSE: &str = "application/private-token-arbitrary-batch-response";
/// The relay's attester path prefix; the issuer's host follows.
pub const ATTESTER_PREFIX: &str = "/issuer/";
/// The most token requests one batch may hold.
pub const MAX_BATCH: usize = 64;
