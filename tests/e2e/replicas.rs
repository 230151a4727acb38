//! Two gateway processes sharing Redis (replay state), PostgreSQL (the
//! directory) and one seed file (keys), as a provider runs them behind a
//! load balancer; every attack here is one a client (or a relay) can make
//! by choosing which replica gets which bytes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mimi_proto::codec::Codec;
use mimi_proto::oblivious::{self, GATEWAY_PATH, MEDIA_OHTTP_REQ};
use mimi_proto::{
    IdentifierQueryCode, IdentifierRequest, IdentifierResponse, SearchIdentifierType,
};
use mimi_testbed::engines::{PostgresServer, RedisServer};
use mimi_testbed::procs::{ServerProcess, binary};

const HOST: &str = "mimi.alpha.example";

type Http = Client<HttpConnector, Full<Bytes>>;

/// Test data under the build tree, as the servers' data is.
fn build_tree() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("engines")
}

/// What every replica's configuration starts with: plain HTTP (behind the
/// load balancer's TLS), keys from `seed`, replay state in Redis.
fn replica_head(ip: &str, seed: &Path, redis: &str) -> String {
    format!(
        r#"listen = "{ip}:0"
admin_listen = "{ip}:0"
public_host = "{HOST}"
plain_http = true

[keys]
source = "seed"
seed_file = "{seed}"

[replay]
store = "redis"
redis_url = "{redis}"
timeout_ms = 300
"#,
        seed = seed.display(),
    )
}

/// A gateway replica's configuration: [`replica_head`], and the directory
/// in PostgreSQL.
fn replica_config(dir: &Path, name: &str, ip: &str, seed: &Path, redis: &str, pg: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let head = replica_head(ip, seed, redis);
    std::fs::write(
        &path,
        format!("{head}\n[directory]\nstore = \"postgres\"\nurl = \"{pg}\"\n"),
    )
    .unwrap();
    path
}

/// Two replica processes (with admin listeners) and a plain HTTP client.
fn start_pair(a: &Path, b: &Path) -> (ServerProcess, ServerProcess, Http) {
    let bin = binary("mimi-gateway", "mimi-gateway").unwrap();
    let (a, b) = tokio::task::block_in_place(|| {
        (
            ServerProcess::start_with_admin(&bin, a).unwrap(),
            ServerProcess::start_with_admin(&bin, b).unwrap(),
        )
    });
    (a, b, Client::builder(TokioExecutor::new()).build_http())
}

fn gateway_cli(config: &Path, args: &[&str]) -> String {
    let out = Command::new(binary("mimi-gateway", "mimi-gateway").unwrap())
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mimi-gateway {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn post(c: &Http, url: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let req = http::Request::post(format!("{url}{GATEWAY_PATH}"))
        .header("content-type", MEDIA_OHTTP_REQ)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = c.request(req).await.unwrap();
    let status = resp.status().as_u16();
    (
        status,
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
}

/// The body of a `GET` that must answer 200, over either client.
async fn get_ok<C>(c: &Client<C, Full<Bytes>>, url: String) -> Vec<u8>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let req = http::Request::get(&url)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = c.request(req).await.unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    resp.into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec()
}

async fn keys_of(c: &Http, url: &str) -> Vec<u8> {
    get_ok(c, format!("{url}{GATEWAY_PATH}")).await
}

/// One sealed lookup of `identifier`, dated now: the bytes to send and what
/// opens the answer.
fn sealed_lookup(keys: &[u8], identifier: &str) -> (Vec<u8>, ohttp::ClientResponse) {
    let entry = &oblivious::decode_key_config_list(keys).unwrap()[0];
    let request = IdentifierRequest::single(SearchIdentifierType::Handle, identifier);
    let inner = oblivious::identifier_query(HOST, &request, SystemTime::now(), None).unwrap();
    ohttp::ClientRequest::from_config(&mut ohttp::KeyConfig::decode(&entry.encoded).unwrap())
        .unwrap()
        .encapsulate(&inner)
        .unwrap()
}

/// Sends sealed bytes to a replica; the inner status and, on 200, the answer.
async fn send(
    c: &Http,
    url: &str,
    enc: Vec<u8>,
    ctx: ohttp::ClientResponse,
) -> (u16, Option<IdentifierResponse>) {
    let (status, body) = post(c, url, enc).await;
    assert_eq!(status, 200, "outer status from {url}");
    let msg = oblivious::decode_message(&ctx.decapsulate(&body).unwrap()).unwrap();
    let inner = msg.control().status().unwrap().code();
    let answer = (inner == 200).then(|| IdentifierResponse::from_bytes(msg.content()).unwrap());
    (inner, answer)
}

async fn lookup(
    c: &Http,
    url: &str,
    keys: &[u8],
    identifier: &str,
) -> (u16, Option<IdentifierResponse>) {
    let (enc, ctx) = sealed_lookup(keys, identifier);
    send(c, url, enc, ctx).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_replay_state_directory_and_keys() {
    let base = build_tree();
    let (mut redis, postgres) = tokio::task::block_in_place(|| {
        (
            RedisServer::start(&base).unwrap(),
            PostgresServer::start(&base).unwrap(),
        )
    });
    let dir = tempfile::tempdir_in({
        std::fs::create_dir_all(&base).unwrap();
        &base
    })
    .unwrap();
    let seed = dir.path().join("seed.json");
    let a_config = replica_config(
        dir.path(),
        "a",
        "127.0.0.4",
        &seed,
        &redis.url(),
        &postgres.url(),
    );
    let b_config = replica_config(
        dir.path(),
        "b",
        "127.0.0.5",
        &seed,
        &redis.url(),
        &postgres.url(),
    );
    // The seed file is made once and shared (here: the same path).
    tokio::task::block_in_place(|| gateway_cli(&a_config, &["keys", "show"]));
    let (a, b, c) = start_pair(&a_config, &b_config);

    // Keys: the same bytes from both, with no coordination but the file.
    let keys = keys_of(&c, &a.url).await;
    assert_eq!(
        keys,
        keys_of(&c, &b.url).await,
        "both replicas serve the same keys"
    );

    // Directory: one admin command, seen by both at once. (Requests dated in
    // the second the replay store began remembering get the date problem,
    // so the first answer may take a second.)
    let (status, answer) = until_answered(&c, &a.url, &keys, "alice.example.com").await;
    assert_eq!(
        (status, answer.unwrap().response_code),
        (200, IdentifierQueryCode::NotFound)
    );
    tokio::task::block_in_place(|| {
        gateway_cli(
            &b_config,
            &[
                "directory",
                "add",
                "alice.example.com",
                "mimi://alpha.example/u/alice",
            ],
        )
    });
    for url in [&a.url, &b.url] {
        let (status, answer) = lookup(&c, url, &keys, "alice.example.com").await;
        assert_eq!(status, 200);
        assert_eq!(
            answer.unwrap().uri[0].uri,
            "mimi://alpha.example/u/alice",
            "seen by {url}"
        );
    }

    // Replay: answered by A, then the same bytes to B (and to A again):
    // refused. Only the client can open the refusal, so the replicas'
    // counters say what each decided.
    let (enc, ctx) = sealed_lookup(&keys, "alice.example.com");
    let (status, _) = send(&c, &a.url, enc.clone(), ctx).await;
    assert_eq!(status, 200);
    let before = (
        outcome(&c, &a, "replay").await,
        outcome(&c, &b, "replay").await,
    );
    let ok_before = (outcome(&c, &a, "ok").await, outcome(&c, &b, "ok").await);
    assert_eq!(post(&c, &b.url, enc.clone()).await.0, 200);
    assert_eq!(post(&c, &a.url, enc.clone()).await.0, 200);
    assert_eq!(
        (
            outcome(&c, &a, "replay").await,
            outcome(&c, &b, "replay").await
        ),
        (before.0 + 1, before.1 + 1),
        "a request answered by A and replayed to B (and to A) is refused by both"
    );
    assert_eq!(
        (outcome(&c, &a, "ok").await, outcome(&c, &b, "ok").await),
        ok_before,
        "nothing was answered twice"
    );

    // Redis stops: both replicas refuse, with the defined encrypted 503.
    tokio::task::block_in_place(|| redis.stop());
    for url in [&a.url, &b.url] {
        let (status, _) = lookup(&c, url, &keys, "alice.example.com").await;
        assert_eq!(status, 503, "{url} fails closed while Redis is down");
    }
    assert!(outcome(&c, &a, "replay_unavailable").await >= 1, "counted");
    // An outage longer than the connection manager's own reconnect attempts
    // (two, at most a second apart): it has given up when Redis returns.
    tokio::time::sleep(Duration::from_secs(4)).await;
    tokio::task::block_in_place(|| redis.restart().unwrap());
    // Redis comes back empty (no persistence): recovery without a restart,
    // from the first request on each replica. That request may be told to
    // retry with the gateway's Date (the store's first second, which the
    // client does by itself), but never that the store is unavailable.
    let unavailable = (
        outcome(&c, &a, "replay_unavailable").await,
        outcome(&c, &b, "replay_unavailable").await,
    );
    for url in [&a.url, &b.url] {
        let (status, _) = lookup(&c, url, &keys, "alice.example.com").await;
        assert!(
            matches!(status, 200 | 400),
            "{url}: the first request after Redis returned got {status}"
        );
    }
    assert_eq!(
        (
            outcome(&c, &a, "replay_unavailable").await,
            outcome(&c, &b, "replay_unavailable").await,
        ),
        unavailable,
        "a replica refused its first request after Redis returned"
    );
    let (status, _) = until_answered(&c, &a.url, &keys, "alice.example.com").await;
    assert_eq!(status, 200, "requests succeed again after Redis restarts");
    let (status, _) = lookup(&c, &b.url, &keys, "alice.example.com").await;
    assert_eq!(status, 200, "B recovered too");
    // The request accepted before the outage, still inside its window, is
    // not accepted again by a store that forgot it.
    let replays = outcome(&c, &b, "stale_date").await + outcome(&c, &b, "replay").await;
    let oks = outcome(&c, &b, "ok").await;
    assert_eq!(post(&c, &b.url, enc.clone()).await.0, 200);
    assert_eq!(
        outcome(&c, &b, "stale_date").await + outcome(&c, &b, "replay").await,
        replays + 1,
        "a request from before Redis restarted is refused after it"
    );
    assert_eq!(outcome(&c, &b, "ok").await, oks, "nothing accepted twice");

    tokio::task::block_in_place(|| {
        assert!(a.stop().unwrap().success());
        assert!(b.stop().unwrap().success());
    });
    drop(postgres);
}

/// Looks up until answered (bounded: 15 s), refusals only meanwhile.
async fn until_answered(
    c: &Http,
    url: &str,
    keys: &[u8],
    identifier: &str,
) -> (u16, Option<IdentifierResponse>) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, answer) = lookup(c, url, keys, identifier).await;
        if status == 200 || Instant::now() > deadline {
            return (status, answer);
        }
        assert!(
            matches!(status, 400 | 503),
            "only refusals while waiting, got {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One of a replica's outcome counters, from its admin listener.
async fn outcome(c: &Http, replica: &ServerProcess, name: &str) -> u64 {
    let url = replica
        .admin_url
        .as_ref()
        .expect("started with an admin listener");
    let body = get_ok(c, format!("{url}/metrics")).await;
    let text = String::from_utf8_lossy(&body);
    let prefix = format!("mimi_gateway_requests_total{{outcome=\"{name}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} counter in {text}"))
}

/// A TLS gateway replica for the roll test: keys from `seed` on a short
/// schedule (10 s periods, published 10 s ahead, 10 s of grace).
fn rolling_replica(dir: &Path, name: &str, ip: &str, seed: &Path) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"listen = "{ip}:0"
public_host = "{HOST}"
[tls]
cert = "{d}/gw.pem"
key = "{d}/gw.key"
[keys]
source = "seed"
seed_file = "{seed}"
period_secs = 10
publish_ahead_secs = 10
max_age_secs = 10
grace_secs = 10
[directory]
database = "{d}/{name}.sqlite"
"#,
            d = dir.display(),
            seed = seed.display(),
        ),
    )
    .unwrap();
    path
}

fn relay_in_front_of(dir: &Path, name: &str, ip: &str, gateway: &str, ca: &Path) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"listen = "{ip}:0"
gateway_ca_file = "{ca}"
outbound_bind = "{ip}"
[rate]
per_second = 1000.0
burst = 1000
[key_cache]
min_age_secs = 0
[tls]
cert = "{d}/{name}.pem"
key = "{d}/{name}.key"
[[gateway]]
host = "{HOST}"
url = "{gateway}/.well-known/ohttp-gateway"
"#,
            d = dir.display(),
            ca = ca.display(),
        ),
    )
    .unwrap();
    path
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_roll_under_lookups_through_two_relays_fails_none() {
    let world = mimi_testbed::World::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gateway_bin = binary("mimi-gateway", "mimi-gateway").unwrap();
    let relay_bin = binary("mimi-relay", "mimi-relay").unwrap();
    let discover_bin = binary("mimi-client", "mimi-discover").unwrap();
    let leaf = world.ca.issue(&[HOST, "127.0.0.4", "127.0.0.5"]).unwrap();
    std::fs::write(d.join("gw.pem"), &leaf.cert_pem).unwrap();
    std::fs::write(d.join("gw.key"), &leaf.key_pem).unwrap();
    let seed = d.join("seed.json");
    let a_config = rolling_replica(d, "a", "127.0.0.4", &seed);
    let b_config = rolling_replica(d, "b", "127.0.0.5", &seed);
    tokio::task::block_in_place(|| {
        for config in [&a_config, &b_config] {
            gateway_cli(
                config,
                &[
                    "directory",
                    "add",
                    "bob.example.com",
                    "mimi://alpha.example/u/bob",
                ],
            );
        }
    });
    let (a, b) = tokio::task::block_in_place(|| {
        (
            ServerProcess::start(&gateway_bin, &a_config).unwrap(),
            ServerProcess::start(&gateway_bin, &b_config).unwrap(),
        )
    });
    let mut relays = Vec::new();
    for (name, ip, gateway) in [("r1", "127.0.0.3", &a.url), ("r2", "127.0.0.6", &b.url)] {
        let leaf = world.ca.issue(&[ip]).unwrap();
        std::fs::write(d.join(format!("{name}.pem")), &leaf.cert_pem).unwrap();
        std::fs::write(d.join(format!("{name}.key")), &leaf.key_pem).unwrap();
        let config = relay_in_front_of(d, name, ip, gateway, &world.ca_file);
        relays.push(tokio::task::block_in_place(|| {
            ServerProcess::start(&relay_bin, &config).unwrap()
        }));
    }
    let roots = mimi_server_core::tls::load_roots(&world.ca_file).unwrap();
    let https = mimi_server_core::tls::https_client(
        &roots,
        Duration::from_secs(5),
        None,
        Duration::from_secs(1),
        false,
    )
    .unwrap();
    // Both relays hand out the same key bytes (away from a period boundary,
    // where one may have refreshed a moment before the other).
    let relay_keys = |url: String| get_ok(&https, format!("{url}/gateway/{HOST}"));
    let same_keys_from_both = || async {
        while !(2..8).contains(&(unix_now() % 10)) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let one = relay_keys(relays[0].url.clone()).await;
        let two = relay_keys(relays[1].url.clone()).await;
        assert_eq!(
            one, two,
            "two relays in front of two replicas hand out the same key bytes"
        );
        one
    };
    let before = same_keys_from_both().await;

    // Roll the seed: new keys from the first period published at least 1 s
    // from now. Both replicas read the shared file.
    let out = tokio::task::block_in_place(|| {
        gateway_cli(&a_config, &["keys", "roll-seed", "--lead-secs", "1"])
    });
    let from: u64 = out
        .split("keys from ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected roll-seed output {out:?}"));

    // Lookups through both relays, alternating, until the new seed's key has
    // been current for a while: every one must find the account.
    let (mut ok, mut failed) = (0, Vec::new());
    let end = from + 4;
    let mut k = 0usize;
    while unix_now() < end && k < 1_000 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let relay = &relays[k % 2].url;
        k += 1;
        let out = tokio::task::block_in_place(|| {
            world
                .discover_command(&discover_bin, relay, "bob.example.com")
                .output()
                .unwrap()
        });
        let stdout = String::from_utf8_lossy(&out.stdout);
        let found = out.status.success()
            && serde_json::from_str::<serde_json::Value>(stdout.trim()).is_ok_and(|v| {
                v["result"]["providers"][0]["outcome"]["accounts"][0]
                    == "mimi://alpha.example/u/bob"
            });
        if found {
            ok += 1;
        } else {
            failed.push(format!(
                "at {} via {relay}: {stdout} {}",
                unix_now(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} lookups failed across the roll: {failed:#?}",
        failed.len(),
        ok + failed.len()
    );
    assert!(ok >= 10, "only {ok} lookups ran");
    let after = same_keys_from_both().await;
    assert_ne!(before, after, "the served keys changed");

    tokio::task::block_in_place(|| {
        for r in relays {
            assert!(r.stop().unwrap().success());
        }
        assert!(a.stop().unwrap().success());
        assert!(b.stop().unwrap().success());
    });
    world.shutdown().await;
}

/// A replica requiring lookup tokens: spent tokens in the shared Redis, the
/// token key file shared, its own SQLite directory.
fn token_replica(dir: &Path, name: &str, ip: &str, seed: &Path, redis: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let head = replica_head(ip, seed, redis);
    let d = dir.display();
    std::fs::write(
        &path,
        format!(
            "{head}\n[directory]\ndatabase = \"{d}/{name}-directory.sqlite\"\n\n\
             [tokens]\nrequired = true\nkey_file = \"{d}/token-keys.json\"\nspent_store = \"redis\"\n"
        ),
    )
    .unwrap();
    path
}

/// A token for the standard challenge, issued with the issuer's own key
/// file (as any replica's issuer would).
fn mint_token(key_file: &Path) -> mimi_proto::privacypass::Token {
    use mimi_proto::privacypass::{IssuerKey, TokenChallenge};
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(key_file).unwrap()).unwrap();
    let issuer = IssuerKey::from_pem(file["keys"][0]["key"].as_str().unwrap()).unwrap();
    let digest = TokenChallenge::standard(HOST).digest().unwrap();
    let (request, pending) = issuer.public().blind(&digest).unwrap();
    pending.finalize(&issuer.issue(&request).unwrap()).unwrap()
}

/// A lookup carrying `token` to one replica: the inner status.
async fn lookup_with_token(
    c: &Http,
    url: &str,
    keys: &[u8],
    token: &mimi_proto::privacypass::Token,
) -> u16 {
    let entry = &oblivious::decode_key_config_list(keys).unwrap()[0];
    let request = IdentifierRequest::single(SearchIdentifierType::Handle, "alice.example.com");
    let auth = mimi_proto::privacypass::header::authorization(token).unwrap();
    let inner =
        oblivious::identifier_query(HOST, &request, SystemTime::now(), Some(&auth)).unwrap();
    let (enc, ctx) =
        ohttp::ClientRequest::from_config(&mut ohttp::KeyConfig::decode(&entry.encoded).unwrap())
            .unwrap()
            .encapsulate(&inner)
            .unwrap();
    send(c, url, enc, ctx).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_spent_at_one_replica_is_refused_at_the_other() {
    let base = build_tree();
    let redis = tokio::task::block_in_place(|| RedisServer::start(&base).unwrap());
    let dir = tempfile::tempdir_in({
        std::fs::create_dir_all(&base).unwrap();
        &base
    })
    .unwrap();
    let seed = dir.path().join("seed.json");
    let a_config = token_replica(dir.path(), "a", "127.0.0.4", &seed, &redis.url());
    let b_config = token_replica(dir.path(), "b", "127.0.0.5", &seed, &redis.url());
    // The key files are made once and shared (here: the same paths).
    tokio::task::block_in_place(|| {
        gateway_cli(&a_config, &["keys", "show"]);
        let shown = gateway_cli(&a_config, &["tokens", "show"]);
        assert!(shown.contains("token-keys"), "{shown}");
    });
    let (a, b, c) = start_pair(&a_config, &b_config);
    let keys = keys_of(&c, &a.url).await;
    // The replay store's first second answers with the date problem; past
    // it, a lookup without a token is challenged (bounded wait).
    for url in [&a.url, &b.url] {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (status, _) = lookup(&c, url, &keys, "alice.example.com").await;
            if status == 401 {
                break;
            }
            assert!(
                matches!(status, 400 | 503) && Instant::now() < deadline,
                "{status}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    let token = mint_token(&dir.path().join("token-keys.json"));
    assert_eq!(lookup_with_token(&c, &a.url, &keys, &token).await, 200);
    // The same token again, in a fresh request: at the other replica, and
    // at the first.
    assert_eq!(
        lookup_with_token(&c, &b.url, &keys, &token).await,
        401,
        "a token spent at A was accepted at B"
    );
    assert_eq!(lookup_with_token(&c, &a.url, &keys, &token).await, 401);
    assert_eq!(outcome(&c, &b, "token_spent").await, 1);
    // A fresh token is good at either.
    let fresh = mint_token(&dir.path().join("token-keys.json"));
    assert_eq!(lookup_with_token(&c, &b.url, &keys, &fresh).await, 200);

    tokio::task::block_in_place(|| {
        assert!(a.stop().unwrap().success());
        assert!(b.stop().unwrap().success());
    });
    drop(redis);
}
