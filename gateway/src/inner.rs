//! What the gateway does with a decrypted request: the target resources behind
//! it (DESIGN §5, §7). The embedded directory answers identifierQuery itself;
//! in upstream mode the two MIMI resources are forwarded to the provider's own
//! API; `/dns-query` goes to a DNS resolver when one is configured.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use mimi_proto::codec::Codec;
use mimi_proto::directory::DirectoryDocument;
use mimi_proto::mapping::{ASSERTIONS_COMPONENT_ID, assertions_in, attach_assertions};
use mimi_proto::oblivious::{
    DIRECTORY_PATH, DNS_QUERY_PATH, IDENTIFIER_QUERY_PREFIX, MEDIA_DNS_MESSAGE, MEDIA_JSON,
    MEDIA_OCTET_STREAM,
};
use mimi_proto::query::{IdentifierUri, MAX_ACCOUNTS_PER_IDENTIFIER, UserProfile};
use mimi_proto::{
    Identifier, IdentifierQueryCode, IdentifierRequest, IdentifierResponse, SearchIdentifierType,
};

use crate::directory::{Directory, Found};
use crate::error::{Error, Result};
use crate::metrics::Metrics;

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

/// The provider's discovery API at a base URL (HTTP/1.1 or HTTPS, pooled).
#[derive(Clone)]
pub struct UpstreamApi {
    client: mimi_server_core::tls::HttpsClient,
    base: String,
    timeout: Duration,
}

impl std::fmt::Debug for UpstreamApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamApi")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl UpstreamApi {
    /// A client for `base` (`http://` or `https://`, no trailing slash needed),
    /// trusting the webpki roots plus `extra_roots`.
    pub fn new(
        base: &str,
        timeout: Duration,
        extra_roots: &[rustls_pki_types::CertificateDer<'static>],
    ) -> Result<Self> {
        let uri: http::Uri = base
            .parse()
            .map_err(|_| Error::Config(format!("upstream URL {base:?} is not a URL")))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(Error::Config(format!(
                "upstream URL {base:?} must be http:// or https:// with a host"
            )));
        }
        let client = mimi_server_core::tls::https_client(
            extra_roots,
            timeout,
            None,
            Duration::from_secs(60),
            false,
        )?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            timeout,
        })
    }

    /// Whether the discovery API answers at all (for `mimi-gateway check`):
    /// a `GET` of its base URL, whose HTTP status, whatever it is, is returned.
    pub async fn probe(&self) -> Result<u16> {
        let request = http::Request::get(self.base.as_str())
            .body(Full::new(Bytes::new()))
            .map_err(|_| Error::UpstreamUnavailable)?;
        let resp = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| Error::UpstreamTimeout)?
            .map_err(|_| Error::UpstreamUnavailable)?;
        Ok(resp.status().as_u16())
    }

    async fn forward(&self, req: &TargetRequest<'_>) -> Result<TargetResponse> {
        let method = http::Method::from_bytes(req.method).map_err(|_| Error::InnerMalformed)?;
        let mut builder = http::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, req.path));
        if let Some(ct) = req.content_type {
            builder = builder.header(http::header::CONTENT_TYPE, ct);
        }
        let request = builder
            .body(Full::new(Bytes::copy_from_slice(req.body)))
            .map_err(|_| Error::InnerMalformed)?;
        let exchange = async {
            let resp = self.client.request(request).await.map_err(|e| {
                // For the operator; the request itself is never logged.
                tracing::warn!(error = %e, "discovery API unreachable");
                Error::UpstreamUnavailable
            })?;
            let status = resp.status().as_u16();
            let content_type = resp
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(MEDIA_OCTET_STREAM)
                .to_owned();
            let body = Limited::new(resp.into_body(), MAX_UPSTREAM_BODY)
                .collect()
                .await
                .map_err(|_| Error::UpstreamUnavailable)?
                .to_bytes()
                .to_vec();
            Ok(TargetResponse {
                status,
                content_type,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Error::UpstreamTimeout)?
    }
}

/// A DNS resolver that `/dns-query` forwards to: UDP, then TCP when the
/// answer is truncated.
///
/// Queries go out with a random ID of the gateway's choosing, and only an
/// answer with that ID and the same question is taken (anything else on the
/// socket is dropped), so an off-path attacker must guess both the port and
/// the ID. The client gets the answer with its own ID back (0, as RFC 8484
/// §4.1 recommends).
#[derive(Debug, Clone)]
pub struct DnsForwarder {
    /// The resolver's address.
    pub addr: SocketAddr,
    /// How long to wait for its answer.
    pub timeout: Duration,
    /// The local address queries leave from (default: any).
    pub bind: Option<std::net::IpAddr>,
}

/// Whether `answer` is the response to the query with `id` and `questions`.
fn answers(answer: &[u8], id: u16, questions: &[hickory_proto::op::Query]) -> Option<bool> {
    let m = hickory_proto::op::Message::from_vec(answer).ok()?;
    let ours = m.id() == id
        && m.message_type() == hickory_proto::op::MessageType::Response
        && m.queries() == questions;
    ours.then(|| m.truncated())
}

impl DnsForwarder {
    async fn resolve(&self, query: &[u8]) -> Result<TargetResponse> {
        let parsed =
            hickory_proto::op::Message::from_vec(query).map_err(|_| Error::MalformedQuery)?;
        if parsed.message_type() != hickory_proto::op::MessageType::Query
            || parsed.queries().is_empty()
        {
            return Err(Error::MalformedQuery);
        }
        // The ID is the first two bytes of the header: patched in place, so
        // that nothing else of the client's query or the answer is re-encoded.
        let id: u16 = rand::random();
        let mut outgoing = query.to_vec();
        outgoing[..2].copy_from_slice(&id.to_be_bytes());
        let mut answer =
            tokio::time::timeout(self.timeout, self.exchange(&outgoing, id, parsed.queries()))
                .await
                .map_err(|_| Error::UpstreamTimeout)??;
        answer[..2].copy_from_slice(&parsed.id().to_be_bytes());
        Ok(TargetResponse {
            status: 200,
            content_type: MEDIA_DNS_MESSAGE.into(),
            body: answer,
        })
    }

    async fn exchange(
        &self,
        query: &[u8],
        id: u16,
        questions: &[hickory_proto::op::Query],
    ) -> Result<Vec<u8>> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let bind: SocketAddr = match self.bind {
            Some(ip) => (ip, 0).into(),
            None if self.addr.is_ipv4() => ([0, 0, 0, 0], 0).into(),
            None => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let unavailable = |_| Error::UpstreamUnavailable;
        let socket = tokio::net::UdpSocket::bind(bind)
            .await
            .map_err(unavailable)?;
        socket.connect(self.addr).await.map_err(unavailable)?;
        socket.send(query).await.map_err(unavailable)?;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = socket.recv(&mut buf).await.map_err(unavailable)?;
            match answers(&buf[..n], id, questions) {
                Some(false) => return Ok(buf[..n].to_vec()),
                Some(true) => break,
                // Not the answer to this query (spoofed or stray): dropped.
                None => continue,
            }
        }
        // Truncated: ask again over TCP.
        let socket = if self.addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .map_err(unavailable)?;
        if self.bind.is_some() {
            socket.bind(bind).map_err(unavailable)?;
        }
        let mut tcp = socket.connect(self.addr).await.map_err(unavailable)?;
        let len = u16::try_from(query.len()).map_err(|_| Error::MalformedQuery)?;
        tcp.write_all(&len.to_be_bytes())
            .await
            .map_err(unavailable)?;
        tcp.write_all(query).await.map_err(unavailable)?;
        let n = usize::from(tcp.read_u16().await.map_err(unavailable)?);
        let mut answer = vec![0u8; n];
        tcp.read_exact(&mut answer).await.map_err(unavailable)?;
        match answers(&answer, id, questions) {
            Some(_) => Ok(answer),
            None => Err(Error::UpstreamUnavailable),
        }
    }
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

/// The embedded identifierQuery: one query element of type handle, email or
/// phone; anything else is `unsupportedField`. Absent and not searchable give
/// the same `notFound`. The flag says whether the accounts were cut to
/// [`MAX_ACCOUNTS_PER_IDENTIFIER`].
pub async fn identifier_query(dir: &Directory, body: &[u8]) -> Result<(TargetResponse, bool)> {
    let request = IdentifierRequest::from_bytes(body).map_err(|_| Error::MalformedQuery)?;
    let mut capped = false;
    let response = match request.query_elements.as_slice() {
        [] => return Err(Error::MalformedQuery),
        [element] => {
            let supported = matches!(
                element.search_type,
                SearchIdentifierType::Handle
                    | SearchIdentifierType::Email
                    | SearchIdentifierType::Phone
            );
            if supported {
                let value = std::str::from_utf8(&element.search_value)
                    .map_err(|_| Error::MalformedQuery)?;
                let id = Identifier::parse(value).map_err(|_| Error::MalformedQuery)?;
                if id.search_type() != element.search_type {
                    return Err(Error::MalformedQuery);
                }
                let mut accounts = dir.lookup(id.search_type(), &id.to_string()).await?;
                capped = accounts.len() > MAX_ACCOUNTS_PER_IDENTIFIER;
                accounts.truncate(MAX_ACCOUNTS_PER_IDENTIFIER);
                found(accounts)?
            } else {
                IdentifierResponse::with_code(IdentifierQueryCode::UnsupportedField)
            }
        }
        _ => IdentifierResponse::with_code(IdentifierQueryCode::UnsupportedField),
    };
    Ok((
        TargetResponse {
            status: 200,
            content_type: MEDIA_OCTET_STREAM.into(),
            body: response.to_bytes().map_err(|_| Error::Internal)?,
        },
        capped,
    ))
}

/// Cuts an answer to [`MAX_ACCOUNTS_PER_IDENTIFIER`] accounts (and as many
/// profiles, and the assertions of the accounts kept); says whether it had
/// more.
fn cap_accounts(mut response: IdentifierResponse) -> (IdentifierResponse, bool) {
    let capped = response.uri.len() > MAX_ACCOUNTS_PER_IDENTIFIER
        || response.found_profiles.len() > MAX_ACCOUNTS_PER_IDENTIFIER;
    if !capped {
        return (response, false);
    }
    // Assertions that do not decode pass as they came: the client judges them.
    let assertions = assertions_in(&response).ok();
    response.uri.truncate(MAX_ACCOUNTS_PER_IDENTIFIER);
    response
        .found_profiles
        .truncate(MAX_ACCOUNTS_PER_IDENTIFIER);
    if let Some(mut kept) = assertions {
        kept.truncate(response.uri.len());
        response
            .id_response_extensions
            .component_data
            .retain(|c| c.component_id != ASSERTIONS_COMPONENT_ID);
        let slots: Vec<Option<&[u8]>> = kept.iter().map(Option::as_deref).collect();
        // The counts match by construction.
        let _ = attach_assertions(&mut response, &slots);
    }
    (response, true)
}

/// The provider's own API may hold more accounts for an identifier than a
/// client is sent: a successful answer that decodes is cut like the embedded
/// directory's; anything else passes as it came.
fn cap_upstream_answer(answer: TargetResponse) -> (TargetResponse, bool) {
    if answer.status != 200 {
        return (answer, false);
    }
    let Ok(response) = IdentifierResponse::from_bytes(&answer.body) else {
        return (answer, false);
    };
    match cap_accounts(response) {
        (cut, true) => match cut.to_bytes() {
            Ok(body) => (TargetResponse { body, ..answer }, true),
            Err(_) => (answer, false),
        },
        (_, false) => (answer, false),
    }
}

/// The answer for the accounts found, each with the assertion the directory
/// holds for it (DESIGN §11), padded later like every other answer.
fn found(accounts: Vec<Found>) -> Result<IdentifierResponse> {
    if accounts.is_empty() {
        return Ok(IdentifierResponse::with_code(IdentifierQueryCode::NotFound));
    }
    let uris: Vec<IdentifierUri> = accounts
        .iter()
        .map(|f| IdentifierUri {
            uri: f.account.clone(),
        })
        .collect();
    let mut response = IdentifierResponse {
        response_code: IdentifierQueryCode::Success,
        found_profiles: uris
            .iter()
            .map(|u| UserProfile {
                stable_uri: u.clone(),
                fields: Vec::new(),
            })
            .collect(),
        uri: uris,
        id_response_extensions: Default::default(),
    };
    let assertions: Vec<Option<&[u8]>> = accounts.iter().map(|f| f.assertion.as_deref()).collect();
    attach_assertions(&mut response, &assertions).map_err(|_| Error::Internal)?;
    Ok(response)
}
