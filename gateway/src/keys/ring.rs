//! The keys in force at one moment, read lock-free by decapsulation.

use std::time::{Duration, SystemTime};

use mimi_proto::oblivious;

use crate::clock::unix;
use crate::error::{Error, Result};
pub(super) use crate::key_file::{KeyFile, StoredKey};

/// The keys in force at one moment: what decapsulation reads. Immutable;
/// replaced whole when the schedule moves on.
pub struct KeyRing {
    /// Indexed by key id; 256 entries.
    servers: Vec<Option<oblivious::ServerKey>>,
    /// The `application/ohttp-keys` body: the current key first, then keys
    /// published ahead of use, then keys in their grace period.
    encoded_list: Vec<u8>,
    ids: Vec<u8>,
    /// Seconds until the set or order of keys next changes.
    next_change: Option<u64>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("ids", &self.ids)
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Builds the ring for time `now` from a key file.
    pub fn build(file: &KeyFile, now: SystemTime) -> Result<Self> {
        let now_s = unix(now);
        let mut live: Vec<(usize, &StoredKey)> = file
            .keys
            .iter()
            .enumerate()
            .filter(|(_, k)| k.expires.is_none_or(|e| e > now_s))
            .collect();
        // Current keys (newest first), then pending ones (soonest first).
        // Keys are appended as they are made, so a later position is newer
        // when two share a `not_before` second.
        live.sort_by_key(|&(pos, k)| {
            if k.not_before <= now_s {
                (0, u64::MAX - k.not_before, usize::MAX - pos)
            } else {
                (1, k.not_before, pos)
            }
        });
        let live: Vec<&StoredKey> = live.into_iter().map(|(_, k)| k).collect();
        let keys = live
            .iter()
            .map(|k| {
                let ikm = k.ikm.decode().ok_or_else(|| Error::KeyFileFormat {
                    path: String::new(),
                    reason: format!("key {}: bad ikm", k.id),
                })?;
                oblivious::ServerKey::derive(k.id, &ikm).map_err(|_| Error::Internal)
            })
            .collect::<Result<Vec<_>>>()?;
        let encoded_list = oblivious::encode_key_config_list(&keys);
        let mut servers: Vec<Option<oblivious::ServerKey>> = (0..256).map(|_| None).collect();
        for key in keys {
            let id = usize::from(key.key_id());
            servers[id] = Some(key);
        }
        let next_change = file
            .keys
            .iter()
            .flat_map(|k| [Some(k.not_before), k.expires])
            .flatten()
            .filter(|t| *t > now_s)
            .min()
            .map(|t| t - now_s);
        Ok(Self {
            servers,
            encoded_list,
            ids: live.iter().map(|k| k.id).collect(),
            next_change,
        })
    }

    /// The server for a key id, if that key is accepted now.
    pub fn server(&self, id: u8) -> Option<&oblivious::ServerKey> {
        self.servers[usize::from(id)].as_ref()
    }

    /// The `application/ohttp-keys` body.
    pub fn encoded_list(&self) -> &[u8] {
        &self.encoded_list
    }

    /// The ids of the keys accepted now, in list order.
    pub fn ids(&self) -> &[u8] {
        &self.ids
    }

    /// Brings the next change forward to at most `secs` from now.
    pub(super) fn limit_next_change(&mut self, secs: u64) {
        self.next_change = Some(self.next_change.map_or(secs, |n| n.min(secs)));
    }

    /// The `max-age` to serve: the configured one, but never past the next
    /// scheduled change, so caches pick up a new key before it is needed.
    pub fn max_age(&self, configured: Duration) -> u64 {
        let configured = configured.as_secs();
        self.next_change.map_or(configured, |n| n.min(configured))
    }
}
