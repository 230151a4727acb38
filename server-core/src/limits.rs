//! The `[connections]` section both servers share, every number with its
//! documented range, checked before anything binds; and the process's
//! open-file limit, which the connection cap must fit under.

use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// File descriptors kept back from the connection cap for everything else a
/// server opens (its admin listener, key and database files, logs).
const RESERVED_FDS: u64 = 128;

/// `[connections]`: how many connections are held, and for how long.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionsSection {
    /// Connections held at once, in all (1 to 1,000,000). Absent: as many as
    /// the open-file limit allows, up to 10,000.
    pub max: Option<u64>,
    /// Connections one client address (IPv6: one /64) may hold at once
    /// (1 to a quarter of `max`, so that one address always leaves room for
    /// others). Absent: the server's default (the relay faces end users,
    /// 256; a gateway faces a few relays, 1,024), lowered to a quarter of
    /// the total when the open-file limit makes the total small.
    pub max_per_client: Option<u64>,
    /// Time for a new connection's first byte and its TLS handshake
    /// (100 ms to 60 s).
    pub handshake_timeout_ms: u64,
    /// Time for a request's headers (100 ms to 120 s).
    pub header_timeout_ms: u64,
    /// A connection with no request in flight for this long is closed,
    /// HTTP/1.1 keep-alive and HTTP/2 alike (1 s to 1 h).
    pub idle_timeout_ms: u64,
    /// Time open connections get to finish at shutdown (0 to 10 min).
    pub shutdown_grace_ms: u64,
}

impl Default for ConnectionsSection {
    fn default() -> Self {
        Self {
            max: None,
            max_per_client: None,
            handshake_timeout_ms: 5_000,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            shutdown_grace_ms: 10_000,
        }
    }
}

impl ConnectionsSection {
    /// Checks every number against its range (not the open-file limit: see
    /// [`ConnectionsSection::limits`]).
    pub fn validate(&self) -> Result<()> {
        let max = self.max.unwrap_or(10_000);
        if let Some(m) = self.max {
            in_range("connections.max", m, 1, 1_000_000)?;
        }
        if let Some(n) = self.max_per_client {
            in_range("connections.max_per_client", n, 1, share_of(max))?;
        }
        in_range(
            "connections.handshake_timeout_ms",
            self.handshake_timeout_ms,
            100,
            60_000,
        )?;
        in_range(
            "connections.header_timeout_ms",
            self.header_timeout_ms,
            100,
            120_000,
        )?;
        in_range(
            "connections.idle_timeout_ms",
            self.idle_timeout_ms,
            1_000,
            3_600_000,
        )?;
        in_range(
            "connections.shutdown_grace_ms",
            self.shutdown_grace_ms,
            0,
            600_000,
        )
    }

    /// The limits to serve with, once the open-file limit is known.
    /// `other_fds` is what the server opens besides client connections
    /// (its upstream connections, tunnels): the cap plus those must fit.
    /// `per_client` is the server's default for `max_per_client`.
    pub fn limits(
        &self,
        open_files: u64,
        other_fds: u64,
        per_client: u64,
    ) -> Result<ConnectionLimits> {
        self.validate()?;
        let room = open_files.saturating_sub(RESERVED_FDS + other_fds);
        let max = match self.max {
            Some(m) if m > room => {
                return Err(Error::Config(format!(
                    "connections.max = {m} does not fit under the open-file limit ({open_files}, of which {} are kept for other files and upstream connections): lower it, or raise the limit (LimitNOFILE= in the service unit)",
                    RESERVED_FDS + other_fds
                )));
            }
            Some(m) => m,
            // Automatic: what fits, but never nothing (the kept-back files
            // are an estimate; an explicit `max` is held to it strictly).
            None => room.max(open_files / 4).clamp(1, 10_000),
        };
        let ms = Duration::from_millis;
        Ok(ConnectionLimits {
            max_connections: usize::try_from(max).unwrap_or(usize::MAX),
            max_per_client: u32::try_from(
                self.max_per_client.unwrap_or(per_client).min(share_of(max)),
            )
            .unwrap_or(u32::MAX),
            handshake_timeout: ms(self.handshake_timeout_ms),
            header_timeout: ms(self.header_timeout_ms),
            idle_timeout: ms(self.idle_timeout_ms),
            drain_timeout: ms(self.shutdown_grace_ms),
        })
    }
}

/// The most connections one address may hold out of `max`: a quarter, and
/// at least one. An address that could take every slot could lock out every
/// other client (measured under a 1,024-file limit, where the default
/// per-address cap had been clamped to the whole total).
pub fn share_of(max: u64) -> u64 {
    (max / 4).max(1)
}

/// Below this many connections in all, `check` warns that the open-file
/// limit leaves a public server little room.
pub const FEW_CONNECTIONS: usize = 1_000;

/// Limits applied to every connection of one listener.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections held at once; more are closed on accept.
    pub max_connections: usize,
    /// Connections one client address (IPv6: /64) may hold at once.
    pub max_per_client: u32,
    /// Time for the first byte and the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time for a request's headers.
    pub header_timeout: Duration,
    /// Time a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// Time open connections get at shutdown.
    pub drain_timeout: Duration,
}

impl Default for ConnectionLimits {
    /// `[connections]`'s defaults on a host with 20,000 open files.
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_per_client: 256,
            handshake_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

impl ConnectionLimits {
    /// The admin listener's: few connections, short timeouts. It has its own
    /// budget, so a flood on the main listener never reaches `/healthz`.
    pub fn admin() -> Self {
        Self {
            max_connections: 64,
            max_per_client: 16,
            handshake_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(2),
        }
    }
}

/// `Err` naming `name` and its range when `value` is outside `lo..=hi`.
pub fn in_range<T>(name: &str, value: T, lo: T, hi: T) -> Result<()>
where
    T: PartialOrd + std::fmt::Display,
{
    if value >= lo && value <= hi {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "{name} = {value} is outside its range, {lo} to {hi}"
        )))
    }
}

/// This process's open-file limit (the soft one, which applies).
pub fn open_files() -> Result<u64> {
    rlimit::Resource::NOFILE
        .get()
        .map(|(soft, _)| soft)
        .map_err(|source| Error::Io {
            context: "reading the open-file limit".into(),
            source,
        })
}

/// The open-file limit a server will have once it raises its soft limit
/// (see [`raise_open_files`]): the hard limit.
pub fn open_files_at_most() -> Result<u64> {
    rlimit::Resource::NOFILE
        .get()
        .map(|(_, hard)| hard)
        .map_err(|source| Error::Io {
            context: "reading the open-file limit".into(),
            source,
        })
}

/// Raises this process's soft open-file limit to its hard limit, and returns
/// the limit in force. Servers call it once, before binding.
pub fn raise_open_files() -> Result<u64> {
    let (soft, hard) = rlimit::Resource::NOFILE.get().map_err(|source| Error::Io {
        context: "reading the open-file limit".into(),
        source,
    })?;
    if soft >= hard {
        return Ok(soft);
    }
    Ok(rlimit::increase_nofile_limit(hard).unwrap_or(soft))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_number_is_checked_against_its_range() {
        let good = ConnectionsSection::default();
        good.validate().unwrap();
        type Change = fn(&mut ConnectionsSection);
        let cases: [(&str, Change); 7] = [
            ("connections.max", |c| c.max = Some(0)),
            ("connections.max", |c| c.max = Some(2_000_000)),
            ("connections.max_per_client", |c| c.max_per_client = Some(0)),
            ("connections.max_per_client", |c| {
                c.max = Some(10);
                c.max_per_client = Some(3);
            }),
            ("connections.handshake_timeout_ms", |c| {
                c.handshake_timeout_ms = 10;
            }),
            ("connections.idle_timeout_ms", |c| c.idle_timeout_ms = 0),
            ("connections.shutdown_grace_ms", |c| {
                c.shutdown_grace_ms = 600_001;
            }),
        ];
        for (name, change) in cases {
            let mut c = good.clone();
            change(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(name) && e.contains("range"), "{e}");
        }
    }

    #[test]
    fn the_cap_must_fit_under_the_open_file_limit() {
        let mut c = ConnectionsSection::default();
        let l = c.limits(20_000, 2_000, 256).unwrap();
        assert_eq!((l.max_connections, l.max_per_client), (10_000, 256));
        assert_eq!(
            c.limits(1_024, 0, 256).unwrap().max_connections,
            1_024 - 128
        );
        c.max = Some(5_000);
        let e = c.limits(4_096, 0, 256).unwrap_err().to_string();
        assert!(
            e.contains("open-file limit") && e.contains("LimitNOFILE"),
            "{e}"
        );
        assert!(c.limits(1_024, 2_000, 256).is_err());
    }

    #[test]
    fn one_address_never_gets_more_than_a_quarter() {
        let c = ConnectionsSection::default();
        // A 1,024-file limit: 896 in all, so 224 per address, not 256.
        let l = c.limits(1_024, 0, 256).unwrap();
        assert_eq!((l.max_connections, l.max_per_client), (896, 224));
        let l = c.limits(1_024, 0, 1_024).unwrap();
        assert_eq!(l.max_per_client, 224);
        let tiny = ConnectionsSection {
            max: Some(3),
            ..ConnectionsSection::default()
        };
        assert_eq!(tiny.limits(1_024, 0, 256).unwrap().max_per_client, 1);
        let explicit = ConnectionsSection {
            max: Some(400),
            max_per_client: Some(100),
            ..ConnectionsSection::default()
        };
        assert_eq!(explicit.limits(1_024, 0, 256).unwrap().max_per_client, 100);
        let over = ConnectionsSection {
            max_per_client: Some(101),
            ..explicit
        };
        let e = over.validate().unwrap_err().to_string();
        assert!(e.contains("1 to 100"), "{e}");
    }
}
