//! Replay state in Redis, shared by every replica: one
//! `SET <prefix><enc> 1 NX EX <ttl>` per request, atomic in Redis, so that
//! of two replicas offered the same request exactly one gets `OK`.
//!
//! Redis may lose what it holds (a restart without persistence, a failover
//! to a replica that lagged). So the same atomic step (a short Lua script,
//! run with `EVALSHA`) also reads `<prefix>since`, the moment this store
//! began remembering, and sets it to now if it is missing: a request dated
//! at or before it gets the `date` problem, because the store cannot know whether
//! it saw that request before it forgot. The client's one retry carries the
//! gateway's `Date` and passes. This is the quiet period a restarted
//! in-memory gateway has, applied when (and only when) the shared store
//! starts afresh; a restarted *replica* needs none.
//!
//! The entry lives until the request's `Date` leaves the window
//! (`date + window - now`, at most the window plus the future skew, plus a
//! second for rounding); Redis drops it then, so memory follows the request
//! rate. Connections are multiplexed through the `redis` crate's
//! `ConnectionManager`, which reconnects when a call finds the connection
//! broken; such a call is made once more within the same time budget, so
//! that the first request after an outage is answered. Every call is bounded
//! by `timeout`: when Redis does not answer in time the request is refused
//! ([`Verdict::Unavailable`]), and the outage is logged once.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, IntoConnectionInfo, Script};

use super::Verdict;
use super::settings::ReplaySection;
use crate::error::{Error, Result};
use crate::outage::Outage;

/// KEYS[1]: the request's entry; KEYS[2]: the since marker.
/// ARGV: the request's date, now, the entry's lifetime (seconds).
/// Returns 0 (fresh), 1 (replay), or the marker's second as a negative
/// number: the request is dated at or before it (dates have whole seconds,
/// and a request of that second may have been accepted just before the
/// store forgot).
const CHECK_AND_SET: &str = r"
local since = redis.call('GET', KEYS[2])
if not since then
  redis.call('SET', KEYS[2], ARGV[2])
  since = ARGV[2]
end
if tonumber(ARGV[1]) <= tonumber(since) then
  return -tonumber(since)
end
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[3]) then
  return 0
end
return 1
";

/// Whether `e` says the connection, not the command, failed: worth one more
/// attempt on the connection the manager re-establishes.
fn broken_connection(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal()
}

/// The Redis replay store.
pub struct RedisReplay {
    conn: ConnectionManager,
    script: Script,
    prefix: Vec<u8>,
    since_key: Vec<u8>,
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
            let password = crate::private_files::read_secret_line(path, "replay.password_file")?;
            let settings = info
                .redis_settings()
                .clone()
                .set_password(password.expose());
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
            script: Script::new(CHECK_AND_SET),
            prefix: section.key_prefix.as_bytes().to_vec(),
            since_key: [section.key_prefix.as_bytes(), b"since"].concat(),
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
        let mut call = self.script.key(key);
        call.key(&self.since_key).arg(date).arg(now).arg(ttl);
        // EVALSHA, and EVAL when a restarted Redis no longer has the script.
        let answer = self
            .with_one_reconnect(|mut conn| {
                let call = &call;
                async move { call.invoke_async::<i64>(&mut conn).await }
            })
            .await;
        match answer {
            Ok(Ok(code)) => {
                self.outage.succeeded("redis");
                match code {
                    0 => Verdict::Fresh,
                    1 => Verdict::Replay,
                    since => Verdict::BeforeStore(-since),
                }
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

    /// Runs `call` on the shared connection within `timeout`, and once more
    /// within what is left of it when the first attempt met a connection
    /// broken by an outage: the connection manager reconnects only when a
    /// call fails, so without the second attempt the first request after
    /// Redis returns would fail on every replica.
    async fn with_one_reconnect<T, F, Fut>(
        &self,
        call: F,
    ) -> std::result::Result<redis::RedisResult<T>, tokio::time::error::Elapsed>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let first = tokio::time::timeout_at(deadline, call(self.conn.clone())).await;
        match first {
            Ok(Err(e)) if broken_connection(&e) => {
                tokio::time::timeout_at(deadline, call(self.conn.clone())).await
            }
            other => other,
        }
    }

    /// Sets `<prefix><kind><id>` if absent, for `ttl` seconds: `Ok(true)`
    /// when this call set it, `Ok(false)` when it was there (a spent token).
    pub async fn claim(&self, kind: &[u8], id: &[u8], ttl: u64) -> Result<bool> {
        let key = [self.prefix.as_slice(), kind, id].concat();
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(1).arg("NX").arg("EX").arg(ttl);
        let answer = self
            .with_one_reconnect(|mut conn| {
                let cmd = &cmd;
                async move { cmd.query_async::<Option<String>>(&mut conn).await }
            })
            .await;
        match answer {
            Ok(Ok(set)) => {
                self.outage.succeeded("redis");
                Ok(set.is_some())
            }
            Ok(Err(e)) => {
                self.outage.failed("redis", &e);
                Err(Error::TokenStoreUnavailable)
            }
            Err(_) => {
                self.outage.failed("redis", &"no answer in time");
                Err(Error::TokenStoreUnavailable)
            }
        }
    }

    /// Checks that Redis answers, and marks when it began remembering if no
    /// replica has (so that a new deployment's first second is not the
    /// marker's). Called at start.
    pub async fn ping(&self, now: i64) -> Result<()> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(&self.since_key).arg(now).arg("NX");
        self.run(cmd).await
    }

    /// Checks that Redis answers (`PING`), changing nothing: for `check`.
    pub async fn reachable(&self) -> Result<()> {
        self.run(redis::cmd("PING")).await
    }

    async fn run(&self, cmd: redis::Cmd) -> Result<()> {
        let answer = self
            .with_one_reconnect(|mut conn| {
                let cmd = &cmd;
                async move { cmd.query_async::<redis::Value>(&mut conn).await }
            })
            .await;
        match answer {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Error::ReplayStore(e.to_string())),
            Err(_) => Err(Error::ReplayStore("no answer in time".into())),
        }
    }
}
