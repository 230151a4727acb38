//! The Redis replay store on its own, against a real Redis: the password
//! comes from a file (never the URL), a wrong or missing one fails closed,
//! and a store that was down when the gateway started serves once it is up.

use std::io::Write as _;
use std::path::Path;

use mimi_gateway::config::{ReplaySection, ReplayStoreKind};
use mimi_gateway::replay::{RedisReplay, Verdict};
use mimi_testbed::engines::RedisServer;

fn section(url: String, password_file: Option<&Path>) -> ReplaySection {
    ReplaySection {
        store: ReplayStoreKind::Redis,
        redis_url: Some(url),
        password_file: password_file.map(Path::to_path_buf),
        timeout_ms: 300,
        ..ReplaySection::default()
    }
}

fn secret_file(dir: &Path, name: &str, text: &str, mode: u32) -> std::path::PathBuf {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&path)
        .unwrap();
    writeln!(f, "{text}").unwrap();
    path
}

fn now() -> i64 {
    mimi_gateway::unix_now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_comes_from_a_file_and_a_wrong_one_fails_closed() {
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("engines");
    let redis = tokio::task::block_in_place(|| {
        RedisServer::start_with_password(&base, "s3cret pass").unwrap()
    });
    let dir = tempfile::tempdir().unwrap();
    let good = secret_file(dir.path(), "good", "s3cret pass", 0o600);
    let wrong = secret_file(dir.path(), "wrong", "guess", 0o600);
    let open = secret_file(dir.path(), "open", "s3cret pass", 0o644);

    // Dated a few seconds back: after the store's marker second.
    let date = now() + 2;
    let store = RedisReplay::new(&section(redis.url(), Some(&good))).unwrap();
    store.ping(now()).await.unwrap();
    assert_eq!(
        store.check_and_insert(&[1; 32], date, now()).await,
        Verdict::Fresh
    );
    assert_eq!(
        store.check_and_insert(&[1; 32], date, now()).await,
        Verdict::Replay
    );

    for file in [Some(wrong.as_path()), None] {
        let store = RedisReplay::new(&section(redis.url(), file)).unwrap();
        assert_eq!(
            store.check_and_insert(&[2; 32], date, now()).await,
            Verdict::Unavailable,
            "refused, never let through, with password file {file:?}"
        );
    }
    let err = RedisReplay::new(&section(redis.url(), Some(&open))).unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_down_at_start_fails_closed_then_serves() {
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("engines");
    let mut redis = tokio::task::block_in_place(|| RedisServer::start(&base).unwrap());
    tokio::task::block_in_place(|| redis.stop());
    let store = RedisReplay::new(&section(redis.url(), None)).unwrap();
    assert!(store.reachable().await.is_err(), "what `check` reports");
    assert!(store.ping(now()).await.is_err());
    assert_eq!(
        store.check_and_insert(&[3; 32], now(), now()).await,
        Verdict::Unavailable
    );
    tokio::task::block_in_place(|| redis.restart().unwrap());
    // Reconnects by itself (bounded: 10 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut verdict = Verdict::Unavailable;
    while verdict == Verdict::Unavailable && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        // Dated after the second this fresh store begins remembering.
        verdict = store.check_and_insert(&[3; 32], now() + 2, now()).await;
    }
    assert_eq!(verdict, Verdict::Fresh);
}

/// A TLS server configuration for `ip`, from a fresh test CA (whose PEM is
/// returned), and a second CA that did not sign it.
pub(crate) fn tls_for(
    dir: &Path,
    ip: &str,
) -> (
    std::sync::Arc<rustls::ServerConfig>,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let ca = mimi_testbed::pki::TestCa::new().unwrap();
    let leaf = ca.issue(&[ip]).unwrap();
    std::fs::write(dir.join("cert.pem"), &leaf.cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &leaf.key_pem).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    let other = mimi_testbed::pki::TestCa::new().unwrap();
    std::fs::write(dir.join("other-ca.pem"), other.pem()).unwrap();
    let config =
        mimi_server_core::tls::server_config(&dir.join("cert.pem"), &dir.join("key.pem")).unwrap();
    (config, dir.join("ca.pem"), dir.join("other-ca.pem"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_is_verified_against_the_configured_ca() {
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("engines");
    let redis = tokio::task::block_in_place(|| RedisServer::start(&base).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let (tls, ca, other_ca) = tls_for(dir.path(), "127.0.0.3");
    let (addr, front) = mimi_testbed::engines::tls_front(
        "127.0.0.3".parse().unwrap(),
        tls,
        redis.socket_path(),
        false,
    )
    .await
    .unwrap();
    let url = format!("rediss://{addr}/0");
    let with_ca = |ca: &Path| ReplaySection {
        ca_file: Some(ca.to_path_buf()),
        ..section(url.clone(), None)
    };
    let store = RedisReplay::new(&with_ca(&ca)).unwrap();
    store.ping(now()).await.unwrap();
    let date = now() + 2;
    assert_eq!(
        store.check_and_insert(&[4; 32], date, now()).await,
        Verdict::Fresh
    );
    assert_eq!(
        store.check_and_insert(&[4; 32], date, now()).await,
        Verdict::Replay
    );
    // A server whose certificate the configured CA did not sign: refused.
    let impostor = RedisReplay::new(&with_ca(&other_ca)).unwrap();
    assert!(impostor.ping(now()).await.is_err());
    assert_eq!(
        impostor.check_and_insert(&[5; 32], date, now()).await,
        Verdict::Unavailable
    );
    front.abort();
}
