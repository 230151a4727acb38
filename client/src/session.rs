//! One oblivious exchange with a gateway, through a [`Transport`]: keys the
//! client can trust (DESIGN §4.1), a fresh HPKE context and a `Date` in every
//! request, padding, and exactly the retries RFC 9458 allows: once after
//! re-fetching keys on a key problem, once with the gateway's clock on a
//! `date` problem.
//!
//! What a relay or gateway hands the client does not come back in a later
//! request: a gateway's `Date` serves only the one retry it answers and is
//! then forgotten (RFC 9458 §6.5.2). The one thing kept across requests is a
//! gateway's key, and only a key that the gateway itself published over TLS
//! and that the relay hands every client alike.

use std::time::{Duration, Instant, SystemTime};

use mimi_proto::oblivious::{
    self, IDENTIFIER_QUERY_PREFIX, KeyConfigEntry, MEDIA_OHTTP_KEYS, MEDIA_OHTTP_RES,
    MEDIA_PROBLEM_JSON, Problem, ProblemType,
};
use mimi_proto::{bhttp, privacypass};

use crate::error::{Error, Result};
use crate::tokens::{Issuance, TokenPools};
use crate::transport::{KeySource, RelayAnswer, Transport, media_is, relay_error};

/// Key lists whose answer had no usable `max-age` are kept this long.
const DEFAULT_KEY_AGE: Duration = Duration::from_secs(60);
/// Key lists are never kept longer than this, whatever `max-age` says.
const MAX_KEY_AGE: Duration = Duration::from_secs(24 * 3600);
/// The random pause before retrying with a gateway's `Date`, in milliseconds
/// (RFC 9458 §6.5.2: a retry at once would tie the two requests together).
const DATE_RETRY_PAUSE_MS: std::ops::RangeInclusive<u64> = 50..=400;

/// How a gateway's key is checked before anything is encrypted to it
/// (DESIGN §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum KeyCheck {
    /// The gateway's own list over TLS through the relay's `CONNECT`,
    /// confirmed against the relay's shared copy. The default.
    #[default]
    #[value(name = "tunnel+shared")]
    TunnelShared,
    /// The gateway's own list through the relay's `CONNECT` only (a relay
    /// with no shared key cache): one client cannot tell whether the gateway
    /// hands others a different key.
    #[value(name = "tunnel")]
    Tunnel,
    /// The gateway's own list fetched directly (the gateway then sees the
    /// client's address), confirmed against the relay's shared copy.
    #[value(name = "direct+shared")]
    DirectShared,
    /// The gateway's own list fetched directly, nothing else.
    #[value(name = "direct")]
    Direct,
}

impl KeyCheck {
    /// Every mode, as configuration names it.
    pub const ALL: [Self; 4] = [
        Self::TunnelShared,
        Self::Tunnel,
        Self::DirectShared,
        Self::Direct,
    ];

    /// The configuration name: `tunnel+shared`, `tunnel`, `direct+shared`, `direct`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TunnelShared => "tunnel+shared",
            Self::Tunnel => "tunnel",
            Self::DirectShared => "direct+shared",
            Self::Direct => "direct",
        }
    }

    /// Parses a configuration name (the names `clap` takes on the command
    /// line).
    pub fn parse(s: &str) -> Option<Self> {
        <Self as clap::ValueEnum>::from_str(s, false).ok()
    }

    /// Where the authentic list comes from.
    pub fn authentic(self) -> KeySource {
        match self {
            Self::TunnelShared | Self::Tunnel => KeySource::Tunnel,
            Self::DirectShared | Self::Direct => KeySource::Direct,
        }
    }

    /// Whether the relay's shared copy must agree.
    pub fn shared(self) -> bool {
        matches!(self, Self::TunnelShared | Self::DirectShared)
    }
}

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

#[derive(Clone)]
struct ConfirmedKey {
    entry: KeyConfigEntry,
    /// How long the gateway's list stays fresh.
    age: Duration,
}

/// The most gateways whose confirmed key a session keeps: a long-lived
/// discoverer (an app's) meets as many gateways as DNS names, and the least
/// recently used go first.
const MAX_CACHED_KEYS: u64 = 1024;

/// Each confirmed key lives as long as the list it came from stays fresh.
struct KeyLifetime;

impl moka::Expiry<String, ConfirmedKey> for KeyLifetime {
    fn expire_after_create(
        &self,
        _gateway: &String,
        key: &ConfirmedKey,
        _now: Instant,
    ) -> Option<Duration> {
        Some(key.age)
    }
}

/// Oblivious requests to any number of gateways through one transport.
pub struct Session<T> {
    transport: T,
    key_check: KeyCheck,
    /// Confirmed keys by gateway; concurrent lookups that miss wait for one
    /// fetch instead of each fetching (single flight), and a failed fetch
    /// is not kept.
    keys: moka::future::Cache<String, ConfirmedKey>,
    tokens: TokenPools,
}

impl<T> std::fmt::Debug for Session<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("key_check", &self.key_check)
            .finish_non_exhaustive()
    }
}

impl<T: Transport> Session<T> {
    /// A session over `transport`, checking keys as `key_check` says.
    pub fn new(transport: T, key_check: KeyCheck) -> Self {
        Self {
            transport,
            key_check,
            keys: moka::future::Cache::builder()
                .max_capacity(MAX_CACHED_KEYS)
                .expire_after(KeyLifetime)
                .build(),
            tokens: TokenPools::new(None, 1),
        }
    }

    /// Spends lookup tokens from `tokens` where a provider requires them.
    pub fn with_tokens(mut self, tokens: TokenPools) -> Self {
        self.tokens = tokens;
        self
    }

    /// The token pools (to keep unspent tokens for a later run).
    pub fn tokens(&self) -> &TokenPools {
        &self.tokens
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Sends `req` to the target behind `gateway` and returns its answer.
    ///
    /// An identifierQuery carries a lookup token where the provider requires
    /// them (DESIGN §10): one from the pool, or, after the provider's
    /// standard challenge, a fresh one, once.
    pub async fn request(&self, gateway: &str, req: InnerRequest<'_>) -> Result<InnerAnswer> {
        let metered = req.path.starts_with(IDENTIFIER_QUERY_PREFIX);
        let mut keys_refreshed = false;
        let mut date_retried = false;
        let mut token_retried = false;
        // A token survives the retries before it reaches the origin (key and
        // date problems are found first); one the origin refused is dropped.
        let mut token = None;
        // The gateway's clock, for the one retry its `date` problem answers.
        let mut their_skew: Option<i64> = None;
        loop {
            let entry = self.key(gateway).await?;
            if metered && token.is_none() {
                token = self.issuance(gateway).token_for(gateway).await?;
            }
            let authorization = token
                .as_ref()
                .map(privacypass::header::authorization)
                .transpose()
                .map_err(|_| Error::MalformedAnswer)?;
            let now = shifted(SystemTime::now(), their_skew.take().unwrap_or(0));
            let date = oblivious::format_date(now);
            let mut headers = vec![("date", date.as_str())];
            if let Some(ct) = req.content_type {
                headers.push(("content-type", ct));
            }
            if let Some(a) = &authorization {
                headers.push(("authorization", a));
            }
            let bhttp =
                oblivious::encode_request(req.method, req.authority, req.path, &headers, req.body)
                    .map_err(|_| Error::Config("request too large to encode".into()))?;
            let (enc, context) = oblivious::ClientRequest::new(&entry)
                .encapsulate(&bhttp)
                .map_err(|_| Error::NoUsableKey)?;

            let answer = self.transport.post(gateway, enc).await?;
            match answer.status {
                200 => {}
                422 | 400 if is_key_problem(&answer) => {
                    if keys_refreshed {
                        return Err(Error::KeyMismatch);
                    }
                    keys_refreshed = true;
                    self.forget_key(gateway).await;
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
                if date_retried {
                    return Err(Error::DateRejected);
                }
                date_retried = true;
                let their_date = header(&msg, b"date").ok_or(Error::DateRejected)?;
                their_skew = Some(
                    oblivious::date_skew(&their_date, SystemTime::now())
                        .map_err(|_| Error::DateRejected)?,
                );
                let pause = rand::random_range(DATE_RETRY_PAUSE_MS);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                continue;
            }
            if status == 401 && metered {
                let challenge =
                    header(&msg, b"www-authenticate").ok_or(Error::ProviderRefused(401))?;
                self.issuance(gateway)
                    .challenged(gateway, &challenge)
                    .await?;
                if token_retried {
                    return Err(Error::TokenRefused);
                }
                token_retried = true;
                token = None;
                continue;
            }
            return Ok(inner);
        }
    }

    /// The key to encrypt to for `gateway`: cached while its list is fresh,
    /// else fetched and checked once, however many lookups wait for it.
    async fn key(&self, gateway: &str) -> Result<KeyConfigEntry> {
        self.keys
            .try_get_with_by_ref(gateway, self.confirmed_key(gateway))
            .await
            .map(|k| k.entry)
            .map_err(|e| Error::clone(&e))
    }

    async fn forget_key(&self, gateway: &str) {
        self.keys.invalidate(gateway).await;
    }

    /// The first key of the gateway's own list that the relay's shared copy
    /// also holds (DESIGN §4.1); both are fetched once more if none is, as a
    /// rotation may be under way. Nothing is encrypted to a key that fails.
    async fn confirmed_key(&self, gateway: &str) -> Result<ConfirmedKey> {
        for _ in 0..2 {
            let authentic = self.fetch_list(gateway, self.key_check.authentic());
            let (authentic, shared) = if self.checks_shared(gateway) {
                let shared = self.fetch_list(gateway, KeySource::Shared);
                let (a, s) = tokio::join!(authentic, shared);
                (a?, Some(s?))
            } else {
                (authentic.await?, None)
            };
            let (entries, age) = authentic;
            let chosen = match &shared {
                None => entries.first(),
                Some((copy, _)) => entries
                    .iter()
                    .find(|e| copy.iter().any(|c| c.encoded == e.encoded)),
            };
            if let Some(entry) = chosen {
                return Ok(ConfirmedKey {
                    entry: entry.clone(),
                    age,
                });
            }
        }
        Err(Error::KeyInconsistent)
    }

    /// Lookup tokens for `gateway`, its issuer's key checked as its OHTTP
    /// key is.
    fn issuance(&self, gateway: &str) -> Issuance<'_, T> {
        Issuance {
            transport: &self.transport,
            pools: &self.tokens,
            authentic: self.key_check.authentic(),
            shared: self.checks_shared(gateway),
        }
    }

    /// Whether `gateway`'s key is checked against the relay's shared copy:
    /// when the key check asks for it and the relay keeps one.
    pub fn checks_shared(&self, gateway: &str) -> bool {
        self.key_check.shared() && self.transport.serves_shared_keys(gateway)
    }

    /// How `gateway`'s key is checked, as configuration names it: the
    /// configured check, without `+shared` where the relay keeps no copy.
    pub fn key_check_for(&self, gateway: &str) -> KeyCheck {
        match (self.key_check, self.checks_shared(gateway)) {
            (KeyCheck::TunnelShared, false) => KeyCheck::Tunnel,
            (KeyCheck::DirectShared, false) => KeyCheck::Direct,
            (check, _) => check,
        }
    }

    /// A key list from `source`, and how long it may be kept.
    async fn fetch_list(
        &self,
        gateway: &str,
        source: KeySource,
    ) -> Result<(Vec<KeyConfigEntry>, Duration)> {
        let answer = self.transport.fetch_keys(gateway, source).await?;
        if answer.status != 200 {
            return Err(match (source, answer.status) {
                (KeySource::Shared, _) | (_, 429 | 502 | 504) => relay_error(&answer),
                (_, s) => Error::TunnelFailed(format!("the gateway answered HTTP {s}")),
            });
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
            .unwrap_or(DEFAULT_KEY_AGE)
            .min(MAX_KEY_AGE);
        Ok((entries, age))
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

/// A key problem (RFC 9458 §5.3) may come as 422 or as 400 with the
/// `ohttp-key` problem type (DESIGN §4).
fn is_key_problem(answer: &RelayAnswer) -> bool {
    let kind = Problem::from_json(&answer.body).ok().and_then(|p| p.kind());
    match answer.status {
        // A 422 whose body is not a problem we understand is still most
        // likely a key mismatch: one refresh costs little.
        422 => kind != Some(ProblemType::Date),
        400 => kind == Some(ProblemType::OhttpKey),
        _ => false,
    }
}

fn is_date_problem(inner: &InnerAnswer) -> bool {
    media_is(inner.content_type.as_deref(), MEDIA_PROBLEM_JSON)
        && Problem::from_json(&inner.body).is_ok_and(|p| p.kind() == Some(ProblemType::Date))
}

fn max_age(value: &str) -> Option<Duration> {
    mimi_proto::oblivious::max_age(value).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_check_names_round_trip() {
        for m in KeyCheck::ALL {
            assert_eq!(KeyCheck::parse(m.as_str()), Some(m));
        }
        assert_eq!(KeyCheck::parse("shared"), None);
        assert_eq!(KeyCheck::default(), KeyCheck::TunnelShared);
    }
}
