//! The attesters an issuer serves: each a pinned client certificate with a
//! budget of tokens per window. Counted in this process: with replicas, each
//! replica grants its own budget (docs/decisions.md).

use std::collections::HashMap;
use std::sync::Mutex;

use mimi_server_core::client_auth::PeerCertificate;

/// One attester and what it has used.
#[derive(Debug)]
struct Attester {
    name: String,
    budget: u64,
    window: u64,
    used: Mutex<(u64, u64)>,
}

/// Why an attester's request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No certificate, or one not listed.
    Unknown,
    /// Over its budget until this many seconds pass.
    OverBudget(u64),
}

/// Every configured attester.
#[derive(Debug, Default)]
pub struct Attesters {
    by_cert: HashMap<PeerCertificate, Attester>,
}

impl Attesters {
    /// From `(name, certificate, budget, window)`.
    pub fn new(list: impl IntoIterator<Item = (String, PeerCertificate, u64, u64)>) -> Self {
        Self {
            by_cert: list
                .into_iter()
                .map(|(name, cert, budget, window)| {
                    (
                        cert,
                        Attester {
                            name,
                            budget,
                            window,
                            used: Mutex::new((0, 0)),
                        },
                    )
                })
                .collect(),
        }
    }

    /// The pinned certificates, for the TLS verifier.
    pub fn certificates(&self) -> impl Iterator<Item = PeerCertificate> + '_ {
        self.by_cert.keys().copied()
    }

    /// Whether any attester is configured.
    pub fn is_empty(&self) -> bool {
        self.by_cert.is_empty()
    }

    /// Takes `n` tokens from the budget of the attester presenting `cert`:
    /// its name, or why not.
    pub fn charge(
        &self,
        cert: Option<&PeerCertificate>,
        n: u64,
        now: u64,
    ) -> Result<&str, Refusal> {
        let a = cert
            .and_then(|c| self.by_cert.get(c))
            .ok_or(Refusal::Unknown)?;
        let mut used = a.used.lock().unwrap_or_else(|p| p.into_inner());
        let window_start = now - now % a.window;
        if used.0 != window_start {
            *used = (window_start, 0);
        }
        if used.1 + n > a.budget {
            return Err(Refusal::OverBudget(window_start + a.window - now));
        }
        used.1 += n;
        Ok(&a.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_per_window_and_unknown_certificates() {
        let cert = PeerCertificate([1; 32]);
        let a = Attesters::new([("relay".to_string(), cert, 10, 100)]);
        assert_eq!(a.charge(None, 1, 1_000), Err(Refusal::Unknown));
        assert_eq!(
            a.charge(Some(&PeerCertificate([2; 32])), 1, 1_000),
            Err(Refusal::Unknown)
        );
        assert_eq!(a.charge(Some(&cert), 8, 1_000), Ok("relay"));
        assert_eq!(
            a.charge(Some(&cert), 3, 1_010),
            Err(Refusal::OverBudget(90))
        );
        assert_eq!(a.charge(Some(&cert), 2, 1_010), Ok("relay"));
        assert_eq!(
            a.charge(Some(&cert), 10, 1_100),
            Ok("relay"),
            "a new window"
        );
    }
}
