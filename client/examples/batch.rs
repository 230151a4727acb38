//! Many lookups with a progress line:
//! `cargo run -p mimi-client --example batch -- https://relay.example contacts.txt`
//!
//! Identifiers are checked before anything is sent; lookups run eight at a
//! time and are reported as they complete.

use std::io::Write;
use std::time::Duration;

use futures::StreamExt;
use mimi_client::{Discoverer, Options, RelayTransport};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(relay), Some(file)) = (args.next(), args.next()) else {
        eprintln!("usage: batch RELAY-URL FILE (one identifier per line)");
        std::process::exit(2);
    };
    let inputs: Vec<String> = std::fs::read_to_string(&file)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    // Refuse the whole batch on one bad line: nothing is sent.
    for (i, input) in inputs.iter().enumerate() {
        if let Err(e) = mimi_proto::Identifier::parse(input) {
            eprintln!("{file}: entry {}: {e}", i + 1);
            std::process::exit(2);
        }
    }
    let transport = RelayTransport::new(&relay, &[], Duration::from_secs(10))?;
    let options = Options {
        concurrency: 8,
        ..Options::default()
    };
    let discoverer = Discoverer::new(transport, options)?;
    let mut results = discoverer.discover_many(&inputs);
    let (mut done, mut found) = (0, 0);
    while let Some((i, result)) = results.next().await {
        done += 1;
        if let Ok(d) = &result {
            if d.accounts().next().is_some() {
                found += 1;
                println!(
                    "{}: {}",
                    inputs[i],
                    d.accounts().collect::<Vec<_>>().join(", ")
                );
            }
        }
        eprint!("\r{done}/{} looked up, {found} found", inputs.len());
        std::io::stderr().flush()?;
    }
    eprintln!();
    Ok(())
}
