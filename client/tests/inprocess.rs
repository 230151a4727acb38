//! The client against the real gateway and relay, in process on loopback:
//! the gateway on 127.0.0.4, the relay on 127.0.0.3; and the `mimi-discover`
//! command's input checks and failures. (The command finding accounts runs
//! in the testbed, against its signed DNS: `tests/e2e/cli.rs`.)

use mimi_server_core::config_file::TomlFile as _;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType};
use mimi_client::{Discoverer, DnsMode, Options, Outcome, RelayTransport};
use tokio::net::{TcpListener, UdpSocket};

const HOST: &str = "mimi.a.example";

/// A self-signed certificate for `HOST` (and 127.0.0.4, where the relay
/// reaches it), written as `cert.pem` and `key.pem`
/// in `dir`; it is its own trust anchor.
fn certificate(dir: &std::path::Path) -> rustls_pki_types::CertificateDer<'static> {
    let made = rcgen::generate_simple_self_signed(vec![HOST.to_string(), "127.0.0.4".to_string()])
        .unwrap();
    std::fs::write(dir.join("cert.pem"), made.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), made.signing_key.serialize_pem()).unwrap();
    made.cert.der().clone()
}

/// The gateway for `HOST`, over TLS with the certificate in `dir`.
async fn gateway(dir: &std::path::Path) -> SocketAddr {
    let mut cfg = mimi_gateway::Config::parse(&format!("public_host = \"{HOST}\"")).unwrap();
    cfg.tls = Some(mimi_gateway::config::TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    });
    cfg.key_file = dir.join("keys.json");
    cfg.directory.database = dir.join("dir.sqlite");
    let assembled = mimi_gateway::assemble(&cfg).await.unwrap();
    mimi_gateway::directory::Directory::open(&cfg.directory.database)
        .unwrap()
        .add(&mimi_gateway::directory::Entry {
            identifier: "alice.example.com".into(),
            account: "mimi://a.example/u/alice".into(),
            searchable: true,
            assertion: None,
        })
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.4:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(mimi_gateway::http::run(
        listener,
        assembled.tls,
        assembled.gateway,
        assembled.options,
        std::future::pending(),
    ));
    addr
}

/// The relay, in plain HTTP, trusting the certificate in `dir` for the gateway.
async fn relay(gateway: SocketAddr, dir: &std::path::Path) -> SocketAddr {
    let mut cfg = mimi_relay::Config::parse("plain_http = true").unwrap();
    cfg.gateway_ca_file = Some(dir.join("cert.pem"));
    cfg.gateway.push(mimi_relay::config::GatewayEntry {
        host: HOST.into(),
        url: Some(format!("https://{gateway}/.well-known/ohttp-gateway")),
        issuer: false,
    });
    let (relay, _) = mimi_relay::assemble(&cfg).unwrap();
    let listener = TcpListener::bind("127.0.0.3:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(mimi_relay::http::run(
        listener,
        None,
        relay,
        std::future::pending(),
    ));
    addr
}

/// A client of the relay at `relay`, trusting `ca`, with a fixed zone listing
/// `HOST` for each handle.
fn discoverer(
    relay: SocketAddr,
    ca: &rustls_pki_types::CertificateDer<'static>,
    handles: &[&str],
) -> Discoverer<RelayTransport> {
    let transport = RelayTransport::new(
        &format!("http://{relay}"),
        std::slice::from_ref(ca),
        Duration::from_secs(5),
    )
    .unwrap();
    let zone: BTreeMap<String, Vec<Vec<Vec<u8>>>> = handles
        .iter()
        .map(|h| {
            (
                format!("_mimi.{h}."),
                vec![vec![format!("v=MIMI1; e={HOST}").into_bytes()]],
            )
        })
        .collect();
    let options = Options {
        dns: DnsMode::Static(zone),
        ..Options::default()
    };
    Discoverer::new(transport, options).unwrap()
}

#[tokio::test]
async fn finds_an_account_through_the_real_relay_and_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certificate(dir.path());
    let relay_addr = relay(gateway(dir.path()).await, dir.path()).await;
    let d = discoverer(relay_addr, &ca, &["alice.example.com", "bob.example.com"]);
    let found = d.discover("alice.example.com").await.unwrap();
    assert_eq!(
        found.providers[0].outcome.accounts(),
        ["mimi://a.example/u/alice"]
    );
    let absent = d.discover("bob.example.com").await.unwrap();
    assert_eq!(absent.providers[0].outcome, Outcome::NotFound);
}

#[tokio::test]
async fn relay_down_is_a_clear_error() {
    let dead = TcpListener::bind("127.0.0.3:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = discoverer(dead, &certificate(dir.path()), &["alice.example.com"]);
    let found = d.discover("alice.example.com").await.unwrap();
    assert_eq!(
        found.providers[0].outcome,
        Outcome::Error {
            message: "could not reach the relay".into(),
            code: mimi_client::ErrorCode::RelayUnreachable
        }
    );
}

/// A DNS server stub on 127.0.0.5 answering every query with `code` and no records.
async fn failing_dns(code: hickory_proto::op::ResponseCode) -> SocketAddr {
    let udp = UdpSocket::bind("127.0.0.5:0").await.unwrap();
    let addr = udp.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                return;
            };
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut m = Message::new();
            m.set_id(q.id())
                .set_message_type(MessageType::Response)
                .set_response_code(code)
                .add_queries(q.queries().to_vec());
            let _ = udp.send_to(&m.to_vec().unwrap(), peer).await;
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn servfail_and_refused_are_failures_not_absence() {
    use hickory_proto::op::ResponseCode;
    for code in [
        ResponseCode::ServFail,
        ResponseCode::Refused,
        ResponseCode::FormErr,
    ] {
        let dns = failing_dns(code).await;
        let transport =
            RelayTransport::new("http://127.0.0.3:9", &[], Duration::from_secs(2)).unwrap();
        let d = Discoverer::new(
            transport,
            Options {
                dns: DnsMode::Server {
                    addr: dns,
                    tcp: false,
                },
                dns_timeout: Duration::from_secs(2),
                ..Options::default()
            },
        )
        .unwrap();
        // With validation on, hickory reports a SERVFAIL as a negative answer
        // it cannot validate: a failure all the same, never "not discoverable".
        let err = d.discover("alice.example.com").await.unwrap_err();
        assert!(
            matches!(&err, mimi_client::Error::DnsFailed(_)),
            "{code}: {err:?}"
        );
        assert_eq!(mimi_client::error_code(&err), "dns_failed");
        let args = vec![
            "--relay".to_string(),
            "http://127.0.0.3:9".into(),
            "--dns".into(),
            format!("udp:{dns}"),
            "--timeout".into(),
            "2".into(),
            "alice.example.com".into(),
        ];
        let (exit, stdout, stderr) = tokio::task::spawn_blocking(move || run_cli(&args))
            .await
            .unwrap();
        assert_eq!(exit, 3, "{code}: {stdout}{stderr}");
        assert!(stdout.contains("DNS lookup failed"), "{stdout}");
        assert!(
            stderr.contains("the resolver sees your address"),
            "{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_bounds_the_whole_lookup_dns_included() {
    // A DNS server that never answers.
    let silent = UdpSocket::bind("127.0.0.5:0").await.unwrap();
    let dns = silent.local_addr().unwrap();
    let args = vec![
        "--relay".to_string(),
        "http://127.0.0.3:9".into(),
        "--dns".into(),
        format!("udp:{dns}"),
        "--timeout".into(),
        "1".into(),
        "alice.example.com".into(),
    ];
    let started = std::time::Instant::now();
    let (exit, stdout, _) = tokio::task::spawn_blocking(move || run_cli(&args))
        .await
        .unwrap();
    let took = started.elapsed();
    drop(silent);
    assert_eq!(exit, 3, "{stdout}");
    assert!(stdout.contains("DNS did not answer in time"), "{stdout}");
    // Bounded by --timeout 1 (plus process start), not by the 5 s default.
    assert!(took < Duration::from_secs(4), "{took:?}");
}

fn run_cli(args: &[String]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mimi-discover"))
        .args(args)
        .env_remove("MIMI_RELAY")
        .env_remove("MIMI_DNS")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn bad_input_is_refused_before_any_traffic() {
    // A relay address nothing listens on: if anything were sent, it would
    // fail with exit 3, not 2.
    let relay = "http://127.0.0.3:9".to_string();
    for (args, needle) in [
        (
            vec![
                "--relay".to_string(),
                relay.clone(),
                "not an identifier".into(),
            ],
            "not a valid identifier",
        ),
        (
            vec![
                "--relay".into(),
                "ftp://relay.example".into(),
                "alice.example.com".into(),
            ],
            "relay URL",
        ),
        (
            vec![
                "--relay".into(),
                relay.clone(),
                "--file".into(),
                "/nonexistent/contacts.txt".into(),
            ],
            "cannot read",
        ),
        (
            vec![
                "--relay".into(),
                relay.clone(),
                "--dns".into(),
                "carrier-pigeon".into(),
                "a.example.com".into(),
            ],
            "--dns",
        ),
        (
            vec![
                "--relay".into(),
                "http://relay.example".into(),
                "alice.example.com".into(),
            ],
            "must be https://",
        ),
        (
            vec![
                "--relay".into(),
                relay.clone(),
                "--key-check".into(),
                "trust-me".into(),
                "alice.example.com".into(),
            ],
            "--key-check",
        ),
        (vec!["alice.example.com".into()], "no relay"),
        (vec!["--relay".into(), relay.clone()], "nothing to look up"),
    ] {
        let (code, stdout, stderr) = run_cli(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(stdout.is_empty());
    }
}

#[test]
fn a_batch_with_one_bad_line_names_it_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("contacts.txt");
    std::fs::write(&file, "# friends\nalice.example.com\n\n+1 555 CALL\n").unwrap();
    let (code, _, stderr) = run_cli(&[
        "--relay".into(),
        "http://127.0.0.3:9".into(),
        "--file".into(),
        file.display().to_string(),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("contacts.txt line 4"), "{stderr}");
}
