//! A DNS-over-HTTPS front (RFC 8484) for the testbed's DNS server, with TLS
//! from the test CA: `POST /dns-query` is relayed over UDP to the server and
//! its answer returned. For the client's `doh:` mode.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use mimi_server_core::{ConnectionLimits, serve};
use tokio::net::{TcpListener, UdpSocket};

use crate::pki::TestCa;

/// The TLS name the front answers to.
pub const DOH_HOST: &str = "doh.testbed.example";

fn respond(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if status == StatusCode::OK {
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/dns-message"),
        );
    }
    r
}

async fn ask(dns: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind((dns.ip(), 0)).await.ok()?;
    socket.connect(dns).await.ok()?;
    socket.send(query).await.ok()?;
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    Some(buf)
}

/// Starts the front on `ip`, port 0, for the DNS server at `dns`, with a
/// certificate from `ca`; it runs until `stop` turns true.
pub async fn spawn(
    ip: IpAddr,
    dns: SocketAddr,
    ca: &TestCa,
    dir: &std::path::Path,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<SocketAddr> {
    let leaf = ca.issue(&[DOH_HOST, &ip.to_string()])?;
    let (cert, key) = (dir.join("doh.pem"), dir.join("doh.key"));
    std::fs::write(&cert, &leaf.cert_pem)?;
    std::fs::write(&key, &leaf.key_pem)?;
    let tls = mimi_server_core::tls::server_config(&cert, &key)?;
    let listener = TcpListener::bind((ip, 0)).await?;
    let addr = listener.local_addr()?;
    let handler = move |req: Request<Incoming>, _peer: SocketAddr| async move {
        if req.method() != Method::POST || req.uri().path() != "/dns-query" {
            return respond(StatusCode::NOT_FOUND, Vec::new());
        }
        let Ok(body) = req.into_body().collect().await.map(|c| c.to_bytes()) else {
            return respond(StatusCode::BAD_REQUEST, Vec::new());
        };
        match ask(dns, &body).await {
            Some(answer) => respond(StatusCode::OK, answer),
            None => respond(StatusCode::BAD_GATEWAY, Vec::new()),
        }
    };
    let limits = ConnectionLimits {
        header_timeout: Duration::from_secs(10),
        drain_timeout: Duration::from_secs(2),
        ..ConnectionLimits::default()
    };
    tokio::spawn(serve(
        listener,
        Some(tls),
        limits,
        Default::default(),
        handler,
        async move {
            let _ = stop.wait_for(|s| *s).await;
        },
    ));
    Ok(addr)
}
