//! Arguments, the configuration file, and the settings they make: every
//! identifier and file is checked here, before the first packet leaves.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use mimi_client::{Credential, DnsMode, Error, KeyCheck, Options};
use mimi_proto::Identifier;
use serde::Deserialize;

/// Find a person's accounts on MIMI messaging providers without telling any
/// one party both who you are and whom you look for.
///
/// Exit status: 0 an account was found; 1 nothing was found; 2 bad input
/// (nothing was sent); 3 a network or provider failure, nothing found.
#[derive(Debug, Parser)]
#[command(name = "mimi-discover", version)]
pub(super) struct Args {
    /// Identifiers: handles (alice.example.com), email addresses, +E.164 numbers.
    pub(super) identifiers: Vec<String>,
    /// Read identifiers from a file, one per line (`-` for standard input;
    /// blank lines and lines starting with # are skipped).
    #[arg(long, short)]
    pub(super) file: Option<PathBuf>,
    /// Print JSON Lines: one object per identifier (schema in the README).
    #[arg(long)]
    pub(super) json: bool,
    /// The Oblivious HTTP relay: an origin (`https://relay.example`, whose
    /// resources are `/gateway/<host>`) or a URI template with `{gateway}`.
    #[arg(long, env = "MIMI_RELAY")]
    pub(super) relay: Option<String>,
    /// A relay resource for one provider's gateway, `HOST=URL` (relays with
    /// one resource per gateway); repeatable.
    #[arg(long = "relay-for", value_name = "HOST=URL")]
    pub(super) relay_for: Vec<String>,
    /// Where DNS questions go: `system`, `udp:ADDR:PORT`, `tcp:ADDR:PORT`,
    /// `doh:https://HOST[:PORT]/PATH`, or `oblivious:GATEWAY-HOST` (through the relay).
    #[arg(long, env = "MIMI_DNS")]
    pub(super) dns: Option<String>,
    /// Extra CA certificates (PEM) to trust for the relay and for providers'
    /// gateways.
    #[arg(long, env = "MIMI_CA_FILE")]
    pub(super) ca_file: Option<PathBuf>,
    /// How a provider's key is checked before anything is encrypted to it:
    /// `tunnel+shared` (default: over TLS to the gateway through the relay,
    /// and against the relay's shared copy), `tunnel`, `direct+shared`,
    /// `direct` (the gateway then sees your address, never what you ask).
    #[arg(long, env = "MIMI_KEY_CHECK", value_enum)]
    pub(super) key_check: Option<KeyCheck>,
    /// A file holding the bearer credential for the relay as attester (a
    /// JWT from the relay operator), for providers that answer only with
    /// lookup tokens. Without one, only the relay's anonymous quota applies.
    #[arg(long, env = "MIMI_CREDENTIAL")]
    pub(super) credential: Option<PathBuf>,
    /// Where unspent lookup tokens are kept between runs (private to you),
    /// or `none`. Default: `$XDG_CACHE_HOME/mimi-discover/tokens.json`.
    #[arg(long, env = "MIMI_TOKEN_CACHE")]
    pub(super) token_cache: Option<PathBuf>,
    /// Lookup tokens obtained at once (1 to 64; default 4).
    #[arg(long)]
    pub(super) token_batch: Option<usize>,
    /// Configuration file (TOML: relay, dns, ca_file, key_check, trust_anchor,
    /// require_dnssec, authority_keys, require_verified, timeout_secs,
    /// concurrency, credential, token_cache, token_batch, and a `[relays]`
    /// table of gateway host = relay URL).
    #[arg(long, short, env = "MIMI_DISCOVER_CONFIG")]
    pub(super) config: Option<PathBuf>,
    /// DNSSEC trust anchors (DNSKEY records in zone-file form) instead of the
    /// root's, built in: for private roots and tests.
    #[arg(long, env = "MIMI_TRUST_ANCHOR")]
    pub(super) trust_anchor: Option<PathBuf>,
    /// Refuse DNS answers that are not DNSSEC-signed.
    #[arg(long)]
    pub(super) require_dnssec: bool,
    /// A trust store of mapping authorities (one `v=MIMIA1; n=…; k=…[;
    /// scope=…]` line each), trusted beside the keys an identifier's domain
    /// publishes in DNSSEC-signed DNS: how phone-number authorities are
    /// trusted.
    #[arg(long, env = "MIMI_AUTHORITY_KEYS")]
    pub(super) authority_keys: Option<PathBuf>,
    /// Show only accounts whose mapping a trusted authority signed;
    /// unverified ones are refused.
    #[arg(long)]
    pub(super) require_verified: bool,
    /// Seconds a whole lookup may take, DNS and every provider included.
    #[arg(long)]
    pub(super) timeout: Option<u64>,
    /// Identifiers looked up at once (batches).
    #[arg(long)]
    pub(super) concurrency: Option<usize>,
    /// Show each step and its timing on standard error.
    #[arg(long, short)]
    pub(super) verbose: bool,
}

/// The optional configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    relay: Option<String>,
    /// Gateway host → relay resource URL.
    #[serde(default)]
    relays: std::collections::BTreeMap<String, String>,
    dns: Option<String>,
    ca_file: Option<PathBuf>,
    key_check: Option<String>,
    trust_anchor: Option<PathBuf>,
    #[serde(default)]
    require_dnssec: bool,
    authority_keys: Option<PathBuf>,
    #[serde(default)]
    require_verified: bool,
    timeout_secs: Option<u64>,
    concurrency: Option<usize>,
    credential: Option<PathBuf>,
    token_cache: Option<PathBuf>,
    token_batch: Option<usize>,
}

pub(super) struct Settings {
    pub(super) relay: String,
    pub(super) relay_for: Vec<(String, String)>,
    pub(super) dns: DnsMode,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) key_check: KeyCheck,
    pub(super) trust_anchor: Option<PathBuf>,
    pub(super) require_dnssec: bool,
    pub(super) authorities: Vec<mimi_proto::mapping::TrustedAuthority>,
    pub(super) require_verified: bool,
    pub(super) timeout: Duration,
    pub(super) concurrency: usize,
    pub(super) credential: Option<Credential>,
    pub(super) token_cache: Option<PathBuf>,
    pub(super) token_batch: usize,
}

pub(super) async fn prepare(args: &Args) -> Result<(Settings, Vec<String>), String> {
    let file: FileConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let relay = args
        .relay
        .clone()
        .or(file.relay)
        .ok_or("no relay: pass --relay https://relay.example (or set MIMI_RELAY)")?;
    let uri: http::Uri = relay
        .parse()
        .map_err(|_| format!("the relay URL {relay:?} is malformed"))?;
    if !matches!(uri.scheme_str(), Some("https" | "http")) || uri.host().is_none() {
        return Err(format!(
            "the relay URL {relay:?} must be https://HOST[:PORT]"
        ));
    }
    let key_check = match (args.key_check, file.key_check.as_deref()) {
        (Some(flag), _) => flag,
        (None, None) => KeyCheck::default(),
        (None, Some(name)) => KeyCheck::parse(name).ok_or_else(|| {
            format!("key_check {name:?}: expected tunnel+shared, tunnel, direct+shared or direct")
        })?,
    };
    let dns: DnsMode = args
        .dns
        .as_deref()
        .or(file.dns.as_deref())
        .unwrap_or("system")
        .parse()
        .map_err(|e: Error| e.to_string())?;
    // Flags win over the file, host by host.
    let mut relay_for = file.relays;
    for pair in &args.relay_for {
        let (host, url) = pair
            .split_once('=')
            .filter(|(h, u)| mimi_proto::record::Endpoint::parse(h).is_some() && !u.is_empty())
            .ok_or_else(|| format!("--relay-for {pair:?}: expected HOST=URL"))?;
        relay_for.insert(host.to_ascii_lowercase(), url.to_owned());
    }
    let settings = Settings {
        relay,
        relay_for: relay_for.into_iter().collect(),
        dns,
        ca_file: args.ca_file.clone().or(file.ca_file),
        key_check,
        trust_anchor: args.trust_anchor.clone().or(file.trust_anchor),
        require_dnssec: args.require_dnssec || file.require_dnssec,
        authorities: match args.authority_keys.clone().or(file.authority_keys) {
            Some(path) => {
                mimi_client::verify::load_trust_store(&path).map_err(|e| e.to_string())?
            }
            None => Vec::new(),
        },
        require_verified: args.require_verified || file.require_verified,
        timeout: Duration::from_secs(args.timeout.or(file.timeout_secs).unwrap_or(10).max(1)),
        concurrency: args.concurrency.or(file.concurrency).unwrap_or(8).max(1),
        credential: match args.credential.clone().or(file.credential) {
            Some(path) => Some(read_credential(&path)?),
            None => None,
        },
        token_cache: match args.token_cache.clone().or(file.token_cache) {
            Some(p) if p.as_os_str() == "none" => None,
            Some(p) => Some(p),
            None => crate::token_cache::default_path(),
        },
        token_batch: match args.token_batch.or(file.token_batch) {
            None => Options::default().token_batch,
            Some(n @ 1..=64) => n,
            Some(n) => return Err(format!("--token-batch {n}: expected 1 to 64")),
        },
    };

    let mut inputs: Vec<(String, String)> = args
        .identifiers
        .iter()
        .map(|s| (s.clone(), format!("argument {s:?}")))
        .collect();
    if let Some(path) = &args.file {
        let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            let f = std::fs::File::open(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Box::new(std::io::BufReader::new(f))
        };
        for (n, line) in reader.lines().enumerate() {
            let line = line.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            inputs.push((
                line.to_owned(),
                format!("{} line {}", path.display(), n + 1),
            ));
        }
    }
    if inputs.is_empty() {
        return Err("nothing to look up: give identifiers or --file".into());
    }
    let bad: Vec<String> = inputs
        .iter()
        .filter_map(|(s, at)| {
            Identifier::parse(s)
                .err()
                .map(|e| format!("{at}: not a valid identifier: {e}"))
        })
        .collect();
    if !bad.is_empty() {
        return Err(format!("nothing was sent:\n  {}", bad.join("\n  ")));
    }
    Ok((settings, inputs.into_iter().map(|(s, _)| s).collect()))
}

/// Reads the bearer credential from `path`: one line, and private to the
/// user (a credential others can read is a warning, not an error).
fn read_credential(path: &std::path::Path) -> Result<Credential, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the credential file {}: {e}", path.display()))?;
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "mimi-discover: warning: the credential file {} can be read by others (chmod 600 it)",
                path.display()
            );
        }
    }
    Credential::new(&text).map_err(|e| format!("credential file {}: {e}", path.display()))
}

pub(super) fn load_pem(
    path: &std::path::Path,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("CA file {}: {e}", path.display()))?;
    mimi_client::transport::certificates_from_pem(&pem, &format!("CA file {}", path.display()))
        .map_err(|e| e.to_string())
}
