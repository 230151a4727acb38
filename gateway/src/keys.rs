//! Gateway keys: the key file, the rotation schedule, and the lock-free key
//! ring that decapsulation reads.
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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use mimi_proto::oblivious;

use crate::clock::unix;
use crate::error::{Error, Result};
pub use crate::key_file::{KeyFile, RotationPolicy, StoredKey};
use crate::seeded_keys::{Schedule, SeedFile};

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
    fn limit_next_change(&mut self, secs: u64) {
        self.next_change = Some(self.next_change.map_or(secs, |n| n.min(secs)));
    }

    /// The `max-age` to serve: the configured one, but never past the next
    /// scheduled change, so caches pick up a new key before it is needed.
    pub fn max_age(&self, configured: Duration) -> u64 {
        let configured = configured.as_secs();
        self.next_change.map_or(configured, |n| n.min(configured))
    }
}

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
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    const T0: u64 = 1_800_000_000;

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    const POLICY: RotationPolicy = RotationPolicy {
        publish_ahead: Duration::from_secs(100),
        grace: Duration::from_secs(1000),
    };

    #[test]
    fn rotation_publishes_ahead_and_keeps_old_keys_for_the_grace() {
        let mut file = KeyFile::new(at(T0)).unwrap();
        let old = file.keys[0].id;
        let new = file.rotate(at(T0 + 10), POLICY).unwrap();
        assert_ne!(old, new);

        // Published, but the old key is still current.
        let ring = KeyRing::build(&file, at(T0 + 20)).unwrap();
        assert_eq!(ring.ids(), [old, new]);
        assert!(ring.server(new).is_some());
        assert_eq!(ring.max_age(Duration::from_secs(3600)), 90);

        // The new key is current: it comes first; the old one is in grace.
        let ring = KeyRing::build(&file, at(T0 + 110)).unwrap();
        assert_eq!(ring.ids(), [new, old]);

        // Past the grace the old key is refused.
        let ring = KeyRing::build(&file, at(T0 + 10 + 100 + 1000)).unwrap();
        assert_eq!(ring.ids(), [new]);
        assert!(ring.server(old).is_none());
    }

    #[test]
    fn rotation_drops_expired_keys_and_finds_free_ids() {
        let mut file = KeyFile::new(at(T0)).unwrap();
        for i in 0..300 {
            file.rotate(at(T0 + i * 2000), POLICY).unwrap();
            assert!(file.keys.len() <= 2);
        }
    }

    #[test]
    fn no_free_id_is_an_error() {
        let mut file = KeyFile::new(at(T0)).unwrap();
        let forever = RotationPolicy {
            publish_ahead: Duration::ZERO,
            grace: Duration::from_secs(u32::MAX.into()),
        };
        for _ in 0..255 {
            file.rotate(at(T0), forever).unwrap();
        }
        assert!(matches!(
            file.rotate(at(T0), forever),
            Err(Error::NoFreeKeyId)
        ));
    }

    #[test]
    fn file_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/keys.json");
        let file = KeyFile::load_or_create(&path, at(T0)).unwrap();
        assert_eq!(KeyFile::load(&path).unwrap(), file);
        assert_eq!(KeyFile::load_or_create(&path, at(T0 + 5)).unwrap(), file);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn malformed_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        for text in [
            "not json",
            r#"{"version":2,"keys":[]}"#,
            r#"{"version":1,"keys":[{"id":1,"ikm":"00","not_before":0,"expires":null}]}"#,
            r#"{"version":1,"keys":[],"extra":1}"#,
        ] {
            std::fs::write(&path, text).unwrap();
            assert!(
                matches!(KeyFile::load(&path), Err(Error::KeyFileFormat { .. })),
                "{text}"
            );
        }
        let ikm = "11".repeat(32);
        std::fs::write(
            &path,
            format!(
                r#"{{"version":1,"keys":[{{"id":1,"ikm":"{ikm}","not_before":0,"expires":null}},{{"id":1,"ikm":"{ikm}","not_before":0,"expires":null}}]}}"#
            ),
        )
        .unwrap();
        assert!(matches!(
            KeyFile::load(&path),
            Err(Error::KeyFileFormat { .. })
        ));
    }

    #[test]
    fn manager_sees_rotation_made_by_another_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let mgr = KeyManager::open(&path, at(T0)).unwrap();
        let before = mgr.ring().ids().to_vec();
        // Another process (the CLI) rotates the file.
        std::thread::sleep(Duration::from_millis(20));
        let mut file = KeyFile::load(&path).unwrap();
        let new = file
            .rotate(
                at(T0 + 1),
                RotationPolicy {
                    publish_ahead: Duration::ZERO,
                    ..POLICY
                },
            )
            .unwrap();
        file.save(&path).unwrap();
        mgr.refresh(at(T0 + 2), None, POLICY).unwrap();
        let after = mgr.ring().ids().to_vec();
        assert_eq!(after, [new, before[0]]);
    }

    #[test]
    fn automatic_rotation_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let mgr = KeyManager::open(&path, at(T0)).unwrap();
        mgr.refresh(at(T0 + 50), Some(Duration::from_secs(60)), POLICY)
            .unwrap();
        assert_eq!(mgr.ring().ids().len(), 1);
        mgr.refresh(at(T0 + 60), Some(Duration::from_secs(60)), POLICY)
            .unwrap();
        assert_eq!(mgr.ring().ids().len(), 2);
        assert_eq!(KeyFile::load(&path).unwrap().keys.len(), 2);
    }

    #[test]
    fn a_failed_save_changes_neither_the_file_nor_the_served_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let manager = KeyManager::open(&path, at(T0)).unwrap();
        let before_ids = manager.ring().ids().to_vec();
        let before_file = std::fs::read(&path).unwrap();
        // The temporary file's place is taken by a directory: the save fails.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::create_dir(&tmp).unwrap();
        assert!(manager.rotate(at(T0 + 10), POLICY).is_err());
        // Automatic rotation, due at every refresh: each fails, and no key
        // the file lacks is ever served (even once the new one would be current).
        for t in [T0 + 10_000, T0 + 10_200, T0 + 20_000] {
            assert!(
                manager
                    .refresh(at(t), Some(Duration::from_secs(1)), POLICY)
                    .is_err()
            );
            assert_eq!(manager.ring().ids(), before_ids, "served keys unchanged");
        }
        assert_eq!(std::fs::read(&path).unwrap(), before_file, "file unchanged");
        // Once the disk is usable again, rotation goes through, and what is
        // served is what the file holds.
        std::fs::remove_dir(&tmp).unwrap();
        let id = manager.rotate(at(T0 + 20), POLICY).unwrap();
        let on_disk = KeyFile::load(&path).unwrap();
        assert!(on_disk.keys.iter().any(|k| k.id == id));
        let ring = KeyRing::build(&on_disk, at(T0 + 20)).unwrap();
        assert_eq!(manager.ring().ids(), ring.ids());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        KeyFile::new(at(T0)).unwrap().save(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = KeyManager::open(&path, at(T0)).unwrap_err();
        assert!(err.to_string().contains("readable by others"), "{err}");
    }

    #[test]
    fn a_gateway_with_no_live_key_does_not_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let mut file = KeyFile::new(at(T0)).unwrap();
        for k in &mut file.keys {
            k.expires = Some(T0 + 1);
        }
        file.save(&path).unwrap();
        let err = KeyManager::open(&path, at(T0 + 100)).unwrap_err();
        assert!(err.to_string().contains("no key is live"), "{err}");
    }
}
