//! The provider's own discovery API, which identifierQuery and the
//! directory document are forwarded to in upstream mode.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use mimi_proto::oblivious::MEDIA_OCTET_STREAM;

use crate::error::{Error, Result};

use super::{MAX_UPSTREAM_BODY, TargetRequest, TargetResponse};

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

    pub(super) async fn forward(&self, req: &TargetRequest<'_>) -> Result<TargetResponse> {
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
