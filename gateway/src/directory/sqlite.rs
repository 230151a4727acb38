//! The embedded directory: one SQLite file in WAL mode, so that the admin
//! CLI can write while the gateway reads.
//!
//! Connections come from an `r2d2` pool. A lookup (an indexed read of a few
//! pages, microseconds from the page cache) runs in place on the task's
//! thread: handing it to a blocking thread and back cost more than the read
//! itself (docs/decisions.md, "SQLite lookups in place"). Writes, imports and
//! listings, which can take long, run on tokio's blocking threads. The
//! schema's version is SQLite's `user_version`.

use std::path::Path;
use std::time::Duration;

use mimi_proto::SearchIdentifierType;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags, params};

use super::{Entry, Found, Valid, assertion_text};
use crate::error::{Error, Result};

fn lookup_with(
    c: &mut Connection,
    search_type: SearchIdentifierType,
    value: &str,
) -> Result<Vec<Found>> {
    let mut stmt = c.prepare_cached(
        "SELECT account, assertion FROM entries WHERE search_type = ?1 AND value = ?2 AND searchable = 1 ORDER BY account",
    )?;
    let rows = stmt.query_map(params![search_type as u8, value], |r| {
        Ok(Found {
            account: r.get(0)?,
            assertion: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<Found>>>()?)
}

/// The table every release before signed mappings created.
pub(super) const MIGRATION_1: &str = "CREATE TABLE IF NOT EXISTS entries (
         search_type INTEGER NOT NULL,
         value TEXT NOT NULL,
         account TEXT NOT NULL,
         searchable INTEGER NOT NULL DEFAULT 1,
         PRIMARY KEY (search_type, value, account)
     ) WITHOUT ROWID;";

/// Migrations in order; entry `i` takes the schema from version `i` to `i + 1`.
/// Version 1 is the table every earlier release created without a version,
/// hence `IF NOT EXISTS`.
const MIGRATIONS: &[&str] = &[
    MIGRATION_1,
    // Signed mappings (DESIGN §11): the COSE_Sign1 bytes, or NULL.
    "ALTER TABLE entries ADD COLUMN assertion BLOB;",
];

/// A pool of connections to one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: r2d2::Pool<SqliteConnectionManager>,
}

fn pool_error(e: r2d2::Error) -> Error {
    Error::DirectoryUnavailable(format!("SQLite pool: {e}"))
}

impl SqliteStore {
    /// Opens (creating if needed) the file at `path` and migrates its schema.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let manager = SqliteConnectionManager::file(path)
            .with_flags(
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .with_init(|c| {
                c.busy_timeout(Duration::from_secs(5))?;
                c.pragma_update(None, "journal_mode", "WAL")?;
                c.pragma_update(None, "synchronous", "NORMAL")
            });
        let size = std::thread::available_parallelism()
            .map_or(2, usize::from)
            .clamp(2, 16);
        let pool = r2d2::Pool::builder()
            .max_size(u32::try_from(size).unwrap_or(16))
            .min_idle(Some(1))
            // A connection to a local file does not go stale; checking each
            // one out with a query would double the cost of a lookup.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(5))
            .build(manager)
            .map_err(pool_error)?;
        let mut conn = pool.get().map_err(pool_error)?;
        migrate(&mut conn)?;
        Ok(Self { pool })
    }

    /// Runs `f` with a connection on a blocking thread.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(pool_error)?;
            f(&mut conn)
        })
        .await
        .map_err(|_| Error::Internal)?
    }

    pub(super) async fn lookup(
        &self,
        search_type: SearchIdentifierType,
        value: &str,
    ) -> Result<Vec<Found>> {
        // In place when a connection is idle; when every connection is busy
        // (a long import holding some), wait for one on a blocking thread.
        if let Some(mut conn) = self.pool.try_get() {
            return lookup_with(&mut conn, search_type, value);
        }
        let value = value.to_owned();
        self.run(move |c| lookup_with(c, search_type, &value)).await
    }

    pub(super) async fn upsert(&self, entries: Vec<Valid>) -> Result<usize> {
        self.run(move |c| {
            let tx = c.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO entries (search_type, value, account, searchable, assertion) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (search_type, value, account)
                     DO UPDATE SET searchable = excluded.searchable, assertion = excluded.assertion",
                )?;
                for e in &entries {
                    stmt.execute(params![
                        e.search_type as u8,
                        e.value,
                        e.account,
                        e.searchable,
                        e.assertion
                    ])?;
                }
            }
            tx.commit()?;
            Ok(entries.len())
        })
        .await
    }

    pub(super) async fn remove(
        &self,
        search_type: SearchIdentifierType,
        value: String,
        account: Option<String>,
    ) -> Result<usize> {
        self.run(move |c| {
            Ok(match account {
                Some(a) => c.execute(
                    "DELETE FROM entries WHERE search_type = ?1 AND value = ?2 AND account = ?3",
                    params![search_type as u8, value, a],
                )?,
                None => c.execute(
                    "DELETE FROM entries WHERE search_type = ?1 AND value = ?2",
                    params![search_type as u8, value],
                )?,
            })
        })
        .await
    }

    pub(super) async fn count(&self) -> Result<usize> {
        self.run(|c| {
            let n: i64 = c.query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0))?;
            Ok(usize::try_from(n).unwrap_or(0))
        })
        .await
    }

    pub(super) async fn list(&self) -> Result<Vec<Entry>> {
        self.run(|c| {
            let mut stmt = c.prepare(
                "SELECT value, account, searchable, assertion FROM entries ORDER BY value, account, search_type",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(Entry {
                    identifier: r.get(0)?,
                    account: r.get(1)?,
                    searchable: r.get(2)?,
                    assertion: r.get::<_, Option<Vec<u8>>>(3)?.map(|a| assertion_text(&a)),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > MIGRATIONS.len() {
        return Err(Error::Config(format!(
            "the directory's schema is version {version}, newer than this gateway knows ({}): upgrade the gateway",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
    }
    tx.commit()?;
    Ok(())
}
