//! Gateway keys: the key file, the rotation schedule, and the lock-free key
//! ring that decapsulation reads (`ring.rs`); this file is the manager that
//! keeps the ring built from the file.
//!
//! # The key file
//!
//! JSON, written atomically (temporary file, then rename) with mode 0600:
//!
//! ```json
//! { "version": 1,
//!   "keys": [ { "id": 3, "ikm": "<64 hex digits>", "not_before": 1700000000,
//!               "expires": null } ] }
//! ```
//!
//! `ikm` is the secret: 32 random bytes from which the X25519 key pair is
//! derived (HPKE `DeriveKeyPair`). `not_before` is when clients should start
//! using the key (it is published before that), `expires` when the gateway
//! stops accepting it (`null`: not scheduled). Times are Unix seconds.
//!
//! # Rotation
//!
//! `rotate` adds a key that becomes current `publish_ahead` from now and gives
//! every key without an expiry one at `not_before + grace` of the new key, so
//! that clients and relays holding a cached key list keep working. Expired
//! keys are dropped from the file.

mod ring;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

use crate::clock::unix;
use crate::error::{Error, Result};
pub use crate::key_file::{KeyFile, RotationPolicy, StoredKey};
use crate::seeded_keys::{Schedule, SeedFile};
pub use ring::KeyRing;

/// Where a [`KeyManager`]'s keys come from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// The key file, rotated on disk.
    File,
    /// A shared seed file and a schedule.
    Seed(Schedule),
}

/// The file behind the ring and its modification time when last read.
#[derive(Debug)]
struct OnDisk {
    keys: KeyFile,
    seeds: Option<SeedFile>,
    mtime: Option<SystemTime>,
}

/// The live keys: a lock-free snapshot for the hot path, and the file they
/// come from (the key file, or the seed file), re-read when it changes on
/// disk (e.g. `mimi-gateway keys rotate` or `keys roll-seed`).
#[derive(Debug)]
pub struct KeyManager {
    path: PathBuf,
    source: Source,
    ring: ArcSwap<KeyRing>,
    disk: std::sync::Mutex<OnDisk>,
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl KeyManager {
    /// Opens (or creates) the key file and builds the ring for `now`.
    pub fn open(path: &Path, now: SystemTime) -> Result<Self> {
        let keys = KeyFile::load_or_create(path, now)?;
        Self::start(
            path,
            Source::File,
            OnDisk {
                keys,
                seeds: None,
                mtime: mtime(path),
            },
            now,
        )
    }

    /// Opens (or creates) the seed file and builds the ring its schedule
    /// gives at `now`: every replica with the same file serves the same keys.
    pub fn open_seeded(path: &Path, schedule: Schedule, now: SystemTime) -> Result<Self> {
        let seeds = SeedFile::load_or_create(path)?;
        Self::start(
            path,
            Source::Seed(schedule),
            OnDisk {
                keys: seeds.keys_at(now, schedule),
                seeds: Some(seeds),
                mtime: mtime(path),
            },
            now,
        )
    }

    fn start(path: &Path, source: Source, disk: OnDisk, now: SystemTime) -> Result<Self> {
        let ring = build_ring(&disk, source, now)?;
        if ring.ids().is_empty() {
            return Err(Error::KeyFileFormat {
                path: path.display().to_string(),
                reason: "no key is live (all have expired): run `mimi-gateway keys rotate`".into(),
            });
        }
        Ok(Self {
            path: path.to_owned(),
            source,
            ring: ArcSwap::from_pointee(ring),
            disk: std::sync::Mutex::new(disk),
        })
    }

    /// The ring in force. Lock-free: a reader never waits for a rotation.
    pub fn ring(&self) -> arc_swap::Guard<Arc<KeyRing>> {
        self.ring.load()
    }

    /// Re-reads the file if it changed, rotates (key file only) if
    /// `rotate_after` has passed since the newest key became current, and
    /// rebuilds the ring for `now`. Called periodically off the hot path.
    pub fn refresh(
        &self,
        now: SystemTime,
        rotate_after: Option<Duration>,
        policy: RotationPolicy,
    ) -> Result<()> {
        let mut disk = self.disk.lock().unwrap_or_else(|p| p.into_inner());
        let on_disk = mtime(&self.path);
        if on_disk != disk.mtime {
            match self.source {
                Source::File => disk.keys = KeyFile::load(&self.path)?,
                Source::Seed(_) => disk.seeds = Some(SeedFile::load(&self.path)?),
            }
            disk.mtime = on_disk;
            tracing::info!("key file changed on disk; reloaded");
        }
        let mut rotated = Ok(());
        if let (Source::File, Some(after), Some(newest)) =
            (self.source, rotate_after, disk.keys.newest_not_before())
        {
            if unix(now) >= newest + after.as_secs() {
                // On disk first: the keys served are never ones the file
                // lacks. A failed save leaves everything as it was, and the
                // rotation is tried again at the next refresh.
                let mut next = disk.keys.clone();
                rotated = next
                    .rotate(now, policy)
                    .and_then(|id| {
                        next.save(&self.path)?;
                        Ok(id)
                    })
                    .map(|id| {
                        disk.keys = next;
                        disk.mtime = mtime(&self.path);
                        tracing::info!(key_id = id, "rotated keys automatically");
                    });
            }
        }
        // The schedule moves on (keys become current, expire) either way.
        let ring = build_ring(&disk, self.source, now)?;
        if ring.ids().is_empty() {
            tracing::error!("no key is live: clients cannot reach this gateway; rotate the keys");
        }
        self.ring.store(Arc::new(ring));
        rotated
    }

    /// Rotates now (used by tests and the admin path of a running server).
    pub fn rotate(&self, now: SystemTime, policy: RotationPolicy) -> Result<u8> {
        if let Source::Seed(_) = self.source {
            return Err(Error::Config(
                "keys come from a seed file: roll the seed (`mimi-gateway keys roll-seed`) instead"
                    .into(),
            ));
        }
        let mut disk = self.disk.lock().unwrap_or_else(|p| p.into_inner());
        // On disk first: the keys served are never ones the file lacks.
        let mut next = disk.keys.clone();
        let id = next.rotate(now, policy)?;
        next.save(&self.path)?;
        disk.keys = next;
        disk.mtime = mtime(&self.path);
        self.ring
            .store(Arc::new(build_ring(&disk, self.source, now)?));
        Ok(id)
    }
}

/// The ring for `now`: from the key file as it is, or from the keys the seed
/// schedule gives at `now` (which also change when the next key is
/// published, so `max-age` stops there too).
fn build_ring(disk: &OnDisk, source: Source, now: SystemTime) -> Result<KeyRing> {
    match (source, &disk.seeds) {
        (Source::Seed(schedule), Some(seeds)) => {
            let mut ring = KeyRing::build(&seeds.keys_at(now, schedule), now)?;
            ring.limit_next_change(schedule.secs_to_next_publication(now));
            Ok(ring)
        }
        _ => KeyRing::build(&disk.keys, now),
    }
}

#[cfg(test)]
mod tests;
