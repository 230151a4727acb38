//! End-to-end scenarios over real sockets with TLS: one test binary, a module
//! per scenario. Parties: client 127.0.0.2, relay 127.0.0.3, gateways
//! 127.0.0.4 and 127.0.0.5, DNS 127.0.0.6.

mod any_relay;
mod cli;
mod connections;
mod deploy;
mod directory_stores;
mod failure;
mod hostile;
mod keys;
mod mappings;
mod oblivious_dns;
mod privacy;
mod processes;
mod quotas;
mod replay_store;
mod replicas;
mod sizes;
mod tokens;

use mimi_client::{Discovery, Outcome};

/// The accounts found, in provider order.
pub(crate) fn accounts(d: &Discovery) -> Vec<String> {
    d.providers
        .iter()
        .flat_map(|p| match &p.outcome {
            Outcome::Found { accounts, .. } => accounts.clone(),
            _ => vec![],
        })
        .collect()
}
