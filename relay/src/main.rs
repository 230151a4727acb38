//! The `mimi-relay` command: parse the configuration, bind, serve until a signal.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use mimi_relay::config::{GatewayEntry, TlsFiles};
use mimi_relay::{Config, http};
use mimi_server_core::process;

/// The oblivious relay for private MIMI discovery.
#[derive(Debug, Parser)]
#[command(name = "mimi-relay", version)]
struct Cli {
    /// Configuration file (TOML); flags override it.
    #[arg(long, short, env = "MIMI_RELAY_CONFIG")]
    config: Option<PathBuf>,
    /// Listen address.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Admin listen address (/metrics, /healthz).
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// TLS certificate chain (PEM).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP (only behind a TLS-terminating proxy).
    #[arg(long)]
    plain_http: bool,
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
    if let Some(v) = cli.listen {
        config.listen = v;
    }
    if let Some(v) = cli.admin_listen {
        config.admin_listen = Some(v);
    }
    if let (Some(cert), Some(key)) = (cli.tls_cert, cli.tls_key) {
        config.tls = Some(TlsFiles { cert, key });
        config.plain_http = false;
    }
    if cli.plain_http {
        config.plain_http = true;
        config.tls = None;
    }
    if let Some(ca) = cli.gateway_ca_file {
        config.gateway_ca_file = Some(ca);
    }
    for g in cli.gateways {
        let (host, url) = match g.split_once('=') {
            Some((h, u)) => (h.to_owned(), Some(u.to_owned())),
            None => (g, None),
        };
        config.gateway.push(GatewayEntry { host, url });
    }
    if let Some(RelayCommand::Check) = cli.command {
        return mimi_relay::check::check(&config)
            .print("relay")
            .map_err(anyhow::Error::msg);
    }
    // Before the connection cap is fitted under it.
    mimi_server_core::limits::raise_open_files()?;
    let (relay, tls) = mimi_relay::assemble(&config)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listeners = process::bind(
            "mimi-relay",
            config.listen,
            config.admin_listen,
            tls.is_some(),
        )
        .await?;
        tracing::info!(gateways = config.gateway.len(), "relay started");
        let stop = tokio_util::sync::CancellationToken::new();
        let admin_task = listeners.admin.map(|admin| {
            tokio::spawn(http::run_admin(
                admin,
                relay.clone(),
                stop.clone().cancelled_owned(),
            ))
        });
        let main = tokio::spawn(http::run(
            listeners.main,
            tls,
            relay,
            stop.clone().cancelled_owned(),
        ));
        process::terminated().await;
        tracing::info!("shutting down");
        stop.cancel();
        let _ = main.await;
        if let Some(t) = admin_task {
            let _ = t.await;
        }
        Ok(())
    })
}
