//! Failures: a provider down does not hide the others and is reported with a
//! reason within the timeout; the relay down is a clear error, quickly.

use std::time::{Duration, Instant};

use mimi_client::Outcome;
use mimi_testbed::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_provider_down() {
    let mut world = World::start().await.unwrap();
    world.stop_provider(0).await; // alpha
    let client = world.client(false).unwrap();
    let started = Instant::now();
    let d = client.discover("alice.example.com").await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "within the provider timeout"
    );
    assert_eq!(d.providers.len(), 2);
    match &d.providers[0].outcome {
        Outcome::Error { code, message } => {
            assert_eq!(code, "gateway_unreachable");
            assert!(
                message.contains("could not reach the provider's gateway"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        d.providers[1].outcome.accounts(),
        ["mimi://beta.example/u/alice.b"]
    );
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_down() {
    let world = World::start().await.unwrap();
    let relay = world.relay_addr;
    world.shutdown().await;
    // Everything is gone, DNS too: the client gets a fixed zone.
    let started = Instant::now();
    let transport =
        mimi_client::RelayTransport::new(&format!("https://{relay}"), &[], Duration::from_secs(5))
            .unwrap();
    let mut zone = std::collections::BTreeMap::new();
    zone.insert(
        "_mimi.bob.example.com.".to_string(),
        vec![vec![b"v=MIMI1; e=mimi.alpha.example".to_vec()]],
    );
    let d = mimi_client::Discoverer::new(
        transport,
        mimi_client::Options {
            dns: mimi_client::DnsMode::Static(zone),
            ..Default::default()
        },
    )
    .unwrap()
    .discover("bob.example.com")
    .await
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "quickly: {:?}",
        started.elapsed()
    );
    assert_eq!(
        d.providers[0].outcome,
        Outcome::Error {
            message: "could not reach the relay".into(),
            code: mimi_client::ErrorCode::RelayUnreachable
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_over_https_trusts_the_configured_ca_and_every_mode_validates() {
    use mimi_client::{Discoverer, DnsMode, Options};
    use mimi_testbed::doh::{self, DOH_HOST};

    let world = World::start().await.unwrap();
    let doh_addr = doh::spawn(
        [127, 0, 0, 10].into(),
        world.dns_addr,
        &world.ca,
        world.dir.path(),
        world.stopping(),
    )
    .await
    .unwrap();
    let mode = DnsMode::Doh {
        addr: doh_addr,
        tls_name: DOH_HOST.into(),
        path: "/dns-query".into(),
    };
    let client = |roots: Vec<rustls_pki_types::CertificateDer<'static>>| {
        Discoverer::new(
            world.transport().unwrap(),
            Options {
                dns: mode.clone(),
                ca_roots: roots,
                local_address: Some([127, 0, 0, 2].into()),
                trust_anchor: Some(world.trust_anchor.clone()),
                ..Options::default()
            },
        )
        .unwrap()
    };
    let trusting = client(vec![world.ca.der().clone()]);
    let d = trusting.discover("bob.example.com").await.unwrap();
    assert_eq!(crate::accounts(&d), ["mimi://alpha.example/u/bob"]);
    assert_eq!(d.dnssec, mimi_client::Dnssec::Secure);
    // Every mode validates: UDP, TCP and oblivious too (the system resolver
    // is this machine's, not the testbed's).
    for mode in [
        DnsMode::Server {
            addr: world.dns_addr,
            tcp: false,
        },
        DnsMode::Server {
            addr: world.dns_addr,
            tcp: true,
        },
        DnsMode::Oblivious {
            gateway: world.providers[0].host.clone(),
        },
    ] {
        let c = world.client_with(mode.clone()).unwrap();
        let d = c.discover("bob.example.com").await.unwrap();
        assert_eq!(d.dnssec, mimi_client::Dnssec::Secure, "{mode:?}");
        let err = c.discover("mallory.example.com").await.unwrap_err();
        assert!(
            matches!(
                err,
                mimi_client::Error::DnsBogus | mimi_client::Error::DnsFailed(_)
            ),
            "{mode:?}: {err:?}"
        );
    }
    // Without the CA, the private certificate is refused: a failure, said so.
    let err = client(Vec::new())
        .discover("bob.example.com")
        .await
        .unwrap_err();
    assert_eq!(mimi_client::error_code(&err), "dns_failed", "{err}");
    world.shutdown().await;
}
