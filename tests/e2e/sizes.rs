//! Padding (DESIGN §4): the relay sees one request size whatever the
//! identifier's length, and one response size for found and not found.

use std::collections::BTreeMap;

use mimi_client::DnsMode;
use mimi_testbed::World;
use mimi_testbed::recorder::Party;

fn post_sizes(world: &World) -> Vec<(usize, usize)> {
    world
        .recorder
        .of(&Party::Relay)
        .iter()
        .filter(|e| e.received.starts_with(b"POST "))
        .map(|e| (body_len(&e.received), body_len(&e.sent)))
        .collect()
}

fn body_len(rendered: &[u8]) -> usize {
    let split = rendered.windows(2).position(|w| w == b"\n\n").unwrap();
    rendered.len() - split - 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_response_sizes_do_not_depend_on_the_identifier_or_the_answer() {
    let world = World::start().await.unwrap();
    let short = "a.b".to_string();
    let long = format!(
        "{}.{}.{}.{}",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "examples"
    );
    assert_eq!(short.len(), 3);
    assert_eq!(long.len(), 200);
    let host = &world.providers[0].host;
    let mut zone = BTreeMap::new();
    for id in [
        &short,
        &long,
        &"alice.example.com".to_string(),
        &"nobody.example.com".to_string(),
    ] {
        zone.insert(
            format!("_mimi.{id}."),
            vec![vec![format!("v=MIMI1; e={host}").into_bytes()]],
        );
    }
    let client = world.client_with(DnsMode::Static(zone)).unwrap();
    // Warm the key cache, so every later POST is one identifierQuery.
    client.discover("alice.example.com").await.unwrap();
    world.recorder.clear();

    for id in [&short, &long] {
        let d = client.discover(id).await.unwrap();
        assert!(crate::accounts(&d).is_empty());
    }
    let sizes = post_sizes(&world);
    assert_eq!(sizes.len(), 2);
    assert_eq!(
        sizes[0].0, sizes[1].0,
        "3 and 200 characters look alike: {sizes:?}"
    );

    world.recorder.clear();
    let found = client.discover("alice.example.com").await.unwrap();
    assert_eq!(crate::accounts(&found).len(), 1);
    let absent = client.discover("nobody.example.com").await.unwrap();
    assert!(crate::accounts(&absent).is_empty());
    let sizes = post_sizes(&world);
    assert_eq!(sizes.len(), 2);
    assert_eq!(
        sizes[0].1, sizes[1].1,
        "found and not found look alike: {sizes:?}"
    );
    assert_eq!(sizes[0].0, sizes[1].0);
    world.shutdown().await;
}
