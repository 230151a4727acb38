//! `mimi-relay check`: everything that can be checked before a start, each
//! problem said in a sentence, for deploy scripts. Nothing is bound.

use crate::config::Config;
use crate::targets::Allowlist;
pub use mimi_server_core::report::Report;
use mimi_server_core::tls;

/// Checks `config`, its TLS files, its gateway CA file and its allowlist.
pub fn check(config: &Config) -> Report {
    let mut report = Report::default();
    report.configuration(config.validate());
    report.connections(
        mimi_server_core::limits::open_files_at_most()
            .map_err(crate::Error::from)
            .and_then(|n| config.options(n))
            .map(|o| o.connections),
    );
    report.tls_files(config.tls.as_ref());
    if let Some(path) = &config.gateway_ca_file {
        report.check(
            "gateway CA file",
            tls::load_roots(path)
                .map(|roots| format!("{}: {} certificate(s)", path.display(), roots.len()))
                .map_err(|e| e.to_string()),
        );
    }
    let entries: Vec<(String, Option<String>)> = config
        .gateway
        .iter()
        .map(|g| (g.host.clone(), g.url.clone()))
        .collect();
    report.check(
        "gateways",
        Allowlist::new(&entries)
            .map(|l| l.hosts().join(", "))
            .map_err(|e| e.to_string()),
    );
    report
}
