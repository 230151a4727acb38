//! Spent tokens, remembered for as long as their key verifies: a token
//! spent once is refused ever after, across restarts (SQLite, one gateway)
//! and across replicas (Redis, one atomic set-if-absent).

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::replay::RedisReplay;

/// Where spent tokens are kept.
pub enum SpentStore {
    /// An SQLite file.
    Sqlite(Arc<Mutex<rusqlite::Connection>>),
    /// The `[replay]` Redis.
    Redis(Arc<RedisReplay>),
}

impl std::fmt::Debug for SpentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sqlite(_) => "SpentStore::Sqlite",
            Self::Redis(_) => "SpentStore::Redis",
        })
    }
}

impl SpentStore {
    /// Opens (or creates) the SQLite file. WAL with `synchronous = NORMAL`:
    /// a spend survives a crash or kill of the process; an operating-system
    /// crash may lose the last moments' (docs/decisions.md).
    pub fn sqlite(path: &Path) -> Result<Self> {
        let conn = rusqlite::Connection::open(path).map_err(Error::Database)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS spent_tokens (
                 id BLOB PRIMARY KEY, expires INTEGER NOT NULL) WITHOUT ROWID;",
        )
        .map_err(Error::Database)?;
        Ok(Self::Sqlite(Arc::new(Mutex::new(conn))))
    }

    /// Records `id` (the token's key id and nonce) as spent until `expires`
    /// (Unix seconds): `Ok(true)` the first time, `Ok(false)` after.
    pub async fn spend(&self, id: [u8; 64], expires: u64, now: u64) -> Result<bool> {
        match self {
            Self::Sqlite(conn) => {
                let conn = conn.clone();
                tokio::task::spawn_blocking(move || {
                    let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                    let n = conn
                        .prepare_cached(
                            "INSERT OR IGNORE INTO spent_tokens (id, expires) VALUES (?1, ?2)",
                        )
                        .and_then(|mut insert| {
                            insert.execute(rusqlite::params![
                                &id[..],
                                i64::try_from(expires).unwrap_or(i64::MAX)
                            ])
                        })
                        .map_err(Error::Database)?;
                    // Expired entries go when their key does
                    // (`forget_expired`): no index to keep up per spend.
                    let _ = now;
                    Ok(n == 1)
                })
                .await
                .map_err(|_| Error::Internal)?
            }
            Self::Redis(redis) => {
                let ttl = expires.saturating_sub(now).max(1);
                redis.claim(b"spent:", &id, ttl).await
            }
        }
    }

    /// Drops the entries of keys that stopped verifying before `now`.
    pub fn forget_expired(&self, now: u64) -> Result<()> {
        match self {
            Self::Sqlite(conn) => {
                let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                conn.execute(
                    "DELETE FROM spent_tokens WHERE expires < ?1",
                    [i64::try_from(now).unwrap_or(i64::MAX)],
                )
                .map_err(Error::Database)?;
                Ok(())
            }
            // Each entry was set with its key's remaining lifetime.
            Self::Redis(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spent_once_until_the_key_expires_then_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let store = SpentStore::sqlite(&dir.path().join("spent.sqlite")).unwrap();
        let (old, live) = ([1u8; 64], [2u8; 64]);
        assert!(store.spend(old, 100, 50).await.unwrap());
        assert!(store.spend(live, 1_000, 50).await.unwrap());
        assert!(!store.spend(old, 100, 60).await.unwrap(), "spent twice");
        store.forget_expired(500).unwrap();
        // The live key's token is still spent; the expired key's entry went
        // (its key no longer verifies, so it could not be presented).
        assert!(!store.spend(live, 1_000, 600).await.unwrap());
        assert!(store.spend(old, 100, 600).await.unwrap());
        // Reopened (a restart): still spent.
        drop(store);
        let again = SpentStore::sqlite(&dir.path().join("spent.sqlite")).unwrap();
        assert!(!again.spend(live, 1_000, 700).await.unwrap());
    }
}
