//! A stand-in for the RFC 9458 relays found in the wild that expose one
//! resource per gateway (as payjoin's `ohttp-relay` does): `POST /` goes to
//! its one gateway, and that gateway's keys are reached only through
//! `CONNECT` to it. No `/gateway/<host>` layout, no shared key copy. Written
//! here, behaving as such relays do, to show that the client works with any
//! RFC 9458 relay and not just ours.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use mimi_relay::upstream::Upstream;
use mimi_server_core::{ConnectionLimits, serve};
use rustls_pki_types::CertificateDer;
use tokio::net::{TcpListener, TcpStream};

/// The running stand-in.
pub struct OneGatewayRelay {
    /// Where it listens (plain HTTP).
    pub addr: SocketAddr,
    /// The request lines it received (`POST /`, `CONNECT host:443`, …).
    pub seen: Arc<Mutex<Vec<String>>>,
}

fn respond(
    status: StatusCode,
    content_type: Option<http::HeaderValue>,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    if let Some(ct) = content_type {
        r.headers_mut().insert(http::header::CONTENT_TYPE, ct);
    }
    r
}

/// Starts the stand-in on `ip`, port 0, relaying to the gateway `host` at
/// `gateway` (TLS, trusting `roots`), until `stop` turns true.
pub async fn spawn(
    ip: IpAddr,
    host: &str,
    gateway: SocketAddr,
    roots: &[CertificateDer<'static>],
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<OneGatewayRelay> {
    let listener = TcpListener::bind((ip, 0)).await?;
    let addr = listener.local_addr()?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let upstream = Arc::new(Upstream::new(roots, Duration::from_secs(5), None)?);
    let url: http::Uri = format!("https://{gateway}/.well-known/ohttp-gateway").parse()?;
    let tunnel_to = format!("{host}:443");
    let (log, target) = (seen.clone(), Arc::new((url, tunnel_to)));
    let handler = move |mut req: Request<Incoming>, _peer: SocketAddr| {
        let (log, upstream, target) = (log.clone(), upstream.clone(), target.clone());
        async move {
            let line = format!("{} {}", req.method(), req.uri());
            log.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            let (url, tunnel_to) = &*target;
            if req.method() == Method::CONNECT {
                if req.uri().authority().map(|a| a.as_str()) != Some(tunnel_to.as_str()) {
                    return respond(StatusCode::FORBIDDEN, None, Bytes::new());
                }
                let Ok(mut up) = TcpStream::connect(gateway).await else {
                    return respond(StatusCode::BAD_GATEWAY, None, Bytes::new());
                };
                let on_upgrade = hyper::upgrade::on(&mut req);
                tokio::spawn(async move {
                    if let Ok(upgraded) = on_upgrade.await {
                        let mut client = TokioIo::new(upgraded);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
                    }
                });
                return respond(StatusCode::OK, None, Bytes::new());
            }
            if req.method() != Method::POST || req.uri().path() != "/" {
                return respond(StatusCode::NOT_FOUND, None, Bytes::new());
            }
            let body = req
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            match upstream.post(url, body).await {
                Ok(a) => respond(a.status, a.content_type, a.body),
                Err(_) => respond(StatusCode::BAD_GATEWAY, None, Bytes::new()),
            }
        }
    };
    let limits = ConnectionLimits {
        header_timeout: Duration::from_secs(10),
        drain_timeout: Duration::from_secs(2),
        ..ConnectionLimits::default()
    };
    tokio::spawn(serve(
        listener,
        None,
        limits,
        Default::default(),
        handler,
        async move {
            let _ = stop.wait_for(|s| *s).await;
        },
    ));
    Ok(OneGatewayRelay { addr, seen })
}
