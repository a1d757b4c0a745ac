//! The resolver ureq calls before every connection: it turns the URL host into addresses and
//! drops the ones scripts may not reach.
//!
//! ureq resolves through this for the first URL and for each redirect hop, IP-literal hosts
//! included (it has no literal fast path), and its TCP connector dials only the addresses
//! returned here. So the address checked is the address connected to: no DNS-rebinding window.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use super::addr::{classify, literal_ip, Range};
use super::error::HttpError;
use super::HttpPolicy;

/// Longest a lookup may take when ureq gives no timeout (it always does: we set a global one).
const FALLBACK_LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Resolves hosts and filters every answer through the address classifier.
#[derive(Debug)]
pub struct GuardedResolver {
    policy: HttpPolicy,
}

impl GuardedResolver {
    pub fn new(policy: HttpPolicy) -> Self {
        GuardedResolver { policy }
    }

    /// Whether `ip` may be connected to under this policy.
    pub fn check(&self, ip: IpAddr) -> Result<(), HttpError> {
        match classify(ip) {
            None => Ok(()),
            Some(Range::Loopback) if self.policy.allow_loopback => Ok(()),
            Some(range) => Err(HttpError::Blocked { addr: ip, range }),
        }
    }

    /// The allowed socket addresses for `uri`, or why there are none.
    pub fn addresses(&self, uri: &Uri, timeout: Duration) -> Result<Vec<SocketAddr>, HttpError> {
        let port = match uri.scheme_str() {
            Some("http") => 80,
            Some("https") => 443,
            other => return Err(HttpError::Scheme(other.unwrap_or_default().to_string())),
        };
        let port = uri.port_u16().unwrap_or(port);
        let host = uri.host().ok_or_else(|| invalid(uri, "no host"))?;
        if let Some(ip) = literal_ip(host) {
            self.check(ip)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        if host.starts_with('[') {
            return Err(invalid(uri, "not an IPv6 address"));
        }
        let answers = lookup(host, port, timeout)?;
        let mut first_refusal = None;
        let mut allowed = Vec::new();
        for addr in answers {
            match self.check(addr.ip()) {
                Ok(()) if !allowed.contains(&addr) => allowed.push(addr),
                Ok(()) => {}
                Err(e) => {
                    first_refusal.get_or_insert(e);
                }
            }
        }
        match (allowed.is_empty(), first_refusal) {
            (false, _) => Ok(allowed),
            (true, Some(refusal)) => Err(refusal),
            (true, None) => Err(HttpError::Resolve { host: host.to_string(), reason: "no addresses".into() }),
        }
    }
}

impl Resolver for GuardedResolver {
    fn resolve(&self, uri: &Uri, _config: &Config, timeout: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let limit = if timeout.after.is_not_happening() { FALLBACK_LOOKUP_TIMEOUT } else { *timeout.after };
        let addrs = self.addresses(uri, limit).map_err(|e| ureq::Error::Other(Box::new(e)))?;
        let mut out = self.empty();
        for addr in addrs {
            // ureq keeps a fixed number of addresses; the rest are dropped.
            if out.try_push(addr).is_err() {
                break;
            }
        }
        Ok(out)
    }
}

fn invalid(uri: &Uri, reason: &str) -> HttpError {
    HttpError::InvalidUrl { url: uri.to_string(), reason: reason.to_string() }
}

/// System DNS lookup on a helper thread, so a slow resolver cannot outlive the deadline.
fn lookup(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, HttpError> {
    let (tx, rx) = mpsc::sync_channel(1);
    let name = host.to_string();
    thread::spawn(move || {
        // The receiver may be gone after a timeout; nothing to do then.
        let _ = tx.send((name.as_str(), port).to_socket_addrs().map(Vec::from_iter));
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(addrs)) => Ok(addrs),
        Ok(Err(e)) => Err(HttpError::Resolve { host: host.to_string(), reason: e.to_string() }),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(HttpError::Timeout),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(HttpError::Resolve { host: host.to_string(), reason: "lookup thread failed".into() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(policy: HttpPolicy, url: &str) -> String {
        let uri: Uri = url.parse().unwrap_or_else(|e| panic!("{url}: {e}"));
        match GuardedResolver::new(policy).addresses(&uri, Duration::from_secs(5)) {
            Ok(addrs) => panic!("{url} resolved to {addrs:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn literal_hosts_are_checked_in_every_form() {
        let strict = HttpPolicy::default();
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.1/",
            "http://127.1:8080/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "https://[64:ff9b::7f00:1]/",
        ] {
            assert!(refusal(strict, url).contains("(loopback)"), "{url}");
        }
        assert_eq!(refusal(strict, "http://10.0.0.1/"), "blocked address 10.0.0.1 (private network)");
        assert_eq!(refusal(strict, "http://0/"), "blocked address 0.0.0.0 (unspecified)");
    }

    #[test]
    fn allow_loopback_opens_loopback_only() {
        let open = HttpPolicy { allow_loopback: true };
        let uri: Uri = "http://0x7f.1:9/".parse().unwrap_or_else(|e| panic!("{e}"));
        let addrs = GuardedResolver::new(open).addresses(&uri, Duration::from_secs(5));
        assert_eq!(addrs.ok(), Some(vec![SocketAddr::from(([127, 0, 0, 1], 9))]));
        assert!(refusal(open, "http://169.254.169.254/").contains("link-local"));
        assert!(refusal(open, "http://[fd00::1]/").contains("private network"));
        assert!(refusal(open, "http://0.0.0.0/").contains("unspecified"));
    }

    #[test]
    fn names_are_resolved_then_filtered() {
        // localhost resolves from /etc/hosts, without DNS traffic.
        let message = refusal(HttpPolicy::default(), "http://localhost/");
        assert!(message.contains("(loopback)"), "{message}");
    }

    #[test]
    fn other_schemes_are_refused() {
        for url in ["ftp://example.com/", "file://localhost/etc/passwd", "gopher://example.com/"] {
            assert!(refusal(HttpPolicy::default(), url).contains("not allowed"), "{url}");
        }
    }
}
