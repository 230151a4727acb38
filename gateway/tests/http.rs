//! The gateway over real sockets on loopback: its HTTP statuses, its keys
//! across restarts, and rotation under load.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mimi_gateway::directory::Entry;
use mimi_gateway::keys::RotationPolicy;
use mimi_gateway::{Config, Gateway};
use mimi_proto::codec::Codec;
use mimi_proto::oblivious::{self, GATEWAY_PATH, MEDIA_OHTTP_REQ};
use mimi_proto::{
    IdentifierQueryCode, IdentifierRequest, IdentifierResponse, SearchIdentifierType, ohttp,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const HOST: &str = "mimi.p.example";

struct Running {
    addr: SocketAddr,
    gateway: Arc<Gateway>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
    }
}

fn config(dir: &Path) -> Config {
    let mut c = Config::parse(&format!("public_host = \"{HOST}\"\nplain_http = true")).unwrap();
    c.key_file = dir.join("keys.json");
    c.directory.database = dir.join("dir.sqlite");
    c.limits.body_timeout_ms = 300;
    c.limits.max_body_bytes = 4096;
    c
}

async fn spawn_on(config: &Config, bind: SocketAddr) -> Running {
    let (gateway, tls) = mimi_gateway::assemble(config).unwrap();
    let listener = TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(mimi_gateway::http::run(
        listener,
        tls,
        gateway.clone(),
        config.http_options(),
        async {
            let _ = rx.await;
        },
    ));
    Running {
        addr,
        gateway,
        stop: Some(tx),
        task,
    }
}

async fn spawn(config: &Config) -> Running {
    spawn_on(config, "127.0.0.4:0".parse().unwrap()).await
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn send(
    c: &Client<HttpConnector, Full<Bytes>>,
    method: &str,
    url: String,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, http::HeaderMap, Vec<u8>) {
    let mut b = http::Request::builder().method(method).uri(url);
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    let resp = c
        .request(b.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

async fn fetch_keys(c: &Client<HttpConnector, Full<Bytes>>, addr: SocketAddr) -> Vec<u8> {
    let (status, headers, body) = send(
        c,
        "GET",
        format!("http://{addr}{GATEWAY_PATH}"),
        None,
        vec![],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/ohttp-keys");
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("public, max-age=")
    );
    body
}

/// One lookup through the gateway; returns the outer status and, on 200, the
/// inner answer.
async fn query(
    c: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    keys: &[u8],
    identifier: &str,
) -> (u16, Option<IdentifierResponse>) {
    let entry = &oblivious::decode_key_config_list(keys).unwrap()[0];
    let body = IdentifierRequest::single(SearchIdentifierType::Handle, identifier)
        .to_bytes()
        .unwrap();
    let date = oblivious::format_date(SystemTime::now());
    let inner = oblivious::encode_request(
        "POST",
        HOST,
        &format!("/v1/identifierQuery/{HOST}"),
        &[("date", &date)],
        &body,
    )
    .unwrap();
    let (enc, ctx) = ohttp::ClientRequest::from_config(&mut entry.config().unwrap())
        .unwrap()
        .encapsulate(&inner)
        .unwrap();
    let (status, headers, body) = send(
        c,
        "POST",
        format!("http://{addr}{GATEWAY_PATH}"),
        Some(MEDIA_OHTTP_REQ),
        enc,
    )
    .await;
    if status != 200 {
        return (status, None);
    }
    assert_eq!(headers["content-type"], "message/ohttp-res");
    let msg = oblivious::decode_message(&ctx.decapsulate(&body).unwrap()).unwrap();
    assert_eq!(msg.control().status().unwrap().code(), 200);
    (
        200,
        Some(IdentifierResponse::from_bytes(msg.content()).unwrap()),
    )
}

#[tokio::test]
async fn starts_empty_and_answers_after_an_admin_add() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let gw = spawn(&cfg).await;
    let c = client();
    let keys = fetch_keys(&c, gw.addr).await;
    let (_, resp) = query(&c, gw.addr, &keys, "alice.example.com").await;
    assert_eq!(resp.unwrap().response_code, IdentifierQueryCode::NotFound);

    // The admin CLI writes through its own connection.
    let admin = mimi_gateway::directory::Directory::open(&cfg.directory.database).unwrap();
    admin
        .add(&Entry {
            identifier: "alice.example.com".into(),
            account: "mimi://p.example/u/alice".into(),
            searchable: true,
        })
        .unwrap();
    let (_, resp) = query(&c, gw.addr, &keys, "alice.example.com").await;
    let resp = resp.unwrap();
    assert_eq!(resp.response_code, IdentifierQueryCode::Success);
    assert_eq!(resp.uri[0].uri, "mimi://p.example/u/alice");
    gw.stop().await;
}

#[tokio::test]
async fn outer_errors_have_their_status() {
    let dir = tempfile::tempdir().unwrap();
    let gw = spawn(&config(dir.path())).await;
    let c = client();
    let url = format!("http://{}{GATEWAY_PATH}", gw.addr);

    let (s, _, _) = send(
        &c,
        "POST",
        url.clone(),
        Some("application/json"),
        vec![0; 100],
    )
    .await;
    assert_eq!(s, 415);
    let (s, _, _) = send(&c, "POST", url.clone(), None, vec![0; 100]).await;
    assert_eq!(s, 415);
    let (s, h, _) = send(&c, "PUT", url.clone(), Some(MEDIA_OHTTP_REQ), vec![0; 100]).await;
    assert_eq!(s, 405);
    assert_eq!(h["allow"], "GET, HEAD, POST");
    let (s, _, _) = send(
        &c,
        "POST",
        url.clone(),
        Some(MEDIA_OHTTP_REQ),
        vec![0; 5000],
    )
    .await;
    assert_eq!(s, 413);
    let (s, h, body) = send(&c, "POST", url.clone(), Some(MEDIA_OHTTP_REQ), vec![0; 10]).await;
    assert_eq!(s, 400);
    assert_eq!(h["content-type"], "application/problem+json");
    assert!(!body.is_empty());
    let (s, _, body) = send(
        &c,
        "POST",
        url.clone(),
        Some("message/ohttp-req; x=1"),
        vec![0xee; 100],
    )
    .await;
    assert_eq!(s, 422);
    let problem = oblivious::Problem::from_json(&body).unwrap();
    assert_eq!(problem.kind(), Some(oblivious::ProblemType::OhttpKey));
    let (s, _, _) = send(&c, "GET", format!("http://{}/nope", gw.addr), None, vec![]).await;
    assert_eq!(s, 404);
    let (s, _, body) = send(
        &c,
        "GET",
        format!("http://{}/healthz", gw.addr),
        None,
        vec![],
    )
    .await;
    assert_eq!((s, body.as_slice()), (200, &b"ok\n"[..]));
    gw.stop().await;
}

#[tokio::test]
async fn an_oversized_chunked_body_is_413_and_a_slow_body_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let gw = spawn(&config(dir.path())).await;

    // Chunked, so no Content-Length to refuse early: the limit applies while reading.
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let chunk = "a".repeat(3000);
    let req = format!(
        "POST {GATEWAY_PATH} HTTP/1.1\r\nhost: x\r\ncontent-type: {MEDIA_OHTTP_REQ}\r\ntransfer-encoding: chunked\r\n\r\nbb8\r\n{chunk}\r\nbb8\r\n{chunk}\r\n0\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0; 64];
    let n = s.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );

    // Promises 100 bytes, sends 10, then stalls.
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let req = format!(
        "POST {GATEWAY_PATH} HTTP/1.1\r\nhost: x\r\ncontent-type: {MEDIA_OHTTP_REQ}\r\ncontent-length: 100\r\n\r\n0123456789"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    gw.stop().await;
}

#[tokio::test]
async fn keys_survive_a_restart_on_the_same_port() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let c = client();
    let first = spawn(&cfg).await;
    let addr = first.addr;
    let keys_before = fetch_keys(&c, addr).await;
    first.stop().await;

    // Shut down, then bind the very same address again.
    let second = spawn_on(&cfg, addr).await;
    assert_eq!(second.addr, addr);
    let c = client(); // fresh pool: the old connections are gone
    assert_eq!(fetch_keys(&c, addr).await, keys_before);
    // A request sealed to the old key still opens.
    let (status, resp) = query(&c, addr, &keys_before, "alice.example.com").await;
    assert_eq!(status, 200);
    assert_eq!(resp.unwrap().response_code, IdentifierQueryCode::NotFound);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_during_key_rotation_never_fail() {
    let dir = tempfile::tempdir().unwrap();
    let gw = spawn(&config(dir.path())).await;
    let addr = gw.addr;
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);

    // Four clients query in a loop; each refreshes its cached keys now and then.
    let mut workers = Vec::new();
    for w in 0..4 {
        let done = done_rx.clone();
        workers.push(tokio::spawn(async move {
            let c = client();
            let mut keys = fetch_keys(&c, addr).await;
            let (mut ok, mut failed) = (0u32, 0u32);
            let mut i = 0u32;
            while !*done.borrow() {
                if i % (3 + w) == 0 {
                    keys = fetch_keys(&c, addr).await;
                }
                match query(&c, addr, &keys, "alice.example.com").await {
                    (200, Some(_)) => ok += 1,
                    _ => failed += 1,
                }
                i += 1;
            }
            (ok, failed)
        }));
    }
    let policy = RotationPolicy {
        publish_ahead: Duration::ZERO,
        grace: Duration::from_secs(600),
    };
    let mut ids = Vec::new();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        ids.push(gw.gateway.keys().rotate(SystemTime::now(), policy).unwrap());
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    done_tx.send(true).unwrap();
    let (mut ok, mut failed) = (0, 0);
    for w in workers {
        let (o, f) = w.await.unwrap();
        ok += o;
        failed += f;
    }
    assert_eq!(failed, 0, "{failed} failed of {}", ok + failed);
    assert!(ok > 20, "only {ok} queries ran");
    assert_eq!(gw.gateway.keys().ring().ids()[0], *ids.last().unwrap());
    gw.stop().await;
}
