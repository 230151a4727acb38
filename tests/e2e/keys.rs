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
