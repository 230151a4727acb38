//! The demo's tables: the results of the sample discoveries, and "who saw
//! what", built from what each party's tap recorded.

use std::fmt::Write;
use std::net::IpAddr;

use mimi_client::{Discovery, Error, Outcome};
use mimi_proto::Identifier;

use mimi_proto::oblivious::GATEWAY_PATH;
use mimi_proto::privacypass::{ATTESTER_PREFIX, ISSUER_REQUEST_PATH};

use crate::recorder::{Exchange, Party, Recorder, contains_any_form};
use crate::samples::{CLIENT_IP, PROVIDERS, Sample, samples};

/// The secrets of the sample world: identifiers, account names, DNS names.
pub fn secrets() -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    for s in samples() {
        if let Ok(id) = Identifier::parse(s.input) {
            out.push((id.to_string(), "identifier"));
            out.push((id.dns_name().trim_end_matches('.').to_owned(), "DNS name"));
        }
    }
    for p in &PROVIDERS {
        for (_, account, _) in p.entries {
            out.push((account.to_string(), "account"));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// One line per sample: what was found.
pub fn results(rows: &[(Sample, Result<Discovery, Error>)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<26} {:<38} {:<9} result",
        "identifier", "case", "DNSSEC"
    );
    for (sample, result) in rows {
        let dnssec = match result {
            Ok(d) => d.dnssec.as_str(),
            Err(Error::DnsBogus) => "bogus",
            Err(_) => "-",
        };
        let text = match result {
            Err(e) => e.to_string(),
            Ok(d) => {
                let mut parts: Vec<String> = d
                    .providers
                    .iter()
                    .map(|p| match &p.outcome {
                        Outcome::Found { verification, .. } => {
                            let shown: Vec<String> = verification.iter().map(verdict).collect();
                            format!("{}: {}", p.service, shown.join(", "))
                        }
                        Outcome::NotFound => format!("{}: not found", p.service),
                        Outcome::Error { message, .. } => {
                            format!("{}: error: {message}", p.service)
                        }
                    })
                    .collect();
                parts.extend(d.warnings.iter().map(|w| format!("(warning: {w})")));
                parts.join("; ")
            }
        };
        let _ = writeln!(
            out,
            "{:<26} {:<38} {dnssec:<9} {text}",
            sample.input, sample.what
        );
    }
    out
}

/// An account with what its signed mapping says (DESIGN §11).
fn verdict(v: &mimi_client::AccountVerification) -> String {
    use mimi_client::Verification;
    match (&v.verification, &v.authority, &v.reason) {
        (Verification::Verified, Some(by), _) => format!("{} [verified by {by}]", v.account),
        (Verification::Invalid, _, Some(why)) => {
            format!("{} [invalid, not shown: {why}]", v.account)
        }
        _ => format!("{} [unverified]", v.account),
    }
}

fn list(ips: &[IpAddr]) -> String {
    if ips.is_empty() {
        "-".into()
    } else {
        ips.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Whether an exchange's request line names `needle` (a path).
fn request_line_has(e: &Exchange, needle: &str) -> bool {
    let line = e.received.split(|&b| b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(line).contains(needle)
}

/// One row of the table: a party (or one of its roles) and what its
/// exchanges held.
struct Row {
    label: String,
    exchanges: Vec<Exchange>,
    learns: String,
}

/// The "who saw what" table, from the recorder: one row per party, and,
/// where lookup tokens are in play, the attester's and the issuer's roles
/// on their own rows (what each saw of token issuance).
pub fn who_saw_what(recorder: &Recorder, gateway_answers: &[(String, u64)]) -> String {
    let client = IpAddr::from(CLIENT_IP);
    let secrets = secrets();
    let mut rows = Vec::new();
    let relay = recorder.of(&Party::Relay);
    let attested: Vec<Exchange> = relay
        .iter()
        .filter(|e| request_line_has(e, ATTESTER_PREFIX) && e.received.starts_with(b"POST "))
        .cloned()
        .collect();
    rows.push(Row {
        label: Party::Relay.to_string(),
        exchanges: relay,
        learns: "who asks and which gateway; padded sizes; never what".to_owned(),
    });
    if !attested.is_empty() {
        let clients: std::collections::BTreeSet<IpAddr> =
            attested.iter().map(|e| e.peer.ip()).collect();
        let refused = attested
            .iter()
            .filter(|e| !e.sent.starts_with(b"200"))
            .count();
        rows.push(Row {
            label: "  as attester".into(),
            learns: format!(
                "{} token requests ({refused} refused) from {} client address(es): blinded messages and counts only",
                attested.len(),
                clients.len()
            ),
            exchanges: attested,
        });
    }
    for p in &PROVIDERS {
        let party = Party::Gateway(p.name.to_owned());
        let exchanges = recorder.of(&party);
        let issued: Vec<Exchange> = exchanges
            .iter()
            .filter(|e| request_line_has(e, ISSUER_REQUEST_PATH))
            .cloned()
            .collect();
        let answered = gateway_answers
            .iter()
            .find(|(n, _)| n == p.name)
            .map_or(0, |(_, c)| *c);
        rows.push(Row {
            label: party.to_string(),
            exchanges,
            learns: format!("{answered} decrypted queries (by design), from the relay only"),
        });
        if !issued.is_empty() {
            rows.push(Row {
                label: "  as issuer".into(),
                learns: format!(
                    "{} batches of blinded token requests, from the attester only; never who, never what",
                    issued.len()
                ),
                exchanges: issued,
            });
        }
    }
    for party in [Party::Dns, Party::Resolver] {
        let peers = recorder.peers(&party);
        let exchanges = recorder.of(&party);
        let bytes: Vec<u8> = exchanges
            .iter()
            .flat_map(|e| e.received.iter().chain(&e.sent).copied())
            .collect();
        let names = secrets
            .iter()
            .filter(|(s, k)| *k == "DNS name" && contains_any_form(&bytes, s))
            .count();
        let learns = match party {
            Party::Dns => format!("{names} DNS names asked, from {}", list(&peers)),
            _ => format!(
                "{names} DNS names asked (oblivious mode), from {}",
                list(&peers)
            ),
        };
        rows.push(Row {
            label: party.to_string(),
            exchanges,
            learns,
        });
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<15} {:<14} {:>9} {:>12} {:>12} {:>12}  what it learns",
        "party", "peers seen", "exchanges", "client addr", "identifiers", "accounts"
    );
    for row in rows {
        let mut peers: Vec<IpAddr> = row.exchanges.iter().map(|e| e.peer.ip()).collect();
        peers.sort();
        peers.dedup();
        let bytes: Vec<u8> = row
            .exchanges
            .iter()
            .flat_map(|e| e.received.iter().chain(&e.sent).copied())
            .collect();
        let saw_client = peers.contains(&client) || contains_any_form(&bytes, &client.to_string());
        let count = |kind: &str| {
            secrets
                .iter()
                .filter(|(s, k)| *k == kind && contains_any_form(&bytes, s))
                .count()
        };
        let _ = writeln!(
            out,
            "{:<15} {:<14} {:>9} {:>12} {:>12} {:>12}  {}",
            row.label,
            list(&peers),
            row.exchanges.len(),
            if saw_client { "YES" } else { "no" },
            count("identifier"),
            count("account"),
            row.learns,
        );
    }
    let _ = writeln!(
        out,
        "(identifiers/accounts: how many of the sample world's appeared in plain, upper/lower case, hex or base64 in what that party received or sent)"
    );
    out
}

/// How each provider's key was checked before anything was encrypted to it
/// (DESIGN §4.1), from what the relay and the gateways recorded: the
/// client's tunnels through the relay to the gateway itself, the relay's
/// shared copies it fetched, and whether every request was encrypted to a
/// key the gateway publishes.
pub fn keys_checked(recorder: &Recorder, live_keys: &[(String, String, Vec<u8>)]) -> String {
    let relay = recorder.of(&Party::Relay);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<15} {:>8} {:>13} {:>9}  key used",
        "provider", "tunnels", "shared copies", "requests"
    );
    for (name, host, ids) in live_keys {
        let tunnels = relay
            .iter()
            .filter(|e| {
                e.received
                    .starts_with(format!("CONNECT {host}:").as_bytes())
            })
            .count();
        let shared = relay
            .iter()
            .filter(|e| {
                // The request line; over HTTP/2 its target is absolute.
                let line = e.received.split(|&b| b == b'\n').next().unwrap_or_default();
                let line = String::from_utf8_lossy(line);
                line.starts_with("GET ") && line.contains(&format!("/gateway/{host} "))
            })
            .count();
        let posts: Vec<u8> = recorder
            .of(&Party::Gateway(name.clone()))
            .iter()
            .filter(|e| e.received.starts_with(b"POST ") && request_line_has(e, GATEWAY_PATH))
            .filter_map(|e| {
                let at = e.received.windows(2).position(|w| w == b"\n\n")?;
                e.received.get(at + 2).copied()
            })
            .collect();
        let verdict = if posts.is_empty() {
            "nothing sent".to_owned()
        } else if tunnels > 0 && shared > 0 && posts.iter().all(|id| ids.contains(id)) {
            format!("confirmed over TLS to {host} (tunnelled) and against the relay's shared copy")
        } else {
            "NOT CONFIRMED".to_owned()
        };
        let _ = writeln!(
            out,
            "{:<15} {tunnels:>8} {shared:>13} {:>9}  {verdict}",
            format!("gateway {name}"),
            posts.len()
        );
    }
    out
}
