//! Lookup tokens seen from the client (DESIGN §10), in the testbed world
//! where the first provider requires them and the relay attests: a hostile
//! issuer that hands each client its own token key, what the issuer and the
//! origin each hold (nothing in common), request sizes with tokens, and
//! `mimi-discover` keeping unspent tokens between runs.

use std::collections::BTreeMap;

use mimi_client::{DnsMode, Outcome, StoredTokens};
use mimi_proto::codec::Codec;
use mimi_proto::privacypass::{ATTESTER_PREFIX, ISSUER_REQUEST_PATH, Token, header};
use mimi_testbed::recorder::{Exchange, Party};
use mimi_testbed::world::{ACCOUNT_QUOTA, Setup};
use mimi_testbed::{World, procs::binary};

async fn token_world(token_key_per_client: bool) -> World {
    World::start_with(Setup {
        tokens: true,
        token_key_per_client,
        ..Setup::default()
    })
    .await
    .unwrap()
}

fn alpha_outcome(d: &mimi_client::Discovery) -> &Outcome {
    &d.providers
        .iter()
        .find(|p| p.host == "mimi.alpha.example")
        .expect("bob is on alpha")
        .outcome
}

fn request_line(e: &Exchange) -> String {
    let line = e.received.split(|&b| b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(line).into_owned()
}

/// Token requests that reached the relay's attester.
fn token_requests_at_relay(world: &World) -> usize {
    world
        .recorder
        .of(&Party::Relay)
        .iter()
        .filter(|e| e.received.starts_with(b"POST ") && request_line(e).contains(ATTESTER_PREFIX))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_that_hands_a_client_its_own_token_key_gets_nothing() {
    let world = token_world(true).await;
    let client = world.client(false).unwrap();
    let d = client.discover("bob.example.com").await.unwrap();
    match alpha_outcome(&d) {
        Outcome::Error { code, .. } => assert_eq!(code, "key_inconsistent"),
        other => panic!("a per-client token key was used: {other:?}"),
    }
    // No token was requested under the key, and none was spent.
    assert_eq!(token_requests_at_relay(&world), 0);
    let issuer = world.recorder.of(&Party::Gateway("alpha".into()));
    assert!(
        !issuer
            .iter()
            .any(|e| request_line(e).contains(ISSUER_REQUEST_PATH)),
        "the issuer was asked for tokens"
    );
    assert_eq!(
        world.providers[0]
            .gateway
            .metrics()
            .get(mimi_gateway::outcome::Outcome::Ok),
        0
    );
    world.shutdown().await;
}

/// Every window of 16 bytes of `needle` that occurs in `haystack`.
fn shares_a_window(haystack: &[u8], needle: &[u8]) -> bool {
    needle
        .windows(16)
        .any(|w| haystack.windows(16).any(|h| h == w))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_issuer_saw_and_what_the_origin_redeemed_share_nothing() {
    let world = token_world(false).await;
    // One client obtains tokens (a batch) and spends one; another spends
    // the rest, as a later run would.
    let first = world.client(false).unwrap();
    let d = first.discover("bob.example.com").await.unwrap();
    assert!(matches!(alpha_outcome(&d), Outcome::Found { .. }));
    let kept: StoredTokens = first.session().tokens().export().await;
    let tokens: Vec<Token> = kept.issuers["mimi.alpha.example"]
        .iter()
        .map(|t| Token::from_bytes(&header::from_b64url(t).unwrap()).unwrap())
        .collect();
    assert!(tokens.len() >= 2, "a batch: {}", tokens.len());
    let second = world.client(false).unwrap();
    second.session().tokens().import(&kept).await;
    for _ in 0..tokens.len() {
        let d = second.discover("bob.example.com").await.unwrap();
        assert!(matches!(alpha_outcome(&d), Outcome::Found { .. }));
    }
    assert_eq!(
        token_requests_at_relay(&world),
        1,
        "the kept tokens were spent, none fetched"
    );

    // Everything the issuer received and sent.
    let issued: Vec<u8> = world
        .recorder
        .of(&Party::Gateway("alpha".into()))
        .iter()
        .filter(|e| request_line(e).contains(ISSUER_REQUEST_PATH))
        .flat_map(|e| e.received.iter().chain(&e.sent).copied())
        .collect();
    assert!(issued.len() > 256 * tokens.len(), "the issuer's record");
    // What the origin redeemed: each token's nonce and authenticator (the
    // challenge and key id are the same for every client by design).
    let spent =
        rusqlite::Connection::open(world.dir.path().join("alpha").join("spent-tokens.sqlite"))
            .unwrap();
    let spent_ids: Vec<Vec<u8>> = spent
        .prepare("SELECT id FROM spent_tokens")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(spent_ids.len(), tokens.len() + 1);
    for t in &tokens {
        assert!(
            spent_ids.iter().any(|id| shares_a_window(id, &t.nonce)),
            "the origin's record holds the redeemed nonce"
        );
        for value in [&t.nonce[..], &t.authenticator[..]] {
            assert!(
                !shares_a_window(&issued, value),
                "the issuer saw a value the origin redeemed"
            );
        }
    }
    for id in &spent_ids {
        assert!(!shares_a_window(&issued, id));
    }
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tokens_every_identifier_query_is_one_size_on_the_relay() {
    let world = token_world(false).await;
    let host = world.providers[0].host.clone();
    // A handle of n octets.
    let handle = |n: usize| {
        let mut s = "a".repeat(n.saturating_sub(2).min(63));
        while s.len() + 2 < n {
            let left = n - 2 - s.len() - 1;
            s.push('.');
            s.push_str(&"a".repeat(left.clamp(1, 63)));
        }
        s.push_str(".b");
        s
    };
    // The shortest and longest of each kind (an email address's domain is
    // bounded by its DNS name's 253 octets).
    let ids: Vec<String> = [3usize, 120, 247]
        .iter()
        .map(|&n| handle(n))
        .chain([
            "+15550109".to_string(),
            "+155501099999999".to_string(),
            "l@example.com".to_string(),
            format!("{}@{}", "l".repeat(64), handle(190)),
        ])
        .collect();
    let mut zone = BTreeMap::new();
    for id in &ids {
        let name = mimi_proto::Identifier::parse(id).unwrap().dns_name();
        zone.insert(name, vec![vec![format!("v=MIMI1; e={host}").into_bytes()]]);
    }
    let client = world
        .client_as(DnsMode::Static(zone), world.credential("sizes"))
        .unwrap();
    // From the first request on: the probe without a token, the retry
    // with one, and every later request from the pool.
    for id in &ids {
        let d = client.discover(id).await.unwrap();
        assert_eq!(
            d.providers[0].outcome,
            Outcome::NotFound,
            "{id}: {:?}",
            d.providers[0].outcome
        );
    }
    let sizes: Vec<usize> = world
        .recorder
        .of(&Party::Relay)
        .iter()
        .filter(|e| e.received.starts_with(b"POST ") && request_line(e).contains("/gateway/"))
        .map(|e| {
            let split = e.received.windows(2).position(|w| w == b"\n\n").unwrap();
            e.received.len() - split - 2
        })
        .collect();
    assert_eq!(sizes.len(), ids.len() + 1, "one probe, then one per lookup");
    let mut distinct = sizes.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        1,
        "request sizes on the relay: {distinct:?}"
    );
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mimi_discover_keeps_unspent_tokens_so_a_quota_counts_lookups_not_runs() {
    let world = token_world(false).await;
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("tokens.json");
    let credential = world.tokens.as_ref().unwrap().credential_file.clone();
    let relay = format!("https://{}", world.relay_addr);
    let discover = |identifier: &str, extra: &[&std::ffi::OsStr]| {
        let bin = binary("mimi-client", "mimi-discover").unwrap();
        let out = world
            .discover_command(&bin, &relay, identifier)
            .args(extra)
            .env_remove("MIMI_CREDENTIAL")
            .output()
            .unwrap();
        let line: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        (out.status.code(), line)
    };
    let run = |identifier: &str| {
        discover(
            identifier,
            &[
                "--credential".as_ref(),
                credential.as_os_str(),
                "--token-cache".as_ref(),
                cache.as_os_str(),
                "--token-batch".as_ref(),
                "4".as_ref(),
            ],
        )
    };
    // Four runs, one lookup each: one batch of four tokens serves them all.
    for _ in 0..4 {
        let (code, line) = tokio::task::block_in_place(|| run("bob.example.com"));
        assert_eq!(code, Some(0), "{line}");
        assert_eq!(line["result"]["providers"][0]["outcome"]["status"], "found");
    }
    assert_eq!(token_requests_at_relay(&world), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the token cache is private");
    }
    let kept: StoredTokens = serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    assert!(kept.is_empty(), "all four spent: {kept:?}");

    // Without a credential: the anonymous quota's two tokens (a batch of
    // four is refused, one of two is not), then a clear refusal.
    let anonymous_cache = cache_dir.path().join("anonymous.json");
    let anonymous = |identifier: &str| {
        discover(
            identifier,
            &["--token-cache".as_ref(), anonymous_cache.as_os_str()],
        )
        .1
    };
    let mut answered = 0;
    for _ in 0..ACCOUNT_QUOTA {
        let line = tokio::task::block_in_place(|| anonymous("bob.example.com"));
        let outcome = &line["result"]["providers"][0]["outcome"];
        if outcome["status"] == "found" {
            answered += 1;
            continue;
        }
        assert_eq!(outcome["code"], "quota_reached", "{line}");
        assert!(
            outcome["message"].as_str().unwrap().contains("resets at"),
            "{line}"
        );
        break;
    }
    assert_eq!(answered, mimi_testbed::world::ANONYMOUS_QUOTA);
    world.shutdown().await;
}
