//! Which browser origin a request is for: the viewer itself, or one peer's site on
//! `<peer id as base36 CIDv1>.localhost`, the way IPFS subdomain gateways isolate content.
//!
//! A peer ID in base58 is case-sensitive and hostnames are not, so the subdomain carries the
//! ID as a CIDv1 (codec `libp2p-key`) in lowercase base36: 62 characters for an ed25519 key,
//! inside DNS's 63-character label limit.

use std::net::IpAddr;

use axum::http::HeaderMap;
use libp2p::PeerId;
use multibase::Base;

/// CIDv1 prefix: version 1, multicodec `libp2p-key` (0x72).
const CID_PREFIX: [u8; 2] = [0x01, 0x72];

/// What the Host header names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The viewer's own pages and API.
    Viewer,
    /// One peer's site.
    Peer(PeerId),
}

/// The subdomain label for `peer`.
pub fn label(peer: &PeerId) -> String {
    let mut cid = CID_PREFIX.to_vec();
    cid.extend_from_slice(&peer.to_bytes());
    multibase::encode(Base::Base36Lower, cid)
}

/// The peer a subdomain label names, whatever its case.
pub fn parse_label(label: &str) -> Option<PeerId> {
    let (base, bytes) = multibase::decode(label.to_ascii_lowercase()).ok()?;
    if !matches!(base, Base::Base36Lower | Base::Base32Lower) {
        return None;
    }
    PeerId::from_bytes(bytes.strip_prefix(&CID_PREFIX)?).ok()
}

/// Names the viewer answers to on its port: `localhost`, `<peer>.localhost`, and IP literals
/// (which DNS rebinding cannot forge).
#[derive(Debug, Clone)]
pub struct Hosts {
    pub port: u16,
}

impl Hosts {
    /// The origin of `peer`'s site.
    pub fn site_url(&self, peer: &PeerId) -> String {
        format!("http://{}.localhost:{}/", label(peer), self.port)
    }

    /// Classifies a Host header value. Anything else — a rebinding attacker's name, a wrong
    /// port — is refused.
    pub fn target(&self, host: &str) -> Option<Target> {
        let (name, port) = split_port(host)?;
        if port != self.port {
            return None;
        }
        let name = name.to_ascii_lowercase();
        let name = name.strip_suffix('.').unwrap_or(&name);
        if name == "localhost" {
            return Some(Target::Viewer);
        }
        if let Some(sub) = name.strip_suffix(".localhost") {
            return parse_label(sub).map(Target::Peer);
        }
        let ip = name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>();
        ip.is_ok().then_some(Target::Viewer)
    }

    /// The target of a request, from its Host header.
    pub fn of(&self, headers: &HeaderMap) -> Option<Target> {
        let host = headers.get(axum::http::header::HOST)?.to_str().ok()?;
        self.target(host)
    }
}

/// `name:port` → (name, port); a missing port is HTTP's 80.
fn split_port(host: &str) -> Option<(&str, u16)> {
    match host.rsplit_once(':') {
        // `[::1]` alone: the colon belongs to the address.
        Some((name, port)) if !port.contains(']') => Some((name, port.parse().ok()?)),
        _ => Some((host, 80)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Hosts {
        Hosts { port: 8080 }
    }

    #[test]
    fn labels_round_trip_and_fit_in_a_dns_label() {
        let peer = libp2p::identity::Keypair::generate_ed25519().public().to_peer_id();
        let l = label(&peer);
        assert!(l.len() <= 63 && l.starts_with('k'), "{l}");
        assert_eq!(parse_label(&l), Some(peer));
        assert_eq!(parse_label(&l.to_ascii_uppercase()), Some(peer));
        assert_eq!(hosts().target(&format!("{l}.localhost:8080")), Some(Target::Peer(peer)));
        assert_eq!(hosts().target(&format!("{}.LOCALHOST:8080", l.to_uppercase())), Some(Target::Peer(peer)));
    }

    #[test]
    fn only_local_names_on_the_right_port_are_accepted() {
        let h = hosts();
        for ok in ["localhost:8080", "127.0.0.1:8080", "[::1]:8080", "LocalHost:8080", "localhost.:8080"] {
            assert_eq!(h.target(ok), Some(Target::Viewer), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "localhost:8081",
            "localhost",
            "127.0.0.1.nip.io:8080",
            "192.168.1.5.example:8080",
            "kfoo.localhost:8080",
            "localhost.evil.example:8080",
            "a.b.localhost:8080",
            "",
        ] {
            assert_eq!(h.target(bad), None, "{bad}");
        }
        assert_eq!(h.target("192.168.1.5:8080"), Some(Target::Viewer), "an address the owner chose to bind");
    }
}
