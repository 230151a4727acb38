//! The embedded discovery directory: which account an identifier maps to,
//! stored in SQLite, with the owner's consent as a per-entry flag.
//!
//! Schema (one table, created on open):
//!
//! ```sql
//! CREATE TABLE entries (search_type INTEGER, value TEXT, account TEXT,
//!                       searchable INTEGER, PRIMARY KEY (search_type, value, account))
//! ```
//!
//! `value` is the normalised identifier (DESIGN §2) and `account` a MIMI URI.
//! The database runs in WAL mode so that the admin CLI can write while the
//! gateway reads. Lookups use a small pool of connections, one per core,
//! each behind its own lock, so they run in parallel.

use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use mimi_proto::query::MAX_ACCOUNT_URI_LEN;
use mimi_proto::{Identifier, MimiUri, SearchIdentifierType};
use rusqlite::{Connection, OpenFlags, params};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The identifier, as typed (normalised on the way in).
    pub identifier: String,
    /// The account: `mimi://<domain>/u/<account>`.
    pub account: String,
    /// Whether the owner made this identifier searchable.
    #[serde(default = "yes")]
    pub searchable: bool,
}

fn yes() -> bool {
    true
}

/// The directory: a pool of connections to one SQLite file.
#[derive(Debug)]
pub struct Directory {
    pool: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

fn open_connection(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

impl Directory {
    /// Opens (creating if needed) the directory at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let first = open_connection(path)?;
        first.execute_batch(
            "CREATE TABLE IF NOT EXISTS entries (
                 search_type INTEGER NOT NULL,
                 value TEXT NOT NULL,
                 account TEXT NOT NULL,
                 searchable INTEGER NOT NULL DEFAULT 1,
                 PRIMARY KEY (search_type, value, account)
             ) WITHOUT ROWID;",
        )?;
        let size = std::thread::available_parallelism()
            .map_or(2, usize::from)
            .clamp(1, 16);
        let mut pool = vec![Mutex::new(first)];
        for _ in 1..size {
            pool.push(Mutex::new(open_connection(path)?));
        }
        Ok(Self {
            pool,
            next: AtomicUsize::new(0),
        })
    }

    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        // Take a free connection if there is one; otherwise wait on one in turn.
        for conn in &self.pool {
            if let Ok(mut c) = conn.try_lock() {
                return f(&mut c);
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len();
        let mut c = self.pool[i].lock().unwrap_or_else(|p| p.into_inner());
        f(&mut c)
    }

    /// The searchable accounts for a normalised identifier, sorted.
    pub fn lookup(&self, search_type: SearchIdentifierType, value: &str) -> Result<Vec<String>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT account FROM entries WHERE search_type = ?1 AND value = ?2 AND searchable = 1 ORDER BY account",
            )?;
            let rows = stmt.query_map(params![search_type as u8, value], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
    }

    /// Adds or updates one entry.
    pub fn add(&self, entry: &Entry) -> Result<()> {
        let (id, account) = validate(entry)?;
        self.with_conn(|c| insert(c, &id, &account, entry.searchable))
    }

    /// Removes an identifier's entries (all of them, or only `account`'s).
    /// Returns how many were removed.
    pub fn remove(&self, identifier: &str, account: Option<&str>) -> Result<usize> {
        let id = Identifier::parse(identifier).map_err(|e| Error::InvalidEntry(e.to_string()))?;
        self.with_conn(|c| {
            let n = match account {
                Some(a) => c.execute(
                    "DELETE FROM entries WHERE search_type = ?1 AND value = ?2 AND account = ?3",
                    params![id.search_type() as u8, id.to_string(), a],
                )?,
                None => c.execute(
                    "DELETE FROM entries WHERE search_type = ?1 AND value = ?2",
                    params![id.search_type() as u8, id.to_string()],
                )?,
            };
            Ok(n)
        })
    }

    /// Every entry, sorted by identifier and account.
    /// How many entries there are.
    pub fn count(&self) -> Result<usize> {
        self.with_conn(|c| {
            let n: i64 = c.query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0))?;
            Ok(usize::try_from(n).unwrap_or(0))
        })
    }

    pub fn list(&self) -> Result<Vec<Entry>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare(
                "SELECT value, account, searchable FROM entries ORDER BY value, account",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(Entry {
                    identifier: r.get(0)?,
                    account: r.get(1)?,
                    searchable: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Imports entries all-or-nothing: one bad entry and nothing is written.
    /// Returns how many were imported.
    pub fn import(&self, entries: &[Entry]) -> Result<usize> {
        let mut valid = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let (id, account) = validate(e)
                .map_err(|err| Error::InvalidEntry(format!("entry {}: {err}", i + 1)))?;
            valid.push((id, account, e.searchable));
        }
        self.with_conn(|c| {
            let tx = c.transaction()?;
            for (id, account, searchable) in &valid {
                insert(&tx, id, account, *searchable)?;
            }
            tx.commit()?;
            Ok(valid.len())
        })
    }
}

fn validate(entry: &Entry) -> Result<(Identifier, MimiUri)> {
    let id = Identifier::parse(&entry.identifier)
        .map_err(|e| Error::InvalidEntry(format!("identifier: {e}")))?;
    let account =
        MimiUri::parse(&entry.account).map_err(|e| Error::InvalidEntry(format!("account: {e}")))?;
    if account.to_string().len() > MAX_ACCOUNT_URI_LEN {
        return Err(Error::InvalidEntry(format!(
            "account: longer than {MAX_ACCOUNT_URI_LEN} octets"
        )));
    }
    Ok((id, account))
}

fn insert(c: &Connection, id: &Identifier, account: &MimiUri, searchable: bool) -> Result<()> {
    c.execute(
        "INSERT INTO entries (search_type, value, account, searchable) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (search_type, value, account) DO UPDATE SET searchable = excluded.searchable",
        params![
            id.search_type() as u8,
            id.to_string(),
            account.to_string(),
            searchable
        ],
    )?;
    Ok(())
}

/// Parses entries from CSV: `identifier,account[,searchable]`, an optional
/// header row starting with `identifier`, `searchable` one of
/// `true/false/yes/no/1/0` (default true).
pub fn parse_csv(input: impl Read) -> Result<Vec<Entry>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 1;
        let record = record.map_err(|e| Error::InvalidEntry(format!("line {line}: {e}")))?;
        if i == 0
            && record
                .get(0)
                .is_some_and(|f| f.eq_ignore_ascii_case("identifier"))
        {
            continue;
        }
        let field = |n: usize| record.get(n).filter(|f| !f.is_empty());
        let (Some(identifier), Some(account)) = (field(0), field(1)) else {
            return Err(Error::InvalidEntry(format!(
                "line {line}: needs identifier,account"
            )));
        };
        if record.len() > 3 {
            return Err(Error::InvalidEntry(format!("line {line}: too many fields")));
        }
        let searchable = match field(2).map(str::to_ascii_lowercase).as_deref() {
            None | Some("true" | "yes" | "1") => true,
            Some("false" | "no" | "0") => false,
            Some(other) => {
                return Err(Error::InvalidEntry(format!(
                    "line {line}: searchable must be true or false, not {other:?}"
                )));
            }
        };
        out.push(Entry {
            identifier: identifier.to_owned(),
            account: account.to_owned(),
            searchable,
        });
    }
    Ok(out)
}

/// Parses entries from JSON: an array of
/// `{"identifier": …, "account": …, "searchable": true}`.
pub fn parse_json(input: impl Read) -> Result<Vec<Entry>> {
    serde_json::from_reader(input).map_err(|e| Error::InvalidEntry(format!("JSON: {e}")))
}

/// Writes entries as CSV with a header line, the form [`parse_csv`] reads.
pub fn write_csv(entries: &[Entry], output: impl std::io::Write) -> Result<()> {
    let mut writer = csv::Writer::from_writer(output);
    let failed = |e: csv::Error| Error::Io(std::io::Error::other(e.to_string()));
    writer
        .write_record(["identifier", "account", "searchable"])
        .map_err(failed)?;
    for e in entries {
        let searchable = if e.searchable { "true" } else { "false" };
        writer
            .write_record([e.identifier.as_str(), e.account.as_str(), searchable])
            .map_err(failed)?;
    }
    writer.flush().map_err(Error::Io)
}

/// Writes entries as the JSON array [`parse_json`] reads.
pub fn write_json(entries: &[Entry], mut output: impl std::io::Write) -> Result<()> {
    serde_json::to_writer_pretty(&mut output, entries)
        .map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
    output.write_all(b"\n").map_err(Error::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_round_trips_through_import_in_both_formats() {
        let (_t, d) = open();
        d.add(&entry(
            "alice.example.com",
            "mimi://p.example/u/alice",
            true,
        ))
        .unwrap();
        d.add(&entry("Bob@Example.com", "mimi://p.example/u/b,ob", false))
            .unwrap();
        d.add(&entry("+1 555 123 4567", "mimi://p.example/u/phone", true))
            .unwrap();
        let listed = d.list().unwrap();
        let mut csv_out = Vec::new();
        write_csv(&listed, &mut csv_out).unwrap();
        assert_eq!(parse_csv(&csv_out[..]).unwrap(), listed);
        let mut json_out = Vec::new();
        write_json(&listed, &mut json_out).unwrap();
        assert_eq!(parse_json(&json_out[..]).unwrap(), listed);
        // And into a fresh directory: the same entries.
        let (_u, fresh) = open();
        fresh.import(&parse_csv(&csv_out[..]).unwrap()).unwrap();
        assert_eq!(fresh.list().unwrap(), listed);
    }

    fn entry(id: &str, account: &str, searchable: bool) -> Entry {
        Entry {
            identifier: id.into(),
            account: account.into(),
            searchable,
        }
    }

    fn open() -> (tempfile::TempDir, Directory) {
        let dir = tempfile::tempdir().unwrap();
        let d = Directory::open(&dir.path().join("dir.sqlite")).unwrap();
        (dir, d)
    }

    #[test]
    fn lookup_honours_consent_and_normalises() {
        let (_t, d) = open();
        d.add(&entry(
            "Alice.Example.com",
            "mimi://p.example/u/alice",
            true,
        ))
        .unwrap();
        d.add(&entry("bob.example.com", "mimi://p.example/u/bob", false))
            .unwrap();
        d.add(&entry("+1 555 123 4567", "mimi://p.example/u/alice", true))
            .unwrap();
        assert_eq!(
            d.lookup(SearchIdentifierType::Handle, "alice.example.com")
                .unwrap(),
            ["mimi://p.example/u/alice"]
        );
        assert!(
            d.lookup(SearchIdentifierType::Handle, "bob.example.com")
                .unwrap()
                .is_empty()
        );
        assert!(
            d.lookup(SearchIdentifierType::Handle, "carol.example.com")
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            d.lookup(SearchIdentifierType::Phone, "+15551234567")
                .unwrap()
                .len(),
            1
        );
        // Same value, other type: not found.
        assert!(
            d.lookup(SearchIdentifierType::Email, "alice.example.com")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn add_updates_consent_and_remove_deletes() {
        let (_t, d) = open();
        d.add(&entry(
            "alice.example.com",
            "mimi://p.example/u/alice",
            true,
        ))
        .unwrap();
        d.add(&entry(
            "alice.example.com",
            "mimi://p.example/u/alice",
            false,
        ))
        .unwrap();
        assert_eq!(d.list().unwrap().len(), 1);
        assert!(
            d.lookup(SearchIdentifierType::Handle, "alice.example.com")
                .unwrap()
                .is_empty()
        );
        assert_eq!(d.remove("alice.example.com", None).unwrap(), 1);
        assert!(d.list().unwrap().is_empty());
    }

    #[test]
    fn invalid_entries_are_refused() {
        let (_t, d) = open();
        assert!(matches!(
            d.add(&entry("alice", "mimi://p.example/u/a", true)),
            Err(Error::InvalidEntry(_))
        ));
        assert!(matches!(
            d.add(&entry("a.example", "alice", true)),
            Err(Error::InvalidEntry(_))
        ));
    }

    #[test]
    fn import_is_all_or_nothing() {
        let (_t, d) = open();
        let bad = [
            entry("a.example.com", "mimi://p.example/u/a", true),
            entry("bad", "x", true),
        ];
        assert!(matches!(d.import(&bad), Err(Error::InvalidEntry(m)) if m.starts_with("entry 2")));
        assert!(d.list().unwrap().is_empty());
        let good = [
            entry("a.example.com", "mimi://p.example/u/a", true),
            entry("b@example.com", "mimi://p.example/u/b", false),
        ];
        assert_eq!(d.import(&good).unwrap(), 2);
        assert_eq!(d.list().unwrap().len(), 2);
    }

    #[test]
    fn csv_and_json_formats() {
        let csv = "identifier,account,searchable\nalice.example.com, mimi://p.example/u/alice\n+15551234567,mimi://p.example/u/alice,no\n";
        let entries = parse_csv(csv.as_bytes()).unwrap();
        assert_eq!(
            entries,
            [
                entry("alice.example.com", "mimi://p.example/u/alice", true),
                entry("+15551234567", "mimi://p.example/u/alice", false)
            ]
        );
        assert!(
            matches!(parse_csv("a.example.com\n".as_bytes()), Err(Error::InvalidEntry(m)) if m.contains("line 1"))
        );
        assert!(matches!(
            parse_csv("a.example.com,mimi://p.example/u/a,maybe\n".as_bytes()),
            Err(Error::InvalidEntry(_))
        ));
        assert!(matches!(
            parse_csv("a,b,true,extra\n".as_bytes()),
            Err(Error::InvalidEntry(_))
        ));
        let json = r#"[{"identifier":"alice@example.com","account":"mimi://p.example/u/alice"}]"#;
        assert_eq!(
            parse_json(json.as_bytes()).unwrap(),
            [entry("alice@example.com", "mimi://p.example/u/alice", true)]
        );
        assert!(matches!(
            parse_json(r#"[{"identifier":"a"}]"#.as_bytes()),
            Err(Error::InvalidEntry(_))
        ));
    }

    #[test]
    fn a_second_handle_sees_writes() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("dir.sqlite");
        let server = Directory::open(&path).unwrap();
        let admin = Directory::open(&path).unwrap();
        admin
            .add(&entry(
                "alice.example.com",
                "mimi://p.example/u/alice",
                true,
            ))
            .unwrap();
        assert_eq!(
            server
                .lookup(SearchIdentifierType::Handle, "alice.example.com")
                .unwrap()
                .len(),
            1
        );
    }
}
