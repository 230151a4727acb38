//! `mimi-tls-floor`: the floor under the gateway's and the relay's network
//! cost. It serves every request over the same stack as they do (the server
//! core's accept loop, rustls, hyper, tokio), reads the
//! body, and answers with a fixed body as long as a padded encapsulated
//! answer, doing nothing else. `mimi-bench --cost` loads it like the gateway,
//! so its CPU per request is what any server on this stack pays for one
//! exchange, before doing any work of its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;
use clap::Parser;
use http::{HeaderValue, Request, Response, header::CONTENT_TYPE};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use mimi_proto::oblivious::MEDIA_OHTTP_RES;
use mimi_server_core::{ConnectionLimits, process, tls};

/// Serve a fixed answer over TLS; print `tls-floor listening on URL`.
#[derive(Debug, Parser)]
#[command(name = "mimi-tls-floor")]
struct Args {
    /// Address to bind (port 0: any).
    #[arg(long)]
    listen: SocketAddr,
    /// Certificate chain (PEM).
    #[arg(long)]
    cert_file: PathBuf,
    /// Private key (PEM).
    #[arg(long)]
    key_file: PathBuf,
    /// Bytes in every answer.
    #[arg(long)]
    answer_len: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let tls = tls::server_config(&args.cert_file, &args.key_file)?;
    let answer = Bytes::from(vec![0u8; args.answer_len]);
    process::runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        println!("tls-floor listening on https://{}", listener.local_addr()?);
        let handler = move |req: Request<Incoming>, _peer: SocketAddr| {
            let answer = answer.clone();
            async move {
                // Read the body, as the gateway does; a body over 64 KiB is
                // not expected here and is answered alike.
                let _ = Limited::new(req.into_body(), 64 * 1024).collect().await;
                let mut resp = Response::new(Full::new(answer));
                resp.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static(MEDIA_OHTTP_RES));
                resp
            }
        };
        mimi_server_core::serve(
            listener,
            Some(tls),
            ConnectionLimits::default(),
            Arc::default(),
            handler,
            process::terminated(),
        )
        .await;
        Ok(())
    })
}
