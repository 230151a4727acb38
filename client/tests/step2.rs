//! Step 2 driven through stub transports, without sockets: each stub hands
//! the encapsulated request straight to a real in-process gateway (or
//! misbehaves on purpose).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use mimi_client::{
    Discoverer, DnsMode, Error, KeySource, Options, Outcome, RelayAnswer, Transport,
};
use mimi_gateway::directory::{Directory, Entry};
use mimi_gateway::inner::Backend;
use mimi_gateway::keys::{KeyManager, RotationPolicy};
use mimi_gateway::{Gateway, Settings};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Behaviour {
    /// Hand the request to the gateway.
    Honest,
    /// The relay cannot reach the gateway.
    Down,
    /// 200 with bytes that are not an encapsulated response.
    Garbage,
    /// Rate limited by the relay.
    RateLimited,
    /// The relay's shared copy holds a key of the relay's own, not the
    /// gateway's (a relay that wants to read requests).
    SubstitutedKeys,
}

struct Provider {
    gateway: Arc<Gateway>,
    behaviour: Behaviour,
    /// How far the gateway's clock is ahead of ours.
    skew: Duration,
}

#[derive(Default)]
struct Stub {
    providers: HashMap<String, Provider>,
    calls: Mutex<Vec<(String, &'static str, u16)>>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Stub {
    fn add(
        &mut self,
        host: &str,
        entries: &[(&str, &str, bool)],
        behaviour: Behaviour,
        skew: Duration,
    ) -> Arc<Gateway> {
        let dir = tempfile::tempdir().unwrap();
        let keys =
            Arc::new(KeyManager::open(&dir.path().join("keys.json"), SystemTime::now()).unwrap());
        let directory = Directory::open(&dir.path().join("dir.sqlite")).unwrap();
        for (id, account, searchable) in entries {
            // On the test's runtime: the store's query runs on its blocking pool.
            futures::executor::block_on(directory.add(&Entry {
                identifier: id.to_string(),
                account: account.to_string(),
                searchable: *searchable,
                assertion: None,
            }))
            .unwrap();
        }
        let settings = Settings {
            public_host: host.into(),
            extra_origins: vec![],
            date_window: Duration::from_secs(60),
            future_skew: std::time::Duration::from_secs(10),
            replay_capacity: 1000,
            started: None,
        };
        let gateway = Arc::new(Gateway::new(
            settings,
            keys,
            Backend::Embedded(Arc::new(directory)),
            None,
        ));
        self.providers.insert(
            host.into(),
            Provider {
                gateway: gateway.clone(),
                behaviour,
                skew,
            },
        );
        self._dirs.push(dir);
        gateway
    }

    fn count(&self, host: &str, what: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(h, w, _)| h == host && *w == what)
            .count()
    }
}

fn answer(status: u16, content_type: &str, body: Vec<u8>) -> RelayAnswer {
    RelayAnswer {
        status,
        content_type: Some(content_type.into()),
        cache_control: None,
        retry_after: None,
        body: Bytes::from(body),
    }
}

/// The stub as a transport (a local type, for the orphan rule).
#[derive(Clone)]
struct Relay(Arc<Stub>);

impl std::ops::Deref for Relay {
    type Target = Stub;
    fn deref(&self) -> &Stub {
        &self.0
    }
}

/// A key list the gateway does not hold.
fn foreign_key_list() -> Vec<u8> {
    let config = mimi_proto::oblivious::ServerKey::derive(9, &[7; 32]).unwrap();
    mimi_proto::oblivious::encode_key_config_list([&config])
}

impl Transport for Relay {
    async fn fetch_keys(
        &self,
        gateway: &str,
        source: KeySource,
    ) -> mimi_client::Result<RelayAnswer> {
        let Some(p) = self.providers.get(gateway) else {
            return Ok(answer(404, "text/plain", vec![]));
        };
        let what = if source == KeySource::Shared {
            "keys"
        } else {
            "own_keys"
        };
        let a = match p.behaviour {
            Behaviour::SubstitutedKeys if source == KeySource::Shared => {
                answer(200, "application/ohttp-keys", foreign_key_list())
            }
            Behaviour::Down => answer(502, "text/plain", vec![]),
            Behaviour::RateLimited => RelayAnswer {
                retry_after: Some(7),
                ..answer(429, "text/plain", vec![])
            },
            _ => {
                let mut a = answer(
                    200,
                    "application/ohttp-keys",
                    p.gateway.keys().ring().encoded_list().to_vec(),
                );
                a.cache_control = Some("public, max-age=3600".into());
                a
            }
        };
        self.calls
            .lock()
            .unwrap()
            .push((gateway.into(), what, a.status));
        Ok(a)
    }

    async fn post(&self, gateway: &str, body: Vec<u8>) -> mimi_client::Result<RelayAnswer> {
        let Some(p) = self.providers.get(gateway) else {
            return Ok(answer(404, "text/plain", vec![]));
        };
        let a = match p.behaviour {
            Behaviour::Down => answer(502, "text/plain", vec![]),
            Behaviour::RateLimited => answer(429, "text/plain", vec![]),
            Behaviour::Garbage => answer(200, "message/ohttp-res", vec![0x42; 80]),
            Behaviour::Honest | Behaviour::SubstitutedKeys => {
                match p.gateway.handle(&body, SystemTime::now() + p.skew).await {
                    Ok(sealed) => answer(200, "message/ohttp-res", sealed),
                    Err(e) => answer(
                        e.status().as_u16(),
                        "application/problem+json",
                        e.problem().map(|p| p.to_json()).unwrap_or_default(),
                    ),
                }
            }
        };
        self.calls
            .lock()
            .unwrap()
            .push((gateway.into(), "post", a.status));
        Ok(a)
    }
}

fn zone(records: &[(&str, &[&str])]) -> DnsMode {
    let mut z = BTreeMap::new();
    for (name, txts) in records {
        z.insert(
            name.to_string(),
            txts.iter().map(|t| vec![t.as_bytes().to_vec()]).collect(),
        );
    }
    DnsMode::Static(z)
}

fn discoverer(stub: &Arc<Stub>, dns: DnsMode) -> Discoverer<Relay> {
    Discoverer::new(
        Relay(stub.clone()),
        Options {
            dns,
            provider_timeout: Duration::from_secs(5),
            ..Options::default()
        },
    )
    .unwrap()
}

const ALICE: &str = "_mimi.alice.example.com.";

/// One provider, `mimi.a.example`, where alice has an account.
fn alice_at_a(behaviour: Behaviour) -> Arc<Stub> {
    let mut stub = Stub::default();
    stub.add(
        "mimi.a.example",
        &[("alice.example.com", "mimi://a.example/u/alice", true)],
        behaviour,
        Duration::ZERO,
    );
    Arc::new(stub)
}

#[tokio::test]
async fn found_on_two_providers_in_preference_order() {
    let mut stub = Stub::default();
    stub.add(
        "mimi.a.example",
        &[("alice.example.com", "mimi://a.example/u/alice", true)],
        Behaviour::Honest,
        Duration::ZERO,
    );
    stub.add(
        "mimi.b.example",
        &[("alice.example.com", "mimi://b.example/u/al", true)],
        Behaviour::Honest,
        Duration::ZERO,
    );
    let stub = Arc::new(stub);
    let d = discoverer(
        &stub,
        zone(&[(
            ALICE,
            &[
                "v=MIMI1; p=20; e=mimi.b.example; s=bee",
                "v=MIMI1; p=10; e=mimi.a.example; s=ay",
                "google-site-verification=xyz",
            ],
        )]),
    );
    let found = d.discover("Alice.Example.com").await.unwrap();
    assert_eq!(found.identifier, "alice.example.com");
    assert_eq!(found.kind, "handle");
    assert_eq!(found.dns_name, ALICE);
    let services: Vec<_> = found.providers.iter().map(|p| p.service.as_str()).collect();
    assert_eq!(services, ["ay", "bee"]);
    assert_eq!(
        found.providers[0].outcome.accounts(),
        ["mimi://a.example/u/alice"]
    );
    assert_eq!(
        found.providers[1].outcome.accounts(),
        ["mimi://b.example/u/al"]
    );
    assert_eq!(found.accounts().count(), 2);
    assert!(found.warnings.is_empty());

    // A second discovery reuses the checked key: one key fetch per provider
    // from each source, and one query per discovery (no directory document).
    d.discover("alice.example.com").await.unwrap();
    assert_eq!(stub.count("mimi.a.example", "keys"), 1);
    assert_eq!(stub.count("mimi.a.example", "own_keys"), 1);
    assert_eq!(stub.count("mimi.a.example", "post"), 2);
}

#[tokio::test]
async fn one_provider_down_does_not_hide_the_other() {
    let mut stub = Stub::default();
    stub.add(
        "mimi.a.example",
        &[("alice.example.com", "mimi://a.example/u/alice", true)],
        Behaviour::Honest,
        Duration::ZERO,
    );
    stub.add("mimi.dead.example", &[], Behaviour::Down, Duration::ZERO);
    let stub = Arc::new(stub);
    let d = discoverer(
        &stub,
        zone(&[(
            ALICE,
            &[
                "v=MIMI1; p=1; e=mimi.dead.example",
                "v=MIMI1; p=2; e=mimi.a.example",
            ],
        )]),
    );
    let found = d.discover("alice.example.com").await.unwrap();
    assert_eq!(
        found.providers[0].service, "mimi.dead.example",
        "no s=: the host is the label"
    );
    match &found.providers[0].outcome {
        Outcome::Error { message, code } => {
            assert_eq!(code, "gateway_unreachable");
            assert_eq!(
                message,
                "the relay could not reach the provider's gateway (HTTP 502)"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(found.providers[1].outcome, Outcome::Found { .. }));
}

#[tokio::test]
async fn a_stale_cached_key_recovers_after_one_refresh() {
    let mut stub = Stub::default();
    let gw = stub.add(
        "mimi.a.example",
        &[("alice.example.com", "mimi://a.example/u/alice", true)],
        Behaviour::Honest,
        Duration::ZERO,
    );
    let stub = Arc::new(stub);
    let d = discoverer(&stub, zone(&[(ALICE, &["v=MIMI1; e=mimi.a.example"])]));
    d.discover("alice.example.com").await.unwrap();
    assert_eq!(stub.count("mimi.a.example", "keys"), 1);

    // The gateway rotates with no grace: the client's cached key is now refused.
    gw.keys()
        .rotate(
            SystemTime::now(),
            RotationPolicy {
                publish_ahead: Duration::ZERO,
                grace: Duration::ZERO,
            },
        )
        .unwrap();
    let found = d.discover("alice.example.com").await.unwrap();
    assert!(
        matches!(found.providers[0].outcome, Outcome::Found { .. }),
        "{:?}",
        found.providers[0].outcome
    );
    assert_eq!(
        stub.count("mimi.a.example", "keys"),
        2,
        "exactly one refresh"
    );
    let statuses: Vec<u16> = stub
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.1 == "post")
        .map(|c| c.2)
        .collect();
    assert_eq!(statuses, [200, 422, 200]);
}

/// A relay that answers every POST with `status` and the `ohttp-key`
/// problem type, and is honest about keys.
struct KeyProblemEveryTime(Relay, u16);

impl Transport for KeyProblemEveryTime {
    async fn fetch_keys(&self, g: &str, source: KeySource) -> mimi_client::Result<RelayAnswer> {
        self.0.fetch_keys(g, source).await
    }
    async fn post(&self, g: &str, _: Vec<u8>) -> mimi_client::Result<RelayAnswer> {
        self.0
            .calls
            .lock()
            .unwrap()
            .push((g.into(), "post", self.1));
        let p = mimi_proto::oblivious::Problem::of(mimi_proto::oblivious::ProblemType::OhttpKey);
        Ok(answer(self.1, "application/problem+json", p.to_json()))
    }
}

#[tokio::test]
async fn keys_that_keep_failing_give_up_after_one_retry() {
    let mut stub = Stub::default();
    stub.add("mimi.a.example", &[], Behaviour::Honest, Duration::ZERO);
    let stub = Arc::new(stub);
    let d = Discoverer::new(
        KeyProblemEveryTime(Relay(stub.clone()), 422),
        Options {
            dns: zone(&[(ALICE, &["v=MIMI1; e=mimi.a.example"])]),
            ..Options::default()
        },
    )
    .unwrap();
    let found = d.discover("alice.example.com").await.unwrap();
    assert!(
        matches!(&found.providers[0].outcome, Outcome::Error { code, .. } if code == "key_mismatch")
    );
    assert_eq!(stub.count("mimi.a.example", "keys"), 2);
    assert_eq!(
        stub.count("mimi.a.example", "post"),
        2,
        "one retry, no more"
    );
}

#[tokio::test]
async fn a_date_problem_is_retried_once_with_the_gateway_clock() {
    let mut stub = Stub::default();
    // The gateway's clock is ten minutes ahead: our first Date is stale to it.
    stub.add(
        "mimi.a.example",
        &[("alice.example.com", "mimi://a.example/u/alice", true)],
        Behaviour::Honest,
        Duration::from_secs(600),
    );
    let stub = Arc::new(stub);
    let d = discoverer(&stub, zone(&[(ALICE, &["v=MIMI1; e=mimi.a.example"])]));
    let found = d.discover("alice.example.com").await.unwrap();
    assert!(
        matches!(found.providers[0].outcome, Outcome::Found { .. }),
        "{:?}",
        found.providers[0].outcome
    );
    // Stale, then retried with the gateway's Date.
    assert_eq!(stub.count("mimi.a.example", "post"), 2);
    // That Date served only its one retry: the next discovery starts from
    // our own clock again (RFC 9458 §6.5.2), so it is stale and retried too.
    let again = d.discover("alice.example.com").await.unwrap();
    assert!(matches!(again.providers[0].outcome, Outcome::Found { .. }));
    assert_eq!(stub.count("mimi.a.example", "post"), 4);
}

#[tokio::test]
async fn a_key_the_gateway_does_not_publish_is_never_used() {
    let stub = alice_at_a(Behaviour::SubstitutedKeys);
    let d = discoverer(&stub, zone(&[(ALICE, &["v=MIMI1; e=mimi.a.example"])]));
    let found = d.discover("alice.example.com").await.unwrap();
    match &found.providers[0].outcome {
        Outcome::Error { code, message } => {
            assert_eq!(code, "key_inconsistent");
            assert!(message.contains("nothing was sent"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // Both copies fetched once more (a rotation may be under way), then nothing sent.
    assert_eq!(stub.count("mimi.a.example", "keys"), 2);
    assert_eq!(stub.count("mimi.a.example", "own_keys"), 2);
    assert_eq!(stub.count("mimi.a.example", "post"), 0);

    // Without the shared check (`tunnel`), the gateway's own key is used.
    let d = Discoverer::new(
        Relay(stub.clone()),
        Options {
            dns: zone(&[(ALICE, &["v=MIMI1; e=mimi.a.example"])]),
            key_check: mimi_client::KeyCheck::Tunnel,
            ..Options::default()
        },
    )
    .unwrap();
    let found = d.discover("alice.example.com").await.unwrap();
    assert!(matches!(found.providers[0].outcome, Outcome::Found { .. }));
}

#[tokio::test]
async fn a_400_with_the_key_problem_type_refreshes_keys_once() {
    let mut stub = Stub::default();
    stub.add("mimi.a.example", &[], Behaviour::Honest, Duration::ZERO);
    let stub = Arc::new(stub);
    let d = Discoverer::new(
        KeyProblemEveryTime(Relay(stub.clone()), 400),
        Options {
            dns: zone(&[(ALICE, &["v=MIMI1; e=mimi.a.example"])]),
            ..Options::default()
        },
    )
    .unwrap();
    let found = d.discover("alice.example.com").await.unwrap();
    assert!(
        matches!(&found.providers[0].outcome, Outcome::Error { code, .. } if code == "key_mismatch"),
        "{:?}",
        found.providers[0].outcome
    );
    assert_eq!(stub.count("mimi.a.example", "keys"), 2, "one refresh");
    assert_eq!(stub.count("mimi.a.example", "post"), 2);
}

#[tokio::test]
async fn a_zone_cannot_spend_the_relay_budget() {
    let mut stub = Stub::default();
    stub.add(
        "mimi.a.example",
        &[("alice.example.com", "mimi://a.example/u/alice", true)],
        Behaviour::Honest,
        Duration::ZERO,
    );
    // 60 records: 40 for the same host, 20 for hosts the stub does not serve.
    let mut records: Vec<String> = (0..40)
        .map(|i| format!("v=MIMI1; p={}; e=mimi.a.example", 100 - i))
        .collect();
    records.extend((0..20).map(|i| format!("v=MIMI1; p={}; e=mimi.x{i}.example", 200 + i)));
    let records: Vec<&str> = records.iter().map(String::as_str).collect();
    let stub = Arc::new(stub);
    let d = discoverer(&stub, zone(&[(ALICE, &records)]));
    // Concurrent lookups share one key fetch per gateway.
    let (a, b) = tokio::join!(
        d.discover("alice.example.com"),
        d.discover("alice.example.com")
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    for found in [&a, &b] {
        assert_eq!(found.providers.len(), 16, "at most 16 providers asked");
        assert_eq!(found.providers[0].preference, 61, "the lowest p wins");
        assert_eq!(
            found
                .warnings
                .iter()
                .filter(|w| w.starts_with("not asked"))
                .count(),
            5
        );
    }
    assert_eq!(stub.count("mimi.a.example", "keys"), 1);
    assert_eq!(stub.count("mimi.a.example", "own_keys"), 1);
    assert_eq!(stub.count("mimi.a.example", "post"), 2);
}

#[tokio::test]
async fn a_malformed_answer_is_reported() {
    let mut stub = Stub::default();
    stub.add("mimi.a.example", &[], Behaviour::Garbage, Duration::ZERO);
    let stub = Arc::new(stub);
    let d = discoverer(&stub, zone(&[(ALICE, &["v=MIMI1; e=mimi.a.example"])]));
    let found = d.discover("alice.example.com").await.unwrap();
    assert_eq!(
        found.providers[0].outcome,
        Outcome::Error {
            message: "the provider's answer was malformed".into(),
            code: mimi_client::ErrorCode::MalformedAnswer,
        }
    );
}

#[tokio::test]
async fn not_found_absent_or_hidden_and_rate_limits() {
    let mut stub = Stub::default();
    stub.add(
        "mimi.a.example",
        &[("alice.example.com", "mimi://a.example/u/alice", false)],
        Behaviour::Honest,
        Duration::ZERO,
    );
    stub.add(
        "mimi.busy.example",
        &[],
        Behaviour::RateLimited,
        Duration::ZERO,
    );
    let stub = Arc::new(stub);
    let d = discoverer(
        &stub,
        zone(&[(
            ALICE,
            &["v=MIMI1; e=mimi.a.example", "v=MIMI1; e=mimi.busy.example"],
        )]),
    );
    let found = d.discover("alice.example.com").await.unwrap();
    assert_eq!(found.providers[0].outcome, Outcome::NotFound);
    assert_eq!(
        found.providers[1].outcome,
        Outcome::Error {
            message: "the relay refused us: rate limited (retry in 7 s)".into(),
            code: mimi_client::ErrorCode::RateLimited,
        }
    );
}

#[tokio::test]
async fn step_one_outcomes_and_warnings() {
    let stub = alice_at_a(Behaviour::Honest);
    let d = discoverer(
        &stub,
        zone(&[
            (
                ALICE,
                &[
                    "v=MIMI1; e=mimi.a.example; a=mimi://a.example/u/alice",
                    "v=MIMI1; s=broken",
                ],
            ),
            ("_mimi.bob.example.com.", &["v=spf1 -all"]),
            ("_mimi.carol.example.com.", &["v=MIMI1; p=x; e=a.example"]),
        ]),
    );
    let found = d.discover("alice.example.com").await.unwrap();
    assert_eq!(found.providers.len(), 1);
    assert_eq!(
        found.providers[0].dns_account.as_deref(),
        Some("mimi://a.example/u/alice")
    );
    assert_eq!(
        found.warnings,
        ["skipped MIMI record \"v=MIMI1; s=broken\": no 'e' (provider host) tag"]
    );

    let err = d.discover("bob.example.com").await.unwrap_err();
    assert_eq!(err, Error::NoMimiRecord);
    assert_eq!(
        err.to_string(),
        "no MIMI record for this identifier: the person has not listed any provider"
    );
    let err = d.discover("dave.example.com").await.unwrap_err();
    assert_eq!(err, Error::NameNotFound);
    assert!(err.to_string().contains("does not exist"));
    let err = d.discover("carol.example.com").await.unwrap_err();
    assert!(
        matches!(err, Error::OnlyInvalidRecords(ref w) if w.contains("'p'")),
        "{err}"
    );
    let err = d.discover("not an identifier").await.unwrap_err();
    assert!(matches!(err, Error::InvalidIdentifier(_)));
    assert!(
        stub.calls.lock().unwrap().len() <= 3,
        "no network for bad input"
    );
}

#[tokio::test]
async fn email_and_phone_identifiers() {
    let mut stub = Stub::default();
    stub.add(
        "mimi.a.example",
        &[
            ("alice@example.com", "mimi://a.example/u/alice", true),
            ("+15551234567", "mimi://a.example/u/alice", true),
        ],
        Behaviour::Honest,
        Duration::ZERO,
    );
    let stub = Arc::new(stub);
    let email_name = mimi_proto::Identifier::parse("alice@example.com")
        .unwrap()
        .dns_name();
    let d = discoverer(
        &stub,
        zone(&[
            (email_name.as_str(), &["v=MIMI1; e=mimi.a.example"]),
            (
                "_mimi.7.6.5.4.3.2.1.5.5.5.1.e164.arpa.",
                &["v=MIMI1; e=mimi.a.example"],
            ),
        ]),
    );
    for input in ["alice@Example.COM", "+1 (555) 123-4567"] {
        let found = d.discover(input).await.unwrap();
        assert_eq!(
            found.accounts().collect::<Vec<_>>(),
            ["mimi://a.example/u/alice"],
            "{input}"
        );
    }
}

#[tokio::test]
async fn many_identifiers_stream_as_they_complete() {
    let stub = alice_at_a(Behaviour::Honest);
    let d = discoverer(&stub, zone(&[(ALICE, &["v=MIMI1; e=mimi.a.example"])]));
    use futures::StreamExt;
    let inputs: Vec<String> = vec![
        "alice.example.com".into(),
        "x".into(),
        "nobody.example.com".into(),
        "alice.example.com".into(),
    ];
    let mut results: Vec<_> = d.discover_many(&inputs).collect().await;
    results.sort_by_key(|(i, _)| *i);
    assert_eq!(results.len(), 4);
    assert!(results[0].1.is_ok());
    assert!(matches!(results[1].1, Err(Error::InvalidIdentifier(_))));
    assert!(matches!(results[2].1, Err(Error::NameNotFound)));
    assert!(results[3].1.is_ok());
}

/// A relay whose key lists take a while to arrive, so that lookups at once
/// all find the key missing.
struct SlowKeys(Relay);

impl Transport for SlowKeys {
    async fn fetch_keys(&self, g: &str, source: KeySource) -> mimi_client::Result<RelayAnswer> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.0.fetch_keys(g, source).await
    }
    async fn post(&self, g: &str, body: Vec<u8>) -> mimi_client::Result<RelayAnswer> {
        self.0.post(g, body).await
    }
}

/// Lookups at once that need the same gateway's key wait for one fetch
/// (single flight), rather than each asking the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lookups_fetch_a_gateway_key_once() {
    let stub = alice_at_a(Behaviour::Honest);
    let d = Discoverer::new(
        SlowKeys(Relay(stub.clone())),
        Options {
            dns: zone(&[(ALICE, &["v=MIMI1; e=mimi.a.example"])]),
            ..Options::default()
        },
    )
    .unwrap();
    let lookups = (0..8).map(|_| d.discover("alice.example.com"));
    for found in futures::future::join_all(lookups).await {
        let found = found.unwrap();
        assert!(
            matches!(found.providers[0].outcome, Outcome::Found { .. }),
            "{:?}",
            found.providers[0].outcome
        );
    }
    assert_eq!(stub.count("mimi.a.example", "keys"), 1);
}
