//! TLS with rustls: the listener's server configuration, and the client
//! configuration used towards an upstream discovery API.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};

pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server configuration from PEM files (certificate chain, private key),
/// offering HTTP/2 and HTTP/1.1.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>> {
    server_config_with_clients(cert, key, None)
}

/// Like [`server_config`], asking clients for a certificate that `clients`
/// checks (and accepting clients without one) when given.
pub fn server_config_with_clients(
    cert: &Path,
    key: &Path,
    clients: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
) -> Result<Arc<rustls::ServerConfig>> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Error::Tls(format!("certificate {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!("no certificate in {}", cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| Error::Tls(format!("key {}: {e}", key.display())))?;
    match clients {
        None => server_config_from(certs, key),
        Some(verifier) => {
            let mut config = rustls::ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| Error::Tls(e.to_string()))?
                .with_client_cert_verifier(verifier)
                .with_single_cert(certs, key)
                .map_err(|e| Error::Tls(e.to_string()))?;
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            Ok(Arc::new(config))
        }
    }
}

/// A server configuration from DER values.
pub fn server_config_from(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Reads extra trust anchors from a PEM file.
pub fn load_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Error::Tls(format!("CA file {}: {e}", path.display())))
}

/// A client configuration trusting the webpki roots plus `extra`, that
/// authenticates with the certificate chain and key in these PEM files.
pub fn client_config_with_identity(
    extra: &[CertificateDer<'static>],
    cert: &Path,
    key: &Path,
) -> Result<rustls::ClientConfig> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Error::Tls(format!("certificate {}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| Error::Tls(format!("key {}: {e}", key.display())))?;
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots_with(extra)?)
        .with_client_auth_cert(certs, key)
        .map_err(|e| Error::Tls(e.to_string()))
}

fn roots_with(extra: &[CertificateDer<'static>]) -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in extra {
        roots
            .add(cert.clone())
            .map_err(|e| Error::Tls(e.to_string()))?;
    }
    Ok(roots)
}

/// A client configuration trusting the webpki roots plus `extra`.
pub fn client_config(extra: &[CertificateDer<'static>]) -> Result<rustls::ClientConfig> {
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots_with(extra)?)
        .with_no_client_auth())
}

/// The HTTPS client a server uses towards what stands behind it (the relay
/// towards gateways, a gateway towards its discovery API).
pub type HttpsClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

/// A pooled HTTPS (and plain HTTP) client trusting the webpki roots plus
/// `extra_roots`: connections time out after `connect_timeout`, leave from
/// `bind` when given, and are dropped after `pool_idle` unused. HTTP/2 is
/// offered only when `http2`.
pub fn https_client(
    extra_roots: &[CertificateDer<'static>],
    connect_timeout: std::time::Duration,
    bind: Option<std::net::IpAddr>,
    pool_idle: std::time::Duration,
    http2: bool,
) -> Result<HttpsClient> {
    https_client_from(
        client_config(extra_roots)?,
        connect_timeout,
        bind,
        pool_idle,
        http2,
    )
}

/// Like [`https_client`], with a TLS configuration of the caller's (one
/// with a client certificate, say).
pub fn https_client_from(
    tls: rustls::ClientConfig,
    connect_timeout: std::time::Duration,
    bind: Option<std::net::IpAddr>,
    pool_idle: std::time::Duration,
    http2: bool,
) -> Result<HttpsClient> {
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_local_address(bind);
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    let connector = if http2 {
        builder.enable_all_versions().wrap_connector(http)
    } else {
        builder.enable_http1().wrap_connector(http)
    };
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(pool_idle)
            .build(connector),
    )
}
