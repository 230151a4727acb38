//! The relay in process, in front of a recording stub gateway: the exact
//! header sets that cross it, the shared key cache, and every refusal.

use mimi_server_core::config_file::TomlFile as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mimi_relay::Config;
use mimi_relay::config::GatewayEntry;
use mimi_server_core::{ConnectionLimits, serve};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const HOST: &str = "mimi.p.example";

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

#[derive(Clone, Default)]
struct Stub {
    seen: Arc<Mutex<Vec<Seen>>>,
    key_fetches: Arc<AtomicUsize>,
}

/// A gateway stand-in on 127.0.0.4 that records everything it receives and
/// answers with extra headers that must not travel back.
async fn stub_gateway(delay: Duration) -> (SocketAddr, Stub) {
    let listener = TcpListener::bind("127.0.0.4:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stub = Stub::default();
    let s = stub.clone();
    let handler = move |req: http::Request<hyper::body::Incoming>, _peer: SocketAddr| {
        let s = s.clone();
        async move {
            let method = req.method().to_string();
            let path = req.uri().path().to_string();
            let headers = req
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect();
            let body = req.into_body().collect().await.unwrap().to_bytes().to_vec();
            s.seen.lock().unwrap().push(Seen {
                method: method.clone(),
                path,
                headers,
                body: body.clone(),
            });
            tokio::time::sleep(delay).await;
            let (ct, payload) = if method == "GET" {
                s.key_fetches.fetch_add(1, Ordering::SeqCst);
                ("application/ohttp-keys", b"\x00\x03key".to_vec())
            } else {
                ("message/ohttp-res", [b"sealed:".as_slice(), &body].concat())
            };
            let mut r = http::Response::new(Full::new(Bytes::from(payload)));
            let h = r.headers_mut();
            h.insert("content-type", ct.parse().unwrap());
            h.insert("cache-control", "public, max-age=120".parse().unwrap());
            h.insert("set-cookie", "track=me".parse().unwrap());
            h.insert("server", "stub".parse().unwrap());
            h.insert("x-gateway-secret", "1".parse().unwrap());
            r
        }
    };
    let limits = ConnectionLimits {
        header_timeout: Duration::from_secs(5),
        drain_timeout: Duration::from_secs(1),
        ..ConnectionLimits::default()
    };
    tokio::spawn(serve(
        listener,
        None,
        limits,
        Default::default(),
        handler,
        std::future::pending(),
    ));
    (addr, stub)
}

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
    }
}

fn config_for(gateway: SocketAddr, scheme: &str) -> Config {
    let mut c = Config::parse("plain_http = true").unwrap();
    c.gateway.push(GatewayEntry {
        host: HOST.into(),
        url: Some(format!("{scheme}://{gateway}/.well-known/ohttp-gateway")),
        issuer: false,
    });
    c.limits.body_timeout_ms = 300;
    c.limits.upstream_timeout_ms = 500;
    c.limits.max_body_bytes = 4096;
    c
}

async fn spawn_relay(config: &Config) -> Running {
    let (relay, tls) = mimi_relay::assemble(config).unwrap();
    let listener = TcpListener::bind("127.0.0.3:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(mimi_relay::http::run(listener, tls, relay, async {
        let _ = rx.await;
    }));
    Running {
        addr,
        stop: Some(tx),
        task,
    }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    let mut http = HttpConnector::new();
    // The client is 127.0.0.2.
    http.set_local_address(Some("127.0.0.2".parse().unwrap()));
    Client::builder(TokioExecutor::new()).build(http)
}

async fn send(
    c: &Client<HttpConnector, Full<Bytes>>,
    method: &str,
    url: String,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut b = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = c
        .request(b.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let mut hs: Vec<(String, String)> = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    hs.sort();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, hs, body)
}

fn names(headers: &[(String, String)]) -> Vec<&str> {
    let mut n: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    n.sort();
    n
}

const NOISY: &[(&str, &str)] = &[
    ("content-type", "message/ohttp-req"),
    ("user-agent", "client/1.0"),
    ("x-forwarded-for", "127.0.0.2"),
    ("forwarded", "for=127.0.0.2"),
    ("via", "1.1 client"),
    ("x-real-ip", "127.0.0.2"),
    ("cookie", "session=abc"),
    ("authorization", "Bearer secret"),
    ("accept-language", "de"),
];

#[tokio::test]
async fn only_body_and_media_type_cross_the_relay() {
    let (gw, stub) = stub_gateway(Duration::ZERO).await;
    let relay = spawn_relay(&config_for(gw, "http")).await;
    let c = client();
    let payload = b"opaque encapsulated request".to_vec();
    let (status, headers, body) = send(
        &c,
        "POST",
        format!("http://{}/gateway/{HOST}", relay.addr),
        NOISY,
        payload.clone(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, [b"sealed:".as_slice(), &payload].concat());
    // Back to the client: exactly these.
    assert_eq!(names(&headers), ["content-length", "content-type"]);
    assert!(headers.contains(&("content-type".into(), "message/ohttp-res".into())));

    // At the gateway: exactly these, and nothing that names the client.
    let seen = stub.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/.well-known/ohttp-gateway")
    );
    assert_eq!(
        names(&seen[0].headers),
        ["content-length", "content-type", "host"]
    );
    assert!(
        seen[0]
            .headers
            .contains(&("content-type".into(), "message/ohttp-req".into()))
    );
    assert!(seen[0].headers.contains(&("host".into(), gw.to_string())));
    assert_eq!(seen[0].body, payload);
    for (k, v) in &seen[0].headers {
        assert!(!v.contains("127.0.0.2"), "{k}: {v}");
    }
    relay.stop().await;
}

#[tokio::test]
async fn two_clients_get_identical_keys_from_one_fetch() {
    // A slow gateway, so that the two misses overlap.
    let (gw, stub) = stub_gateway(Duration::from_millis(150)).await;
    let relay = spawn_relay(&config_for(gw, "http")).await;
    let url = format!("http://{}/gateway/{HOST}", relay.addr);
    let accept = [("accept", "application/ohttp-keys")];
    let (c1, c2) = (client(), client());
    let (a, b) = tokio::join!(
        send(&c1, "GET", url.clone(), &accept, vec![]),
        send(&c2, "GET", url.clone(), &accept, vec![])
    );
    assert_eq!(a.0, 200);
    assert_eq!(b.0, 200);
    assert_eq!(a.2, b"\x00\x03key");
    assert_eq!(a.2, b.2, "every client gets the same bytes");
    assert_eq!(
        stub.key_fetches.load(Ordering::SeqCst),
        1,
        "concurrent misses coalesce"
    );
    assert_eq!(
        names(&a.1),
        ["cache-control", "content-length", "content-type"]
    );
    let max_age: u64 =
        a.1.iter()
            .find(|(k, _)| k == "cache-control")
            .unwrap()
            .1
            .strip_prefix("public, max-age=")
            .unwrap()
            .parse()
            .unwrap();
    assert!((100..=120).contains(&max_age), "{max_age}");
    // Later requests are served from the cache.
    let c = send(&client(), "GET", url, &accept, vec![]).await;
    assert_eq!(c.2, a.2);
    assert_eq!(stub.key_fetches.load(Ordering::SeqCst), 1);
    // What reached the gateway for keys: no client detail either.
    let seen = stub.seen.lock().unwrap().clone();
    assert_eq!(names(&seen[0].headers), ["accept", "host"]);
    relay.stop().await;
}

#[tokio::test]
async fn refused_requests_send_nothing_upstream() {
    let (gw, stub) = stub_gateway(Duration::ZERO).await;
    let relay = spawn_relay(&config_for(gw, "http")).await;
    let c = client();
    let base = format!("http://{}", relay.addr);
    let ohttp = [("content-type", "message/ohttp-req")];

    for method in ["PUT", "DELETE", "PATCH"] {
        let (s, h, _) = send(
            &c,
            method,
            format!("{base}/gateway/{HOST}"),
            &ohttp,
            vec![1],
        )
        .await;
        assert_eq!(s, 405, "{method}");
        assert!(h.contains(&("allow".into(), "GET, HEAD, POST".into())));
    }
    let (s, _, _) = send(
        &c,
        "POST",
        format!("{base}/gateway/{HOST}"),
        &[("content-type", "application/json")],
        vec![1],
    )
    .await;
    assert_eq!(s, 415);
    let (s, _, _) = send(&c, "POST", format!("{base}/gateway/{HOST}"), &[], vec![1]).await;
    assert_eq!(s, 415);
    let (s, _, _) = send(&c, "POST", format!("{base}/gateway/{HOST}"), &ohttp, vec![]).await;
    assert_eq!(s, 400, "missing body");
    let (s, _, _) = send(
        &c,
        "POST",
        format!("{base}/gateway/{HOST}"),
        &ohttp,
        vec![0; 5000],
    )
    .await;
    assert_eq!(s, 413);
    for path in [
        "/gateway/evil.example".to_string(),
        "/gateway/".to_string(),
        format!("/gateway/{HOST}/../x"),
        format!("/gateway/{HOST}%2F..%2Fevil"),
        format!("/gateway/user@{HOST}"),
        format!("/gateway/{HOST}:8443"),
        format!("/gateway/{}", gw.ip()),
        format!("/gateway/{gw}"),
        "/gateway/[::1]".to_string(),
        format!("/gateway/{HOST}?to=evil"),
        "/".to_string(),
    ] {
        let (s, _, _) = send(&c, "POST", format!("{base}{path}"), &ohttp, vec![1]).await;
        assert_eq!(s, 404, "{path}");
        let (s, _, _) = send(&c, "GET", format!("{base}{path}"), &[], vec![]).await;
        assert_eq!(s, 404, "GET {path}");
    }
    assert!(
        stub.seen.lock().unwrap().is_empty(),
        "nothing reached the gateway"
    );
    relay.stop().await;
}

#[tokio::test]
async fn slow_clients_get_408_and_nothing_is_forwarded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (gw, stub) = stub_gateway(Duration::ZERO).await;
    let relay = spawn_relay(&config_for(gw, "http")).await;
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut s = s.connect(relay.addr).await.unwrap();
    let req = format!(
        "POST /gateway/{HOST} HTTP/1.1\r\nhost: r\r\ncontent-type: message/ohttp-req\r\ncontent-length: 100\r\n\r\n0123"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert!(stub.seen.lock().unwrap().is_empty());
    relay.stop().await;
}

#[tokio::test]
async fn a_client_over_its_rate_gets_429_with_retry_after() {
    let (gw, stub) = stub_gateway(Duration::ZERO).await;
    let mut cfg = config_for(gw, "http");
    cfg.rate.per_second = 0.5;
    cfg.rate.burst = 2;
    let relay = spawn_relay(&cfg).await;
    let c = client();
    let url = format!("http://{}/gateway/{HOST}", relay.addr);
    let ohttp = [("content-type", "message/ohttp-req")];
    assert_eq!(send(&c, "POST", url.clone(), &ohttp, vec![1]).await.0, 200);
    assert_eq!(send(&c, "POST", url.clone(), &ohttp, vec![1]).await.0, 200);
    let (s, h, _) = send(&c, "POST", url.clone(), &ohttp, vec![1]).await;
    assert_eq!(s, 429);
    let retry: u64 = h
        .iter()
        .find(|(k, _)| k == "retry-after")
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(stub.seen.lock().unwrap().len(), 2);
    relay.stop().await;
}

#[tokio::test]
async fn gateway_down_is_502_and_slow_is_504() {
    let dead = TcpListener::bind("127.0.0.4:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let relay = spawn_relay(&config_for(dead, "http")).await;
    let c = client();
    let ohttp = [("content-type", "message/ohttp-req")];
    let url = format!("http://{}/gateway/{HOST}", relay.addr);
    let (status, _, body) = send(&c, "POST", url.clone(), &ohttp, vec![1]).await;
    assert_eq!(status, 502);
    assert_eq!(body, b"the gateway could not be reached\n");
    assert_eq!(send(&c, "GET", url, &[], vec![]).await.0, 502);
    relay.stop().await;

    let (slow, _) = stub_gateway(Duration::from_secs(3)).await;
    let relay = spawn_relay(&config_for(slow, "http")).await;
    let started = std::time::Instant::now();
    let (s, _, _) = send(
        &c,
        "POST",
        format!("http://{}/gateway/{HOST}", relay.addr),
        &ohttp,
        vec![1],
    )
    .await;
    assert_eq!(s, 504);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the upstream timeout cut it short"
    );
    relay.stop().await;
}

/// A gateway stand-in that answers every request with a 500 and a body of
/// its own.
async fn failing_gateway() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.4:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = |_req: http::Request<hyper::body::Incoming>, _peer: SocketAddr| async {
        let mut r = http::Response::new(Full::new(Bytes::from_static(
            b"upstream database exploded at 10.1.2.3",
        )));
        *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        r
    };
    tokio::spawn(serve(
        listener,
        None,
        ConnectionLimits::default(),
        Default::default(),
        handler,
        std::future::pending(),
    ));
    addr
}

#[tokio::test]
async fn a_gateway_that_answers_badly_is_not_called_unreachable_nor_echoed() {
    let relay = spawn_relay(&config_for(failing_gateway().await, "http")).await;
    let url = format!("http://{}/gateway/{HOST}", relay.addr);
    let (status, _, body) = send(&client(), "GET", url, &[], vec![]).await;
    assert_eq!(status, 502);
    assert_eq!(body, b"the gateway's answer was not usable\n");
    relay.stop().await;
}

#[tokio::test]
async fn the_concurrency_limit_answers_503() {
    let (gw, _) = stub_gateway(Duration::from_millis(300)).await;
    let mut cfg = config_for(gw, "http");
    cfg.limits.max_concurrent = 1;
    let relay = spawn_relay(&cfg).await;
    let url = format!("http://{}/gateway/{HOST}", relay.addr);
    let ohttp = [("content-type", "message/ohttp-req")];
    let (c1, c2) = (client(), client());
    let (a, b) = tokio::join!(send(&c1, "POST", url.clone(), &ohttp, vec![1]), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        send(&c2, "POST", url.clone(), &ohttp, vec![2]).await
    });
    assert_eq!(a.0, 200);
    assert_eq!(b.0, 503);
    assert!(b.1.iter().any(|(k, _)| k == "retry-after"));
    relay.stop().await;
}

#[tokio::test]
async fn forwards_over_https_trusting_an_extra_ca() {
    // A TLS gateway stub on 127.0.0.4 with a certificate for that address.
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.4".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let server_tls = mimi_server_core::tls::server_config_from(
        vec![cert.cert.der().clone()],
        rustls_pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap(),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.4:0").await.unwrap();
    let gw = listener.local_addr().unwrap();
    let limits = ConnectionLimits {
        header_timeout: Duration::from_secs(5),
        drain_timeout: Duration::from_secs(1),
        ..ConnectionLimits::default()
    };
    let handler = |req: http::Request<hyper::body::Incoming>, _: SocketAddr| async move {
        let version = req.version();
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let mut r = http::Response::new(Full::new(Bytes::from(format!(
            "{version:?}:{}",
            body.len()
        ))));
        r.headers_mut()
            .insert("content-type", "message/ohttp-res".parse().unwrap());
        r
    };
    tokio::spawn(serve(
        listener,
        Some(server_tls),
        limits,
        Default::default(),
        handler,
        std::future::pending(),
    ));

    let mut cfg = config_for(gw, "https");
    // Without the CA the gateway is not trusted: 502.
    let relay = spawn_relay(&cfg).await;
    let c = client();
    let ohttp = [("content-type", "message/ohttp-req")];
    assert_eq!(
        send(
            &c,
            "POST",
            format!("http://{}/gateway/{HOST}", relay.addr),
            &ohttp,
            vec![7; 10]
        )
        .await
        .0,
        502
    );
    relay.stop().await;

    cfg.gateway_ca_file = Some(ca);
    let relay = spawn_relay(&cfg).await;
    let (s, _, body) = send(
        &c,
        "POST",
        format!("http://{}/gateway/{HOST}", relay.addr),
        &ohttp,
        vec![7; 10],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(body, b"HTTP/2.0:10", "HTTP/2 to a gateway that offers it");
    relay.stop().await;
}

#[tokio::test]
async fn metrics_count_by_status_and_gateway_never_by_client() {
    let (gw, _) = stub_gateway(Duration::ZERO).await;
    let (relay, _) = mimi_relay::assemble(&config_for(gw, "http")).unwrap();
    let listener = TcpListener::bind("127.0.0.3:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let admin = TcpListener::bind("127.0.0.3:0").await.unwrap();
    let admin_addr = admin.local_addr().unwrap();
    tokio::spawn(mimi_relay::http::run(
        listener,
        None,
        relay.clone(),
        std::future::pending(),
    ));
    tokio::spawn(mimi_relay::http::run_admin(
        admin,
        relay,
        std::future::pending(),
    ));
    let c = client();
    let ohttp = [("content-type", "message/ohttp-req")];
    send(
        &c,
        "POST",
        format!("http://{addr}/gateway/{HOST}"),
        &ohttp,
        vec![1],
    )
    .await;
    send(
        &c,
        "POST",
        format!("http://{addr}/gateway/nope.example"),
        &ohttp,
        vec![1],
    )
    .await;
    let (s, _, body) = send(
        &c,
        "GET",
        format!("http://{admin_addr}/metrics"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(s, 200);
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("mimi_relay_responses_total{status=\"200\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("mimi_relay_responses_total{status=\"404\"} 1\n"));
    assert!(text.contains(&format!(
        "mimi_relay_forwarded_total{{gateway=\"{HOST}\"}} 1\n"
    )));
    assert!(!text.contains("127.0.0.2"));
    assert!(
        !text.contains("nope.example"),
        "refused hosts are not labels"
    );
}

#[tokio::test]
async fn a_client_slow_to_send_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (gw, stub) = stub_gateway(Duration::ZERO).await;
    let mut cfg = config_for(gw, "http");
    cfg.connections.header_timeout_ms = 300;
    let relay = spawn_relay(&cfg).await;
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut s = s.connect(relay.addr).await.unwrap();
    // Half a request line and one header, then nothing.
    s.write_all(format!("POST /gateway/{HOST} HTTP/1.1\r\nhost: r\r\n").as_bytes())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = vec![0; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("the relay must not wait forever")
        .unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(stub.seen.lock().unwrap().is_empty());
    relay.stop().await;
}

/// Starts a POST from `client` whose body never finishes; the connection is
/// returned so that it stays open.
async fn stalled_post(relay: SocketAddr, client: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind(format!("{client}:0").parse().unwrap()).unwrap();
    let mut s = s.connect(relay).await.unwrap();
    let req = format!(
        "POST /gateway/{HOST} HTTP/1.1\r\nhost: r\r\ncontent-type: message/ohttp-req\r\ncontent-length: 1000\r\n\r\n0123"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    s
}

#[tokio::test]
async fn stalled_bodies_from_many_addresses_hold_nothing_shared() {
    let (gw, _) = stub_gateway(Duration::ZERO).await;
    let mut cfg = config_for(gw, "http");
    cfg.limits.max_concurrent = 4;
    cfg.limits.max_in_flight_per_client = 4;
    cfg.limits.max_in_flight_per_gateway = 4;
    cfg.limits.body_timeout_ms = 5_000;
    let relay = spawn_relay(&cfg).await;
    // Ten addresses, four stalled bodies each: far more than the permits.
    let mut held = Vec::new();
    for a in 20..30 {
        for _ in 0..4 {
            held.push(stalled_post(relay.addr, &format!("127.0.0.{a}")).await);
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let url = format!("http://{}/gateway/{HOST}", relay.addr);
    let ohttp = [("content-type", "message/ohttp-req")];
    let (status, _, _) = send(&client(), "POST", url, &ohttp, vec![1]).await;
    assert_eq!(status, 200, "an honest request is answered");
    drop(held);
    relay.stop().await;
}

#[tokio::test]
async fn one_client_cannot_take_more_than_its_share() {
    let (gw, _) = stub_gateway(Duration::from_millis(500)).await;
    let mut cfg = config_for(gw, "http");
    cfg.limits.max_in_flight_per_client = 2;
    cfg.limits.upstream_timeout_ms = 3_000;
    let relay = spawn_relay(&cfg).await;
    let url = format!("http://{}/gateway/{HOST}", relay.addr);
    let ohttp = [("content-type", "message/ohttp-req")];
    let c = client();
    let slow = (0..2).map(|i| send(&c, "POST", url.clone(), &ohttp, vec![i]));
    let slow = futures::future::join_all(slow);
    let third = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        send(&c, "POST", url.clone(), &ohttp, vec![9]).await
    };
    let other = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let mut http = HttpConnector::new();
        http.set_local_address(Some("127.0.0.7".parse().unwrap()));
        let c2: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build(http);
        send(&c2, "POST", url.clone(), &ohttp, vec![8]).await
    };
    let (slow, third, other) = tokio::join!(slow, third, other);
    assert!(slow.iter().all(|r| r.0 == 200));
    assert_eq!(third.0, 429, "the client's third request at once");
    assert_eq!(other.0, 200, "another client is served");
    relay.stop().await;
}

#[tokio::test]
async fn a_slow_gateway_cannot_starve_the_others() {
    let (slow_gw, _) = stub_gateway(Duration::from_millis(800)).await;
    let (fast_gw, _) = stub_gateway(Duration::ZERO).await;
    let mut cfg = config_for(slow_gw, "http");
    cfg.gateway.push(GatewayEntry {
        host: "mimi.fast.example".into(),
        url: Some(format!("http://{fast_gw}/.well-known/ohttp-gateway")),
        issuer: false,
    });
    cfg.limits.max_concurrent = 4;
    cfg.limits.max_in_flight_per_client = 4;
    cfg.limits.max_in_flight_per_gateway = 2;
    cfg.limits.upstream_timeout_ms = 3_000;
    let relay = spawn_relay(&cfg).await;
    let ohttp = [("content-type", "message/ohttp-req")];
    let slow_url = format!("http://{}/gateway/{HOST}", relay.addr);
    let fast_url = format!("http://{}/gateway/mimi.fast.example", relay.addr);
    // Six requests to the slow gateway from six addresses, then one to the fast one.
    let slow = (0..6).map(|i| {
        let url = slow_url.clone();
        async move {
            let mut http = HttpConnector::new();
            http.set_local_address(Some(format!("127.0.0.{}", 40 + i).parse().unwrap()));
            let c: Client<HttpConnector, Full<Bytes>> =
                Client::builder(TokioExecutor::new()).build(http);
            send(&c, "POST", url, &ohttp, vec![1]).await.0
        }
    });
    let fast = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        send(&client(), "POST", fast_url, &ohttp, vec![2]).await.0
    };
    let (slow, fast) = tokio::join!(futures::future::join_all(slow), fast);
    assert_eq!(fast, 200, "the fast gateway is still answered");
    assert_eq!(slow.iter().filter(|s| **s == 200).count(), 2, "{slow:?}");
    assert!(slow.iter().all(|s| *s == 200 || *s == 503), "{slow:?}");
    relay.stop().await;
}
