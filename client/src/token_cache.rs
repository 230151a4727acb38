//! `mimi-discover`'s private token cache: unspent lookup tokens kept for the
//! next run, so that a relay's quota counts lookups, not runs (DESIGN §10).
//!
//! The tokens are taken out of the file when a run starts (two runs at once
//! never both spend one) and what is left is merged back when it ends. The
//! file and its directory are private to the user (0600 and 0700); it is
//! replaced atomically, so a run cut off mid-write leaves the old file.

use std::io::Write;
use std::path::{Path, PathBuf};

use mimi_client::StoredTokens;

/// The default place: `$XDG_CACHE_HOME/mimi-discover/tokens.json`, else
/// `$HOME/.cache/mimi-discover/tokens.json`; none if neither is set.
pub(crate) fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("mimi-discover").join("tokens.json"))
}

fn read(path: &Path) -> Result<StoredTokens, String> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.is_empty() => Ok(StoredTokens::default()),
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("token cache {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StoredTokens::default()),
        Err(e) => Err(format!(
            "cannot read the token cache {}: {e}",
            path.display()
        )),
    }
}

/// Writes `tokens` to `path` atomically, private to the user.
fn write(path: &Path, tokens: &StoredTokens) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write the token cache {}: {e}", path.display());
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(fail)?;
    // tempfile creates the file 0600.
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    let json = serde_json::to_vec(tokens).map_err(|e| fail(std::io::Error::other(e)))?;
    tmp.write_all(&json).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Takes the kept tokens out of the file at `path`.
pub(crate) fn take(path: &Path) -> Result<StoredTokens, String> {
    let tokens = read(path)?;
    if !tokens.is_empty() {
        write(path, &StoredTokens::default())?;
    }
    Ok(tokens)
}

/// Adds `unspent` to what the file at `path` holds now (another run may
/// have put some back meanwhile).
pub(crate) fn put_back(path: &Path, unspent: StoredTokens) -> Result<(), String> {
    if unspent.is_empty() {
        return Ok(());
    }
    let mut now = read(path).unwrap_or_default();
    for (issuer, tokens) in unspent.issuers {
        now.issuers.entry(issuer).or_default().extend(tokens);
    }
    write(path, &now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_taken_out_and_put_back_privately() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache").join("tokens.json");
        assert!(take(&path).unwrap().is_empty(), "no file yet");
        let mut kept = StoredTokens::default();
        kept.issuers.insert("p.example".into(), vec!["AAAA".into()]);
        put_back(&path, kept.clone()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the cache is private");
        }
        assert_eq!(take(&path).unwrap(), kept);
        assert!(
            take(&path).unwrap().is_empty(),
            "taken out: not spent twice"
        );
        std::fs::write(&path, b"not json").unwrap();
        assert!(take(&path).is_err());
    }
}
