//! The relay's side towards gateways: one pooled HTTP client (HTTPS with
//! rustls, HTTP/2 when the gateway offers it; plain HTTP only to a URL
//! configured so), requests built from scratch so that nothing of the
//! client's request but its body and media type can leave.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use mimi_proto::oblivious::{MEDIA_OHTTP_KEYS, MEDIA_OHTTP_REQ};
use rustls_pki_types::CertificateDer;

use crate::error::{Error, Result};

/// The largest body taken from a gateway.
const MAX_RESPONSE: usize = 256 * 1024;

/// What came back from a gateway, reduced to what may be passed on.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// `Content-Type`, if the gateway sent one.
    pub content_type: Option<HeaderValue>,
    /// `Cache-Control`, if the gateway sent one.
    pub cache_control: Option<HeaderValue>,
    /// The body.
    pub body: Bytes,
}

/// A pooled client for talking to gateways.
#[derive(Clone)]
pub struct Upstream {
    client: mimi_server_core::tls::HttpsClient,
    timeout: Duration,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// A client trusting the webpki roots plus `extra_roots`; each exchange
    /// must finish within `timeout`; connections leave from `bind` if given.
    pub fn new(
        extra_roots: &[CertificateDer<'static>],
        timeout: Duration,
        bind: Option<std::net::IpAddr>,
    ) -> Result<Self> {
        Self::from_tls(
            mimi_server_core::tls::client_config(extra_roots)?,
            timeout,
            bind,
        )
    }

    /// A client like [`Upstream::new`] that presents the attester's client
    /// certificate (for token requests to issuers, DESIGN §10).
    pub fn with_identity(
        extra_roots: &[CertificateDer<'static>],
        timeout: Duration,
        bind: Option<std::net::IpAddr>,
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> Result<Self> {
        let tls = mimi_server_core::tls::client_config_with_identity(extra_roots, cert, key)?;
        Self::from_tls(tls, timeout, bind)
    }

    fn from_tls(
        tls: rustls::ClientConfig,
        timeout: Duration,
        bind: Option<std::net::IpAddr>,
    ) -> Result<Self> {
        // Idle connections are dropped below the gateway's idle timeouts
        // (HTTP/1.1: its header timeout, 10 s by default), so the relay never
        // sends a request into a connection the gateway is closing.
        let client = mimi_server_core::tls::https_client_from(
            tls,
            timeout,
            bind,
            Duration::from_secs(5),
            true,
        )?;
        Ok(Self { client, timeout })
    }

    /// Sends a fresh request: `body` (a `POST` with `content_type`) or a
    /// `GET` accepting `content_type`; nothing of a client's request.
    pub async fn send(
        &self,
        url: &http::Uri,
        content_type: &'static str,
        body: Option<Bytes>,
    ) -> Result<Answer> {
        let builder = Request::builder().uri(url.clone());
        let request = match body {
            Some(body) => builder
                .method(Method::POST)
                .header(CONTENT_TYPE, content_type)
                .body(Full::new(body)),
            None => builder
                .method(Method::GET)
                .header(ACCEPT, content_type)
                .body(Full::new(Bytes::new())),
        }
        .map_err(|_| Error::GatewayUnreachable)?;
        self.exchange(request).await
    }

    /// Forwards an encapsulated request: the body and its media type, nothing else.
    pub async fn post(&self, url: &http::Uri, body: Bytes) -> Result<Answer> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(url.clone())
            .header(CONTENT_TYPE, MEDIA_OHTTP_REQ)
            .body(Full::new(body))
            .map_err(|_| Error::GatewayUnreachable)?;
        self.exchange(request).await
    }

    /// Fetches the gateway's key configurations.
    pub async fn get_keys(&self, url: &http::Uri) -> Result<Answer> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(url.clone())
            .header(ACCEPT, MEDIA_OHTTP_KEYS)
            .body(Full::new(Bytes::new()))
            .map_err(|_| Error::GatewayUnreachable)?;
        self.exchange(request).await
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<Answer> {
        // For the operator: which gateway fails and how. Never the client.
        let gateway = request
            .uri()
            .authority()
            .map(ToString::to_string)
            .unwrap_or_default();
        let work = async {
            let resp = self.client.request(request).await.map_err(|e| {
                tracing::warn!(%gateway, error = %e, "gateway unreachable");
                Error::GatewayUnreachable
            })?;
            let status = resp.status();
            let content_type = resp.headers().get(CONTENT_TYPE).cloned();
            let cache_control = resp.headers().get(CACHE_CONTROL).cloned();
            let body = Limited::new(resp.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|_| {
                    tracing::warn!(%gateway, "gateway answer cut short or too large");
                    Error::GatewayBadAnswer
                })?
                .to_bytes();
            Ok(Answer {
                status,
                content_type,
                cache_control,
                body,
            })
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| {
                tracing::warn!(%gateway, "gateway timed out");
                Error::GatewayTimeout
            })?
    }
}
