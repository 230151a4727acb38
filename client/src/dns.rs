//! Step 1: the TXT records at an identifier's `_mimi` name (DESIGN §2, §3),
//! from the system resolver, an explicit server, DNS-over-HTTPS, a fixed zone,
//! or obliviously through the relay to a gateway fronting a resolver (§7).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use hickory_proto::ProtoErrorKind;
use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::dnssec::{DnssecDnsHandle, Proof, TrustAnchors};
use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::xfer::Protocol;
use hickory_proto::xfer::{DnsHandle, DnsRequestOptions};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::NameServerPool;
use hickory_resolver::name_server::TokioConnectionProvider;
use mimi_proto::oblivious::{DNS_QUERY_PATH, MEDIA_DNS_MESSAGE};

use crate::error::{Error, Result};
use crate::session::{InnerRequest, Session};
use crate::transport::Transport;

/// A TXT record as its character-strings.
pub type TxtRecord = Vec<Vec<u8>>;

/// What DNSSEC says of a step 1 answer (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dnssec {
    /// Signed, and the chain of trust from the trust anchor holds.
    Secure,
    /// Provably unsigned (no chain of trust): usable, and shown as such.
    Insecure,
    /// The signatures or the chain do not hold: never used.
    Bogus,
}

impl Dnssec {
    /// The name used in output: `secure`, `insecure`, `bogus`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secure => "secure",
            Self::Insecure => "insecure",
            Self::Bogus => "bogus",
        }
    }
}

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

impl std::str::FromStr for DnsMode {
    type Err = Error;

    /// Parses a mode as the command line and configuration name it:
    /// `system`, `udp:ADDR:PORT`, `tcp:ADDR:PORT`, `doh:https://HOST[:PORT]/PATH`
    /// (HOST is resolved here, once: blocking) or `oblivious:GATEWAY-HOST`.
    fn from_str(spec: &str) -> Result<Self> {
        let bad = || {
            Error::Config(format!(
                "--dns {spec:?}: expected system, udp:ADDR:PORT, tcp:ADDR:PORT, doh:URL or oblivious:HOST"
            ))
        };
        if spec == "system" {
            return Ok(Self::System);
        }
        let (kind, rest) = spec.split_once(':').ok_or_else(bad)?;
        match kind {
            "udp" | "tcp" => Ok(Self::Server {
                addr: rest.parse().map_err(|_| bad())?,
                tcp: kind == "tcp",
            }),
            "oblivious" => {
                mimi_proto::record::Endpoint::parse(rest).ok_or_else(bad)?;
                Ok(Self::Oblivious {
                    gateway: rest.to_owned(),
                })
            }
            "doh" => {
                let uri: http::Uri = rest.parse().map_err(|_| bad())?;
                if uri.scheme_str() != Some("https") {
                    return Err(bad());
                }
                let host = uri
                    .host()
                    .ok_or_else(bad)?
                    .trim_matches(['[', ']'])
                    .to_owned();
                let port = uri.port_u16().unwrap_or(443);
                let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
                    .map_err(|e| {
                        Error::Config(format!("--dns {spec:?}: cannot resolve {host}: {e}"))
                    })?
                    .next()
                    .ok_or_else(bad)?;
                Ok(Self::Doh {
                    addr,
                    tls_name: host,
                    path: uri.path().to_owned(),
                })
            }
            _ => Err(bad()),
        }
    }
}

/// A validating handle on the same servers as the resolver, for the raw
/// responses the zone-cut check reads (the resolver keeps no authority section).
type RawValidating = DnssecDnsHandle<NameServerPool<TokioConnectionProvider>>;

/// Step 1, ready to ask.
pub(crate) enum Step1 {
    Resolver(Box<TokioResolver>, Box<RawValidating>),
    Oblivious(String),
    Static(BTreeMap<String, Vec<TxtRecord>>),
}

impl Step1 {
    /// Step 1 in `mode`; DNS-over-HTTPS trusts the webpki roots plus `roots`;
    /// answers are validated from `trust_anchor` (DNSKEY records in
    /// zone-file form), or from the root's anchors built in.
    pub(crate) fn new(
        mode: &DnsMode,
        timeout: Duration,
        local: Option<std::net::IpAddr>,
        roots: &[rustls_pki_types::CertificateDer<'static>],
        trust_anchor: Option<&std::path::Path>,
    ) -> Result<Self> {
        let bind = local.map(|ip| SocketAddr::new(ip, 0));
        let mut opts = ResolverOpts::default();
        // A lost UDP datagram must not cost the whole budget: three tries,
        // each with a third of it (found under load by mimi-bench).
        opts.timeout = (timeout / 3).max(Duration::from_millis(300));
        opts.attempts = 3;
        // EDNS0 with the DO bit, and the chain validated here (DESIGN §3).
        opts.edns0 = true;
        opts.validate = true;
        let anchors = match trust_anchor {
            Some(path) => TrustAnchors::from_file(path)
                .map_err(|e| Error::Config(format!("trust anchor {}: {e}", path.display())))?,
            None => TrustAnchors::default(),
        };
        if anchors.is_empty() {
            return Err(Error::Config(
                "the trust anchor file holds no DNSKEY".into(),
            ));
        }
        let anchors = std::sync::Arc::new(anchors);
        if matches!(mode, DnsMode::Doh { .. }) {
            opts.tls_config = crate::transport::tls_config(roots, false)?;
        }
        let config = match mode {
            DnsMode::Oblivious { gateway } => return Ok(Self::Oblivious(gateway.clone())),
            DnsMode::Static(zone) => return Ok(Self::Static(zone.clone())),
            DnsMode::System => {
                let (config, _) = hickory_resolver::system_conf::read_system_conf()
                    .map_err(|e| Error::Config(format!("system DNS configuration: {e}")))?;
                config
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
        let raw = DnssecDnsHandle::with_trust_anchor(
            NameServerPool::from_config(
                config.name_servers().to_vec().into(),
                opts.clone(),
                TokioConnectionProvider::default(),
            ),
            anchors.clone(),
        );
        let builder =
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
                .with_options(opts)
                .with_trust_anchor(anchors);
        Ok(Self::Resolver(Box::new(builder.build()), Box::new(raw)))
    }

    /// The TXT records at `name` (fully qualified), and what DNSSEC says of
    /// them. A name with no TXT records, or that does not exist, is an error.
    pub(crate) async fn txt<T: Transport>(
        &self,
        name: &str,
        session: &Session<T>,
    ) -> Result<(Vec<TxtRecord>, Dnssec)> {
        match self {
            // A fixed zone is the caller's own data: nothing to validate.
            Self::Static(zone) => zone
                .get(name)
                .cloned()
                .map(|r| (r, Dnssec::Insecure))
                .ok_or(Error::NameNotFound),
            Self::Resolver(resolver, raw) => resolver_txt(resolver, raw, name).await,
            Self::Oblivious(gateway) => oblivious_txt(name, gateway, session).await,
        }
    }
}

/// A validating TXT lookup on its own, for programs that need step 1's
/// answer and verdict without step 2 (a validating resolver in front of a
/// DNS gateway, diagnostics).
pub struct Validator {
    step1: Step1,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator").finish_non_exhaustive()
    }
}

impl Validator {
    /// A validator asking the server at `addr` (UDP, TCP on truncation)
    /// from `local`, trusting `trust_anchor` (or the root's anchors).
    pub fn new(
        addr: SocketAddr,
        timeout: Duration,
        local: Option<std::net::IpAddr>,
        trust_anchor: Option<&std::path::Path>,
    ) -> Result<Self> {
        let mode = DnsMode::Server { addr, tcp: false };
        Ok(Self {
            step1: Step1::new(&mode, timeout, local, &[], trust_anchor)?,
        })
    }

    /// The TXT records at `name` (fully qualified) and what DNSSEC says of
    /// them; a bogus answer comes back with its records, for the caller to
    /// refuse.
    pub async fn txt(&self, name: &str) -> Result<(Vec<TxtRecord>, Dnssec)> {
        match &self.step1 {
            Step1::Resolver(resolver, raw) => resolver_txt(resolver, raw, name).await,
            _ => Err(Error::Config("not a resolver".into())),
        }
    }
}

/// A validated TXT lookup through the resolver, with the zone-cut check.
async fn resolver_txt(
    resolver: &TokioResolver,
    raw: &RawValidating,
    name: &str,
) -> Result<(Vec<TxtRecord>, Dnssec)> {
    match resolver.txt_lookup(name).await {
        Ok(lookup) => {
            let mut proofs = Vec::new();
            let mut records = Vec::new();
            for record in lookup.as_lookup().records() {
                if let RData::TXT(txt) = record.data() {
                    proofs.push(record.proof());
                    records.push(txt.txt_data().iter().map(|s| s.to_vec()).collect());
                }
            }
            let verdict = match verdict(&proofs) {
                Dnssec::Insecure => insecure_or_stripped(raw, name).await?,
                v => v,
            };
            Ok((records, verdict))
        }
        Err(e) => Err(lookup_error(&e, name)),
    }
}

/// One verdict for an answer: secure only if every record is; bogus if any
/// record failed or could not be judged.
fn verdict(proofs: &[Proof]) -> Dnssec {
    if proofs
        .iter()
        .any(|p| matches!(p, Proof::Bogus | Proof::Indeterminate))
    {
        Dnssec::Bogus
    } else if !proofs.is_empty() && proofs.iter().all(|p| *p == Proof::Secure) {
        Dnssec::Secure
    } else {
        Dnssec::Insecure
    }
}

/// An answer hickory calls insecure is insecure only if it lies below a
/// provably unsigned delegation: an NSEC, validated, owned by a zone cut
/// above the name, whose type map has NS and no DS (RFC 4035 §5.2). hickory
/// 0.25 accepts any authenticated "no DS here" at the record's own name, so
/// a forger who strips a signed zone's signatures would pass as insecure;
/// here, reaching a signed cut first makes the answer bogus.
async fn insecure_or_stripped(raw: &RawValidating, name: &str) -> Result<Dnssec> {
    let mut at = Name::from_ascii(name).map_err(|_| Error::DnsFailed("bad query name".into()))?;
    let mut options = DnsRequestOptions::default();
    options.use_edns = true;
    loop {
        let response = raw
            .lookup(Query::query(at.clone(), RecordType::DS), options)
            .next()
            .await;
        match response {
            Some(Ok(response)) => {
                let signed_cut = response
                    .answers()
                    .iter()
                    .any(|r| r.record_type() == RecordType::DS && r.proof() == Proof::Secure);
                if signed_cut {
                    return Ok(Dnssec::Bogus);
                }
                let unsigned_cut = response.name_servers().iter().any(|r| {
                    r.name() == &at
                        && r.proof() == Proof::Secure
                        && match r.data() {
                            RData::DNSSEC(DNSSECRData::NSEC(nsec)) => {
                                let types: Vec<RecordType> = nsec.type_bit_maps().collect();
                                types.contains(&RecordType::NS) && !types.contains(&RecordType::DS)
                            }
                            _ => false,
                        }
                });
                if unsigned_cut {
                    return Ok(Dnssec::Insecure);
                }
            }
            // No DS, proven or not: not a cut we can use; look further up.
            Some(Err(e)) if e.is_no_records_found() || e.kind().as_nsec().is_some() => {}
            Some(Err(e)) => return Err(Error::DnsFailed(without_name(&e.to_string(), name))),
            None => return Err(Error::DnsFailed("no answer".into())),
        }
        if at.is_root() {
            // The root is signed: it is the trust anchor.
            return Ok(Dnssec::Bogus);
        }
        at = at.base_name();
    }
}

/// What a failed lookup means (DESIGN §3): only NXDOMAIN and NODATA say
/// "not discoverable"; SERVFAIL, REFUSED, FORMERR, timeouts and unreachable
/// servers are failures of the lookup, never an answer.
/// hickory's error texts may quote the query, and the name stands for the
/// identifier: it is taken out, so that error messages can be shown and logged.
fn without_name(text: &str, name: &str) -> String {
    let bare = name.trim_end_matches('.');
    if bare.is_empty() {
        return text.to_owned();
    }
    let mut out = text.to_owned();
    for form in [name.to_owned(), bare.to_owned(), bare.to_ascii_lowercase()] {
        out = out.replace(&form, "<name>");
    }
    out
}

fn lookup_error(e: &hickory_resolver::ResolveError, name: &str) -> Error {
    match e.proto().map(|p| p.kind()) {
        Some(ProtoErrorKind::NoRecordsFound { response_code, .. }) => match *response_code {
            ResponseCode::NXDomain => Error::NameNotFound,
            ResponseCode::NoError => Error::NoMimiRecord,
            code => Error::DnsFailed(format!("the DNS server answered {code}")),
        },
        Some(ProtoErrorKind::Timeout) => Error::DnsTimeout,
        Some(ProtoErrorKind::Nsec { .. }) => Error::DnsBogus,
        _ => Error::DnsFailed(without_name(&e.to_string(), name)),
    }
}

/// RFC 8484 inside RFC 9458: the resolver behind `gateway` learns the name
/// but not who asks; the relay learns who asks but not the name.
async fn oblivious_txt<T: Transport>(
    name: &str,
    gateway: &str,
    session: &Session<T>,
) -> Result<(Vec<TxtRecord>, Dnssec)> {
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
    let records: Vec<TxtRecord> = msg
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::TXT(txt) => Some(txt.txt_data().iter().map(|s| s.to_vec()).collect()),
            _ => None,
        })
        .collect();
    // The validating resolver behind the gateway says so with AD; the OHTTP
    // encryption to a gateway with checked keys protects the bit on the way
    // (RFC 4035 §4.9.3). A bogus answer comes as SERVFAIL.
    let dnssec = if msg.authentic_data() {
        Dnssec::Secure
    } else {
        Dnssec::Insecure
    };
    Ok((records, dnssec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts_lose_the_name() {
        let text = "no record found for Query { name: Name(\"_mimi.alice.example.com.\"), query_type: TXT }";
        let clean = without_name(text, "_mimi.alice.example.com.");
        assert!(!clean.contains("alice"), "{clean}");
        assert!(clean.contains("<name>"));
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(&[Proof::Secure, Proof::Secure]), Dnssec::Secure);
        assert_eq!(verdict(&[Proof::Secure, Proof::Insecure]), Dnssec::Insecure);
        assert_eq!(verdict(&[Proof::Secure, Proof::Bogus]), Dnssec::Bogus);
        assert_eq!(verdict(&[Proof::Indeterminate]), Dnssec::Bogus);
        assert_eq!(verdict(&[]), Dnssec::Insecure);
    }

    #[test]
    fn modes_parse_as_the_command_line_names_them() {
        assert_eq!("system".parse::<DnsMode>(), Ok(DnsMode::System));
        assert_eq!(
            "tcp:127.0.0.6:53".parse::<DnsMode>(),
            Ok(DnsMode::Server {
                addr: "127.0.0.6:53".parse().unwrap(),
                tcp: true
            })
        );
        assert_eq!(
            "doh:https://127.0.0.7:8443/dns-query".parse::<DnsMode>(),
            Ok(DnsMode::Doh {
                addr: "127.0.0.7:8443".parse().unwrap(),
                tls_name: "127.0.0.7".into(),
                path: "/dns-query".into()
            })
        );
        assert_eq!(
            "oblivious:mimi.example".parse::<DnsMode>(),
            Ok(DnsMode::Oblivious {
                gateway: "mimi.example".into()
            })
        );
        for bad in [
            "",
            "udp:nowhere",
            "doh:http://x.example/q",
            "dot:1.1.1.1:853",
        ] {
            assert!(
                matches!(bad.parse::<DnsMode>(), Err(Error::Config(_))),
                "{bad}"
            );
        }
    }
}
