//! The accept loop against clients that hold connections without using
//! them: silent, half-open, idle keep-alive, idle HTTP/2, many at once.
//! Each plays the attacker on loopback, bounded in count and time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mimi_server_core::{ConnectionLimits, ConnectionStats, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

const SERVER: &str = "127.0.0.2:0";

struct Server {
    addr: SocketAddr,
    stats: Arc<ConnectionStats>,
    stop: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn limits() -> ConnectionLimits {
    ConnectionLimits {
        max_connections: 100,
        max_per_client: 100,
        handshake_timeout: Duration::from_millis(400),
        header_timeout: Duration::from_millis(400),
        idle_timeout: Duration::from_millis(600),
        drain_timeout: Duration::from_secs(1),
    }
}

async fn start(limits: ConnectionLimits, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
    let listener = TcpListener::bind(SERVER).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(ConnectionStats::default());
    let stop = CancellationToken::new();
    let handler = |_req: Request<Incoming>, _peer: SocketAddr| async {
        Response::new(Full::new(Bytes::from_static(b"ok")))
    };
    tokio::spawn(serve(
        listener,
        tls,
        limits,
        stats.clone(),
        handler,
        stop.clone().cancelled_owned(),
    ));
    Server { addr, stats, stop }
}

async fn connect_from(client: &str, server: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(format!("{client}:0").parse().unwrap()).unwrap();
    s.connect(server).await.unwrap()
}

/// Reads until the server closes the connection; how long that took.
async fn closed_after(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read_all)
        .await
        .expect("the server must close the connection");
    started.elapsed()
}

async fn get_on(stream: &mut TcpStream) -> String {
    get_path(stream, "/").await
}

async fn get_path(stream: &mut TcpStream, path: &str) -> String {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: s\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_handshake_timeout() {
    let server = start(limits(), None).await;
    let mut s = connect_from("127.0.0.10", server.addr).await;
    let took = closed_after(&mut s).await;
    assert!(took >= Duration::from_millis(300), "{took:?}");
    let stats = server.stats.render("t");
    assert!(stats.contains("phase=\"handshake\"} 1"), "{stats}");
}

#[tokio::test]
async fn half_sent_headers_are_cut_off() {
    let server = start(limits(), None).await;
    let mut s = connect_from("127.0.0.10", server.addr).await;
    s.write_all(b"GET / HTTP/1.1\r\nhost: s\r\n").await.unwrap();
    let took = closed_after(&mut s).await;
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn headers_trickled_a_byte_at_a_time_do_not_keep_a_connection() {
    let server = start(limits(), None).await;
    let mut s = connect_from("127.0.0.10", server.addr).await;
    let started = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    // One header byte every 50 ms, for at most 5 s.
    let mut cut = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if s.write_all(b"x").await.is_err() {
            cut = true;
            break;
        }
        let mut buf = [0u8; 256];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::ZERO, s.read(&mut buf)).await {
            // An answer (408) or the end of the stream: cut off either way.
            let _ = n;
            cut = true;
            break;
        }
    }
    assert!(cut, "a trickling client kept its connection for 5 s");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    // hyper's header timeout also closes idle HTTP/1.1 connections: made
    // longer here, so that the idle timeout is the one tested.
    let server = start(
        ConnectionLimits {
            header_timeout: Duration::from_secs(5),
            ..limits()
        },
        None,
    )
    .await;
    let mut s = connect_from("127.0.0.10", server.addr).await;
    assert!(get_on(&mut s).await.starts_with("HTTP/1.1 200"));
    let took = closed_after(&mut s).await;
    assert!(took >= Duration::from_millis(400), "{took:?}");
    let stats = server.stats.render("t");
    assert!(stats.contains("phase=\"idle\"} 1"), "{stats}");
}

#[tokio::test]
async fn a_connection_in_use_is_not_idle() {
    let server = start(limits(), None).await;
    let mut s = connect_from("127.0.0.10", server.addr).await;
    // A request every 300 ms for 1.5 s: longer than the idle timeout in all.
    for _ in 0..5 {
        assert!(get_on(&mut s).await.starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(get_on(&mut s).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed() {
    let server = start(limits(), None).await;
    let stream = connect_from("127.0.0.10", server.addr).await;
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let req = Request::get("http://s/")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let _ = resp.into_body().collect().await;
    let started = Instant::now();
    // The server sends GOAWAY and closes; the client's connection ends.
    tokio::time::timeout(Duration::from_secs(10), conn)
        .await
        .expect("the server must close an idle HTTP/2 connection")
        .unwrap()
        .ok();
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(server.stats.render("t").contains("phase=\"idle\"} 1"));
}

fn tls_pair() -> (Arc<rustls::ServerConfig>, tokio_rustls::TlsConnector) {
    tls_pair_with_alpn(None)
}

/// A server configuration (offering h2 and HTTP/1.1) and a client that
/// offers `alpn`, or no ALPN at all.
fn tls_pair_with_alpn(
    alpn: Option<&[u8]>,
) -> (Arc<rustls::ServerConfig>, tokio_rustls::TlsConnector) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.2".to_string()]).unwrap();
    let server = mimi_server_core::tls::server_config_from(
        vec![cert.cert.der().clone()],
        rustls_pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into()),
    )
    .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut client = client;
    client.alpn_protocols = alpn.map(|p| vec![p.to_vec()]).unwrap_or_default();
    (server, tokio_rustls::TlsConnector::from(Arc::new(client)))
}

#[tokio::test]
async fn over_tls_a_silent_handshake_and_an_idle_session_are_closed() {
    let (server_tls, connector) = tls_pair();
    let server = start(limits(), Some(server_tls)).await;
    // Connected, no ClientHello.
    let mut silent = connect_from("127.0.0.10", server.addr).await;
    assert!(closed_after(&mut silent).await < Duration::from_secs(3));
    // Handshake done, then nothing.
    let stream = connect_from("127.0.0.10", server.addr).await;
    let name = rustls_pki_types::ServerName::try_from("127.0.0.2").unwrap();
    let mut tls = connector.connect(name, stream).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "an idle TLS session must be closed");
    assert!(started.elapsed() >= Duration::from_millis(400));
}

/// A client that completes a TLS handshake and then says nothing must send
/// its first request's headers within the header timeout, counted from the
/// end of the handshake, whatever protocol it negotiated: with the idle
/// timeout long, it was held for that instead.
#[tokio::test]
async fn a_tls_session_silent_after_its_handshake_is_closed_within_the_header_timeout() {
    for alpn in [Some(&b"http/1.1"[..]), Some(&b"h2"[..]), None] {
        let (server_tls, connector) = tls_pair_with_alpn(alpn);
        let server = start(
            ConnectionLimits {
                handshake_timeout: Duration::from_millis(400),
                header_timeout: Duration::from_millis(400),
                idle_timeout: Duration::from_secs(30),
                ..limits()
            },
            Some(server_tls),
        )
        .await;
        let stream = connect_from("127.0.0.10", server.addr).await;
        let name = rustls_pki_types::ServerName::try_from("127.0.0.2").unwrap();
        let mut tls = connector.connect(name, stream).await.unwrap();
        assert_eq!(
            tls.get_ref().1.alpn_protocol(),
            alpn,
            "the protocol negotiated"
        );
        let started = Instant::now();
        let mut buf = [0u8; 256];
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(
            ended.is_ok(),
            "{alpn:?}: a silent TLS session must be closed"
        );
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(3),
            "{alpn:?}: held for {took:?}, not the header timeout"
        );
        let stats = server.stats.render("t");
        assert!(stats.contains("phase=\"first_request\"} 1"), "{stats}");
    }
}

/// An HTTP/2 client that sends its preface and settings, then no request,
/// is held no longer than one that sends nothing.
#[tokio::test]
async fn an_http2_connection_without_a_request_is_closed_within_the_header_timeout() {
    let server = start(
        ConnectionLimits {
            idle_timeout: Duration::from_secs(30),
            ..limits()
        },
        None,
    )
    .await;
    let stream = connect_from("127.0.0.10", server.addr).await;
    let (_sender, conn) = hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(
        TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), conn)
        .await
        .expect("the server must close an HTTP/2 connection that sends no request")
        .ok();
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_share() {
    let server = start(
        ConnectionLimits {
            max_per_client: 4,
            idle_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(30),
            ..limits()
        },
        None,
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from("127.0.0.21", server.addr).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The fifth from the same address: closed at once, nothing read.
    let mut fifth = connect_from("127.0.0.21", server.addr).await;
    assert!(closed_after(&mut fifth).await < Duration::from_secs(1));
    assert!(server.stats.render("t").contains("cap=\"per_client\"} 1"));
    // Another address is served.
    let mut honest = connect_from("127.0.0.22", server.addr).await;
    assert!(get_on(&mut honest).await.starts_with("HTTP/1.1 200"));
    drop(held);
}

#[tokio::test]
async fn the_total_cap_refuses_the_next_connection_and_healthz_still_answers() {
    let server = start(
        ConnectionLimits {
            max_connections: 6,
            max_per_client: 6,
            idle_timeout: Duration::from_millis(1500),
            handshake_timeout: Duration::from_millis(1500),
            ..limits()
        },
        None,
    )
    .await;
    let admin_listener = TcpListener::bind("127.0.0.3:0").await.unwrap();
    let admin = admin_listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(mimi_server_core::admin::serve_admin(
        admin_listener,
        || "up 1\n".to_string(),
        stop.clone().cancelled_owned(),
    ));
    // Six addresses, one silent connection each: the cap.
    let mut held = Vec::new();
    for a in 31..37 {
        held.push(connect_from(&format!("127.0.0.{a}"), server.addr).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut next = connect_from("127.0.0.40", server.addr).await;
    assert!(closed_after(&mut next).await < Duration::from_secs(1));
    assert!(server.stats.render("t").contains("cap=\"total\"} 1"));
    // The admin listener has its own budget.
    let mut health = connect_from("127.0.0.41", admin).await;
    let answer = get_path(&mut health, "/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The silent ones are closed by the first-byte timeout; then an honest
    // client is served.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let mut honest = connect_from("127.0.0.40", server.addr).await;
    assert!(get_on(&mut honest).await.starts_with("HTTP/1.1 200"));
    stop.cancel();
    drop(held);
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_finishes() {
    let listener = TcpListener::bind(SERVER).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let handler = |_req: Request<Incoming>, _peer: SocketAddr| async {
        Response::new(Full::new(Bytes::from_static(b"ok")))
    };
    let task = tokio::spawn(serve(
        listener,
        None,
        ConnectionLimits {
            idle_timeout: Duration::from_secs(60),
            ..limits()
        },
        Arc::default(),
        handler,
        stop.clone().cancelled_owned(),
    ));
    let mut s = connect_from("127.0.0.10", addr).await;
    assert!(get_on(&mut s).await.starts_with("HTTP/1.1 200"));
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(3), task)
        .await
        .expect("shutdown must finish within the drain timeout")
        .unwrap();
    assert!(closed_after(&mut s).await < Duration::from_secs(1));
}
