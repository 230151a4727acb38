//! The `mimi-relay` command: parse the configuration, bind, serve until a signal.

use mimi_server_core::config_file::TomlFile as _;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use mimi_relay::config::GatewayEntry;
use mimi_relay::{Config, http};
use mimi_server_core::config_file::ListenerFlags;
use mimi_server_core::process;

/// The oblivious relay for private MIMI discovery.
#[derive(Debug, Parser)]
#[command(name = "mimi-relay", version)]
struct Cli {
    /// Configuration file (TOML); flags override it.
    #[arg(long, short, env = "MIMI_RELAY_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    listener: ListenerFlags,
    /// Allow a gateway: HOST, or HOST=URL to reach it at an explicit URL. Repeatable.
    #[arg(long = "gateway", value_name = "HOST[=URL]")]
    gateways: Vec<String>,
    /// Extra trust anchors for gateways (PEM).
    #[arg(long)]
    gateway_ca_file: Option<PathBuf>,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
    #[command(subcommand)]
    command: Option<RelayCommand>,
}

#[derive(Debug, Subcommand)]
enum RelayCommand {
    /// Check the configuration, TLS files, gateway CA file and allowlist
    /// without starting; exit 1 with every problem listed.
    Check,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    process::init_logging(cli.log_json);
    let mut config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    cli.listener.apply(
        &mut config.listen,
        &mut config.admin_listen,
        &mut config.tls,
        &mut config.plain_http,
    );
    if let Some(ca) = cli.gateway_ca_file {
        config.gateway_ca_file = Some(ca);
    }
    for g in cli.gateways {
        let (host, url) = match g.split_once('=') {
            Some((h, u)) => (h.to_owned(), Some(u.to_owned())),
            None => (g, None),
        };
        config.gateway.push(GatewayEntry {
            host,
            url,
            issuer: false,
        });
    }
    if let Some(RelayCommand::Check) = cli.command {
        return mimi_relay::check::check(&config)
            .print("relay")
            .map_err(anyhow::Error::msg);
    }
    // Before the connection cap is fitted under it.
    mimi_server_core::limits::raise_open_files()?;
    let (relay, tls) = mimi_relay::assemble(&config)?;

    let admin_relay = relay.clone();
    let plain = tls.is_none();
    process::runtime()?.block_on(process::serve_listeners(
        "relay",
        config.listen,
        config.admin_listen,
        !plain,
        move |listener, stop| http::run(listener, tls, relay, stop),
        move |listener, stop| http::run_admin(listener, admin_relay, stop),
    ))?;
    Ok(())
}
