//! DESIGN §7: step 1 through the relay to a gateway fronting the resolver;
//! the DNS server sees only the gateway's address, the relay sees no name.

use std::net::IpAddr;

use mimi_testbed::World;
use mimi_testbed::recorder::{Party, contains_any_form};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_one_through_the_relay() {
    let world = World::start().await.unwrap();
    let client = world.client(true).unwrap();
    let d = client.discover("alice.example.com").await.unwrap();
    assert_eq!(
        d.dnssec,
        mimi_client::Dnssec::Secure,
        "the resolver's AD bit"
    );
    assert_eq!(
        crate::accounts(&d),
        [
            "mimi://alpha.example/u/alice",
            "mimi://beta.example/u/alice.b"
        ]
    );
    let d = client.discover("frank@example.com").await.unwrap();
    assert_eq!(crate::accounts(&d), ["mimi://beta.example/u/frank"]);
    assert!(matches!(
        client.discover("dave.example.com").await,
        Err(mimi_client::Error::NoMimiRecord)
    ));
    assert!(matches!(
        client.discover("nobody.example.com").await,
        Err(mimi_client::Error::NameNotFound)
    ));

    // An unsigned zone: insecure. A forged record: the validating resolver
    // refuses it (SERVFAIL), so nothing is sent to the provider it names.
    let d = client.discover("ivan.insecure.example.com").await.unwrap();
    assert_eq!(d.dnssec, mimi_client::Dnssec::Insecure);
    let err = client.discover("mallory.example.com").await.unwrap_err();
    assert_eq!(mimi_client::error_code(&err), "dns_failed", "{err}");

    let gateway_ip: IpAddr = "127.0.0.4".parse().unwrap();
    let resolver_ip: IpAddr = "127.0.0.11".parse().unwrap();
    assert_eq!(
        world.recorder.peers(&Party::Resolver),
        [gateway_ip],
        "the resolver sees the gateway, never the client"
    );
    assert_eq!(
        world.recorder.peers(&Party::Dns),
        [resolver_ip],
        "the authoritative server sees the resolver, never the client"
    );
    for e in world.recorder.of(&Party::Relay) {
        for name in [
            "_mimi.alice.example.com",
            "alice.example.com",
            "frank",
            "_mimi.dave.example.com",
        ] {
            assert!(!contains_any_form(&e.received, name), "relay saw {name}");
            assert!(!contains_any_form(&e.sent, name), "relay sent {name}");
        }
    }
    world.shutdown().await;
}
