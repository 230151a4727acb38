//! A mapping authority's tools (DESIGN §11): its key file, and signing
//! directory entries in bulk, as `mimi-authority` and
//! `mimi-gateway directory import --sign-with` do.
//!
//! The key file is JSON, mode 0600: `{"authority": <name>, "seed":
//! <base64url 32-byte Ed25519 seed>, "created": <Unix time>}`. Its public
//! half is published as `v=MIMIA1; n=<name>; k=<key>` at
//! `_mimi-authority.<domain>`, or handed to clients for their trust store.

use std::path::Path;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mimi_proto::mapping::{Assertion, AuthoritySigner, Mapping};
use mimi_proto::{Identifier, MimiUri};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::clock::unix;
use crate::directory::{Entry, assertion_text};
use crate::error::{Error, Result};
use crate::private_files::{read_private_json, write_private};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileJson {
    authority: String,
    seed: String,
    created: u64,
}

/// Creates a key file for authority `name` at `path` (mode 0600); refuses to
/// replace an existing file, whose key may be published and in use.
pub fn create_key(path: &Path, name: &str, now: SystemTime) -> Result<AuthoritySigner> {
    if path.exists() {
        return Err(Error::Config(format!(
            "{} exists: an authority key is not replaced (a new key for a rotation goes in a new file)",
            path.display()
        )));
    }
    let seed = AuthoritySigner::generate_seed().map_err(|_| Error::Internal)?;
    let signer = AuthoritySigner::from_seed(name, &seed)
        .map_err(|e| Error::Config(format!("authority name {name:?}: {e}")))?;
    let file = Zeroizing::new(
        serde_json::to_vec_pretty(&KeyFileJson {
            authority: name.to_owned(),
            seed: URL_SAFE_NO_PAD.encode(seed.as_ref()),
            created: unix(now),
        })
        .map_err(|_| Error::Internal)?,
    );
    write_private(path, &file)?;
    Ok(signer)
}

/// Loads the key file at `path`, refusing one that others can read.
pub fn load_key(path: &Path) -> Result<AuthoritySigner> {
    let file: KeyFileJson = read_private_json(path)?;
    let malformed = |reason: &str| Error::KeyFileFormat {
        path: path.display().to_string(),
        reason: reason.to_owned(),
    };
    let seed = Zeroizing::new(
        URL_SAFE_NO_PAD
            .decode(&file.seed)
            .map_err(|_| malformed("seed is not base64url"))?,
    );
    let seed: &[u8; 32] = seed
        .as_slice()
        .try_into()
        .map_err(|_| malformed("seed is not 32 octets"))?;
    AuthoritySigner::from_seed(&file.authority, seed).map_err(|e| malformed(&e.to_string()))
}

/// How entries are signed.
#[derive(Debug, Clone)]
pub struct SignPolicy {
    /// The provider host (`e=`) the mappings name.
    pub provider: String,
    /// How long a new assertion is valid, in seconds.
    pub lifetime_secs: u64,
    /// An assertion of this authority that expires within this many seconds
    /// is replaced; a later one is kept.
    pub renew_within_secs: u64,
}

/// What [`sign_entries`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignReport {
    /// Entries given a new assertion.
    pub signed: usize,
    /// Entries whose assertion by this authority was still good for long.
    pub kept: usize,
    /// Entries carrying another authority's assertion, left as they were.
    pub foreign: usize,
}

impl std::fmt::Display for SignReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "signed {}; kept {} still valid; left {} signed by other authorities",
            self.signed, self.kept, self.foreign
        )
    }
}

/// Signs every entry that has no assertion, or one of this authority that
/// expires within the renewal window, or names another provider; entries
/// that another authority signed are left alone (a distribution point
/// serves them as they are). All or nothing: an entry that cannot be signed
/// fails the whole call, naming it.
pub fn sign_entries(
    entries: &mut [Entry],
    signer: &AuthoritySigner,
    policy: &SignPolicy,
    now: SystemTime,
) -> Result<SignReport> {
    let now = unix(now);
    let expires_at = now.saturating_add(policy.lifetime_secs);
    let mut report = SignReport::default();
    let mut signed = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let bad = |why: String| Error::InvalidEntry(format!("entry {}: {why}", i + 1));
        let current = entry
            .assertion
            .as_deref()
            .and_then(|a| URL_SAFE_NO_PAD.decode(a.trim()).ok())
            .and_then(|b| Assertion::decode(&b).ok());
        match current {
            Some(a) if a.claims().authority != signer.name() => {
                report.foreign += 1;
                signed.push(None);
                continue;
            }
            Some(a)
                if a.claims().mapping.provider == policy.provider
                    && a.claims().expires_at > now.saturating_add(policy.renew_within_secs)
                    && a.signed_by(&signer.public_key()) =>
            {
                report.kept += 1;
                signed.push(None);
                continue;
            }
            _ => {}
        }
        let identifier = Identifier::parse(&entry.identifier)
            .map_err(|e| bad(format!("identifier: {e}")))?
            .to_string();
        let account = MimiUri::parse(&entry.account)
            .map_err(|e| bad(format!("account: {e}")))?
            .to_string();
        let mapping = Mapping {
            identifier,
            account,
            provider: policy.provider.clone(),
        };
        let bytes = signer
            .sign(&mapping, now, expires_at)
            .map_err(|e| bad(e.to_string()))?;
        report.signed += 1;
        signed.push(Some(assertion_text(&bytes)));
    }
    for (entry, new) in entries.iter_mut().zip(signed) {
        if let Some(a) = new {
            entry.assertion = Some(a);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn policy() -> SignPolicy {
        SignPolicy {
            provider: "mimi.alpha.example".into(),
            lifetime_secs: 30 * 86_400,
            renew_within_secs: 7 * 86_400,
        }
    }

    #[test]
    fn key_file_is_private_and_not_replaced() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("authority.json");
        let created = create_key(&path, "example.com", SystemTime::now()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = load_key(&path).unwrap();
        assert_eq!(loaded.public_key(), created.public_key());
        assert!(create_key(&path, "example.com", SystemTime::now()).is_err());
        assert_eq!(load_key(&path).unwrap().public_key(), created.public_key());
    }

    #[test]
    fn bulk_signing_renews_only_what_is_due() {
        let signer = AuthoritySigner::from_seed("example.com", &[1; 32]).unwrap();
        let other = AuthoritySigner::from_seed("other.example", &[2; 32]).unwrap();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut entries = vec![
            Entry::new("Alice.Example.com", "mimi://alpha.example/u/alice", true),
            Entry::new("bob.example.com", "mimi://alpha.example/u/bob", false),
        ];
        let foreign = other
            .sign(
                &Mapping {
                    identifier: "carol.example.com".into(),
                    account: "mimi://beta.example/u/carol".into(),
                    provider: "mimi.beta.example".into(),
                },
                1,
                u64::MAX / 2,
            )
            .unwrap();
        let mut carol = Entry::new("carol.example.com", "mimi://beta.example/u/carol", true);
        carol.assertion = Some(assertion_text(&foreign));
        entries.push(carol);
        let report = sign_entries(&mut entries, &signer, &policy(), start).unwrap();
        assert_eq!(
            report,
            SignReport {
                signed: 2,
                kept: 0,
                foreign: 1
            }
        );
        let first = entries[0].assertion.clone().unwrap();
        // A day later nothing is due.
        let later = start + Duration::from_secs(86_400);
        let report = sign_entries(&mut entries, &signer, &policy(), later).unwrap();
        assert_eq!((report.signed, report.kept), (0, 2));
        assert_eq!(entries[0].assertion.as_deref(), Some(first.as_str()));
        // 24 days later both are within a week of expiry: re-signed.
        let due = start + Duration::from_secs(24 * 86_400);
        let report = sign_entries(&mut entries, &signer, &policy(), due).unwrap();
        assert_eq!((report.signed, report.kept, report.foreign), (2, 0, 1));
        assert_ne!(entries[0].assertion.as_deref(), Some(first.as_str()));
        let claims = Assertion::decode(
            &URL_SAFE_NO_PAD
                .decode(entries[0].assertion.as_deref().unwrap())
                .unwrap(),
        )
        .unwrap()
        .claims()
        .clone();
        assert_eq!(claims.mapping.identifier, "alice.example.com");
        assert_eq!(claims.expires_at, 1_800_000_000 + 54 * 86_400);
        // A bad entry fails the whole call and changes nothing.
        let mut bad = vec![
            Entry::new("dave.example.com", "mimi://alpha.example/u/dave", true),
            Entry::new("nope", "mimi://alpha.example/u/x", true),
        ];
        assert!(sign_entries(&mut bad, &signer, &policy(), start).is_err());
        assert!(bad[0].assertion.is_none());
    }
}
