//! The operator's commands, run as the real binary: `check` lists every
//! problem and exits non-zero; `directory export` writes what `import` reads.

use std::path::Path;
use std::process::Command;

fn gateway(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mimi-gateway"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("MIMI_GATEWAY_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("gateway.toml");
    std::fs::write(
        &path,
        format!(
            "public_host = \"mimi.p.example\"\nkey_file = \"{k}\"\n{extra}\n[directory]\ndatabase = \"{d}\"\n",
            k = dir.join("keys.json").display(),
            d = dir.join("dir.sqlite").display(),
        ),
    )
    .unwrap();
    path
}

#[test]
fn check_passes_a_good_configuration_and_lists_every_problem_of_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_config(dir.path(), "plain_http = true");
    let (code, out, err) = gateway(&good, &["check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("the gateway can start"), "{out}");
    assert!(
        !dir.path().join("keys.json").exists(),
        "check creates nothing"
    );

    // A key file others can read, TLS files that are not there, and a
    // publish-ahead shorter than the key lists' max-age: all three said.
    let (code, _, err) = gateway(&good, &["keys", "rotate"]);
    assert_eq!(code, 0, "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("keys.json"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    let bad = write_config(
        dir.path(),
        "[tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n[keys]\npublish_ahead_secs = 10\nmax_age_secs = 3600",
    );
    let (code, out, _) = gateway(&bad, &["check"]);
    assert_ne!(code, 0);
    let problems: Vec<&str> = out.lines().filter(|l| l.starts_with("PROBLEM")).collect();
    assert_eq!(problems.len(), if cfg!(unix) { 3 } else { 2 }, "{out}");
    assert!(out.contains("publish_ahead_secs"), "{out}");
    assert!(out.contains("TLS"), "{out}");
    #[cfg(unix)]
    assert!(out.contains("readable by others"), "{out}");
}

#[test]
fn export_writes_what_import_reads() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "plain_http = true");
    for args in [
        [
            "directory",
            "add",
            "alice.example.com",
            "mimi://p.example/u/alice",
        ]
        .as_slice(),
        &[
            "directory",
            "add",
            "bob@example.com",
            "mimi://p.example/u/bob",
            "--hidden",
        ],
        &[
            "directory",
            "add",
            "+1 555 123 4567",
            "mimi://p.example/u/carol",
        ],
    ] {
        let (code, _, err) = gateway(&config, args);
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    for ext in ["csv", "json"] {
        let file = dir.path().join(format!("out.{ext}"));
        let f = file.display().to_string();
        let (code, _, err) = gateway(&config, &["directory", "export", "--output", &f]);
        assert_eq!(code, 0, "{err}");
        // Into a fresh directory, and out again: the same bytes.
        let other = tempfile::tempdir().unwrap();
        let other_config = write_config(other.path(), "plain_http = true");
        let (code, out, err) = gateway(&other_config, &["directory", "import", &f]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("imported 3 entries"), "{out}");
        let again = other.path().join(format!("again.{ext}"));
        let a = again.display().to_string();
        let (code, _, err) = gateway(&other_config, &["directory", "export", "--output", &a]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            std::fs::read(&file).unwrap(),
            std::fs::read(&again).unwrap(),
            "{ext}"
        );
    }
    // Standard output, CSV by default, with the hidden entry marked.
    let (code, out, _) = gateway(&config, &["directory", "export"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("identifier,account,searchable\n"), "{out}");
    assert!(
        out.contains("bob@example.com,mimi://p.example/u/bob,false"),
        "{out}"
    );
}

fn authority(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mimi-authority"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A mapping authority's round: a key (private, never overwritten), the
/// record that publishes it, one signed mapping, and a directory export
/// signed in bulk and imported, its assertions kept; and a provider that is
/// its own authority signing at import.
#[test]
fn an_authority_signs_what_the_gateway_imports() {
    use base64::Engine;
    use mimi_proto::mapping::{Assertion, AuthorityKey};
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("authority.json");
    let k = key.display().to_string();
    let (code, out, err) = authority(&["new-key", "--name", "example.com", &k]);
    assert_eq!(code, 0, "{err}");
    let published = AuthorityKey::parse_record(out.trim().as_bytes())
        .unwrap()
        .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (code, _, err) = authority(&["new-key", "--name", "example.com", &k]);
    assert_ne!(code, 0, "a key file was overwritten");
    assert!(err.contains("exists"), "{err}");
    let (code, out, _) = authority(&["record", &k, "--domain", "Example.COM"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        format!("_mimi-authority.example.com. IN TXT \"{published}\"")
    );

    let (code, out, err) = authority(&[
        "sign",
        &k,
        "--identifier",
        "Alice.Example.com",
        "--account",
        "mimi://p.example/u/alice",
        "--provider",
        "mimi.p.example",
    ]);
    assert_eq!(code, 0, "{err}");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(out.trim())
        .unwrap();
    let a = Assertion::decode(&bytes).unwrap();
    assert!(a.signed_by(&published));
    assert_eq!(a.claims().mapping.identifier, "alice.example.com");

    // Export, sign in bulk, import: every entry carries its assertion.
    let config = write_config(dir.path(), "plain_http = true");
    for args in [
        &[
            "directory",
            "add",
            "alice.example.com",
            "mimi://p.example/u/alice",
        ][..],
        &[
            "directory",
            "add",
            "+15550109999",
            "mimi://p.example/u/phone",
        ],
    ] {
        assert_eq!(gateway(&config, args).0, 0);
    }
    let export = dir.path().join("all.json");
    let signed = dir.path().join("signed.json");
    let (e, s) = (export.display().to_string(), signed.display().to_string());
    assert_eq!(gateway(&config, &["directory", "export", "-o", &e]).0, 0);
    let (code, _, err) = authority(&[
        "sign-entries",
        &k,
        &e,
        "-o",
        &s,
        "--provider",
        "mimi.p.example",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("signed 2"), "{err}");
    let (code, _, err) = gateway(&config, &["directory", "import", &s]);
    assert_eq!(code, 0, "{err}");
    let (_, listed, _) = gateway(&config, &["directory", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["assertion"].is_string()),
        "{listed}"
    );
    // Again at once: nothing is due.
    let (code, _, err) = authority(&[
        "sign-entries",
        &k,
        &s,
        "-o",
        &e,
        "--provider",
        "mimi.p.example",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("signed 0; kept 2"), "{err}");

    // A provider that is its own authority signs at import.
    let other = tempfile::tempdir().unwrap();
    let own = write_config(other.path(), "plain_http = true");
    let plain = other.path().join("plain.csv");
    std::fs::write(&plain, "bob.example.com,mimi://p.example/u/bob\n").unwrap();
    let p = plain.display().to_string();
    let (code, _, err) = gateway(&own, &["directory", "import", &p, "--sign-with", &k]);
    assert_eq!(code, 0, "{err}");
    let (_, csv, _) = gateway(&own, &["directory", "export"]);
    assert!(
        csv.starts_with("identifier,account,searchable,assertion\n"),
        "{csv}"
    );
}
