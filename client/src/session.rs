//! One oblivious exchange with a gateway, through a [`Transport`]: key
//! configurations cached per gateway (honouring `max-age`), a fresh HPKE
//! context and a `Date` in every request, padding, and exactly the retries
//! RFC 9458 allows: once after re-fetching keys on a key problem, once with
//! the gateway's clock on a `date` problem.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use mimi_proto::oblivious::{
    self, KeyConfigEntry, MEDIA_OHTTP_KEYS, MEDIA_OHTTP_RES, MEDIA_PROBLEM_JSON, Problem,
    ProblemType,
};
use mimi_proto::{bhttp, ohttp};

use crate::error::{Error, Result};
use crate::transport::{RelayAnswer, Transport};

/// Key lists whose answer had no usable `max-age` are kept this long.
const DEFAULT_KEY_AGE: Duration = Duration::from_secs(60);

/// A decrypted answer from the target behind a gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerAnswer {
    /// The inner HTTP status.
    pub status: u16,
    /// The inner `Content-Type`.
    pub content_type: Option<String>,
    /// The inner body.
    pub body: Vec<u8>,
}

/// What to ask the target.
#[derive(Debug, Clone, Copy)]
pub struct InnerRequest<'a> {
    /// Method.
    pub method: &'a str,
    /// Authority (the provider host).
    pub authority: &'a str,
    /// Path.
    pub path: &'a str,
    /// `Content-Type` of the body, if any.
    pub content_type: Option<&'a str>,
    /// Body.
    pub body: &'a [u8],
}

struct CachedKeys {
    entries: Vec<KeyConfigEntry>,
    expires: Instant,
}

/// Oblivious requests to any number of gateways through one transport.
pub struct Session<T> {
    transport: T,
    keys: Mutex<HashMap<String, CachedKeys>>,
    clock_offsets: Mutex<HashMap<String, i64>>,
}

impl<T> std::fmt::Debug for Session<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

impl<T: Transport> Session<T> {
    /// A session over `transport`.
    pub fn new(transport: T) -> Self {
        Self {
            transport,
            keys: Mutex::default(),
            clock_offsets: Mutex::default(),
        }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Sends `req` to the target behind `gateway` and returns its answer.
    pub async fn request(&self, gateway: &str, req: InnerRequest<'_>) -> Result<InnerAnswer> {
        let mut keys_refreshed = false;
        let mut clock_adjusted = false;
        loop {
            let entry = self.key(gateway).await?;
            let offset = self
                .clock_offsets
                .lock()
                .map_or(0, |m| m.get(gateway).copied().unwrap_or(0));
            let now = shifted(SystemTime::now(), offset);
            let date = oblivious::format_date(now);
            let mut headers = vec![("date", date.as_str())];
            if let Some(ct) = req.content_type {
                headers.push(("content-type", ct));
            }
            let bhttp =
                oblivious::encode_request(req.method, req.authority, req.path, &headers, req.body)
                    .map_err(|_| Error::Config("request too large to encode".into()))?;
            let mut config = entry.config().map_err(|_| Error::NoUsableKey)?;
            let client =
                ohttp::ClientRequest::from_config(&mut config).map_err(|_| Error::NoUsableKey)?;
            let (enc, context) = client.encapsulate(&bhttp).map_err(|_| Error::NoUsableKey)?;

            let answer = self.transport.post(gateway, enc).await?;
            match answer.status {
                200 => {}
                422 if is_key_problem(&answer) => {
                    if keys_refreshed {
                        return Err(Error::KeyMismatch);
                    }
                    keys_refreshed = true;
                    self.forget_keys(gateway);
                    continue;
                }
                _ => return Err(relay_error(&answer)),
            }
            if !media_is(answer.content_type.as_deref(), MEDIA_OHTTP_RES) {
                return Err(Error::MalformedAnswer);
            }
            let plain = context
                .decapsulate(&answer.body)
                .map_err(|_| Error::MalformedAnswer)?;
            let msg = oblivious::decode_message(&plain).map_err(|_| Error::MalformedAnswer)?;
            let status = msg.control().status().ok_or(Error::MalformedAnswer)?.code();
            let inner = InnerAnswer {
                status,
                content_type: header(&msg, b"content-type"),
                body: msg.content().to_vec(),
            };
            if status == 400 && is_date_problem(&inner) {
                if clock_adjusted {
                    return Err(Error::DateRejected);
                }
                clock_adjusted = true;
                let their_date = header(&msg, b"date").ok_or(Error::DateRejected)?;
                let skew = oblivious::date_skew(&their_date, SystemTime::now())
                    .map_err(|_| Error::DateRejected)?;
                if let Ok(mut m) = self.clock_offsets.lock() {
                    m.insert(gateway.to_owned(), skew);
                }
                continue;
            }
            return Ok(inner);
        }
    }

    /// The key configuration to use for `gateway`: the first usable one of
    /// its list, fetched (through the relay) when not cached or expired.
    async fn key(&self, gateway: &str) -> Result<KeyConfigEntry> {
        let cached = self.keys.lock().ok().and_then(|m| {
            m.get(gateway)
                .filter(|c| c.expires > Instant::now())
                .map(|c| c.entries[0].clone())
        });
        if let Some(e) = cached {
            return Ok(e);
        }
        let answer = self.transport.get_keys(gateway).await?;
        if answer.status != 200 {
            return Err(relay_error(&answer));
        }
        if !media_is(answer.content_type.as_deref(), MEDIA_OHTTP_KEYS) {
            return Err(Error::MalformedAnswer);
        }
        let entries = oblivious::decode_key_config_list(&answer.body).map_err(|e| match e {
            mimi_proto::Error::NoSupportedKeyConfig => Error::NoUsableKey,
            _ => Error::MalformedAnswer,
        })?;
        let age = answer
            .cache_control
            .as_deref()
            .and_then(max_age)
            .unwrap_or(DEFAULT_KEY_AGE);
        let first = entries[0].clone();
        if let Ok(mut m) = self.keys.lock() {
            m.insert(
                gateway.to_owned(),
                CachedKeys {
                    entries,
                    expires: Instant::now() + age,
                },
            );
        }
        Ok(first)
    }

    fn forget_keys(&self, gateway: &str) {
        if let Ok(mut m) = self.keys.lock() {
            m.remove(gateway);
        }
    }
}

fn shifted(now: SystemTime, offset: i64) -> SystemTime {
    let by = Duration::from_secs(offset.unsigned_abs());
    if offset >= 0 { now + by } else { now - by }
}

fn header(msg: &bhttp::Message, name: &[u8]) -> Option<String> {
    msg.header()
        .get(name)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_owned)
}

fn media_is(value: Option<&str>, media: &str) -> bool {
    value
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(media))
}

fn is_key_problem(answer: &RelayAnswer) -> bool {
    // A 422 whose body is not a problem we understand is still most likely a
    // key mismatch: one refresh costs little.
    Problem::from_json(&answer.body).map_or(true, |p| p.kind() != Some(ProblemType::Date))
}

fn is_date_problem(inner: &InnerAnswer) -> bool {
    media_is(inner.content_type.as_deref(), MEDIA_PROBLEM_JSON)
        && Problem::from_json(&inner.body).is_ok_and(|p| p.kind() == Some(ProblemType::Date))
}

/// Maps a relay status that is not success to what it means for the user.
fn relay_error(answer: &RelayAnswer) -> Error {
    match answer.status {
        429 => Error::RateLimited(answer.retry_after.unwrap_or(1)),
        404 => Error::UnknownGateway,
        502 | 504 => Error::GatewayUnreachable(answer.status),
        422 => Error::KeyMismatch,
        s => Error::RelayRefused(s),
    }
}

fn max_age(value: &str) -> Option<Duration> {
    value.split(',').find_map(|d| {
        let d = d.trim().to_ascii_lowercase();
        d.strip_prefix("max-age=")
            .and_then(|v| v.parse().ok())
            .map(Duration::from_secs)
    })
}
