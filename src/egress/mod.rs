//! The egress policy ("safe by default"): which URLs outgoing requests (the scraper's browser,
//! webhooks, Web Push) may reach; the filtering proxy that enforces it for Chromium; and the
//! checked, pooled [`OutboundClient`] that enforces it for everything sent on a user's behalf.
//! Its requests are HTTP client spans ([`span`]).
//!
//! Private, loopback, link-local, metadata and other special addresses are refused unless
//! `egress.allow` names the host or a network holding the address. Names are resolved here and
//! every address is checked, so a public name pointing at 10.0.0.5 is refused too; callers then
//! connect to the checked addresses and never resolve again.

mod address;
mod client;
mod failure;
mod http;
pub mod proxy;
pub mod span;

pub use client::{Answer, Fetched, OutboundClient, describe_status};
pub use failure::OutboundError;
pub use proxy::EgressProxy;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use url::{Host, Url};

/// How long a name lookup may take before the target counts as unresolvable.
// getaddrinfo retries on its own; 10 s keeps a dead resolver from stalling a page for long.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an outgoing request may not go ahead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// The target is not a URL (or, for a tunnel, not a `host:port`).
    #[error("{target} is not a valid URL: {reason}")]
    BadUrl {
        /// The target as given.
        target: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL's scheme is neither http nor https.
    #[error("{target} is refused: only http and https URLs may be fetched, not {scheme}")]
    ForbiddenScheme {
        /// The URL as given.
        target: String,
        /// Its scheme.
        scheme: String,
    },
    /// The host is, or resolves to, an address the policy blocks.
    #[error("{}", blocked_message(.target, .host, .ip, .reason))]
    Blocked {
        /// The URL (or `host:port`) as given.
        target: String,
        /// The host name or IP literal from the target.
        host: String,
        /// The blocked address.
        ip: IpAddr,
        /// Why the address is blocked, e.g. "a private address".
        reason: &'static str,
    },
    /// The host name does not resolve to any address (or the lookup failed).
    #[error("{target} cannot be fetched: the name {host} does not resolve ({reason})")]
    Resolve {
        /// The URL (or `host:port`) as given.
        target: String,
        /// The host name.
        host: String,
        /// What the resolver said.
        reason: String,
    },
}

impl EgressError {
    /// True when the policy itself refused the target (a forbidden scheme or a blocked
    /// address), as opposed to a malformed or unresolvable target.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::ForbiddenScheme { .. } | Self::Blocked { .. })
    }
}

fn blocked_message(target: &str, host: &str, ip: &IpAddr, reason: &str) -> String {
    let culprit = if *host == ip.to_string() {
        format!("{ip} is {reason}")
    } else {
        format!("{host} resolves to {ip}, {reason}")
    };
    format!("{target} is refused: {culprit}; an operator can allow it with egress.allow")
}

/// The egress allowlist: host names, `*.suffix` wildcards, IP addresses and CIDRs that may be
/// reached even though their addresses are blocked by default.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    hosts: HashSet<String>,
    /// Wildcard entries, stored with their leading dot (`.example.com`).
    suffixes: Vec<String>,
    nets: Vec<IpNet>,
}

impl EgressPolicy {
    /// Builds the policy from `egress.allow`; the error names the first entry that is not a host
    /// name, `*.` wildcard, IP address or CIDR.
    pub fn new(allow: &[String]) -> Result<Self, String> {
        let mut policy = Self::default();
        for entry in allow {
            policy
                .add(entry)
                .map_err(|why| format!("egress.allow entry {entry:?} {why}"))?;
        }
        Ok(policy)
    }

    fn add(&mut self, entry: &str) -> Result<(), &'static str> {
        let entry = entry.trim();
        if entry.is_empty() {
            return Err("is empty");
        }
        if entry.contains('/') {
            let net: IpNet = entry
                .parse()
                .map_err(|_| "is not a CIDR like 10.0.0.0/8 or fd00::/8")?;
            self.nets.push(net.trunc());
            return Ok(());
        }
        let bare = entry
            .strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .unwrap_or(entry);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.nets.push(IpNet::from(ip));
            return Ok(());
        }
        let (wildcard, name) = match entry.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
        let name = normalize_name(name)
            .ok_or("is neither a host name, a *.wildcard, an IP address nor a CIDR")?;
        if wildcard {
            self.suffixes.push(format!(".{name}"));
        } else {
            self.hosts.insert(name);
        }
        Ok(())
    }

    /// Says why `ip` is blocked by default (for example "a private address"), or `None` for an
    /// ordinary public address. The allowlist is not consulted.
    pub fn ip_blocked(ip: IpAddr) -> Option<&'static str> {
        address::blocked_reason(ip)
    }

    /// True when the allowlist names this host exactly or through a `*.` wildcard (which
    /// matches subdomains only). IP literals are matched by [`Self::is_allowed_ip`].
    pub fn is_allowed_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.contains(&host) || self.suffixes.iter().any(|suffix| host.ends_with(suffix))
    }

    /// True when an allowlisted IP address or CIDR holds `ip` (an IPv4-mapped IPv6 address
    /// also matches through its IPv4 address).
    pub fn is_allowed_ip(&self, ip: IpAddr) -> bool {
        let canonical = ip.to_canonical();
        self.nets
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
    }

    /// Parses `url` and checks what can be checked without a lookup: the scheme is http or
    /// https, there is a host, and an IP-literal host is not blocked.
    pub fn check_url(&self, url: &str) -> Result<Url, EgressError> {
        let parsed = Url::parse(url.trim()).map_err(|err| EgressError::BadUrl {
            target: url.to_owned(),
            reason: err.to_string(),
        })?;
        self.check_parsed(&parsed)?;
        Ok(parsed)
    }

    fn check_parsed(&self, url: &Url) -> Result<(), EgressError> {
        let target = url.as_str();
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EgressError::ForbiddenScheme {
                target: target.to_owned(),
                scheme: url.scheme().to_owned(),
            });
        }
        match url.host() {
            None => Err(bad_url(target, "it has no host")),
            Some(Host::Domain(_)) => Ok(()),
            Some(Host::Ipv4(ip)) => self.check_ip(target, &ip.to_string(), ip.into()),
            Some(Host::Ipv6(ip)) => self.check_ip(target, &ip.to_string(), ip.into()),
        }
    }

    fn check_ip(&self, target: &str, host: &str, ip: IpAddr) -> Result<(), EgressError> {
        match Self::ip_blocked(ip) {
            Some(reason) if !self.is_allowed_ip(ip) => Err(EgressError::Blocked {
                target: target.to_owned(),
                host: host.to_owned(),
                ip,
                reason,
            }),
            _ => Ok(()),
        }
    }

    /// Checks `url` and returns the addresses to connect to. An allowlisted host name skips the
    /// address check; otherwise the name is refused if any of its addresses is blocked and not
    /// allowlisted. Connect only to what this returns: resolving again would let a name change
    /// its answer between the check and the connection.
    pub async fn resolve(&self, url: &Url) -> Result<Vec<SocketAddr>, EgressError> {
        self.check_parsed(url)?;
        let target = url.as_str();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| bad_url(target, "it has no port"))?;
        let host = url
            .host()
            .ok_or_else(|| bad_url(target, "it has no host"))?;
        self.resolve_host(target, host, port).await
    }

    /// Like [`Self::resolve`] for a tunnel's `host:port` (the target of an HTTP `CONNECT`).
    pub async fn resolve_authority(&self, authority: &str) -> Result<Vec<SocketAddr>, EgressError> {
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| bad_url(authority, "it is not host:port"))?;
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| bad_url(authority, "the port is not a number from 1 to 65535"))?;
        let host = Host::parse(host).map_err(|err| bad_url(authority, &err.to_string()))?;
        let host = match &host {
            Host::Domain(name) => Host::Domain(name.as_str()),
            Host::Ipv4(ip) => Host::Ipv4(*ip),
            Host::Ipv6(ip) => Host::Ipv6(*ip),
        };
        self.resolve_host(authority, host, port).await
    }

    async fn resolve_host(
        &self,
        target: &str,
        host: Host<&str>,
        port: u16,
    ) -> Result<Vec<SocketAddr>, EgressError> {
        let name = match host {
            Host::Ipv4(ip) => return self.literal(target, ip.into(), port),
            Host::Ipv6(ip) => return self.literal(target, ip.into(), port),
            Host::Domain(name) => name,
        };
        let unresolvable = |reason: String| EgressError::Resolve {
            target: target.to_owned(),
            host: name.to_owned(),
            reason,
        };
        let addrs: Vec<SocketAddr> =
            match tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((name, port))).await
            {
                Ok(Ok(addrs)) => addrs.collect(),
                Ok(Err(err)) => return Err(unresolvable(err.to_string())),
                Err(_) => return Err(unresolvable("the lookup timed out".to_owned())),
            };
        if addrs.is_empty() {
            return Err(unresolvable("no addresses".to_owned()));
        }
        if !self.is_allowed_host(name) {
            for addr in &addrs {
                self.check_ip(target, name, addr.ip())?;
            }
        }
        Ok(addrs)
    }

    fn literal(&self, target: &str, ip: IpAddr, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
        self.check_ip(target, &ip.to_string(), ip)?;
        Ok(vec![SocketAddr::new(ip, port)])
    }
}

fn bad_url(target: &str, reason: &str) -> EgressError {
    EgressError::BadUrl {
        target: target.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Lower-cases and IDNA-encodes a host name as the URL parser does, so allowlist entries compare
/// equal to URL hosts; `None` for anything that is not a plain name.
fn normalize_name(name: &str) -> Option<String> {
    match Host::parse(name) {
        Ok(Host::Domain(domain)) => {
            let domain = domain.trim_end_matches('.');
            let plain = !domain.is_empty()
                && !domain.contains('*')
                && domain.split('.').all(|label| !label.is_empty());
            plain.then(|| domain.to_owned())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
