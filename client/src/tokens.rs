//! Lookup tokens (DESIGN §10): a provider that requires them answers an
//! identifierQuery only against a single-use Privacy Pass token (type 2,
//! Blind RSA) that its issuer signed blindly, obtained through the relay as
//! attester.
//!
//! What keeps issuance and redemption apart:
//!
//! - The issuer's token key is fetched like a gateway's OHTTP key (over TLS
//!   to the gateway, and against the relay's shared copy): an issuer that
//!   handed this client a key of its own could recognise the client's tokens
//!   when they are spent. A key that differs is `key_inconsistent`, and no
//!   token is requested or spent under it.
//! - Only the standard challenge (type 2, issuer and origin the provider's
//!   host, no redemption context) is answered; any other could carry a tag.
//! - Every token is verified under a confirmed key before it is pooled, and
//!   again before it is spent (tokens kept from an earlier run included).
//!
//! Tokens are obtained in batches and pooled per issuer, so that a quota
//! counts lookups, not runs; [`TokenPools::export`] and
//! [`TokenPools::import`] let a program keep its unspent tokens.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mimi_proto::codec::Codec;
use mimi_proto::privacypass::{
    BatchTokenRequest, BatchTokenResponse, IssuerDirectory, MAX_BATCH, MEDIA_BATCH_REQUEST,
    MEDIA_BATCH_RESPONSE, MEDIA_ISSUER_DIRECTORY, MEDIA_TOKEN_REQUEST, MEDIA_TOKEN_RESPONSE, Token,
    TokenChallenge, TokenKey, TokenResponse, header,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::transport::{KeySource, Transport, media_is, relay_error};

/// Issuer directories whose answer had no usable `max-age` are kept this long.
const DEFAULT_DIRECTORY_AGE: Duration = Duration::from_secs(60);
/// Issuer directories are never kept longer than this.
const MAX_DIRECTORY_AGE: Duration = Duration::from_secs(24 * 3600);
/// The most tokens kept per issuer (an import beyond it is cut).
const MAX_POOLED: usize = 1024;

/// A bearer credential for the relay as attester (a JWT from the relay
/// operator's identity provider). It never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential(String);

impl Credential {
    /// A credential from its text (surrounding white space is dropped).
    pub fn new(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::Config(
                "the credential must be one line of printable ASCII (a bearer token)".into(),
            ));
        }
        Ok(Self(text.to_owned()))
    }

    fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

/// Unspent tokens by issuer host, base64url-encoded: what a program keeps
/// between runs. The tokens are unlinkable to their issuance; they are still
/// worth a lookup each to whoever holds them, so keep them private.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTokens {
    /// Issuer host → tokens.
    pub issuers: BTreeMap<String, Vec<String>>,
}

impl StoredTokens {
    /// How many tokens are held, in all.
    pub fn len(&self) -> usize {
        self.issuers.values().map(Vec::len).sum()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An issuer's token keys that the client may use: the gateway's own
/// directory, every key of which the relay's shared copy also holds.
#[derive(Clone)]
struct ConfirmedTokenKeys {
    /// The key to request new tokens under.
    current: TokenKey,
    /// Every confirmed key (tokens under any of them may be spent).
    accepted: Vec<TokenKey>,
    expires: Instant,
}

impl ConfirmedTokenKeys {
    /// Whether `token` names a confirmed key.
    fn names(&self, token: &Token) -> bool {
        self.accepted.iter().any(|k| *k.id() == token.token_key_id)
    }

    /// Whether `token` names a confirmed key and its signature holds.
    fn verifies(&self, token: &Token) -> bool {
        self.accepted
            .iter()
            .any(|k| *k.id() == token.token_key_id && k.verify(token).is_ok())
    }
}

#[derive(Default)]
struct IssuerState {
    keys: Option<ConfirmedTokenKeys>,
    /// Tokens not yet checked against a confirmed key (imported).
    unchecked: Vec<Token>,
    /// Tokens verified under a confirmed key.
    pool: Vec<Token>,
    /// The provider challenged us with the standard challenge.
    required: bool,
}

/// One issuer's state; the async lock makes concurrent lookups wait for one
/// fetch of keys or tokens instead of each fetching.
type IssuerSlot = Arc<tokio::sync::Mutex<IssuerState>>;

/// Token pools and confirmed token keys, per issuer.
pub struct TokenPools {
    credential: Option<Credential>,
    batch: usize,
    issuers: Mutex<HashMap<String, IssuerSlot>>,
}

impl std::fmt::Debug for TokenPools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPools")
            .field("credential", &self.credential)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl TokenPools {
    /// Pools obtaining `batch` tokens at a time (1 to 64), as `credential`.
    pub fn new(credential: Option<Credential>, batch: usize) -> Self {
        Self {
            credential,
            batch: batch.clamp(1, MAX_BATCH),
            issuers: Mutex::default(),
        }
    }

    fn slot(&self, issuer: &str) -> IssuerSlot {
        let mut map = self.issuers.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(issuer.to_ascii_lowercase()).or_default().clone()
    }

    /// Adds tokens kept from an earlier run. Undecodable ones are dropped;
    /// the rest are checked against the issuer's confirmed key before use.
    pub async fn import(&self, stored: &StoredTokens) {
        for (issuer, tokens) in &stored.issuers {
            let slot = self.slot(issuer);
            let mut state = slot.lock().await;
            for t in tokens {
                if state.unchecked.len() >= MAX_POOLED {
                    break;
                }
                if let Ok(token) = header::from_b64url(t).and_then(|b| Token::from_bytes(&b)) {
                    state.unchecked.push(token);
                }
            }
        }
    }

    /// Takes every unspent token out, for a program to keep.
    pub async fn export(&self) -> StoredTokens {
        let slots: Vec<(String, IssuerSlot)> = self
            .issuers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut out = StoredTokens::default();
        for (issuer, slot) in slots {
            let mut state = slot.lock().await;
            let tokens: Vec<String> = std::mem::take(&mut state.pool)
                .into_iter()
                .chain(std::mem::take(&mut state.unchecked))
                .filter_map(|t| t.to_bytes().ok())
                .map(|b| header::b64url(&b))
                .collect();
            if !tokens.is_empty() {
                out.issuers.insert(issuer, tokens);
            }
        }
        out
    }
}

/// The host part of a gateway named as in DNS (`host[:port]`): the issuer
/// and origin name of its standard challenge.
pub(crate) fn issuer_name(gateway: &str) -> &str {
    match gateway.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => gateway,
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Lookup tokens for one gateway's issuer, through one transport: its key
/// checked from `authentic` and, when `shared`, against the relay's copy.
pub(crate) struct Issuance<'a, T> {
    pub(crate) transport: &'a T,
    pub(crate) pools: &'a TokenPools,
    pub(crate) authentic: KeySource,
    pub(crate) shared: bool,
}

impl<T: Transport> Issuance<'_, T> {
    /// A token to spend on a request to `gateway`: one from the pool, or a
    /// fresh batch when the provider is known to require them; `None` when
    /// it is not known to, and none is pooled.
    pub(crate) async fn token_for(&self, gateway: &str) -> Result<Option<Token>> {
        let slot = self.pools.slot(gateway);
        let mut state = slot.lock().await;
        if !state.required && state.pool.is_empty() && state.unchecked.is_empty() {
            return Ok(None);
        }
        let keys = self.token_keys(gateway, &mut state).await?;
        // Kept tokens count only under a key the issuer still publishes
        // alike to everyone, and only if their signature holds.
        let unchecked = std::mem::take(&mut state.unchecked);
        for t in unchecked {
            if keys.verifies(&t) {
                state.pool.push(t);
            }
        }
        state.pool.retain(|t| keys.names(t));
        if let Some(t) = state.pool.pop() {
            return Ok(Some(t));
        }
        if !state.required {
            return Ok(None);
        }
        let mut fresh = self.fetch_tokens(gateway, &keys.current).await?;
        let token = fresh.pop();
        state.pool.extend(fresh);
        Ok(token)
    }

    /// Records that `gateway` challenged us: from now on every query to it
    /// carries a token. The challenge must be the standard one.
    pub(crate) async fn challenged(&self, gateway: &str, www_authenticate: &str) -> Result<()> {
        let challenge = header::parse_www_authenticate(www_authenticate)
            .map_err(|_| Error::TokenChallengeRefused)?;
        if challenge.challenge != TokenChallenge::standard(issuer_name(gateway)) {
            return Err(Error::TokenChallengeRefused);
        }
        let slot = self.pools.slot(gateway);
        let mut state = slot.lock().await;
        state.required = true;
        // The challenge names the key the origin accepts now; one we have
        // not confirmed means our copy is stale (or the origin is trying
        // something): confirm again before requesting under it.
        if let (Some(named), Some(keys)) = (&challenge.token_key, &state.keys) {
            if named.as_slice() != keys.current.spki() {
                state.keys = None;
            }
        }
        Ok(())
    }

    /// The confirmed token keys of `gateway`'s issuer, fetched and checked
    /// when not fresh.
    async fn token_keys(
        &self,
        gateway: &str,
        state: &mut IssuerState,
    ) -> Result<ConfirmedTokenKeys> {
        if let Some(k) = state.keys.as_ref().filter(|k| k.expires > Instant::now()) {
            return Ok(k.clone());
        }
        let keys = self.confirmed_token_keys(gateway).await?;
        state.keys = Some(keys.clone());
        Ok(keys)
    }

    /// The issuer directory from the gateway itself and the relay's shared
    /// copy; fetched once more if they disagree (a rotation may be under
    /// way). The key to use must be in both: otherwise `key_inconsistent`.
    async fn confirmed_token_keys(&self, gateway: &str) -> Result<ConfirmedTokenKeys> {
        for _ in 0..2 {
            let authentic = self.fetch_directory(gateway, self.authentic);
            let ((dir, age), shared) = if self.shared {
                let shared = self.fetch_directory(gateway, KeySource::Shared);
                let (a, s) = tokio::join!(authentic, shared);
                (a?, Some(s?.0))
            } else {
                (authentic.await?, None)
            };
            let in_shared = |key: &str| {
                shared
                    .as_ref()
                    .is_none_or(|s| s.token_keys.iter().any(|k| k.token_key == key))
            };
            let Some(current) = dir.current_key(unix_now()) else {
                return Err(Error::IssuerUnavailable(
                    "the issuer publishes no token key usable now".into(),
                ));
            };
            if !in_shared(&current.token_key) {
                continue;
            }
            let current = header::from_b64url(&current.token_key)
                .and_then(|spki| TokenKey::from_spki(&spki))
                .map_err(|_| {
                    Error::IssuerUnavailable("the issuer's token key is unusable".into())
                })?;
            let accepted = dir
                .token_keys
                .iter()
                .filter(|k| in_shared(&k.token_key))
                .filter_map(|k| header::from_b64url(&k.token_key).ok())
                .filter_map(|spki| TokenKey::from_spki(&spki).ok())
                .collect();
            return Ok(ConfirmedTokenKeys {
                current,
                accepted,
                expires: Instant::now() + age,
            });
        }
        Err(Error::KeyInconsistent)
    }

    async fn fetch_directory(
        &self,
        gateway: &str,
        source: KeySource,
    ) -> Result<(IssuerDirectory, Duration)> {
        let answer = self
            .transport
            .fetch_issuer_directory(gateway, source)
            .await?;
        match (source, answer.status) {
            (_, 200) => {}
            (KeySource::Shared, 404) => {
                return Err(Error::IssuerUnavailable(
                    "the relay does not attest for this provider".into(),
                ));
            }
            (KeySource::Shared, _) | (_, 429 | 502 | 504) => return Err(relay_error(&answer)),
            (_, s) => {
                return Err(Error::IssuerUnavailable(format!(
                    "its directory answered HTTP {s}"
                )));
            }
        }
        if !media_is(answer.content_type.as_deref(), MEDIA_ISSUER_DIRECTORY) {
            return Err(Error::MalformedAnswer);
        }
        let dir = IssuerDirectory::from_json(&answer.body).map_err(|_| Error::MalformedAnswer)?;
        let age = answer
            .cache_control
            .as_deref()
            .and_then(mimi_proto::oblivious::max_age)
            .map_or(DEFAULT_DIRECTORY_AGE, Duration::from_secs)
            .min(MAX_DIRECTORY_AGE);
        Ok((dir, age))
    }

    /// A batch of fresh tokens for `gateway`'s standard challenge under
    /// `key`, through the attester, each verified. Over the quota, smaller
    /// batches are tried (what is left of a quota may be less than a
    /// batch) before the quota is reported.
    async fn fetch_tokens(&self, gateway: &str, key: &TokenKey) -> Result<Vec<Token>> {
        let digest = TokenChallenge::standard(issuer_name(gateway))
            .digest()
            .map_err(|_| Error::Config("the provider's host is too long".into()))?;
        let mut n = self.pools.batch;
        loop {
            match self.fetch_batch(gateway, key, &digest, n).await {
                Err(Error::QuotaReached { .. }) if n > 1 => n /= 2,
                other => return other,
            }
        }
    }

    async fn fetch_batch(
        &self,
        gateway: &str,
        key: &TokenKey,
        digest: &[u8; 32],
        n: usize,
    ) -> Result<Vec<Token>> {
        let crypto = |_: mimi_proto::Error| {
            Error::IssuerUnavailable("could not blind a token request".into())
        };
        let mut requests = Vec::with_capacity(n);
        let mut pending = Vec::with_capacity(n);
        for _ in 0..n {
            let (r, p) = key.blind(digest).map_err(crypto)?;
            requests.push(r);
            pending.push(p);
        }
        let (media, body) = if n == 1 {
            (MEDIA_TOKEN_REQUEST, requests[0].to_bytes())
        } else {
            (
                MEDIA_BATCH_REQUEST,
                BatchTokenRequest {
                    token_requests: requests,
                }
                .to_bytes(),
            )
        };
        let body = body.map_err(crypto)?;
        let credential = self.pools.credential.as_ref().map(Credential::as_str);
        let answer = self
            .transport
            .request_tokens(gateway, media, body, credential)
            .await?;
        match answer.status {
            200 => {}
            429 => {
                let retry_after = answer.retry_after.unwrap_or(60);
                let at = SystemTime::now() + Duration::from_secs(retry_after);
                return Err(Error::QuotaReached {
                    retry_after,
                    resets_at: mimi_proto::oblivious::format_date(at),
                });
            }
            401 if credential.is_some() => return Err(Error::CredentialRejected),
            401 => return Err(Error::NoCredential),
            404 => {
                return Err(Error::IssuerUnavailable(
                    "the relay does not attest for this provider".into(),
                ));
            }
            s => {
                return Err(Error::IssuerUnavailable(format!(
                    "the relay answered HTTP {s}"
                )));
            }
        }
        let bad = || Error::IssuerUnavailable("the issuer's answer was malformed".into());
        let responses: Vec<Option<TokenResponse>> = if n == 1 {
            if !media_is(answer.content_type.as_deref(), MEDIA_TOKEN_RESPONSE) {
                return Err(bad());
            }
            vec![Some(
                TokenResponse::from_bytes(&answer.body).map_err(|_| bad())?,
            )]
        } else {
            if !media_is(answer.content_type.as_deref(), MEDIA_BATCH_RESPONSE) {
                return Err(bad());
            }
            BatchTokenResponse::from_bytes(&answer.body)
                .map_err(|_| bad())?
                .token_responses
        };
        if responses.len() != n {
            return Err(bad());
        }
        let mut tokens = Vec::with_capacity(n);
        for (p, r) in pending.into_iter().zip(responses) {
            let Some(r) = r else { continue };
            // A signature that does not verify under the confirmed key
            // is refused: it could be a tag, or it is simply worthless.
            tokens.push(p.finalize(&r).map_err(|_| {
                Error::IssuerUnavailable("the issuer's signature does not verify".into())
            })?);
        }
        if tokens.is_empty() {
            return Err(Error::IssuerUnavailable(
                "the issuer issued no token".into(),
            ));
        }
        Ok(tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_names_drop_the_port_only() {
        assert_eq!(issuer_name("mimi.example:8443"), "mimi.example");
        assert_eq!(issuer_name("mimi.example"), "mimi.example");
    }

    #[test]
    fn credentials_are_one_printable_line_and_never_printed() {
        let c = Credential::new(" abc.def.ghi\n").unwrap();
        assert_eq!(c.as_str(), "abc.def.ghi");
        assert!(!format!("{c:?}").contains("abc"));
        assert!(Credential::new("").is_err());
        assert!(Credential::new("a b").is_err());
    }
}
