//! Secret files: the key file, the seed file, the token key file and
//! password files. Refused when others can read them, written atomically
//! with mode 0600.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::secret::Password;

/// The file's permission bits if its group or others may read or write
/// it, `None` if only its owner may.
pub(crate) fn mode_open_to_others(path: &Path) -> std::io::Result<Option<u32>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        Ok((mode & 0o077 != 0).then_some(mode))
    }
    #[cfg(not(unix))]
    {
        std::fs::metadata(path).map(|_| None)
    }
}

/// Refuses a secret file that others can read: its keys could decrypt every
/// request sent to them.
pub(crate) fn refuse_readable_by_others(path: &Path) -> Result<()> {
    let open = mode_open_to_others(path).map_err(|source| Error::KeyFile {
        path: path.display().to_string(),
        source,
    })?;
    match open {
        Some(mode) => Err(Error::KeyFileFormat {
            path: path.display().to_string(),
            reason: format!(
                "readable by others (mode {mode:o}): chmod 600 it, and replace the keys if others may have read them"
            ),
        }),
        None => Ok(()),
    }
}

/// Reads a secret (a password) from a file named by `setting`: the first
/// line, without its end. A file others can read is refused, as the key
/// file is.
pub(crate) fn read_secret_line(path: &Path, setting: &str) -> Result<Password> {
    let fail = |reason: String| Error::Config(format!("{setting} {}: {reason}", path.display()));
    if let Some(mode) = mode_open_to_others(path).map_err(|e| fail(e.to_string()))? {
        return Err(fail(format!(
            "readable by others (mode {mode:o}): chmod 600 it"
        )));
    }
    let text =
        zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?);
    match text.lines().next() {
        Some(line) if !line.is_empty() => Ok(Password(zeroize::Zeroizing::new(line.to_owned()))),
        _ => Err(fail("is empty".into())),
    }
}

/// Reads a secret JSON file (the key file, the seed file), refusing one
/// that others can read.
pub(crate) fn read_private_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    refuse_readable_by_others(path)?;
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
        Error::KeyFile {
            path: path.display().to_string(),
            source,
        }
    })?);
    serde_json::from_str(&text).map_err(|e| Error::KeyFileFormat {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Writes a secret file atomically (temporary file, sync, rename, directory
/// sync) with mode 0600.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::KeyFile {
        path: path.display().to_string(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let written = opts.open(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself survives a crash only once the directory is synced.
        std::fs::File::open(dir).and_then(|d| d.sync_all())
    });
    if let Err(e) = written {
        // Leave nothing half-written behind (the temporary file may
        // not exist, or may be something that is not ours to remove).
        if std::fs::symlink_metadata(&tmp).is_ok_and(|m| m.is_file()) {
            let _ = std::fs::remove_file(&tmp);
        }
        return Err(io(e));
    }
    Ok(())
}
