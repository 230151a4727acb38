//! The gateway's HTTP surface: the gateway resource, `/healthz`, and the admin
//! listener's `/metrics`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use mimi_proto::oblivious::{
    GATEWAY_PATH, MEDIA_OHTTP_KEYS, MEDIA_OHTTP_REQ, MEDIA_OHTTP_RES, MEDIA_PROBLEM_JSON,
};
use mimi_server_core::ConnectionLimits;
use tokio::net::TcpListener;

use crate::error::Error;
use crate::keys::RotationPolicy;
use crate::outcome::Outcome;
use crate::service::Gateway;
use crate::tokens::Tokens;
use mimi_proto::privacypass::{
    ISSUER_DIRECTORY_PATH, ISSUER_REQUEST_PATH, MEDIA_BATCH_REQUEST, MEDIA_ISSUER_DIRECTORY,
    MEDIA_TOKEN_REQUEST,
};
use mimi_server_core::client_auth::PeerCertificate;
use mimi_server_core::layer::{self, Layer};
use mimi_server_core::request::{
    BodyRefusal, RequestBody, has_media_type, read_body as read_bounded,
};

/// How the gateway's listener behaves.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Connection caps and timeouts.
    pub connections: ConnectionLimits,
    /// The largest encapsulated request accepted.
    pub max_body: usize,
    /// How long a client may take to send its body.
    pub body_timeout: Duration,
    /// How long a whole request may take, target included.
    pub request_timeout: Duration,
    /// The longest `max-age` served with the key list.
    pub key_max_age: Duration,
    /// Rotate keys automatically when the newest is this old.
    pub rotate_after: Option<Duration>,
    /// How keys are rotated.
    pub rotation: RotationPolicy,
}

/// Serves the gateway on `listener` (TLS when `tls` is given) until
/// `shutdown` completes; keeps the key ring current meanwhile.
pub async fn run(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    gateway: Arc<Gateway>,
    options: HttpOptions,
    shutdown: impl Future<Output = ()>,
) {
    run_layered(listener, tls, gateway, options, None, shutdown).await;
}

/// [`run`], with each request handed through `layer` (the testbed's
/// recording taps and hostile parties): everything else is the same.
pub async fn run_layered(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    gateway: Arc<Gateway>,
    options: HttpOptions,
    layer: Option<Layer>,
    shutdown: impl Future<Output = ()>,
) {
    let maintenance = tokio::spawn(crate::key_maintenance::run(
        gateway.clone(),
        options.rotate_after,
        options.rotation,
    ));
    let limits = options.connections;
    let stats = gateway.metrics().connections().clone();
    let options = Arc::new(options);
    let handler = move |req: Request<Incoming>, peer: std::net::SocketAddr| {
        let (gateway, options, layer) = (gateway.clone(), options.clone(), layer.clone());
        let (gateway2, options2) = (gateway.clone(), options.clone());
        async move {
            layer::answer(
                layer,
                req,
                peer,
                |r| async move { answer_within(&gateway, &options, r).await },
                |r| async move { answer_within(&gateway2, &options2, r).await },
            )
            .await
        }
    };
    mimi_server_core::serve(listener, tls, limits, stats, handler, shutdown).await;
    maintenance.abort();
}

/// One request, within the request timeout.
async fn answer_within<B: RequestBody>(
    gateway: &Gateway,
    options: &HttpOptions,
    req: Request<B>,
) -> Response<Full<Bytes>> {
    match tokio::time::timeout(options.request_timeout, handle(gateway, options, req)).await {
        Ok(resp) => resp,
        Err(_) => counted(gateway, Error::UpstreamTimeout),
    }
}

/// Serves `/metrics` and `/healthz` on the admin listener until `shutdown`.
pub async fn run_admin(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()>,
) {
    let render = move || gateway.metrics().render(gateway.keys().ring().ids());
    mimi_server_core::admin::serve_admin(listener, render, shutdown).await;
}

/// Answers one request to the gateway's listener. Generic over the body so
/// that embedders (and the testbed's recording tap) can hand in any body.
pub async fn handle<B: RequestBody>(
    gateway: &Gateway,
    options: &HttpOptions,
    req: Request<B>,
) -> Response<Full<Bytes>> {
    match (req.uri().path(), gateway.tokens()) {
        (GATEWAY_PATH, _) => {}
        ("/healthz", _) => return respond(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
        (ISSUER_DIRECTORY_PATH, Some(tokens)) => return issuer_directory(gateway, tokens, &req),
        (ISSUER_REQUEST_PATH, Some(tokens)) => {
            let tokens = tokens.clone();
            return token_request(gateway, &tokens, options, req).await;
        }
        _ => return counted(gateway, Error::NotFound),
    }
    match *req.method() {
        Method::GET | Method::HEAD => {
            let ring = gateway.keys().ring();
            let max_age = ring.max_age(options.key_max_age);
            let mut resp = respond(
                StatusCode::OK,
                MEDIA_OHTTP_KEYS,
                ring.encoded_list().to_vec(),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
                resp.headers_mut().insert(CACHE_CONTROL, v);
            }
            gateway.metrics().count(Outcome::Keys);
            resp
        }
        Method::POST => match post(gateway, options, req).await {
            Ok(body) => respond(StatusCode::OK, MEDIA_OHTTP_RES, body),
            Err(e) => counted(gateway, e),
        },
        _ => counted(gateway, Error::MethodNotAllowed),
    }
}

/// `GET` of the issuer directory (RFC 9578 §4): the same bytes for everyone.
fn issuer_directory<B>(
    gateway: &Gateway,
    tokens: &Tokens,
    req: &Request<B>,
) -> Response<Full<Bytes>> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return counted(gateway, Error::MethodNotAllowed);
    }
    let (body, max_age) = tokens.directory();
    let mut resp = respond(StatusCode::OK, MEDIA_ISSUER_DIRECTORY, body);
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        resp.headers_mut().insert(CACHE_CONTROL, v);
    }
    gateway.metrics().count(Outcome::IssuerDirectory);
    resp
}

/// `POST` of a token request (one, or an arbitrary batch) by an attester.
async fn token_request<B: RequestBody>(
    gateway: &Gateway,
    tokens: &Arc<Tokens>,
    options: &HttpOptions,
    req: Request<B>,
) -> Response<Full<Bytes>> {
    if *req.method() != Method::POST {
        return counted(gateway, Error::MethodNotAllowed);
    }
    let batch = if has_media_type(&req, MEDIA_BATCH_REQUEST) {
        true
    } else if has_media_type(&req, MEDIA_TOKEN_REQUEST) {
        false
    } else {
        return counted(gateway, Error::UnsupportedMediaType);
    };
    let cert = req.extensions().get::<PeerCertificate>().copied();
    let body = match read_body(options, req).await {
        Ok(body) => body,
        Err(e) => return counted(gateway, e),
    };
    match tokens
        .issue(cert.as_ref(), batch, &body, SystemTime::now())
        .await
    {
        Ok(issued) => {
            gateway.metrics().count(Outcome::TokensIssued);
            gateway.metrics().tokens_issued(issued.count);
            respond(StatusCode::OK, issued.content_type, issued.body)
        }
        Err(e) => {
            let retry = match e {
                Error::AttesterOverBudget(secs) => Some(secs),
                _ => None,
            };
            let mut resp = counted(gateway, e);
            if let Some(secs) = retry.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
                resp.headers_mut().insert(http::header::RETRY_AFTER, secs);
            }
            resp
        }
    }
}

async fn post<B: RequestBody>(
    gateway: &Gateway,
    options: &HttpOptions,
    req: Request<B>,
) -> Result<Vec<u8>, Error> {
    if !has_media_type(&req, MEDIA_OHTTP_REQ) {
        return Err(Error::UnsupportedMediaType);
    }
    let body = read_body(options, req).await?;
    gateway.handle(&body, SystemTime::now()).await
}

/// The body within the size and time limits.
async fn read_body<B: RequestBody>(options: &HttpOptions, req: Request<B>) -> Result<Bytes, Error> {
    read_bounded(req, options.max_body, options.body_timeout)
        .await
        .map_err(|refusal| match refusal {
            BodyRefusal::TooLarge => Error::BodyTooLarge,
            BodyRefusal::TimedOut => Error::BodyTimeout,
            BodyRefusal::Broken => Error::MalformedEncapsulation,
        })
}

fn counted(gateway: &Gateway, e: Error) -> Response<Full<Bytes>> {
    gateway.metrics().count(e.outcome());
    plain_error(&e)
}

fn plain_error(e: &Error) -> Response<Full<Bytes>> {
    let body = e.problem().map(|p| p.to_json()).unwrap_or_default();
    let mut resp = respond(e.status(), MEDIA_PROBLEM_JSON, body);
    if matches!(e, Error::MethodNotAllowed) {
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
    }
    resp
}

fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
