use super::*;
use std::time::UNIX_EPOCH;

const T0: u64 = 1_800_000_000;

fn at(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(s)
}

const POLICY: RotationPolicy = RotationPolicy {
    publish_ahead: Duration::from_secs(100),
    grace: Duration::from_secs(1000),
};

#[test]
fn rotation_publishes_ahead_and_keeps_old_keys_for_the_grace() {
    let mut file = KeyFile::new(at(T0)).unwrap();
    let old = file.keys[0].id;
    let new = file.rotate(at(T0 + 10), POLICY).unwrap();
    assert_ne!(old, new);

    // Published, but the old key is still current.
    let ring = KeyRing::build(&file, at(T0 + 20)).unwrap();
    assert_eq!(ring.ids(), [old, new]);
    assert!(ring.server(new).is_some());
    assert_eq!(ring.max_age(Duration::from_secs(3600)), 90);

    // The new key is current: it comes first; the old one is in grace.
    let ring = KeyRing::build(&file, at(T0 + 110)).unwrap();
    assert_eq!(ring.ids(), [new, old]);

    // Past the grace the old key is refused.
    let ring = KeyRing::build(&file, at(T0 + 10 + 100 + 1000)).unwrap();
    assert_eq!(ring.ids(), [new]);
    assert!(ring.server(old).is_none());
}

#[test]
fn rotation_drops_expired_keys_and_finds_free_ids() {
    let mut file = KeyFile::new(at(T0)).unwrap();
    for i in 0..300 {
        file.rotate(at(T0 + i * 2000), POLICY).unwrap();
        assert!(file.keys.len() <= 2);
    }
}

#[test]
fn no_free_id_is_an_error() {
    let mut file = KeyFile::new(at(T0)).unwrap();
    let forever = RotationPolicy {
        publish_ahead: Duration::ZERO,
        grace: Duration::from_secs(u32::MAX.into()),
    };
    for _ in 0..255 {
        file.rotate(at(T0), forever).unwrap();
    }
    assert!(matches!(
        file.rotate(at(T0), forever),
        Err(Error::NoFreeKeyId)
    ));
}

#[test]
fn file_round_trips_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/keys.json");
    let file = KeyFile::load_or_create(&path, at(T0)).unwrap();
    assert_eq!(KeyFile::load(&path).unwrap(), file);
    assert_eq!(KeyFile::load_or_create(&path, at(T0 + 5)).unwrap(), file);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn malformed_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    for text in [
        "not json",
        r#"{"version":2,"keys":[]}"#,
        r#"{"version":1,"keys":[{"id":1,"ikm":"00","not_before":0,"expires":null}]}"#,
        r#"{"version":1,"keys":[],"extra":1}"#,
    ] {
        std::fs::write(&path, text).unwrap();
        assert!(
            matches!(KeyFile::load(&path), Err(Error::KeyFileFormat { .. })),
            "{text}"
        );
    }
    let ikm = "11".repeat(32);
    std::fs::write(
        &path,
        format!(
            r#"{{"version":1,"keys":[{{"id":1,"ikm":"{ikm}","not_before":0,"expires":null}},{{"id":1,"ikm":"{ikm}","not_before":0,"expires":null}}]}}"#
        ),
    )
    .unwrap();
    assert!(matches!(
        KeyFile::load(&path),
        Err(Error::KeyFileFormat { .. })
    ));
}

#[test]
fn manager_sees_rotation_made_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let mgr = KeyManager::open(&path, at(T0)).unwrap();
    let before = mgr.ring().ids().to_vec();
    // Another process (the CLI) rotates the file.
    std::thread::sleep(Duration::from_millis(20));
    let mut file = KeyFile::load(&path).unwrap();
    let new = file
        .rotate(
            at(T0 + 1),
            RotationPolicy {
                publish_ahead: Duration::ZERO,
                ..POLICY
            },
        )
        .unwrap();
    file.save(&path).unwrap();
    mgr.refresh(at(T0 + 2), None, POLICY).unwrap();
    let after = mgr.ring().ids().to_vec();
    assert_eq!(after, [new, before[0]]);
}

#[test]
fn automatic_rotation_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let mgr = KeyManager::open(&path, at(T0)).unwrap();
    mgr.refresh(at(T0 + 50), Some(Duration::from_secs(60)), POLICY)
        .unwrap();
    assert_eq!(mgr.ring().ids().len(), 1);
    mgr.refresh(at(T0 + 60), Some(Duration::from_secs(60)), POLICY)
        .unwrap();
    assert_eq!(mgr.ring().ids().len(), 2);
    assert_eq!(KeyFile::load(&path).unwrap().keys.len(), 2);
}

#[test]
fn a_failed_save_changes_neither_the_file_nor_the_served_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let manager = KeyManager::open(&path, at(T0)).unwrap();
    let before_ids = manager.ring().ids().to_vec();
    let before_file = std::fs::read(&path).unwrap();
    // The temporary file's place is taken by a directory: the save fails.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::create_dir(&tmp).unwrap();
    assert!(manager.rotate(at(T0 + 10), POLICY).is_err());
    // Automatic rotation, due at every refresh: each fails, and no key
    // the file lacks is ever served (even once the new one would be current).
    for t in [T0 + 10_000, T0 + 10_200, T0 + 20_000] {
        assert!(
            manager
                .refresh(at(t), Some(Duration::from_secs(1)), POLICY)
                .is_err()
        );
        assert_eq!(manager.ring().ids(), before_ids, "served keys unchanged");
    }
    assert_eq!(std::fs::read(&path).unwrap(), before_file, "file unchanged");
    // Once the disk is usable again, rotation goes through, and what is
    // served is what the file holds.
    std::fs::remove_dir(&tmp).unwrap();
    let id = manager.rotate(at(T0 + 20), POLICY).unwrap();
    let on_disk = KeyFile::load(&path).unwrap();
    assert!(on_disk.keys.iter().any(|k| k.id == id));
    let ring = KeyRing::build(&on_disk, at(T0 + 20)).unwrap();
    assert_eq!(manager.ring().ids(), ring.ids());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    KeyFile::new(at(T0)).unwrap().save(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = KeyManager::open(&path, at(T0)).unwrap_err();
    assert!(err.to_string().contains("readable by others"), "{err}");
}

#[test]
fn a_gateway_with_no_live_key_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let mut file = KeyFile::new(at(T0)).unwrap();
    for k in &mut file.keys {
        k.expires = Some(T0 + 1);
    }
    file.save(&path).unwrap();
    let err = KeyManager::open(&path, at(T0 + 100)).unwrap_err();
    assert!(err.to_string().contains("no key is live"), "{err}");
}
