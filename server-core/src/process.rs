//! What a server binary does around `run`: logging, binding and announcing
//! its listeners, and waiting for a signal to stop.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::error::{Error, Result};

/// Installs the log subscriber on standard error: `RUST_LOG` (default
/// `info`), as JSON lines when `json`.
///
/// rustls is held to errors unless `RUST_LOG` names it: it warns about what
/// a client sends (an IP address as SNI, say), which would let any client
/// write a log line per connection.
pub fn init_logging(json: bool) {
    let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let mut filter = EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("info"));
    if !spec.contains("rustls") {
        if let Ok(quiet) = "rustls=error".parse() {
            filter = filter.add_directive(quiet);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// A server's bound listeners.
#[derive(Debug)]
pub struct Listeners {
    /// The main listener.
    pub main: TcpListener,
    /// The admin listener, if one is configured.
    pub admin: Option<TcpListener>,
}

/// Binds `listen` (and `admin`), then prints one line per listener on
/// standard output, `<name> listening on <scheme>://<addr>` and
/// `<name> admin listening on http://<addr>`, so that scripts and tests read
/// the bound addresses (port 0 picks a free one).
pub async fn bind(
    name: &str,
    listen: SocketAddr,
    admin: Option<SocketAddr>,
    tls: bool,
) -> Result<Listeners> {
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr).await.map_err(|source| Error::Io {
            context: format!("binding {addr}"),
            source,
        })
    };
    let main = bind(listen).await?;
    let admin = match admin {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    let io = |source| Error::Io {
        context: "announcing the listeners".into(),
        source,
    };
    let scheme = if tls { "https" } else { "http" };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{name} listening on {scheme}://{}",
        main.local_addr().map_err(io)?
    )
    .map_err(io)?;
    if let Some(admin) = &admin {
        writeln!(
            out,
            "{name} admin listening on http://{}",
            admin.local_addr().map_err(io)?
        )
        .map_err(io)?;
    }
    out.flush().map_err(io)?;
    Ok(Listeners { main, admin })
}

/// The multi-threaded runtime a server binary runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            context: "starting the runtime".into(),
            source,
        })
}

/// Binds and announces (see [`bind`]) the listeners, and serves the main
/// listener with `main` and the admin listener (if configured) with `admin`
/// until SIGINT or SIGTERM. A binary runs it on [`runtime`], after any
/// set-up that needs the runtime (connection pools) and before it binds.
pub async fn serve_listeners<M, MF, A, AF>(
    name: &str,
    listen: SocketAddr,
    admin_listen: Option<SocketAddr>,
    tls: bool,
    main: M,
    admin: A,
) -> Result<()>
where
    M: FnOnce(TcpListener, Stop) -> MF,
    MF: Future<Output = ()> + Send + 'static,
    A: FnOnce(TcpListener, Stop) -> AF,
    AF: Future<Output = ()> + Send + 'static,
{
    let listeners = bind(&format!("mimi-{name}"), listen, admin_listen, tls).await?;
    let admin = listeners.admin.map(|l| move |stop| admin(l, stop));
    run_until_terminated(name, move |stop| main(listeners.main, stop), admin).await;
    Ok(())
}

/// What a server task is given to know when to stop.
pub type Stop = tokio_util::sync::WaitForCancellationFutureOwned;

/// Runs the main listener's task (and the admin listener's) until SIGINT or
/// SIGTERM, then stops both and waits for them (each drains within its own
/// grace period).
pub async fn run_until_terminated<M, A>(
    name: &str,
    main: impl FnOnce(Stop) -> M,
    admin: Option<impl FnOnce(Stop) -> A>,
) where
    M: Future<Output = ()> + Send + 'static,
    A: Future<Output = ()> + Send + 'static,
{
    let stop = tokio_util::sync::CancellationToken::new();
    let admin = admin.map(|serve| tokio::spawn(serve(stop.clone().cancelled_owned())));
    let main = tokio::spawn(main(stop.clone().cancelled_owned()));
    tracing::info!("{name} started");
    terminated().await;
    tracing::info!("{name} shutting down");
    stop.cancel();
    let _ = main.await;
    if let Some(admin) = admin {
        let _ = admin.await;
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn terminated() {
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
