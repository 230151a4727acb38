//! How step 2 reaches gateways: the [`Transport`] trait (so that tests can
//! drive the protocol without sockets) and [`RelayTransport`], which talks to
//! an Oblivious HTTP relay at `<relay>/gateway/<host>` and fetches gateways'
//! keys over TLS to the gateway itself, through the relay's `CONNECT`
//! (DESIGN §4.1, §6).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HOST, RETRY_AFTER};
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mimi_proto::oblivious::{GATEWAY_PATH, MEDIA_OHTTP_KEYS, MEDIA_OHTTP_REQ, RELAY_PREFIX};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpSocket, TcpStream};

use crate::error::{Error, Result};

/// What the relay (or a gateway, for keys) answered.
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

/// Where a gateway's key list comes from (DESIGN §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// Over TLS to the gateway itself, through the relay's `CONNECT`: the
    /// gateway sees only the relay, the relay sees only TLS records.
    Tunnel,
    /// Over TLS to the gateway itself, directly: the gateway sees the
    /// client's address (though never what it asks).
    Direct,
    /// The relay's shared cached copy, the same bytes for every client.
    Shared,
}

/// What step 2 asks of a relay.
pub trait Transport: Send + Sync + 'static {
    /// `gateway`'s key configurations, from `source`.
    fn fetch_keys(
        &self,
        gateway: &str,
        source: KeySource,
    ) -> impl Future<Output = Result<RelayAnswer>> + Send;
    /// `POST /gateway/<gateway>` with an encapsulated request.
    fn post(
        &self,
        gateway: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<RelayAnswer>> + Send;
}

/// A relay reached over HTTPS (or plain HTTP on a loopback address, for tests).
#[derive(Clone)]
pub struct RelayTransport {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    relay_host: String,
    relay_port: u16,
    relay_tls: Option<Arc<rustls::ClientConfig>>,
    gateway_tls: Arc<rustls::ClientConfig>,
    local: Option<IpAddr>,
    direct_addresses: HashMap<String, SocketAddr>,
    timeout: Duration,
}

impl std::fmt::Debug for RelayTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayTransport")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// The largest answer accepted from the relay or a gateway.
const MAX_ANSWER: usize = 256 * 1024;

/// Whether `host` (from a URL) is a loopback address or `localhost`.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_matches(['[', ']']);
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A rustls client configuration trusting the webpki roots plus `extra`,
/// offering only HTTP/1.1 when `http1_only`.
fn tls_config(extra: &[CertificateDer<'static>], http1_only: bool) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for c in extra {
        roots
            .add(c.clone())
            .map_err(|e| Error::Config(format!("CA certificate: {e}")))?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Config(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    if http1_only {
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
    }
    Ok(config)
}

impl RelayTransport {
    /// A transport to the relay at `base` (e.g. `https://relay.example`),
    /// trusting the webpki roots plus `extra_roots` for the relay and for
    /// gateways. `http://` is refused except on a loopback address.
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
        local: Option<IpAddr>,
    ) -> Result<Self> {
        let bad = || Error::InvalidRelayUrl(base.to_owned());
        let uri: http::Uri = base.parse().map_err(|_| bad())?;
        let host = uri.host().ok_or_else(bad)?.to_owned();
        let https = match uri.scheme_str() {
            Some("https") => true,
            // Anyone on the path could read and change plain HTTP: only a
            // relay on this machine (tests) may be reached that way.
            Some("http") if is_loopback(&host) => false,
            Some("http") => return Err(Error::InsecureRelay(base.to_owned())),
            _ => return Err(bad()),
        };
        if uri.query().is_some() || base.contains('@') {
            return Err(bad());
        }
        let relay_port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        // Requests are small and latency-bound: no Nagle delay.
        http.set_nodelay(true);
        http.set_local_address(local);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(extra_roots, false)?)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http);
        let mut gateway_tls = tls_config(extra_roots, true)?;
        // Nothing from one tunnel may come back in the next (DESIGN §4.1).
        gateway_tls.resumption = rustls::client::Resumption::disabled();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            base: base.trim_end_matches('/').to_owned(),
            relay_host: host.trim_matches(['[', ']']).to_owned(),
            relay_port,
            relay_tls: https
                .then(|| tls_config(extra_roots, true).map(Arc::new))
                .transpose()?,
            gateway_tls: Arc::new(gateway_tls),
            local,
            direct_addresses: HashMap::new(),
            timeout,
        })
    }

    /// For [`KeySource::Direct`]: reach gateway `host` (as named in DNS, with
    /// optional `:port`) at `addr` instead of resolving it (tests, split DNS).
    pub fn with_direct_address(mut self, host: &str, addr: SocketAddr) -> Self {
        self.direct_addresses
            .insert(host.to_ascii_lowercase(), addr);
        self
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<RelayAnswer> {
        let work = async {
            let resp = self
                .client
                .request(request)
                .await
                .map_err(|_| Error::RelayUnreachable)?;
            read_answer(resp, Error::RelayUnreachable).await
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| Error::Timeout)?
    }

    fn url(&self, gateway: &str) -> String {
        format!("{}{RELAY_PREFIX}{gateway}", self.base)
    }

    /// A TCP connection to `host:port` (an address or a name), from `local`.
    async fn connect_tcp(&self, host: &str, port: u16) -> std::io::Result<TcpStream> {
        let mut last = std::io::Error::other("no address");
        for addr in tokio::net::lookup_host((host, port)).await? {
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            if let Some(ip) = self.local.filter(|ip| ip.is_ipv4() == addr.is_ipv4()) {
                socket.bind((ip, 0).into())?;
            }
            match socket.connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// `CONNECT <gateway>` through the relay, then the key list over TLS to
    /// the gateway inside the tunnel.
    async fn tunnel_keys(&self, gateway: &str) -> Result<RelayAnswer> {
        let (host, port) = split_host_port(gateway)?;
        let tcp = self
            .connect_tcp(&self.relay_host, self.relay_port)
            .await
            .map_err(|_| Error::RelayUnreachable)?;
        let authority = format!("{host}:{port}");
        let connect = Request::builder()
            .method(Method::CONNECT)
            .uri(authority.as_str())
            .header(HOST, authority.as_str())
            .body(Empty::<Bytes>::new())
            .map_err(|_| Error::TunnelFailed("bad gateway name".into()))?;
        let resp = match &self.relay_tls {
            Some(config) => {
                let name = ServerName::try_from(self.relay_host.clone())
                    .map_err(|_| Error::InvalidRelayUrl(self.base.clone()))?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|_| Error::RelayUnreachable)?;
                send_connect(tls, connect).await?
            }
            None => send_connect(tcp, connect).await?,
        };
        match resp.status().as_u16() {
            200 => {}
            429 => {
                let retry = resp
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok());
                return Err(Error::RateLimited(retry.unwrap_or(1)));
            }
            s @ (502 | 504) => return Err(Error::GatewayUnreachable(s)),
            s => return Err(Error::TunnelRefused(s)),
        }
        let upgraded = hyper::upgrade::on(resp)
            .await
            .map_err(|_| Error::TunnelFailed("the relay did not open the tunnel".into()))?;
        self.keys_over_tls(TokioIo::new(upgraded), gateway, host)
            .await
    }

    /// The key list over TLS straight to the gateway.
    async fn direct_keys(&self, gateway: &str) -> Result<RelayAnswer> {
        let (host, port) = split_host_port(gateway)?;
        let tcp = match self.direct_addresses.get(&gateway.to_ascii_lowercase()) {
            Some(addr) => self.connect_tcp(&addr.ip().to_string(), addr.port()).await,
            None => self.connect_tcp(host, port).await,
        }
        .map_err(|e| Error::TunnelFailed(format!("cannot connect to the gateway: {e}")))?;
        self.keys_over_tls(tcp, gateway, host).await
    }

    /// `GET /.well-known/ohttp-gateway` over a fresh TLS session to `host`
    /// (its certificate checked against the configured roots) on `io`.
    async fn keys_over_tls<IO>(&self, io: IO, gateway: &str, host: &str) -> Result<RelayAnswer>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| Error::TunnelFailed("bad gateway name".into()))?;
        let tls = tokio_rustls::TlsConnector::from(self.gateway_tls.clone())
            .connect(name, io)
            .await
            .map_err(|e| Error::TunnelFailed(format!("TLS to the gateway failed: {e}")))?;
        let lost = || Error::TunnelFailed("the gateway closed the connection".into());
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|_| lost())?;
        tokio::spawn(conn);
        let req = Request::builder()
            .method(Method::GET)
            .uri(GATEWAY_PATH)
            .header(HOST, gateway)
            .header(ACCEPT, MEDIA_OHTTP_KEYS)
            .body(Empty::<Bytes>::new())
            .map_err(|_| Error::TunnelFailed("bad gateway name".into()))?;
        let resp = send.send_request(req).await.map_err(|_| lost())?;
        read_answer(resp, lost()).await
    }
}

/// Sends a `CONNECT` on a fresh HTTP/1.1 connection to the relay.
async fn send_connect<IO>(io: IO, connect: Request<Empty<Bytes>>) -> Result<Response<Incoming>>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|_| Error::RelayUnreachable)?;
    tokio::spawn(conn.with_upgrades());
    send.send_request(connect)
        .await
        .map_err(|_| Error::RelayUnreachable)
}

/// `host` and `port` (443 when absent) of a gateway named as in DNS.
fn split_host_port(gateway: &str) -> Result<(&str, u16)> {
    match gateway.rsplit_once(':') {
        Some((host, port)) => port
            .parse()
            .map(|p| (host, p))
            .map_err(|_| Error::TunnelFailed("bad gateway port".into())),
        None => Ok((gateway, 443)),
    }
}

/// Reads status, the headers we use, and a bounded body; `lost` if the body
/// cannot be read.
async fn read_answer(resp: Response<Incoming>, lost: Error) -> Result<RelayAnswer> {
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
        .map_err(|_| lost)?
        .to_bytes();
    Ok(RelayAnswer {
        status,
        content_type,
        cache_control,
        retry_after,
        body,
    })
}

impl Transport for RelayTransport {
    async fn fetch_keys(&self, gateway: &str, source: KeySource) -> Result<RelayAnswer> {
        match source {
            KeySource::Shared => {
                let req = Request::builder()
                    .method(Method::GET)
                    .uri(self.url(gateway))
                    .header(ACCEPT, MEDIA_OHTTP_KEYS)
                    .body(Full::new(Bytes::new()))
                    .map_err(|_| Error::InvalidRelayUrl(self.base.clone()))?;
                self.exchange(req).await
            }
            KeySource::Tunnel => tokio::time::timeout(self.timeout, self.tunnel_keys(gateway))
                .await
                .map_err(|_| Error::Timeout)?,
            KeySource::Direct => tokio::time::timeout(self.timeout, self.direct_keys(gateway))
                .await
                .map_err(|_| Error::Timeout)?,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        let t = Duration::from_secs(1);
        for ok in [
            "https://relay.example",
            "http://127.0.0.3:8080",
            "http://[::1]:8080",
            "http://localhost:1",
        ] {
            assert!(RelayTransport::new(ok, &[], t).is_ok(), "{ok}");
        }
        for insecure in ["http://relay.example", "http://10.0.0.1:80"] {
            assert!(
                matches!(
                    RelayTransport::new(insecure, &[], t),
                    Err(Error::InsecureRelay(_))
                ),
                "{insecure}"
            );
        }
        for bad in [
            "ftp://relay.example",
            "relay.example",
            "https://u@relay.example",
        ] {
            assert!(
                matches!(
                    RelayTransport::new(bad, &[], t),
                    Err(Error::InvalidRelayUrl(_))
                ),
                "{bad}"
            );
        }
    }
}
