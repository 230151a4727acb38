//! The directory's two stores behave as one: the same entries in, the same
//! answers and the same export bytes out, consent and all-or-nothing import
//! included. PostgreSQL here is a real server started for the test.

use mimi_gateway::config::{DirectorySection, DirectoryStore};
use mimi_gateway::directory::{self, Directory, Entry};
use mimi_proto::SearchIdentifierType;
use mimi_testbed::engines::PostgresServer;

fn entry(identifier: &str, account: &str, searchable: bool) -> Entry {
    Entry {
        identifier: identifier.into(),
        account: account.into(),
        searchable,
        assertion: None,
    }
}

/// Runs the same story against `dir`; returns its CSV export.
async fn story(dir: &Directory) -> Vec<u8> {
    // Import: one bad entry and nothing is written.
    let bad = [
        entry("a.example.com", "mimi://p.example/u/a", true),
        entry("not an identifier", "mimi://p.example/u/x", true),
    ];
    assert!(dir.import(&bad).await.is_err());
    assert_eq!(dir.count().await.unwrap(), 0, "{}", dir.store_name());
    // Many at once, with a duplicate whose last copy wins.
    let mut many: Vec<Entry> = (0..2_000)
        .map(|k| {
            entry(
                &format!("user{k}.example.com"),
                &format!("mimi://p.example/u/{k}"),
                k % 7 != 0,
            )
        })
        .collect();
    many.push(entry("user0.example.com", "mimi://p.example/u/0", true));
    many.push(entry("alice@Example.com", "mimi://p.example/u/alice", true));
    many.push(entry("+1 555 123 4567", "mimi://p.example/u/alice", true));
    // A signed mapping (DESIGN §11) travels through either store unchanged.
    let signer = mimi_proto::mapping::AuthoritySigner::from_seed("example.com", &[4; 32]).unwrap();
    let assertion = signer
        .sign(
            &mimi_proto::mapping::Mapping {
                identifier: "signed.example.com".into(),
                account: "mimi://p.example/u/signed".into(),
                provider: "mimi.p.example".into(),
            },
            1_800_000_000,
            1_900_000_000,
        )
        .unwrap();
    many.push(Entry {
        assertion: Some(directory::assertion_text(&assertion)),
        ..entry("signed.example.com", "mimi://p.example/u/signed", true)
    });
    assert_eq!(dir.import(&many).await.unwrap(), many.len());
    assert_eq!(dir.count().await.unwrap(), 2_003);
    let signed = dir
        .lookup(SearchIdentifierType::Handle, "signed.example.com")
        .await
        .unwrap();
    assert_eq!(signed[0].assertion.as_deref(), Some(assertion.as_slice()));
    // Consent: hidden entries are not found; the later duplicate made user0 searchable.
    let found = |t, v: &'static str| async move {
        let found = dir.lookup(t, v).await.unwrap();
        found.into_iter().map(|f| f.account).collect::<Vec<_>>()
    };
    assert_eq!(
        found(SearchIdentifierType::Handle, "user0.example.com").await,
        ["mimi://p.example/u/0"]
    );
    assert!(
        found(SearchIdentifierType::Handle, "user7.example.com")
            .await
            .is_empty()
    );
    assert_eq!(
        found(SearchIdentifierType::Email, "alice@example.com")
            .await
            .len(),
        1
    );
    assert_eq!(
        found(SearchIdentifierType::Phone, "+15551234567")
            .await
            .len(),
        1
    );
    assert!(
        found(SearchIdentifierType::Email, "user1.example.com")
            .await
            .is_empty()
    );
    // Add, update, remove.
    dir.add(&entry("bob.example.com", "mimi://p.example/u/bob", true))
        .await
        .unwrap();
    dir.add(&entry("bob.example.com", "mimi://p.example/u/bob2", true))
        .await
        .unwrap();
    dir.add(&entry("bob.example.com", "mimi://p.example/u/bob", false))
        .await
        .unwrap();
    assert_eq!(
        found(SearchIdentifierType::Handle, "bob.example.com").await,
        ["mimi://p.example/u/bob2"]
    );
    assert_eq!(
        dir.remove("bob.example.com", Some("mimi://p.example/u/bob2"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(dir.remove("user1.example.com", None).await.unwrap(), 1);
    assert_eq!(dir.remove("nobody.example.com", None).await.unwrap(), 0);
    let mut out = Vec::new();
    directory::write_csv(&dir.list().await.unwrap(), &mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_answer_and_export_alike() {
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("engines");
    let postgres = tokio::task::block_in_place(|| PostgresServer::start(&base).unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let sqlite = Directory::open(&tmp.path().join("dir.sqlite")).unwrap();
    let section = DirectorySection {
        store: DirectoryStore::Postgres,
        url: Some(postgres.url()),
        ..DirectorySection::default()
    };
    let pg = Directory::connect(&section).await.unwrap();
    let from_sqlite = story(&sqlite).await;
    let from_postgres = story(&pg).await;
    assert_eq!(
        String::from_utf8(from_sqlite.clone()).unwrap(),
        String::from_utf8(from_postgres).unwrap(),
        "the same export, byte for byte"
    );
    // Round trip: SQLite's export imported into PostgreSQL afresh (a second
    // connection, as another replica would make; the schema is migrated once).
    let again = Directory::connect(&section).await.unwrap();
    for e in again.list().await.unwrap() {
        again.remove(&e.identifier, Some(&e.account)).await.unwrap();
    }
    again
        .import(&directory::parse_csv(&from_sqlite[..]).unwrap())
        .await
        .unwrap();
    let mut out = Vec::new();
    directory::write_csv(&pg.list().await.unwrap(), &mut out).unwrap();
    assert_eq!(out, from_sqlite);
    drop(postgres);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_is_verified_against_the_configured_ca() {
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("engines");
    let postgres = tokio::task::block_in_place(|| PostgresServer::start(&base).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let (tls, ca, other_ca) = crate::replay_store::tls_for(dir.path(), "127.0.0.3");
    let (addr, front) = mimi_testbed::engines::tls_front(
        "127.0.0.3".parse().unwrap(),
        tls,
        postgres.socket_path(),
        true,
    )
    .await
    .unwrap();
    let section = |ca: &std::path::Path| DirectorySection {
        store: DirectoryStore::Postgres,
        url: Some(format!(
            "host={} port={} user=mimi dbname=postgres sslmode=require",
            addr.ip(),
            addr.port()
        )),
        ca_file: Some(ca.to_path_buf()),
        timeout_ms: 2_000,
        ..DirectorySection::default()
    };
    let dir_store = Directory::connect(&section(&ca)).await.unwrap();
    dir_store
        .add(&entry("tls.example.com", "mimi://p.example/u/tls", true))
        .await
        .unwrap();
    assert_eq!(
        dir_store
            .lookup(SearchIdentifierType::Handle, "tls.example.com")
            .await
            .unwrap()[0]
            .account,
        "mimi://p.example/u/tls"
    );
    // A server whose certificate the configured CA did not sign: refused.
    assert!(Directory::connect(&section(&other_ca)).await.is_err());
    front.abort();
    drop(postgres);
}
