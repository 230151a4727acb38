//! The `mimi-relay` command: parse the configuration, bind, serve until a signal.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mimi_relay::config::{GatewayEntry, TlsFiles};
use mimi_relay::{Config, http};
use tokio::net::TcpListener;

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
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
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
        let report = mimi_relay::check::check(&config);
        for line in &report.ok {
            println!("ok       {line}");
        }
        for line in &report.problems {
            println!("PROBLEM  {line}");
        }
        if report.problems.is_empty() {
            println!("the relay can start");
            return Ok(());
        }
        anyhow::bail!(
            "{} problem(s); the relay would not start",
            report.problems.len()
        );
    }
    let (relay, tls) = mimi_relay::assemble(&config)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let admin = match config.admin_listen {
            Some(a) => Some(
                TcpListener::bind(a)
                    .await
                    .with_context(|| format!("binding {a}"))?,
            ),
            None => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let addr = listener.local_addr()?;
        // One line per listener on stdout, so scripts and tests can read the
        // bound addresses (port 0 picks a free one).
        let mut out = std::io::stdout().lock();
        writeln!(out, "mimi-relay listening on {scheme}://{addr}")?;
        if let Some(admin) = &admin {
            writeln!(
                out,
                "mimi-relay admin listening on http://{}",
                admin.local_addr()?
            )?;
        }
        drop(out);
        tracing::info!(%addr, scheme, gateways = config.gateway.len(), "relay started");

        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let admin_task = admin.map(|admin| {
            let mut rx = stop_rx.clone();
            tokio::spawn(http::run_admin(admin, relay.clone(), async move {
                let _ = rx.wait_for(|s| *s).await;
            }))
        });
        let mut rx = stop_rx;
        let main = tokio::spawn(http::run(listener, tls, relay, async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
        let _ = main.await;
        if let Some(t) = admin_task {
            let _ = t.await;
        }
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = ctrl_c.await;
            return;
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
