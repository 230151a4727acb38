//! Real Redis and PostgreSQL servers for tests, started on this machine:
//! data under the build tree, reachable only through a unix socket in it
//! (no TCP port at all), stopped when dropped.
//!
//! A server that cannot be found is an error naming the Debian package
//! (`scripts/test.sh` installs both): the tests that need one fail, they are
//! never skipped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Where a program is: `$PATH`, then the directories given.
fn find(program: &str, also: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(also.iter().cloned())
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

fn missing(program: &str, package: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{program} was not found: install the Debian package `{package}` (`bash scripts/test.sh` installs it and runs the tests)"
    )
}

/// Waits (bounded) until `ready` says yes, or the child has exited.
fn wait_until(child: &mut Child, what: &str, mut ready: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited at start ({status})");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} was not ready within 30 s")
}

/// A Redis server on a unix socket, without persistence.
#[derive(Debug)]
pub struct RedisServer {
    dir: PathBuf,
    child: Option<Child>,
    password: Option<String>,
}

impl RedisServer {
    /// Starts `redis-server` with its socket and files in a new directory under `base`.
    pub fn start(base: &Path) -> Result<Self> {
        Self::start_with(base, None)
    }

    /// Like [`RedisServer::start`], requiring `password` (`requirepass`).
    pub fn start_with_password(base: &Path, password: &str) -> Result<Self> {
        Self::start_with(base, Some(password.to_owned()))
    }

    fn start_with(base: &Path, password: Option<String>) -> Result<Self> {
        std::fs::create_dir_all(base)?;
        let dir = tempfile::Builder::new()
            .prefix("redis")
            .tempdir_in(base)?
            .keep();
        let mut server = Self {
            dir,
            child: None,
            password,
        };
        server.restart()?;
        Ok(server)
    }

    /// The socket's path.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    /// The URL a gateway's `replay.redis_url` takes.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// Stops the server (SIGKILL: it keeps nothing), as an outage would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.socket());
    }

    /// Starts it again, empty, on the same socket.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        let bin =
            find("redis-server", &[]).ok_or_else(|| missing("redis-server", "redis-server"))?;
        let socket = self.socket();
        let log = std::fs::File::create(self.dir.join("redis.log"))?;
        let mut cmd = Command::new(bin);
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        let mut child = cmd
            .args(["--port", "0", "--save", "", "--appendonly", "no"])
            .arg("--unixsocket")
            .arg(&socket)
            .args(["--unixsocketperm", "700"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting redis-server")?;
        let ready = wait_until(&mut child, "redis-server", || {
            std::os::unix::net::UnixStream::connect(&socket).is_ok()
        });
        self.child = Some(child);
        ready
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A PostgreSQL server on a unix socket, in a fresh cluster.
#[derive(Debug)]
pub struct PostgresServer {
    dir: PathBuf,
    child: Option<Child>,
}

/// PostgreSQL refuses to run as root: as root, the server runs as the
/// `postgres` user the Debian package creates.
fn postgres_user() -> Result<Option<(u32, u32)>> {
    let uid = Command::new("id").arg("-u").output()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Ok(None);
    }
    let id = |flag: &str| -> Result<u32> {
        let out = Command::new("id").args([flag, "postgres"]).output()?;
        if !out.status.success() {
            bail!(
                "running as root, and there is no `postgres` user to run PostgreSQL as: install the Debian package `postgresql`"
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
    };
    Ok(Some((id("-u")?, id("-g")?)))
}

fn postgres_bin(program: &str) -> Result<PathBuf> {
    // Debian keeps the server's programs out of $PATH, by major version.
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| dirs.flatten().map(|d| d.path().join("bin")).collect())
        .unwrap_or_default();
    versions.sort();
    versions.reverse();
    find(program, &versions).ok_or_else(|| missing(program, "postgresql"))
}

impl PostgresServer {
    /// Creates a cluster in a new directory under `base` and starts it.
    pub fn start(base: &Path) -> Result<Self> {
        std::fs::create_dir_all(base)?;
        let dir = tempfile::Builder::new()
            .prefix("pg")
            .tempdir_in(base)?
            .keep();
        let user = postgres_user()?;
        let as_user = |cmd: &mut Command| {
            if let Some((uid, gid)) = user {
                std::os::unix::process::CommandExt::uid(cmd, uid);
                std::os::unix::process::CommandExt::gid(cmd, gid);
            }
        };
        let data = dir.join("data");
        std::fs::create_dir_all(&data)?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
            std::os::unix::fs::chown(&data, Some(uid), Some(gid))?;
        }
        let mut initdb = Command::new(postgres_bin("initdb")?);
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "mimi", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null());
        as_user(&mut initdb);
        let out = initdb.output().context("running initdb")?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let log = std::fs::File::create(dir.join("postgres.log"))?;
        let mut server = Command::new(postgres_bin("postgres")?);
        server
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&dir)
            .args(["-c", "listen_addresses=", "-p", "5432", "-F"])
            .args(["-c", "max_connections=200"])
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        as_user(&mut server);
        let mut child = server.spawn().context("starting postgres")?;
        let socket = dir.join(".s.PGSQL.5432");
        let ready = wait_until(&mut child, "postgres", || {
            // The socket appears before the server accepts queries; psql-free
            // readiness: the lock file says "ready" on its last line.
            socket.exists()
                && std::fs::read_to_string(data.join("postmaster.pid"))
                    .is_ok_and(|pid| pid.trim_end().ends_with("ready"))
        });
        let server = Self {
            dir,
            child: Some(child),
        };
        ready?;
        Ok(server)
    }

    /// The connection string a gateway's `directory.url` takes.
    pub fn url(&self) -> String {
        format!(
            "host={} port=5432 user=mimi dbname=postgres",
            self.dir.display()
        )
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGINT: PostgreSQL's fast shutdown.
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TLS front for a server that listens only on a unix socket: accepts TLS
/// on `ip` (port 0, read back) with `tls`, and forwards the plaintext to
/// `socket`. With `postgres`, it first answers PostgreSQL's `SSLRequest`
/// (TLS is negotiated inside its protocol), as a server with `ssl = on` does.
/// Runs until the returned task is aborted.
pub async fn tls_front(
    ip: std::net::IpAddr,
    tls: std::sync::Arc<rustls::ServerConfig>,
    socket: PathBuf,
    postgres: bool,
) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind((ip, 0)).await?;
    let addr = listener.local_addr()?;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let (acceptor, socket) = (acceptor.clone(), socket.clone());
            tokio::spawn(async move {
                if postgres {
                    // Int32 length 8, Int32 80877103: "SSLRequest"; answer 'S'.
                    let mut request = [0u8; 8];
                    if tcp.read_exact(&mut request).await.is_err()
                        || request != [0, 0, 0, 8, 4, 210, 22, 47]
                        || tcp.write_all(b"S").await.is_err()
                    {
                        return;
                    }
                }
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut server) = tokio::net::UnixStream::connect(&socket).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
            });
        }
    });
    Ok((addr, task))
}

impl RedisServer {
    /// The socket's path, for a [`tls_front`].
    pub fn socket_path(&self) -> PathBuf {
        self.socket()
    }
}

impl PostgresServer {
    /// The socket's path, for a [`tls_front`].
    pub fn socket_path(&self) -> PathBuf {
        self.dir.join(".s.PGSQL.5432")
    }
}
