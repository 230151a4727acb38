//! The relay's HTTP surface (DESIGN §6): `POST` and `GET /gateway/<host>`,
//! `/healthz`, and the admin listener's `/metrics`.
//!
//! Privacy rules kept here: the client's request is never copied forward
//! (a fresh request carries only its body and media type); the answer carries
//! back only `Content-Type`, `Content-Length` and, for keys, `Cache-Control`;
//! nothing is logged about a request, so a client address never stands
//! beside a gateway host.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use mimi_proto::oblivious::{MEDIA_OHTTP_KEYS, MEDIA_OHTTP_REQ};
use mimi_server_core::layer::{self, Layer};
use mimi_server_core::per_key::{PerKey, client_key};
use mimi_server_core::request::{
    BodyRefusal, RequestBody, has_media_type, read_body as read_bounded,
};
use mimi_server_core::{ConnectionLimits, ConnectionStats};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::attester::Attester;
use crate::error::Error;
use mimi_proto::privacypass::{
    ATTESTER_PREFIX, MAX_BATCH, MEDIA_BATCH_REQUEST, MEDIA_TOKEN_REQUEST, NK,
};

/// The largest token request body: a full batch.
const TOKEN_REQUEST_MAX: usize = MAX_BATCH * (NK + 3) + 8;
use crate::keycache::KeyCache;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::targets::Allowlist;
use crate::tunnel::{TunnelLimits, Tunnels};
use crate::upstream::Upstream;

/// How the relay behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Connection caps and timeouts.
    pub connections: ConnectionLimits,
    /// The largest encapsulated request forwarded.
    pub max_body: usize,
    /// How long a client may take to send its body.
    pub body_timeout: Duration,
    /// Requests being forwarded at once, at most.
    pub max_concurrent: usize,
    /// Requests one client (IPv6: one /64) may have in flight at once.
    pub max_in_flight_per_client: u32,
    /// Requests in flight to one gateway at once, at most: a slow gateway
    /// cannot take the others' share.
    pub max_in_flight_per_gateway: u32,
    /// Per-client requests per second.
    pub rate: f64,
    /// Per-client burst.
    pub burst: u32,
    /// Clients remembered by the rate limiter.
    pub max_clients: usize,
    /// `CONNECT` tunnels.
    pub tunnels: TunnelLimits,
}

/// The relay: its allowlist, key cache, limits and counters.
#[derive(Debug)]
pub struct Relay {
    allowlist: Allowlist,
    keys: KeyCache,
    upstream: Upstream,
    limiter: RateLimiter,
    in_flight: Semaphore,
    per_client: PerKey<std::net::IpAddr>,
    connections: Arc<ConnectionStats>,
    per_gateway: PerKey<usize>,
    tunnels: Tunnels,
    outbound_bind: Option<std::net::IpAddr>,
    metrics: Metrics,
    options: Options,
    attester: Option<Attester>,
}

impl Relay {
    /// Assembles a relay; tunnels leave from `outbound_bind` (default: any).
    pub fn new(
        allowlist: Allowlist,
        keys: KeyCache,
        upstream: Upstream,
        options: Options,
        outbound_bind: Option<std::net::IpAddr>,
    ) -> Self {
        Self {
            tunnels: Tunnels::new(options.tunnels),
            outbound_bind,
            limiter: RateLimiter::new(options.rate, options.burst, options.max_clients),
            in_flight: Semaphore::new(options.max_concurrent.max(1)),
            per_client: PerKey::new(options.max_in_flight_per_client),
            connections: Arc::default(),
            per_gateway: PerKey::new(options.max_in_flight_per_gateway),
            metrics: Metrics::new(allowlist.hosts()),
            allowlist,
            keys,
            upstream,
            options,
            attester: None,
        }
    }

    /// Makes this relay a Privacy Pass attester.
    pub fn with_attester(mut self, attester: Attester) -> Self {
        self.attester = Some(attester);
        self
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Everything `/metrics` shows.
    pub fn render_metrics(&self) -> String {
        let mut scrape = mimi_server_core::metrics::Scrape::default();
        self.metrics.scrape(&mut scrape);
        self.connections.scrape(&mut scrape);
        scrape.render("mimi_relay")
    }

    /// Answers one request from `peer`.
    ///
    /// Generic over the body so that embedders (and the testbed's recording
    /// tap) can hand in any body.
    pub async fn handle<B: RequestBody>(
        &self,
        req: Request<B>,
        peer: SocketAddr,
    ) -> Response<Full<Bytes>> {
        let resp = match req.uri().path() {
            _ if req.method() == Method::CONNECT => {
                self.tunnel(req, peer).await.unwrap_or_else(|e| refuse(&e))
            }
            "/healthz" => respond(
                StatusCode::OK,
                Some(HeaderValue::from_static("text/plain")),
                Bytes::from_static(b"ok\n"),
            ),
            p if p.starts_with(ATTESTER_PREFIX) => {
                self.attest(req, peer).await.unwrap_or_else(|e| refuse(&e))
            }
            _ => self.relay(req, peer).await.unwrap_or_else(|e| refuse(&e)),
        };
        self.metrics.status(resp.status().as_u16());
        resp
    }

    async fn relay<B: RequestBody>(
        &self,
        req: Request<B>,
        peer: SocketAddr,
    ) -> Result<Response<Full<Bytes>>, Error> {
        // Unknown gateways are refused before anything else, and nothing is fetched.
        let target = self.allowlist.resolve(req.uri().path())?;
        if req.uri().query().is_some() {
            return Err(Error::UnknownGateway);
        }
        let method = req.method().clone();
        if !matches!(method, Method::GET | Method::HEAD | Method::POST) {
            return Err(Error::MethodNotAllowed);
        }
        if method == Method::POST && !has_media_type(&req, MEDIA_OHTTP_REQ) {
            return Err(Error::UnsupportedMediaType);
        }
        self.limiter
            .check(peer.ip(), Instant::now())
            .map_err(Error::RateLimited)?;
        // The body first, holding nothing shared: a client that never
        // finishes its body costs only its own connection.
        let body = match method {
            Method::POST => Some(self.read_body(req).await?),
            _ => None,
        };
        // Then its places: its own share, the gateway's, and the relay's.
        let _client = self
            .per_client
            .take(client_key(peer.ip()))
            .ok_or(Error::RateLimited(1))?;
        let _gateway = self.per_gateway.take(target.index).ok_or(Error::Busy)?;
        let _permit = self.in_flight.try_acquire().map_err(|_| Error::Busy)?;

        if let Some(body) = body {
            self.metrics.forwarded(target.index);
            let answer = self.upstream.post(&target.url, body).await?;
            Ok(respond(answer.status, answer.content_type, answer.body))
        } else {
            let keys = self.keys.get(target, &self.upstream).await?;
            self.metrics.keys_served(target.index);
            let mut resp = respond(
                StatusCode::OK,
                Some(HeaderValue::from_static(MEDIA_OHTTP_KEYS)),
                keys.body,
            );
            if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={}", keys.max_age)) {
                resp.headers_mut().insert(CACHE_CONTROL, v);
            }
            Ok(resp)
        }
    }

    /// `GET /issuer/<host>` (the issuer's directory, shared) and `POST`
    /// (token requests, counted against the client's quota, then forwarded
    /// with the relay's certificate).
    async fn attest<B: RequestBody>(
        &self,
        req: Request<B>,
        peer: SocketAddr,
    ) -> Result<Response<Full<Bytes>>, Error> {
        let attester = self.attester.as_ref().ok_or(Error::UnknownGateway)?;
        let host = req.uri().path().strip_prefix(ATTESTER_PREFIX).unwrap_or("");
        let gateway_path = format!("{}{host}", mimi_proto::oblivious::RELAY_PREFIX);
        let target = self.allowlist.resolve(&gateway_path)?;
        if !attester.serves(&target.host) || req.uri().query().is_some() {
            return Err(Error::UnknownGateway);
        }
        self.limiter
            .check(peer.ip(), Instant::now())
            .map_err(Error::RateLimited)?;
        let forwarded = match *req.method() {
            Method::GET | Method::HEAD => attester.directory(target).await?,
            Method::POST => {
                let batch = if has_media_type(&req, MEDIA_BATCH_REQUEST) {
                    true
                } else if has_media_type(&req, MEDIA_TOKEN_REQUEST) {
                    false
                } else {
                    return Err(Error::UnsupportedMediaType);
                };
                let (client, quota) = attester.client_of(req.headers(), peer.ip())?;
                let body = self.read_body_up_to(req, TOKEN_REQUEST_MAX).await?;
                let _client = self
                    .per_client
                    .take(client_key(peer.ip()))
                    .ok_or(Error::RateLimited(1))?;
                let _permit = self.in_flight.try_acquire().map_err(|_| Error::Busy)?;
                attester.forward(target, client, quota, batch, body).await?
            }
            _ => return Err(Error::MethodNotAllowed),
        };
        let mut resp = respond(forwarded.status, forwarded.content_type, forwarded.body);
        if let Some(cc) = forwarded.cache_control {
            resp.headers_mut().insert(CACHE_CONTROL, cc);
        }
        Ok(resp)
    }

    /// `CONNECT host:port`: only to an allowlisted gateway, at its configured
    /// address; nothing is connected otherwise.
    async fn tunnel<B>(
        &self,
        mut req: Request<B>,
        peer: SocketAddr,
    ) -> Result<Response<Full<Bytes>>, Error> {
        let authority = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .filter(|_| req.uri().scheme().is_none())
            .ok_or(Error::TunnelForbidden)?;
        let target = self.allowlist.resolve_connect(&authority)?;
        self.limiter
            .check(peer.ip(), Instant::now())
            .map_err(Error::RateLimited)?;
        let admission = self.tunnels.admit(peer.ip())?;
        let upstream = self.tunnels.connect(target, self.outbound_bind).await?;
        self.metrics.tunnelled(target.index);
        let on_upgrade = hyper::upgrade::on(&mut req);
        self.tunnels.splice(on_upgrade, upstream, admission);
        Ok(respond(StatusCode::OK, None, Bytes::new()))
    }

    async fn read_body<B: RequestBody>(&self, req: Request<B>) -> Result<Bytes, Error> {
        self.read_body_up_to(req, self.options.max_body).await
    }

    async fn read_body_up_to<B: RequestBody>(
        &self,
        req: Request<B>,
        max_body: usize,
    ) -> Result<Bytes, Error> {
        let body = read_bounded(req, max_body, self.options.body_timeout)
            .await
            .map_err(|refusal| match refusal {
                BodyRefusal::TooLarge => Error::BodyTooLarge,
                BodyRefusal::TimedOut => Error::BodyTimeout,
                BodyRefusal::Broken => Error::EmptyBody,
            })?;
        if body.is_empty() {
            return Err(Error::EmptyBody);
        }
        Ok(body)
    }
}

/// Serves the relay on `listener` (TLS when `tls` is given) until `shutdown`.
pub async fn run(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    relay: Arc<Relay>,
    shutdown: impl Future<Output = ()>,
) {
    run_layered(listener, tls, relay, None, shutdown).await;
}

/// [`run`], with each request handed through `layer` (the testbed's
/// recording taps and hostile relays): everything else is the same.
pub async fn run_layered(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    relay: Arc<Relay>,
    layer: Option<Layer>,
    shutdown: impl Future<Output = ()>,
) {
    let limits = relay.options.connections;
    let stats = relay.connections.clone();
    let handler = move |req: Request<Incoming>, peer: SocketAddr| {
        let (relay, layer) = (relay.clone(), layer.clone());
        let relay2 = relay.clone();
        async move {
            layer::answer(
                layer,
                req,
                peer,
                |r| async move { relay.handle(r, peer).await },
                move |r| async move { relay2.handle(r, peer).await },
            )
            .await
        }
    };
    mimi_server_core::serve(listener, tls, limits, stats, handler, shutdown).await;
}

/// Serves `/metrics` and `/healthz` on the admin listener until `shutdown`.
pub async fn run_admin(
    listener: TcpListener,
    relay: Arc<Relay>,
    shutdown: impl Future<Output = ()>,
) {
    mimi_server_core::admin::serve_admin(listener, move || relay.render_metrics(), shutdown).await;
}

fn refuse(e: &Error) -> Response<Full<Bytes>> {
    let mut resp = respond(
        e.status(),
        Some(HeaderValue::from_static("text/plain")),
        Bytes::from(format!("{e}\n")),
    );
    if let Some(secs) = e.retry_after() {
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    if matches!(e, Error::MethodNotAllowed) {
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
    }
    resp
}

fn respond(
    status: StatusCode,
    content_type: Option<HeaderValue>,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    if let Some(ct) = content_type {
        resp.headers_mut().insert(CONTENT_TYPE, ct);
    }
    resp
}
