//! How step 2 reaches gateways: the [`Transport`] trait (so that tests can
//! drive the protocol without sockets) and [`RelayTransport`], which talks to
//! an Oblivious HTTP relay at `<relay>/gateway/<host>`.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mimi_proto::oblivious::{MEDIA_OHTTP_KEYS, MEDIA_OHTTP_REQ, RELAY_PREFIX};
use rustls_pki_types::CertificateDer;

use crate::error::{Error, Result};

/// What the relay answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayAnswer {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
    /// Body.
    pub body: Bytes,
}

/// The two things step 2 asks of a relay.
pub trait Transport: Send + Sync + 'static {
    /// `GET /gateway/<gateway>`: the gateway's key configurations.
    fn get_keys(&self, gateway: &str) -> impl Future<Output = Result<RelayAnswer>> + Send;
    /// `POST /gateway/<gateway>` with an encapsulated request.
    fn post(
        &self,
        gateway: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<RelayAnswer>> + Send;
}

/// A relay reached over HTTPS (or HTTP when its URL says so).
#[derive(Clone)]
pub struct RelayTransport {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    timeout: Duration,
}

impl std::fmt::Debug for RelayTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayTransport")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// The largest answer accepted from the relay.
const MAX_ANSWER: usize = 256 * 1024;

impl RelayTransport {
    /// A transport to the relay at `base` (e.g. `https://relay.example`),
    /// trusting the webpki roots plus `extra_roots`.
    pub fn new(
        base: &str,
        extra_roots: &[CertificateDer<'static>],
        timeout: Duration,
    ) -> Result<Self> {
        Self::with_local_address(base, extra_roots, timeout, None)
    }

    /// As [`RelayTransport::new`], with connections leaving from `local`
    /// (for hosts with several addresses).
    pub fn with_local_address(
        base: &str,
        extra_roots: &[CertificateDer<'static>],
        timeout: Duration,
        local: Option<std::net::IpAddr>,
    ) -> Result<Self> {
        let uri: http::Uri = base
            .parse()
            .map_err(|_| Error::InvalidRelayUrl(base.to_owned()))?;
        let ok = matches!(uri.scheme_str(), Some("https" | "http"))
            && uri.host().is_some()
            && uri.query().is_none()
            && !base.contains('@');
        if !ok {
            return Err(Error::InvalidRelayUrl(base.to_owned()));
        }
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for c in extra_roots {
            roots
                .add(c.clone())
                .map_err(|e| Error::Config(format!("CA certificate: {e}")))?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        // Requests are small and latency-bound: no Nagle delay.
        http.set_nodelay(true);
        http.set_local_address(local);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http);
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            base: base.trim_end_matches('/').to_owned(),
            timeout,
        })
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<RelayAnswer> {
        let work = async {
            let resp = self
                .client
                .request(request)
                .await
                .map_err(|_| Error::RelayUnreachable)?;
            let header = |name| {
                resp.headers()
                    .get(name)
                    .and_then(|v: &http::HeaderValue| v.to_str().ok())
                    .map(str::to_owned)
            };
            let status = resp.status().as_u16();
            let content_type = header(CONTENT_TYPE);
            let cache_control = header(CACHE_CONTROL);
            let retry_after = header(RETRY_AFTER).and_then(|v| v.trim().parse().ok());
            let body = Limited::new(resp.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|_| Error::RelayUnreachable)?
                .to_bytes();
            Ok(RelayAnswer {
                status,
                content_type,
                cache_control,
                retry_after,
                body,
            })
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| Error::Timeout)?
    }

    fn url(&self, gateway: &str) -> String {
        format!("{}{RELAY_PREFIX}{gateway}", self.base)
    }
}

impl Transport for RelayTransport {
    async fn get_keys(&self, gateway: &str) -> Result<RelayAnswer> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(self.url(gateway))
            .header(ACCEPT, MEDIA_OHTTP_KEYS)
            .body(Full::new(Bytes::new()))
            .map_err(|_| Error::InvalidRelayUrl(self.base.clone()))?;
        self.exchange(req).await
    }

    async fn post(&self, gateway: &str, body: Vec<u8>) -> Result<RelayAnswer> {
        let req = Request::builder()
            .method(Method::POST)
            .uri(self.url(gateway))
            .header(CONTENT_TYPE, MEDIA_OHTTP_REQ)
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| Error::InvalidRelayUrl(self.base.clone()))?;
        self.exchange(req).await
    }
}
