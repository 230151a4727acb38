//! Helpers shared by the gateway's socket tests.
#![allow(dead_code, unreachable_pub)]

use mimi_server_core::config_file::TomlFile as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mimi_gateway::{Config, Gateway};
use mimi_proto::codec::Codec;
use mimi_proto::oblivious::{self, GATEWAY_PATH, MEDIA_OHTTP_REQ};
use mimi_proto::{IdentifierRequest, IdentifierResponse, SearchIdentifierType, bhttp};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const HOST: &str = "mimi.p.example";

pub struct Running {
    pub addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
    }
}

pub fn config(dir: &Path) -> Config {
    let mut c = Config::parse(&format!("public_host = \"{HOST}\"\nplain_http = true")).unwrap();
    c.key_file = dir.join("keys.json");
    c.directory.database = dir.join("dir.sqlite");
    c.limits.body_timeout_ms = 300;
    c.limits.max_body_bytes = 4096;
    c
}

pub async fn spawn_on(config: &Config, bind: SocketAddr) -> Running {
    let mimi_gateway::Assembled {
        gateway,
        tls,
        options,
    } = mimi_gateway::assemble(config).await.unwrap();
    let listener = TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(mimi_gateway::http::run(
        listener,
        tls,
        gateway.clone(),
        options,
        async {
            let _ = rx.await;
        },
    ));
    Running {
        addr,
        gateway,
        stop: Some(tx),
        task,
    }
}

pub async fn spawn(config: &Config) -> Running {
    spawn_on(config, "127.0.0.4:0".parse().unwrap()).await
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub async fn send(
    c: &Client<HttpConnector, Full<Bytes>>,
    method: &str,
    url: String,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, http::HeaderMap, Vec<u8>) {
    let mut b = http::Request::builder().method(method).uri(url);
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    let resp = c
        .request(b.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

pub async fn fetch_keys(c: &Client<HttpConnector, Full<Bytes>>, addr: SocketAddr) -> Vec<u8> {
    let (status, headers, body) = send(
        c,
        "GET",
        format!("http://{addr}{GATEWAY_PATH}"),
        None,
        vec![],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/ohttp-keys");
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("public, max-age=")
    );
    body
}

/// One lookup through the gateway; returns the outer status and, on 200, the
/// inner answer.
pub async fn query(
    c: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    keys: &[u8],
    identifier: &str,
) -> (u16, Option<IdentifierResponse>) {
    let entry = &oblivious::decode_key_config_list(keys).unwrap()[0];
    let inner = handle_query(identifier);
    let (enc, ctx) =
        ohttp::ClientRequest::from_config(&mut ohttp::KeyConfig::decode(&entry.encoded).unwrap())
            .unwrap()
            .encapsulate(&inner)
            .unwrap();
    let (status, headers, body) = send(
        c,
        "POST",
        format!("http://{addr}{GATEWAY_PATH}"),
        Some(MEDIA_OHTTP_REQ),
        enc,
    )
    .await;
    if status != 200 {
        return (status, None);
    }
    assert_eq!(headers["content-type"], "message/ohttp-res");
    let msg = oblivious::decode_message(&ctx.decapsulate(&body).unwrap()).unwrap();
    assert_eq!(msg.control().status().unwrap().code(), 200);
    (
        200,
        Some(IdentifierResponse::from_bytes(msg.content()).unwrap()),
    )
}

/// Seals any inner Binary HTTP request to the first key and posts it;
/// returns the outer status and, on 200, the decrypted inner response.
pub async fn exchange(
    c: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    inner: &[u8],
) -> (u16, Option<bhttp::Message>) {
    let keys = fetch_keys(c, addr).await;
    let entry = &oblivious::decode_key_config_list(&keys).unwrap()[0];
    let (enc, ctx) =
        ohttp::ClientRequest::from_config(&mut ohttp::KeyConfig::decode(&entry.encoded).unwrap())
            .unwrap()
            .encapsulate(inner)
            .unwrap();
    let (status, _, body) = send(
        c,
        "POST",
        format!("http://{addr}{GATEWAY_PATH}"),
        Some(MEDIA_OHTTP_REQ),
        enc,
    )
    .await;
    if status != 200 {
        return (status, None);
    }
    (
        status,
        Some(oblivious::decode_message(&ctx.decapsulate(&body).unwrap()).unwrap()),
    )
}

/// A dated identifierQuery for a handle, as Binary HTTP.
pub fn handle_query(identifier: &str) -> Vec<u8> {
    let request = IdentifierRequest::single(SearchIdentifierType::Handle, identifier);
    oblivious::identifier_query(HOST, &request, SystemTime::now(), None).unwrap()
}
