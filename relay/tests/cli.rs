//! `mimi-relay check`, run as the real binary.

use std::process::Command;

fn check(config: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mimi-relay"))
        .arg("--config")
        .arg(&path)
        .arg("check")
        .env_remove("MIMI_RELAY_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn check_passes_a_good_configuration_and_lists_every_problem_of_a_bad_one() {
    let (code, out) = check("plain_http = true\n[[gateway]]\nhost = \"mimi.p.example\"\n");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("the relay can start"), "{out}");

    let (code, out) = check(
        "gateway_ca_file = \"/nonexistent/ca.pem\"\n\
         [tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n\
         [limits]\ntunnel_max_bytes = 10\n\
         [[gateway]]\nhost = \"127.0.0.1\"\n",
    );
    assert_ne!(code, 0);
    let problems: Vec<&str> = out.lines().filter(|l| l.starts_with("PROBLEM")).collect();
    // The limits, the TLS files, the CA file, and an IP literal as a gateway.
    assert_eq!(problems.len(), 4, "{out}");
    for needle in ["tunnel_max_bytes", "TLS", "gateway CA file", "gateways"] {
        assert!(out.contains(needle), "{needle}: {out}");
    }
}
