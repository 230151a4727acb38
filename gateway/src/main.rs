//! The `mimi-gateway` command: serve, and the operator's key and directory tools.

use mimi_server_core::config_file::TomlFile as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::bail;
use base64::Engine;
use clap::{Args, Parser, Subcommand};
use mimi_gateway::config::KeySourceKind;
use mimi_gateway::directory::{self, Directory, Entry, EntryFormat};
use mimi_gateway::keys::{KeyFile, KeyRing};
use mimi_gateway::seeded_keys::SeedFile;
use mimi_gateway::{Config, authority, http};
use mimi_server_core::config_file::ListenerFlags;
use mimi_server_core::process;

/// The provider's OHTTP gateway for private MIMI discovery.
#[derive(Debug, Parser)]
#[command(name = "mimi-gateway", version)]
struct Cli {
    /// Configuration file (TOML); flags override it.
    #[arg(long, short, global = true, env = "MIMI_GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    /// Key file (overrides `key_file`).
    #[arg(long, global = true)]
    key_file: Option<PathBuf>,
    /// Directory database (overrides `directory.database`).
    #[arg(long, global = true)]
    database: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the gateway (the default).
    Serve(ServeFlags),
    /// Show or rotate the gateway's keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage the embedded directory.
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Show or rotate the issuer's token keys (`[tokens]`).
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Check the configuration, key file, database, TLS files and upstream
    /// without starting; exit 1 with every problem listed.
    Check(ServeFlags),
}

#[derive(Debug, Default, Args)]
struct ServeFlags {
    #[command(flatten)]
    listener: ListenerFlags,
    /// The host published in DNS as e=.
    #[arg(long)]
    public_host: Option<String>,
    /// Forward identifierQuery to this discovery API instead of the embedded directory.
    #[arg(long)]
    upstream: Option<String>,
    /// DNS resolver for oblivious DNS.
    #[arg(long)]
    dns_resolver: Option<SocketAddr>,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Print the served key-config list (hex and base64) and each key's schedule.
    Show,
    /// Add a new key; replaced keys stay accepted for the grace period.
    /// A running gateway picks the change up within a second.
    Rotate,
    /// With `[keys] source = "seed"`: add a fresh seed for the first period
    /// whose key is published at least `--lead-secs` from now, and drop seeds
    /// no accepted key uses. Copy the file to every replica within the lead.
    RollSeed {
        /// How long every replica has to receive the new seed file.
        #[arg(long, default_value_t = 3600)]
        lead_secs: u64,
    },
}

#[derive(Debug, Subcommand)]
enum TokensCommand {
    /// Print the issuer directory served now and each token key's schedule
    /// (creating the key file, mode 0600, if there is none).
    Show,
    /// Add a token key, published `tokens.publish_ahead_secs` ahead of use;
    /// the keys it replaces verify for `tokens.grace_secs` after. Copy the
    /// file to every replica within the publish-ahead time.
    Rotate,
}

#[derive(Debug, Subcommand)]
enum DirectoryCommand {
    /// Add (or update) an entry.
    Add {
        /// The identifier: handle, email address or +number.
        identifier: String,
        /// The account: mimi://<domain>/u/<account>.
        account: String,
        /// Store it, but do not let searches find it.
        #[arg(long)]
        hidden: bool,
        /// The mapping signed by a mapping authority (base64url), served
        /// with the account.
        #[arg(long)]
        assertion: Option<String>,
    },
    /// Remove an identifier's entries (or only one account's).
    Remove {
        /// The identifier.
        identifier: String,
        /// Only this account.
        account: Option<String>,
    },
    /// List every entry.
    List {
        /// As JSON (the import format).
        #[arg(long)]
        json: bool,
    },
    /// Write every entry, in a form `import` reads back.
    Export {
        /// Where to write (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// The format (default: from the output's extension, else CSV).
        #[arg(long, value_enum)]
        format: Option<EntryFormat>,
    },
    /// Import entries from a file, all or nothing.
    Import {
        /// CSV (identifier,account[,searchable[,assertion]]) or JSON array.
        file: PathBuf,
        /// The file's format (default: from its extension).
        #[arg(long, value_enum)]
        format: Option<EntryFormat>,
        /// A provider that is its own mapping authority: sign the entries
        /// with this authority key file (`mimi-authority new-key`), naming
        /// `public_host` as the provider. Entries another authority signed
        /// are imported as they are.
        #[arg(long)]
        sign_with: Option<PathBuf>,
        /// How long the assertions signed at import are valid, in days.
        #[arg(long, default_value_t = 30)]
        lifetime_days: u64,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(k) = &cli.key_file {
        config.key_file = k.clone();
    }
    if let Some(d) = &cli.database {
        config.directory.database = d.clone();
    }
    match cli.command {
        None => serve(config, ServeFlags::default()),
        Some(Command::Serve(flags)) => serve(config, flags),
        Some(Command::Check(flags)) => check(apply(config, flags).0),
        Some(Command::Keys(cmd)) => keys(&config, cmd),
        Some(Command::Directory(cmd)) => directory(&config, cmd),
        Some(Command::Tokens(cmd)) => tokens(&config, cmd),
    }
}

/// The configuration with the flags applied, and whether to log as JSON.
fn apply(mut config: Config, flags: ServeFlags) -> (Config, bool) {
    flags.listener.apply(
        &mut config.listen,
        &mut config.admin_listen,
        &mut config.tls,
        &mut config.plain_http,
    );
    if let Some(v) = flags.public_host {
        config.public_host = v;
    }
    if let Some(url) = flags.upstream {
        config.upstream = Some(mimi_gateway::config::UpstreamSection {
            url,
            timeout_ms: 5_000,
            ca_file: None,
        });
    }
    if let Some(resolver) = flags.dns_resolver {
        config.dns = Some(mimi_gateway::config::DnsSection {
            resolver,
            timeout_ms: 2_000,
            bind: None,
        });
    }
    (config, flags.log_json)
}

fn check(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime
        .block_on(mimi_gateway::check::check(&config))
        .print("gateway")
        .map_err(anyhow::Error::msg)
}

fn serve(config: Config, flags: ServeFlags) -> anyhow::Result<()> {
    let (config, log_json) = apply(config, flags);
    process::init_logging(log_json);
    // Before the connection cap is fitted under it.
    mimi_server_core::limits::raise_open_files()?;
    // The pools (PostgreSQL, Redis) belong to the runtime that serves.
    process::runtime()?.block_on(async move {
        let mimi_gateway::Assembled {
            gateway,
            tls,
            options,
        } = mimi_gateway::assemble(&config).await?;
        let admin_gateway = gateway.clone();
        process::serve_listeners(
            "gateway",
            config.listen,
            config.admin_listen,
            tls.is_some(),
            move |listener, stop| http::run(listener, tls, gateway, options, stop),
            move |listener, stop| http::run_admin(listener, admin_gateway, stop),
        )
        .await?;
        Ok(())
    })
}

fn tokens(config: &Config, cmd: TokensCommand) -> anyhow::Result<()> {
    use mimi_gateway::tokens::keys::{TokenKeyFile, TokenRing};
    let now = SystemTime::now();
    let path = &config.tokens.key_file;
    let mut file = TokenKeyFile::load_or_create(path, now)?;
    if let TokensCommand::Rotate = cmd {
        let ahead = Duration::from_secs(config.tokens.publish_ahead_secs);
        file.rotate(now, ahead, Duration::from_secs(config.tokens.grace_secs))?;
        file.save(path)?;
        println!(
            "added a token key, used from {} s from now; replaced keys verify for {} s after that. Copy {} to every replica before then.",
            ahead.as_secs(),
            config.tokens.grace_secs,
            path.display()
        );
    }
    let ring = TokenRing::build_for(&file, &config.public_host, now)?;
    for (i, k) in file.keys.iter().enumerate() {
        println!(
            "  token key {i}: not_before {} expires {}",
            k.not_before,
            k.expires.map_or("never".to_string(), |e| e.to_string())
        );
    }
    println!(
        "{}: {}",
        mimi_proto::privacypass::ISSUER_DIRECTORY_PATH,
        String::from_utf8_lossy(ring.directory())
    );
    Ok(())
}

fn keys(config: &Config, cmd: KeysCommand) -> anyhow::Result<()> {
    let now = SystemTime::now();
    let file = match (&config.keys.source, &config.keys.seed_file) {
        (KeySourceKind::Seed, Some(path)) => {
            let mut seeds = SeedFile::load_or_create(path)?;
            match cmd {
                KeysCommand::Rotate => bail!(
                    "keys come from the seed file {}: use `keys roll-seed`",
                    path.display()
                ),
                KeysCommand::RollSeed { lead_secs } => {
                    let from =
                        seeds.roll(now, config.schedule(), Duration::from_secs(lead_secs))?;
                    seeds.save(path)?;
                    println!(
                        "added a seed for keys from {from} (Unix time); copy {} to every replica before {}",
                        path.display(),
                        from.saturating_sub(config.keys.publish_ahead_secs)
                    );
                }
                KeysCommand::Show => {}
            }
            seeds.keys_at(now, config.schedule())
        }
        _ => {
            let mut file = KeyFile::load_or_create(&config.key_file, now)?;
            match cmd {
                KeysCommand::Rotate => {
                    let id = file.rotate(now, config.rotation())?;
                    file.save(&config.key_file)?;
                    println!(
                        "added key {id}; replaced keys are accepted for {} s more",
                        config.keys.grace_secs
                    );
                }
                KeysCommand::RollSeed { .. } => {
                    bail!("keys come from the key file: set [keys] source = \"seed\" to use a seed")
                }
                KeysCommand::Show => {}
            }
            file
        }
    };
    let ring = KeyRing::build(&file, now)?;
    let list = ring.encoded_list();
    println!("key ids served (first is current): {:?}", ring.ids());
    for k in &file.keys {
        println!(
            "  key {:3}: not_before {} expires {}",
            k.id,
            k.not_before,
            k.expires.map_or("never".to_string(), |e| e.to_string())
        );
    }
    println!("application/ohttp-keys (hex):    {}", hex::encode(list));
    println!(
        "application/ohttp-keys (base64): {}",
        base64::engine::general_purpose::STANDARD.encode(list)
    );
    Ok(())
}

fn directory(config: &Config, cmd: DirectoryCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(directory_command(config, cmd))
}

/// The directory commands, against whichever store `[directory]` names.
async fn directory_command(config: &Config, cmd: DirectoryCommand) -> anyhow::Result<()> {
    let dir = Directory::connect(&config.directory).await?;
    match cmd {
        DirectoryCommand::Add {
            identifier,
            account,
            hidden,
            assertion,
        } => {
            dir.add(&Entry {
                identifier,
                account,
                searchable: !hidden,
                assertion,
            })
            .await?;
            println!("added");
        }
        DirectoryCommand::Remove {
            identifier,
            account,
        } => {
            let n = dir.remove(&identifier, account.as_deref()).await?;
            if n == 0 {
                bail!("no such entry");
            }
            println!("removed {n}");
        }
        DirectoryCommand::List { json } => {
            let entries = dir.list().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                for e in entries {
                    let flag = if e.searchable { "" } else { "  (hidden)" };
                    println!("{}\t{}{flag}", e.identifier, e.account);
                }
            }
        }
        DirectoryCommand::Export { output, format } => {
            let format = format
                .or(output.as_deref().and_then(EntryFormat::of_path))
                .unwrap_or(EntryFormat::Csv);
            let entries = dir.list().await?;
            directory::write_entries(&entries, format, output.as_deref())?;
            if let Some(path) = output {
                eprintln!("exported {} entries to {}", entries.len(), path.display());
            }
        }
        DirectoryCommand::Import {
            file,
            format,
            sign_with,
            lifetime_days,
        } => {
            let Some(format) = format.or(EntryFormat::of_path(&file)) else {
                bail!(
                    "cannot tell the format of {}: pass --format csv|json",
                    file.display()
                );
            };
            let mut entries = directory::read_entries(&file, format)?;
            if let Some(key) = sign_with {
                let signer = authority::load_key(&key)?;
                let policy = authority::SignPolicy {
                    provider: config.public_host.clone(),
                    lifetime_secs: lifetime_days.saturating_mul(86_400),
                    renew_within_secs: lifetime_days.saturating_mul(86_400) / 4,
                };
                if policy.provider.is_empty() {
                    bail!("--sign-with needs public_host (the provider the mappings name)");
                }
                let r = authority::sign_entries(&mut entries, &signer, &policy, SystemTime::now())?;
                eprintln!("{} ({r})", signer.name());
            }
            let n = dir.import(&entries).await?;
            println!("imported {n} entries");
        }
    }
    Ok(())
}
