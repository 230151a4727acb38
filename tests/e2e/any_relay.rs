//! The client through a relay laid out as relays in the wild are (one
//! resource per gateway, keys only through `CONNECT`), beside ours.

use mimi_client::{Discoverer, DnsMode, Options};
use mimi_testbed::World;
use mimi_testbed::recorder::Party;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discoveries_through_a_one_gateway_relay_and_ours() {
    let world = World::start().await.unwrap();
    let alpha = &world.providers[0];
    let other = mimi_testbed::one_relay::spawn(
        [127, 0, 0, 9].into(),
        &alpha.host,
        alpha.addr,
        std::slice::from_ref(world.ca.der()),
        world.stopping(),
    )
    .await
    .unwrap();
    // alpha through the one-gateway relay; beta through ours.
    let transport = world
        .transport()
        .unwrap()
        .with_relay_for(&alpha.host, &format!("http://{}/", other.addr))
        .unwrap();
    let d = Discoverer::new(
        transport,
        Options {
            dns: DnsMode::Server {
                addr: world.dns_addr,
                tcp: false,
            },
            local_address: Some([127, 0, 0, 2].into()),
            trust_anchor: Some(world.trust_anchor.clone()),
            ..Options::default()
        },
    )
    .unwrap();
    let found = d.discover("alice.example.com").await.unwrap();
    assert_eq!(
        crate::accounts(&found),
        [
            "mimi://alpha.example/u/alice",
            "mimi://beta.example/u/alice.b"
        ]
    );
    // The key check adapts: over TLS to alpha through the other relay's
    // CONNECT only (it keeps no shared copy); beta's also against ours.
    assert_eq!(found.providers[0].key_check, "tunnel");
    assert_eq!(found.providers[1].key_check, "tunnel+shared");
    let seen = other.seen.lock().unwrap().clone();
    assert!(
        seen.contains(&format!("CONNECT {}:443", alpha.host)),
        "{seen:?}"
    );
    assert!(seen.iter().any(|l| l.starts_with("POST ")), "{seen:?}");
    assert!(seen.iter().all(|l| !l.starts_with("GET ")), "{seen:?}");
    // Our relay carried nothing for alpha.
    for e in world.recorder.of(&Party::Relay) {
        let line = String::from_utf8_lossy(&e.received);
        assert!(!line.contains(&alpha.host), "{line}");
    }
    world.shutdown().await;
}
