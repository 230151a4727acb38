//! The gateway resource's logic (DESIGN §4): decapsulate, check the inner
//! request (origin, `Date`, replay), hand it to its target, encapsulate the
//! answer. Independent of hyper so that it can be tested and benchmarked
//! without sockets; time comes in as `now`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mimi_proto::oblivious::{self, MEDIA_PROBLEM_JSON};

use crate::error::{Error, Result};
use crate::inner::{self, Backend, DnsForwarder, TargetRequest, TargetResponse};
use crate::keys::KeyManager;
use crate::metrics::Metrics;
use crate::outcome::Outcome;
use crate::replay::{ReplayCache, ReplayStore, Verdict};
use crate::tokens::Tokens;

/// What the gateway needs to answer requests.
#[derive(Debug)]
pub struct Settings {
    /// The host (with optional `:port`) clients find in DNS (`e=`): the origin
    /// served, and what the directory document names.
    pub public_host: String,
    /// Further authorities accepted as this gateway's own origin.
    pub extra_origins: Vec<String>,
    /// How far the inner `Date` may be from the gateway's clock.
    pub date_window: Duration,
    /// How far ahead of the gateway's clock a request may be dated.
    pub future_skew: Duration,
    /// How many encapsulated keys the replay cache remembers.
    pub replay_capacity: usize,
    /// When this gateway started, if its replay cache starts empty: until one
    /// `date_window` has passed, requests dated before it get the `date`
    /// problem, since the cache cannot know whether it saw them before a
    /// restart. `None` with a replay store that outlives the process.
    pub started: Option<SystemTime>,
}

/// The gateway: keys, replay cache, targets and counters.
#[derive(Debug)]
pub struct Gateway {
    keys: Arc<KeyManager>,
    replay: ReplayStore,
    origins: Vec<String>,
    public_host: String,
    date_window: Duration,
    future_skew: Duration,
    started: Option<i64>,
    backend: Backend,
    dns: Option<DnsForwarder>,
    metrics: Metrics,
    tokens: Option<Arc<Tokens>>,
}

impl Gateway {
    /// Assembles a gateway.
    pub fn new(
        settings: Settings,
        keys: Arc<KeyManager>,
        backend: Backend,
        dns: Option<DnsForwarder>,
    ) -> Self {
        let mut origins: Vec<String> = std::iter::once(&settings.public_host)
            .chain(&settings.extra_origins)
            .map(|o| o.to_ascii_lowercase())
            .collect();
        origins.dedup();
        Self {
            keys,
            replay: ReplayStore::Memory(ReplayCache::new(
                settings.replay_capacity,
                settings.date_window.as_secs(),
                settings.future_skew.as_secs(),
            )),
            origins,
            public_host: settings.public_host,
            date_window: settings.date_window,
            future_skew: settings.future_skew,
            started: settings.started.map(unix_secs),
            backend,
            dns,
            metrics: Metrics::default(),
            tokens: None,
        }
    }

    /// Adds the Privacy Pass issuer and origin.
    pub fn with_tokens(mut self, tokens: Arc<Tokens>) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// The issuer and origin, if configured.
    pub fn tokens(&self) -> Option<&Arc<Tokens>> {
        self.tokens.as_ref()
    }

    /// Replaces the in-memory replay cache with `store`. A store that
    /// outlives the process (Redis) needs no quiet period after a start.
    pub fn with_replay_store(mut self, store: ReplayStore) -> Self {
        if !store.forgets_on_restart() {
            self.started = None;
        }
        self.replay = store;
        self
    }

    /// The keys.
    pub fn keys(&self) -> &Arc<KeyManager> {
        &self.keys
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Answers one `message/ohttp-req` body: `Ok` is a `message/ohttp-res`
    /// body (whatever the inner status), `Err` an error to answer in the clear.
    pub async fn handle(&self, enc_request: &[u8], now: SystemTime) -> Result<Vec<u8>> {
        let key_id = oblivious::encapsulation::request_key_id(enc_request)
            .map_err(|_| Error::MalformedEncapsulation)?;
        let ring = self.keys.ring();
        let server = ring.server(key_id).ok_or(Error::KeyRejected)?;
        let started = Instant::now();
        let (plain, response) = server.decapsulate(enc_request).map_err(|e| match e {
            mimi_proto::Error::EncapsulationTruncated => Error::MalformedEncapsulation,
            _ => Error::KeyRejected,
        })?;
        self.metrics.decapsulated(started.elapsed());
        drop(ring);

        let mut retry_date = now;
        let (outcome, answer) = match self.answer_inner(&plain, response.enc(), now).await {
            Ok(answer) => (Outcome::Ok, answer),
            Err(e) => {
                if let Error::DatedBeforeReplayStore(since) = e {
                    // The retry must be dated after the store's first second
                    // (a second ahead at most: inside the future skew).
                    let after =
                        UNIX_EPOCH + Duration::from_secs(u64::try_from(since + 1).unwrap_or(0));
                    retry_date = retry_date.max(after);
                }
                if matches!(e, Error::Database(_) | Error::Postgres(_) | Error::Internal) {
                    // The operator's problem: say so, without the request.
                    tracing::error!(error = %e, "could not answer a request");
                }
                (e.outcome(), error_response(&e))
            }
        };
        let mut headers: Vec<(&str, &str)> = vec![("content-type", answer.content_type.as_str())];
        let challenge = if matches!(
            outcome,
            Outcome::TokenMissing | Outcome::TokenInvalid | Outcome::TokenSpent
        ) {
            self.tokens.as_ref().and_then(|t| t.www_authenticate(now))
        } else {
            None
        };
        if let Some(value) = &challenge {
            headers.push(("www-authenticate", value));
        }
        let date;
        if outcome == Outcome::StaleDate {
            // The gateway's clock, so the client can retry once with it.
            date = oblivious::format_date(retry_date);
            headers.push(("date", &date));
        }
        let bhttp = oblivious::encode_response(answer.status, &headers, &answer.body)
            .map_err(|_| Error::Internal)?;
        let sealed = response.encapsulate(&bhttp).map_err(|_| Error::Internal)?;
        self.metrics.count(outcome);
        Ok(sealed)
    }

    async fn answer_inner(
        &self,
        plain: &[u8],
        enc: &[u8],
        now: SystemTime,
    ) -> Result<TargetResponse> {
        let msg = oblivious::decode_message(plain).map_err(|_| Error::InnerMalformed)?;
        let control = msg.control();
        let (Some(method), Some(authority), Some(path)) = (
            control.method(),
            oblivious::request_authority(&msg),
            control.path(),
        ) else {
            return Err(Error::InnerMalformed);
        };

        // Date first (RFC 9458 §6.5): a request outside the window is refused
        // before anything else is looked at.
        let date = msg
            .header()
            .get(b"date")
            .and_then(|d| std::str::from_utf8(d).ok())
            .ok_or(Error::StaleDate)?;
        let skew = oblivious::date_skew(date, now).map_err(|_| Error::StaleDate)?;
        let window = i64::try_from(self.date_window.as_secs()).unwrap_or(i64::MAX);
        let ahead = i64::try_from(self.future_skew.as_secs()).unwrap_or(i64::MAX);
        // Ahead by at most a small skew: requests dated far ahead would stay
        // in the replay cache long after honest ones (and the client's retry
        // with our Date is never ahead).
        if skew < -window || skew > ahead {
            return Err(Error::StaleDate);
        }
        let now_s = unix_secs(now);
        // A request dated at or before a restart's second may have been
        // answered already (dates have whole seconds: one sent, captured and
        // replayed across a fast restart within the same second): the empty
        // cache cannot tell, so the client gets a Date after the start second
        // and its one retry is dated after it, as with the Redis marker.
        if self
            .started
            .is_some_and(|start| now_s <= start + window && now_s + skew <= start)
        {
            return Err(Error::DatedBeforeReplayStore(self.started.unwrap_or(now_s)));
        }
        match self.replay.check_and_insert(enc, now_s + skew, now_s).await {
            Verdict::Fresh => {}
            Verdict::Replay => return Err(Error::Replay),
            Verdict::OutsideWindow => return Err(Error::StaleDate),
            Verdict::Full | Verdict::Unavailable => return Err(Error::ReplayUnavailable),
            Verdict::BeforeStore(since) => return Err(Error::DatedBeforeReplayStore(since)),
        }

        let authority = std::str::from_utf8(authority).map_err(|_| Error::InnerMalformed)?;
        let scheme_ok = control.scheme() == Some(&b"https"[..]);
        if !scheme_ok
            || !self
                .origins
                .iter()
                .any(|o| o.eq_ignore_ascii_case(authority))
        {
            return Err(Error::ForeignOrigin);
        }
        let path = std::str::from_utf8(path).map_err(|_| Error::InnerMalformed)?;
        if let Some(tokens) = &self.tokens {
            if tokens.required() && crate::tokens::guards(path) {
                tokens
                    .redeem(msg.header().get(b"authorization"), now)
                    .await?;
            }
        }
        let req = TargetRequest {
            method,
            path,
            content_type: msg.header().get(b"content-type"),
            body: msg.content(),
        };
        inner::answer(
            &req,
            &self.backend,
            self.dns.as_ref(),
            &self.public_host,
            &self.metrics,
        )
        .await
    }
}

pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn error_response(e: &Error) -> TargetResponse {
    TargetResponse {
        status: e.status().as_u16(),
        content_type: MEDIA_PROBLEM_JSON.into(),
        body: e.problem().map(|p| p.to_json()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;
