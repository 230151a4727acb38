//! `mimi-bench --tokens`: what lookup tokens cost (BENCHMARKS.md, "Lookup
//! tokens"), each figure from this run:
//!
//! - Issuance per core: the gateway's issuer answering batches of 64 token
//!   requests (decode, one RSA private-key operation per token, encode), on
//!   one thread.
//! - Redemption: the origin's check of one token (parse, RSA verification,
//!   the spent-nonce insert into SQLite), beside one X25519 DH, the floor of
//!   the cost comparison.
//! - The whole in-process lookup with tokens required, against without.
//! - Lookups one client address can make in a day through the relay: before
//!   (as fast as the relay answers it, measured here) and after (the
//!   attester's quota, counted here until it refused).

use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use mimi_proto::codec::Codec;
use mimi_proto::oblivious;
use mimi_proto::privacypass::{
    BatchTokenRequest, BatchTokenResponse, IssuerDirectory, Token, TokenChallenge, TokenKey, header,
};
use mimi_proto::{IdentifierRequest, SearchIdentifierType};
use mimi_server_core::config_file::TomlFile as _;

use crate::bench::{self, identifier};
use crate::bench_cost::aws_lc_dh_round;

/// Tokens per batch (the most one request may hold).
const BATCH: usize = 64;
/// Batches issued (their tokens are then redeemed).
const BATCHES: usize = 8;

/// What `--tokens` measures, as a Markdown section.
pub async fn run(seconds: f64) -> Result<String> {
    let mut out = String::new();
    // Each in-process part runs its own one-thread runtime.
    let (issued_per_s, verify_us, (redeem_us, floor_us), (with_us, without_us)) =
        tokio::task::spawn_blocking(|| -> Result<_> {
            let (issued_per_s, tokens, tokens_dir, issuer) = issuance()?;
            let verify_us = verification(&issuer, &tokens)?;
            let redeemed = redemption(&issuer, &tokens[..tokens.len() / 2])?;
            let whole = whole_lookup(&tokens_dir, &tokens[tokens.len() / 2..])?;
            Ok((issued_per_s, verify_us, redeemed, whole))
        })
        .await??;
    let _ = writeln!(out, "| figure | value |\n|---|---|");
    let _ = writeln!(
        out,
        "| tokens issued per second, one core, batches of {BATCH} | {issued_per_s:.0} |"
    );
    let _ = writeln!(
        out,
        "| origin: verify one token and record its nonce (SQLite) | {redeem_us:.1} µs |"
    );
    let _ = writeln!(
        out,
        "| of which the signature check alone (RSASSA-PSS verification) | {verify_us:.1} µs |"
    );
    let _ = writeln!(
        out,
        "| the floor beside it: one X25519 DH (aws-lc-rs) | {floor_us:.1} µs |"
    );
    let _ = writeln!(
        out,
        "| whole lookup in process, tokens required | {with_us:.1} µs |"
    );
    let _ = writeln!(
        out,
        "| whole lookup in process, without tokens | {without_us:.1} µs |"
    );
    let (before, after_anonymous, after_account, quota) = per_address(seconds).await?;
    // The relay's shipped defaults, read from its configuration types.
    let defaults =
        mimi_relay::Config::parse("[attester]\nclient_cert = \"c\"\nclient_key = \"k\"\n")?;
    let rate = &defaults.rate;
    let attester = defaults.attester.context("the attester section")?;
    let per_day = |quota: u64| quota * (86_400 / attester.window_secs.max(1));
    let _ = writeln!(
        out,
        "| lookups one address can make per day through the relay, before: the relay's default rate limit ({} per second, burst {}) | {:.0} |",
        rate.per_second,
        rate.burst,
        rate.per_second * 86_400.0 + f64::from(rate.burst)
    );
    let _ = writeln!(
        out,
        "| before, as fast as one client ran here (testbed relay, rate limit raised; measured rate x 86,400) | {before:.0} |"
    );
    let _ = writeln!(
        out,
        "| after, the relay's default quotas ({} per address, {} per account, per {} s): without a credential / with one | {} / {} |",
        attester.anonymous_quota,
        attester.account_quota,
        attester.window_secs,
        per_day(attester.anonymous_quota),
        per_day(attester.account_quota)
    );
    let _ = writeln!(
        out,
        "| after, counted here until refused (testbed quotas: {quota}) x windows per day: without a credential / with one | {after_anonymous} / {after_account} |"
    );
    Ok(out)
}

/// A token issuer as the gateway runs it, with one pinned attester.
fn issuer(
    dir: &std::path::Path,
) -> Result<(
    Arc<mimi_gateway::tokens::Tokens>,
    mimi_server_core::client_auth::PeerCertificate,
)> {
    let ca = crate::pki::TestCa::new()?;
    let attester = ca.issue(&["attester.bench.example"])?;
    let cert = dir.join("attester.pem");
    std::fs::write(&cert, &attester.cert_pem)?;
    let mut config = mimi_gateway::Config::parse("public_host = \"mimi.cost.example\"")?;
    crate::world::require_tokens(&mut config, dir, &cert);
    let tokens = mimi_gateway::tokens::Tokens::open(
        &config.tokens,
        &config.public_host,
        None,
        SystemTime::now(),
    )?;
    let pinned = mimi_server_core::client_auth::pinned_certificate(&cert)?;
    Ok((Arc::new(tokens), pinned))
}

/// Issues [`BATCHES`] batches, timing each: (best tokens per second, the
/// finalised tokens, the issuer's directory, the issuer's state).
#[allow(clippy::type_complexity)]
fn issuance() -> Result<(
    f64,
    Vec<Token>,
    tempfile::TempDir,
    Arc<mimi_gateway::tokens::Tokens>,
)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let (tokens, cert) = issuer(dir.path())?;
    let (directory, _) = tokens.directory();
    let entry = IssuerDirectory::from_json(&directory)?;
    let key = TokenKey::from_spki(&header::from_b64url(&entry.token_keys[0].token_key)?)?;
    let digest = TokenChallenge::standard("mimi.cost.example").digest()?;
    let mut best = f64::INFINITY;
    let mut all = Vec::new();
    for _ in 0..BATCHES {
        let (requests, pending): (Vec<_>, Vec<_>) = (0..BATCH)
            .map(|_| key.blind(&digest))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .unzip();
        let body = BatchTokenRequest {
            token_requests: requests,
        }
        .to_bytes()?;
        let t = Instant::now();
        let issued = rt.block_on(tokens.issue(Some(&cert), true, &body, SystemTime::now()))?;
        best = best.min(t.elapsed().as_secs_f64());
        let responses = BatchTokenResponse::from_bytes(&issued.body)?.token_responses;
        for (p, r) in pending.into_iter().zip(responses) {
            all.push(p.finalize(&r.context("a token was not issued")?)?);
        }
    }
    Ok((BATCH as f64 / best, all, dir, tokens))
}

/// The signature check alone, on every token (best of rounds), in µs.
fn verification(tokens_state: &mimi_gateway::tokens::Tokens, tokens: &[Token]) -> Result<f64> {
    let (directory, _) = tokens_state.directory();
    let entry = IssuerDirectory::from_json(&directory)?;
    let key = TokenKey::from_spki(&header::from_b64url(&entry.token_keys[0].token_key)?)?;
    let mut best = f64::INFINITY;
    for round in tokens.chunks(BATCH) {
        let t = Instant::now();
        for token in round {
            key.verify(std::hint::black_box(token))?;
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e6 / round.len() as f64);
    }
    Ok(best)
}

/// The origin's redemption of each of `tokens` (fresh), in rounds beside
/// rounds of the DH floor: (best µs per token, best floor µs).
fn redemption(tokens_state: &mimi_gateway::tokens::Tokens, tokens: &[Token]) -> Result<(f64, f64)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let values: Vec<String> = tokens
        .iter()
        .map(header::authorization)
        .collect::<Result<_, _>>()?;
    let rounds = values.chunks(BATCH);
    let (mut best, mut floor) = (f64::INFINITY, f64::INFINITY);
    for round in rounds {
        floor = floor.min(aws_lc_dh_round()?);
        let t = Instant::now();
        for v in round {
            rt.block_on(tokens_state.redeem(Some(v.as_bytes()), SystemTime::now()))
                .context("a fresh token was refused")?;
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e6 / round.len() as f64);
    }
    Ok((best, floor))
}

/// A whole request in process with tokens required (each request spending
/// one of `tokens`) and the same gateway's requests without: best µs each.
fn whole_lookup(dir: &tempfile::TempDir, tokens: &[Token]) -> Result<(f64, f64)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let host = "mimi.cost.example";
    let (_gw_dir, plain, list) = bench::inprocess_gateway(rt.handle(), host)?;
    let (tokens_state, _) = issuer(dir.path())?;
    let (_gw_dir2, with, list2) = bench::inprocess_gateway(rt.handle(), host)?;
    let with = with.with_tokens(tokens_state);
    let bodies = |list: &[u8], auth: Option<&Token>, k: usize| -> Result<Vec<u8>> {
        let entry = oblivious::decode_key_config_list(list)?.remove(0);
        let request = IdentifierRequest::single(SearchIdentifierType::Handle, &identifier(k % 100));
        let value = auth.map(header::authorization).transpose()?;
        let inner =
            oblivious::identifier_query(host, &request, SystemTime::now(), value.as_deref())?;
        Ok(oblivious::ClientRequest::new(&entry).encapsulate(&inner)?.0)
    };
    let with_bodies: Vec<Vec<u8>> = tokens
        .iter()
        .enumerate()
        .map(|(k, t)| bodies(&list2, Some(t), k))
        .collect::<Result<_>>()?;
    let without_bodies: Vec<Vec<u8>> = (0..tokens.len())
        .map(|k| bodies(&list, None, k))
        .collect::<Result<_>>()?;
    let time = |gateway: &mimi_gateway::Gateway, round: &[Vec<u8>]| -> Result<f64> {
        let t = Instant::now();
        for b in round {
            rt.block_on(gateway.handle(b, SystemTime::now()))?;
        }
        Ok(t.elapsed().as_secs_f64() * 1e6 / round.len() as f64)
    };
    let (mut best_with, mut best_without) = (f64::INFINITY, f64::INFINITY);
    for (w, wo) in with_bodies.chunks(BATCH).zip(without_bodies.chunks(BATCH)) {
        best_without = best_without.min(time(&plain, wo)?);
        best_with = best_with.min(time(&with, w)?);
    }
    let answered = with.metrics().get(mimi_gateway::outcome::Outcome::Ok);
    if answered != tokens.len() as u64 {
        bail!(
            "with tokens, only {answered} of {} lookups were answered",
            tokens.len()
        );
    }
    Ok((best_with, best_without))
}

/// Lookups per day for one client address through the relay: measured
/// sequentially for `seconds` in a world without tokens, then, in a world
/// with them, counted until the attester refused (anonymous, then with one
/// credential), each times the windows in a day. Returns (before,
/// anonymous after, account after, the quota's description).
async fn per_address(seconds: f64) -> Result<(f64, u64, u64, String)> {
    use crate::world::{QUOTA_WINDOW_SECS, Setup, World};
    use mimi_client::{DnsMode, Outcome};
    let world = World::start().await?;
    let client = world.client(false)?;
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs_f64(seconds.max(0.5)) {
        client.discover("bob.example.com").await?;
        n += 1;
    }
    let before = n as f64 / started.elapsed().as_secs_f64() * 86_400.0;
    world.shutdown().await;

    let world = World::start_with(Setup {
        tokens: true,
        ..Setup::default()
    })
    .await?;
    let windows = 86_400 / QUOTA_WINDOW_SECS;
    let mut counts = Vec::new();
    for credential in [None, world.credential("bench")] {
        let client = world.client_as(
            DnsMode::Server {
                addr: world.dns_addr,
                tcp: false,
            },
            credential,
        )?;
        let mut answered = 0u64;
        // Bounded: well past any testbed quota.
        for _ in 0..1000 {
            let d = client.discover("bob.example.com").await?;
            match &d.providers[0].outcome {
                Outcome::Found { .. } => answered += 1,
                Outcome::Error { code, .. } if code == "quota_reached" => break,
                other => bail!("a lookup failed otherwise: {other:?}"),
            }
        }
        counts.push(answered * windows);
    }
    world.shutdown().await;
    let quota = format!(
        "{} per address, {} per account, per {} s",
        crate::world::ANONYMOUS_QUOTA,
        crate::world::ACCOUNT_QUOTA,
        QUOTA_WINDOW_SECS
    );
    Ok((before, counts[0], counts[1], quota))
}
