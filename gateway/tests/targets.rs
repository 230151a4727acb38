//! The targets behind the gateway: the provider's own API (upstream mode) and
//! a DNS resolver (oblivious DNS), each a stub on its own loopback address.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use hickory_proto::op::{Message, MessageType, Query};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use http_body_util::{BodyExt, Full};
use mimi_proto::codec::Codec;
use mimi_proto::oblivious;
use mimi_proto::query::IdentifierUri;
use mimi_proto::{IdentifierQueryCode, IdentifierResponse};
use mimi_server_core::{ConnectionLimits, serve};
use tokio::net::{TcpListener, UdpSocket};

type Seen = Arc<Mutex<Vec<(String, String, Vec<(String, String)>)>>>;

/// A stand-in for a provider's discovery API that records what reaches it.
async fn stub_api(delay: Duration) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.6:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let limits = ConnectionLimits {
        header_timeout: Duration::from_secs(5),
        drain_timeout: Duration::from_secs(1),
        ..ConnectionLimits::default()
    };
    let handler = move |req: http::Request<hyper::body::Incoming>, _peer: std::net::SocketAddr| {
        let record = record.clone();
        async move {
            let headers = req
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect();
            record.lock().unwrap().push((
                req.method().to_string(),
                req.uri().path().to_string(),
                headers,
            ));
            let _ = req.into_body().collect().await;
            tokio::time::sleep(delay).await;
            let resp = IdentifierResponse {
                uri: vec![IdentifierUri {
                    uri: "mimi://p.example/u/upstream-alice".into(),
                }],
                ..IdentifierResponse::with_code(IdentifierQueryCode::Success)
            };
            let mut r = http::Response::new(Full::new(Bytes::from(resp.to_bytes().unwrap())));
            r.headers_mut()
                .insert("content-type", "application/octet-stream".parse().unwrap());
            r
        }
    };
    tokio::spawn(serve(
        listener,
        None,
        limits,
        Default::default(),
        handler,
        std::future::pending(),
    ));
    (addr, seen)
}

#[tokio::test]
async fn upstream_mode_forwards_and_returns_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (api, seen) = stub_api(Duration::ZERO).await;
    let mut cfg = config(dir.path());
    cfg.upstream = Some(mimi_gateway::config::UpstreamSection {
        url: format!("http://{api}"),
        timeout_ms: 2000,
        ca_file: None,
    });
    let gw = spawn(&cfg).await;
    let c = client();
    let (status, msg) = exchange(&c, gw.addr, &handle_query("alice.example.com")).await;
    assert_eq!(status, 200);
    let msg = msg.unwrap();
    assert_eq!(msg.control().status().unwrap().code(), 200);
    let resp = IdentifierResponse::from_bytes(msg.content()).unwrap();
    assert_eq!(resp.uri[0].uri, "mimi://p.example/u/upstream-alice");

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (method, path, headers) = &seen[0];
    assert_eq!(
        (method.as_str(), path.as_str()),
        ("POST", format!("/v1/identifierQuery/{HOST}").as_str())
    );
    // Nothing but what the API needs: no Forwarded, Via or client address
    // (the content type is the query's own, as the client sent it).
    let mut names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    assert_eq!(names, ["content-length", "content-type", "host"]);
    assert_eq!(
        headers.iter().find(|(n, _)| n == "content-type").unwrap().1,
        "application/octet-stream"
    );
    assert_eq!(
        headers.iter().find(|(n, _)| n == "host").unwrap().1,
        api.to_string()
    );
    gw.stop().await;
}

#[tokio::test]
async fn upstream_down_is_an_encrypted_502_and_slow_an_encrypted_504() {
    let dir = tempfile::tempdir().unwrap();
    // Bound and dropped: connections to it are refused.
    let dead = TcpListener::bind("127.0.0.6:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let mut cfg = config(dir.path());
    cfg.upstream = Some(mimi_gateway::config::UpstreamSection {
        url: format!("http://{dead}"),
        timeout_ms: 300,
        ca_file: None,
    });
    let gw = spawn(&cfg).await;
    let c = client();
    let (status, msg) = exchange(&c, gw.addr, &handle_query("alice.example.com")).await;
    assert_eq!(status, 200, "errors after decryption travel encrypted");
    assert_eq!(msg.unwrap().control().status().unwrap().code(), 502);
    gw.stop().await;

    let (slow, _) = stub_api(Duration::from_secs(3)).await;
    cfg.upstream.as_mut().unwrap().url = format!("http://{slow}");
    let gw = spawn(&cfg).await;
    let (status, msg) = exchange(&c, gw.addr, &handle_query("alice.example.com")).await;
    assert_eq!(status, 200);
    assert_eq!(msg.unwrap().control().status().unwrap().code(), 504);
    gw.stop().await;
}

/// A resolver stub: answers every TXT query with one record; over UDP it
/// answers truncated when `truncate` is set, so the client must retry on TCP.
async fn stub_dns(truncate: bool) -> (SocketAddr, Arc<Mutex<Vec<SocketAddr>>>) {
    let udp = UdpSocket::bind("127.0.0.7:0").await.unwrap();
    let addr = udp.local_addr().unwrap();
    let tcp = TcpListener::bind(addr).await.unwrap();
    let peers: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
    fn answer(query: &[u8], truncated: bool) -> Vec<u8> {
        let q = Message::from_vec(query).unwrap();
        let mut m = Message::new();
        m.set_id(q.id())
            .set_message_type(MessageType::Response)
            .add_queries(q.queries().to_vec());
        if truncated {
            m.set_truncated(true);
        } else {
            let name = q.queries()[0].name().clone();
            m.add_answer(Record::from_rdata(
                name,
                60,
                RData::TXT(TXT::new(vec!["v=MIMI1; e=m.example".into()])),
            ));
        }
        m.to_vec().unwrap()
    }
    let udp_peers = peers.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, peer) = udp.recv_from(&mut buf).await.unwrap();
            udp_peers.lock().unwrap().push(peer);
            udp.send_to(&answer(&buf[..n], truncate), peer)
                .await
                .unwrap();
        }
    });
    let tcp_peers = peers.clone();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let (mut s, peer) = tcp.accept().await.unwrap();
            tcp_peers.lock().unwrap().push(peer);
            let n = usize::from(s.read_u16().await.unwrap());
            let mut q = vec![0; n];
            s.read_exact(&mut q).await.unwrap();
            let a = answer(&q, false);
            s.write_all(&(a.len() as u16).to_be_bytes()).await.unwrap();
            s.write_all(&a).await.unwrap();
        }
    });
    (addr, peers)
}

fn dns_query_bhttp(body: &[u8]) -> Vec<u8> {
    let date = oblivious::format_date(std::time::SystemTime::now());
    oblivious::encode_request(
        "POST",
        HOST,
        oblivious::DNS_QUERY_PATH,
        &[
            ("date", &date),
            ("content-type", oblivious::MEDIA_DNS_MESSAGE),
        ],
        body,
    )
    .unwrap()
}

fn txt_query() -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(4242).add_query(Query::query(
        Name::from_ascii("_mimi.alice.example.com.").unwrap(),
        RecordType::TXT,
    ));
    m.to_vec().unwrap()
}

#[tokio::test]
async fn oblivious_dns_over_udp_and_tcp_after_truncation() {
    for truncate in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (resolver, peers) = stub_dns(truncate).await;
        let mut cfg = config(dir.path());
        cfg.dns = Some(mimi_gateway::config::DnsSection {
            resolver,
            timeout_ms: 2000,
            bind: None,
        });
        let gw = spawn(&cfg).await;
        let c = client();
        let (status, msg) = exchange(&c, gw.addr, &dns_query_bhttp(&txt_query())).await;
        assert_eq!(status, 200);
        let msg = msg.unwrap();
        assert_eq!(msg.control().status().unwrap().code(), 200);
        assert_eq!(
            msg.header().get(b"content-type"),
            Some(&b"application/dns-message"[..])
        );
        let answer = Message::from_vec(msg.content()).unwrap();
        assert_eq!(answer.id(), 4242);
        assert_eq!(answer.answers().len(), 1, "truncate={truncate}");
        assert_eq!(peers.lock().unwrap().len(), if truncate { 2 } else { 1 });

        // A body that is not a DNS query is refused, encrypted.
        let (_, msg) = exchange(&c, gw.addr, &dns_query_bhttp(b"nonsense")).await;
        assert_eq!(msg.unwrap().control().status().unwrap().code(), 400);
        gw.stop().await;
    }
}

/// A resolver stub whose every answer is preceded by two forgeries, as an
/// attacker racing it would send: one with the ID the client chose (which a
/// forwarder that keeps it makes predictable) and one with the right ID but
/// another question. Both name an attacker's provider.
async fn racing_dns() -> SocketAddr {
    let udp = UdpSocket::bind("127.0.0.7:0").await.unwrap();
    let addr = udp.local_addr().unwrap();
    fn message(id: u16, question: Query, txt: &str) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(id)
            .set_message_type(MessageType::Response)
            .add_query(question.clone());
        m.add_answer(Record::from_rdata(
            question.name().clone(),
            60,
            RData::TXT(TXT::new(vec![txt.into()])),
        ));
        m.to_vec().unwrap()
    }
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, peer) = udp.recv_from(&mut buf).await.unwrap();
            let q = Message::from_vec(&buf[..n]).unwrap();
            let question = q.queries()[0].clone();
            let evil = "v=MIMI1; e=mimi.attacker.example";
            let other = Query::query(
                Name::from_ascii("_mimi.other.example.").unwrap(),
                RecordType::TXT,
            );
            for forged in [
                message(4242, question.clone(), evil),
                message(q.id(), other, evil),
            ] {
                udp.send_to(&forged, peer).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            udp.send_to(&message(q.id(), question, "v=MIMI1; e=m.example"), peer)
                .await
                .unwrap();
        }
    });
    addr
}

#[tokio::test]
async fn forged_dns_answers_racing_the_resolver_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let resolver = racing_dns().await;
    let mut cfg = config(dir.path());
    cfg.dns = Some(mimi_gateway::config::DnsSection {
        resolver,
        timeout_ms: 2000,
        bind: None,
    });
    let gw = spawn(&cfg).await;
    let c = client();
    for _ in 0..3 {
        let (status, msg) = exchange(&c, gw.addr, &dns_query_bhttp(&txt_query())).await;
        assert_eq!(status, 200);
        let answer = Message::from_vec(msg.unwrap().content()).unwrap();
        assert_eq!(answer.id(), 4242, "the client's own ID comes back");
        let texts: Vec<String> = answer
            .answers()
            .iter()
            .filter_map(|r| match r.data() {
                RData::TXT(t) => Some(t.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["v=MIMI1; e=m.example"], "a forgery was taken");
    }
    gw.stop().await;
}
