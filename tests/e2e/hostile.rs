//! The relay and a provider played as attackers (DESIGN §4.1, §8): a relay
//! that hands out keys of its own (to all, or one per client), a relay that
//! refuses tunnels, and a gateway that tries to plant per-client state.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use mimi_client::{DnsMode, Outcome};
use mimi_proto::oblivious::{DIRECTORY_PATH, IDENTIFIER_QUERY_PREFIX};
use mimi_testbed::World;
use mimi_testbed::hostile::RelayAttack;
use mimi_testbed::recorder::Party;
use mimi_testbed::world::{Setup, TAGGING_HOST};

/// The error codes of every provider of every sample discovery (or of the
/// discovery itself when it failed as a whole).
async fn sample_codes(world: &World, oblivious_dns: bool) -> Vec<String> {
    let client = world.client(oblivious_dns).unwrap();
    let mut codes = Vec::new();
    for input in ["alice.example.com", "bob.example.com", "frank@example.com"] {
        match client.discover(input).await {
            Ok(d) => codes.extend(d.providers.iter().map(|p| match &p.outcome {
                Outcome::Error { code, .. } => code.as_str().to_owned(),
                other => format!("{other:?}"),
            })),
            Err(e) => codes.push(mimi_client::error_code(&e).to_owned()),
        }
    }
    codes
}

/// How many requests of `method` a party received.
fn received(world: &World, party: &Party, method: &str) -> usize {
    world
        .recorder
        .of(party)
        .iter()
        .filter(|e| e.received.starts_with(format!("{method} ").as_bytes()))
        .count()
}

fn gateways() -> [Party; 2] {
    [
        Party::Gateway("alpha".into()),
        Party::Gateway("beta".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_substituting_keys_reads_nothing() {
    for attack in [RelayAttack::SubstituteKeys, RelayAttack::TargetKeys] {
        for oblivious_dns in [false, true] {
            let world = World::start_with(Setup {
                relay_attack: Some(attack),
                ..Setup::default()
            })
            .await
            .unwrap();
            let codes = sample_codes(&world, oblivious_dns).await;
            let relay = world.hostile_relay.as_ref().unwrap();
            assert!(relay.substituted() > 0, "the attack was tried");
            assert_eq!(
                relay.decrypted(),
                0,
                "{attack:?}, oblivious DNS {oblivious_dns}: the relay decrypted requests"
            );
            assert!(!codes.is_empty());
            assert!(
                codes.iter().all(|c| c == "key_inconsistent"),
                "{attack:?}, oblivious DNS {oblivious_dns}: {codes:?}"
            );
            assert_eq!(
                received(&world, &Party::Relay, "POST"),
                0,
                "nothing was sent"
            );
            for g in gateways() {
                assert_eq!(received(&world, &g, "POST"), 0, "{g}");
            }
            world.shutdown().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_refusing_tunnels_gets_nothing_sent() {
    let world = World::start_with(Setup {
        relay_attack: Some(RelayAttack::RefuseConnect),
        ..Setup::default()
    })
    .await
    .unwrap();
    for oblivious_dns in [false, true] {
        let codes = sample_codes(&world, oblivious_dns).await;
        assert!(
            codes.iter().all(|c| c == "tunnel_refused"),
            "oblivious DNS {oblivious_dns}: {codes:?}"
        );
    }
    let client = world.client(false).unwrap();
    let d = client.discover("bob.example.com").await.unwrap();
    match &d.providers[0].outcome {
        Outcome::Error { message, .. } => assert!(
            message.contains("refused to tunnel") && message.contains("nothing was sent"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(received(&world, &Party::Relay, "POST"), 0);
    for g in gateways() {
        assert_eq!(received(&world, &g, "POST"), 0, "{g}");
    }
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_cannot_tag_clients_with_dates_or_paths() {
    let world = World::start_with(Setup {
        tagging_gateway: true,
        ..Setup::default()
    })
    .await
    .unwrap();
    let zone: BTreeMap<String, Vec<Vec<Vec<u8>>>> = [(
        "_mimi.alice.example.com.".to_string(),
        vec![vec![format!("v=MIMI1; e={TAGGING_HOST}").into_bytes()]],
    )]
    .into();
    // Two clients, two lookups each.
    for _ in 0..2 {
        let client = world.client_with(DnsMode::Static(zone.clone())).unwrap();
        for _ in 0..2 {
            let d = client.discover("alice.example.com").await.unwrap();
            assert!(
                matches!(d.providers[0].outcome, Outcome::Found { .. }),
                "{:?}",
                d.providers[0].outcome
            );
        }
    }
    let gateway = world.tagging_gateway.as_ref().unwrap();
    let seen = gateway.seen();
    let tags = gateway.date_tags();
    // Every lookup: one request on the client's own clock, answered with a
    // fresh tag; one retry carrying that tag; nothing else.
    assert_eq!(seen.len(), 8, "{seen:#?}");
    assert_eq!(tags.len(), 4, "one tag per lookup: {tags:?}");
    assert!(
        tags.iter().all(|(_, uses)| *uses == 1),
        "a tag came back more than once, in a later request: {tags:?}"
    );
    let own_clock = seen
        .iter()
        .filter(|r| {
            let skew = mimi_proto::oblivious::date_skew(&r.date, SystemTime::now()).unwrap();
            skew.unsigned_abs() < Duration::from_secs(60).as_secs()
        })
        .count();
    assert_eq!(own_clock, 4, "later requests carry the client's own clock");
    // No directory document was asked for, and every query used the fixed path.
    assert_eq!(gateway.path_tags(), 0);
    let fixed = format!("{IDENTIFIER_QUERY_PREFIX}{TAGGING_HOST}");
    for r in &seen {
        assert_ne!(r.path, DIRECTORY_PATH);
        assert_eq!(r.path, fixed);
    }
    world.shutdown().await;
}

/// The key id each request a party received was encrypted to.
fn key_ids(world: &World, party: &Party) -> Vec<u8> {
    world
        .recorder
        .of(party)
        .iter()
        .filter(|e| e.received.starts_with(b"POST "))
        .map(|e| {
            let at = e.received.windows(2).position(|w| w == b"\n\n").unwrap();
            e.received[at + 2]
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_encrypted_to_keys_the_gateways_key_files_hold() {
    let world = World::start().await.unwrap();
    let codes = sample_codes(&world, true).await;
    assert!(codes.iter().all(|c| c.starts_with("Found")), "{codes:?}");
    for (provider, party) in world.providers.iter().zip(gateways()) {
        let file = world.dir.path().join(&provider.name).join("keys.json");
        let text = std::fs::read_to_string(file).unwrap();
        let on_disk: serde_json::Value = serde_json::from_str(&text).unwrap();
        let held: Vec<u8> = on_disk["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| u8::try_from(k["id"].as_u64().unwrap()).unwrap())
            .collect();
        let used = key_ids(&world, &party);
        assert!(!used.is_empty(), "{party} was asked");
        assert!(
            used.iter().all(|id| held.contains(id)),
            "{party}: requests to {used:?}, key file holds {held:?}"
        );
        assert_eq!(
            provider
                .gateway
                .metrics()
                .get(mimi_gateway::outcome::Outcome::KeyRejected),
            0
        );
        assert_eq!(
            provider
                .gateway
                .metrics()
                .get(mimi_gateway::outcome::Outcome::Ok) as usize,
            used.len(),
            "{party}: every request decrypted and answered"
        );
    }
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_cannot_tag_clients_with_a_token_challenge_of_its_own() {
    let world = World::start_with(Setup {
        tagging_gateway: true,
        ..Setup::default()
    })
    .await
    .unwrap();
    let gateway = world.tagging_gateway.as_ref().unwrap();
    gateway.tag_with_token_challenges();
    let zone: BTreeMap<String, Vec<Vec<Vec<u8>>>> = [(
        "_mimi.alice.example.com.".to_string(),
        vec![vec![format!("v=MIMI1; e={TAGGING_HOST}").into_bytes()]],
    )]
    .into();
    let client = world.client_as(DnsMode::Static(zone), None).unwrap();
    for _ in 0..2 {
        let d = client.discover("alice.example.com").await.unwrap();
        match &d.providers[0].outcome {
            Outcome::Error { code, .. } => assert_eq!(code, "token_challenge_refused"),
            other => panic!("a per-client challenge was answered: {other:?}"),
        }
    }
    // No token went to it, and no token was asked for.
    assert!(gateway.seen().iter().all(|r| !r.authorization));
    assert!(
        !world
            .recorder
            .of(&Party::Relay)
            .iter()
            .any(|e| String::from_utf8_lossy(&e.received).contains("/issuer/")),
        "tokens were requested for a tagged challenge"
    );
    world.shutdown().await;
}
