//! A whole private-discovery world, in process: the DNS server, the
//! providers' gateways (each with its embedded directory and TLS from the
//! test CA) and the relay, each on its own loopback address and port 0, each
//! behind a recording tap.

use mimi_server_core::config_file::TomlFile as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use mimi_client::{Credential, Discoverer, DnsMode, Options, RelayTransport};
use mimi_gateway::Gateway;
use mimi_gateway::directory::{Directory, Entry};
use mimi_server_core::layer::{Layer, Next};
use mimi_server_core::{ConnectionLimits, serve};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::dns::{self, DnsServer};
use crate::hostile::{HostileRelay, RelayAttack, TaggingGateway};
use crate::pki::TestCa;
use crate::recorder::{Exchange, Party, Recorder};
use crate::samples::{CLIENT_IP, DNS_IP, PROVIDERS, RELAY_IP, RESOLVER_IP};

/// A running provider.
pub struct Provider {
    /// Short name.
    pub name: String,
    /// Discovery host (`e=`).
    pub host: String,
    /// Where its gateway listens.
    pub addr: SocketAddr,
    /// The gateway itself (keys, metrics).
    pub gateway: Arc<Gateway>,
    stop: Option<watch::Sender<bool>>,
    task: Option<JoinHandle<()>>,
}

/// The host of the tagging gateway, when a world has one.
pub const TAGGING_HOST: &str = crate::samples::HOSTILE_PROVIDER_HOST;

/// What a world holds besides its honest parties.
#[derive(Debug, Clone, Copy, Default)]
pub struct Setup {
    /// The relay attacks clients this way (honest when `None`).
    pub relay_attack: Option<RelayAttack>,
    /// A provider whose gateway tries to tag clients ([`TAGGING_HOST`],
    /// on 127.0.0.8), allowlisted at the relay.
    pub tagging_gateway: bool,
    /// The first provider requires lookup tokens, and the relay attests for
    /// its issuer (DESIGN §10) with [`ACCOUNT_QUOTA`] and
    /// [`ANONYMOUS_QUOTA`] per [`QUOTA_WINDOW_SECS`].
    pub tokens: bool,
    /// With `tokens`: the issuer hands every client that fetches its
    /// directory over TLS (no client certificate) a token key of its own,
    /// and the relay the real one: to link issuance to redemption.
    pub token_key_per_client: bool,
}

/// Tokens per account and window at the testbed's attester.
pub const ACCOUNT_QUOTA: u64 = 20;
/// Tokens per anonymous address and window.
pub const ANONYMOUS_QUOTA: u64 = 2;
/// The attester's window.
pub const QUOTA_WINDOW_SECS: u64 = 3600;
/// The account the demo's own lookups (and `up`'s credential file) use.
pub const DEMO_ACCOUNT: &str = "demo-user";

/// Lookup tokens in a world: the identity provider whose credentials the
/// relay accepts, and a ready credential file.
pub struct TokenSetup {
    /// Signs credentials for any account.
    pub identity: crate::credentials::IdentityProvider,
    /// A credential for [`DEMO_ACCOUNT`], as a file (mode 0600).
    pub credential_file: PathBuf,
    /// The provider (index) that requires tokens.
    pub provider: usize,
}

/// The running world.
pub struct World {
    /// What every party received and sent.
    pub recorder: Arc<Recorder>,
    /// The test CA.
    pub ca: TestCa,
    /// The CA certificate as a file.
    pub ca_file: PathBuf,
    /// The DNS server's address.
    pub dns_addr: SocketAddr,
    /// The private DNS root's trust anchor, as a file (DNSKEY, zone-file form).
    pub trust_anchor: PathBuf,
    /// The client's trust store of mapping authorities (DESIGN §11), as a
    /// file: the phone-number authority.
    pub authority_keys: PathBuf,
    /// The relay's address.
    pub relay_addr: SocketAddr,
    /// The providers.
    pub providers: Vec<Provider>,
    /// Where keys, directories and certificates live.
    pub dir: tempfile::TempDir,
    /// The relay's attack, when it is hostile.
    pub hostile_relay: Option<Arc<HostileRelay>>,
    /// The tagging gateway, when there is one.
    pub tagging_gateway: Option<Arc<TaggingGateway>>,
    /// Lookup tokens, when the world requires them.
    pub tokens: Option<TokenSetup>,
    dns: Option<DnsServer>,
    stop: watch::Sender<bool>,
    relay_task: Option<JoinHandle<()>>,
}

fn ip(a: [u8; 4]) -> IpAddr {
    IpAddr::from(a)
}

fn limits() -> ConnectionLimits {
    ConnectionLimits {
        header_timeout: Duration::from_secs(10),
        drain_timeout: Duration::from_secs(2),
        ..ConnectionLimits::default()
    }
}

/// Makes `config`'s gateway require lookup tokens, its issuer's files under
/// `home`, serving the one attester whose certificate is at `attester`.
pub fn require_tokens(
    config: &mut mimi_gateway::Config,
    home: &std::path::Path,
    attester: &std::path::Path,
) {
    config.tokens.required = true;
    config.tokens.key_file = home.join("token-keys.json");
    config.tokens.spent_database = home.join("spent-tokens.sqlite");
    config.tokens.attester = vec![mimi_gateway::config::AttesterSection {
        name: "relay".into(),
        certificate: attester.to_path_buf(),
        budget: 100_000_000,
        window_secs: QUOTA_WINDOW_SECS,
    }];
}

/// Writes a file only its owner can read (keys, credentials).
fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    std::fs::write(path, text)?;
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(())
}

/// Renders a request as the bytes a party received (after TLS).
fn render_request(parts: &http::request::Parts, body: &[u8]) -> Vec<u8> {
    let mut out = format!("{} {} {:?}\n", parts.method, parts.uri, parts.version).into_bytes();
    for (k, v) in &parts.headers {
        out.extend_from_slice(format!("{k}: ").as_bytes());
        out.extend_from_slice(v.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

fn render_response(parts: &http::response::Parts, body: &[u8]) -> Vec<u8> {
    let mut out = format!("{}\n", parts.status).into_bytes();
    for (k, v) in &parts.headers {
        out.extend_from_slice(format!("{k}: ").as_bytes());
        out.extend_from_slice(v.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// Wraps a handler so that what it receives and sends is recorded for `party`.
async fn tapped<F, Fut>(
    recorder: &Recorder,
    party: Party,
    req: Request<Incoming>,
    peer: SocketAddr,
    inner: F,
) -> Response<Full<Bytes>>
where
    F: FnOnce(Request<Full<Bytes>>) -> Fut,
    Fut: std::future::Future<Output = Response<Full<Bytes>>>,
{
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let received = render_request(&parts, &body);
    let resp = inner(Request::from_parts(parts, Full::new(body))).await;
    let (rparts, rbody) = resp.into_parts();
    let rbody = rbody
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    recorder.record(Exchange {
        party,
        peer,
        received,
        sent: render_response(&rparts, &rbody),
    });
    Response::from_parts(rparts, Full::new(rbody))
}

impl World {
    /// Starts everything, every party honest.
    pub async fn start() -> Result<Self> {
        Self::start_with(Setup::default()).await
    }

    /// Starts everything, with the hostile parties `setup` names.
    pub async fn start_with(setup: Setup) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let recorder = Arc::new(Recorder::default());
        let ca = TestCa::new()?;
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem())?;
        let (stop, _) = watch::channel(false);

        let dns = dns::spawn(ip(DNS_IP), &crate::samples::zones(), recorder.clone()).await?;
        let dns_addr = dns.addr;
        let trust_anchor = dir.path().join("trust-anchor.txt");
        std::fs::write(&trust_anchor, &dns.trust_anchor)?;
        let authority_keys = dir.path().join("authority-keys.txt");
        std::fs::write(&authority_keys, crate::samples::trust_store())?;

        // The validating resolver the first provider's DNS gateway forwards to.
        let resolver =
            crate::resolver::spawn(ip(RESOLVER_IP), dns_addr, &trust_anchor, recorder.clone())
                .await?;

        // The relay's identity as attester, which the token-requiring
        // gateway pins.
        let attester = match setup.tokens {
            true => {
                let leaf = ca.issue(&["attester.testbed.example"])?;
                let (cert, key) = (
                    dir.path().join("attester.pem"),
                    dir.path().join("attester.key"),
                );
                write_private(&cert, &leaf.cert_pem)?;
                write_private(&key, &leaf.key_pem)?;
                Some((cert, key))
            }
            false => None,
        };

        let mut providers = Vec::new();
        for (i, spec) in PROVIDERS.iter().enumerate() {
            // The first provider also fronts the resolver (oblivious DNS),
            // and requires tokens when the world does.
            let fronted_dns = (i == 0).then_some(resolver);
            let pinned_attester = attester
                .as_ref()
                .filter(|_| i == 0)
                .map(|(c, _)| c.as_path());
            providers.push(
                Self::start_provider(
                    &dir,
                    &ca,
                    &recorder,
                    spec.name,
                    spec.host,
                    ip(spec.ip),
                    spec,
                    fronted_dns,
                    pinned_attester,
                    setup.token_key_per_client,
                )
                .await?,
            );
        }

        let tagging = match setup.tagging_gateway {
            true => Some(Self::start_tagging_gateway(&dir, &ca, &recorder, &stop).await?),
            false => None,
        };

        // The relay, trusting the CA, serving both gateways.
        let leaf = ca.issue(&["relay.testbed.example", "127.0.0.3"])?;
        let (cert, key) = (dir.path().join("relay.pem"), dir.path().join("relay.key"));
        std::fs::write(&cert, &leaf.cert_pem)?;
        std::fs::write(&key, &leaf.key_pem)?;
        let mut config = mimi_relay::Config::default();
        config.tls = Some(mimi_relay::config::TlsFiles { cert, key });
        config.gateway_ca_file = Some(ca_file.clone());
        config.outbound_bind = Some(ip(RELAY_IP));
        config.rate.per_second = 1000.0;
        config.rate.burst = 1000;
        config.limits.upstream_timeout_ms = 3000;
        let hosts = providers
            .iter()
            .map(|p| (p.host.clone(), p.addr))
            .chain(tagging.as_ref().map(|(_, a)| (TAGGING_HOST.to_owned(), *a)));
        for (host, addr) in hosts {
            config.gateway.push(mimi_relay::config::GatewayEntry {
                issuer: attester.is_some() && host == providers[0].host,
                host,
                url: Some(format!("https://{addr}/.well-known/ohttp-gateway")),
            });
        }
        let tokens = match &attester {
            Some((cert, key)) => {
                let identity = crate::credentials::IdentityProvider::new()?;
                let jwks = dir.path().join("jwks.json");
                std::fs::write(&jwks, identity.jwks())?;
                config.attester = Some(mimi_relay::config::AttesterSection {
                    client_cert: cert.clone(),
                    client_key: key.clone(),
                    jwks_file: Some(jwks),
                    jwt_issuer: None,
                    jwt_audience: None,
                    account_quota: ACCOUNT_QUOTA,
                    anonymous_quota: ANONYMOUS_QUOTA,
                    window_secs: QUOTA_WINDOW_SECS,
                    max_clients: 10_000,
                });
                let credential_file = dir.path().join("credential.jwt");
                write_private(
                    &credential_file,
                    &identity.credential(DEMO_ACCOUNT, Duration::from_secs(7 * 86_400)),
                )?;
                Some(TokenSetup {
                    identity,
                    credential_file,
                    provider: 0,
                })
            }
            None => None,
        };
        let (relay, tls) = mimi_relay::assemble(&config)?;
        let listener = TcpListener::bind((ip(RELAY_IP), 0))
            .await
            .context("binding the relay")?;
        let relay_addr = listener.local_addr()?;
        let hostile_relay = setup.relay_attack.map(|a| Arc::new(HostileRelay::new(a)));
        let (rec, hostile) = (recorder.clone(), hostile_relay.clone());
        let layer: Layer = Arc::new(move |req, peer, next: Next| {
            let (rec, hostile) = (rec.clone(), hostile.clone());
            Box::pin(async move {
                tapped(&rec, Party::Relay, req, peer, move |r| async move {
                    match &hostile {
                        Some(h) => h.handle(r, peer, next).await,
                        None => next(r).await,
                    }
                })
                .await
            })
        });
        let mut rx = stop.subscribe();
        // The relay's own `run`, as the binary calls it, with the tap.
        let relay_task = tokio::spawn(mimi_relay::http::run_layered(
            listener,
            tls,
            relay,
            Some(layer),
            async move {
                let _ = rx.wait_for(|s| *s).await;
            },
        ));

        Ok(Self {
            recorder,
            ca,
            ca_file,
            dns_addr,
            trust_anchor,
            authority_keys,
            relay_addr,
            providers,
            dir,
            hostile_relay,
            tagging_gateway: tagging.map(|(g, _)| g),
            tokens,
            dns: Some(dns),
            stop,
            relay_task: Some(relay_task),
        })
    }

    /// The tagging gateway on 127.0.0.8, with TLS from the test CA, until
    /// the world stops.
    async fn start_tagging_gateway(
        dir: &tempfile::TempDir,
        ca: &TestCa,
        recorder: &Arc<Recorder>,
        stop: &watch::Sender<bool>,
    ) -> Result<(Arc<TaggingGateway>, SocketAddr)> {
        let at = ip([127, 0, 0, 8]);
        let leaf = ca.issue(&[TAGGING_HOST, &at.to_string()])?;
        let (cert, key) = (dir.path().join("evil.pem"), dir.path().join("evil.key"));
        std::fs::write(&cert, &leaf.cert_pem)?;
        std::fs::write(&key, &leaf.key_pem)?;
        let tls = mimi_server_core::tls::server_config(&cert, &key)?;
        let listener = TcpListener::bind((at, 0))
            .await
            .context("binding the tagging gateway")?;
        let addr = listener.local_addr()?;
        let gateway = Arc::new(TaggingGateway::new(TAGGING_HOST));
        let (g, rec) = (gateway.clone(), recorder.clone());
        let handler = move |req: Request<Incoming>, peer: SocketAddr| {
            let (g, rec) = (g.clone(), rec.clone());
            async move {
                tapped(
                    &rec,
                    Party::Gateway("evil".into()),
                    req,
                    peer,
                    |r| async move { g.handle(r).await },
                )
                .await
            }
        };
        let mut rx = stop.subscribe();
        tokio::spawn(serve(
            listener,
            Some(tls),
            limits(),
            Default::default(),
            handler,
            async move {
                let _ = rx.wait_for(|s| *s).await;
            },
        ));
        Ok((gateway, addr))
    }

    #[allow(clippy::too_many_arguments)]
    async fn start_provider(
        dir: &tempfile::TempDir,
        ca: &TestCa,
        recorder: &Arc<Recorder>,
        name: &str,
        host: &str,
        at: IpAddr,
        spec: &crate::samples::ProviderSpec,
        fronted_dns: Option<SocketAddr>,
        attester: Option<&std::path::Path>,
        token_key_per_client: bool,
    ) -> Result<Provider> {
        let home = dir.path().join(name);
        std::fs::create_dir_all(&home)?;
        let leaf = ca.issue(&[host, &at.to_string()])?;
        std::fs::write(home.join("cert.pem"), &leaf.cert_pem)?;
        std::fs::write(home.join("key.pem"), &leaf.key_pem)?;
        let mut config = mimi_gateway::Config::parse(&format!("public_host = \"{host}\""))?;
        config.key_file = home.join("keys.json");
        config.directory.database = home.join("directory.sqlite");
        config.tls = Some(mimi_gateway::config::TlsFiles {
            cert: home.join("cert.pem"),
            key: home.join("key.pem"),
        });
        config.dns = fronted_dns.map(|resolver| mimi_gateway::config::DnsSection {
            resolver,
            timeout_ms: 2000,
            bind: Some(at),
        });
        if let Some(certificate) = attester {
            require_tokens(&mut config, &home, certificate);
        }
        let directory = Directory::open(&config.directory.database)?;
        for (identifier, account, searchable) in spec.entries {
            let assertion = crate::samples::assertion_for(spec, identifier, account);
            directory
                .add(&Entry {
                    identifier: identifier.to_string(),
                    account: account.to_string(),
                    searchable: *searchable,
                    assertion: assertion.map(|a| mimi_gateway::directory::assertion_text(&a)),
                })
                .await?;
        }
        let mimi_gateway::Assembled {
            gateway,
            tls,
            options,
        } = mimi_gateway::assemble(&config).await?;
        let listener = TcpListener::bind((at, 0))
            .await
            .with_context(|| format!("binding gateway {name}"))?;
        let addr = listener.local_addr()?;
        let (stop, mut rx) = watch::channel(false);
        let (rec, party) = (recorder.clone(), Party::Gateway(name.to_owned()));
        let layer: Layer = Arc::new(move |req, peer, next: Next| {
            let (rec, party) = (rec.clone(), party.clone());
            Box::pin(async move {
                tapped(&rec, party, req, peer, move |r| async move {
                    if token_key_per_client {
                        if let Some(resp) = crate::hostile::per_client_token_key(&r) {
                            return resp;
                        }
                    }
                    next(r).await
                })
                .await
            })
        });
        // The gateway's own `run` (key maintenance, request timeout and
        // all), as the binary calls it, with the tap.
        let task = tokio::spawn(mimi_gateway::http::run_layered(
            listener,
            tls,
            gateway.clone(),
            options,
            Some(layer),
            async move {
                let _ = rx.wait_for(|s| *s).await;
            },
        ));
        Ok(Provider {
            name: name.to_owned(),
            host: host.to_owned(),
            addr,
            gateway,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// A client on 127.0.0.2, going through the relay; step 1 asks the DNS
    /// server directly, or (`oblivious_dns`) through the relay and the first
    /// provider's gateway.
    pub fn client(&self, oblivious_dns: bool) -> Result<Discoverer<RelayTransport>> {
        let dns = if oblivious_dns {
            DnsMode::Oblivious {
                gateway: self.providers[0].host.clone(),
            }
        } else {
            DnsMode::Server {
                addr: self.dns_addr,
                tcp: false,
            }
        };
        self.client_with(dns)
    }

    /// A client on 127.0.0.2 going through the relay, with step 1 as given
    /// (and, where the world requires tokens, the demo account's credential).
    pub fn client_with(&self, dns: DnsMode) -> Result<Discoverer<RelayTransport>> {
        let credential = match &self.tokens {
            Some(t) => Some(Credential::new(&std::fs::read_to_string(
                &t.credential_file,
            )?)?),
            None => None,
        };
        self.client_as(dns, credential)
    }

    /// A client on 127.0.0.2 going through the relay, with step 1 as given,
    /// presenting `credential` to the attester (none: anonymous).
    pub fn client_as(
        &self,
        dns: DnsMode,
        credential: Option<Credential>,
    ) -> Result<Discoverer<RelayTransport>> {
        Ok(Discoverer::new(
            self.transport()?,
            Options {
                dns,
                provider_timeout: Duration::from_secs(5),
                local_address: Some(ip(CLIENT_IP)),
                trust_anchor: Some(self.trust_anchor.clone()),
                credential,
                authorities: mimi_client::verify::load_trust_store(&self.authority_keys)?,
                ..Options::default()
            },
        )?)
    }

    /// A credential for `account` from this world's identity provider
    /// (none when the world has no tokens).
    pub fn credential(&self, account: &str) -> Option<Credential> {
        let t = self.tokens.as_ref()?;
        Credential::new(&t.identity.credential(account, Duration::from_secs(3600))).ok()
    }

    /// A relay transport from the client's address, trusting the test CA.
    pub fn transport(&self) -> Result<RelayTransport> {
        Ok(RelayTransport::with_local_address(
            &format!("https://{}", self.relay_addr),
            std::slice::from_ref(self.ca.der()),
            Duration::from_secs(5),
            Some(ip(CLIENT_IP)),
        )?)
    }

    /// A receiver that turns true when the world stops, for parties a test
    /// adds.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Stops one provider's gateway (to test failures).
    pub async fn stop_provider(&mut self, index: usize) {
        let p = &mut self.providers[index];
        if let Some(stop) = p.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = p.task.take() {
            let _ = task.await;
        }
    }

    /// A `mimi-discover --json` command (the binary at `bin`) for
    /// `identifier` through `relay`, with this world's DNS and trust anchors.
    pub fn discover_command(
        &self,
        bin: &std::path::Path,
        relay: &str,
        identifier: &str,
    ) -> std::process::Command {
        let mut cmd = std::process::Command::new(bin);
        cmd.args(["--relay", relay, "--dns", &format!("udp:{}", self.dns_addr)])
            .args(["--json", identifier])
            .arg("--ca-file")
            .arg(&self.ca_file)
            .arg("--trust-anchor")
            .arg(&self.trust_anchor)
            .arg("--authority-keys")
            .arg(&self.authority_keys)
            .env_remove("MIMI_RELAY");
        cmd
    }

    /// Stops everything.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.relay_task.take() {
            let _ = t.await;
        }
        for i in 0..self.providers.len() {
            self.stop_provider(i).await;
        }
        if let Some(dns) = self.dns.take() {
            dns.stop().await;
        }
    }

    /// A ready-to-paste `mimi-discover` command for this world.
    pub fn command_line(&self) -> String {
        let credential = self
            .tokens
            .as_ref()
            .map(|t| format!(" --credential {}", t.credential_file.display()))
            .unwrap_or_default();
        format!(
            "mimi-discover --relay https://{} --ca-file {} --trust-anchor {} --authority-keys {} --dns udp:{}{credential} alice.example.com",
            self.relay_addr,
            self.ca_file.display(),
            self.trust_anchor.display(),
            self.authority_keys.display(),
            self.dns_addr
        )
    }
}
