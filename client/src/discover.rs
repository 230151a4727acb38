//! The whole discovery: step 1 (DNS gives the providers), then step 2 for
//! every provider at once (each asked through the relay which account the
//! identifier maps to).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, Stream, StreamExt};
use mimi_proto::codec::Codec;
use mimi_proto::oblivious::{IDENTIFIER_QUERY_PREFIX, MEDIA_OCTET_STREAM};
use mimi_proto::record::{MimiRecord, sort_by_preference};
use mimi_proto::{Identifier, IdentifierQueryCode, IdentifierRequest, IdentifierResponse, MimiUri};
use serde::Serialize;

use crate::dns::{DnsMode, Dnssec, Step1};
use crate::error::{Error, ErrorCode, Result};
use crate::session::{InnerRequest, KeyCheck, Session};
use crate::transport::Transport;
use crate::verify::{AccountVerification, Verification, judge_accounts, trusted_keys};

/// A provider's display label: its `s=`, or its host.
fn label(record: &MimiRecord) -> String {
    record
        .service
        .clone()
        .unwrap_or_else(|| record.endpoint.host.clone())
}

/// What a discoverer needs besides its transport.
#[derive(Debug, Clone)]
pub struct Options {
    /// Step 1.
    pub dns: DnsMode,
    /// How long DNS may take.
    pub dns_timeout: Duration,
    /// How long one provider's step 2 may take, retries included.
    pub provider_timeout: Duration,
    /// How long a whole lookup may take, DNS and every provider included;
    /// none: each step has only its own timeout.
    pub lookup_timeout: Option<Duration>,
    /// Extra CA certificates trusted for DNS-over-HTTPS (the relay and
    /// gateways take theirs from the transport).
    pub ca_roots: Vec<rustls_pki_types::CertificateDer<'static>>,
    /// DNSSEC trust anchors (DNSKEY records in zone-file form) instead of
    /// the root's, built in: for private roots and tests.
    pub trust_anchor: Option<std::path::PathBuf>,
    /// Refuse answers that are not DNSSEC-signed (`insecure`).
    pub require_dnssec: bool,
    /// How many identifiers [`Discoverer::discover_many`] works on at once.
    pub concurrency: usize,
    /// The local address DNS queries leave from (default: any).
    pub local_address: Option<std::net::IpAddr>,
    /// How a gateway's key is checked before anything is encrypted to it.
    pub key_check: KeyCheck,
    /// The most providers asked for one identifier; the rest are warnings.
    pub max_providers: usize,
    /// The bearer credential for the relay as attester, where providers
    /// require lookup tokens (DESIGN §10); none: the relay's anonymous quota.
    pub credential: Option<crate::tokens::Credential>,
    /// Lookup tokens obtained at once (1 to 64): unspent ones stay pooled.
    pub token_batch: usize,
    /// Mapping authorities trusted beside those the identifier's domain
    /// publishes (DESIGN §11): how phone-number authorities are trusted.
    pub authorities: Vec<mimi_proto::mapping::TrustedAuthority>,
    /// Show only accounts a trusted mapping authority signed.
    pub require_verified: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            dns: DnsMode::System,
            dns_timeout: Duration::from_secs(5),
            provider_timeout: Duration::from_secs(10),
            lookup_timeout: None,
            ca_roots: Vec::new(),
            trust_anchor: None,
            require_dnssec: false,
            concurrency: 8,
            local_address: None,
            key_check: KeyCheck::default(),
            max_providers: 16,
            credential: None,
            token_batch: 4,
            authorities: Vec::new(),
            require_verified: false,
        }
    }
}

/// One provider's part of a discovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderResult {
    /// The provider's label (`s=`), or its host when it has none.
    pub service: String,
    /// The provider's discovery host (`e=`).
    pub host: String,
    /// Its preference (`p=`).
    pub preference: u16,
    /// An account the user published openly in DNS (`a=`), not confirmed by the provider.
    pub dns_account: Option<String>,
    /// What the provider said.
    pub outcome: Outcome,
    /// How long step 2 took for this provider, in milliseconds.
    pub elapsed_ms: u64,
    /// How the provider's key was checked before use (`tunnel+shared`,
    /// `tunnel`, `direct+shared`, `direct`): the configured check, without
    /// `+shared` where the provider's relay keeps no shared copy.
    pub key_check: &'static str,
}

/// What one provider said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Accounts found (MIMI URIs).
    Found {
        /// The accounts shown as found: never an invalid one, and only
        /// verified ones when verification is required.
        accounts: Vec<String>,
        /// Every account the provider named, with the verdict on its signed
        /// mapping (DESIGN §11), in the provider's order.
        verification: Vec<AccountVerification>,
    },
    /// The provider has no searchable account for this identifier.
    NotFound,
    /// The provider could not be asked, or refused.
    Error {
        /// A sentence for the user.
        message: String,
        /// A stable code for programs (serialised as its text).
        code: ErrorCode,
    },
}

impl Outcome {
    /// The accounts shown as found (none unless [`Outcome::Found`]).
    pub fn accounts(&self) -> &[String] {
        match self {
            Self::Found { accounts, .. } => accounts,
            _ => &[],
        }
    }

    fn failed(e: &Error) -> Self {
        Self::Error {
            message: e.to_string(),
            code: e.code(),
        }
    }
}

/// The result of discovering one identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discovery {
    /// The normalised identifier.
    pub identifier: String,
    /// `handle`, `email` or `phone`.
    pub kind: String,
    /// The DNS name asked in step 1.
    pub dns_name: String,
    /// What DNSSEC says of the step 1 answer: `secure` or `insecure` (a
    /// `bogus` answer is an error, and nothing is sent).
    pub dnssec: Dnssec,
    /// The mapping authorities trusted for this identifier (DESIGN §11):
    /// its domain's, if published in a DNSSEC-secure answer, and the trust
    /// store's that cover it.
    pub authorities: Vec<String>,
    /// Each provider, in preference order.
    pub providers: Vec<ProviderResult>,
    /// Records that were skipped, and why.
    pub warnings: Vec<String>,
}

impl Discovery {
    /// Every account found, across providers.
    pub fn accounts(&self) -> impl Iterator<Item = &str> {
        self.providers
            .iter()
            .flat_map(|p| match &p.outcome {
                Outcome::Found { accounts, .. } => accounts.as_slice(),
                _ => &[],
            })
            .map(String::as_str)
    }
}

/// Discovers MIMI contacts privately. Cheap to share: clones use the same
/// caches.
pub struct Discoverer<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Discoverer<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<T> {
    session: Session<T>,
    step1: Step1,
    options: Options,
}

impl<T> std::fmt::Debug for Discoverer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discoverer")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl<T: Transport> Discoverer<T> {
    /// A discoverer sending step 2 through `transport`.
    pub fn new(transport: T, options: Options) -> Result<Self> {
        Ok(Self {
            inner: Arc::new(Inner {
                step1: Step1::new(
                    &options.dns,
                    options.dns_timeout,
                    options.local_address,
                    &options.ca_roots,
                    options.trust_anchor.as_deref(),
                )?,
                session: Session::new(transport, options.key_check).with_tokens(
                    crate::tokens::TokenPools::new(options.credential.clone(), options.token_batch),
                ),
                options,
            }),
        })
    }

    /// The options it was built with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// The session (confirmed keys by gateway).
    pub fn session(&self) -> &Session<T> {
        &self.inner.session
    }

    /// Discovers one identifier as a user typed it.
    pub async fn discover(&self, input: &str) -> Result<Discovery> {
        let id = Identifier::parse(input).map_err(Error::InvalidIdentifier)?;
        let name = id.dns_name();
        let inner = &self.inner;
        let deadline = inner.options.lookup_timeout.map(|t| Instant::now() + t);
        let budget = |step: Duration| match deadline {
            Some(d) => step.min(d.saturating_duration_since(Instant::now())),
            None => step,
        };
        // The authority keys are asked beside the MIMI records, for every
        // identifier (a phone number's answer is not used): the same
        // questions each time, and no extra round trip.
        let authority_name = id.authority_dns_name();
        let dns_budget = budget(inner.options.dns_timeout);
        let (records, authority_answer) = futures::join!(
            tokio::time::timeout(dns_budget, inner.step1.txt(&name, &inner.session)),
            tokio::time::timeout(dns_budget, inner.step1.txt(&authority_name, &inner.session)),
        );
        let (records, dnssec) = records.map_err(|_| Error::DnsTimeout)??;
        // A forged answer could send the identifier to an attacker's
        // provider: nothing goes anywhere unless the answer holds.
        match dnssec {
            Dnssec::Bogus => return Err(Error::DnsBogus),
            Dnssec::Insecure if inner.options.require_dnssec => return Err(Error::DnsInsecure),
            _ => {}
        }
        let mut warnings = Vec::new();
        let mut found = Vec::new();
        for record in &records {
            match MimiRecord::parse(record) {
                Ok(Some(r)) => found.push(r),
                Ok(None) => {}
                Err(e) => warnings.push(e.to_string()),
            }
        }
        if found.is_empty() {
            // Say why, when every MIMI record was broken.
            return if warnings.is_empty() {
                Err(Error::NoMimiRecord)
            } else {
                Err(Error::OnlyInvalidRecords(warnings.join("; ")))
            };
        }
        sort_by_preference(&mut found);
        // Every provider the person listed: a mapping may name any of them.
        let listed: Arc<Vec<String>> =
            Arc::new(found.iter().map(|r| r.endpoint.to_string()).collect());
        let trusted = Arc::new(trusted_keys(
            &id,
            &inner.options.authorities,
            authority_answer.unwrap_or(Err(Error::DnsTimeout)),
            &mut warnings,
        ));
        let authorities = {
            let mut names: Vec<String> = trusted.iter().map(|k| k.name.clone()).collect();
            names.sort_unstable();
            names.dedup();
            names
        };
        bound_providers(&mut found, inner.options.max_providers, &mut warnings);
        // One task per provider, so that their cryptography runs on every
        // core and a slow provider holds up no other. Each is aborted if this
        // lookup is dropped (a cancelled lookup leaves nothing running).
        let step2 = budget(inner.options.provider_timeout);
        let tasks = found.iter().cloned().map(|record| {
            let (inner, id) = (self.inner.clone(), id.clone());
            let mappings = Mappings {
                listed: listed.clone(),
                trusted: trusted.clone(),
            };
            tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
                inner.ask_provider(&id, &record, &mappings, step2).await
            }))
        });
        let finished = futures::future::join_all(tasks).await;
        let providers = finished
            .into_iter()
            .zip(&found)
            .map(|(result, record)| {
                // A task that died still gets its line: nothing is dropped.
                result.unwrap_or_else(|_| ProviderResult {
                    service: label(record),
                    host: record.endpoint.to_string(),
                    preference: record.preference,
                    dns_account: record.account.as_ref().map(ToString::to_string),
                    outcome: Outcome::Error {
                        message: "internal error".into(),
                        code: ErrorCode::Internal,
                    },
                    elapsed_ms: 0,
                    key_check: self
                        .inner
                        .session
                        .key_check_for(&record.endpoint.to_string())
                        .as_str(),
                })
            })
            .collect();
        Ok(Discovery {
            identifier: id.to_string(),
            kind: id.kind().to_owned(),
            dns_name: name,
            dnssec,
            authorities,
            providers,
            warnings,
        })
    }

    /// Discovers many identifiers, at most `options.concurrency` at a time;
    /// results arrive as they complete, each with its index in `inputs`.
    pub fn discover_many<'a>(
        &'a self,
        inputs: &'a [String],
    ) -> impl Stream<Item = (usize, Result<Discovery>)> + 'a {
        stream::iter(inputs.iter().enumerate())
            .map(move |(i, input)| async move { (i, self.discover(input).await) })
            .buffer_unordered(self.inner.options.concurrency.max(1))
    }
}

/// What a provider's accounts are judged against (DESIGN §11).
struct Mappings {
    /// The provider hosts the identifier's records list.
    listed: Arc<Vec<String>>,
    /// The authority keys trusted for the identifier.
    trusted: Arc<Vec<mimi_proto::mapping::AuthorityKey>>,
}

impl<T: Transport> Inner<T> {
    async fn ask_provider(
        &self,
        id: &Identifier,
        record: &MimiRecord,
        mappings: &Mappings,
        timeout: Duration,
    ) -> ProviderResult {
        let started = Instant::now();
        let host = record.endpoint.to_string();
        let key_check = self.session.key_check_for(&host).as_str();
        let asked = self.query(id, &host, mappings);
        let outcome = match tokio::time::timeout(timeout, asked).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => Outcome::failed(&e),
            Err(_) => Outcome::failed(&Error::Timeout),
        };
        ProviderResult {
            service: label(record),
            host,
            preference: record.preference,
            dns_account: record.account.as_ref().map(ToString::to_string),
            outcome,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            key_check,
        }
    }

    async fn query(&self, id: &Identifier, host: &str, mappings: &Mappings) -> Result<Outcome> {
        // The fixed path of DESIGN §5, never one a provider handed out: a
        // per-client path would tag every later query.
        let path = format!("{IDENTIFIER_QUERY_PREFIX}{host}");
        let body = IdentifierRequest::single(id.search_type(), &id.to_string())
            .to_bytes()
            .map_err(|_| Error::InvalidIdentifier(mimi_proto::Error::NameTooLong))?;
        let answer = self
            .session
            .request(
                host,
                InnerRequest {
                    method: "POST",
                    authority: host,
                    path: &path,
                    content_type: Some(MEDIA_OCTET_STREAM),
                    body: &body,
                },
            )
            .await?;
        if answer.status != 200 {
            return Err(Error::ProviderRefused(answer.status));
        }
        let response =
            IdentifierResponse::from_bytes(&answer.body).map_err(|_| Error::MalformedAnswer)?;
        match response.response_code {
            IdentifierQueryCode::Success => {
                let mut accounts = Vec::with_capacity(response.uri.len());
                for u in &response.uri {
                    // Only well-formed MIMI URIs reach the user.
                    let uri = MimiUri::parse(&u.uri).map_err(|_| Error::MalformedAnswer)?;
                    accounts.push(uri.to_string());
                }
                if accounts.is_empty() {
                    return Err(Error::MalformedAnswer);
                }
                let assertions = mimi_proto::mapping::assertions_in(&response)
                    .map_err(|_| Error::MalformedAnswer)?;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let verification = judge_accounts(
                    &id.to_string(),
                    accounts,
                    &assertions,
                    &mappings.listed,
                    &mappings.trusted,
                    now,
                );
                self.shown(verification)
            }
            IdentifierQueryCode::NotFound => Ok(Outcome::NotFound),
            IdentifierQueryCode::Ambiguous => Err(Error::Ambiguous),
            IdentifierQueryCode::Forbidden => Err(Error::Forbidden),
            IdentifierQueryCode::UnsupportedField => Err(Error::Unsupported),
        }
    }
}

impl<T> Inner<T> {
    /// The accounts shown as found: never an invalid one; with
    /// `require_verified`, only verified ones. A provider left with none
    /// gets an error saying why, and its verdicts are lost with it only in
    /// the outcome, never silently: the error carries the first reason.
    fn shown(&self, verification: Vec<AccountVerification>) -> Result<Outcome> {
        let require = self.options.require_verified;
        let accounts: Vec<String> = verification
            .iter()
            .filter(|v| match v.verification {
                Verification::Verified => true,
                Verification::Unverified => !require,
                Verification::Invalid => false,
            })
            .map(|v| v.account.clone())
            .collect();
        if accounts.is_empty() {
            let reason = |wanted: Verification| {
                verification
                    .iter()
                    .find(|v| v.verification == wanted)
                    .and_then(|v| v.reason.clone())
            };
            if let Some(why) = reason(Verification::Unverified) {
                return Err(Error::Unverified(why));
            }
            return Err(Error::InvalidMapping(
                reason(Verification::Invalid).unwrap_or_default(),
            ));
        }
        Ok(Outcome::Found {
            accounts,
            verification,
        })
    }
}

/// Bounded work (DESIGN §3): records naming the same host are merged (the
/// first, i.e. lowest `p`, wins), and at most `max` providers are asked; the
/// rest are reported as warnings. `found` is in preference order.
fn bound_providers(found: &mut Vec<MimiRecord>, max: usize, warnings: &mut Vec<String>) {
    let mut seen = HashSet::new();
    found.retain(|r| seen.insert(r.endpoint.to_string()));
    if found.len() > max {
        for r in found.drain(max..) {
            warnings.push(format!(
                "not asked: {} (only the first {max} providers are asked)",
                r.endpoint
            ));
        }
    }
}
