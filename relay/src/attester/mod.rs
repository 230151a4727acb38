//! The relay as Privacy Pass attester (DESIGN §10): it knows its client (an
//! account, by a bearer credential, or an anonymous client's address),
//! counts the tokens each obtains per window, and forwards token requests,
//! which hold only blinded messages, to allowlisted issuers with its own
//! client certificate. `GET /issuer/<host>` answers one shared copy of the
//! issuer's directory, the same bytes for every client.
//!
//! - [`credential`]: bearer credentials (JWT) checked against a JWKS file.
//! - [`quota`]: tokens counted per account or address and window.

pub mod credential;
pub mod quota;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CACHE_CONTROL};
use http::{HeaderValue, StatusCode};
use mimi_proto::codec::Codec;
use mimi_proto::privacypass::{
    BatchTokenRequest, ISSUER_DIRECTORY_PATH, IssuerDirectory, MEDIA_BATCH_REQUEST,
    MEDIA_ISSUER_DIRECTORY, MEDIA_TOKEN_REQUEST, TokenRequest,
};
use mimi_server_core::per_key::client_key;

use crate::error::{Error, Result};
use crate::targets::Target;
use crate::upstream::{Answer, Upstream};

pub use credential::Verifier;
pub use quota::{Client, Quotas};

/// How long an issuer directory is kept, at least and at most.
const DIRECTORY_MIN_AGE: Duration = Duration::from_secs(60);
const DIRECTORY_MAX_AGE: Duration = Duration::from_secs(3600);

/// The attester's settings.
#[derive(Debug)]
pub struct Settings {
    /// Hosts whose issuer this relay attests for.
    pub issuers: HashSet<String>,
    /// Checks account credentials; none: only anonymous clients.
    pub verifier: Option<Verifier>,
    /// Tokens per account and window.
    pub account_quota: u64,
    /// Tokens per anonymous address and window (0: none).
    pub anonymous_quota: u64,
    /// The window, in seconds.
    pub window_secs: u64,
    /// Clients counted in one window, at most.
    pub max_clients: usize,
}

/// The attester.
#[derive(Debug)]
pub struct Attester {
    settings: Settings,
    quotas: Quotas,
    client: Upstream,
    directories: Mutex<HashMap<String, (Answer, Instant)>>,
}

/// What the relay answers.
pub struct Forwarded {
    /// The status.
    pub status: StatusCode,
    /// The content type.
    pub content_type: Option<HeaderValue>,
    /// `Cache-Control`, for the directory.
    pub cache_control: Option<HeaderValue>,
    /// The body.
    pub body: Bytes,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn base_of(target: &Target) -> String {
    let scheme = target.url.scheme_str().unwrap_or("https");
    let authority = target.url.authority().map_or("", |a| a.as_str());
    format!("{scheme}://{authority}")
}

impl Attester {
    /// An attester with `client` (which presents the relay's certificate).
    pub fn new(settings: Settings, client: Upstream) -> Self {
        Self {
            quotas: Quotas::new(settings.window_secs, settings.max_clients),
            settings,
            client,
            directories: Mutex::new(HashMap::new()),
        }
    }

    /// Whether this relay attests for `host`'s issuer.
    pub fn serves(&self, host: &str) -> bool {
        self.settings.issuers.contains(host)
    }

    /// The issuer's directory: one cached copy for everyone.
    pub async fn directory(&self, target: &Target) -> Result<Forwarded> {
        let answer = self.cached_directory(target).await?;
        let age = answer.1.saturating_duration_since(Instant::now()).as_secs();
        Ok(Forwarded {
            status: StatusCode::OK,
            content_type: Some(HeaderValue::from_static(MEDIA_ISSUER_DIRECTORY)),
            cache_control: HeaderValue::from_str(&format!("public, max-age={age}")).ok(),
            body: answer.0.body,
        })
    }

    async fn cached_directory(&self, target: &Target) -> Result<(Answer, Instant)> {
        if let Some(hit) = self
            .directories
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&target.host)
            .filter(|(_, until)| *until > Instant::now())
        {
            return Ok(hit.clone());
        }
        let url: http::Uri = format!("{}{ISSUER_DIRECTORY_PATH}", base_of(target))
            .parse()
            .map_err(|_| Error::GatewayBadAnswer)?;
        let answer = self.client.send(&url, MEDIA_ISSUER_DIRECTORY, None).await?;
        if answer.status != StatusCode::OK || IssuerDirectory::from_json(&answer.body).is_err() {
            return Err(Error::GatewayBadAnswer);
        }
        let max_age = answer
            .cache_control
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .and_then(mimi_proto::oblivious::max_age)
            .map_or(DIRECTORY_MIN_AGE, Duration::from_secs)
            .clamp(DIRECTORY_MIN_AGE, DIRECTORY_MAX_AGE);
        let entry = (answer, Instant::now() + max_age);
        self.directories
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(target.host.clone(), entry.clone());
        Ok(entry)
    }

    /// Who is asking: the account of a valid bearer credential, or the
    /// address for a client without one (when anonymous clients get tokens).
    pub fn client_of(&self, headers: &http::HeaderMap, peer: IpAddr) -> Result<(Client, u64)> {
        match headers.get(AUTHORIZATION) {
            Some(value) => {
                let value = value.to_str().map_err(|_| Error::CredentialInvalid)?;
                let (scheme, credential) = value.split_once(' ').ok_or(Error::CredentialInvalid)?;
                if !scheme.eq_ignore_ascii_case("bearer") {
                    return Err(Error::CredentialInvalid);
                }
                let verifier = self
                    .settings
                    .verifier
                    .as_ref()
                    .ok_or(Error::CredentialInvalid)?;
                let account = verifier.account(credential.trim())?;
                Ok((Client::Account(account), self.settings.account_quota))
            }
            None if self.settings.anonymous_quota == 0 => Err(Error::CredentialRequired),
            None => Ok((
                Client::Address(client_key(peer)),
                self.settings.anonymous_quota,
            )),
        }
    }

    /// Counts the token requests in `body` against `client`'s quota, then
    /// forwards them to the issuer with the relay's certificate.
    pub async fn forward(
        &self,
        target: &Target,
        client: Client,
        quota: u64,
        batch: bool,
        body: Bytes,
    ) -> Result<Forwarded> {
        let n = if batch {
            BatchTokenRequest::from_bytes(&body)
                .map_err(|_| Error::TokenRequestMalformed)?
                .token_requests
                .len()
        } else {
            TokenRequest::from_bytes(&body).map_err(|_| Error::TokenRequestMalformed)?;
            1
        };
        let taken = now_secs();
        self.quotas
            .take(client.clone(), n as u64, quota, taken)
            .map_err(Error::QuotaReached)?;
        let result = self.issue(target, batch, body).await;
        if !matches!(&result, Ok(f) if f.status == StatusCode::OK) {
            self.quotas.refund(&client, n as u64, taken);
        }
        let forwarded = result?;
        if forwarded.status != StatusCode::OK {
            // The issuer's refusal (this relay unknown to it, or over its
            // budget) is the operator's problem, not the client's quota.
            return Err(Error::IssuerRefused(forwarded.status.as_u16()));
        }
        Ok(forwarded)
    }

    /// Sends token requests to the issuer named in its directory.
    async fn issue(&self, target: &Target, batch: bool, body: Bytes) -> Result<Forwarded> {
        let (directory, _) = self.cached_directory(target).await?;
        let dir =
            IssuerDirectory::from_json(&directory.body).map_err(|_| Error::GatewayBadAnswer)?;
        // The request URI must be on the issuer's own origin; it is reached
        // the way the gateway is (the configured URL's address).
        let uri: http::Uri = dir
            .issuer_request_uri
            .parse()
            .map_err(|_| Error::GatewayBadAnswer)?;
        if uri.scheme_str() != Some("https")
            || uri.authority().map(|a| a.as_str()) != Some(target.host.as_str())
        {
            return Err(Error::GatewayBadAnswer);
        }
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let url: http::Uri = format!("{}{path}", base_of(target))
            .parse()
            .map_err(|_| Error::GatewayBadAnswer)?;
        let media = if batch {
            MEDIA_BATCH_REQUEST
        } else {
            MEDIA_TOKEN_REQUEST
        };
        let answer = self.client.send(&url, media, Some(body)).await?;
        Ok(Forwarded {
            status: answer.status,
            content_type: answer.content_type,
            cache_control: None,
            body: answer.body,
        })
    }

    /// The window's length (for the operator's check).
    pub fn window(&self) -> u64 {
        self.quotas.window()
    }
}

/// Whether a `Cache-Control` header value is present (for tests).
#[doc(hidden)]
pub fn has_cache_control(resp: &http::HeaderMap) -> bool {
    resp.contains_key(CACHE_CONTROL)
}
