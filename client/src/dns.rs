//! Step 1: the TXT records at an identifier's `_mimi` name (DESIGN §2, §3),
//! from the system resolver, an explicit server, DNS-over-HTTPS, a fixed zone,
//! or obliviously through the relay to a gateway fronting a resolver (§7).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::ProtoErrorKind;
use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::xfer::Protocol;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use mimi_proto::oblivious::{DNS_QUERY_PATH, MEDIA_DNS_MESSAGE};

use crate::error::{Error, Result};
use crate::session::{InnerRequest, Session};
use crate::transport::Transport;

/// A TXT record as its character-strings.
pub type TxtRecord = Vec<Vec<u8>>;

/// Where step 1 asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsMode {
    /// The system's resolver configuration (`/etc/resolv.conf`).
    System,
    /// One server, over UDP (falling back to TCP on truncation) or TCP only.
    Server {
        /// Its address.
        addr: SocketAddr,
        /// TCP only.
        tcp: bool,
    },
    /// DNS-over-HTTPS: a server address and the URL's host and path.
    Doh {
        /// The server's address.
        addr: SocketAddr,
        /// The TLS name (the URL's host).
        tls_name: String,
        /// The URL's path (e.g. `/dns-query`).
        path: String,
    },
    /// Oblivious: the query goes as DNS-over-HTTPS inside OHTTP, through the
    /// relay, to the gateway `gateway` (which fronts a resolver).
    Oblivious {
        /// The gateway host.
        gateway: String,
    },
    /// A fixed zone (DNS name → records), for tests and offline use.
    Static(BTreeMap<String, Vec<TxtRecord>>),
}

/// Step 1, ready to ask.
pub(crate) enum Step1 {
    Resolver(Box<TokioResolver>),
    Oblivious(String),
    Static(BTreeMap<String, Vec<TxtRecord>>),
}

impl Step1 {
    /// Step 1 in `mode`; DNS-over-HTTPS trusts the webpki roots plus `roots`.
    pub(crate) fn new(
        mode: &DnsMode,
        timeout: Duration,
        local: Option<std::net::IpAddr>,
        roots: &[rustls_pki_types::CertificateDer<'static>],
    ) -> Result<Self> {
        let bind = local.map(|ip| SocketAddr::new(ip, 0));
        let mut opts = ResolverOpts::default();
        // A lost UDP datagram must not cost the whole budget: three tries,
        // each with a third of it (found under load by mimi-bench).
        opts.timeout = (timeout / 3).max(Duration::from_millis(300));
        opts.attempts = 3;
        // EDNS0, so that answers up to 1,232 bytes come over UDP (DESIGN §3).
        opts.edns0 = true;
        if matches!(mode, DnsMode::Doh { .. }) {
            opts.tls_config = crate::transport::tls_config(roots, false)?;
        }
        let config = match mode {
            DnsMode::Oblivious { gateway } => return Ok(Self::Oblivious(gateway.clone())),
            DnsMode::Static(zone) => return Ok(Self::Static(zone.clone())),
            DnsMode::System => {
                let mut builder = TokioResolver::builder_tokio()
                    .map_err(|e| Error::Config(format!("system DNS configuration: {e}")))?;
                *builder.options_mut() = opts;
                return Ok(Self::Resolver(Box::new(builder.build())));
            }
            DnsMode::Server { addr, tcp } => {
                let mut c = ResolverConfig::new();
                let server = |protocol| NameServerConfig {
                    bind_addr: bind,
                    ..NameServerConfig::new(*addr, protocol)
                };
                if !tcp {
                    c.add_name_server(server(Protocol::Udp));
                }
                c.add_name_server(server(Protocol::Tcp));
                c
            }
            DnsMode::Doh {
                addr,
                tls_name,
                path,
            } => {
                let mut ns = NameServerConfig::new(*addr, Protocol::Https);
                ns.tls_dns_name = Some(tls_name.clone());
                ns.http_endpoint = Some(path.clone());
                ns.bind_addr = bind;
                let mut c = ResolverConfig::new();
                c.add_name_server(ns);
                c
            }
        };
        let builder =
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
                .with_options(opts);
        Ok(Self::Resolver(Box::new(builder.build())))
    }

    /// The TXT records at `name` (fully qualified). A name with no TXT
    /// records gives an empty list; a name that does not exist, an error.
    pub(crate) async fn txt<T: Transport>(
        &self,
        name: &str,
        session: &Session<T>,
    ) -> Result<Vec<TxtRecord>> {
        match self {
            Self::Static(zone) => zone.get(name).cloned().ok_or(Error::NameNotFound),
            Self::Resolver(resolver) => match resolver.txt_lookup(name).await {
                Ok(lookup) => Ok(lookup
                    .iter()
                    .map(|txt| txt.txt_data().iter().map(|s| s.to_vec()).collect())
                    .collect()),
                Err(e) => Err(lookup_error(&e)),
            },
            Self::Oblivious(gateway) => oblivious_txt(name, gateway, session).await,
        }
    }
}

/// What a failed lookup means (DESIGN §3): only NXDOMAIN and NODATA say
/// "not discoverable"; SERVFAIL, REFUSED, FORMERR, timeouts and unreachable
/// servers are failures of the lookup, never an answer.
fn lookup_error(e: &hickory_resolver::ResolveError) -> Error {
    match e.proto().map(|p| p.kind()) {
        Some(ProtoErrorKind::NoRecordsFound { response_code, .. }) => match *response_code {
            ResponseCode::NXDomain => Error::NameNotFound,
            ResponseCode::NoError => Error::NoMimiRecord,
            code => Error::DnsFailed(format!("the DNS server answered {code}")),
        },
        Some(ProtoErrorKind::Timeout) => Error::DnsTimeout,
        _ => Error::DnsFailed(e.to_string()),
    }
}

/// RFC 8484 inside RFC 9458: the resolver behind `gateway` learns the name
/// but not who asks; the relay learns who asks but not the name.
async fn oblivious_txt<T: Transport>(
    name: &str,
    gateway: &str,
    session: &Session<T>,
) -> Result<Vec<TxtRecord>> {
    let qname = Name::from_ascii(name).map_err(|_| Error::DnsFailed("bad query name".into()))?;
    let mut query = Message::new();
    // ID 0, as RFC 8484 §4.1 recommends for cache friendliness; EDNS0 with
    // the DO bit, so that a validating resolver says whether the answer is
    // authentic (DESIGN §3).
    let mut edns = Edns::new();
    edns.set_max_payload(1232).set_dnssec_ok(true);
    query
        .set_id(0)
        .set_recursion_desired(true)
        .add_query(Query::query(qname, RecordType::TXT))
        .set_edns(edns);
    let body = query
        .to_vec()
        .map_err(|e| Error::DnsFailed(e.to_string()))?;
    let answer = session
        .request(
            gateway,
            InnerRequest {
                method: "POST",
                authority: gateway,
                path: DNS_QUERY_PATH,
                content_type: Some(MEDIA_DNS_MESSAGE),
                body: &body,
            },
        )
        .await?;
    match answer.status {
        200 => {}
        504 => return Err(Error::DnsTimeout),
        s => return Err(Error::ProviderRefused(s)),
    }
    let msg = Message::from_vec(&answer.body).map_err(|_| Error::MalformedAnswer)?;
    if msg.message_type() != MessageType::Response {
        return Err(Error::MalformedAnswer);
    }
    match msg.response_code() {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => return Err(Error::NameNotFound),
        code => return Err(Error::DnsFailed(code.to_string())),
    }
    Ok(msg
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::TXT(txt) => Some(txt.txt_data().iter().map(|s| s.to_vec()).collect()),
            _ => None,
        })
        .collect())
}
