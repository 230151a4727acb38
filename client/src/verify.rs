//! Signed mappings, the client's side (DESIGN §11): which authority keys are
//! trusted for an identifier, and what each found account's assertion says.
//!
//! Keys come from the identifier's domain (`_mimi-authority.<domain>`, asked
//! in step 1 beside the MIMI records, counted only when the answer is
//! DNSSEC-secure) and from the user's trust store (how phone-number
//! authorities are trusted). A verdict is per account: `verified`,
//! `unverified`, or `invalid`, which is never shown as found.

use std::path::Path;

use mimi_proto::Identifier;
use mimi_proto::mapping::{self, AuthorityKey, Expected, TrustedAuthority, Verdict};
use serde::Serialize;

use crate::dns::{Dnssec, TxtRecord};
use crate::error::{Error, Result};

/// Reads a trust store: one authority record per line
/// (`v=MIMIA1; n=<name>; k=<key>[; scope=…]`); blank lines and lines
/// starting with `#` are skipped. A line that does not parse is an error
/// naming it: a trust store is configuration, not something to guess at.
pub fn load_trust_store(path: &Path) -> Result<Vec<TrustedAuthority>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("authority keys {}: {e}", path.display())))?;
    parse_trust_store(&text)
        .map_err(|e| Error::Config(format!("authority keys {}: {e}", path.display())))
}

/// Parses a trust store's text (see [`load_trust_store`]).
pub fn parse_trust_store(text: &str) -> std::result::Result<Vec<TrustedAuthority>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let entry =
            TrustedAuthority::parse_line(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        out.push(entry);
    }
    Ok(out)
}

/// What step 1 said about the identifier's domain's authority keys.
pub(crate) type AuthorityAnswer = std::result::Result<(Vec<TxtRecord>, Dnssec), Error>;

/// The keys trusted for `id`: the trust store's that cover it, and, for a
/// handle or email address, its domain's published keys if the answer is
/// DNSSEC-secure. Anything not counted is said in `warnings`.
pub(crate) fn trusted_keys(
    id: &Identifier,
    store: &[TrustedAuthority],
    answer: AuthorityAnswer,
    warnings: &mut Vec<String>,
) -> Vec<AuthorityKey> {
    let mut keys: Vec<AuthorityKey> = store
        .iter()
        .filter(|a| a.covers(id))
        .map(|a| a.key.clone())
        .collect();
    // A phone number's answer was asked only so that every lookup asks the
    // same; DESIGN §11 trusts no DNS zone to speak for numbers.
    let Some(domain) = id.authority_domain() else {
        return keys;
    };
    let (records, dnssec) = match answer {
        Ok(a) => a,
        // No record: the domain names no authority.
        Err(Error::NameNotFound | Error::NoMimiRecord) => return keys,
        Err(e) => {
            warnings.push(format!(
                "the mapping authority keys of {domain} could not be fetched ({e}); accounts are checked against the trust store only"
            ));
            return keys;
        }
    };
    let mut published = Vec::new();
    for record in &records {
        let raw: Vec<u8> = record.iter().flatten().copied().collect();
        match AuthorityKey::parse_record(&raw) {
            Ok(Some(k)) => published.push(k),
            Ok(None) => {}
            Err(e) => warnings.push(e.to_string()),
        }
    }
    if published.is_empty() {
        return keys;
    }
    if dnssec == Dnssec::Secure {
        keys.extend(published);
    } else {
        warnings.push(format!(
            "the mapping authority keys {domain} publishes are not trusted: the DNS answer is {}, not DNSSEC-secure",
            dnssec.as_str()
        ));
    }
    keys
}

/// Whether an account was verified, and by whom; or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    /// Signed by a trusted mapping authority for this identifier, account
    /// and a listed provider, within its lifetime.
    Verified,
    /// No assertion, or no key trusted for this identifier.
    Unverified,
    /// An assertion proves it wrong: never shown as found.
    Invalid,
}

impl Verification {
    /// `verified`, `unverified` or `invalid`, as JSON writes it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Unverified => "unverified",
            Self::Invalid => "invalid",
        }
    }
}

/// One account a provider named, with the verdict on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountVerification {
    /// The account URI.
    pub account: String,
    /// The verdict.
    pub verification: Verification,
    /// The authority that vouched for it (verified only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// When its assertion expires, Unix time (verified only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Why it is not verified, as a sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Judges each account a provider named (`assertions[i]` came with
/// `accounts[i]`).
pub(crate) fn judge_accounts(
    id: &str,
    accounts: Vec<String>,
    assertions: &[Option<Vec<u8>>],
    providers: &[String],
    trusted: &[AuthorityKey],
    now: u64,
) -> Vec<AccountVerification> {
    accounts
        .into_iter()
        .zip(assertions)
        .map(|(account, assertion)| {
            let expected = Expected {
                identifier: id,
                account: &account,
                providers,
            };
            let verdict = mapping::judge(assertion.as_deref(), expected, trusted, now);
            let (verification, authority, expires_at, reason) = match verdict {
                Verdict::Verified {
                    authority,
                    expires_at,
                } => (
                    Verification::Verified,
                    Some(authority),
                    Some(expires_at),
                    None,
                ),
                Verdict::Unverified(why) => {
                    (Verification::Unverified, None, None, Some(why.to_string()))
                }
                Verdict::Invalid(why) => (Verification::Invalid, None, None, Some(why.to_string())),
            };
            AccountVerification {
                account,
                verification,
                authority,
                expires_at,
                reason,
            }
        })
        .collect()
}
