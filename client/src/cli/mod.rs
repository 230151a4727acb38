//! The command line: `mod.rs` runs lookups and prints them as they
//! complete; [`settings`] turns arguments and the configuration file into
//! settings (checking everything before anything is sent); [`output`]
//! writes the table, JSON Lines and the verbose trace.

mod output;
mod settings;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use futures::StreamExt;
use mimi_client::{Discoverer, DnsMode, Error, Options, Outcome, RelayTransport};

use output::{json_line, verbose, write_table};
use settings::{Args, load_pem, prepare};

const FOUND: u8 = 0;
const NOTHING_FOUND: u8 = 1;
const BAD_INPUT: u8 = 2;
const NETWORK: u8 = 3;

pub(crate) fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mimi-discover: cannot start: {e}");
            return ExitCode::from(NETWORK);
        }
    };
    ExitCode::from(runtime.block_on(run(args)))
}

async fn run(args: Args) -> u8 {
    // Everything is checked before the first packet leaves.
    let (settings, inputs) = match prepare(&args).await {
        Ok(v) => v,
        Err(reason) => {
            eprintln!("mimi-discover: {reason}");
            return BAD_INPUT;
        }
    };
    let roots = match &settings.ca_file {
        Some(path) => match load_pem(path) {
            Ok(r) => r,
            Err(reason) => {
                eprintln!("mimi-discover: {reason}");
                return BAD_INPUT;
            }
        },
        None => Vec::new(),
    };
    let transport = settings.relay_for.iter().fold(
        RelayTransport::new(&settings.relay, &roots, settings.timeout),
        |t, (host, url)| t.and_then(|t| t.with_relay_for(host, url)),
    );
    let discoverer = transport.and_then(|t| {
        Discoverer::new(
            t,
            Options {
                dns: settings.dns.clone(),
                dns_timeout: settings.timeout,
                provider_timeout: settings.timeout,
                lookup_timeout: Some(settings.timeout),
                ca_roots: roots.clone(),
                trust_anchor: settings.trust_anchor.clone(),
                require_dnssec: settings.require_dnssec,
                concurrency: settings.concurrency,
                key_check: settings.key_check,
                credential: settings.credential.clone(),
                token_batch: settings.token_batch,
                authorities: settings.authorities.clone(),
                require_verified: settings.require_verified,
                ..Options::default()
            },
        )
    });
    let discoverer = match discoverer {
        Ok(d) => d,
        Err(e) => {
            eprintln!("mimi-discover: {e}");
            return BAD_INPUT;
        }
    };

    if let Some(path) = &settings.token_cache {
        match crate::token_cache::take(path) {
            Ok(kept) => discoverer.session().tokens().import(&kept).await,
            // Unreadable: start without; the file is replaced at the end.
            Err(reason) => {
                eprintln!("mimi-discover: warning: {reason}; starting without kept tokens")
            }
        }
    }
    let code = discover_all(&args, &inputs, &discoverer).await;
    if let Some(path) = &settings.token_cache {
        let unspent = discoverer.session().tokens().export().await;
        if let Err(reason) = crate::token_cache::put_back(path, unspent) {
            eprintln!("mimi-discover: warning: {reason}; unspent tokens were not kept");
        }
    }
    code
}

async fn discover_all(
    args: &Args,
    inputs: &[String],
    discoverer: &Discoverer<RelayTransport>,
) -> u8 {
    if !matches!(
        discoverer.options().dns,
        DnsMode::Oblivious { .. } | DnsMode::Static(_)
    ) {
        eprintln!(
            "mimi-discover: note: step 1 asks DNS directly, so the resolver sees your address \
             and each name looked up (for an email address, a hash of its local part that a \
             dictionary reverses quickly). `--dns oblivious:GATEWAY-HOST` sends it through \
             the relay instead."
        );
    }
    let progress = (args.file.is_some() && inputs.len() > 1 && std::io::stderr().is_terminal())
        .then(|| {
            let bar = indicatif::ProgressBar::new(inputs.len() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
    let mut any_found = false;
    let mut any_failure = false;
    let started = Instant::now();
    let mut stream = discoverer.discover_many(inputs);
    let mut out = std::io::stdout().lock();
    // Results arrive as they complete; they are printed in input order, each
    // as soon as everything before it is printed.
    let mut pending = std::collections::BTreeMap::new();
    let mut next = 0;
    while let Some((i, result)) = stream.next().await {
        match &result {
            Ok(d) => {
                any_found |= d.accounts().next().is_some();
                any_failure |= d
                    .providers
                    .iter()
                    .any(|p| matches!(p.outcome, Outcome::Error { .. }));
            }
            Err(e) => any_failure |= is_failure(e),
        }
        if args.verbose {
            verbose(&inputs[i], &result, started);
        }
        if let Some(bar) = &progress {
            bar.inc(1);
        }
        pending.insert(i, result);
        while let Some(result) = pending.remove(&next) {
            let input = &inputs[next];
            let written = if args.json {
                writeln!(out, "{}", json_line(input, &result))
            } else {
                write_table(&mut out, input, &result)
            };
            if written.is_err() {
                // The reader went away (a closed pipe): nothing more to say.
                return if any_found { FOUND } else { NETWORK };
            }
            next += 1;
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    match (any_found, any_failure) {
        (true, _) => FOUND,
        (false, true) => NETWORK,
        (false, false) => NOTHING_FOUND,
    }
}

/// Whether an error is a failure to get an answer, rather than an answer.
fn is_failure(e: &Error) -> bool {
    !matches!(
        e,
        Error::NoMimiRecord | Error::NameNotFound | Error::OnlyInvalidRecords(_)
    )
}
