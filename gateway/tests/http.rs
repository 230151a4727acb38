//! The gateway over real sockets on loopback: its HTTP statuses, its keys
//! across restarts, and rotation under load.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use mimi_gateway::directory::Entry;
use mimi_gateway::keys::RotationPolicy;
use mimi_proto::IdentifierQueryCode;
use mimi_proto::oblivious::{self, GATEWAY_PATH, MEDIA_OHTTP_REQ};

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
            assertion: None,
        })
        .await
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
    // Queries answered so far: each rotation waits for a few more, so that
    // queries overlap every rotation however slow the machine is.
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));

    // Four clients query in a loop; each refreshes its cached keys now and then.
    let mut workers = Vec::new();
    for w in 0..4 {
        let done = done_rx.clone();
        let answered = answered.clone();
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
                answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                i += 1;
            }
            (ok, failed)
        }));
    }
    let policy = RotationPolicy {
        publish_ahead: Duration::ZERO,
        grace: Duration::from_secs(600),
    };
    // Five rotations, each after at least five more answers (bounded: 100
    // waits of 50 ms each at most).
    let more_answers = |seen: u32| {
        let answered = answered.clone();
        async move {
            for _ in 0..100 {
                if answered.load(std::sync::atomic::Ordering::Relaxed) >= seen + 5 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let mut ids = Vec::new();
    for _ in 0..5 {
        more_answers(answered.load(std::sync::atomic::Ordering::Relaxed)).await;
        ids.push(gw.gateway.keys().rotate(SystemTime::now(), policy).unwrap());
    }
    more_answers(answered.load(std::sync::atomic::Ordering::Relaxed)).await;
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

#[tokio::test]
async fn admin_listener_serves_metrics_without_identifiers() {
    let dir = tempfile::tempdir().unwrap();
    let gw = spawn(&config(dir.path())).await;
    let admin = tokio::net::TcpListener::bind("127.0.0.4:0").await.unwrap();
    let admin_addr = admin.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(mimi_gateway::http::run_admin(
        admin,
        gw.gateway.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    let c = client();
    let keys = fetch_keys(&c, gw.addr).await;
    query(&c, gw.addr, &keys, "secret-handle.example.com").await;
    let (s, _, body) = send(
        &c,
        "GET",
        format!("http://{admin_addr}/metrics"),
        None,
        vec![],
    )
    .await;
    assert_eq!(s, 200);
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("mimi_gateway_requests_total{outcome=\"ok\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("mimi_gateway_requests_total{outcome=\"keys\"} 1\n"));
    assert!(text.contains("mimi_gateway_decapsulation_seconds_count 1\n"));
    assert!(text.contains("mimi_gateway_live_key{key_id=\"0\",position=\"1\"} 1\n"));
    assert!(!text.contains("secret-handle"));
    let (s, _, _) = send(
        &c,
        "GET",
        format!("http://{admin_addr}/healthz"),
        None,
        vec![],
    )
    .await;
    assert_eq!(s, 200);
    stop.send(()).unwrap();
    task.await.unwrap();
    gw.stop().await;
}
