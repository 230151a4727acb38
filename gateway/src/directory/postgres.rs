//! The directory in PostgreSQL, shared by every gateway replica.
//!
//! Connections come from a `deadpool-postgres` pool; the lookup is one
//! prepared statement on the primary key's index; bulk import streams the
//! entries with `COPY … FROM STDIN (FORMAT binary)` into a temporary table
//! and merges them in the same transaction. The schema is migrated at start
//! under an advisory lock, so replicas starting together migrate once; its
//! version is in `mimi_schema_version`.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures::pin_mut;
use mimi_proto::SearchIdentifierType;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use super::settings::DirectorySection;
use super::{Entry, Found, Valid, assertion_text};
use crate::error::{Error, Result};
use crate::outage::Outage;

/// Migrations in order; entry `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE mimi_directory (
         search_type smallint NOT NULL,
         value text NOT NULL,
         account text NOT NULL,
         searchable boolean NOT NULL DEFAULT true,
         PRIMARY KEY (search_type, value, account)
     );",
    // Signed mappings (DESIGN §11): the COSE_Sign1 bytes, or NULL.
    "ALTER TABLE mimi_directory ADD COLUMN assertion bytea;",
];

/// Any constant shared by every replica: the advisory lock taken to migrate.
const MIGRATION_LOCK: i64 = 0x6d69_6d69_6469_7201;

const LOOKUP: &str = "SELECT account, assertion FROM mimi_directory \
     WHERE search_type = $1 AND value = $2 AND searchable ORDER BY account";

/// A pool of connections to the directory's database.
#[derive(Debug)]
pub struct PostgresStore {
    pool: Pool,
    outage: Outage,
}

impl PostgresStore {
    /// Builds the pool from `[directory]` and migrates the schema.
    pub async fn connect(section: &DirectorySection) -> Result<Self> {
        let url = section.url.as_deref().ok_or_else(|| {
            Error::Config("directory.url is required with store = \"postgres\"".into())
        })?;
        let mut pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| Error::Config(format!("directory.url: {e}")))?;
        if let Some(path) = &section.password_file {
            let password = crate::private_files::read_secret_line(path, "directory.password_file")?;
            pg.password(password.expose());
        }
        pg.application_name("mimi-gateway");
        pg.connect_timeout(Duration::from_millis(section.timeout_ms));
        let roots = match &section.ca_file {
            Some(path) => mimi_server_core::tls::load_roots(path)?,
            None => Vec::new(),
        };
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(
            mimi_server_core::tls::client_config(&roots)?,
        );
        let manager = Manager::from_config(
            pg,
            tls,
            ManagerConfig {
                // A broken connection shows itself as a failed query, which
                // drops it from the pool; no test query per checkout.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let timeout = Some(Duration::from_millis(section.timeout_ms));
        let pool = Pool::builder(manager)
            .max_size(section.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(timeout)
            .create_timeout(timeout)
            .recycle_timeout(timeout)
            .build()
            .map_err(|e| Error::Config(format!("directory pool: {e}")))?;
        let store = Self {
            pool,
            outage: Outage::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        match self.pool.get().await {
            Ok(c) => Ok(c),
            Err(e) => {
                self.outage.failed("postgres", &e);
                Err(Error::DirectoryUnavailable(e.to_string()))
            }
        }
    }

    /// Notes the outcome of a query for the once-per-outage log.
    fn seen<T>(&self, r: std::result::Result<T, tokio_postgres::Error>) -> Result<T> {
        match r {
            Ok(v) => {
                self.outage.succeeded("postgres");
                Ok(v)
            }
            Err(e) if e.is_closed() || e.code().is_none() => {
                self.outage.failed("postgres", &e);
                Err(Error::DirectoryUnavailable(e.to_string()))
            }
            Err(e) => Err(Error::Postgres(e)),
        }
    }

    async fn migrate(&self) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(Error::Postgres)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS mimi_schema_version (version integer NOT NULL)",
        )
        .await?;
        let row = tx
            .query_opt("SELECT version FROM mimi_schema_version", &[])
            .await?;
        let version = match row {
            Some(r) => usize::try_from(r.get::<_, i32>(0)).unwrap_or(usize::MAX),
            None => {
                tx.execute("INSERT INTO mimi_schema_version VALUES (0)", &[])
                    .await?;
                0
            }
        };
        if version > MIGRATIONS.len() {
            return Err(Error::Config(format!(
                "the directory's schema is version {version}, newer than this gateway knows ({}): upgrade the gateway",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.batch_execute(sql).await?;
            let next = i32::try_from(i + 1).unwrap_or(i32::MAX);
            tx.execute("UPDATE mimi_schema_version SET version = $1", &[&next])
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn lookup(
        &self,
        search_type: SearchIdentifierType,
        value: &str,
    ) -> Result<Vec<Found>> {
        let client = self.client().await?;
        let stmt = self.seen(client.prepare_cached(LOOKUP).await)?;
        let rows = self.seen(
            client
                .query(&stmt, &[&i16::from(search_type as u8), &value])
                .await,
        )?;
        Ok(rows
            .into_iter()
            .map(|r| Found {
                account: r.get(0),
                assertion: r.get(1),
            })
            .collect())
    }

    /// Adds or updates entries in one transaction: a single row with an
    /// upsert, many through `COPY` into a temporary table.
    pub(super) async fn upsert(&self, entries: Vec<Valid>) -> Result<usize> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.batch_execute(
            "CREATE TEMPORARY TABLE mimi_import (
                 ord bigint, search_type smallint, value text, account text, searchable boolean,
                 assertion bytea
             ) ON COMMIT DROP",
        )
        .await?;
        let sink = tx
            .copy_in("COPY mimi_import FROM STDIN (FORMAT binary)")
            .await?;
        let writer = BinaryCopyInWriter::new(
            sink,
            &[
                Type::INT8,
                Type::INT2,
                Type::TEXT,
                Type::TEXT,
                Type::BOOL,
                Type::BYTEA,
            ],
        );
        pin_mut!(writer);
        for (ord, e) in entries.iter().enumerate() {
            let ord = i64::try_from(ord).unwrap_or(i64::MAX);
            let search_type = i16::from(e.search_type as u8);
            writer
                .as_mut()
                .write(&[
                    &ord,
                    &search_type,
                    &e.value,
                    &e.account,
                    &e.searchable,
                    &e.assertion,
                ])
                .await?;
        }
        writer.finish().await?;
        // The last of duplicate entries wins, as when they are added one by one.
        tx.execute(
            "INSERT INTO mimi_directory (search_type, value, account, searchable, assertion)
             SELECT DISTINCT ON (search_type, value, account) search_type, value, account, searchable, assertion
               FROM mimi_import ORDER BY search_type, value, account, ord DESC
             ON CONFLICT (search_type, value, account)
             DO UPDATE SET searchable = excluded.searchable, assertion = excluded.assertion",
            &[],
        )
        .await?;
        tx.commit().await?;
        Ok(entries.len())
    }

    pub(super) async fn remove(
        &self,
        search_type: SearchIdentifierType,
        value: &str,
        account: Option<&str>,
    ) -> Result<usize> {
        let client = self.client().await?;
        let search_type = i16::from(search_type as u8);
        let n = match account {
            Some(a) => {
                client
                    .execute(
                        "DELETE FROM mimi_directory WHERE search_type = $1 AND value = $2 AND account = $3",
                        &[&search_type, &value, &a],
                    )
                    .await?
            }
            None => {
                client
                    .execute(
                        "DELETE FROM mimi_directory WHERE search_type = $1 AND value = $2",
                        &[&search_type, &value],
                    )
                    .await?
            }
        };
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    pub(super) async fn count(&self) -> Result<usize> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT COUNT(*) FROM mimi_directory", &[])
            .await?;
        Ok(usize::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    pub(super) async fn list(&self) -> Result<Vec<Entry>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT value, account, searchable, assertion FROM mimi_directory
                 ORDER BY value COLLATE \"C\", account COLLATE \"C\", search_type",
                &[],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| Entry {
                identifier: r.get(0),
                account: r.get(1),
                searchable: r.get(2),
                assertion: r.get::<_, Option<Vec<u8>>>(3).map(|a| assertion_text(&a)),
            })
            .collect())
    }
}
