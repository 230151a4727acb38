//! Keys through the relay: every client gets the same bytes, and a gateway
//! rotating its keys mid-run causes no failed discovery.

use std::time::{Duration, SystemTime};

use mimi_client::{KeySource, Transport};
use mimi_gateway::keys::RotationPolicy;
use mimi_testbed::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_get_identical_key_bytes() {
    let world = World::start().await.unwrap();
    let host = world.providers[0].host.clone();
    let (a, b) = (world.transport().unwrap(), world.transport().unwrap());
    let (ka, kb) = tokio::join!(
        a.fetch_keys(&host, KeySource::Shared),
        b.fetch_keys(&host, KeySource::Shared)
    );
    let (ka, kb) = (ka.unwrap(), kb.unwrap());
    assert_eq!(ka.status, 200);
    assert_eq!(ka.body, kb.body);
    assert_eq!(
        ka.body.as_ref(),
        world.providers[0].gateway.keys().ring().encoded_list()
    );
    // The gateway's own list, over TLS through the relay's CONNECT: the same.
    let own = a.fetch_keys(&host, KeySource::Tunnel).await.unwrap();
    assert_eq!(own.status, 200);
    assert_eq!(own.body, ka.body);
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_during_a_run_of_discoveries_fails_none() {
    let world = World::start().await.unwrap();
    let gateway = world.providers[0].gateway.clone();
    let rotations = tokio::spawn(async move {
        let policy = RotationPolicy {
            publish_ahead: Duration::ZERO,
            grace: Duration::from_secs(600),
        };
        let mut ids = Vec::new();
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            ids.push(gateway.keys().rotate(SystemTime::now(), policy).unwrap());
        }
        ids
    });
    let mut runs = 0;
    // Clients come and go (fresh ones fetch the new keys, old ones keep theirs).
    let mut client = world.client(false).unwrap();
    while !rotations.is_finished() || runs < 10 {
        if runs % 3 == 0 {
            client = world.client(false).unwrap();
        }
        let d = client.discover("bob.example.com").await.unwrap();
        assert_eq!(
            crate::accounts(&d),
            ["mimi://alpha.example/u/bob"],
            "run {runs}: {d:?}"
        );
        runs += 1;
    }
    let ids = rotations.await.unwrap();
    assert_eq!(ids.len(), 4);
    assert_eq!(world.providers[0].gateway.keys().ring().ids()[0], ids[3]);
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_key_fetches_work_and_show_the_gateway_only_the_key_fetch() {
    use mimi_client::{Discoverer, DnsMode, KeyCheck, Options};
    use mimi_testbed::recorder::Party;

    let world = World::start().await.unwrap();
    let provider = &world.providers[0];
    let transport = world
        .transport()
        .unwrap()
        .with_direct_address(&provider.host, provider.addr);
    let d = Discoverer::new(
        transport,
        Options {
            dns: DnsMode::Server {
                addr: world.dns_addr,
                tcp: false,
            },
            key_check: KeyCheck::DirectShared,
            local_address: Some([127, 0, 0, 2].into()),
            trust_anchor: Some(world.trust_anchor.clone()),
            ..Options::default()
        },
    )
    .unwrap();
    let found = d.discover("bob.example.com").await.unwrap();
    assert_eq!(crate::accounts(&found), ["mimi://alpha.example/u/bob"]);
    // The gateway saw the client's address for the key fetch only, and
    // every request with a body came from the relay.
    for e in world.recorder.of(&Party::Gateway(provider.name.clone())) {
        if e.peer.ip() == std::net::IpAddr::from([127, 0, 0, 2]) {
            assert!(e.received.starts_with(b"GET /.well-known/ohttp-gateway "));
        } else {
            assert_eq!(e.peer.ip(), std::net::IpAddr::from([127, 0, 0, 3]));
        }
    }
    assert!(
        world
            .recorder
            .peers(&Party::Gateway(provider.name.clone()))
            .contains(&[127, 0, 0, 2].into())
    );
    world.shutdown().await;
}
