//! Lookup quotas (DESIGN §10): the gateway as Privacy Pass issuer (token
//! keys, the issuer directory, issuance to authenticated attesters within
//! their budgets) and as origin (identifierQuery only against a valid,
//! unspent token for the one standard challenge).
//!
//! - [`keys`]: the token key file and the ring built from it.
//! - [`spent`]: spent tokens in SQLite or Redis.
//! - [`attesters`]: pinned attester certificates and their budgets.

pub mod attesters;
pub mod keys;
pub mod settings;
pub mod spent;

use std::sync::Arc;
use std::time::SystemTime;

use mimi_proto::codec::Codec;
use mimi_proto::privacypass::{
    self, BatchTokenRequest, BatchTokenResponse, MEDIA_BATCH_RESPONSE, MEDIA_TOKEN_RESPONSE,
    TokenChallenge, TokenRequest, header,
};
use mimi_server_core::client_auth::{PeerCertificate, PinnedClientCerts, pinned_certificate};

use crate::clock::unix;
use crate::error::{Error, Result};
use crate::replay::RedisReplay;
use settings::{SpentStoreKind, TokensSection};

pub use attesters::{Attesters, Refusal};
pub use keys::{TokenKeyFile, TokenKeys};
pub use spent::SpentStore;

/// The longest a token key verifies, rotated or not: it bounds how long a
/// spent token must be remembered (365 days).
const MAX_KEY_LIFETIME: u64 = 365 * 24 * 3600;

/// The issuer and origin of one gateway.
#[derive(Debug)]
pub struct Tokens {
    required: bool,
    keys: TokenKeys,
    spent: SpentStore,
    attesters: Attesters,
    challenge: TokenChallenge,
    challenge_digest: [u8; 32],
    max_age: u64,
}

/// What issuance answers: a media type and a body.
#[derive(Debug)]
pub struct Issued {
    /// `application/private-token-response` or the batch's.
    pub content_type: &'static str,
    /// The response.
    pub body: Vec<u8>,
    /// How many tokens were issued.
    pub count: u64,
}

impl Tokens {
    /// The issuer and origin `[tokens]` describes; `redis` is the `[replay]`
    /// store, for spent tokens when so configured.
    /// `public_host` is the gateway's `e` host: the standard challenge's
    /// issuer and origin.
    pub fn open(
        t: &TokensSection,
        public_host: &str,
        redis: Option<Arc<RedisReplay>>,
        now: SystemTime,
    ) -> Result<Self> {
        let keys = TokenKeys::open(&t.key_file, public_host, now)?;
        let spent = match (t.spent_store, redis) {
            (SpentStoreKind::Redis, Some(r)) => SpentStore::Redis(r),
            (SpentStoreKind::Redis, None) => {
                return Err(Error::Config(
                    "tokens.spent_store = \"redis\" needs replay.store = \"redis\"".into(),
                ));
            }
            (SpentStoreKind::Sqlite, _) => SpentStore::sqlite(&t.spent_database)?,
        };
        let mut list = Vec::new();
        for a in &t.attester {
            list.push((
                a.name.clone(),
                pinned_certificate(&a.certificate)?,
                a.budget,
                a.window_secs,
            ));
        }
        let challenge = TokenChallenge::standard(public_host);
        let challenge_digest = challenge.digest().map_err(|_| Error::Internal)?;
        Ok(Self {
            required: t.required,
            keys,
            spent,
            attesters: Attesters::new(list),
            challenge,
            challenge_digest,
            max_age: t.max_age_secs,
        })
    }

    /// Whether identifierQuery needs a token.
    pub fn required(&self) -> bool {
        self.required
    }

    /// The TLS verifier that asks for attesters' certificates, if any are
    /// configured.
    pub fn client_verifier(&self) -> Option<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
        if self.attesters.is_empty() {
            return None;
        }
        Some(PinnedClientCerts::new(self.attesters.certificates()))
    }

    /// Re-reads the key file when it changed; drops expired keys. Returns
    /// whether a key stopped verifying: then [`Tokens::forget_expired`] can
    /// drop its spent tokens.
    pub fn refresh(&self, now: SystemTime) -> Result<bool> {
        self.keys.refresh(now)
    }

    /// Drops spent tokens whose key no longer verifies (blocking: a scan of
    /// the SQLite table, once a key expires; Redis expires them itself).
    pub fn forget_expired(&self, now: SystemTime) -> Result<()> {
        self.spent.forget_expired(unix(now))
    }

    /// The issuer directory and its `max-age`.
    pub fn directory(&self) -> (Vec<u8>, u64) {
        (self.keys.ring().directory().to_vec(), self.max_age)
    }

    /// The `WWW-Authenticate` value of the standard challenge with the
    /// current key.
    pub fn www_authenticate(&self, now: SystemTime) -> Option<String> {
        let ring = self.keys.ring();
        let key = ring.current_public(unix(now))?;
        header::www_authenticate(&self.challenge, key.spki()).ok()
    }

    /// Checks and spends the token in an `Authorization` value.
    pub async fn redeem(&self, authorization: Option<&[u8]>, now: SystemTime) -> Result<()> {
        let value = authorization.ok_or(Error::TokenMissing)?;
        let value = std::str::from_utf8(value).map_err(|_| Error::TokenInvalid)?;
        let token = header::parse_authorization(value).map_err(|_| Error::TokenInvalid)?;
        if token.challenge_digest != self.challenge_digest {
            return Err(Error::TokenInvalid);
        }
        let now = unix(now);
        let expires = {
            let ring = self.keys.ring();
            let key = ring.by_id(&token.token_key_id).ok_or(Error::TokenInvalid)?;
            let expires = key
                .expires
                .unwrap_or(u64::MAX)
                .min(key.not_before.saturating_add(MAX_KEY_LIFETIME));
            if expires <= now {
                return Err(Error::TokenInvalid);
            }
            key.key
                .public()
                .verify(&token)
                .map_err(|_| Error::TokenInvalid)?;
            expires
        };
        let mut id = [0u8; 64];
        id[..32].copy_from_slice(&token.token_key_id);
        id[32..].copy_from_slice(&token.nonce);
        if self.spent.spend(id, expires, now).await? {
            Ok(())
        } else {
            Err(Error::TokenSpent)
        }
    }

    /// Answers a token request from the attester presenting `cert`: one
    /// (`application/private-token-request`) or a batch.
    pub async fn issue(
        self: &Arc<Self>,
        cert: Option<&PeerCertificate>,
        batch: bool,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Issued> {
        let requests = if batch {
            BatchTokenRequest::from_bytes(body)
                .map_err(|_| Error::TokenRequestMalformed)?
                .token_requests
        } else {
            vec![TokenRequest::from_bytes(body).map_err(|_| Error::TokenRequestMalformed)?]
        };
        let n = requests.len() as u64;
        match self.attesters.charge(cert, n, unix(now)) {
            Ok(_) => {}
            Err(Refusal::Unknown) => return Err(Error::AttesterUnknown),
            Err(Refusal::OverBudget(secs)) => return Err(Error::AttesterOverBudget(secs)),
        }
        let this = self.clone();
        // RSA private-key operations: off the event loop.
        let responses = tokio::task::spawn_blocking(move || {
            let ring = this.keys.ring();
            requests
                .iter()
                .map(|r| {
                    ring.by_truncated_id(r.truncated_token_key_id)
                        .and_then(|k| k.key.issue(r).ok())
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|_| Error::Internal)?;
        let count = responses.iter().filter(|r| r.is_some()).count() as u64;
        if batch {
            let body = BatchTokenResponse {
                token_responses: responses,
            }
            .to_bytes()
            .map_err(|_| Error::Internal)?;
            Ok(Issued {
                content_type: MEDIA_BATCH_RESPONSE,
                body,
                count,
            })
        } else {
            let one = responses
                .into_iter()
                .next()
                .flatten()
                .ok_or(Error::TokenKeyUnknown)?;
            Ok(Issued {
                content_type: MEDIA_TOKEN_RESPONSE,
                body: one.to_bytes().map_err(|_| Error::Internal)?,
                count,
            })
        }
    }
}

/// Whether `path` is the identifierQuery resource (which tokens guard).
pub fn guards(path: &str) -> bool {
    path.starts_with(mimi_proto::oblivious::IDENTIFIER_QUERY_PREFIX)
}

#[doc(hidden)]
pub use privacypass::{ISSUER_DIRECTORY_PATH, ISSUER_REQUEST_PATH};
