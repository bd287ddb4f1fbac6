//! Why an outbound request got no answer, in short words that are safe to store and show: a
//! policy refusal names the address class (`blocked_by_policy: loopback address 127.0.0.1`),
//! a transport failure its kind (`connection refused`, `timed out`); never the URL, which may
//! be a capability, and never anything the remote server sent.

use std::error::Error;
use std::io;
use std::net::IpAddr;

use super::EgressError;

/// The longest fallback description kept, in characters.
const MAX_DETAIL: usize = 200;

/// Why an outbound request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// The address is of a class the policy blocks (and `egress.allow` does not name).
    #[error("blocked_by_policy: {class} {ip}")]
    Blocked {
        /// The address class, e.g. `loopback address`.
        class: &'static str,
        /// The refused address.
        ip: IpAddr,
    },
    /// The URL's scheme is neither http nor https.
    #[error("blocked_by_policy: scheme {0} is not http or https")]
    Scheme(String),
    /// The URL cannot be used.
    #[error("bad URL: {0}")]
    BadUrl(String),
    /// The host name does not resolve.
    #[error("name does not resolve: {0}")]
    Unresolvable(String),
    /// No answer within the timeout.
    #[error("timed out")]
    Timeout,
    /// The connection failed, e.g. `connection refused`.
    #[error("{0}")]
    Connection(&'static str),
    /// Any other failure, described by the HTTP stack (not by the remote server).
    #[error("{0}")]
    Other(String),
}

impl OutboundError {
    /// A short, stable name of the failure for a span's `error.type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Blocked { .. } | Self::Scheme(_) => "blocked_by_policy",
            Self::BadUrl(_) => "bad_url",
            Self::Unresolvable(_) => "unresolvable",
            Self::Timeout => "timeout",
            Self::Connection(_) => "connection",
            Self::Other(_) => "other",
        }
    }

    /// True when trying again cannot help: the policy or the URL itself is at fault.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Blocked { .. } | Self::Scheme(_) | Self::BadUrl(_)
        )
    }

    /// Sorts a reqwest error by what its cause chain holds: a refusal by the policy's resolver,
    /// an I/O error of a known kind, a timeout; otherwise the chain's own words, without URL.
    pub fn from_reqwest(error: reqwest::Error) -> Self {
        let error = error.without_url();
        let mut cause: Option<&(dyn Error + 'static)> = Some(&error);
        while let Some(current) = cause {
            if let Some(known) = Self::from_cause(current) {
                return known;
            }
            cause = current.source();
        }
        if error.is_timeout() {
            return Self::Timeout;
        }
        Self::Other(chain_text(&error))
    }

    fn from_cause(cause: &(dyn Error + 'static)) -> Option<Self> {
        if let Some(egress) = cause.downcast_ref::<EgressError>() {
            return Some(egress.clone().into());
        }
        let io = cause.downcast_ref::<io::Error>()?;
        let known = match io.kind() {
            io::ErrorKind::ConnectionRefused => Self::Connection("connection refused"),
            io::ErrorKind::ConnectionReset => Self::Connection("connection reset"),
            io::ErrorKind::ConnectionAborted => Self::Connection("connection aborted"),
            io::ErrorKind::HostUnreachable => Self::Connection("host unreachable"),
            io::ErrorKind::NetworkUnreachable => Self::Connection("network unreachable"),
            io::ErrorKind::UnexpectedEof => Self::Connection("connection closed early"),
            io::ErrorKind::TimedOut => Self::Timeout,
            // io::Error's `source` skips the error it wraps; look inside it here.
            _ => return io.get_ref().and_then(|inner| Self::from_cause(inner)),
        };
        Some(known)
    }
}

impl From<EgressError> for OutboundError {
    fn from(error: EgressError) -> Self {
        match error {
            EgressError::Blocked { ip, reason, .. } => Self::Blocked {
                class: without_article(reason),
                ip,
            },
            EgressError::ForbiddenScheme { scheme, .. } => Self::Scheme(scheme),
            EgressError::BadUrl { reason, .. } => Self::BadUrl(reason),
            EgressError::Resolve { host, .. } => Self::Unresolvable(host),
        }
    }
}

/// `a loopback address` → `loopback address`.
fn without_article(reason: &'static str) -> &'static str {
    ["a ", "an ", "the "]
        .iter()
        .find_map(|article| reason.strip_prefix(article))
        .unwrap_or(reason)
}

/// The error and its causes, `: `-joined, repeats dropped, at most [`MAX_DETAIL`] characters.
fn chain_text(error: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cause = Some(error);
    while let Some(current) = cause {
        let text = current.to_string();
        if !parts.iter().any(|seen| seen.contains(&text)) {
            parts.push(text);
        }
        cause = current.source();
    }
    parts.join(": ").chars().take(MAX_DETAIL).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(ip: &str, reason: &'static str) -> EgressError {
        EgressError::Blocked {
            target: "https://push.example.net/secret-capability".into(),
            host: "push.example.net".into(),
            ip: ip.parse().expect("an address"),
            reason,
        }
    }

    #[test]
    fn a_blocked_address_names_its_class_and_address_but_not_the_url() {
        let text = OutboundError::from(blocked("127.0.0.1", "a loopback address")).to_string();
        let metadata =
            OutboundError::from(blocked("169.254.169.254", "the cloud metadata address"));

        assert_eq!(text, "blocked_by_policy: loopback address 127.0.0.1");
        assert_eq!(
            metadata.to_string(),
            "blocked_by_policy: cloud metadata address 169.254.169.254"
        );
        assert!(metadata.is_refusal());
    }

    #[test]
    fn an_unresolvable_name_is_transient_and_names_only_the_host() {
        let error = OutboundError::from(EgressError::Resolve {
            target: "https://push.example.net/secret-capability".into(),
            host: "push.example.net".into(),
            reason: "failed to lookup address information".into(),
        });

        assert_eq!(error.to_string(), "name does not resolve: push.example.net");
        assert!(!error.is_refusal());
    }

    #[test]
    fn an_io_error_is_found_inside_the_error_that_wraps_it() {
        let wrapped = io::Error::other(io::Error::from(io::ErrorKind::ConnectionRefused));

        let known = OutboundError::from_cause(&wrapped);

        assert_eq!(known, Some(OutboundError::Connection("connection refused")));
    }
}
