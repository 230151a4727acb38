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

/// A handle of exactly `len` octets (3 to 253): labels of up to 63 `a`s, then `.b`.
fn handle_of_length(len: usize) -> String {
    let mut s = String::new();
    let mut left = len - 2;
    while left > 0 {
        let mut label = left.min(63);
        if left - label == 1 {
            label -= 1; // leave room for a dot and a one-octet label
        }
        s.push_str(&"a".repeat(label));
        left -= label;
        if left > 0 {
            s.push('.');
            left -= 1;
        }
    }
    s.push_str(".b");
    s
}

/// The distinct (request, response) sizes the relay saw for POSTs.
fn distinct(sizes: &[(usize, usize)]) -> (Vec<usize>, Vec<usize>) {
    let mut req: Vec<usize> = sizes.iter().map(|s| s.0).collect();
    let mut res: Vec<usize> = sizes.iter().map(|s| s.1).collect();
    req.sort_unstable();
    req.dedup();
    res.sort_unstable();
    res.dedup();
    (req, res)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_identifier_length_and_every_answer_is_one_size_on_the_relay() {
    use mimi_gateway::directory::{Directory, Entry};
    use mimi_proto::query::{MAX_ACCOUNT_URI_LEN, MAX_ACCOUNTS_PER_IDENTIFIER};

    let world = World::start().await.unwrap();
    let alpha = &world.providers[0];
    let host = alpha.host.clone();

    // Identifiers of every legal length, of each kind: a handle's DNS name
    // (`_mimi.` before it) and an email domain's (`<56 hex>._mimi.` before
    // it) must fit DNS's 253 octets too.
    let mut ids: Vec<String> = (3..=247).map(handle_of_length).collect();
    ids.extend((1..=64).map(|n| format!("{}@example.com", "l".repeat(n))));
    ids.extend([100, 150, 190].map(|n| format!("{}@{}", "l".repeat(64), handle_of_length(n))));
    ids.extend((8..=15).map(|n| format!("+{}", "5".repeat(n))));
    // Found with 1 to the maximum number of accounts, each as long as
    // allowed and each with its signed mapping (DESIGN §11).
    let authority = mimi_testbed::samples::example_authority();
    let signed = |identifier: &str, account: &str| {
        let mapping = mimi_proto::mapping::Mapping {
            identifier: identifier.to_owned(),
            account: account.to_owned(),
            provider: host.clone(),
        };
        let a = authority
            .sign(&mapping, 1_800_000_000, 4_000_000_000)
            .unwrap();
        Some(mimi_gateway::directory::assertion_text(&a))
    };
    let directory =
        Directory::open(&world.dir.path().join(&alpha.name).join("directory.sqlite")).unwrap();
    for k in 1..=MAX_ACCOUNTS_PER_IDENTIFIER {
        let id = format!("n{k}.sizes.example");
        for a in 0..k {
            let prefix = format!("mimi://alpha.example/u/{a:02}");
            let account = format!("{prefix}{}", "x".repeat(MAX_ACCOUNT_URI_LEN - prefix.len()));
            directory
                .add(&Entry {
                    identifier: id.clone(),
                    assertion: signed(&id, &account),
                    account,
                    searchable: true,
                })
                .await
                .unwrap();
        }
        ids.push(id);
    }
    // More than the maximum (the last one above): cut, and still the same size.
    for a in MAX_ACCOUNTS_PER_IDENTIFIER..MAX_ACCOUNTS_PER_IDENTIFIER + 4 {
        directory
            .add(&Entry {
                identifier: format!("n{MAX_ACCOUNTS_PER_IDENTIFIER}.sizes.example"),
                account: format!("mimi://alpha.example/u/extra{a}"),
                searchable: true,
                assertion: signed(
                    &format!("n{MAX_ACCOUNTS_PER_IDENTIFIER}.sizes.example"),
                    &format!("mimi://alpha.example/u/extra{a}"),
                ),
            })
            .await
            .unwrap();
    }
    // Not found, and present but not searchable.
    ids.push("nobody.example.com".into());
    ids.push("carol.example.com".into());

    let mut zone = BTreeMap::new();
    for id in &ids {
        let name = mimi_proto::Identifier::parse(id).unwrap().dns_name();
        zone.insert(name, vec![vec![format!("v=MIMI1; e={host}").into_bytes()]]);
    }
    let client = world.client_with(DnsMode::Static(zone)).unwrap();
    client.discover("alice.example.com").await.ok(); // keys, checked once
    world.recorder.clear();
    for id in &ids {
        let d = client.discover(id).await.unwrap();
        assert!(
            !matches!(d.providers[0].outcome, mimi_client::Outcome::Error { .. }),
            "{id}: {:?}",
            d.providers[0].outcome
        );
        if let Some(k) = id
            .strip_prefix('n')
            .and_then(|r| r.strip_suffix(".sizes.example"))
        {
            let k: usize = k.parse().unwrap();
            assert_eq!(crate::accounts(&d).len(), k, "{id}");
        }
    }
    assert_eq!(alpha.gateway.metrics().capped_answers(), 1);

    // Each error answer the gateway gives after decryption.
    let session = client.session();
    let query = mimi_proto::codec::Codec::to_bytes(&mimi_proto::IdentifierRequest::single(
        mimi_proto::SearchIdentifierType::Handle,
        "alice.example.com",
    ))
    .unwrap();
    let fixed = format!("/v1/identifierQuery/{host}");
    let wrong = [
        ("POST", "other.example", fixed.as_str(), &query[..]), // foreign origin: 403
        ("POST", host.as_str(), "/nowhere", &query[..]),       // 404
        ("GET", host.as_str(), fixed.as_str(), &[][..]),       // 405
        ("POST", host.as_str(), fixed.as_str(), &b"junk"[..]), // malformed query: 400
    ];
    for (method, authority, path, body) in wrong {
        let answer = session
            .request(
                &host,
                mimi_client::session::InnerRequest {
                    method,
                    authority,
                    path,
                    content_type: Some("application/octet-stream"),
                    body,
                },
            )
            .await
            .unwrap();
        assert!(answer.status >= 400, "{method} {authority}{path}");
    }

    let sizes = post_sizes(&world);
    assert_eq!(sizes.len(), ids.len() + wrong.len());
    let (requests, responses) = distinct(&sizes);
    assert_eq!(
        requests.len(),
        1,
        "request sizes on the relay: {requests:?}"
    );
    assert_eq!(
        responses.len(),
        1,
        "response sizes on the relay: {responses:?}"
    );
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oblivious_dns_answers_with_0_to_16_records_are_one_size_on_the_relay() {
    use mimi_testbed::samples::record_count_name;

    let world = World::start().await.unwrap();
    let client = world.client(true).unwrap();
    client.discover("alice.example.com").await.unwrap(); // keys, checked once
    world.recorder.clear();
    for k in 0..=16 {
        let handle = record_count_name(k)
            .trim_start_matches("_mimi.")
            .trim_end_matches('.')
            .to_owned();
        let result = client.discover(&handle).await;
        match (k, result) {
            (0, Err(mimi_client::Error::NoMimiRecord)) => {}
            (k, Ok(d)) => assert_eq!(d.providers.len(), k),
            (k, Err(e)) => panic!("{k} records: {e}"),
        }
    }
    // NXDOMAIN too.
    assert!(client.discover("nothing.sizes.example.com").await.is_err());
    // Every POST was a DNS query: the providers the records name are not
    // served. Each lookup asks two names, its MIMI records and its domain's
    // mapping authorities (DESIGN §11), so 18 lookups made 36.
    let sizes = post_sizes(&world);
    assert_eq!(sizes.len(), 36);
    let (requests, responses) = distinct(&sizes);
    assert_eq!(
        requests.len(),
        1,
        "request sizes on the relay: {requests:?}"
    );
    assert_eq!(
        responses.len(),
        1,
        "response sizes on the relay: {responses:?}"
    );
    world.shutdown().await;
}
