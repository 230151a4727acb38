//! The real binaries as processes: finding (or building) them, starting them
//! from a config file on port 0 and reading their bound address from their
//! startup line, measuring their peak memory, and stopping them with SIGTERM.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// The path of a workspace binary next to the running one, brought up to
/// date (in the same profile) first: a stale binary would test old code.
pub fn binary(package: &str, name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe
        .parent()
        .context("executable has no directory")?
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", package, "--bin", name]);
    if dir.ends_with("release") {
        cmd.arg("--release");
    }
    match cmd.status() {
        Ok(status) if !status.success() => bail!("building {name} failed"),
        Ok(_) => {}
        // No cargo here (a copied build): use the binary as it is.
        Err(_) if path.exists() => {}
        Err(e) => return Err(e).with_context(|| format!("building {name}")),
    }
    if !path.exists() {
        bail!("{} not found", path.display());
    }
    Ok(path)
}

fn config_args(config: &Path) -> [&OsStr; 2] {
    [OsStr::new("--config"), config.as_os_str()]
}

/// A running server process.
pub struct ServerProcess {
    child: Child,
    /// The URL from its `... listening on URL` line.
    pub url: String,
    /// The admin listener's URL, for a process started with one.
    pub admin_url: Option<String>,
}

impl ServerProcess {
    /// Starts `bin --config config` and waits for its first stdout line.
    pub fn start(bin: &Path, config: &Path) -> Result<Self> {
        Self::spawn(bin, &config_args(config), "warn", Stdio::inherit(), false)
    }

    /// Starts `bin args…` and waits for its first stdout line.
    pub fn start_with_args(bin: &Path, args: &[&OsStr]) -> Result<Self> {
        Self::spawn(bin, args, "warn", Stdio::inherit(), false)
    }

    /// Like [`ServerProcess::start`], for a config with `admin_listen`: also
    /// reads the admin listener's line.
    pub fn start_with_admin(bin: &Path, config: &Path) -> Result<Self> {
        Self::spawn(bin, &config_args(config), "warn", Stdio::inherit(), true)
    }

    /// Like [`ServerProcess::start`], logging at `info` (with the default
    /// filter otherwise) into the file `log`.
    pub fn start_logging_to(bin: &Path, config: &Path, log: &Path) -> Result<Self> {
        let file = std::fs::File::create(log)?;
        Self::spawn(bin, &config_args(config), "info", Stdio::from(file), false)
    }

    /// Like [`ServerProcess::start`], under an open-file limit of `limit`
    /// (soft and hard, so the server cannot raise it), set by `prlimit`.
    pub fn start_with_open_files(bin: &Path, config: &Path, limit: u64) -> Result<Self> {
        let mut cmd = Command::new("prlimit");
        cmd.arg(format!("--nofile={limit}:{limit}"))
            .arg("--")
            .arg(bin);
        Self::spawn_command(
            cmd,
            bin,
            &config_args(config),
            "warn",
            Stdio::inherit(),
            false,
        )
    }

    fn spawn(bin: &Path, args: &[&OsStr], level: &str, stderr: Stdio, admin: bool) -> Result<Self> {
        Self::spawn_command(Command::new(bin), bin, args, level, stderr, admin)
    }

    fn spawn_command(
        mut cmd: Command,
        bin: &Path,
        args: &[&OsStr],
        level: &str,
        stderr: Stdio,
        admin: bool,
    ) -> Result<Self> {
        let mut child = cmd
            .args(args)
            .env("RUST_LOG", level)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().context("the server printed nothing")??;
        let url = first
            .split(" listening on ")
            .nth(1)
            .with_context(|| format!("unexpected startup line {first:?}"))?
            .to_owned();
        let admin_url = if admin {
            let line = lines.next().context("no admin listener line")??;
            Some(
                line.split(" admin listening on ")
                    .nth(1)
                    .with_context(|| format!("unexpected admin line {line:?}"))?
                    .to_owned(),
            )
        } else {
            None
        };
        // Keep draining stdout so the process never blocks writing to it.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Self {
            child,
            url,
            admin_url,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory so far (VmHWM), in KiB, where /proc tells.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        status_kib(self.pid(), "VmHWM:")
    }

    /// Resident memory now (VmRSS), in KiB, where /proc tells.
    pub fn rss_kib(&self) -> Option<u64> {
        status_kib(self.pid(), "VmRSS:")
    }

    /// CPU time (user + system) used so far, in seconds, where /proc tells.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        // Fields after the command name, which is in parentheses.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) / clock_ticks())
    }

    /// Sends SIGTERM and waits (at most 10 s) for the exit status.
    pub fn stop(mut self) -> Result<ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        bail!("did not stop within 10 s of SIGTERM")
    }
}

/// A KiB figure (`field` is e.g. `VmRSS:`) from `/proc/<pid>/status`.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Clock ticks per second for /proc times (`getconf CLK_TCK`, 100 if unknown).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Never leave a server behind, whatever happened.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
