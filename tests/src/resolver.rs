//! A validating resolver for the oblivious mode (DESIGN §3, §7): the DNS
//! gateway forwards clients' queries here; it resolves TXT questions from the
//! testbed's DNS server, validating from the private root, and answers with
//! AD set for a secure answer and SERVFAIL for a bogus one, as validating
//! resolvers do. Built on `mimi_client::dns::Validator`.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{RData, Record, RecordType};
use mimi_client::dns::Validator;
use mimi_client::{Dnssec, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use crate::recorder::{Exchange, Party, Recorder};

/// The answer to one query, or `None` for what is not a query.
async fn answer(validator: &Validator, query: &[u8], udp: bool) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    let question = q.queries().first()?.clone();
    let mut m = Message::new();
    m.set_id(q.id())
        .set_message_type(MessageType::Response)
        .set_recursion_desired(q.recursion_desired())
        .set_recursion_available(true)
        .add_query(question.clone());
    if question.query_type() != RecordType::TXT {
        m.set_response_code(ResponseCode::Refused);
        return m.to_vec().ok();
    }
    match validator.txt(&question.name().to_ascii()).await {
        Ok((_, Dnssec::Bogus)) => {
            m.set_response_code(ResponseCode::ServFail);
        }
        Ok((records, dnssec)) => {
            for strings in records {
                let strings = strings
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect();
                m.add_answer(Record::from_rdata(
                    question.name().clone(),
                    60,
                    RData::TXT(TXT::new(strings)),
                ));
            }
            m.set_authentic_data(dnssec == Dnssec::Secure);
        }
        Err(Error::NameNotFound) => {
            m.set_response_code(ResponseCode::NXDomain);
        }
        Err(Error::NoMimiRecord) => {}
        Err(_) => {
            m.set_response_code(ResponseCode::ServFail);
        }
    }
    let bytes = m.to_vec().ok()?;
    // Over UDP, what does not fit the client's EDNS size goes truncated.
    let limit = q
        .extensions()
        .as_ref()
        .map_or(512, |e| usize::from(e.max_payload()));
    if udp && bytes.len() > limit.max(512) {
        m.take_answers();
        m.set_truncated(true);
        return m.to_vec().ok();
    }
    Some(bytes)
}

/// Starts the resolver on `ip` (UDP and TCP, one port), resolving from
/// `upstream` with `trust_anchor`, recording what it is asked as
/// [`Party::Resolver`].
pub async fn spawn(
    ip: IpAddr,
    upstream: SocketAddr,
    trust_anchor: &Path,
    recorder: Arc<Recorder>,
) -> Result<SocketAddr> {
    let validator = Arc::new(Validator::new(
        upstream,
        Duration::from_secs(3),
        Some(ip),
        Some(trust_anchor),
    )?);
    let udp = Arc::new(UdpSocket::bind((ip, 0)).await?);
    let addr = udp.local_addr()?;
    let tcp = TcpListener::bind(addr).await?;
    let (v, rec) = (validator.clone(), recorder.clone());
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
            let query = buf[..n].to_vec();
            let (udp, v, rec) = (udp.clone(), v.clone(), rec.clone());
            tokio::spawn(async move {
                if let Some(a) = answer(&v, &query, true).await {
                    record(&rec, peer, &query);
                    let _ = udp.send_to(&a, peer).await;
                }
            });
        }
    });
    tokio::spawn(async move {
        while let Ok((mut s, peer)) = tcp.accept().await {
            let (v, rec) = (validator.clone(), recorder.clone());
            tokio::spawn(async move {
                let Ok(n) = s.read_u16().await else { return };
                let mut query = vec![0u8; usize::from(n)];
                if s.read_exact(&mut query).await.is_err() {
                    return;
                }
                if let Some(a) = answer(&v, &query, false).await {
                    record(&rec, peer, &query);
                    let Ok(len) = u16::try_from(a.len()) else {
                        return;
                    };
                    let _ = s.write_all(&len.to_be_bytes()).await;
                    let _ = s.write_all(&a).await;
                }
            });
        }
    });
    Ok(addr)
}

fn record(recorder: &Recorder, peer: SocketAddr, query: &[u8]) {
    let names = Message::from_vec(query)
        .map(|m| {
            m.queries()
                .iter()
                .map(|q| format!("{} {}", q.name(), q.query_type()))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    recorder.record(Exchange {
        party: Party::Resolver,
        peer,
        received: names.into_bytes(),
        sent: Vec::new(),
    });
}
