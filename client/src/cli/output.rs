//! What `mimi-discover` prints: a table per identifier, JSON Lines, and
//! the verbose trace on standard error.

use std::io::Write;
use std::time::Instant;

use mimi_client::{Discovery, Error, Outcome};

pub(super) fn verbose(input: &str, result: &Result<Discovery, Error>, started: Instant) {
    let at = started.elapsed().as_millis();
    match result {
        Ok(d) => {
            eprintln!(
                "[{at:>6} ms] {input}: step 1 asked {} ({} provider(s))",
                d.dns_name,
                d.providers.len()
            );
            for p in &d.providers {
                let what = match &p.outcome {
                    Outcome::Found { accounts, .. } => format!("{} account(s)", accounts.len()),
                    Outcome::NotFound => "not found".into(),
                    Outcome::Error { code, .. } => format!("error {code}"),
                };
                eprintln!(
                    "[{at:>6} ms] {input}: step 2 via relay to {}: {what} in {} ms",
                    p.host, p.elapsed_ms
                );
            }
        }
        Err(e) => eprintln!("[{at:>6} ms] {input}: {e}"),
    }
}

pub(super) fn json_line(input: &str, result: &Result<Discovery, Error>) -> serde_json::Value {
    match result {
        Ok(d) => serde_json::json!({ "input": input, "ok": true, "result": d }),
        Err(e) => serde_json::json!({
            "input": input,
            "ok": false,
            "error": { "code": mimi_client::error_code(e), "message": e.to_string() },
        }),
    }
}

pub(super) fn write_table(
    out: &mut impl Write,
    input: &str,
    result: &Result<Discovery, Error>,
) -> std::io::Result<()> {
    let d = match result {
        Ok(d) => d,
        Err(e) => return writeln!(out, "{input}: {e}\n"),
    };
    writeln!(
        out,
        "{} ({}; DNS {})",
        d.identifier,
        d.kind,
        d.dnssec.as_str()
    )?;
    if d.dnssec == mimi_client::Dnssec::Insecure {
        writeln!(
            out,
            "  note: the DNS answer is not DNSSEC-signed, so it could have been changed on the way"
        )?;
    }
    let width = d
        .providers
        .iter()
        .map(|p| p.service.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let host_width = d
        .providers
        .iter()
        .map(|p| p.host.len())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        out,
        "  {:width$}  {:host_width$}  result",
        "provider", "host"
    )?;
    let mut refused = Vec::new();
    for p in &d.providers {
        let result = match &p.outcome {
            Outcome::Found {
                accounts,
                verification,
            } => {
                let mut shown = Vec::new();
                for v in verification {
                    if !accounts.contains(&v.account) {
                        refused.push(format!(
                            "{} named {}, which is not shown ({}): {}",
                            p.service,
                            v.account,
                            v.verification.as_str(),
                            v.reason.as_deref().unwrap_or_default()
                        ));
                    } else if let Some(authority) = &v.authority {
                        shown.push(format!("{} (verified by {authority})", v.account));
                    } else {
                        shown.push(format!("{} (unverified)", v.account));
                    }
                }
                shown.join(", ")
            }
            Outcome::NotFound => "not found".into(),
            Outcome::Error { message, .. } => format!("error: {message}"),
        };
        writeln!(
            out,
            "  {:width$}  {:host_width$}  {result}",
            p.service, p.host
        )?;
        if let Some(a) = &p.dns_account {
            writeln!(
                out,
                "  {:width$}  {:host_width$}  published in DNS (unconfirmed): {a}",
                "", ""
            )?;
        }
    }
    for w in refused.iter().chain(&d.warnings) {
        writeln!(out, "  warning: {w}")?;
    }
    writeln!(out)
}
