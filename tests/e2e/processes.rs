//! The real binaries once: `mimi-gateway` and `mimi-relay` as processes from
//! config files on port 0 (their bound addresses read from their startup
//! lines), the directory filled with `mimi-gateway directory add`, and
//! `mimi-discover` finding the account through them.

use std::process::Command;

use mimi_testbed::World;
use mimi_testbed::procs::{ServerProcess, binary};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binaries_find_an_account() {
    let world = World::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gateway_bin = binary("mimi-gateway", "mimi-gateway").unwrap();
    let relay_bin = binary("mimi-relay", "mimi-relay").unwrap();
    let discover_bin = binary("mimi-client", "mimi-discover").unwrap();

    let gw_leaf = world
        .ca
        .issue(&["mimi.alpha.example", "127.0.0.4"])
        .unwrap();
    std::fs::write(d.join("gw.pem"), &gw_leaf.cert_pem).unwrap();
    std::fs::write(d.join("gw.key"), &gw_leaf.key_pem).unwrap();
    let gw_config = d.join("gateway.toml");
    std::fs::write(
        &gw_config,
        format!(
            "listen = \"127.0.0.4:0\"\npublic_host = \"mimi.alpha.example\"\nkey_file = \"{k}\"\n[tls]\ncert = \"{c}\"\nkey = \"{key}\"\n[directory]\ndatabase = \"{db}\"\n",
            k = d.join("keys.json").display(),
            c = d.join("gw.pem").display(),
            key = d.join("gw.key").display(),
            db = d.join("dir.sqlite").display(),
        ),
    )
    .unwrap();
    let added = Command::new(&gateway_bin)
        .arg("--config")
        .arg(&gw_config)
        .args([
            "directory",
            "add",
            "bob.example.com",
            "mimi://alpha.example/u/bob",
        ])
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );

    let gateway =
        tokio::task::block_in_place(|| ServerProcess::start(&gateway_bin, &gw_config)).unwrap();
    let gw_url = gateway.url.clone();
    assert!(gw_url.starts_with("https://127.0.0.4:"), "{gw_url}");

    let relay_leaf = world.ca.issue(&["127.0.0.3"]).unwrap();
    std::fs::write(d.join("relay.pem"), &relay_leaf.cert_pem).unwrap();
    std::fs::write(d.join("relay.key"), &relay_leaf.key_pem).unwrap();
    let relay_config = d.join("relay.toml");
    std::fs::write(
        &relay_config,
        format!(
            "listen = \"127.0.0.3:0\"\ngateway_ca_file = \"{ca}\"\noutbound_bind = \"127.0.0.3\"\n[tls]\ncert = \"{c}\"\nkey = \"{k}\"\n[[gateway]]\nhost = \"mimi.alpha.example\"\nurl = \"{gw_url}/.well-known/ohttp-gateway\"\n",
            ca = world.ca_file.display(),
            c = d.join("relay.pem").display(),
            k = d.join("relay.key").display(),
        ),
    )
    .unwrap();
    let relay =
        tokio::task::block_in_place(|| ServerProcess::start(&relay_bin, &relay_config)).unwrap();
    let relay_url = relay.url.clone();
    assert!(relay_url.starts_with("https://127.0.0.3:"), "{relay_url}");

    let out = tokio::task::block_in_place(|| {
        world
            .discover_command(&discover_bin, &relay_url, "bob.example.com")
            .output()
            .unwrap()
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        line["result"]["providers"][0]["outcome"]["accounts"][0],
        "mimi://alpha.example/u/bob"
    );

    tokio::task::block_in_place(|| {
        assert!(relay.stop().unwrap().success(), "graceful shutdown exits 0");
        assert!(
            gateway.stop().unwrap().success(),
            "graceful shutdown exits 0"
        );
    });
    world.shutdown().await;
}
