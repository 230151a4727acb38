//! `mimi-testbed demo` runs sample discoveries through a whole world and
//! prints what was found and who saw what; `mimi-testbed up` keeps the world
//! running for `mimi-discover`.

use anyhow::Result;
use clap::{Parser, Subcommand};
use mimi_testbed::report;
use mimi_testbed::samples::samples;
use mimi_testbed::world::World;

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

async fn demo(oblivious_dns: bool) -> Result<()> {
    let world = World::start().await?;
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
    let answers: Vec<(String, u64)> = world
        .providers
        .iter()
        .map(|p| (p.name.clone(), p.gateway.metrics().get("ok")))
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
    let world = World::start().await?;
    println!("relay:    https://{}", world.relay_addr);
    for p in &world.providers {
        println!("gateway:  {} at https://{}", p.host, p.addr);
    }
    println!("DNS:      {} (UDP and TCP)", world.dns_addr);
    println!("CA:       {}", world.ca_file.display());
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
        "relay = \"https://{}\"\nca_file = \"{}\"\ntrust_anchor = \"{}\"\ndns = \"udp:{}\"\n",
        world.relay_addr,
        world.ca_file.display(),
        world.trust_anchor.display(),
        world.dns_addr
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
