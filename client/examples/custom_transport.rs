//! A transport of one's own: the [`Transport`] trait is what step 2 asks of a
//! relay, so an app can wrap the stock [`RelayTransport`] (here, to count
//! exchanges and time them per gateway, without ever seeing what is asked)
//! or replace it (to reach the relay over its own HTTP stack).
//!
//! `cargo run -p mimi-client --example custom_transport -- https://relay.example alice.example.com`

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mimi_client::{Discoverer, KeySource, Options, RelayAnswer, RelayTransport, Transport};

/// Wraps a transport and times each exchange, by gateway.
#[derive(Clone)]
struct Timed<T> {
    inner: T,
    timings: Arc<Mutex<BTreeMap<String, Vec<Duration>>>>,
}

impl<T> Timed<T> {
    fn record(&self, gateway: &str, took: Duration) {
        if let Ok(mut t) = self.timings.lock() {
            t.entry(gateway.to_owned()).or_default().push(took);
        }
    }
}

impl<T: Transport> Transport for Timed<T> {
    async fn fetch_keys(
        &self,
        gateway: &str,
        source: KeySource,
    ) -> mimi_client::Result<RelayAnswer> {
        let started = Instant::now();
        let answer = self.inner.fetch_keys(gateway, source).await;
        self.record(gateway, started.elapsed());
        answer
    }

    async fn post(&self, gateway: &str, body: Vec<u8>) -> mimi_client::Result<RelayAnswer> {
        let started = Instant::now();
        let answer = self.inner.post(gateway, body).await;
        self.record(gateway, started.elapsed());
        answer
    }

    fn serves_shared_keys(&self, gateway: &str) -> bool {
        self.inner.serves_shared_keys(gateway)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(relay), Some(identifier)) = (args.next(), args.next()) else {
        eprintln!("usage: custom_transport RELAY-URL IDENTIFIER");
        std::process::exit(2);
    };
    let transport = Timed {
        inner: RelayTransport::new(&relay, &[], Duration::from_secs(10))?,
        timings: Arc::default(),
    };
    let timings = transport.timings.clone();
    let discoverer = Discoverer::new(transport, Options::default())?;
    let found = discoverer.discover(&identifier).await?;
    println!("accounts: {:?}", found.accounts().collect::<Vec<_>>());
    for (gateway, took) in timings.lock().map(|t| t.clone()).unwrap_or_default() {
        println!("{gateway}: {} exchanges, {:?}", took.len(), took);
    }
    Ok(())
}
