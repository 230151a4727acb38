//! Reading a server's TOML configuration file, and the pieces both servers'
//! files share.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// `[tls]`: the listener's certificate chain and key, as PEM files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// The command-line flags both servers take for their listeners; each
/// overrides its configuration-file setting.
#[derive(Debug, Default, clap::Args)]
pub struct ListenerFlags {
    /// Listen address.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Admin listen address (/metrics, /healthz).
    #[arg(long)]
    pub admin_listen: Option<SocketAddr>,
    /// TLS certificate chain (PEM).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP (only behind a TLS-terminating proxy).
    #[arg(long)]
    pub plain_http: bool,
}

impl ListenerFlags {
    /// Writes the flags given over the configuration's settings.
    pub fn apply(
        self,
        listen: &mut SocketAddr,
        admin_listen: &mut Option<SocketAddr>,
        tls: &mut Option<TlsFiles>,
        plain_http: &mut bool,
    ) {
        if let Some(v) = self.listen {
            *listen = v;
        }
        if let Some(v) = self.admin_listen {
            *admin_listen = Some(v);
        }
        if let (Some(cert), Some(key)) = (self.tls_cert, self.tls_key) {
            *tls = Some(TlsFiles { cert, key });
            *plain_http = false;
        }
        if self.plain_http {
            *plain_http = true;
            *tls = None;
        }
    }
}

/// Checks that a server is told either to serve TLS (`[tls]`) or plain
/// HTTP behind a TLS-terminating proxy, and not both.
pub fn check_tls_choice(tls: Option<&TlsFiles>, plain_http: bool) -> Result<()> {
    match (tls, plain_http) {
        (None, false) => Err(Error::Config(
            "TLS needs [tls] cert and key (or plain_http = true behind a TLS proxy)".into(),
        )),
        (Some(_), true) => Err(Error::Config(
            "choose either [tls] or plain_http, not both".into(),
        )),
        _ => Ok(()),
    }
}

/// A configuration that lives in a TOML file.
pub trait TomlFile: DeserializeOwned {
    /// Parses a configuration file's text.
    fn parse(text: &str) -> Result<Self> {
        parse(text)
    }

    /// Reads and parses a configuration file; errors name the file.
    fn load(path: &Path) -> Result<Self> {
        load(path)
    }
}

/// Parses a configuration file's text.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| Error::Config(e.to_string()))
}

/// Reads and parses a configuration file; errors name the file.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    parse(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}
