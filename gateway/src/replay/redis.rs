//! Replay state in Redis, shared by every replica: one
//! `SET <prefix><enc> 1 NX EX <ttl>` per request, atomic in Redis, so that
//! of two replicas offered the same request exactly one gets `OK`.
//!
//! The entry lives until the request's `Date` leaves the window
//! (`date + window - now`, at most the window plus the future skew, plus a
//! second for rounding); Redis drops it then, so memory follows the request
//! rate. Connections are multiplexed through the `redis` crate's
//! `ConnectionManager`, which reconnects by itself. Every call is bounded
//! by `timeout`: when Redis does not answer in time the request is refused
//! ([`Verdict::Unavailable`]), and the outage is logged once.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, IntoConnectionInfo, Value};

use super::Verdict;
use crate::config::ReplaySection;
use crate::error::{Error, Result};
use crate::outage::Outage;

/// The Redis replay store.
pub struct RedisReplay {
    conn: ConnectionManager,
    prefix: Vec<u8>,
    window: i64,
    ahead: i64,
    timeout: Duration,
    outage: Outage,
}

impl std::fmt::Debug for RedisReplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisReplay")
            .field("window", &self.window)
            .field("ahead", &self.ahead)
            .finish_non_exhaustive()
    }
}

impl RedisReplay {
    /// Sets up the connection from `[replay]`. Connects lazily: a gateway
    /// started while Redis is down serves nothing that needs it (it fails
    /// closed) and starts serving when Redis comes up. Needs a tokio runtime.
    pub fn new(section: &ReplaySection) -> Result<Self> {
        let url = section.redis_url.as_deref().ok_or_else(|| {
            Error::Config("replay.redis_url is required with store = \"redis\"".into())
        })?;
        let bad = |e: redis::RedisError| Error::Config(format!("replay.redis_url: {e}"));
        let mut info = url.into_connection_info().map_err(bad)?;
        if let Some(path) = &section.password_file {
            let password = crate::directory::read_secret(path, "replay.password_file")?;
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        let client = match &section.ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    Error::Config(format!("replay.ca_file {}: {e}", path.display()))
                })?;
                Client::build_with_tls(
                    info,
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem),
                    },
                )
                .map_err(bad)?
            }
            None => Client::open(info).map_err(bad)?,
        };
        let timeout = Duration::from_millis(section.timeout_ms);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(bad)?;
        let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
        Ok(Self {
            conn,
            prefix: section.key_prefix.as_bytes().to_vec(),
            window: secs(section.window_secs),
            ahead: secs(section.future_skew_secs),
            timeout,
            outage: Outage::default(),
        })
    }

    /// Accepts `enc` once while `date` is inside the window.
    pub async fn check_and_insert(&self, enc: &[u8], date: i64, now: i64) -> Verdict {
        if date < now.saturating_sub(self.window) || date > now.saturating_add(self.ahead) {
            return Verdict::OutsideWindow;
        }
        let ttl = date + self.window - now + 1;
        let mut key = Vec::with_capacity(self.prefix.len() + enc.len());
        key.extend_from_slice(&self.prefix);
        key.extend_from_slice(enc);
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(1u8).arg("NX").arg("EX").arg(ttl);
        let mut conn = self.conn.clone();
        let answer = tokio::time::timeout(self.timeout, cmd.query_async::<Value>(&mut conn)).await;
        match answer {
            Ok(Ok(Value::Okay)) => {
                self.outage.succeeded("redis");
                Verdict::Fresh
            }
            Ok(Ok(Value::Nil)) => {
                self.outage.succeeded("redis");
                Verdict::Replay
            }
            Ok(Ok(other)) => {
                self.outage
                    .failed("redis", &format!("unexpected answer to SET NX: {other:?}"));
                Verdict::Unavailable
            }
            Ok(Err(e)) => {
                self.outage.failed("redis", &e);
                Verdict::Unavailable
            }
            Err(_) => {
                self.outage.failed("redis", &"no answer in time");
                Verdict::Unavailable
            }
        }
    }

    /// Asks Redis for `PONG` (for `check` and the start-up log).
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        let answer = tokio::time::timeout(
            self.timeout,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await;
        match answer {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Error::ReplayStore(e.to_string())),
            Err(_) => Err(Error::ReplayStore("no answer in time".into())),
        }
    }
}
