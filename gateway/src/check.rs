//! `mimi-gateway check`: everything that can be checked before a start, each
//! problem said in a sentence, so that a deploy script can stop before a
//! broken gateway replaces a working one. Nothing is created or changed.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::config::{Config, DirectoryStore};
use crate::directory::Directory;
use crate::keys::{KeyFile, KeyRing};
use crate::seeded_keys::SeedFile;
pub use mimi_server_core::report::Report;
use mimi_server_core::tls;

/// Checks `config`, its key file, database, TLS files and upstream.
pub async fn check(config: &Config) -> Report {
    let mut report = Report::default();
    report.configuration(config.validate());
    match (&config.keys.source, &config.keys.seed_file) {
        (crate::config::KeySourceKind::Seed, Some(path)) => {
            report.check("seed file", seed_file(path, config));
        }
        _ => report.check("key file", key_file(&config.key_file)),
    }
    if config.replay.store == crate::config::ReplayStoreKind::Redis {
        let result = match crate::replay::RedisReplay::new(&config.replay) {
            Ok(redis) => redis
                .reachable()
                .await
                .map(|()| "Redis answers".to_string())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        report.check("replay store", result);
    }
    report.connections(
        mimi_server_core::limits::open_files_at_most()
            .map_err(crate::Error::from)
            .and_then(|n| config.http_options(n))
            .map(|o| o.connections),
    );
    report.tls_files(config.tls.as_ref());
    match &config.upstream {
        None => report.check("directory", directory(config).await),
        Some(up) => {
            let roots = match &up.ca_file {
                Some(path) => tls::load_roots(path).map_err(|e| e.to_string()),
                None => Ok(Vec::new()),
            };
            let reachable = match roots {
                Ok(roots) => crate::inner::UpstreamApi::new(
                    &up.url,
                    Duration::from_millis(up.timeout_ms),
                    &roots,
                )
                .map_err(|e| e.to_string())
                .map(|u| async move { u.probe().await }),
                Err(e) => Err(e),
            };
            let result = match reachable {
                Ok(probe) => probe
                    .await
                    .map(|status| format!("{} answers (HTTP {status})", up.url))
                    .map_err(|e| format!("{} does not answer: {e}", up.url)),
                Err(e) => Err(e),
            };
            report.check("upstream", result);
        }
    }
    report
}

/// A file the gateway creates at its first start: fine if its directory is there.
fn created_at_start(path: &Path) -> Result<String, String> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    match dir.map(std::fs::metadata) {
        Some(Err(e)) => Err(format!(
            "{} does not exist, and its directory cannot be used: {e}",
            path.display()
        )),
        _ => Ok(format!("{} will be created at first start", path.display())),
    }
}

fn key_file(path: &Path) -> Result<String, String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return created_at_start(path),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} is readable by others (mode {mode:o}); chmod 600 it",
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let file = KeyFile::load(path).map_err(|e| e.to_string())?;
    let ring = KeyRing::build(&file, SystemTime::now()).map_err(|e| e.to_string())?;
    if ring.ids().is_empty() {
        return Err(format!(
            "{} holds no live key; run `mimi-gateway keys rotate`",
            path.display()
        ));
    }
    Ok(format!(
        "{} serves key ids {:?}",
        path.display(),
        ring.ids()
    ))
}

async fn directory(config: &Config) -> Result<String, String> {
    let section = &config.directory;
    let place = match section.store {
        DirectoryStore::Sqlite => {
            if !section.database.exists() {
                return created_at_start(&section.database);
            }
            section.database.display().to_string()
        }
        // Never the URL: it may name a user.
        DirectoryStore::Postgres => "PostgreSQL".to_string(),
    };
    let dir = Directory::connect(section)
        .await
        .map_err(|e| e.to_string())?;
    let n = dir.count().await.map_err(|e| e.to_string())?;
    Ok(format!("{place} opens, {n} entries"))
}

fn seed_file(path: &Path, config: &Config) -> Result<String, String> {
    if !path.exists() {
        return created_at_start(path);
    }
    let seeds = SeedFile::load(path).map_err(|e| e.to_string())?;
    let now = SystemTime::now();
    let ring =
        KeyRing::build(&seeds.keys_at(now, config.schedule()), now).map_err(|e| e.to_string())?;
    Ok(format!("{} gives key ids {:?}", path.display(), ring.ids()))
}
