//! The command line: arguments, configuration, output.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use mimi_client::{
    Credential, Discoverer, Discovery, DnsMode, Error, KeyCheck, Options, Outcome, RelayTransport,
    Verification,
};
use mimi_proto::Identifier;
use serde::Deserialize;

const FOUND: u8 = 0;
const NOTHING_FOUND: u8 = 1;
const BAD_INPUT: u8 = 2;
const NETWORK: u8 = 3;

/// Find a person's accounts on MIMI messaging providers without telling any
/// one party both who you are and whom you look for.
///
/// Exit status: 0 an account was found; 1 nothing was found; 2 bad input
/// (nothing was sent); 3 a network or provider failure, nothing found.
#[derive(Debug, Parser)]
#[command(name = "mimi-discover", version)]
struct Args {
    /// Identifiers: handles (alice.example.com), email addresses, +E.164 numbers.
    identifiers: Vec<String>,
    /// Read identifiers from a file, one per line (`-` for standard input;
    /// blank lines and lines starting with # are skipped).
    #[arg(long, short)]
    file: Option<PathBuf>,
    /// Print JSON Lines: one object per identifier (schema in the README).
    #[arg(long)]
    json: bool,
    /// The Oblivious HTTP relay: an origin (`https://relay.example`, whose
    /// resources are `/gateway/<host>`) or a URI template with `{gateway}`.
    #[arg(long, env = "MIMI_RELAY")]
    relay: Option<String>,
    /// A relay resource for one provider's gateway, `HOST=URL` (relays with
    /// one resource per gateway); repeatable.
    #[arg(long = "relay-for", value_name = "HOST=URL")]
    relay_for: Vec<String>,
    /// Where DNS questions go: `system`, `udp:ADDR:PORT`, `tcp:ADDR:PORT`,
    /// `doh:https://HOST[:PORT]/PATH`, or `oblivious:GATEWAY-HOST` (through the relay).
    #[arg(long, env = "MIMI_DNS")]
    dns: Option<String>,
    /// Extra CA certificates (PEM) to trust for the relay and for providers'
    /// gateways.
    #[arg(long, env = "MIMI_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// How a provider's key is checked before anything is encrypted to it:
    /// `tunnel+shared` (default: over TLS to the gateway through the relay,
    /// and against the relay's shared copy), `tunnel`, `direct+shared`,
    /// `direct` (the gateway then sees your address, never what you ask).
    #[arg(long, env = "MIMI_KEY_CHECK", value_enum)]
    key_check: Option<KeyCheck>,
    /// A file holding the bearer credential for the relay as attester (a
    /// JWT from the relay operator), for providers that answer only with
    /// lookup tokens. Without one, only the relay's anonymous quota applies.
    #[arg(long, env = "MIMI_CREDENTIAL")]
    credential: Option<PathBuf>,
    /// Where unspent lookup tokens are kept between runs (private to you),
    /// or `none`. Default: `$XDG_CACHE_HOME/mimi-discover/tokens.json`.
    #[arg(long, env = "MIMI_TOKEN_CACHE")]
    token_cache: Option<PathBuf>,
    /// Lookup tokens obtained at once (1 to 64; default 4).
    #[arg(long)]
    token_batch: Option<usize>,
    /// Configuration file (TOML: relay, dns, ca_file, key_check, trust_anchor,
    /// require_dnssec, authority_keys, require_verified, timeout_secs,
    /// concurrency, credential, token_cache, token_batch, and a `[relays]`
    /// table of gateway host = relay URL).
    #[arg(long, short, env = "MIMI_DISCOVER_CONFIG")]
    config: Option<PathBuf>,
    /// DNSSEC trust anchors (DNSKEY records in zone-file form) instead of the
    /// root's, built in: for private roots and tests.
    #[arg(long, env = "MIMI_TRUST_ANCHOR")]
    trust_anchor: Option<PathBuf>,
    /// Refuse DNS answers that are not DNSSEC-signed.
    #[arg(long)]
    require_dnssec: bool,
    /// A trust store of mapping authorities (one `v=MIMIA1; n=…; k=…[;
    /// scope=…]` line each), trusted beside the keys an identifier's domain
    /// publishes in DNSSEC-signed DNS: how phone-number authorities are
    /// trusted.
    #[arg(long, env = "MIMI_AUTHORITY_KEYS")]
    authority_keys: Option<PathBuf>,
    /// Show only accounts whose mapping a trusted authority signed;
    /// unverified ones are refused.
    #[arg(long)]
    require_verified: bool,
    /// Seconds a whole lookup may take, DNS and every provider included.
    #[arg(long)]
    timeout: Option<u64>,
    /// Identifiers looked up at once (batches).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Show each step and its timing on standard error.
    #[arg(long, short)]
    verbose: bool,
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

struct Settings {
    relay: String,
    relay_for: Vec<(String, String)>,
    dns: DnsMode,
    ca_file: Option<PathBuf>,
    key_check: KeyCheck,
    trust_anchor: Option<PathBuf>,
    require_dnssec: bool,
    authorities: Vec<mimi_proto::mapping::TrustedAuthority>,
    require_verified: bool,
    timeout: Duration,
    concurrency: usize,
    credential: Option<Credential>,
    token_cache: Option<PathBuf>,
    token_batch: usize,
}

pub(crate) fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mimi-discover: cannot start: {e}");
            return ExitCode::from(NETWORK);
        }
    };
    ExitCode::from(runtime.block_on(run(args)))
}

async fn run(args: Args) -> u8 {
    // Everything is checked before the first packet leaves.
    let (settings, inputs) = match prepare(&args).await {
        Ok(v) => v,
        Err(reason) => {
            eprintln!("mimi-discover: {reason}");
            return BAD_INPUT;
        }
    };
    let roots = match &settings.ca_file {
        Some(path) => match load_pem(path) {
            Ok(r) => r,
            Err(reason) => {
                eprintln!("mimi-discover: {reason}");
                return BAD_INPUT;
            }
        },
        None => Vec::new(),
    };
    let transport = settings.relay_for.iter().fold(
        RelayTransport::new(&settings.relay, &roots, settings.timeout),
        |t, (host, url)| t.and_then(|t| t.with_relay_for(host, url)),
    );
    let discoverer = transport.and_then(|t| {
        Discoverer::new(
            t,
            Options {
                dns: settings.dns.clone(),
                dns_timeout: settings.timeout,
                provider_timeout: settings.timeout,
                lookup_timeout: Some(settings.timeout),
                ca_roots: roots.clone(),
                trust_anchor: settings.trust_anchor.clone(),
                require_dnssec: settings.require_dnssec,
                concurrency: settings.concurrency,
                key_check: settings.key_check,
                credential: settings.credential.clone(),
                token_batch: settings.token_batch,
                authorities: settings.authorities.clone(),
                require_verified: settings.require_verified,
                ..Options::default()
            },
        )
    });
    let discoverer = match discoverer {
        Ok(d) => d,
        Err(e) => {
            eprintln!("mimi-discover: {e}");
            return BAD_INPUT;
        }
    };

    if let Some(path) = &settings.token_cache {
        match crate::token_cache::take(path) {
            Ok(kept) => discoverer.session().tokens().import(&kept).await,
            // Unreadable: start without; the file is replaced at the end.
            Err(reason) => {
                eprintln!("mimi-discover: warning: {reason}; starting without kept tokens")
            }
        }
    }
    let code = discover_all(&args, &inputs, &discoverer).await;
    if let Some(path) = &settings.token_cache {
        let unspent = discoverer.session().tokens().export().await;
        if let Err(reason) = crate::token_cache::put_back(path, unspent) {
            eprintln!("mimi-discover: warning: {reason}; unspent tokens were not kept");
        }
    }
    code
}

async fn discover_all(
    args: &Args,
    inputs: &[String],
    discoverer: &Discoverer<RelayTransport>,
) -> u8 {
    if !matches!(
        discoverer.options().dns,
        DnsMode::Oblivious { .. } | DnsMode::Static(_)
    ) {
        eprintln!(
            "mimi-discover: note: step 1 asks DNS directly, so the resolver sees your address \
             and each name looked up (for an email address, a hash of its local part that a \
             dictionary reverses quickly). `--dns oblivious:GATEWAY-HOST` sends it through \
             the relay instead."
        );
    }
    let progress = (args.file.is_some() && inputs.len() > 1 && std::io::stderr().is_terminal())
        .then(|| {
            let bar = indicatif::ProgressBar::new(inputs.len() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
    let mut any_found = false;
    let mut any_failure = false;
    let started = Instant::now();
    let mut stream = discoverer.discover_many(inputs);
    let mut out = std::io::stdout().lock();
    // Results arrive as they complete; they are printed in input order, each
    // as soon as everything before it is printed.
    let mut pending = std::collections::BTreeMap::new();
    let mut next = 0;
    while let Some((i, result)) = stream.next().await {
        match &result {
            Ok(d) => {
                any_found |= d.accounts().next().is_some();
                any_failure |= d
                    .providers
                    .iter()
                    .any(|p| matches!(p.outcome, Outcome::Error { .. }));
            }
            Err(e) => any_failure |= is_failure(e),
        }
        if args.verbose {
            verbose(&inputs[i], &result, started);
        }
        if let Some(bar) = &progress {
            bar.inc(1);
        }
        pending.insert(i, result);
        while let Some(result) = pending.remove(&next) {
            let input = &inputs[next];
            let written = if args.json {
                writeln!(out, "{}", json_line(input, &result))
            } else {
                write_table(&mut out, input, &result)
            };
            if written.is_err() {
                // The reader went away (a closed pipe): nothing more to say.
                return if any_found { FOUND } else { NETWORK };
            }
            next += 1;
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    match (any_found, any_failure) {
        (true, _) => FOUND,
        (false, true) => NETWORK,
        (false, false) => NOTHING_FOUND,
    }
}

/// Whether an error is a failure to get an answer, rather than an answer.
fn is_failure(e: &Error) -> bool {
    !matches!(
        e,
        Error::NoMimiRecord | Error::NameNotFound | Error::OnlyInvalidRecords(_)
    )
}

async fn prepare(args: &Args) -> Result<(Settings, Vec<String>), String> {
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

fn load_pem(
    path: &std::path::Path,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("CA file {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("CA file {}: no certificate in it", path.display()));
    }
    Ok(certs)
}

fn verbose(input: &str, result: &Result<Discovery, Error>, started: Instant) {
    let at = started.elapsed().as_millis();
    match result {
        Ok(d) => {
            eprintln!(
                "[{at:>6} ms] {input}: step 1 asked {} ({} provider(s))",
                d.dns_name,
                d.providers.len()
            );
            for p in &d.providers {
                let what = match &p.outcome {
                    Outcome::Found { accounts, .. } => format!("{} account(s)", accounts.len()),
                    Outcome::NotFound => "not found".into(),
                    Outcome::Error { code, .. } => format!("error {code}"),
                };
                eprintln!(
                    "[{at:>6} ms] {input}: step 2 via relay to {}: {what} in {} ms",
                    p.host, p.elapsed_ms
                );
            }
        }
        Err(e) => eprintln!("[{at:>6} ms] {input}: {e}"),
    }
}

fn json_line(input: &str, result: &Result<Discovery, Error>) -> serde_json::Value {
    match result {
        Ok(d) => serde_json::json!({ "input": input, "ok": true, "result": d }),
        Err(e) => serde_json::json!({
            "input": input,
            "ok": false,
            "error": { "code": mimi_client::error_code(e), "message": e.to_string() },
        }),
    }
}

fn verification_word(v: &Verification) -> &'static str {
    match v {
        Verification::Verified => "verified",
        Verification::Unverified => "unverified",
        Verification::Invalid => "invalid",
    }
}

fn write_table(
    out: &mut impl Write,
    input: &str,
    result: &Result<Discovery, Error>,
) -> std::io::Result<()> {
    let d = match result {
        Ok(d) => d,
        Err(e) => return writeln!(out, "{input}: {e}\n"),
    };
    writeln!(
        out,
        "{} ({}; DNS {})",
        d.identifier,
        d.kind,
        d.dnssec.as_str()
    )?;
    if d.dnssec == mimi_client::Dnssec::Insecure {
        writeln!(
            out,
            "  note: the DNS answer is not DNSSEC-signed, so it could have been changed on the way"
        )?;
    }
    let width = d
        .providers
        .iter()
        .map(|p| p.service.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let host_width = d
        .providers
        .iter()
        .map(|p| p.host.len())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        out,
        "  {:width$}  {:host_width$}  result",
        "provider", "host"
    )?;
    let mut refused = Vec::new();
    for p in &d.providers {
        let result = match &p.outcome {
            Outcome::Found {
                accounts,
                verification,
            } => {
                let mut shown = Vec::new();
                for v in verification {
                    if !accounts.contains(&v.account) {
                        refused.push(format!(
                            "{} named {}, which is not shown ({}): {}",
                            p.service,
                            v.account,
                            verification_word(&v.verification),
                            v.reason.as_deref().unwrap_or_default()
                        ));
                    } else if let Some(authority) = &v.authority {
                        shown.push(format!("{} (verified by {authority})", v.account));
                    } else {
                        shown.push(format!("{} (unverified)", v.account));
                    }
                }
                shown.join(", ")
            }
            Outcome::NotFound => "not found".into(),
            Outcome::Error { message, .. } => format!("error: {message}"),
        };
        writeln!(
            out,
            "  {:width$}  {:host_width$}  {result}",
            p.service, p.host
        )?;
        if let Some(a) = &p.dns_account {
            writeln!(
                out,
                "  {:width$}  {:host_width$}  published in DNS (unconfirmed): {a}",
                "", ""
            )?;
        }
    }
    for w in refused.iter().chain(&d.warnings) {
        writeln!(out, "  warning: {w}")?;
    }
    writeln!(out)
}
