//! DESIGN §11: mappings signed by a mapping authority, verified by the
//! client whichever gateway served them. Each test plays an attacker: a
//! provider asserting what suits it, a DNS path forging the authority's key,
//! a zone that cannot vouch for its keys; and the honest cases the attacks
//! are told apart from (a rotation, a third-party distribution point).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mimi_client::{AccountVerification, Discovery, DnsMode, Options, Outcome, Verification};
use mimi_gateway::directory::{Directory, Entry, assertion_text};
use mimi_proto::mapping::{AuthoritySigner, Mapping, attach_assertions};
use mimi_proto::query::{IdentifierUri, UserProfile};
use mimi_proto::{IdentifierQueryCode, IdentifierResponse};
use mimi_testbed::World;
use mimi_testbed::samples::{PROVIDERS, assertion_for, example_authority, forger, rotation_keys};
use mimi_testbed::world::{Setup, TAGGING_HOST};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn outcome<'a>(d: &'a Discovery, host: &str) -> &'a Outcome {
    &d.providers
        .iter()
        .find(|p| p.host == host)
        .unwrap_or_else(|| panic!("{host} not asked: {d:?}"))
        .outcome
}

fn verdicts<'a>(d: &'a Discovery, host: &str) -> &'a [AccountVerification] {
    match outcome(d, host) {
        Outcome::Found { verification, .. } => verification,
        other => panic!("{host}: {other:?}"),
    }
}

fn error_code(d: &Discovery, host: &str) -> String {
    match outcome(d, host) {
        Outcome::Error { code, .. } => code.as_str().to_owned(),
        other => panic!("{host}: wanted an error, got {other:?}"),
    }
}

const ALPHA: &str = PROVIDERS[0].host;
const BETA: &str = PROVIDERS[1].host;

/// What the sample world's authorities signed verifies, with DNS asked
/// directly and through the relay (where the resolver validates).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_world_verifies_what_its_authorities_signed() {
    let world = World::start().await.unwrap();
    for oblivious in [false, true] {
        let client = world.client(oblivious).unwrap();
        let alice = client.discover("alice.example.com").await.unwrap();
        assert_eq!(alice.authorities, ["example.com"], "oblivious {oblivious}");
        let a = &verdicts(&alice, ALPHA)[0];
        assert_eq!(a.verification, Verification::Verified, "{a:?}");
        assert_eq!(a.authority.as_deref(), Some("example.com"));
        let b = &verdicts(&alice, BETA)[0];
        assert_eq!(
            (b.verification.clone(), b.reason.as_deref()),
            (
                Verification::Unverified,
                Some("the provider sent no signed mapping")
            )
        );
        // Both still shown: unverified is not invalid.
        assert_eq!(crate::accounts(&alice).len(), 2);

        // A phone number: its authority comes from the trust store only.
        let phoebe = client.discover("+1 555 010 9999").await.unwrap();
        let p = &verdicts(&phoebe, ALPHA)[0];
        assert_eq!(p.authority.as_deref(), Some("numbers.testbed.example"));

        // A forged key under the domain's name: never shown.
        let trent = client.discover("trent.example.com").await.unwrap();
        assert_eq!(error_code(&trent, BETA), "invalid_mapping");
        assert!(crate::accounts(&trent).is_empty());
    }
    world.shutdown().await;
}

/// Authority keys from an unsigned zone, or from a record forged on the
/// way (its signature no longer matches), are not trusted: the account
/// they would verify is unverified, with a warning, never verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_from_an_unsigned_zone_or_a_forged_record_are_not_trusted() {
    let world = World::start().await.unwrap();
    let client = world.client(false).unwrap();
    // insecure.example.com publishes example.com's real key, unsigned.
    let ivan = client.discover("ivan.insecure.example.com").await.unwrap();
    assert!(ivan.authorities.is_empty());
    let v = &verdicts(&ivan, ALPHA)[0];
    assert_eq!(v.verification, Verification::Unverified, "{v:?}");
    assert!(
        ivan.warnings
            .iter()
            .any(|w| w.contains("not DNSSEC-secure")),
        "{:?}",
        ivan.warnings
    );
    // forged.example.com's record was changed to the forger's key, whose
    // signature olga's mapping carries.
    let olga = client.discover("olga.forged.example.com").await.unwrap();
    assert!(olga.authorities.is_empty());
    let v = &verdicts(&olga, ALPHA)[0];
    assert_eq!(
        (v.verification.clone(), v.reason.as_deref()),
        (
            Verification::Unverified,
            Some("no mapping authority is trusted for this identifier")
        )
    );
    assert!(
        olga.warnings.iter().any(|w| w.contains("bogus")),
        "{:?}",
        olga.warnings
    );
    world.shutdown().await;
}

/// `require_verified` shows only verified accounts; a provider with none
/// left says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_verified_refuses_unverified_accounts() {
    let world = World::start().await.unwrap();
    let client = mimi_client::Discoverer::new(
        world.transport().unwrap(),
        Options {
            require_verified: true,
            ..strict_options(&world)
        },
    )
    .unwrap();
    let alice = client.discover("alice.example.com").await.unwrap();
    assert_eq!(crate::accounts(&alice), ["mimi://alpha.example/u/alice"]);
    assert_eq!(error_code(&alice, BETA), "unverified");
    let frank = client.discover("frank@example.com").await.unwrap();
    assert!(crate::accounts(&frank).is_empty());
    // Without the trust store, a phone number has no authority at all.
    let no_store = mimi_client::Discoverer::new(
        world.transport().unwrap(),
        Options {
            authorities: Vec::new(),
            ..strict_options(&world)
        },
    )
    .unwrap();
    let phoebe = no_store.discover("+1 555 010 9999").await.unwrap();
    assert_eq!(error_code(&phoebe, ALPHA), "unverified");
    world.shutdown().await;
}

/// The options of `world.client(false)`, built here so that a test can
/// change one.
fn strict_options(world: &World) -> Options {
    Options {
        dns: DnsMode::Server {
            addr: world.dns_addr,
            tcp: false,
        },
        provider_timeout: Duration::from_secs(5),
        local_address: Some("127.0.0.2".parse().unwrap()),
        trust_anchor: Some(world.trust_anchor.clone()),
        authorities: mimi_client::verify::load_trust_store(&world.authority_keys).unwrap(),
        require_verified: true,
        ..Options::default()
    }
}

/// An answer naming `accounts`, each with the assertion beside it.
fn answer(accounts: &[&str], assertions: &[Option<&[u8]>]) -> IdentifierResponse {
    let uri: Vec<IdentifierUri> = accounts
        .iter()
        .map(|a| IdentifierUri {
            uri: (*a).to_owned(),
        })
        .collect();
    let mut r = IdentifierResponse {
        response_code: IdentifierQueryCode::Success,
        found_profiles: uri
            .iter()
            .map(|u| UserProfile {
                stable_uri: u.clone(),
                fields: Vec::new(),
            })
            .collect(),
        uri,
        id_response_extensions: Default::default(),
    };
    attach_assertions(&mut r, assertions).unwrap();
    r
}

/// A world with a hostile provider ([`TAGGING_HOST`]) the test tells what
/// to answer.
async fn hostile_world() -> (World, std::sync::Arc<mimi_testbed::hostile::TaggingGateway>) {
    let world = World::start_with(Setup {
        tagging_gateway: true,
        ..Setup::default()
    })
    .await
    .unwrap();
    let evil = world.tagging_gateway.clone().unwrap();
    (world, evil)
}

fn sign(by: &AuthoritySigner, identifier: &str, account: &str, from: u64, until: u64) -> Vec<u8> {
    let mapping = Mapping {
        identifier: identifier.into(),
        account: account.into(),
        provider: TAGGING_HOST.into(),
    };
    by.sign(&mapping, from, until).unwrap()
}

/// A hostile provider answers with another account than the signed one
/// (keeping the real assertion), with an assertion signed by a key the
/// domain did not publish, with a valid assertion copied from another
/// identifier, with an expired one, and with none: invalid four times
/// (never shown as found), then unverified (and refused when verified
/// accounts are required).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_asserting_what_suits_it_is_caught() {
    let (world, evil) = hostile_world().await;
    let (now, authority) = (now(), example_authority());
    let swap_real = sign(
        &authority,
        "swap.example.com",
        "mimi://evil.example/u/swap",
        now - 10,
        now + 3600,
    );
    evil.lie_about(
        "swap.example.com",
        answer(&["mimi://evil.example/u/eve"], &[Some(&swap_real)]),
    );
    let forged = sign(
        &forger(),
        "sigforge.example.com",
        "mimi://evil.example/u/eve",
        now - 10,
        now + 3600,
    );
    evil.lie_about(
        "sigforge.example.com",
        answer(&["mimi://evil.example/u/eve"], &[Some(&forged)]),
    );
    // Bob's real mapping, as alpha serves it.
    let bob = assertion_for(
        &PROVIDERS[0],
        "bob.example.com",
        "mimi://alpha.example/u/bob",
    )
    .unwrap();
    evil.lie_about(
        "copied.example.com",
        answer(&["mimi://alpha.example/u/bob"], &[Some(&bob)]),
    );
    let expired = sign(
        &authority,
        "expired.example.com",
        "mimi://evil.example/u/old",
        now - 7200,
        now - 3600,
    );
    evil.lie_about(
        "expired.example.com",
        answer(&["mimi://evil.example/u/old"], &[Some(&expired)]),
    );
    evil.lie_about(
        "bare.example.com",
        answer(&["mimi://evil.example/u/eve"], &[None]),
    );

    let client = world.client(false).unwrap();
    for (id, why) in [
        ("swap.example.com", "another account"),
        ("sigforge.example.com", "signature does not verify"),
        ("copied.example.com", "another identifier"),
        ("expired.example.com", "expired"),
    ] {
        let d = client.discover(id).await.unwrap();
        assert!(crate::accounts(&d).is_empty(), "{id}: shown as found");
        assert_eq!(error_code(&d, TAGGING_HOST), "invalid_mapping", "{id}");
        let Outcome::Error { message, .. } = outcome(&d, TAGGING_HOST) else {
            unreachable!()
        };
        assert!(message.contains(why), "{id}: {message}");
    }
    let bare = client.discover("bare.example.com").await.unwrap();
    assert_eq!(crate::accounts(&bare), ["mimi://evil.example/u/eve"]);
    assert_eq!(
        verdicts(&bare, TAGGING_HOST)[0].verification,
        Verification::Unverified
    );
    let strict =
        mimi_client::Discoverer::new(world.transport().unwrap(), strict_options(&world)).unwrap();
    let bare = strict.discover("bare.example.com").await.unwrap();
    assert!(crate::accounts(&bare).is_empty());
    assert_eq!(error_code(&bare, TAGGING_HOST), "unverified");
    world.shutdown().await;
}

/// A rotation: with two keys published, assertions under either verify;
/// once the old record is gone (the `rotated` domain publishes only the
/// new key), an assertion under the old key no longer does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assertions_verify_across_a_key_rotation_and_not_after_it() {
    let (world, evil) = hostile_world().await;
    let now = now();
    let (old, new) = rotation_keys("rotating.example.com");
    for (id, key) in [
        ("old.rotating.example.com", &old),
        ("new.rotating.example.com", &new),
    ] {
        let account = "mimi://evil.example/u/r";
        let a = sign(key, id, account, now - 10, now + 3600);
        evil.lie_about(id, answer(&[account], &[Some(&a)]));
    }
    let (gone, _) = rotation_keys("rotated.example.com");
    let a = sign(
        &gone,
        "old.rotated.example.com",
        "mimi://evil.example/u/r",
        now - 10,
        now + 3600,
    );
    evil.lie_about(
        "old.rotated.example.com",
        answer(&["mimi://evil.example/u/r"], &[Some(&a)]),
    );
    let client = world.client(false).unwrap();
    for id in ["old.rotating.example.com", "new.rotating.example.com"] {
        let d = client.discover(id).await.unwrap();
        let v = &verdicts(&d, TAGGING_HOST)[0];
        assert_eq!(v.verification, Verification::Verified, "{id}: {v:?}");
        assert_eq!(v.authority.as_deref(), Some("rotating.example.com"));
    }
    let d = client.discover("old.rotated.example.com").await.unwrap();
    assert_eq!(error_code(&d, TAGGING_HOST), "invalid_mapping");
    world.shutdown().await;
}

/// A third-party distribution point: beta serves, imported, a mapping it
/// did not sign (example.com's authority signed alpha's account): verified
/// the same way, as the account on alpha, a provider alice lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distribution_point_serving_mappings_it_did_not_sign_is_verified_alike() {
    let world = World::start().await.unwrap();
    let alpha_dir = world.dir.path().join("alpha").join("directory.sqlite");
    let beta_dir = world.dir.path().join("beta").join("directory.sqlite");
    // Export alpha's signed entry, import it at beta: as an operator would.
    let exported = Directory::open(&alpha_dir).unwrap().list().await.unwrap();
    let alice: Vec<Entry> = exported
        .into_iter()
        .filter(|e| e.identifier == "alice.example.com")
        .collect();
    assert!(alice[0].assertion.is_some());
    let beta = Directory::open(&beta_dir).unwrap();
    assert_eq!(beta.import(&alice).await.unwrap(), 1);
    // The same assertion beta could not have made: it holds no key.
    let expected = assertion_for(
        &PROVIDERS[0],
        "alice.example.com",
        "mimi://alpha.example/u/alice",
    )
    .map(|a| assertion_text(&a));
    assert_eq!(
        alice[0].assertion.as_ref().map(String::len),
        expected.map(|e| e.len())
    );

    let client = world.client(false).unwrap();
    let d = client.discover("alice.example.com").await.unwrap();
    let at_beta = verdicts(&d, BETA);
    let served = at_beta
        .iter()
        .find(|v| v.account == "mimi://alpha.example/u/alice")
        .unwrap_or_else(|| panic!("{at_beta:?}"));
    assert_eq!(served.verification, Verification::Verified);
    assert_eq!(served.authority.as_deref(), Some("example.com"));
    world.shutdown().await;
}
