//! DESIGN §8, proven from what each party recorded: the relay never sees an
//! identifier, an account or a DNS name in any encoding; the gateways never
//! see the client's address.

use std::net::IpAddr;

use mimi_testbed::World;
use mimi_testbed::recorder::{Party, contains_any_form};
use mimi_testbed::report::secrets;
use mimi_testbed::samples::{Expect, samples};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_learns_who_but_not_what_and_gateways_what_but_not_who() {
    let world = World::start().await.unwrap();
    let client = world.client(false).unwrap();
    for sample in samples() {
        let result = client.discover(sample.input).await;
        match (&sample.expect, &result) {
            (Expect::Found(want), Ok(d)) => {
                assert_eq!(crate::accounts(d), *want, "{}", sample.input)
            }
            (Expect::NotFound, Ok(d)) => assert!(crate::accounts(d).is_empty()),
            (Expect::NoRecord, Err(mimi_client::Error::NoMimiRecord)) => {}
            (Expect::Bogus, Err(mimi_client::Error::DnsBogus)) => {}
            (Expect::Invalid, Ok(d)) => assert!(crate::accounts(d).is_empty()),
            (want, got) => panic!("{}: wanted {want:?}, got {got:?}", sample.input),
        }
    }

    let client_ip: IpAddr = "127.0.0.2".parse().unwrap();
    let relay = world.recorder.of(&Party::Relay);
    assert!(
        relay.len() >= 10,
        "the relay carried the traffic ({})",
        relay.len()
    );
    assert_eq!(
        world.recorder.peers(&Party::Relay),
        [client_ip],
        "the relay sees the client"
    );
    let secrets = secrets();
    assert!(secrets.len() >= 20);
    for exchange in &relay {
        for (secret, kind) in &secrets {
            assert!(
                !contains_any_form(&exchange.received, secret),
                "relay received {kind} {secret}"
            );
            assert!(
                !contains_any_form(&exchange.sent, secret),
                "relay sent {kind} {secret}"
            );
        }
    }

    for p in &world.providers {
        let party = Party::Gateway(p.name.clone());
        let seen = world.recorder.of(&party);
        assert!(!seen.is_empty(), "{} was asked", p.name);
        assert_eq!(
            world.recorder.peers(&party),
            ["127.0.0.3".parse::<IpAddr>().unwrap()],
            "{} sees only the relay",
            p.name
        );
        for exchange in &seen {
            assert!(
                !contains_any_form(&exchange.received, "127.0.0.2"),
                "{} got the client address",
                p.name
            );
            let headers = String::from_utf8_lossy(&exchange.received).to_lowercase();
            for h in [
                "forwarded",
                "x-forwarded-for",
                "via:",
                "x-real-ip",
                "user-agent",
            ] {
                assert!(!headers.contains(h), "{} received {h}", p.name);
            }
        }
    }
    world.shutdown().await;
}
