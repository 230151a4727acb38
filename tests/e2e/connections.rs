//! The binaries against clients that misuse connections, and against
//! configuration numbers out of range: each plays the attacker (or the
//! careless operator) on loopback, bounded in count and time.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mimi_testbed::pki::TestCa;
use mimi_testbed::procs::{ServerProcess, binary};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A TLS 1.3 ClientHello naming `sni` in its server_name extension, which
/// RFC 6066 §3 forbids for an IP address literal.
fn client_hello(sni: &str) -> Vec<u8> {
    let be16 = |n: usize| u16::try_from(n).unwrap().to_be_bytes();
    let mut ext = Vec::new();
    // server_name
    let name = sni.as_bytes();
    ext.extend_from_slice(&[0x00, 0x00]);
    ext.extend_from_slice(&be16(name.len() + 5));
    ext.extend_from_slice(&be16(name.len() + 3));
    ext.push(0);
    ext.extend_from_slice(&be16(name.len()));
    ext.extend_from_slice(name);
    // supported_versions: TLS 1.3
    ext.extend_from_slice(&[0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04]);
    // supported_groups: x25519
    ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1d]);
    // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256
    ext.extend_from_slice(&[0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x08, 0x04]);
    // key_share: an x25519 share (any 32 bytes parse)
    ext.extend_from_slice(&[0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20]);
    ext.extend_from_slice(&[9u8; 32]);
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[7u8; 32]);
    body.push(0);
    body.extend_from_slice(&[0x00, 0x02, 0x13, 0x01, 0x01, 0x00]);
    body.extend_from_slice(&be16(ext.len()));
    body.extend_from_slice(&ext);
    let mut hs = vec![0x01, 0x00];
    hs.extend_from_slice(&be16(body.len()));
    hs.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&be16(hs.len()));
    record.extend_from_slice(&hs);
    record
}

async fn connect_from(client: &str, server: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(format!("{client}:0").parse().unwrap()).unwrap();
    s.connect(server).await.unwrap()
}

fn addr_of(url: &str) -> SocketAddr {
    url.split("://")
        .nth(1)
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

fn relay_config(dir: &Path, ca: &TestCa, extra: &str) -> std::path::PathBuf {
    let leaf = ca.issue(&["127.0.0.3"]).unwrap();
    std::fs::write(dir.join("relay.pem"), &leaf.cert_pem).unwrap();
    std::fs::write(dir.join("relay.key"), &leaf.key_pem).unwrap();
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.3:0\"\nadmin_listen = \"127.0.0.3:0\"\n[tls]\ncert = \"{c}\"\nkey = \"{k}\"\n[[gateway]]\nhost = \"mimi.alpha.example\"\n{extra}",
            c = dir.join("relay.pem").display(),
            k = dir.join("relay.key").display(),
        ),
    )
    .unwrap();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_cannot_write_the_relay_log_at_will() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new().unwrap();
    let config = relay_config(dir.path(), &ca, "");
    let bin = binary("mimi-relay", "mimi-relay").unwrap();
    let log = dir.path().join("relay.log");
    let relay =
        tokio::task::block_in_place(|| ServerProcess::start_logging_to(&bin, &config, &log))
            .unwrap();
    let addr = addr_of(&relay.url);
    // 20 handshakes naming an IP address as SNI, 20 that are garbage, and
    // 20 connections that say nothing and are closed by the client.
    for _ in 0..20 {
        let mut s = connect_from("127.0.0.50", addr).await;
        s.write_all(&client_hello("127.0.0.1")).await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
        let mut g = connect_from("127.0.0.50", addr).await;
        let _ = g.write_all(b"\x16\x03\x01\x00\x05hello").await;
        let _ = tokio::time::timeout(Duration::from_secs(2), g.read(&mut buf)).await;
        drop(connect_from("127.0.0.50", addr).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::block_in_place(|| relay.stop()).unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // What the relay says at start and stop, and nothing per connection.
    assert!(
        lines.len() <= 4,
        "a client made the relay log:\n{}",
        lines.join("\n")
    );
    assert!(
        !text.contains("SNI") && !text.contains("127.0.0.50"),
        "{text}"
    );
}

/// Runs `bin --config config [args]`: it must fail, before binding, naming
/// `setting` in its error.
fn refused_before_binding(bin: &Path, config: &Path, args: &[&str], setting: &str) {
    let out = Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{setting}: started\n{stdout}{stderr}"
    );
    assert!(!stdout.contains("listening"), "{setting}: bound\n{stdout}");
    assert!(
        stderr.contains(setting) && stderr.contains("range"),
        "{setting}: unclear error\n{stderr}"
    );
}

#[test]
fn every_number_out_of_range_is_refused_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new().unwrap();
    let relay = binary("mimi-relay", "mimi-relay").unwrap();
    for (section, setting, value) in [
        ("connections", "idle_timeout_ms", "0"),
        ("connections", "max", "0"),
        ("connections", "max_per_client", "0"),
        ("connections", "handshake_timeout_ms", "5"),
        ("rate", "per_second", "1e-30"),
        ("rate", "burst", "0"),
        ("limits", "max_body_bytes", "10"),
        ("limits", "tunnel_max_bytes", "100"),
        ("key_cache", "max_age_secs", "100000000"),
    ] {
        let config = relay_config(
            dir.path(),
            &ca,
            &format!("[{section}]\n{setting} = {value}\n"),
        );
        refused_before_binding(&relay, &config, &[], &format!("{section}.{setting}"));
    }

    let gateway = binary("mimi-gateway", "mimi-gateway").unwrap();
    for (section, setting, value) in [
        ("connections", "idle_timeout_ms", "0"),
        ("connections", "shutdown_grace_ms", "100000000"),
        ("replay", "window_secs", "0"),
        ("replay", "future_skew_secs", "600"),
        ("replay", "capacity", "1"),
        ("keys", "max_age_secs", "1"),
        ("limits", "request_timeout_ms", "0"),
    ] {
        let config = dir.path().join("gateway.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.4:0\"\npublic_host = \"mimi.alpha.example\"\nplain_http = true\nkey_file = \"{k}\"\n[directory]\ndatabase = \"{db}\"\n[{section}]\n{setting} = {value}\n",
                k = dir.path().join("keys.json").display(),
                db = dir.path().join("dir.sqlite").display(),
            ),
        )
        .unwrap();
        refused_before_binding(
            &gateway,
            &config,
            &["serve"],
            &format!("{section}.{setting}"),
        );
    }
}

fn gateway_tls_config(dir: &Path, ca: &TestCa, connections: &str) -> std::path::PathBuf {
    let leaf = ca.issue(&["127.0.0.4"]).unwrap();
    std::fs::write(dir.join("gw.pem"), &leaf.cert_pem).unwrap();
    std::fs::write(dir.join("gw.key"), &leaf.key_pem).unwrap();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.4:0\"\npublic_host = \"mimi.alpha.example\"\nkey_file = \"{d}/keys.json\"\n[tls]\ncert = \"{d}/gw.pem\"\nkey = \"{d}/gw.key\"\n[directory]\ndatabase = \"{d}/dir.sqlite\"\n{connections}",
            d = dir.display(),
        ),
    )
    .unwrap();
    config
}

fn tls_connector(ca: &TestCa, alpn: Option<&[u8]>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let mut client = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    client.alpn_protocols = alpn.map(|p| vec![p.to_vec()]).unwrap_or_default();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(client))
}

/// How long the server at `addr` keeps a TLS session that says nothing after
/// its handshake (bounded: 15 s).
async fn silent_tls_held_for(
    addr: SocketAddr,
    server_name: &str,
    connector: &tokio_rustls::TlsConnector,
) -> Duration {
    let stream = connect_from("127.0.0.50", addr).await;
    let name = rustls_pki_types::ServerName::try_from(server_name.to_owned()).unwrap();
    let mut tls = connector.connect(name, stream).await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 256];
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("a TLS session silent after its handshake must be closed");
    started.elapsed()
}

/// The relay and the gateway binaries, with a 1 s header timeout and a 60 s
/// idle timeout: a client that completes the TLS handshake and sends nothing
/// is closed within the header timeout, with HTTP/1.1, HTTP/2 or no ALPN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_session_silent_after_its_handshake_is_closed_by_both_servers() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new().unwrap();
    let connections = "[connections]\nhandshake_timeout_ms = 1000\nheader_timeout_ms = 1000\nidle_timeout_ms = 60000\n";
    let relay_config = relay_config(dir.path(), &ca, connections);
    let gateway_config = gateway_tls_config(dir.path(), &ca, connections);
    let relay_bin = binary("mimi-relay", "mimi-relay").unwrap();
    let gateway_bin = binary("mimi-gateway", "mimi-gateway").unwrap();
    let (relay, gateway) = tokio::task::block_in_place(|| {
        (
            ServerProcess::start(&relay_bin, &relay_config).unwrap(),
            ServerProcess::start(&gateway_bin, &gateway_config).unwrap(),
        )
    });
    for (server, name) in [(&relay, "127.0.0.3"), (&gateway, "127.0.0.4")] {
        for alpn in [Some(&b"http/1.1"[..]), Some(&b"h2"[..]), None] {
            let held =
                silent_tls_held_for(addr_of(&server.url), name, &tls_connector(&ca, alpn)).await;
            assert!(
                held < Duration::from_secs(4),
                "{} held a silent TLS session ({alpn:?}) for {held:?}",
                server.url
            );
        }
    }
    tokio::task::block_in_place(|| {
        relay.stop().unwrap();
        gateway.stop().unwrap();
    });
}

/// Under a 1,024-file limit, one address that holds as many connections as
/// the relay lets it leaves room for another address, which is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_low_file_limit_one_address_cannot_take_every_slot() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new().unwrap();
    let config = relay_config(
        dir.path(),
        &ca,
        "[connections]\nhandshake_timeout_ms = 30000\nheader_timeout_ms = 30000\n",
    );
    let bin = binary("mimi-relay", "mimi-relay").unwrap();
    let check = Command::new("prlimit")
        .args(["--nofile=1024:1024", "--"])
        .arg(&bin)
        .arg("--config")
        .arg(&config)
        .arg("check")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stdout);
    // "at most N at once, M per client address": M leaves room for others.
    let numbers: Vec<usize> = said
        .lines()
        .find(|l| l.contains("per client address"))
        .unwrap_or_else(|| panic!("{said}"))
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let (total, share) = (numbers[0], numbers[1]);
    assert!(share <= total / 4 && share >= 1, "{said}");
    assert!(
        said.contains("WARNING") && said.contains("LimitNOFILE"),
        "{said}"
    );
    let relay = tokio::task::block_in_place(|| {
        ServerProcess::start_with_open_files(&bin, &config, 1_024).unwrap()
    });
    let addr = addr_of(&relay.url);
    // The attacker's address: silent connections until the relay refuses
    // (bounded: 300 attempts).
    let mut held = Vec::new();
    let mut refused = false;
    for _ in 0..300 {
        let mut s = connect_from("127.0.0.60", addr).await;
        let mut buf = [0u8; 1];
        // A refused connection is closed at once, before anything is read.
        match tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => {
                refused = true;
                break;
            }
            _ => held.push(s),
        }
    }
    assert!(refused, "one address held {} connections", held.len());
    assert_eq!(held.len(), share, "one address's share");
    // Another address is still served: a TLS handshake and an answer.
    let stream = connect_from("127.0.0.61", addr).await;
    let name = rustls_pki_types::ServerName::try_from("127.0.0.3").unwrap();
    let mut tls = tls_connector(&ca, Some(b"http/1.1"))
        .connect(name, stream)
        .await
        .expect("another address completes its handshake");
    tls.write_all(b"GET /gateway/mimi.alpha.example HTTP/1.1\r\nhost: 127.0.0.3\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut answer))
        .await
        .expect("an answer to another address")
        .unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 "), "{:?}", &answer[..n]);
    drop(held);
    tokio::task::block_in_place(|| relay.stop()).unwrap();
}
