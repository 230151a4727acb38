//! The issuer's token keys: a JSON file (mode 0600, the same on every
//! replica) of PKCS#8 keys, each with when it is published for use and
//! when it stops verifying, and the ring built from it that requests read
//! without a lock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use mimi_proto::privacypass::header::b64url;
use mimi_proto::privacypass::{
    ISSUER_REQUEST_PATH, IssuerDirectory, IssuerKey, TOKEN_TYPE_BLIND_RSA, TokenKey, TokenKeyEntry,
};
use serde::{Deserialize, Serialize};

use crate::clock::unix;
use crate::error::{Error, Result};
use crate::private_files::{read_private_json, write_private};
use crate::secret::Password;

/// One key as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredTokenKey {
    /// The private key, PKCS#8 PEM.
    pub key: RedactedPem,
    /// When clients may start using it (Unix seconds).
    pub not_before: u64,
    /// When tokens under it stop verifying (Unix seconds); none while current.
    pub expires: Option<u64>,
}

/// PEM text, redacted in `Debug` and wiped on drop.
#[derive(Clone)]
pub struct RedactedPem(Password);

impl std::fmt::Debug for RedactedPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for RedactedPem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.0.expose())
    }
}

impl<'de> Deserialize<'de> for RedactedPem {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d).map(|s| Self(Password(zeroize::Zeroizing::new(s))))
    }
}

/// The token key file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenKeyFile {
    /// Format version: 1.
    pub version: u32,
    /// The keys.
    pub keys: Vec<StoredTokenKey>,
}

fn fresh(not_before: u64) -> Result<StoredTokenKey> {
    let key = IssuerKey::generate().map_err(|_| Error::Internal)?;
    let pem = key.to_pem().map_err(|_| Error::Internal)?;
    Ok(StoredTokenKey {
        key: RedactedPem(Password(pem)),
        not_before,
        expires: None,
    })
}

impl TokenKeyFile {
    /// A file with one fresh key, usable from `now`.
    pub fn new(now: SystemTime) -> Result<Self> {
        Ok(Self {
            version: 1,
            keys: vec![fresh(unix(now))?],
        })
    }

    /// Adds a key published `publish_ahead` from now; the keys it replaces
    /// verify for `grace` after it becomes current. Drops expired keys.
    pub fn rotate(
        &mut self,
        now: SystemTime,
        publish_ahead: Duration,
        grace: Duration,
    ) -> Result<()> {
        let now = unix(now);
        self.keys.retain(|k| k.expires.is_none_or(|e| e > now));
        let not_before = now + publish_ahead.as_secs();
        for k in &mut self.keys {
            if k.expires.is_none() {
                k.expires = Some(not_before + grace.as_secs());
            }
        }
        // A token request names its key by the last byte of its id (RFC
        // 9578 §6.1): a new key must not share it with a key still in use.
        let in_use: Vec<u8> = self
            .keys
            .iter()
            .filter_map(|k| IssuerKey::from_pem(k.key.0.expose()).ok())
            .map(|k| k.public().truncated_id())
            .collect();
        loop {
            let key = fresh(not_before)?;
            let id = IssuerKey::from_pem(key.key.0.expose())
                .map_err(|_| Error::Internal)?
                .public()
                .truncated_id();
            if !in_use.contains(&id) {
                self.keys.push(key);
                return Ok(());
            }
        }
    }

    /// Reads and checks a file (refused if others can read it).
    pub fn load(path: &Path) -> Result<Self> {
        let file: Self = read_private_json(path)?;
        let bad = |reason: String| Error::KeyFileFormat {
            path: path.display().to_string(),
            reason,
        };
        if file.version != 1 {
            return Err(bad(format!("unknown version {}", file.version)));
        }
        for (i, k) in file.keys.iter().enumerate() {
            IssuerKey::from_pem(k.key.0.expose())
                .map_err(|_| bad(format!("token key {i} is not a 2048-bit RSA key")))?;
        }
        Ok(file)
    }

    /// Loads the file, or creates it with one fresh key.
    pub fn load_or_create(path: &Path, now: SystemTime) -> Result<Self> {
        if path.exists() {
            return Self::load(path);
        }
        let file = Self::new(now)?;
        file.save(path)?;
        Ok(file)
    }

    /// Writes the file atomically with mode 0600.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(|_| Error::Internal)?;
        write_private(path, &json)
    }
}

/// One usable key in the ring.
pub struct RingKey {
    /// The key.
    pub key: IssuerKey,
    /// When it becomes current.
    pub not_before: u64,
    /// When it stops verifying.
    pub expires: Option<u64>,
}

/// The keys in force, and the directory document that lists them.
pub struct TokenRing {
    keys: Vec<RingKey>,
    directory: Vec<u8>,
}

impl TokenRing {
    /// The ring `file` gives at `now` (for the `tokens show` command).
    pub fn build_for(file: &TokenKeyFile, public_host: &str, now: SystemTime) -> Result<Self> {
        Self::build(file, public_host, unix(now))
    }

    fn build(file: &TokenKeyFile, public_host: &str, now: u64) -> Result<Self> {
        let mut keys = Vec::new();
        for k in &file.keys {
            if k.expires.is_some_and(|e| e <= now) {
                continue;
            }
            let key = IssuerKey::from_pem(k.key.0.expose()).map_err(|_| Error::Internal)?;
            keys.push(RingKey {
                key,
                not_before: k.not_before,
                expires: k.expires,
            });
        }
        keys.sort_by_key(|k| std::cmp::Reverse(k.not_before));
        let directory = IssuerDirectory {
            issuer_request_uri: format!("https://{public_host}{ISSUER_REQUEST_PATH}"),
            token_keys: keys
                .iter()
                .map(|k| TokenKeyEntry {
                    token_type: TOKEN_TYPE_BLIND_RSA,
                    token_key: b64url(k.key.public().spki()),
                    not_before: Some(k.not_before),
                })
                .collect(),
        }
        .to_json();
        Ok(Self { keys, directory })
    }

    /// The issuer directory document.
    pub fn directory(&self) -> &[u8] {
        &self.directory
    }

    /// The key tokens are issued under at `now`: the newest current one.
    pub fn current(&self, now: u64) -> Option<&RingKey> {
        self.keys.iter().find(|k| k.not_before <= now)
    }

    /// The key whose truncated id is `truncated` (for issuance; published
    /// keys only).
    pub fn by_truncated_id(&self, truncated: u8) -> Option<&RingKey> {
        self.keys
            .iter()
            .find(|k| k.key.public().truncated_id() == truncated)
    }

    /// The key a token names, if it still verifies.
    pub fn by_id(&self, id: &[u8; 32]) -> Option<&RingKey> {
        self.keys.iter().find(|k| k.key.public().id() == id)
    }

    /// The public key of [`TokenRing::current`], for challenges.
    pub fn current_public(&self, now: u64) -> Option<&TokenKey> {
        self.current(now).map(|k| k.key.public())
    }
}

/// The key file and its ring, refreshed when the file changes.
pub struct TokenKeys {
    path: PathBuf,
    public_host: String,
    ring: ArcSwap<TokenRing>,
    mtime: std::sync::Mutex<Option<SystemTime>>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl TokenKeys {
    /// Opens (or creates) the key file.
    pub fn open(path: &Path, public_host: &str, now: SystemTime) -> Result<Self> {
        let file = TokenKeyFile::load_or_create(path, now)?;
        let ring = TokenRing::build(&file, public_host, unix(now))?;
        Ok(Self {
            path: path.to_owned(),
            public_host: public_host.to_owned(),
            ring: ArcSwap::from_pointee(ring),
            mtime: std::sync::Mutex::new(mtime(path)),
        })
    }

    /// The ring in force.
    pub fn ring(&self) -> arc_swap::Guard<Arc<TokenRing>> {
        self.ring.load()
    }

    /// Re-reads the file if it changed, and drops keys that expired.
    ///
    /// Returns whether a key stopped verifying (its spent tokens can go).
    pub fn refresh(&self, now: SystemTime) -> Result<bool> {
        let mut seen = self.mtime.lock().unwrap_or_else(|p| p.into_inner());
        let on_disk = mtime(&self.path);
        let expired = self
            .ring()
            .keys
            .iter()
            .any(|k| k.expires.is_some_and(|e| e <= unix(now)));
        if on_disk == *seen && !expired {
            return Ok(false);
        }
        let file = TokenKeyFile::load(&self.path)?;
        if on_disk != *seen {
            tracing::info!("token key file changed on disk; reloaded");
            *seen = on_disk;
        }
        self.ring.store(Arc::new(TokenRing::build(
            &file,
            &self.public_host,
            unix(now),
        )?));
        Ok(expired)
    }
}
