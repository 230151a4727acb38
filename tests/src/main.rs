//! `mimi-testbed demo` runs sample discoveries through a whole world and
//! prints what was found and who saw what; `mimi-testbed up` keeps the world
//! running for `mimi-discover`.

use anyhow::Result;
use clap::{Parser, Subcommand};
use mimi_client::Outcome;
use mimi_testbed::report;
use mimi_testbed::samples::PROVIDERS;
use mimi_testbed::samples::samples;
use mimi_testbed::world::{ACCOUNT_QUOTA, ANONYMOUS_QUOTA, QUOTA_WINDOW_SECS, Setup, World};

#[derive(Debug, Parser)]
#[command(
    name = "mimi-testbed",
    version,
    about = "A whole private-discovery world on loopback"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start everything, run sample discoveries, print results and who saw what.
    Demo {
        /// Send step 1 (DNS) through the relay too.
        #[arg(long)]
        oblivious_dns: bool,
    },
    /// Start everything and stay up until Ctrl-C.
    Up,
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Demo { oblivious_dns } => demo(oblivious_dns).await,
        Command::Up => up().await,
    }
}

/// The world `demo` and `up` run: every party honest, the first provider
/// requiring lookup tokens with the relay as its attester.
async fn world() -> Result<World> {
    World::start_with(Setup {
        tokens: true,
        ..Setup::default()
    })
    .await
}

/// The quota line: `quota: N tokens per hour per account (M per address without a credential)`.
fn quota_line() -> String {
    format!(
        "quota: {ACCOUNT_QUOTA} tokens per {} per account ({ANONYMOUS_QUOTA} per address without a credential), one token per lookup at {}",
        window_name(QUOTA_WINDOW_SECS),
        PROVIDERS[0].host
    )
}

fn window_name(secs: u64) -> String {
    match secs {
        3600 => "hour".into(),
        86_400 => "day".into(),
        s => format!("{s} s"),
    }
}

/// One account looks up identifiers at the token-requiring provider until
/// the attester's quota stops it; returns what to print.
async fn scraper(world: &World) -> Result<String> {
    let credential = world
        .credential("scraper")
        .ok_or_else(|| anyhow::anyhow!("the world has no tokens"))?;
    let client = world.client_as(
        mimi_client::DnsMode::Server {
            addr: world.dns_addr,
            tcp: false,
        },
        Some(credential),
    )?;
    let mut answered = 0u64;
    // Bounded: the quota plus a few, whatever happens.
    for _ in 0..ACCOUNT_QUOTA + 5 {
        let d = client.discover("bob.example.com").await?;
        let alpha = d
            .providers
            .iter()
            .find(|p| p.host == PROVIDERS[0].host)
            .ok_or_else(|| anyhow::anyhow!("bob is not on {}", PROVIDERS[0].host))?;
        match &alpha.outcome {
            Outcome::Error { code, message } if code == "quota_reached" => {
                return Ok(format!(
                    "Scraper (account \"scraper\", one credential)\n  {answered} lookups answered at {}, then stopped at the attester: {message}\n",
                    PROVIDERS[0].host
                ));
            }
            Outcome::Error { message, .. } => {
                anyhow::bail!("the scraper's lookup failed otherwise: {message}")
            }
            _ => answered += 1,
        }
    }
    anyhow::bail!("the scraper was never stopped ({answered} lookups answered)")
}

async fn demo(oblivious_dns: bool) -> Result<()> {
    let world = world().await?;
    println!(
        "client 127.0.0.2 -> relay {} -> gateways {}",
        world.relay_addr,
        world
            .providers
            .iter()
            .map(|p| format!("{} ({})", p.host, p.addr))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "DNS {} ({})\n",
        world.dns_addr,
        if oblivious_dns {
            "asked obliviously, through the relay"
        } else {
            "asked directly"
        }
    );
    let client = world.client(oblivious_dns)?;
    let mut rows = Vec::new();
    for sample in samples() {
        let result = client.discover(sample.input).await;
        rows.push((sample, result));
    }
    println!("{}", report::results(&rows));
    println!("{}", quota_line());
    println!("{}", scraper(&world).await?);
    let answers: Vec<(String, u64)> = world
        .providers
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.gateway.metrics().get(mimi_gateway::outcome::Outcome::Ok),
            )
        })
        .collect();
    println!(
        "Who saw what\n{}",
        report::who_saw_what(&world.recorder, &answers)
    );
    let live_keys: Vec<(String, String, Vec<u8>)> = world
        .providers
        .iter()
        .map(|p| {
            let ids = p.gateway.keys().ring().ids().to_vec();
            (p.name.clone(), p.host.clone(), ids)
        })
        .collect();
    println!(
        "Keys checked before use\n{}",
        report::keys_checked(&world.recorder, &live_keys)
    );
    world.shutdown().await;
    Ok(())
}

async fn up() -> Result<()> {
    let world = world().await?;
    println!("relay:    https://{}", world.relay_addr);
    for p in &world.providers {
        println!("gateway:  {} at https://{}", p.host, p.addr);
    }
    println!("DNS:      {} (UDP and TCP)", world.dns_addr);
    println!("CA:       {}", world.ca_file.display());
    let credential = world
        .tokens
        .as_ref()
        .map(|t| t.credential_file.clone())
        .ok_or_else(|| anyhow::anyhow!("the world has no tokens"))?;
    println!("credential: {}", credential.display());
    println!("{}", quota_line());
    println!("\nTry:\n  {}", world.command_line());
    println!(
        "Or, with DNS through the relay too:\n  {}",
        world.command_line().replace(
            &format!("--dns udp:{}", world.dns_addr),
            &format!("--dns oblivious:{}", world.providers[0].host)
        )
    );
    // The same as a configuration file for mimi-discover.
    let config = world.dir.path().join("mimi-discover.toml");
    let text = format!(
        "relay = \"https://{}\"\nca_file = \"{}\"\ntrust_anchor = \"{}\"\nauthority_keys = \"{}\"\ndns = \"udp:{}\"\ncredential = \"{}\"\n",
        world.relay_addr,
        world.ca_file.display(),
        world.trust_anchor.display(),
        world.authority_keys.display(),
        world.dns_addr,
        credential.display()
    );
    std::fs::write(&config, &text)?;
    println!(
        "Or with a config file ({}):\n{text}  mimi-discover --config {} bob.example.com",
        config.display(),
        config.display()
    );
    println!("\nCtrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    world.shutdown().await;
    Ok(())
}
