//! The gateway's key file (its format is described in the `keys` module) and
//! how rotation changes it.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::clock::unix;
use crate::error::{Error, Result};
use crate::private_files::{read_private_json, write_private};
use crate::secret::SecretHex;

/// One key as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredKey {
    /// The key identifier clients put in the request header.
    pub id: u8,
    /// The secret input keying material, hex.
    pub ikm: SecretHex,
    /// When clients should start using this key (Unix seconds).
    pub not_before: u64,
    /// When the gateway stops accepting it (Unix seconds).
    pub expires: Option<u64>,
}

/// The key file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// Format version: 1.
    pub version: u32,
    /// The keys, in no particular order.
    pub keys: Vec<StoredKey>,
}

/// How keys are rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// How long before it becomes current a new key is published.
    pub publish_ahead: Duration,
    /// How long a replaced key is still accepted after its successor is current.
    pub grace: Duration,
}

fn fresh_ikm() -> Result<SecretHex> {
    SecretHex::random()
}

impl KeyFile {
    /// A file with one key, current from `now`.
    pub fn new(now: SystemTime) -> Result<Self> {
        Ok(Self {
            version: 1,
            keys: vec![StoredKey {
                id: 0,
                ikm: fresh_ikm()?,
                not_before: unix(now),
                expires: None,
            }],
        })
    }

    /// Adds a new key per `policy` and schedules the expiry of the keys it
    /// replaces; drops keys that have expired. Returns the new key's id.
    pub fn rotate(&mut self, now: SystemTime, policy: RotationPolicy) -> Result<u8> {
        let now_s = unix(now);
        self.keys.retain(|k| k.expires.is_none_or(|e| e > now_s));
        let used: BTreeSet<u8> = self.keys.iter().map(|k| k.id).collect();
        // Prefer the id after the newest key's, so ids are not reused soon.
        let newest = self
            .keys
            .iter()
            .max_by_key(|k| k.not_before)
            .map_or(0, |k| k.id);
        let id = (1..=256u16)
            .map(|step| newest.wrapping_add(step as u8))
            .find(|id| !used.contains(id))
            .ok_or(Error::NoFreeKeyId)?;
        let not_before = now_s + policy.publish_ahead.as_secs();
        let expires = not_before + policy.grace.as_secs();
        for k in &mut self.keys {
            if k.expires.is_none() {
                k.expires = Some(expires);
            }
        }
        self.keys.push(StoredKey {
            id,
            ikm: fresh_ikm()?,
            not_before,
            expires: None,
        });
        Ok(id)
    }

    /// The newest key's `not_before`: when the current schedule began.
    pub fn newest_not_before(&self) -> Option<u64> {
        self.keys.iter().map(|k| k.not_before).max()
    }

    /// Reads and validates a key file. A file others can read is refused:
    /// its keys could decrypt every request sent to them.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::KeyFileFormat {
            path: path.display().to_string(),
            reason,
        };
        let file: Self = read_private_json(path)?;
        if file.version != 1 {
            return Err(bad(format!("unknown version {}", file.version)));
        }
        let mut ids = BTreeSet::new();
        for k in &file.keys {
            if !ids.insert(k.id) {
                return Err(bad(format!("key id {} appears twice", k.id)));
            }
            k.ikm
                .decode()
                .ok_or_else(|| bad(format!("key {}: ikm is not 64 hex digits", k.id)))?;
        }
        Ok(file)
    }

    /// Writes the file atomically with mode 0600.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(|_| Error::Internal)?;
        write_private(path, &json)
    }

    /// Loads the file, or creates it with one fresh key if it does not exist.
    pub fn load_or_create(path: &Path, now: SystemTime) -> Result<Self> {
        match std::fs::metadata(path) {
            Ok(_) => Self::load(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let file = Self::new(now)?;
                file.save(path)?;
                Ok(file)
            }
            Err(source) => Err(Error::KeyFile {
                path: path.display().to_string(),
                source,
            }),
        }
    }
}
