//! Tokens counted per client and window: per account for clients with a
//! credential, per address (IPv6 by /64) for anonymous ones. Fixed windows
//! aligned to the epoch, so that every counter resets at once and memory is
//! dropped with it; at most `max_clients` counters in one window (more are
//! refused, failing closed, rather than let through uncounted).

use std::collections::HashMap;
use std::sync::Mutex;

/// Who is counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Client {
    /// An account (the credential's subject).
    Account(String),
    /// An anonymous client's address key.
    Address(std::net::IpAddr),
}

/// Counters for one window.
#[derive(Debug)]
pub struct Quotas {
    window: u64,
    max_clients: usize,
    state: Mutex<(u64, HashMap<Client, u64>)>,
}

impl Quotas {
    /// Counters over windows of `window` seconds.
    pub fn new(window: u64, max_clients: usize) -> Self {
        Self {
            window: window.max(1),
            max_clients,
            state: Mutex::new((0, HashMap::new())),
        }
    }

    /// The window's length.
    pub fn window(&self) -> u64 {
        self.window
    }

    /// Takes `n` of `client`'s `quota` in the window holding `now`: `Ok`,
    /// or `Err(seconds until the window ends)`.
    pub fn take(&self, client: Client, n: u64, quota: u64, now: u64) -> Result<(), u64> {
        let start = now - now % self.window;
        let reset = start + self.window - now;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.0 != start {
            *state = (start, HashMap::new());
        }
        let full = state.1.len() >= self.max_clients;
        let used = match state.1.get_mut(&client) {
            Some(used) => used,
            None if full => return Err(reset),
            None => state.1.entry(client).or_insert(0),
        };
        if *used + n > quota {
            return Err(reset);
        }
        *used += n;
        Ok(())
    }

    /// Gives back `n` tokens taken at `taken` (the issuer issued nothing):
    /// a client is not charged for the issuer's failure. Nothing happens if
    /// the window has since ended.
    pub fn refund(&self, client: &Client, n: u64, taken: u64) {
        let start = taken - taken % self.window;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.0 == start {
            if let Some(used) = state.1.get_mut(client) {
                *used = used.saturating_sub(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_per_client_and_window_and_a_bounded_table() {
        let q = Quotas::new(100, 2);
        let a = Client::Account("a".into());
        assert_eq!(q.take(a.clone(), 8, 10, 1_000), Ok(()));
        assert_eq!(q.take(a.clone(), 3, 10, 1_050), Err(50));
        assert_eq!(q.take(a.clone(), 2, 10, 1_050), Ok(()));
        let b = Client::Address([127, 0, 0, 9].into());
        assert_eq!(q.take(b, 1, 10, 1_050), Ok(()));
        assert_eq!(
            q.take(Client::Account("c".into()), 1, 10, 1_050),
            Err(50),
            "table full"
        );
        q.refund(&a, 2, 1_060);
        assert_eq!(q.take(a.clone(), 2, 10, 1_070), Ok(()), "refunded");
        assert_eq!(q.take(a.clone(), 10, 10, 1_100), Ok(()), "a new window");
        q.refund(&a, 10, 1_099);
        assert_eq!(
            q.take(a, 1, 10, 1_100),
            Err(100),
            "no refund into another window"
        );
    }
}
