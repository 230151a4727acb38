//! The discovery directory: which account an identifier maps to, with the
//! owner's consent as a per-entry flag. Two stores behind one interface:
//! an embedded SQLite file (the default, [`sqlite`]) and PostgreSQL shared by
//! every gateway replica ([`postgres`]).
//!
//! Each entry is `(search_type, value, account, searchable, assertion)`:
//! `value` is the normalised identifier (DESIGN §2), `account` a MIMI URI,
//! `assertion` the mapping signed by a mapping authority (DESIGN §11), if
//! any; the key is the first three. The gateway serves assertions it did not
//! sign: it checks that one decodes and names its entry's identifier and
//! account, not who signed it (clients verify that).

pub mod postgres;
pub mod settings;
pub mod sqlite;

use std::io::Read;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mimi_proto::mapping::Assertion;
use mimi_proto::query::MAX_ACCOUNT_URI_LEN;
use mimi_proto::{Identifier, MimiUri, SearchIdentifierType};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use settings::{DirectorySection, DirectoryStore};

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
    /// The mapping signed by a mapping authority (DESIGN §11): a COSE_Sign1
    /// in base64url without padding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion: Option<String>,
}

impl Entry {
    /// An entry without an assertion.
    pub fn new(identifier: &str, account: &str, searchable: bool) -> Self {
        Self {
            identifier: identifier.to_owned(),
            account: account.to_owned(),
            searchable,
            assertion: None,
        }
    }
}

/// A searchable account found for an identifier, with its signed mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The account URI.
    pub account: String,
    /// The assertion's bytes, if the directory holds one.
    pub assertion: Option<Vec<u8>>,
}

fn yes() -> bool {
    true
}

/// An entry checked and normalised, as the stores write it.
#[derive(Debug, Clone)]
pub(crate) struct Valid {
    search_type: SearchIdentifierType,
    value: String,
    account: String,
    searchable: bool,
    assertion: Option<Vec<u8>>,
}

/// The directory, in whichever store the configuration names.
#[derive(Debug)]
#[non_exhaustive]
pub enum Directory {
    /// The embedded SQLite file.
    Sqlite(sqlite::SqliteStore),
    /// PostgreSQL, shared by replicas.
    Postgres(postgres::PostgresStore),
}

impl Directory {
    /// Opens (creating if needed) an embedded directory at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self::Sqlite(sqlite::SqliteStore::open(path)?))
    }

    /// Opens the store `[directory]` names, migrating its schema.
    pub async fn connect(section: &DirectorySection) -> Result<Self> {
        match section.store {
            DirectoryStore::Sqlite => Self::open(&section.database),
            DirectoryStore::Postgres => Ok(Self::Postgres(
                postgres::PostgresStore::connect(section).await?,
            )),
        }
    }

    /// Which store this is, for logs and `check`.
    pub fn store_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// The searchable accounts for a normalised identifier, sorted, each
    /// with its assertion.
    pub async fn lookup(
        &self,
        search_type: SearchIdentifierType,
        value: &str,
    ) -> Result<Vec<Found>> {
        match self {
            Self::Sqlite(s) => s.lookup(search_type, value).await,
            Self::Postgres(p) => p.lookup(search_type, value).await,
        }
    }

    /// Adds or updates one entry.
    pub async fn add(&self, entry: &Entry) -> Result<()> {
        let valid = validate(entry)?;
        self.upsert(vec![valid]).await.map(|_| ())
    }

    async fn upsert(&self, entries: Vec<Valid>) -> Result<usize> {
        match self {
            Self::Sqlite(s) => s.upsert(entries).await,
            Self::Postgres(p) => p.upsert(entries).await,
        }
    }

    /// Removes an identifier's entries (all of them, or only `account`'s).
    /// Returns how many were removed.
    pub async fn remove(&self, identifier: &str, account: Option<&str>) -> Result<usize> {
        let id = Identifier::parse(identifier).map_err(|e| Error::InvalidEntry(e.to_string()))?;
        let (search_type, value) = (id.search_type(), id.to_string());
        match self {
            Self::Sqlite(s) => {
                s.remove(search_type, value, account.map(str::to_owned))
                    .await
            }
            Self::Postgres(p) => p.remove(search_type, &value, account).await,
        }
    }

    /// How many entries there are.
    pub async fn count(&self) -> Result<usize> {
        match self {
            Self::Sqlite(s) => s.count().await,
            Self::Postgres(p) => p.count().await,
        }
    }

    /// Every entry, sorted by identifier and account (byte order).
    pub async fn list(&self) -> Result<Vec<Entry>> {
        match self {
            Self::Sqlite(s) => s.list().await,
            Self::Postgres(p) => p.list().await,
        }
    }

    /// Imports entries all-or-nothing: one bad entry and nothing is written.
    /// Returns how many were imported.
    pub async fn import(&self, entries: &[Entry]) -> Result<usize> {
        let mut valid = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            valid.push(
                validate(e)
                    .map_err(|err| Error::InvalidEntry(format!("entry {}: {err}", i + 1)))?,
            );
        }
        self.upsert(valid).await
    }
}

fn validate(entry: &Entry) -> Result<Valid> {
    let id = Identifier::parse(&entry.identifier)
        .map_err(|e| Error::InvalidEntry(format!("identifier: {e}")))?;
    let account =
        MimiUri::parse(&entry.account).map_err(|e| Error::InvalidEntry(format!("account: {e}")))?;
    let account = account.to_string();
    if account.len() > MAX_ACCOUNT_URI_LEN {
        return Err(Error::InvalidEntry(format!(
            "account: longer than {MAX_ACCOUNT_URI_LEN} octets"
        )));
    }
    let value = id.to_string();
    let assertion = match &entry.assertion {
        None => None,
        Some(text) => Some(check_assertion(text, &value, &account)?),
    };
    Ok(Valid {
        search_type: id.search_type(),
        value,
        account,
        searchable: entry.searchable,
        assertion,
    })
}

/// An entry's assertion must decode and vouch for that entry: a directory
/// that served one naming another identifier or account would only make
/// clients call its account invalid. Who signed it is the client's question.
fn check_assertion(text: &str, identifier: &str, account: &str) -> Result<Vec<u8>> {
    let bad = |why: String| Error::InvalidEntry(format!("assertion: {why}"));
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|_| bad("not base64url without padding".into()))?;
    let decoded = Assertion::decode(&bytes).map_err(|e| bad(e.to_string()))?;
    let mapping = &decoded.claims().mapping;
    if mapping.identifier != identifier {
        return Err(bad(format!(
            "signed for {}, not this identifier",
            mapping.identifier
        )));
    }
    if mapping.account != account {
        return Err(bad(format!(
            "signed for {}, not this account",
            mapping.account
        )));
    }
    Ok(bytes)
}

/// An assertion's bytes as entries carry them.
pub fn assertion_text(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The file formats entries are exported to and imported from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EntryFormat {
    /// `identifier,account[,searchable[,assertion]]`, with a header line.
    Csv,
    /// An array of entry objects.
    Json,
}

impl EntryFormat {
    /// The format a file's extension says (`.csv`, `.json`), if it says one.
    pub fn of_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "csv" => Some(Self::Csv),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

fn with_path(path: &Path, e: std::io::Error) -> Error {
    Error::Io(std::io::Error::new(
        e.kind(),
        format!("{}: {e}", path.display()),
    ))
}

/// Reads the entries of the file at `path`.
pub fn read_entries(path: &Path, format: EntryFormat) -> Result<Vec<Entry>> {
    let file = std::fs::File::open(path).map_err(|e| with_path(path, e))?;
    match format {
        EntryFormat::Csv => parse_csv(file),
        EntryFormat::Json => parse_json(file),
    }
}

/// Writes entries to the file at `path`, or to standard output.
pub fn write_entries(entries: &[Entry], format: EntryFormat, path: Option<&Path>) -> Result<()> {
    let sink: Box<dyn std::io::Write> = match path {
        Some(p) => Box::new(std::fs::File::create(p).map_err(|e| with_path(p, e))?),
        None => Box::new(std::io::stdout().lock()),
    };
    match format {
        EntryFormat::Csv => write_csv(entries, sink),
        EntryFormat::Json => write_json(entries, sink),
    }
}

/// Parses entries from CSV: `identifier,account[,searchable[,assertion]]`,
/// an optional header row starting with `identifier`, `searchable` one of
/// `true/false/yes/no/1/0` (default true), `assertion` base64url (empty:
/// none).
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
        if record.len() > 4 {
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
            assertion: field(3).map(str::to_owned),
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
/// The `assertion` column is written only when an entry has one, so that a
/// directory without signed mappings exports as it always did.
pub fn write_csv(entries: &[Entry], output: impl std::io::Write) -> Result<()> {
    let mut writer = csv::Writer::from_writer(output);
    let failed = |e: csv::Error| Error::Io(std::io::Error::other(e.to_string()));
    let signed = entries.iter().any(|e| e.assertion.is_some());
    let header: &[&str] = if signed {
        &["identifier", "account", "searchable", "assertion"]
    } else {
        &["identifier", "account", "searchable"]
    };
    writer.write_record(header).map_err(failed)?;
    for e in entries {
        let searchable = if e.searchable { "true" } else { "false" };
        let mut row = vec![e.identifier.as_str(), e.account.as_str(), searchable];
        if signed {
            row.push(e.assertion.as_deref().unwrap_or_default());
        }
        writer.write_record(&row).map_err(failed)?;
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

    #[tokio::test]
    async fn export_round_trips_through_import_in_both_formats() {
        let (_t, d) = open();
        fill(
            &d,
            &[
                ("alice.example.com", "mimi://p.example/u/alice", true),
                ("Bob@Example.com", "mimi://p.example/u/b,ob", false),
                ("+1 555 123 4567", "mimi://p.example/u/phone", true),
            ],
        )
        .await;
        let listed = d.list().await.unwrap();
        let csv_out = round_trips(&listed);
        // And into a fresh directory: the same entries.
        let (_u, fresh) = open();
        fresh
            .import(&parse_csv(&csv_out[..]).unwrap())
            .await
            .unwrap();
        assert_eq!(fresh.list().await.unwrap(), listed);
    }

    fn entry(id: &str, account: &str, searchable: bool) -> Entry {
        Entry::new(id, account, searchable)
    }

    /// Writes `listed` as CSV and JSON and reads each back unchanged;
    /// returns the CSV.
    fn round_trips(listed: &[Entry]) -> Vec<u8> {
        let mut csv_out = Vec::new();
        write_csv(listed, &mut csv_out).unwrap();
        assert_eq!(parse_csv(&csv_out[..]).unwrap(), listed);
        let mut json_out = Vec::new();
        write_json(listed, &mut json_out).unwrap();
        assert_eq!(parse_json(&json_out[..]).unwrap(), listed);
        csv_out
    }

    async fn fill(d: &Directory, entries: &[(&str, &str, bool)]) {
        for (id, account, searchable) in entries {
            d.add(&entry(id, account, *searchable)).await.unwrap();
        }
    }

    fn open() -> (tempfile::TempDir, Directory) {
        let dir = tempfile::tempdir().unwrap();
        let d = Directory::open(&dir.path().join("dir.sqlite")).unwrap();
        (dir, d)
    }

    #[tokio::test]
    async fn lookup_honours_consent_and_normalises() {
        let (_t, d) = open();
        fill(
            &d,
            &[
                ("Alice.Example.com", "mimi://p.example/u/alice", true),
                ("bob.example.com", "mimi://p.example/u/bob", false),
                ("+1 555 123 4567", "mimi://p.example/u/alice", true),
            ],
        )
        .await;
        assert_eq!(
            d.lookup(SearchIdentifierType::Handle, "alice.example.com")
                .await
                .unwrap(),
            [Found {
                account: "mimi://p.example/u/alice".into(),
                assertion: None
            }]
        );
        assert!(
            d.lookup(SearchIdentifierType::Handle, "bob.example.com")
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            d.lookup(SearchIdentifierType::Handle, "carol.example.com")
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            d.lookup(SearchIdentifierType::Phone, "+15551234567")
                .await
                .unwrap()
                .len(),
            1
        );
        // Same value, other type: not found.
        assert!(
            d.lookup(SearchIdentifierType::Email, "alice.example.com")
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn add_updates_consent_and_remove_deletes() {
        let (_t, d) = open();
        d.add(&entry(
            "alice.example.com",
            "mimi://p.example/u/alice",
            true,
        ))
        .await
        .unwrap();
        d.add(&entry(
            "alice.example.com",
            "mimi://p.example/u/alice",
            false,
        ))
        .await
        .unwrap();
        assert_eq!(d.list().await.unwrap().len(), 1);
        assert!(
            d.lookup(SearchIdentifierType::Handle, "alice.example.com")
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(d.remove("alice.example.com", None).await.unwrap(), 1);
        assert!(d.list().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn invalid_entries_are_refused() {
        let (_t, d) = open();
        assert!(matches!(
            d.add(&entry("alice", "mimi://p.example/u/a", true)).await,
            Err(Error::InvalidEntry(_))
        ));
        assert!(matches!(
            d.add(&entry("a.example", "alice", true)).await,
            Err(Error::InvalidEntry(_))
        ));
    }

    #[tokio::test]
    async fn import_is_all_or_nothing() {
        let (_t, d) = open();
        let bad = [
            entry("a.example.com", "mimi://p.example/u/a", true),
            entry("bad", "x", true),
        ];
        assert!(
            matches!(d.import(&bad).await, Err(Error::InvalidEntry(m)) if m.starts_with("entry 2"))
        );
        assert!(d.list().await.unwrap().is_empty());
        let good = [
            entry("a.example.com", "mimi://p.example/u/a", true),
            entry("b@example.com", "mimi://p.example/u/b", false),
        ];
        assert_eq!(d.import(&good).await.unwrap(), 2);
        assert_eq!(d.list().await.unwrap().len(), 2);
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
            parse_csv("a,b,true,,extra\n".as_bytes()),
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

    fn signed_entry(id: &str, account: &str, signed_for: (&str, &str)) -> Entry {
        let signer =
            mimi_proto::mapping::AuthoritySigner::from_seed("example.com", &[1; 32]).unwrap();
        let bytes = signer
            .sign(
                &mimi_proto::mapping::Mapping {
                    identifier: signed_for.0.into(),
                    account: signed_for.1.into(),
                    provider: "mimi.p.example".into(),
                },
                1,
                2,
            )
            .unwrap();
        Entry {
            assertion: Some(assertion_text(&bytes)),
            ..entry(id, account, true)
        }
    }

    #[tokio::test]
    async fn assertions_are_kept_served_and_exported() {
        let (_t, d) = open();
        let (id, account) = ("alice.example.com", "mimi://p.example/u/alice");
        let good = signed_entry("Alice.Example.com", account, (id, account));
        d.add(&good).await.unwrap();
        let found = d.lookup(SearchIdentifierType::Handle, id).await.unwrap();
        let expected = URL_SAFE_NO_PAD
            .decode(good.assertion.as_deref().unwrap())
            .unwrap();
        assert_eq!(found[0].assertion.as_deref(), Some(expected.as_slice()));
        let listed = d.list().await.unwrap();
        assert_eq!(listed[0].assertion, good.assertion);
        round_trips(&listed);
        // An assertion for another identifier or account, or garbage: refused.
        for bad in [
            signed_entry(id, account, ("bob.example.com", account)),
            signed_entry(id, account, (id, "mimi://p.example/u/eve")),
            Entry {
                assertion: Some("not-an-assertion".into()),
                ..entry(id, account, true)
            },
        ] {
            assert!(
                matches!(d.add(&bad).await, Err(Error::InvalidEntry(m)) if m.starts_with("assertion"))
            );
        }
        // Adding the entry again without one drops it: add sets the whole entry.
        d.add(&entry(id, account, true)).await.unwrap();
        assert_eq!(
            d.lookup(SearchIdentifierType::Handle, id).await.unwrap()[0].assertion,
            None
        );
    }

    #[test]
    fn a_version_1_database_gains_the_assertion_column() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("old.sqlite");
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch(sqlite::MIGRATION_1).unwrap();
            c.execute(
                "INSERT INTO entries VALUES (1, 'alice.example.com', 'mimi://p.example/u/alice', 1)",
                [],
            )
            .unwrap();
            c.pragma_update(None, "user_version", 1).unwrap();
        }
        let d = Directory::open(&path).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let listed = rt.block_on(d.list()).unwrap();
        assert_eq!(
            listed,
            [entry("alice.example.com", "mimi://p.example/u/alice", true)]
        );
    }

    #[tokio::test]
    async fn a_second_handle_sees_writes() {
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
            .await
            .unwrap();
        assert_eq!(
            server
                .lookup(SearchIdentifierType::Handle, "alice.example.com")
                .await
                .unwrap()
                .len(),
            1
        );
    }
}
