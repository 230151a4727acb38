//! The shared cache of gateways' key configurations (DESIGN §6): every client
//! gets the same bytes, the gateway never sees a client's address, and
//! concurrent misses for one gateway become one upstream fetch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::StatusCode;
use mimi_proto::oblivious::MEDIA_OHTTP_KEYS;

use crate::error::{Error, Result};
use crate::targets::Target;
use crate::upstream::Upstream;

#[derive(Debug)]
struct Cached {
    body: Bytes,
    expires: Instant,
}

#[derive(Debug, Default)]
struct Slot {
    current: ArcSwapOption<Cached>,
    // Held while fetching, so that one fetch serves every waiting miss.
    refresh: tokio::sync::Mutex<()>,
}

/// Key lists by gateway, in allowlist order.
#[derive(Debug)]
pub struct KeyCache {
    slots: Vec<Slot>,
    min_age: Duration,
    max_age: Duration,
}

/// Keys as served to a client: the bytes and how long they stay fresh.
#[derive(Debug, Clone)]
pub struct Keys {
    /// The `application/ohttp-keys` body.
    pub body: Bytes,
    /// Seconds left before the relay fetches them again.
    pub max_age: u64,
}

impl KeyCache {
    /// A cache for `gateways` gateways, honouring the gateway's `max-age`
    /// clamped to `min_age..=max_age`.
    pub fn new(gateways: usize, min_age: Duration, max_age: Duration) -> Self {
        Self {
            slots: (0..gateways).map(|_| Slot::default()).collect(),
            min_age,
            max_age: max_age.max(min_age),
        }
    }

    /// The keys of `target`, fetched through `upstream` on a miss.
    pub async fn get(&self, target: &Target, upstream: &Upstream) -> Result<Keys> {
        let slot = &self.slots[target.index];
        if let Some(keys) = fresh(&slot.current.load_full()) {
            return Ok(keys);
        }
        let _guard = slot.refresh.lock().await;
        // Someone else may have fetched while we waited.
        if let Some(keys) = fresh(&slot.current.load_full()) {
            return Ok(keys);
        }
        let answer = upstream.get_keys(&target.url).await?;
        let is_keys = answer
            .content_type
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| mimi_proto::oblivious::media_type_is(v, MEDIA_OHTTP_KEYS));
        if answer.status != StatusCode::OK || !is_keys || answer.body.is_empty() {
            // For the operator; the client hears only that it was not usable.
            tracing::warn!(gateway = %target.host, status = %answer.status, "gateway key list not usable");
            return Err(Error::GatewayBadAnswer);
        }
        let age = answer
            .cache_control
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .and_then(mimi_proto::oblivious::max_age)
            .map_or(self.min_age, Duration::from_secs)
            .clamp(self.min_age, self.max_age);
        let cached = Arc::new(Cached {
            body: answer.body,
            expires: Instant::now() + age,
        });
        slot.current.store(Some(cached.clone()));
        Ok(Keys {
            body: cached.body.clone(),
            max_age: age.as_secs(),
        })
    }
}

fn fresh(cached: &Option<Arc<Cached>>) -> Option<Keys> {
    let c = cached.as_ref()?;
    let left = c.expires.checked_duration_since(Instant::now())?;
    Some(Keys {
        body: c.body.clone(),
        max_age: left.as_secs(),
    })
}
