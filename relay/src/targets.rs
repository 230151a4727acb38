//! The gateways a relay serves: an allowlist of hosts, each with the URL its
//! gateway resource is reached at, and the strict mapping from a request path
//! `/gateway/<host>` to one of them.

use std::collections::HashMap;

use mimi_proto::oblivious::{GATEWAY_PATH, RELAY_PREFIX};
use mimi_proto::record::Endpoint;

use crate::error::{Error, Result};

/// One allowed gateway.
#[derive(Debug, Clone)]
pub struct Target {
    /// The host as clients name it (`host` or `host:port`, lower case): the
    /// `e=` value of the DNS record.
    pub host: String,
    /// Where its gateway resource is: `https://<host>/.well-known/ohttp-gateway`
    /// unless the configuration maps it elsewhere.
    pub url: http::Uri,
    /// Where `CONNECT` tunnels to it go: the URL's host and port.
    pub connect_host: String,
    /// The URL's port (443 for `https`, 80 for `http` when it names none).
    pub connect_port: u16,
    /// Its position in the allowlist (for per-host counters and caches).
    pub index: usize,
}

/// The allowlist.
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    by_host: HashMap<String, Target>,
    order: Vec<String>,
}

impl Allowlist {
    /// Builds the allowlist from `(host, optional URL)` pairs. Hosts must be
    /// host names with an optional port (no IP literals, no user info); a URL
    /// must be `https://`, or `http://` to choose plain HTTP explicitly.
    pub fn new(entries: &[(String, Option<String>)]) -> Result<Self> {
        let mut list = Self::default();
        for (host, url) in entries {
            let endpoint = Endpoint::parse(host)
                .filter(|e| e.to_string() == *host)
                .ok_or_else(|| Error::Config(format!("gateway host {host:?} must be a lower-case host name with an optional :port")))?;
            let url = url
                .clone()
                .unwrap_or_else(|| format!("https://{endpoint}{GATEWAY_PATH}"));
            let uri: http::Uri = url
                .parse()
                .map_err(|_| Error::Config(format!("gateway {host}: {url:?} is not a URL")))?;
            if !matches!(uri.scheme_str(), Some("https" | "http")) || uri.host().is_none() {
                return Err(Error::Config(format!(
                    "gateway {host}: {url:?} must be an http(s) URL"
                )));
            }
            if list.by_host.contains_key(host) {
                return Err(Error::Config(format!("gateway {host} is listed twice")));
            }
            let index = list.order.len();
            list.order.push(host.clone());
            let connect_host = uri
                .host()
                .unwrap_or_default()
                .trim_matches(['[', ']'])
                .to_owned();
            let connect_port = uri.port_u16().unwrap_or(match uri.scheme_str() {
                Some("http") => 80,
                _ => 443,
            });
            list.by_host.insert(
                host.clone(),
                Target {
                    host: host.clone(),
                    url: uri,
                    connect_host,
                    connect_port,
                    index,
                },
            );
        }
        Ok(list)
    }

    /// The target a request path names, if it is exactly `/gateway/<host>`
    /// with an allowed host. Nothing is decoded: `%2F`, `..`, `@` or a port
    /// the list does not name simply do not match.
    pub fn resolve(&self, path: &str) -> Result<&Target> {
        let host = path
            .strip_prefix(RELAY_PREFIX)
            .ok_or(Error::UnknownGateway)?;
        if host.len() > 260 {
            return Err(Error::UnknownGateway);
        }
        self.by_host
            .get(&host.to_ascii_lowercase())
            .ok_or(Error::UnknownGateway)
    }

    /// The target a `CONNECT` authority (`host:port`) names, if its host is
    /// allowed with that port (443 for a host listed without one). Anything
    /// else, an IP literal or a port the list does not name included, is
    /// `TunnelForbidden`.
    pub fn resolve_connect(&self, authority: &str) -> Result<&Target> {
        let authority = authority.to_ascii_lowercase();
        let (host, port) = authority.rsplit_once(':').ok_or(Error::TunnelForbidden)?;
        let port: u16 = port.parse().map_err(|_| Error::TunnelForbidden)?;
        if host.len() > 253 {
            return Err(Error::TunnelForbidden);
        }
        let listed = if port == 443 {
            self.by_host.get(host)
        } else {
            None
        };
        listed
            .or_else(|| self.by_host.get(&authority))
            .ok_or(Error::TunnelForbidden)
    }

    /// The hosts, in configuration order.
    pub fn hosts(&self) -> &[String] {
        &self.order
    }

    /// How many gateways are allowed.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> Allowlist {
        Allowlist::new(&[
            ("mimi.p.example".into(), None),
            (
                "mimi.q.example:8443".into(),
                Some("http://127.0.0.4:1234/.well-known/ohttp-gateway".into()),
            ),
        ])
        .unwrap()
    }

    #[test]
    fn resolves_allowed_hosts_to_their_urls() {
        let l = list();
        let t = l.resolve("/gateway/mimi.p.example").unwrap();
        assert_eq!(t.url, "https://mimi.p.example/.well-known/ohttp-gateway");
        assert_eq!(t.index, 0);
        assert_eq!(l.resolve("/gateway/MIMI.P.example").unwrap().index, 0);
        let t = l.resolve("/gateway/mimi.q.example:8443").unwrap();
        assert_eq!(t.url, "http://127.0.0.4:1234/.well-known/ohttp-gateway");
    }

    #[test]
    fn tricks_do_not_match() {
        let l = list();
        for path in [
            "/gateway/",
            "/gateway",
            "/gateway/mimi.p.example/",
            "/gateway/mimi.p.example/../x",
            "/gateway/../gateway/mimi.p.example",
            "/gateway/mimi.p.example%2F..%2Fevil",
            "/gateway/mimi.p.example%2Eevil",
            "/gateway/user@mimi.p.example",
            "/gateway/mimi.p.example@evil.example",
            "/gateway/mimi.p.example:443",
            "/gateway/mimi.q.example",
            "/gateway/mimi.q.example:8444",
            "/gateway/127.0.0.4",
            "/gateway/127.0.0.4:1234",
            "/gateway/[::1]",
            "/gateway/mimi.p.example.",
            "/other/mimi.p.example",
            "//gateway/mimi.p.example",
        ] {
            assert!(
                matches!(l.resolve(path), Err(Error::UnknownGateway)),
                "{path}"
            );
        }
    }

    #[test]
    fn connect_reaches_only_listed_hosts_at_their_configured_address() {
        let l = list();
        let t = l.resolve_connect("mimi.p.example:443").unwrap();
        assert_eq!(
            (t.connect_host.as_str(), t.connect_port),
            ("mimi.p.example", 443)
        );
        let t = l.resolve_connect("MIMI.Q.example:8443").unwrap();
        assert_eq!(
            (t.connect_host.as_str(), t.connect_port),
            ("127.0.0.4", 1234)
        );
        for authority in [
            "mimi.p.example",
            "mimi.p.example:80",
            "mimi.p.example:8443",
            "mimi.q.example:443",
            "127.0.0.4:1234",
            "[::1]:443",
            "evil.example:443",
            "mimi.p.example.:443",
            "mimi.p.example:443:443",
            "user@mimi.p.example:443",
            "",
        ] {
            assert!(
                matches!(l.resolve_connect(authority), Err(Error::TunnelForbidden)),
                "{authority}"
            );
        }
    }

    #[test]
    fn bad_configuration_is_refused() {
        for (host, url) in [
            ("127.0.0.1", None),
            ("Mimi.p.example", None),
            ("mimi.p.example/x", None),
            ("u@mimi.p.example", None),
            ("mimi.p.example", Some("ftp://x/y")),
            ("mimi.p.example", Some("not a url")),
        ] {
            let r = Allowlist::new(&[(host.into(), url.map(Into::into))]);
            assert!(matches!(r, Err(Error::Config(_))), "{host} {url:?}");
        }
        let twice = Allowlist::new(&[("a.example".into(), None), ("a.example".into(), None)]);
        assert!(matches!(twice, Err(Error::Config(_))));
    }
}
