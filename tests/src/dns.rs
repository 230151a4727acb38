//! The testbed's authoritative DNS server (hickory-server): in-memory zones
//! holding the sample MIMI records, and a recording tap in front of them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use std::collections::HashMap;

use hickory_proto::dnssec::crypto::EcdsaSigningKey;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS};
use hickory_proto::dnssec::{Algorithm, DigestType, PublicKey, SigSigner, SigningKey};
use hickory_proto::rr::rdata::{NS, SOA, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_server::ServerFuture;
use hickory_server::authority::{AuthorityObject, Catalog, ZoneType};
use hickory_server::dnssec::NxProofKind;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryAuthority;
use tokio::net::{TcpListener, UdpSocket};

use crate::recorder::{Exchange, Party, Recorder};

/// Records who asked what, then lets the catalog answer. A `DS` query for a
/// zone's apex goes to the catalog without that zone, so that the parent
/// answers it, as a DNS hierarchy would (one server holds every zone here).
struct Tap {
    catalog: Catalog,
    parents: HashMap<LowerName, Catalog>,
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
        let parent = request
            .queries()
            .first()
            .filter(|q| q.query_type() == RecordType::DS)
            .and_then(|q| self.parents.get(q.name()));
        parent
            .unwrap_or(&self.catalog)
            .handle_request(request, response_handle)
            .await
    }
}

/// One zone: its origin, TXT records as (name, text), and whether it is signed.
#[derive(Debug, Clone)]
pub struct Zone {
    /// The origin, fully qualified (`example.com.`).
    pub origin: String,
    /// TXT records: (fully qualified name, text).
    pub records: Vec<(String, String)>,
    /// Signed (DNSSEC), with a DS in its parent; else an unsigned delegation.
    pub signed: bool,
    /// TXT records changed after the zone was signed (name, text): their
    /// signatures no longer match, for the forged-answer tests.
    pub tampered: Vec<(String, String)>,
}

/// A running DNS server.
pub struct DnsServer {
    /// Its address (UDP and TCP on the same port).
    pub addr: SocketAddr,
    /// The private root's key, as a DNSKEY record in zone-file form: the
    /// trust anchor for clients that validate.
    pub trust_anchor: String,
    server: ServerFuture<Tap>,
}

impl DnsServer {
    /// Stops it.
    pub async fn stop(mut self) {
        let _ = self.server.shutdown_gracefully().await;
    }
}

/// How long signatures are valid (the testbed runs for minutes).
const SIGNATURE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// The one name server every zone names (this server).
const NAME_SERVER: &str = "ns.testbed.";

fn soa_record(origin: &Name) -> Result<Record> {
    let soa = SOA::new(
        Name::from_ascii(NAME_SERVER)?,
        Name::from_ascii("hostmaster.testbed.")?,
        1,
        3600,
        600,
        86400,
        60,
    );
    Ok(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)))
}

fn txt_record(name: &str, text: &str) -> Result<Record> {
    let name = Name::from_ascii(name).with_context(|| format!("record name {name}"))?;
    // Split long texts into 255-octet character-strings.
    let strings: Vec<String> = text
        .as_bytes()
        .chunks(255)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    Ok(Record::from_rdata(name, 60, RData::TXT(TXT::new(strings))))
}

/// Serves `zones` under a private, signed root on `ip`, port 0: each zone is
/// delegated from the root or from the zone it lies in, with a DS there when
/// it is signed. The root's key is the trust anchor ([`DnsServer::trust_anchor`]).
pub async fn spawn(
    ip: std::net::IpAddr,
    zones: &[Zone],
    recorder: Arc<Recorder>,
) -> Result<DnsServer> {
    let mut all: Vec<Zone> = zones.to_vec();
    all.push(Zone {
        origin: ".".into(),
        records: Vec::new(),
        signed: true,
        tampered: Vec::new(),
    });
    let names: Vec<Name> = all
        .iter()
        .map(|z| Name::from_ascii(&z.origin))
        .collect::<Result<_, _>>()?;
    // The zone each lies in: the longest other origin that is its ancestor.
    let parent_of = |i: usize| -> Option<usize> {
        (0..names.len())
            .filter(|&j| j != i && names[j].zone_of(&names[i]) && names[j] != names[i])
            .max_by_key(|&j| names[j].num_labels())
    };
    // Children are signed first: their DS goes into their parent.
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(names[i].num_labels()));
    let mut keys: HashMap<usize, DNSKEY> = HashMap::new();
    let mut authorities: Vec<(LowerName, Arc<dyn AuthorityObject>)> = Vec::new();
    let mut trust_anchor = String::new();
    for &i in &order {
        let zone = &all[i];
        let origin = names[i].clone();
        let proof = zone.signed.then_some(NxProofKind::Nsec);
        let mut authority =
            InMemoryAuthority::empty(origin.clone(), ZoneType::Primary, false, proof);
        authority.upsert_mut(soa_record(&origin)?, 1);
        let ns_name = Name::from_ascii(NAME_SERVER)?;
        authority.upsert_mut(
            Record::from_rdata(origin.clone(), 60, RData::NS(NS(ns_name.clone()))),
            1,
        );
        for (name, text) in &zone.records {
            authority.upsert_mut(txt_record(name, text)?, 1);
        }
        // Delegations to the zones that lie directly in this one.
        for (c, child) in names.iter().enumerate() {
            if parent_of(c) != Some(i) {
                continue;
            }
            authority.upsert_mut(
                Record::from_rdata(child.clone(), 60, RData::NS(NS(ns_name.clone()))),
                1,
            );
            if let Some(key) = keys.get(&c) {
                let ds = DS::new(
                    key.calculate_key_tag()?,
                    key.public_key().algorithm(),
                    DigestType::SHA256,
                    key.to_digest(child, DigestType::SHA256)?.as_ref().to_vec(),
                );
                authority.upsert_mut(
                    Record::from_rdata(child.clone(), 60, RData::DNSSEC(DNSSECRData::DS(ds))),
                    1,
                );
            }
        }
        if zone.signed {
            let pkcs8 = EcdsaSigningKey::generate_pkcs8(Algorithm::ECDSAP256SHA256)?;
            let signing = EcdsaSigningKey::from_pkcs8(&pkcs8, Algorithm::ECDSAP256SHA256)?;
            let dnskey = DNSKEY::from_key(&signing.to_public_key()?);
            let signer = SigSigner::dnssec(
                dnskey.clone(),
                Box::new(signing),
                origin.clone(),
                SIGNATURE_LIFETIME,
            );
            authority.add_zone_signing_key_mut(signer)?;
            authority.secure_zone_mut()?;
            if origin.is_root() {
                let anchor = Record::from_rdata(
                    origin.clone(),
                    3600,
                    RData::DNSSEC(DNSSECRData::DNSKEY(dnskey.clone())),
                );
                trust_anchor = format!("{anchor}\n");
            }
            keys.insert(i, dnskey);
            // Records changed after signing: their signatures no longer match.
            for (name, text) in &zone.tampered {
                authority.upsert_mut(txt_record(name, text)?, 2);
            }
        }
        authorities.push((LowerName::new(&origin), Arc::new(authority)));
    }
    let catalog_of = |without: Option<&LowerName>| {
        let mut catalog = Catalog::new();
        for (name, authority) in &authorities {
            if Some(name) != without {
                catalog.upsert(name.clone(), vec![authority.clone()]);
            }
        }
        catalog
    };
    let catalog = catalog_of(None);
    let parents = authorities
        .iter()
        .filter(|(name, _)| !name.is_root())
        .map(|(name, _)| (name.clone(), catalog_of(Some(name))))
        .collect();
    let mut server = ServerFuture::new(Tap {
        catalog,
        parents,
        recorder,
    });
    // UDP and TCP must share a port: take one for UDP, then try it for TCP;
    // on the rare collision, start over with another.
    for _ in 0..10 {
        let udp = UdpSocket::bind((ip, 0)).await?;
        let addr = udp.local_addr()?;
        if let Ok(tcp) = TcpListener::bind(addr).await {
            server.register_socket(udp);
            server.register_listener(tcp, Duration::from_secs(5));
            return Ok(DnsServer {
                addr,
                trust_anchor,
                server,
            });
        }
    }
    anyhow::bail!("no port free for both UDP and TCP on {ip}")
}
