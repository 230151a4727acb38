//! The DNS resolver `/dns-query` forwards to (oblivious DNS, DESIGN §7).

use std::net::SocketAddr;
use std::time::Duration;

use mimi_proto::oblivious::MEDIA_DNS_MESSAGE;

use crate::error::{Error, Result};

use super::TargetResponse;

/// A DNS resolver that `/dns-query` forwards to: UDP, then TCP when the
/// answer is truncated.
///
/// Queries go out with a random ID of the gateway's choosing, and only an
/// answer with that ID and the same question is taken (anything else on the
/// socket is dropped), so an off-path attacker must guess both the port and
/// the ID. The client gets the answer with its own ID back (0, as RFC 8484
/// §4.1 recommends).
#[derive(Debug, Clone)]
pub struct DnsForwarder {
    /// The resolver's address.
    pub addr: SocketAddr,
    /// How long to wait for its answer.
    pub timeout: Duration,
    /// The local address queries leave from (default: any).
    pub bind: Option<std::net::IpAddr>,
}

/// Whether `answer` is the response to the query with `id` and `questions`.
fn answers(answer: &[u8], id: u16, questions: &[hickory_proto::op::Query]) -> Option<bool> {
    let m = hickory_proto::op::Message::from_vec(answer).ok()?;
    let ours = m.id() == id
        && m.message_type() == hickory_proto::op::MessageType::Response
        && m.queries() == questions;
    ours.then(|| m.truncated())
}

impl DnsForwarder {
    pub(super) async fn resolve(&self, query: &[u8]) -> Result<TargetResponse> {
        let parsed =
            hickory_proto::op::Message::from_vec(query).map_err(|_| Error::MalformedQuery)?;
        if parsed.message_type() != hickory_proto::op::MessageType::Query
            || parsed.queries().is_empty()
        {
            return Err(Error::MalformedQuery);
        }
        // The ID is the first two bytes of the header: patched in place, so
        // that nothing else of the client's query or the answer is re-encoded.
        let id: u16 = rand::random();
        let mut outgoing = query.to_vec();
        outgoing[..2].copy_from_slice(&id.to_be_bytes());
        let mut answer =
            tokio::time::timeout(self.timeout, self.exchange(&outgoing, id, parsed.queries()))
                .await
                .map_err(|_| Error::UpstreamTimeout)??;
        answer[..2].copy_from_slice(&parsed.id().to_be_bytes());
        Ok(TargetResponse {
            status: 200,
            content_type: MEDIA_DNS_MESSAGE.into(),
            body: answer,
        })
    }

    async fn exchange(
        &self,
        query: &[u8],
        id: u16,
        questions: &[hickory_proto::op::Query],
    ) -> Result<Vec<u8>> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let bind: SocketAddr = match self.bind {
            Some(ip) => (ip, 0).into(),
            None if self.addr.is_ipv4() => ([0, 0, 0, 0], 0).into(),
            None => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let unavailable = |_| Error::UpstreamUnavailable;
        let socket = tokio::net::UdpSocket::bind(bind)
            .await
            .map_err(unavailable)?;
        socket.connect(self.addr).await.map_err(unavailable)?;
        socket.send(query).await.map_err(unavailable)?;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = socket.recv(&mut buf).await.map_err(unavailable)?;
            match answers(&buf[..n], id, questions) {
                Some(false) => return Ok(buf[..n].to_vec()),
                Some(true) => break,
                // Not the answer to this query (spoofed or stray): dropped.
                None => continue,
            }
        }
        // Truncated: ask again over TCP.
        let socket = if self.addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .map_err(unavailable)?;
        if self.bind.is_some() {
            socket.bind(bind).map_err(unavailable)?;
        }
        let mut tcp = socket.connect(self.addr).await.map_err(unavailable)?;
        let len = u16::try_from(query.len()).map_err(|_| Error::MalformedQuery)?;
        tcp.write_all(&len.to_be_bytes())
            .await
            .map_err(unavailable)?;
        tcp.write_all(query).await.map_err(unavailable)?;
        let n = usize::from(tcp.read_u16().await.map_err(unavailable)?);
        let mut answer = vec![0u8; n];
        tcp.read_exact(&mut answer).await.map_err(unavailable)?;
        match answers(&answer, id, questions) {
            Some(_) => Ok(answer),
            None => Err(Error::UpstreamUnavailable),
        }
    }
}
