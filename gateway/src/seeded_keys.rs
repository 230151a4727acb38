//! Keys for several replicas from one shared secret: every replica that has
//! the same seed file and the same `[keys]` schedule serves the same key
//! list and accepts the same keys, with no coordination at run time.
//!
//! Time is cut into periods of `period` seconds; period `e` (epoch) is
//! `[e·period, (e+1)·period)`. Its key has id `e mod 256` and input keying
//! material `HKDF-SHA256(salt = "mimi-gateway seeded keys v1", ikm = seed,
//! info = e as 8 big-endian bytes)`, 32 bytes, from which HPKE derives the
//! X25519 pair as for a stored key. The key is published `publish_ahead`
//! before its period and accepted until `grace` after it.
//!
//! # The seed file
//!
//! JSON, mode 0600, the same bytes on every replica:
//!
//! ```json
//! { "version": 1,
//!   "seeds": [ { "from": 1700000000, "seed": "<64 hex digits>" } ] }
//! ```
//!
//! The key of period `e` comes from the seed with the latest `from` at or
//! before the period's start. Rolling the seed is adding one with a `from`
//! whose key is not yet published (`mimi-gateway keys roll-seed` picks
//! it): keys already handed out keep their seed, so nothing a client holds
//! stops working, and the old seed can be dropped once its last key's grace
//! has passed (the command does that too).

use std::path::Path;
use std::time::{Duration, SystemTime};

use hkdf::Hkdf;
use mimi_proto::oblivious::IKM_LEN;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::clock::unix;
use crate::error::{Error, Result};
use crate::key_file::{KeyFile, StoredKey};
use crate::secret::SecretHex;
use zeroize::Zeroizing;

const SALT: &[u8] = b"mimi-gateway seeded keys v1";

/// One seed and the first moment (Unix seconds) its keys apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// Periods starting at or after this use this seed.
    pub from: u64,
    /// 32 random bytes, hex.
    pub seed: SecretHex,
}

/// The seed file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    /// Format version: 1.
    pub version: u32,
    /// The seeds, in any order.
    pub seeds: Vec<Seed>,
}

/// The schedule every replica shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// How long each key is current.
    pub period: Duration,
    /// How long before its period a key is published.
    pub publish_ahead: Duration,
    /// How long after its period a key is still accepted.
    pub grace: Duration,
}

impl Schedule {
    /// The newest period whose key is published at `now` (Unix seconds).
    fn newest_published(&self, now: u64) -> u64 {
        (now + self.publish_ahead.as_secs()) / self.period.as_secs().max(1)
    }

    /// Seconds from `now` until the next key is published.
    pub fn secs_to_next_publication(&self, now: SystemTime) -> u64 {
        let now = unix(now);
        let next = (self.newest_published(now) + 1) * self.period.as_secs().max(1);
        next - self.publish_ahead.as_secs() - now
    }
}

impl SeedFile {
    /// A file with one fresh seed, in force from the beginning of time.
    pub fn new() -> Result<Self> {
        Ok(Self {
            version: 1,
            seeds: vec![Seed {
                from: 0,
                seed: SecretHex::random()?,
            }],
        })
    }

    /// Reads and validates a seed file; one others can read is refused.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::KeyFileFormat {
            path: path.display().to_string(),
            reason,
        };
        let file: Self = crate::private_files::read_private_json(path)?;
        if file.version != 1 {
            return Err(bad(format!("unknown version {}", file.version)));
        }
        if file.seeds.is_empty() {
            return Err(bad("no seed".into()));
        }
        for s in &file.seeds {
            s.seed
                .decode()
                .ok_or_else(|| bad(format!("seed from {}: not 64 hex digits", s.from)))?;
        }
        Ok(file)
    }

    /// Writes the file atomically with mode 0600.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(|_| Error::Internal)?;
        crate::private_files::write_private(path, &json)
    }

    /// Loads the file, or creates it with one fresh seed.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        if path.exists() {
            Self::load(path)
        } else {
            let file = Self::new()?;
            file.save(path)?;
            Ok(file)
        }
    }

    /// The seed in force for a period starting at `start`.
    fn seed_for(&self, start: u64) -> Option<Zeroizing<[u8; 32]>> {
        self.seeds
            .iter()
            .filter(|s| s.from <= start)
            .max_by_key(|s| s.from)
            .and_then(|s| s.seed.decode())
    }

    /// The keys in force at `now` under `schedule`, in key-file form:
    /// the periods whose key is published and not past its grace.
    pub fn keys_at(&self, now: SystemTime, schedule: Schedule) -> KeyFile {
        let now = unix(now);
        let period = schedule.period.as_secs().max(1);
        let grace = schedule.grace.as_secs();
        // Newest published: the period whose start is at most `ahead` away.
        let newest = schedule.newest_published(now);
        // Oldest accepted: its end plus grace still ahead of now.
        let oldest = (now.saturating_sub(grace) / period).saturating_sub(1);
        let keys = (oldest..=newest)
            .filter_map(|epoch| {
                let start = epoch * period;
                let expires = start + period + grace;
                if expires <= now {
                    return None;
                }
                let seed = self.seed_for(start)?;
                Some(StoredKey {
                    id: (epoch % 256) as u8,
                    ikm: SecretHex::encode(&derive_ikm(&seed, epoch)),
                    not_before: start,
                    expires: Some(expires),
                })
            })
            .collect();
        KeyFile { version: 1, keys }
    }

    /// Adds a fresh seed for the first period whose key is published at
    /// least `lead` from `now` (every replica must have the new file by
    /// then), and drops seeds no accepted key uses any more. Returns the
    /// new seed's `from`.
    pub fn roll(&mut self, now: SystemTime, schedule: Schedule, lead: Duration) -> Result<u64> {
        let now_s = unix(now);
        let period = schedule.period.as_secs().max(1);
        let ahead = schedule.publish_ahead.as_secs();
        // The first period e with e·period - ahead >= now + lead.
        let earliest = now_s + lead.as_secs() + ahead;
        let from = earliest.div_ceil(period) * period;
        // Keep the seed of the oldest period still accepted, and newer ones.
        let oldest_start =
            (now_s.saturating_sub(schedule.grace.as_secs()) / period).saturating_sub(1) * period;
        let keep_from = self
            .seeds
            .iter()
            .filter(|s| s.from <= oldest_start)
            .map(|s| s.from)
            .max()
            .unwrap_or(0);
        self.seeds.retain(|s| s.from >= keep_from);
        self.seeds.push(Seed {
            from,
            seed: SecretHex::random()?,
        });
        Ok(from)
    }
}

/// The IKM of period `epoch`'s key under `seed`.
pub fn derive_ikm(seed: &[u8; 32], epoch: u64) -> Zeroizing<[u8; IKM_LEN]> {
    let hk = Hkdf::<Sha256>::new(Some(SALT), seed);
    let mut out = Zeroizing::new([0u8; IKM_LEN]);
    // 32 bytes is far below HKDF-SHA256's limit of 255 × 32.
    hk.expand(&epoch.to_be_bytes(), &mut out[..])
        .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 length"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyRing;

    fn schedule() -> Schedule {
        Schedule {
            period: Duration::from_secs(100),
            publish_ahead: Duration::from_secs(30),
            grace: Duration::from_secs(40),
        }
    }

    fn at(s: u64) -> SystemTime {
        std::time::UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn two_replicas_with_one_seed_serve_the_same_list() {
        let seeds = SeedFile::new().unwrap();
        let copy: SeedFile = serde_json::from_str(&serde_json::to_string(&seeds).unwrap()).unwrap();
        for t in [1_000, 1_050, 1_069, 1_070, 1_099, 1_100, 1_139, 1_140] {
            let a = KeyRing::build(&seeds.keys_at(at(t), schedule()), at(t)).unwrap();
            let b = KeyRing::build(&copy.keys_at(at(t), schedule()), at(t)).unwrap();
            assert_eq!(a.encoded_list(), b.encoded_list(), "at {t}");
        }
    }

    #[test]
    fn schedule_publishes_ahead_and_keeps_grace() {
        let seeds = SeedFile::new().unwrap();
        let ids = |t| {
            KeyRing::build(&seeds.keys_at(at(t), schedule()), at(t))
                .unwrap()
                .ids()
                .to_vec()
        };
        // Period 10 is current; 11 not yet published; 9 in grace until 1040.
        assert_eq!(ids(1_010), vec![10, 9]);
        assert_eq!(ids(1_039), vec![10, 9]);
        assert_eq!(ids(1_040), vec![10]);
        // 11 published 30 s ahead of 1100.
        assert_eq!(ids(1_070), vec![10, 11]);
        assert_eq!(ids(1_100), vec![11, 10]);
    }

    #[test]
    fn a_roll_changes_no_key_already_published() {
        let mut seeds = SeedFile::new().unwrap();
        let before = seeds.keys_at(at(1_075), schedule());
        let from = seeds
            .roll(at(1_075), schedule(), Duration::from_secs(5))
            .unwrap();
        // Key 11 was published at 1070: the new seed starts with period 12.
        assert_eq!(from, 1_200);
        let after = seeds.keys_at(at(1_075), schedule());
        assert_eq!(before, after);
        // Period 12's key is new; period 11's is the old seed's.
        let later = seeds.keys_at(at(1_180), schedule());
        let k11 = later.keys.iter().find(|k| k.id == 11).unwrap();
        assert_eq!(
            Some(k11),
            SeedFile {
                version: 1,
                seeds: vec![seeds.seeds[0].clone()]
            }
            .keys_at(at(1_180), schedule())
            .keys
            .iter()
            .find(|k| k.id == 11)
        );
        // Once every old key is past its grace, the old seed is dropped.
        seeds
            .roll(at(1_400), schedule(), Duration::from_secs(5))
            .unwrap();
        assert!(seeds.seeds.iter().all(|s| s.from >= 1_200));
    }

    #[test]
    fn derivation_is_fixed() {
        // Pinned to HKDF-SHA256 computed independently (Python's hmac, per
        // RFC 5869): a change here would change every deployed replica's keys.
        let ikm = derive_ikm(&[7u8; 32], 42);
        assert_eq!(
            hex::encode(*ikm),
            "b6927ae0a5b3bb923802bfdde77b6948e3c0d9409e3609f5d6be4782a85efae8"
        );
        assert_ne!(ikm, derive_ikm(&[7u8; 32], 43));
        assert_ne!(ikm, derive_ikm(&[8u8; 32], 42));
    }
}
