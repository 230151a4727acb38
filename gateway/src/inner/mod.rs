//! What the gateway does with a decrypted request: the target resources behind
//! it (DESIGN §5, §7). The embedded directory answers identifierQuery itself
//! ([`mod@identifier_query`]); in upstream mode the two MIMI resources are
//! forwarded to the provider's own API ([`upstream`]); `/dns-query` goes to a
//! DNS resolver when one is configured ([`dns_forwarder`]). This file routes.

pub mod dns_forwarder;
pub mod identifier_query;
pub mod upstream;

use std::sync::Arc;

use mimi_proto::directory::DirectoryDocument;
use mimi_proto::oblivious::{DIRECTORY_PATH, DNS_QUERY_PATH, IDENTIFIER_QUERY_PREFIX, MEDIA_JSON};
use mimi_proto::query::MAX_ACCOUNTS_PER_IDENTIFIER;

use crate::directory::Directory;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
pub use dns_forwarder::DnsForwarder;
use identifier_query::cap_upstream_answer;
pub use identifier_query::identifier_query;
pub use upstream::UpstreamApi;

/// The largest answer taken from an upstream API or resolver.
const MAX_UPSTREAM_BODY: usize = 64 * 1024;

/// A decrypted request, reduced to what the targets need.
#[derive(Debug)]
pub struct TargetRequest<'a> {
    /// The method.
    pub method: &'a [u8],
    /// The path.
    pub path: &'a str,
    /// The `content-type` header, if any.
    pub content_type: Option<&'a [u8]>,
    /// The body.
    pub body: &'a [u8],
}

/// A target's answer, to be encoded as Binary HTTP and encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetResponse {
    /// The status code.
    pub status: u16,
    /// The `content-type`.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// Where identifierQuery and the directory document are answered.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The embedded SQLite directory.
    Embedded(Arc<Directory>),
    /// The provider's own discovery API.
    Upstream(Box<UpstreamApi>),
}

/// Routes a decrypted request to its target.
pub async fn answer(
    req: &TargetRequest<'_>,
    backend: &Backend,
    dns: Option<&DnsForwarder>,
    public_host: &str,
    metrics: &Metrics,
) -> Result<TargetResponse> {
    let is = |m: &[u8]| req.method == m;
    if req.path == DIRECTORY_PATH {
        if !is(b"GET") {
            return Err(Error::InnerMethodNotAllowed);
        }
        return match backend {
            Backend::Embedded(_) => Ok(TargetResponse {
                status: 200,
                content_type: MEDIA_JSON.into(),
                body: DirectoryDocument::for_host(public_host).to_json(),
            }),
            Backend::Upstream(up) => up.forward(req).await,
        };
    }
    if let Some(domain) = req.path.strip_prefix(IDENTIFIER_QUERY_PREFIX) {
        if domain.is_empty() || domain.contains('/') {
            return Err(Error::InnerNotFound);
        }
        if !is(b"POST") {
            return Err(Error::InnerMethodNotAllowed);
        }
        let (answer, capped) = match backend {
            Backend::Embedded(dir) => identifier_query(dir, req.body).await?,
            Backend::Upstream(up) => cap_upstream_answer(up.forward(req).await?),
        };
        if capped {
            // Said here and in the metrics, never on the wire: a longer answer
            // would leave the padding bucket (DESIGN §4).
            tracing::warn!(
                max = MAX_ACCOUNTS_PER_IDENTIFIER,
                "an identifier has more accounts than are sent; the answer was cut"
            );
            metrics.accounts_capped();
        }
        return Ok(answer);
    }
    if req.path == DNS_QUERY_PATH {
        let Some(dns) = dns else {
            return Err(Error::InnerNotFound);
        };
        if !is(b"POST") {
            return Err(Error::InnerMethodNotAllowed);
        }
        return dns.resolve(req.body).await;
    }
    Err(Error::InnerNotFound)
}
