//! One lookup: `cargo run -p mimi-client --example lookup -- https://relay.example alice.example.com`
//!
//! Step 1 asks the system's DNS resolver which providers list the identifier;
//! step 2 asks each of them, through the relay, with keys checked over TLS to
//! the provider itself and against the relay's shared copy.

use std::time::Duration;

use mimi_client::{Discoverer, Options, Outcome, RelayTransport};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(relay), Some(identifier)) = (args.next(), args.next()) else {
        eprintln!("usage: lookup RELAY-URL IDENTIFIER");
        std::process::exit(2);
    };
    let transport = RelayTransport::new(&relay, &[], Duration::from_secs(10))?;
    let discoverer = Discoverer::new(transport, Options::default())?;
    let found = discoverer.discover(&identifier).await?;
    println!(
        "{} ({}), asked {}",
        found.identifier, found.kind, found.dns_name
    );
    for p in &found.providers {
        let what = match &p.outcome {
            Outcome::Found { accounts, .. } => accounts.join(", "),
            Outcome::NotFound => "not found".to_owned(),
            Outcome::Error { code, message } => format!("{code}: {message}"),
        };
        println!(
            "  {} ({}; keys: {}): {what}",
            p.service, p.host, p.key_check
        );
    }
    for w in &found.warnings {
        println!("  warning: {w}");
    }
    Ok(())
}
