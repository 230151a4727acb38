//! What the discoverer's lifetime promises, seen from outside: a cancelled
//! lookup, a shut-down discoverer and a dropped one each leave nothing running.
//! A DNS server that accepts and never answers holds a lookup open. A
//! cancelled lookup's work leaves `calls_in_progress`; a shut-down
//! discoverer's connections close; a dropped one's threads end; shutting all
//! down at once stops every thread before it returns. One test, in order,
//! since it counts the process's threads.

use std::time::Duration;

use mimi_discovery::{Discoverer, DiscovererOptions, DiscoveryError};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

fn options(dns: String) -> DiscovererOptions {
    DiscovererOptions {
        // Never reached: step 1 never finishes.
        relay: "https://127.0.0.1:9".into(),
        gateway_relays: Vec::new(),
        dns,
        ca_certificates_pem: None,
        trust_anchor_path: None,
        require_dnssec: false,
        key_check: None,
        timeout_ms: 60_000,
        concurrency: 8,
        credential: None,
        token_batch: 4,
        authority_keys: None,
        require_verified: false,
    }
}

/// Reads (and drops) what the client sent until it closes the connection;
/// panics if it keeps it open for five seconds.
async fn closed_soon(mut conn: TcpStream, what: &str) {
    let mut buf = [0u8; 512];
    let waited = tokio::time::timeout(Duration::from_secs(5), async {
        while conn.read(&mut buf).await.map(|n| n > 0).unwrap_or(false) {}
    })
    .await;
    assert!(
        waited.is_ok(),
        "{what}: the lookup's connection stayed open"
    );
}

/// The discoverer's threads alive in this process (Linux names them).
fn discovery_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(Result::ok)
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|name| name.trim() == "mimi-discovery")
                })
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_shut_down_and_dropped_discoverers_leave_nothing_running() {
    let silent = TcpListener::bind("127.0.0.9:0").await.unwrap();
    let dns = format!("tcp:{}", silent.local_addr().unwrap());

    // A cancelled lookup: the caller stops waiting, the work stops.
    let d = Discoverer::new(options(dns.clone())).unwrap();
    let conn = {
        let lookup = d.discover("alice.example.com".into());
        tokio::select! {
            _ = lookup => panic!("the silent server answered"),
            accepted = silent.accept() => accepted.unwrap().0,
        }
    };
    // (Its DNS connection may stay open: the resolver keeps connections
    // for the next lookup. The lookup's own work must end.)
    let mut waited = 0;
    while d.calls_in_progress() > 0 && waited < 50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(
        d.calls_in_progress(),
        0,
        "a cancelled lookup's work runs on"
    );

    // Shutting down: the lookup in progress fails with `shut_down`, its work stops,
    // and new lookups are refused.
    let lookup = tokio::spawn({
        let d = d.clone();
        async move { d.discover("alice.example.com".into()).await }
    });
    let mut waited = 0;
    while d.calls_in_progress() == 0 && waited < 50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    d.shutdown();
    let result = tokio::time::timeout(Duration::from_secs(5), lookup)
        .await
        .expect("a shut-down discoverer's lookup ends")
        .unwrap();
    assert!(
        matches!(result, Err(DiscoveryError::ShutDown(_))),
        "{result:?}"
    );
    assert_eq!(d.calls_in_progress(), 0);
    // Every connection the discoverer held is closed, the resolver's kept
    // one included.
    closed_soon(conn, "shut down").await;
    let again = d.discover("alice.example.com".into()).await;
    assert!(
        matches!(again, Err(DiscoveryError::ShutDown(_))),
        "{again:?}"
    );
    drop(d);

    // Dropping the last reference: its threads end.
    let d = Discoverer::new(options(dns.clone())).unwrap();
    // A new thread names itself once it runs: wait for them to show.
    let mut waited = 0;
    while discovery_threads() == 0 && waited < 50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert!(
        discovery_threads() > 0,
        "the discoverer runs its own threads"
    );
    drop(d);
    let mut waited = 0;
    while discovery_threads() > 0 && waited < 50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(
        discovery_threads(),
        0,
        "a dropped discoverer's threads run on"
    );

    // Shutting every discoverer down at once (Python's package does it at
    // exit): one with a lookup in progress, one idle, one already dropped.
    let busy = Discoverer::new(options(dns.clone())).unwrap();
    let idle = Discoverer::new(options(dns.clone())).unwrap();
    drop(Discoverer::new(options(dns)).unwrap());
    let lookup = tokio::spawn({
        let busy = busy.clone();
        async move { busy.discover("alice.example.com".into()).await }
    });
    let mut waited = 0;
    while busy.calls_in_progress() == 0 && waited < 50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    let stopped = tokio::task::spawn_blocking(|| mimi_discovery::shutdown_all_discoverers(5_000))
        .await
        .unwrap();
    assert!(stopped, "the discoverers' threads stop within the wait");
    // It returned once none of their threads was left: nothing to wait for.
    assert_eq!(mimi_discovery::threads::discoverer_threads_alive(), 0);
    assert!(busy.is_shut_down() && idle.is_shut_down());
    let result = tokio::time::timeout(Duration::from_secs(5), lookup)
        .await
        .expect("the lookup in progress ends")
        .unwrap();
    assert!(
        matches!(result, Err(DiscoveryError::ShutDown(_))),
        "{result:?}"
    );
}
