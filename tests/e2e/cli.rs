//! `mimi-discover`, the real binary, against the testbed world: its signed DNS
//! (with the world's trust anchor), TLS relay and gateways.

use std::process::Command;

use mimi_testbed::World;
use mimi_testbed::procs::binary;

fn discover(world: &World, rest: &[&str]) -> (i32, String, String) {
    let exe = binary("mimi-client", "mimi-discover").unwrap();
    let out = Command::new(exe)
        .arg("--relay")
        .arg(format!("https://{}", world.relay_addr))
        .arg("--ca-file")
        .arg(&world.ca_file)
        .arg("--trust-anchor")
        .arg(&world.trust_anchor)
        .arg("--dns")
        .arg(format!("udp:{}", world.dns_addr))
        .args(rest)
        .env_remove("MIMI_RELAY")
        .env_remove("MIMI_DNS")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_finds_accounts_and_says_what_dnssec_said() {
    let world = World::start().await.unwrap();
    let w = &world;
    let (code, stdout, stderr) =
        tokio::task::block_in_place(|| discover(w, &["--json", "bob.example.com"]));
    assert_eq!(code, 0, "{stderr}");
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(line["ok"], true);
    assert_eq!(line["result"]["dnssec"], "secure");
    assert_eq!(line["result"]["providers"][0]["outcome"]["status"], "found");
    assert_eq!(
        line["result"]["providers"][0]["outcome"]["accounts"][0],
        "mimi://alpha.example/u/bob"
    );
    assert_eq!(line["result"]["providers"][0]["key_check"], "tunnel+shared");

    // Several at once: printed in the order given, whatever order they finish in.
    let inputs = [
        "carol.example.com",
        "alice.example.com",
        "dave.example.com",
        "erin.example.com",
    ];
    let mut args = vec!["--json"];
    args.extend(inputs);
    let (code, stdout, _) = tokio::task::block_in_place(|| discover(w, &args));
    assert_eq!(code, 0);
    let order: Vec<String> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["input"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(order, inputs);

    // Table output, nothing found: exit 1.
    let (code, stdout, _) = tokio::task::block_in_place(|| discover(w, &["carol.example.com"]));
    assert_eq!(code, 1);
    assert!(
        stdout.contains("carol.example.com (handle; DNS secure)"),
        "{stdout}"
    );
    assert!(stdout.contains("not found"), "{stdout}");
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_answers_are_refused_and_unsigned_ones_shown_or_refused() {
    let world = World::start().await.unwrap();
    let w = &world;
    // A record changed without re-signing: bogus, exit 3, nothing sent to
    // any provider (neither the relay nor any gateway saw a thing).
    world.recorder.clear();
    let (code, stdout, _) =
        tokio::task::block_in_place(|| discover(w, &["--json", "mallory.example.com"]));
    assert_eq!(code, 3, "{stdout}");
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(line["error"]["code"], "dns_bogus");
    for party in [
        mimi_testbed::recorder::Party::Relay,
        mimi_testbed::recorder::Party::Gateway("alpha".into()),
    ] {
        assert!(world.recorder.of(&party).is_empty(), "{party} was reached");
    }
    // An unsigned delegation: insecure, shown with a note; refused when
    // signed answers are required.
    let (code, stdout, _) =
        tokio::task::block_in_place(|| discover(w, &["ivan.insecure.example.com"]));
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("DNS insecure"), "{stdout}");
    assert!(stdout.contains("not DNSSEC-signed"), "{stdout}");
    let (code, stdout, _) = tokio::task::block_in_place(|| {
        discover(
            w,
            &["--json", "--require-dnssec", "ivan.insecure.example.com"],
        )
    });
    assert_eq!(code, 3, "{stdout}");
    assert!(stdout.contains("\"dns_insecure\""), "{stdout}");
    world.shutdown().await;
}

/// `mimi-testbed up`, the real binary: it prints a ready credential file and
/// its quota, and the configuration it prints works for `mimi-discover`
/// against the provider that requires tokens.
#[test]
fn testbed_up_prints_a_ready_credential_and_its_quota() {
    use std::io::BufRead;
    use std::time::{Duration, Instant};
    let mut up = Command::new(binary("mimi-testbed", "mimi-testbed").unwrap())
        .arg("up")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = up.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut lines = Vec::new();
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) if line.contains("Ctrl-C to stop") => break,
            Ok(line) => lines.push(line),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    let find = |prefix: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no {prefix:?} line in {lines:#?}"))
    };
    let credential = find("credential: ");
    assert!(std::path::Path::new(&credential).exists());
    let quota = find("quota: ");
    assert!(quota.contains("tokens per"), "{quota}");
    let config = lines
        .iter()
        .find_map(|l| {
            l.strip_prefix("Or with a config file (")
                .and_then(|r| r.strip_suffix("):"))
        })
        .expect("a config file line")
        .to_owned();
    let out = Command::new(binary("mimi-client", "mimi-discover").unwrap())
        .args(["--config", &config, "--token-cache", "none", "--json"])
        .arg("bob.example.com")
        .env_remove("MIMI_RELAY")
        .env_remove("MIMI_CREDENTIAL")
        .output()
        .unwrap();
    let _ = up.kill();
    let _ = up.wait();
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        line["result"]["providers"][0]["outcome"]["status"], "found",
        "{line}"
    );
}
