//! `CONNECT` (DESIGN §6): tunnels reach only allowlisted gateways at their
//! configured address, and are bounded per client, in lifetime and in bytes.
//! The client side is raw TCP, as an attacker's would be.

use mimi_server_core::config_file::TomlFile as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mimi_relay::Config;
use mimi_relay::config::GatewayEntry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const HOST: &str = "mimi.p.example";

/// An echo server on 127.0.0.4 standing in for a gateway; counts connections.
async fn echo_gateway() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.4:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (addr, accepted)
}

/// A relay on 127.0.0.3 serving `HOST` at `gateway`, with `edit` applied.
async fn relay(gateway: SocketAddr, edit: impl FnOnce(&mut Config)) -> SocketAddr {
    let mut c = Config::parse("plain_http = true").unwrap();
    c.gateway.push(GatewayEntry {
        host: HOST.into(),
        url: Some(format!("https://{gateway}/.well-known/ohttp-gateway")),
        issuer: false,
    });
    edit(&mut c);
    let (relay, tls) = mimi_relay::assemble(&c).unwrap();
    let listener = TcpListener::bind("127.0.0.3:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(mimi_relay::http::run(
        listener,
        tls,
        relay,
        std::future::pending(),
    ));
    addr
}

/// Connects from `client` and sends `CONNECT authority`; the status and the
/// stream, positioned after the response head.
async fn connect(relay: SocketAddr, client: &str, authority: &str) -> (u16, TcpStream) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{client}:0").parse().unwrap()).unwrap();
    let mut s = socket.connect(relay).await.unwrap();
    s.write_all(format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 1, "connection closed in the response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let status = head[9..12].parse().unwrap();
    if status == 200 {
        // A 2xx answer to CONNECT carries no body framing (RFC 9110 §9.3.6).
        let lower = head.to_ascii_lowercase();
        assert!(!lower.contains("content-length"), "{head}");
        assert!(!lower.contains("transfer-encoding"), "{head}");
    }
    (status, s)
}

/// Reads until `want` bytes came or the peer closed; how many came.
async fn read_up_to(s: &mut TcpStream, want: usize) -> usize {
    let mut buf = vec![0u8; 4096];
    let mut got = 0;
    while got < want {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got += n,
            Err(_) => panic!("the tunnel neither answered nor closed"),
        }
    }
    got
}

#[tokio::test]
async fn connect_reaches_the_configured_address_of_an_allowed_gateway() {
    let (gw, accepted) = echo_gateway().await;
    let relay = relay(gw, |_| {}).await;
    let (status, mut s) = connect(relay, "127.0.0.2", &format!("{HOST}:443")).await;
    assert_eq!(status, 200);
    s.write_all(b"hello through the tunnel").await.unwrap();
    let mut buf = [0u8; 24];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello through the tunnel");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn connect_to_anything_else_is_403_with_nothing_connected() {
    let (gw, accepted) = echo_gateway().await;
    let relay = relay(gw, |_| {}).await;
    for authority in [
        "evil.example:443".to_string(),
        format!("{HOST}:8443"),
        format!("{HOST}:80"),
        gw.to_string(),
        "127.0.0.4:443".into(),
        "[::1]:443".into(),
        HOST.into(),
    ] {
        let (status, _) = connect(relay, "127.0.0.2", &authority).await;
        assert_eq!(status, 403, "{authority}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "nothing was connected");
}

#[tokio::test]
async fn tunnels_per_client_are_capped_and_others_still_get_theirs() {
    let (gw, accepted) = echo_gateway().await;
    let relay = relay(gw, |c| c.limits.tunnels_per_client = 3).await;
    let authority = format!("{HOST}:443");
    let mut held = Vec::new();
    for _ in 0..3 {
        let (status, s) = connect(relay, "127.0.0.2", &authority).await;
        assert_eq!(status, 200);
        held.push(s);
    }
    let (status, _) = connect(relay, "127.0.0.2", &authority).await;
    assert_eq!(status, 429, "the fourth tunnel of one client");
    let (status, _) = connect(relay, "127.0.0.7", &authority).await;
    assert_eq!(status, 200, "another client is served");
    assert_eq!(accepted.load(Ordering::SeqCst), 4);
    // A closed tunnel gives its place back.
    drop(held.pop());
    let mut freed = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if connect(relay, "127.0.0.2", &authority).await.0 == 200 {
            freed = true;
            break;
        }
    }
    assert!(freed, "the place of a closed tunnel is given back");
}

#[tokio::test]
async fn a_tunnel_carries_at_most_its_byte_limit_and_lives_at_most_its_lifetime() {
    let (gw, _) = echo_gateway().await;
    let relay = relay(gw, |c| {
        c.limits.tunnel_max_bytes = 16 * 1024;
        c.limits.tunnel_lifetime_ms = 600;
    })
    .await;
    let authority = format!("{HOST}:443");

    // Bytes: 64 KiB sent, at most 16 KiB echoed back before the tunnel closes.
    let (status, mut s) = connect(relay, "127.0.0.2", &authority).await;
    assert_eq!(status, 200);
    let (mut r, mut w) = s.split();
    let writer = async {
        let _ = w.write_all(&vec![7u8; 64 * 1024]).await;
    };
    let mut got = 0;
    let reader = async {
        let mut buf = vec![0u8; 4096];
        loop {
            match tokio::time::timeout(Duration::from_secs(5), r.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => got += n,
                Err(_) => panic!("the tunnel did not close"),
            }
        }
    };
    tokio::join!(writer, reader);
    assert!(got <= 16 * 1024, "{got} bytes came back");

    // Lifetime: a silent tunnel is closed after 600 ms.
    let (status, mut s) = connect(relay, "127.0.0.2", &authority).await;
    assert_eq!(status, 200);
    let started = std::time::Instant::now();
    assert_eq!(read_up_to(&mut s, 1).await, 0);
    assert!(started.elapsed() < Duration::from_secs(4));
}
