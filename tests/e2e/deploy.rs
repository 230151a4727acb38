//! The systemd units in `deploy/`: the hardening an operator expects is there,
//! and each starts its binary only after `check` passes. (`.ci/run` also runs
//! `systemd-analyze verify` on them where it is installed.)

fn unit(name: &str) -> String {
    let path = format!("{}/../deploy/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The value of `key=` in the unit, if set (the last one wins, as in systemd).
fn value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn units_are_hardened_and_check_before_they_start() {
    for (name, binary, state) in [
        ("mimi-gateway.service", "mimi-gateway", true),
        ("mimi-relay.service", "mimi-relay", false),
    ] {
        let text = unit(name);
        for (key, want) in [
            ("DynamicUser", "yes"),
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("PrivateDevices", "yes"),
            ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
            ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
            ("UMask", "0077"),
        ] {
            assert_eq!(value(&text, key), Some(want), "{name}: {key}");
        }
        assert_eq!(
            value(&text, "ExecStartPre"),
            Some(format!("/usr/local/bin/{binary} check").as_str()),
            "{name}"
        );
        assert!(value(&text, "ExecStart").is_some_and(|v| v.contains(binary)));
        if state {
            assert_eq!(value(&text, "StateDirectory"), Some(binary), "{name}");
            assert_eq!(value(&text, "StateDirectoryMode"), Some("0700"), "{name}");
        }
    }
}
