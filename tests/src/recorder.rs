//! What each party actually received and sent, recorded at the party itself
//! (after TLS, before any processing), so the privacy tests and the demo's
//! "who saw what" table speak from evidence.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use base64::Engine;

/// Who recorded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Party {
    /// The relay.
    Relay,
    /// A provider's gateway, by provider name.
    Gateway(String),
    /// The authoritative DNS server.
    Dns,
    /// The validating resolver behind the DNS gateway (oblivious mode).
    Resolver,
}

impl std::fmt::Display for Party {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Relay => f.write_str("relay"),
            Self::Gateway(name) => write!(f, "gateway {name}"),
            Self::Dns => f.write_str("DNS server"),
            Self::Resolver => f.write_str("resolver"),
        }
    }
}

/// One exchange as one party saw it.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The recording party.
    pub party: Party,
    /// The address the request came from (the TCP or UDP peer).
    pub peer: SocketAddr,
    /// Everything received: request line, headers and body (for DNS, the query name and message).
    pub received: Vec<u8>,
    /// Everything sent back: status, headers and body.
    pub sent: Vec<u8>,
}

/// The shared record.
#[derive(Debug, Default)]
pub struct Recorder {
    exchanges: Mutex<Vec<Exchange>>,
    disabled: bool,
}

impl Recorder {
    /// A recorder that keeps nothing (for benchmarks).
    pub fn disabled() -> Self {
        Self {
            disabled: true,
            ..Self::default()
        }
    }

    /// Adds an exchange.
    pub fn record(&self, exchange: Exchange) {
        if self.disabled {
            return;
        }
        if let Ok(mut v) = self.exchanges.lock() {
            v.push(exchange);
        }
    }

    /// Everything one party recorded.
    pub fn of(&self, party: &Party) -> Vec<Exchange> {
        self.exchanges
            .lock()
            .map(|v| v.iter().filter(|e| &e.party == party).cloned().collect())
            .unwrap_or_default()
    }

    /// Every exchange.
    pub fn all(&self) -> Vec<Exchange> {
        self.exchanges.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The peer addresses a party saw.
    pub fn peers(&self, party: &Party) -> Vec<IpAddr> {
        let mut ips: Vec<IpAddr> = self.of(party).iter().map(|e| e.peer.ip()).collect();
        ips.sort();
        ips.dedup();
        ips
    }

    /// Forgets everything (between scenarios).
    pub fn clear(&self) {
        if let Ok(mut v) = self.exchanges.lock() {
            v.clear();
        }
    }
}

/// Whether `haystack` holds `needle` in any form a careless component might
/// leak it in: as is, upper or lower case, hex (either case), or base64
/// (standard or URL-safe, at any alignment).
pub fn contains_any_form(haystack: &[u8], needle: &str) -> bool {
    forms(needle)
        .iter()
        .any(|f| !f.is_empty() && find(haystack, f.as_bytes()))
}

/// The forms searched by [`contains_any_form`].
pub fn forms(needle: &str) -> Vec<String> {
    let mut out = vec![
        needle.to_owned(),
        needle.to_lowercase(),
        needle.to_uppercase(),
    ];
    out.push(hex::encode(needle.as_bytes()));
    out.push(hex::encode_upper(needle.as_bytes()));
    for engine in [
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        for shift in 0..3usize {
            // Encode with `shift` bytes before it; keep only the characters
            // that depend on the needle alone.
            let mut bytes = vec![0u8; shift];
            bytes.extend_from_slice(needle.as_bytes());
            let encoded = engine.encode(&bytes);
            let start = if shift == 0 {
                0
            } else {
                (shift * 4).div_ceil(3)
            };
            let whole = bytes.len() / 3 * 4;
            if whole > start + 4 {
                out.push(encoded[start..whole].to_owned());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_form_and_nothing_else() {
        let id = "alice.example.com";
        for hay in [
            format!("x{id}y"),
            format!("x{}y", id.to_uppercase()),
            format!("..{}..", hex::encode(id)),
            format!(
                "..{}..",
                base64::engine::general_purpose::STANDARD.encode(format!("a{id}"))
            ),
            format!(
                "..{}..",
                base64::engine::general_purpose::URL_SAFE.encode(format!("ab{id}z"))
            ),
        ] {
            assert!(contains_any_form(hay.as_bytes(), id), "{hay}");
        }
        assert!(!contains_any_form(b"bob.example.com", id));
    }
}
