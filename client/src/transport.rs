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
use http::header::{ACCEPT, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HOST, RETRY_AFTER};
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mimi_proto::oblivious::{GATEWAY_PATH, MEDIA_OHTTP_KEYS, MEDIA_OHTTP_REQ, RELAY_PREFIX};
use mimi_proto::privacypass::{ATTESTER_PREFIX, ISSUER_DIRECTORY_PATH, MEDIA_ISSUER_DIRECTORY};
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

/// Whether a `Content-Type` value names `media`.
pub(crate) fn media_is(value: Option<&str>, media: &str) -> bool {
    value.is_some_and(|v| mimi_proto::oblivious::media_type_is(v, media))
}

/// Maps a relay status that is not success to what it means for the user.
pub(crate) fn relay_error(answer: &RelayAnswer) -> Error {
    match answer.status {
        429 => Error::RateLimited(answer.retry_after.unwrap_or(1)),
        404 => Error::UnknownGateway,
        502 | 504 => Error::GatewayUnreachable(answer.status),
        422 => Error::KeyMismatch,
        s => Error::RelayRefused(s),
    }
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
    /// `POST` an encapsulated request to the relay resource for `gateway`.
    fn post(
        &self,
        gateway: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<RelayAnswer>> + Send;
    /// Whether the relay for `gateway` keeps a shared copy of its keys
    /// ([`KeySource::Shared`]); relays with one resource per gateway serve
    /// keys only through `CONNECT`.
    fn serves_shared_keys(&self, gateway: &str) -> bool {
        let _ = gateway;
        true
    }
    /// `gateway`'s issuer directory (DESIGN §10), from `source`: over TLS to
    /// the gateway, or the relay's shared copy at `/issuer/<host>`.
    fn fetch_issuer_directory(
        &self,
        gateway: &str,
        source: KeySource,
    ) -> impl Future<Output = Result<RelayAnswer>> + Send {
        let _ = (gateway, source);
        async { Err(Error::IssuerUnavailable("no attester on this path".into())) }
    }
    /// Token requests (`body`, of media type `media`) for `gateway`'s issuer,
    /// through the relay's attester, with the client's bearer credential.
    fn request_tokens(
        &self,
        gateway: &str,
        media: &'static str,
        body: Vec<u8>,
        credential: Option<&str>,
    ) -> impl Future<Output = Result<RelayAnswer>> + Send {
        let _ = (gateway, media, body, credential);
        async { Err(Error::IssuerUnavailable("no attester on this path".into())) }
    }
}

/// The placeholder for the gateway host in a relay URI template.
pub const GATEWAY_PLACEHOLDER: &str = "{gateway}";

/// Where one gateway's requests go: a relay resource (a URI template with
/// [`GATEWAY_PLACEHOLDER`], or a fixed URL) and that relay's origin, which
/// `CONNECT` goes to.
#[derive(Clone)]
struct RelayRoute {
    template: String,
    host: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// Our layout (`…/gateway/<host>`): the same resource serves a shared key copy.
    shared_keys: bool,
}

impl RelayRoute {
    /// Parses a relay URL: unless `fixed`, a bare origin means
    /// `<origin>/gateway/{gateway}`. `http://` only to a loopback address.
    fn parse(url: &str, relay_tls: &Arc<rustls::ClientConfig>, fixed: bool) -> Result<Self> {
        let bad = || Error::InvalidRelayUrl(url.to_owned());
        let template = if fixed || url.contains(GATEWAY_PLACEHOLDER) {
            url.to_owned()
        } else {
            let origin_only = url
                .split_once("://")
                .is_some_and(|(_, rest)| !rest.trim_end_matches('/').contains('/'));
            if origin_only {
                format!(
                    "{}{RELAY_PREFIX}{GATEWAY_PLACEHOLDER}",
                    url.trim_end_matches('/')
                )
            } else {
                url.to_owned()
            }
        };
        let uri: http::Uri = template
            .replace(GATEWAY_PLACEHOLDER, "gateway.example")
            .parse()
            .map_err(|_| bad())?;
        let host = uri
            .host()
            .ok_or_else(bad)?
            .trim_matches(['[', ']'])
            .to_owned();
        let https = match uri.scheme_str() {
            Some("https") => true,
            // Anyone on the path could read and change plain HTTP: only a
            // relay on this machine (tests) may be reached that way.
            Some("http") if is_loopback(&host) => false,
            Some("http") => return Err(Error::InsecureRelay(url.to_owned())),
            _ => return Err(bad()),
        };
        if uri.query().is_some() || url.contains('@') {
            return Err(bad());
        }
        let shared_keys = template.ends_with(&format!("{RELAY_PREFIX}{GATEWAY_PLACEHOLDER}"));
        Ok(Self {
            port: uri.port_u16().unwrap_or(if https { 443 } else { 80 }),
            host,
            tls: https.then(|| relay_tls.clone()),
            template,
            shared_keys,
        })
    }

    fn url(&self, gateway: &str) -> String {
        self.template.replace(GATEWAY_PLACEHOLDER, gateway)
    }

    /// Our layout's attester resource for `gateway`'s issuer:
    /// `<origin>/issuer/<host>` beside `<origin>/gateway/<host>`.
    fn issuer_url(&self, gateway: &str) -> Option<String> {
        let base = self
            .template
            .strip_suffix(&format!("{RELAY_PREFIX}{GATEWAY_PLACEHOLDER}"))?;
        Some(format!("{base}{ATTESTER_PREFIX}{gateway}"))
    }
}

/// Relays reached over HTTPS (or plain HTTP on a loopback address, for
/// tests): one for every gateway, or one per gateway (DESIGN §6).
#[derive(Clone)]
pub struct RelayTransport {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    default: RelayRoute,
    per_gateway: HashMap<String, RelayRoute>,
    relay_tls: Arc<rustls::ClientConfig>,
    gateway_tls: Arc<rustls::ClientConfig>,
    local: Option<IpAddr>,
    direct_addresses: HashMap<String, SocketAddr>,
    timeout: Duration,
}

impl std::fmt::Debug for RelayTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayTransport")
            .field("relay", &self.default.template)
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

/// The certificates in PEM text (`source` names it in errors), for the
/// extra CA roots: at least one.
pub fn certificates_from_pem(pem: &[u8], source: &str) -> Result<Vec<CertificateDer<'static>>> {
    use rustls_pki_types::pem::PemObject;
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Config(format!("{source}: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Config(format!("{source}: no certificate in it")));
    }
    Ok(certs)
}

/// A rustls client configuration trusting the webpki roots plus `extra`,
/// offering only HTTP/1.1 when `http1_only`.
pub(crate) fn tls_config(
    extra: &[CertificateDer<'static>],
    http1_only: bool,
) -> Result<rustls::ClientConfig> {
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
    /// A transport to the relay at `relay`: a bare origin
    /// (`https://relay.example`, meaning `<origin>/gateway/{gateway}`) or a
    /// URI template with `{gateway}`. It trusts the webpki roots plus
    /// `extra_roots`, for the relay and for gateways. `http://` is refused
    /// except on a loopback address.
    pub fn new(
        relay: &str,
        extra_roots: &[CertificateDer<'static>],
        timeout: Duration,
    ) -> Result<Self> {
        Self::with_local_address(relay, extra_roots, timeout, None)
    }

    /// As [`RelayTransport::new`], with connections leaving from `local`
    /// (for hosts with several addresses).
    pub fn with_local_address(
        relay: &str,
        extra_roots: &[CertificateDer<'static>],
        timeout: Duration,
        local: Option<IpAddr>,
    ) -> Result<Self> {
        let relay_tls = Arc::new(tls_config(extra_roots, true)?);
        let default = RelayRoute::parse(relay, &relay_tls, false)?;
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
            default,
            per_gateway: HashMap::new(),
            relay_tls,
            gateway_tls: Arc::new(gateway_tls),
            local,
            direct_addresses: HashMap::new(),
            timeout,
        })
    }

    /// Sends `gateway`'s requests to the relay resource at `url` instead (a
    /// relay with one resource per gateway, which forwards `POST` there and
    /// serves keys only through `CONNECT` to its origin).
    pub fn with_relay_for(mut self, gateway: &str, url: &str) -> Result<Self> {
        let route = RelayRoute::parse(url, &self.relay_tls, true)?;
        self.per_gateway.insert(gateway.to_ascii_lowercase(), route);
        Ok(self)
    }

    fn route(&self, gateway: &str) -> &RelayRoute {
        self.per_gateway
            .get(&gateway.to_ascii_lowercase())
            .unwrap_or(&self.default)
    }

    /// For [`KeySource::Direct`]: reach gateway `host` (as named in DNS, with
    /// optional `:port`) at `addr` instead of resolving it (tests, split DNS).
    pub fn with_direct_address(mut self, host: &str, addr: SocketAddr) -> Self {
        self.direct_addresses
            .insert(host.to_ascii_lowercase(), addr);
        self
    }

    /// The attester resource for `gateway`'s issuer at its relay.
    fn issuer_url(&self, gateway: &str) -> Result<String> {
        self.route(gateway).issuer_url(gateway).ok_or_else(|| {
            Error::IssuerUnavailable("the relay for this provider is not an attester".into())
        })
    }

    /// `GET path` over TLS to the gateway itself: through the relay's
    /// `CONNECT` or directly, within the timeout.
    async fn authentic_get(
        &self,
        gateway: &str,
        source: KeySource,
        path: &str,
        accept: &str,
    ) -> Result<RelayAnswer> {
        let work = async {
            if source == KeySource::Direct {
                self.direct_get(gateway, path, accept).await
            } else {
                self.tunnel_get(gateway, path, accept).await
            }
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| Error::Timeout)?
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

    /// `CONNECT <gateway>` through the relay, then `GET path` over TLS to
    /// the gateway inside the tunnel.
    async fn tunnel_get(&self, gateway: &str, path: &str, accept: &str) -> Result<RelayAnswer> {
        let (host, port) = split_host_port(gateway)?;
        let route = self.route(gateway);
        let tcp = self
            .connect_tcp(&route.host, route.port)
            .await
            .map_err(|_| Error::RelayUnreachable)?;
        let authority = format!("{host}:{port}");
        let connect = Request::builder()
            .method(Method::CONNECT)
            .uri(authority.as_str())
            .header(HOST, authority.as_str())
            .body(Empty::<Bytes>::new())
            .map_err(|_| Error::TunnelFailed("bad gateway name".into()))?;
        let resp = match &route.tls {
            Some(config) => {
                let name = ServerName::try_from(route.host.clone())
                    .map_err(|_| Error::InvalidRelayUrl(route.template.clone()))?;
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
        self.get_over_tls(TokioIo::new(upgraded), gateway, host, path, accept)
            .await
    }

    /// `GET path` over TLS straight to the gateway.
    async fn direct_get(&self, gateway: &str, path: &str, accept: &str) -> Result<RelayAnswer> {
        let (host, port) = split_host_port(gateway)?;
        let tcp = match self.direct_addresses.get(&gateway.to_ascii_lowercase()) {
            Some(addr) => self.connect_tcp(&addr.ip().to_string(), addr.port()).await,
            None => self.connect_tcp(host, port).await,
        }
        .map_err(|e| Error::TunnelFailed(format!("cannot connect to the gateway: {e}")))?;
        self.get_over_tls(tcp, gateway, host, path, accept).await
    }

    /// `GET path` (the key list, or the issuer directory) over a fresh TLS
    /// session to `host` (its certificate checked against the configured
    /// roots) on `io`.
    async fn get_over_tls<IO>(
        &self,
        io: IO,
        gateway: &str,
        host: &str,
        path: &str,
        accept: &str,
    ) -> Result<RelayAnswer>
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
            .uri(path)
            .header(HOST, gateway)
            .header(ACCEPT, accept)
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
                let route = self.route(gateway);
                let req = Request::builder()
                    .method(Method::GET)
                    .uri(route.url(gateway))
                    .header(ACCEPT, MEDIA_OHTTP_KEYS)
                    .body(Full::new(Bytes::new()))
                    .map_err(|_| Error::InvalidRelayUrl(route.template.clone()))?;
                self.exchange(req).await
            }
            KeySource::Tunnel | KeySource::Direct => {
                self.authentic_get(gateway, source, GATEWAY_PATH, MEDIA_OHTTP_KEYS)
                    .await
            }
        }
    }

    async fn fetch_issuer_directory(
        &self,
        gateway: &str,
        source: KeySource,
    ) -> Result<RelayAnswer> {
        match source {
            KeySource::Shared => {
                let url = self.issuer_url(gateway)?;
                let req = Request::builder()
                    .method(Method::GET)
                    .uri(url)
                    .header(ACCEPT, MEDIA_ISSUER_DIRECTORY)
                    .body(Full::new(Bytes::new()))
                    .map_err(|_| Error::InvalidRelayUrl(self.route(gateway).template.clone()))?;
                self.exchange(req).await
            }
            KeySource::Tunnel | KeySource::Direct => {
                self.authentic_get(
                    gateway,
                    source,
                    ISSUER_DIRECTORY_PATH,
                    MEDIA_ISSUER_DIRECTORY,
                )
                .await
            }
        }
    }

    async fn request_tokens(
        &self,
        gateway: &str,
        media: &'static str,
        body: Vec<u8>,
        credential: Option<&str>,
    ) -> Result<RelayAnswer> {
        let url = self.issuer_url(gateway)?;
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(CONTENT_TYPE, media);
        if let Some(c) = credential {
            let value = http::HeaderValue::from_str(&format!("Bearer {c}"))
                .map_err(|_| Error::Config("the credential is not a bearer token".into()))?;
            req = req.header(AUTHORIZATION, value);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| Error::InvalidRelayUrl(self.route(gateway).template.clone()))?;
        self.exchange(req).await
    }

    async fn post(&self, gateway: &str, body: Vec<u8>) -> Result<RelayAnswer> {
        let route = self.route(gateway);
        let req = Request::builder()
            .method(Method::POST)
            .uri(route.url(gateway))
            .header(CONTENT_TYPE, MEDIA_OHTTP_REQ)
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| Error::InvalidRelayUrl(route.template.clone()))?;
        self.exchange(req).await
    }

    fn serves_shared_keys(&self, gateway: &str) -> bool {
        self.route(gateway).shared_keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_urls_and_templates() {
        let t = Duration::from_secs(1);
        let ours = RelayTransport::new("https://relay.example/", &[], t).unwrap();
        assert_eq!(
            ours.route("m.example").url("m.example"),
            "https://relay.example/gateway/m.example"
        );
        assert!(ours.serves_shared_keys("m.example"));
        let templated =
            RelayTransport::new("https://relay.example:8443/ohttp/{gateway}/req", &[], t).unwrap();
        let route = templated.route("m.example");
        assert_eq!(
            route.url("m.example"),
            "https://relay.example:8443/ohttp/m.example/req"
        );
        assert_eq!((route.host.as_str(), route.port), ("relay.example", 8443));
        assert!(!templated.serves_shared_keys("m.example"));
        let mixed = ours
            .with_relay_for("M.Other.example", "https://one.example/")
            .unwrap();
        assert_eq!(
            mixed.route("m.other.example").url("m.other.example"),
            "https://one.example/"
        );
        assert!(!mixed.serves_shared_keys("m.other.example"));
        assert!(mixed.serves_shared_keys("m.example"));
        assert!(matches!(
            mixed.with_relay_for("x.example", "http://one.example/"),
            Err(Error::InsecureRelay(_))
        ));
    }

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
