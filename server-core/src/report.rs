//! What a `check` subcommand found: each item fine or a problem, in a
//! sentence, so that a deploy script can stop before a broken server
//! replaces a working one.

/// What a check found: what is fine, and every problem.
#[derive(Debug, Default)]
pub struct Report {
    /// What was checked and is fine.
    pub ok: Vec<String>,
    /// What is wrong; empty when the server can start.
    pub problems: Vec<String>,
    /// What lets the server start but deserves the operator's attention.
    pub warnings: Vec<String>,
}

impl Report {
    /// Records one item: `Ok(detail)` is fine, `Err(problem)` is not.
    pub fn check(&mut self, what: &str, result: Result<String, String>) {
        match result {
            Ok(detail) => self.ok.push(format!("{what}: {detail}")),
            Err(problem) => self.problems.push(format!("{what}: {problem}")),
        }
    }

    /// Records whether the configuration is valid.
    pub fn configuration<E: std::fmt::Display>(&mut self, valid: Result<(), E>) {
        self.check(
            "configuration",
            valid.map(|()| "valid".into()).map_err(|e| e.to_string()),
        );
    }

    /// Records whether the `[tls]` files load, if there are any.
    pub fn tls_files(&mut self, files: Option<&crate::config_file::TlsFiles>) {
        if let Some(files) = files {
            self.check(
                "TLS",
                crate::tls::server_config(&files.cert, &files.key)
                    .map(|_| format!("{} and its key load", files.cert.display()))
                    .map_err(|e| e.to_string()),
            );
        }
    }

    /// Records the connection limits a server would start with.
    pub fn connections<E: std::fmt::Display>(
        &mut self,
        limits: Result<crate::ConnectionLimits, E>,
    ) {
        let few = limits
            .as_ref()
            .is_ok_and(|l| l.max_connections < crate::limits::FEW_CONNECTIONS);
        if let (true, Ok(l)) = (few, &limits) {
            self.warnings.push(format!(
                "connections: only {} at once fit under the open-file limit ({} files): \
                 raise it (LimitNOFILE= in the service unit) for a server that faces the public",
                l.max_connections,
                crate::limits::open_files().map_or_else(|_| "?".into(), |n| n.to_string()),
            ));
        }
        self.check(
            "connections",
            limits
                .map(|l| {
                    format!(
                        "at most {} at once, {} per client address (at most a quarter, \
                         so that one address always leaves room for others)",
                        l.max_connections, l.max_per_client
                    )
                })
                .map_err(|e| e.to_string()),
        );
    }

    /// Prints the report on standard output; `Err` (naming `server`) when a
    /// problem was found, for the command's exit status.
    pub fn print(&self, server: &str) -> Result<(), String> {
        for line in &self.ok {
            println!("ok       {line}");
        }
        for line in &self.warnings {
            println!("WARNING  {line}");
        }
        for line in &self.problems {
            println!("PROBLEM  {line}");
        }
        if self.problems.is_empty() {
            println!("the {server} can start");
            Ok(())
        } else {
            Err(format!(
                "{} problem(s); the {server} would not start",
                self.problems.len()
            ))
        }
    }
}
