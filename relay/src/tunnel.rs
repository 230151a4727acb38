//! `CONNECT <host>:<port>` (DESIGN §4.1, §6): a byte tunnel to an allowlisted
//! gateway, so that a client can fetch the gateway's keys over TLS to the
//! gateway itself while the gateway sees only the relay.
//!
//! The tunnel goes to the address configured for that host and nowhere else;
//! it is bounded in tunnels per client (IPv6 by /64), tunnels in all, lifetime
//! and bytes each way. The relay sees only TLS records: it cannot choose the
//! key list the client reads. Nothing about a tunnel is logged.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::Error;
use crate::targets::Target;
use mimi_server_core::per_key::{PerKey, Place, client_key};

/// Bounds on tunnels.
#[derive(Debug, Clone, Copy)]
pub struct TunnelLimits {
    /// Tunnels one client (IPv6: one /64) may hold open at once.
    pub per_client: u32,
    /// Tunnels open at once, in all.
    pub total: usize,
    /// How long a tunnel may stay open.
    pub lifetime: Duration,
    /// Bytes carried each way, at most.
    pub max_bytes: u64,
    /// How long connecting to the gateway may take.
    pub connect_timeout: Duration,
}

impl Default for TunnelLimits {
    fn default() -> Self {
        Self {
            per_client: 8,
            total: 1024,
            lifetime: Duration::from_secs(30),
            // A TLS handshake and one key list, with room to spare.
            max_bytes: 64 * 1024,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// The open tunnels, by client.
#[derive(Debug)]
pub struct Tunnels {
    limits: TunnelLimits,
    total: Arc<Semaphore>,
    per_client: PerKey<IpAddr>,
}

/// A tunnel's place in the limits; released when dropped.
#[derive(Debug)]
pub struct Admission {
    _client: Place<IpAddr>,
    _permit: OwnedSemaphorePermit,
}

impl Tunnels {
    /// No tunnels yet.
    pub fn new(limits: TunnelLimits) -> Self {
        Self {
            total: Arc::new(Semaphore::new(limits.total.max(1))),
            per_client: PerKey::new(limits.per_client),
            limits,
        }
    }

    /// The limits.
    pub fn limits(&self) -> TunnelLimits {
        self.limits
    }

    /// A place for one more tunnel from `client`, or `TunnelLimit`.
    pub fn admit(&self, client: IpAddr) -> Result<Admission, Error> {
        let permit = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::TunnelLimit)?;
        let place = self
            .per_client
            .take(client_key(client))
            .ok_or(Error::TunnelLimit)?;
        Ok(Admission {
            _client: place,
            _permit: permit,
        })
    }

    /// Connects to `target`'s configured address (leaving from `bind`).
    pub async fn connect(&self, target: &Target, bind: Option<IpAddr>) -> Result<TcpStream, Error> {
        let work = async {
            let addrs =
                tokio::net::lookup_host((target.connect_host.as_str(), target.connect_port))
                    .await
                    .map_err(|_| Error::GatewayUnreachable)?;
            for addr in addrs {
                let socket = if addr.is_ipv4() {
                    TcpSocket::new_v4()
                } else {
                    TcpSocket::new_v6()
                }
                .map_err(|_| Error::GatewayUnreachable)?;
                if let Some(ip) = bind.filter(|ip| ip.is_ipv4() == addr.is_ipv4()) {
                    socket
                        .bind((ip, 0).into())
                        .map_err(|_| Error::GatewayUnreachable)?;
                }
                if let Ok(stream) = socket.connect(addr).await {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
            }
            Err(Error::GatewayUnreachable)
        };
        tokio::time::timeout(self.limits.connect_timeout, work)
            .await
            .map_err(|_| Error::GatewayTimeout)?
    }

    /// Carries bytes between the client's upgraded connection and the
    /// gateway until either side closes, a byte limit is reached, or the
    /// lifetime ends. Runs as its own task.
    pub fn splice(&self, on_upgrade: OnUpgrade, upstream: TcpStream, admission: Admission) {
        let limits = self.limits;
        tokio::spawn(async move {
            let _admission = admission;
            let work = async move {
                let Ok(upgraded) = on_upgrade.await else {
                    return;
                };
                let client = TokioIo::new(upgraded);
                let (client_read, client_write) = tokio::io::split(client);
                let (up_read, up_write) = upstream.into_split();
                tokio::join!(
                    pipe(client_read, up_write, limits.max_bytes),
                    pipe(up_read, client_write, limits.max_bytes),
                );
            };
            // At the lifetime's end both halves are dropped: the tunnel closes.
            let _ = tokio::time::timeout(limits.lifetime, work).await;
        });
    }
}

/// Copies at most `max` bytes from `from` to `to`, then closes `to`.
async fn pipe(from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin, max: u64) {
    let mut limited = from.take(max);
    let _ = tokio::io::copy(&mut limited, &mut to).await;
    let _ = to.shutdown().await;
}
