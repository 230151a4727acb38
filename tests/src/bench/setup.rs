//! The servers a benchmark runs against: gateways and the relay as processes, DNS in process.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mimi_client::{Discoverer, DnsMode, Options, RelayTransport, Transport};
use mimi_proto::oblivious::GATEWAY_PATH;

use super::*;
use crate::dns::{self, DnsServer};
use crate::pki::TestCa;
use crate::procs::{ServerProcess, binary};
use crate::recorder::Recorder;

/// The running servers.
pub struct Setup {
    pub(super) dir: tempfile::TempDir,
    pub(super) ca: TestCa,
    pub(super) dns: Option<DnsServer>,
    /// Gateway processes with their address and host.
    pub gateways: Vec<(ServerProcess, SocketAddr, String)>,
    /// The relay process and its address.
    pub relay: (ServerProcess, SocketAddr),
    /// The DNS server's address.
    pub dns_addr: SocketAddr,
    /// Its private root's trust anchor, as a file.
    pub trust_anchor: std::path::PathBuf,
    pub(super) identifiers: usize,
}

pub(super) fn host_of(i: usize) -> String {
    format!("mimi.g{i}.bench.example")
}

pub(crate) fn identifier(k: usize) -> String {
    format!("user{k}.bench.example")
}

pub(super) fn addr_of(url: &str) -> Result<SocketAddr> {
    url.rsplit('/')
        .next()
        .unwrap_or_default()
        .parse()
        .with_context(|| format!("no address in {url}"))
}

impl Setup {
    /// Starts DNS (in process), three gateway processes and a relay process.
    pub async fn start(identifiers: usize) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let ca = TestCa::new()?;
        std::fs::write(d.join("ca.pem"), ca.pem())?;
        let gateway_bin = binary("mimi-gateway", "mimi-gateway")?;
        let relay_bin = binary("mimi-relay", "mimi-relay")?;

        // DNS: every identifier lists all three providers.
        let mut records = Vec::with_capacity(identifiers * (GATEWAYS.len() + 1));
        for k in 0..identifiers {
            records.push((
                format!("_mimi.nomimi{k}.bench.example."),
                "v=spf1 -all".to_owned(),
            ));
            for (i, _) in GATEWAYS.iter().enumerate() {
                records.push((
                    format!("_mimi.{}.", identifier(k)),
                    format!("v=MIMI1; p={i}; e={}; s=g{i}", host_of(i)),
                ));
            }
        }
        let dns = dns::spawn(
            IpAddr::from(DNS),
            &[dns::Zone {
                origin: "bench.example.".into(),
                records,
                signed: true,
                tampered: Vec::new(),
            }],
            Arc::new(Recorder::disabled()),
        )
        .await?;
        let dns_addr = dns.addr;
        let trust_anchor = dir.path().join("trust-anchor.txt");
        std::fs::write(&trust_anchor, &dns.trust_anchor)?;

        let mut csv = String::from("identifier,account\n");
        for k in 0..identifiers {
            csv.push_str(&format!(
                "{},mimi://bench.example/u/user{k}\n",
                identifier(k)
            ));
        }
        std::fs::write(d.join("people.csv"), csv)?;

        let mut gateways = Vec::new();
        for (i, ip) in GATEWAYS.iter().enumerate() {
            let ip = IpAddr::from(*ip);
            let host = host_of(i);
            let home = d.join(format!("g{i}"));
            std::fs::create_dir_all(&home)?;
            let leaf = ca.issue(&[&host, &ip.to_string()])?;
            std::fs::write(home.join("cert.pem"), &leaf.cert_pem)?;
            std::fs::write(home.join("key.pem"), &leaf.key_pem)?;
            let config = home.join("gateway.toml");
            std::fs::write(
                &config,
                format!(
                    "listen = \"{ip}:0\"\npublic_host = \"{host}\"\nkey_file = \"{h}/keys.json\"\n\
                     [tls]\ncert = \"{h}/cert.pem\"\nkey = \"{h}/key.pem\"\n\
                     [replay]\nwindow_secs = 600\ncapacity = 2000000\n\
                     [connections]\nmax_per_client = 2500\n\
                     [directory]\ndatabase = \"{h}/directory.sqlite\"\n",
                    h = home.display()
                ),
            )?;
            let status = std::process::Command::new(&gateway_bin)
                .arg("--config")
                .arg(&config)
                .args(["directory", "import"])
                .arg(d.join("people.csv"))
                .stdout(std::process::Stdio::null())
                .status()?;
            if !status.success() {
                bail!("directory import failed");
            }
            let process = ServerProcess::start(&gateway_bin, &config)?;
            let addr = addr_of(&process.url)?;
            gateways.push((process, addr, host));
        }

        let leaf = ca.issue(&["127.0.0.3"])?;
        std::fs::write(d.join("relay.pem"), &leaf.cert_pem)?;
        std::fs::write(d.join("relay.key"), &leaf.key_pem)?;
        let mut relay_config = format!(
            "listen = \"127.0.0.3:0\"\ngateway_ca_file = \"{d}/ca.pem\"\noutbound_bind = \"127.0.0.3\"\n\
             [tls]\ncert = \"{d}/relay.pem\"\nkey = \"{d}/relay.key\"\n\
             [rate]\nper_second = 1000000000.0\nburst = 1000000000\n\
             [limits]\nmax_concurrent = 8192\nmax_in_flight_per_client = 8192\n\
             [connections]\nmax_per_client = 2500\n",
            d = d.display()
        );
        for (_, addr, host) in &gateways {
            relay_config.push_str(&format!(
                "[[gateway]]\nhost = \"{host}\"\nurl = \"https://{addr}{GATEWAY_PATH}\"\n"
            ));
        }
        std::fs::write(d.join("relay.toml"), relay_config)?;
        let relay = ServerProcess::start(&relay_bin, &d.join("relay.toml"))?;
        let relay_addr = addr_of(&relay.url)?;
        Ok(Self {
            dir,
            ca,
            dns: Some(dns),
            gateways,
            relay: (relay, relay_addr),
            dns_addr,
            trust_anchor,
            identifiers,
        })
    }

    pub(super) fn tls(&self) -> Result<Arc<rustls::ClientConfig>> {
        client_tls(&self.ca)
    }

    /// A client on 127.0.0.2 using the relay and the DNS server.
    pub(super) fn discoverer(&self) -> Result<Discoverer<RelayTransport>> {
        self.discoverer_with(|t| t)
    }

    pub(super) fn discoverer_with<T: Transport>(
        &self,
        wrap: impl FnOnce(RelayTransport) -> T,
    ) -> Result<Discoverer<T>> {
        let transport = RelayTransport::with_local_address(
            &format!("https://{}", self.relay.1),
            std::slice::from_ref(self.ca.der()),
            Duration::from_secs(10),
            Some(IpAddr::from(CLIENT)),
        )?;
        Ok(Discoverer::new(
            wrap(transport),
            Options {
                dns: DnsMode::Server {
                    addr: self.dns_addr,
                    tcp: false,
                },
                provider_timeout: Duration::from_secs(10),
                local_address: Some(IpAddr::from(CLIENT)),
                trust_anchor: Some(self.trust_anchor.clone()),
                ..Options::default()
            },
        )?)
    }

    /// CPU seconds used so far: (all gateways, relay).
    pub(super) fn cpu(&self) -> (f64, f64) {
        let gateways = self
            .gateways
            .iter()
            .filter_map(|(p, _, _)| p.cpu_seconds())
            .sum();
        (gateways, self.relay.0.cpu_seconds().unwrap_or(0.0))
    }

    pub(super) fn charge(&self, stats: &mut RunStats, before: (f64, f64)) {
        let after = self.cpu();
        stats.gateway_cpu = after.0 - before.0;
        stats.relay_cpu = after.1 - before.1;
    }

    /// Starts `mimi-tls-floor` beside gateway 0 (its address and
    /// certificate, another port), answering every request with
    /// `answer_len` bytes.
    pub fn start_tls_floor(&self, answer_len: usize) -> Result<ServerProcess> {
        let bin = binary("mimi-testbed", "mimi-tls-floor")?;
        let home = self.dir.path().join("g0");
        let listen = SocketAddr::new(self.gateways[0].1.ip(), 0).to_string();
        let len = answer_len.to_string();
        let (cert, key) = (home.join("cert.pem"), home.join("key.pem"));
        let args: [&std::ffi::OsStr; 8] = [
            "--listen".as_ref(),
            listen.as_ref(),
            "--cert-file".as_ref(),
            cert.as_os_str(),
            "--key-file".as_ref(),
            key.as_os_str(),
            "--answer-len".as_ref(),
            len.as_ref(),
        ];
        ServerProcess::start_with_args(&bin, &args)
    }

    /// The process id of the gateway the "gateway alone" runs load.
    pub fn gateway_pid(&self) -> u32 {
        self.gateways[0].0.pid()
    }

    /// The relay's process id.
    pub fn relay_pid(&self) -> u32 {
        self.relay.0.pid()
    }

    /// Peak RSS of each server process, in KiB.
    pub fn peak_rss(&self) -> Vec<(String, Option<u64>)> {
        let mut out = vec![("mimi-relay".to_string(), self.relay.0.peak_rss_kib())];
        for (p, _, host) in &self.gateways {
            out.push((format!("mimi-gateway {host}"), p.peak_rss_kib()));
        }
        out
    }

    /// Stops everything; every server must exit cleanly.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(dns) = self.dns.take() {
            dns.stop().await;
        }
        let status = self.relay.0.stop()?;
        if !status.success() {
            bail!("relay exited with {status}");
        }
        for (p, _, _) in self.gateways {
            let status = p.stop()?;
            if !status.success() {
                bail!("gateway exited with {status}");
            }
        }
        Ok(())
    }
}
