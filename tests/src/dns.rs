//! The testbed's authoritative DNS server (hickory-server): in-memory zones
//! holding the sample MIMI records, and a recording tap in front of them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use hickory_proto::rr::rdata::{SOA, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record};
use hickory_server::ServerFuture;
use hickory_server::authority::{AuthorityObject, Catalog, ZoneType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryAuthority;
use tokio::net::{TcpListener, UdpSocket};

use crate::recorder::{Exchange, Party, Recorder};

/// Records who asked what, then lets the catalog answer.
struct Tap {
    catalog: Catalog,
    recorder: Arc<Recorder>,
}

// hickory-server's trait is declared with async-trait.
#[async_trait::async_trait]
impl RequestHandler for Tap {
    async fn handle_request<R: ResponseHandler>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        let names: Vec<String> = request
            .queries()
            .iter()
            .map(|q| format!("{} {}", q.name(), q.query_type()))
            .collect();
        self.recorder.record(Exchange {
            party: Party::Dns,
            peer: request.src(),
            received: names.join("\n").into_bytes(),
            sent: Vec::new(),
        });
        self.catalog.handle_request(request, response_handle).await
    }
}

/// A running DNS server.
pub struct DnsServer {
    /// Its address (UDP and TCP on the same port).
    pub addr: SocketAddr,
    server: ServerFuture<Tap>,
}

impl DnsServer {
    /// Stops it.
    pub async fn stop(mut self) {
        let _ = self.server.shutdown_gracefully().await;
    }
}

/// Serves `zones` (origin → TXT records as (name, text)) on `ip`, port 0.
pub async fn spawn(
    ip: std::net::IpAddr,
    zones: &[(&str, Vec<(String, String)>)],
    recorder: Arc<Recorder>,
) -> Result<DnsServer> {
    let mut catalog = Catalog::new();
    for (origin, records) in zones {
        let origin_name = Name::from_ascii(origin)?;
        let mut authority = InMemoryAuthority::empty(origin_name.clone(), ZoneType::Primary, false);
        let soa = SOA::new(
            Name::from_ascii(format!("ns.{origin}"))?,
            Name::from_ascii(format!("hostmaster.{origin}"))?,
            1,
            3600,
            600,
            86400,
            60,
        );
        authority.upsert_mut(
            Record::from_rdata(origin_name.clone(), 60, RData::SOA(soa)),
            1,
        );
        for (name, text) in records {
            let name = Name::from_ascii(name).with_context(|| format!("record name {name}"))?;
            // Split long texts into 255-octet character-strings.
            let strings: Vec<String> = text
                .as_bytes()
                .chunks(255)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            authority.upsert_mut(
                Record::from_rdata(name, 60, RData::TXT(TXT::new(strings))),
                1,
            );
        }
        let authority: Arc<dyn AuthorityObject> = Arc::new(authority);
        catalog.upsert(LowerName::new(&origin_name), vec![authority]);
    }
    let mut server = ServerFuture::new(Tap { catalog, recorder });
    // UDP and TCP must share a port: take one for UDP, then try it for TCP;
    // on the rare collision, start over with another.
    for _ in 0..10 {
        let udp = UdpSocket::bind((ip, 0)).await?;
        let addr = udp.local_addr()?;
        if let Ok(tcp) = TcpListener::bind(addr).await {
            server.register_socket(udp);
            server.register_listener(tcp, Duration::from_secs(5));
            return Ok(DnsServer { addr, server });
        }
    }
    anyhow::bail!("no port free for both UDP and TCP on {ip}")
}
