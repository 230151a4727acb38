//! The Python bindings, generated from the library this test was built
//! with, run by Python's `unittest` (bindings/python/tests) against the
//! testbed's world: an honest one, one whose relay substitutes keys, and a
//! DNS server that never answers (for cancellation). Needs `python3`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mimi_testbed::World;
use mimi_testbed::hostile::RelayAttack;
use mimi_testbed::world::Setup;

/// The library next to this test executable (cargo builds it first).
fn library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let name = format!(
        "{}mimi_discovery{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    [deps.join(&name), deps.parent().unwrap().join(&name)]
        .into_iter()
        .find(|p| p.exists())
        .expect("the cdylib is built beside the tests")
}

/// Generates the Python module into `dir` and puts the library beside it,
/// where the module loads it from.
fn generate(dir: &Path) {
    let lib = library();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_uniffi-bindgen"))
        .args([
            "generate",
            "--language",
            "python",
            "--no-format",
            "--library",
        ])
        .arg(&lib)
        .arg("--out-dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "uniffi-bindgen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::copy(&lib, dir.join(lib.file_name().unwrap())).unwrap();
}

fn describe(world: &World) -> serde_json::Value {
    serde_json::json!({
        "relay": format!("https://{}", world.relay_addr),
        "dns": format!("udp:{}", world.dns_addr),
        "ca_file": world.ca_file,
        "trust_anchor": world.trust_anchor,
        "authority_keys": world.authority_keys,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_bindings_discover_through_the_world() {
    let honest = World::start().await.unwrap();
    let hostile = World::start_with(Setup {
        relay_attack: Some(RelayAttack::SubstituteKeys),
        ..Setup::default()
    })
    .await
    .unwrap();
    // Accepts connections (the kernel does) and never answers a question.
    let silent = tokio::net::TcpListener::bind("127.0.0.9:0").await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let worlds = dir.path().join("worlds.json");
    let description = serde_json::json!({
        "honest": describe(&honest),
        "hostile": describe(&hostile),
        "silent_dns": format!("tcp:{}", silent.local_addr().unwrap()),
    });
    std::fs::write(&worlds, description.to_string()).unwrap();

    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = tokio::process::Command::new("python3")
        .args(["-m", "unittest", "-v", "test_discovery", "test_readme"])
        .current_dir(manifest.join("python/tests"))
        .env("PYTHONPATH", dir.path())
        .env("MIMI_TEST_WORLD", &worlds)
        .env("MIMI_README", manifest.join("../README.md"))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the Python tests finish within five minutes")
        .expect("python3 (run scripts/test.sh, which installs what the tests need)");
    let report = String::from_utf8_lossy(&out.stderr);
    println!("{report}");
    assert!(out.status.success(), "the Python tests failed:\n{report}");

    // The attack the Python suite saw as key_inconsistent: the relay tried,
    // and read nothing.
    let relay = hostile.hostile_relay.as_ref().unwrap();
    assert!(relay.substituted() > 0, "the relay tried its keys");
    assert_eq!(relay.decrypted(), 0, "the relay read a lookup");
    drop(silent);
    honest.shutdown().await;
    hostile.shutdown().await;
}
