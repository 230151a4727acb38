//! What a lookup returns, as records the foreign languages get as their own
//! types: everything `mimi-discover --json` prints (README, "JSON output"),
//! with codes and verdicts as enums rather than text.

use mimi_client::{Dnssec, KeyCheck, Verification};

use crate::error::{DiscoveryError, ErrorCode};

// The client's plain enums, exported as they are.

/// What DNSSEC says of a step 1 answer.
#[uniffi::remote(Enum)]
pub enum Dnssec {
    /// Signed, and the chain of trust from the trust anchor holds.
    Secure,
    /// Provably unsigned: usable, and shown as such.
    Insecure,
    /// The signatures or the chain do not hold: never used (an answer that
    /// is bogus is an error, so results never carry it).
    Bogus,
}

/// Whether an account's mapping was signed by a trusted authority.
#[uniffi::remote(Enum)]
pub enum Verification {
    /// Signed by a trusted mapping authority for this identifier, account
    /// and a listed provider, within its lifetime.
    Verified,
    /// No assertion, or no key trusted for this identifier.
    Unverified,
    /// An assertion proves it wrong: never among the found accounts.
    Invalid,
}

/// How a provider's key is checked before anything is encrypted to it.
#[uniffi::remote(Enum)]
pub enum KeyCheck {
    /// Over TLS to the gateway through the relay, and against the relay's
    /// shared copy (the default).
    TunnelShared,
    /// Over TLS to the gateway through the relay only.
    Tunnel,
    /// Fetched directly (the gateway sees the device's address), and against
    /// the relay's shared copy.
    DirectShared,
    /// Fetched directly, nothing else.
    Direct,
}

/// The result of discovering one identifier.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Discovery {
    /// The normalised identifier.
    pub identifier: String,
    /// `handle`, `email` or `phone`.
    pub kind: String,
    /// The DNS name asked in step 1.
    pub dns_name: String,
    /// What DNSSEC says of the step 1 answer.
    pub dnssec: Dnssec,
    /// The mapping authorities trusted for this identifier.
    pub authorities: Vec<String>,
    /// Each provider, in preference order.
    pub providers: Vec<ProviderResult>,
    /// Records that were skipped, and why.
    pub warnings: Vec<String>,
}

/// One provider's part of a discovery.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ProviderResult {
    /// The provider's label (`s=`), or its host when it has none.
    pub service: String,
    /// The provider's discovery host (`e=`).
    pub host: String,
    /// Its preference (`p=`, lowest first).
    pub preference: u16,
    /// An account the person published openly in DNS (`a=`), not confirmed
    /// by the provider.
    pub dns_account: Option<String>,
    /// What the provider said.
    pub outcome: ProviderOutcome,
    /// How long this provider's step 2 took, in milliseconds.
    pub elapsed_ms: u64,
    /// How the provider's key was checked before use.
    pub key_check: KeyCheck,
}

/// What one provider said.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ProviderOutcome {
    /// Accounts found (MIMI URIs).
    Found {
        /// The accounts shown as found: never an invalid one, and only
        /// verified ones when verification is required.
        accounts: Vec<String>,
        /// Every account the provider named, with its verdict, in the
        /// provider's order.
        verification: Vec<AccountVerification>,
    },
    /// The provider has no searchable account for this identifier.
    NotFound,
    /// The provider could not be asked, or refused.
    Failed {
        /// What went wrong, as a code.
        code: ErrorCode,
        /// A sentence for the user.
        message: String,
    },
}

/// The verdict on one account a provider named.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AccountVerification {
    /// The account URI.
    pub account: String,
    /// The verdict.
    pub verification: Verification,
    /// The authority that vouched for it (verified only).
    pub authority: Option<String>,
    /// When its assertion expires, Unix time (verified only).
    pub expires_at: Option<u64>,
    /// Why it is not verified, as a sentence.
    pub reason: Option<String>,
}

/// One identifier of a batch: its discovery, or why it failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum LookupResult {
    /// Step 1 answered; each provider's outcome is inside.
    Discovered {
        /// The discovery.
        discovery: Discovery,
    },
    /// The identifier could not be looked up at all.
    Failed {
        /// What went wrong, as a code.
        code: ErrorCode,
        /// A sentence for the user.
        message: String,
    },
}

impl From<Result<Discovery, DiscoveryError>> for LookupResult {
    fn from(result: Result<Discovery, DiscoveryError>) -> Self {
        match result {
            Ok(discovery) => Self::Discovered { discovery },
            Err(e) => Self::Failed {
                code: e.code(),
                message: e.to_string(),
            },
        }
    }
}

impl From<mimi_client::Discovery> for Discovery {
    fn from(d: mimi_client::Discovery) -> Self {
        Self {
            identifier: d.identifier,
            kind: d.kind,
            dns_name: d.dns_name,
            dnssec: d.dnssec,
            authorities: d.authorities,
            providers: d.providers.into_iter().map(Into::into).collect(),
            warnings: d.warnings,
        }
    }
}

impl From<mimi_client::ProviderResult> for ProviderResult {
    fn from(p: mimi_client::ProviderResult) -> Self {
        Self {
            service: p.service,
            host: p.host,
            preference: p.preference,
            dns_account: p.dns_account,
            outcome: p.outcome.into(),
            elapsed_ms: p.elapsed_ms,
            // The client writes the mode's name; it is always one of them.
            key_check: KeyCheck::parse(p.key_check).unwrap_or_default(),
        }
    }
}

impl From<mimi_client::Outcome> for ProviderOutcome {
    fn from(o: mimi_client::Outcome) -> Self {
        match o {
            mimi_client::Outcome::Found {
                accounts,
                verification,
            } => Self::Found {
                accounts,
                verification: verification.into_iter().map(Into::into).collect(),
            },
            mimi_client::Outcome::NotFound => Self::NotFound,
            mimi_client::Outcome::Error { message, code } => Self::Failed {
                code: code.into(),
                message,
            },
        }
    }
}

impl From<mimi_client::AccountVerification> for AccountVerification {
    fn from(v: mimi_client::AccountVerification) -> Self {
        Self {
            account: v.account,
            verification: v.verification,
            authority: v.authority,
            expires_at: v.expires_at,
            reason: v.reason,
        }
    }
}
