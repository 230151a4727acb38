//! The gateway over TLS: certificate files from the config, ALPN, and the
//! keys served through it.

mod common;

use std::sync::Arc;

use common::*;
use mimi_proto::oblivious::{self, GATEWAY_PATH};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn serves_keys_over_tls_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec![HOST.to_string()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let mut cfg = config(dir.path());
    cfg.plain_http = false;
    cfg.tls = Some(mimi_gateway::config::TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    });
    let gw = spawn(&cfg).await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from(HOST).unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    tls.write_all(
        format!("GET {GATEWAY_PATH} HTTP/1.1\r\nhost: {HOST}\r\nconnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await.unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..split]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: application/ohttp-keys"));
    assert_eq!(
        oblivious::decode_key_config_list(&response[split + 4..])
            .unwrap()
            .len(),
        1
    );

    // A missing certificate file is a clear configuration error, before binding.
    cfg.tls.as_mut().unwrap().cert = dir.path().join("absent.pem");
    let err = mimi_gateway::assemble(&cfg).await.unwrap_err();
    assert!(err.to_string().contains("absent.pem"), "{err}");
    gw.stop().await;
}
