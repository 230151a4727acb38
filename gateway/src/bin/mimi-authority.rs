//! `mimi-authority`: a mapping authority's tools (DESIGN §11). A binary of
//! its own, beside `mimi-gateway`, because an authority need not run a
//! gateway: a domain's owner or a phone-number authority signs mappings and
//! hands them to the providers (and any distribution point) that serve them.
//! A provider that is its own authority can also sign at import, with
//! `mimi-gateway directory import --sign-with`.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::bail;
use clap::{Parser, Subcommand};
use mimi_gateway::authority::{self, SignPolicy};
use mimi_gateway::directory::{self, EntryFormat, assertion_text};
use mimi_proto::mapping::Mapping;
use mimi_proto::record::Endpoint;
use mimi_proto::{Identifier, MimiUri};

/// A mapping authority's tools: keys, the DNS record that publishes them,
/// and signed mappings.
#[derive(Debug, Parser)]
#[command(name = "mimi-authority", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an authority key file (mode 0600); an existing file is never
    /// replaced. For a rotation, create a second file and publish both.
    NewKey {
        /// The authority's name, carried in every assertion (`iss`) and in the
        /// record (`n=`): 1 to 64 of a-z, 0-9, '.', '-'.
        #[arg(long)]
        name: String,
        /// Where to write the key.
        key: PathBuf,
    },
    /// Print the TXT record that publishes the key (`v=MIMIA1; n=…; k=…`);
    /// with `--domain`, as a zone-file line at `_mimi-authority.<domain>`.
    /// The zone must be DNSSEC-signed: clients ignore keys from an unsigned
    /// answer.
    Record {
        /// The authority key file.
        key: PathBuf,
        /// The domain whose handles and email addresses the key vouches for.
        #[arg(long)]
        domain: Option<String>,
    },
    /// Sign one mapping; prints the assertion (base64url), which
    /// `mimi-gateway directory add --assertion` takes.
    Sign {
        /// The authority key file.
        key: PathBuf,
        /// The identifier (handle, email address or +number).
        #[arg(long)]
        identifier: String,
        /// The account: `mimi://<domain>/u/<account>`.
        #[arg(long)]
        account: String,
        /// The provider's discovery host, as published in DNS as e=.
        #[arg(long)]
        provider: String,
        /// How long the assertion is valid, in days.
        #[arg(long, default_value_t = 30)]
        lifetime_days: u64,
    },
    /// Sign a directory export in bulk (the CSV or JSON that
    /// `mimi-gateway directory export` writes and `import` reads): entries
    /// without an assertion, or with one of this authority that expires
    /// within `--renew-within-days`, are signed; other authorities'
    /// assertions are left as they are. Run it before expiry (daily, say),
    /// then import the output.
    SignEntries {
        /// The authority key file.
        key: PathBuf,
        /// The directory export to read.
        input: PathBuf,
        /// Where to write the signed entries (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// The provider's discovery host the mappings name (e=).
        #[arg(long)]
        provider: String,
        /// How long new assertions are valid, in days.
        #[arg(long, default_value_t = 30)]
        lifetime_days: u64,
        /// Re-sign assertions of this authority that expire within this
        /// many days.
        #[arg(long, default_value_t = 7)]
        renew_within_days: u64,
        /// The input's and output's format (default: from the input's
        /// extension, else CSV).
        #[arg(long, value_enum)]
        format: Option<EntryFormat>,
    },
}

const DAY: u64 = 86_400;

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::NewKey { name, key } => {
            let signer = authority::create_key(&key, &name, SystemTime::now())?;
            eprintln!("created {} for authority {}", key.display(), signer.name());
            println!("{}", signer.public_key());
        }
        Command::Record { key, domain } => {
            let public = authority::load_key(&key)?.public_key();
            match domain {
                Some(d) => {
                    let d = mimi_proto::domain::normalise_domain(&d)
                        .map_err(|e| anyhow::anyhow!("--domain: {e}"))?;
                    println!("_mimi-authority.{d}. IN TXT \"{public}\"");
                }
                None => println!("{public}"),
            }
        }
        Command::Sign {
            key,
            identifier,
            account,
            provider,
            lifetime_days,
        } => {
            let signer = authority::load_key(&key)?;
            let mapping = Mapping {
                identifier: Identifier::parse(&identifier)
                    .map_err(|e| anyhow::anyhow!("--identifier: {e}"))?
                    .to_string(),
                account: MimiUri::parse(&account)
                    .map_err(|e| anyhow::anyhow!("--account: {e}"))?
                    .to_string(),
                provider: provider_host(&provider)?,
            };
            let now = unix_now();
            let bytes = signer
                .sign(&mapping, now, now.saturating_add(lifetime_days * DAY))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", assertion_text(&bytes));
        }
        Command::SignEntries {
            key,
            input,
            output,
            provider,
            lifetime_days,
            renew_within_days,
            format,
        } => {
            let signer = authority::load_key(&key)?;
            let format = format
                .or(EntryFormat::of_path(&input))
                .unwrap_or(EntryFormat::Csv);
            let mut entries = directory::read_entries(&input, format)?;
            let policy = SignPolicy {
                provider: provider_host(&provider)?,
                lifetime_secs: lifetime_days.saturating_mul(DAY),
                renew_within_secs: renew_within_days.saturating_mul(DAY),
            };
            if policy.renew_within_secs >= policy.lifetime_secs {
                bail!("--renew-within-days must be shorter than --lifetime-days");
            }
            let report =
                authority::sign_entries(&mut entries, &signer, &policy, SystemTime::now())?;
            directory::write_entries(&entries, format, output.as_deref())?;
            eprintln!("{} ({report})", signer.name());
        }
    }
    Ok(())
}

fn provider_host(s: &str) -> anyhow::Result<String> {
    match Endpoint::parse(s) {
        Some(e) => Ok(e.to_string()),
        None => bail!("--provider: not a host name with an optional port: {s:?}"),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
