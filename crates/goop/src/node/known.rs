//! The peers this node has met, bounded: under a flood of fresh identities the ones nobody
//! used go first, and a peer the owner contacted or that is connected always stays.

use std::collections::BTreeMap;

use libp2p::{Multiaddr, PeerId};

use super::services::Labels;

/// Most peers remembered beyond those the owner contacted or that are connected.
pub const MAX_KNOWN: usize = 1024;
/// Addresses kept per peer.
const MAX_ADDRS: usize = 8;

#[derive(Debug, Default)]
pub struct Seen {
    pub addrs: Vec<Multiaddr>,
    pub connections: u32,
    /// Of those, the ones through a helper's relay.
    pub relayed: u32,
    /// The owner dialed it or sent it a request: it stays until the node stops.
    pub contacted: bool,
    /// When it was last seen, on the list's own clock: the oldest unused one goes first.
    last_seen: u64,
}

impl Seen {
    fn kept(&self) -> bool {
        self.contacted || self.connections > 0
    }
}

/// Sorted by ID, for listing.
#[derive(Debug, Default)]
pub struct Known {
    peers: BTreeMap<PeerId, Seen>,
    clock: u64,
    /// A forgotten peer's label goes with it.
    labels: Labels,
}

impl Known {
    pub fn new(labels: Labels) -> Known {
        Known { labels, ..Known::default() }
    }

    /// Notes `peer` (and where it was seen); `None` when the list is full of peers that stay.
    pub fn see(&mut self, peer: PeerId, addr: Option<Multiaddr>) -> Option<&mut Seen> {
        if !self.peers.contains_key(&peer) && self.peers.len() >= MAX_KNOWN && !self.evict_one() {
            return None;
        }
        Some(self.touch(peer, addr))
    }

    /// Notes a peer that must stay: connected, or contacted by the owner. Never refused; these
    /// are bounded by the connection limits and by what the owner does.
    pub fn see_kept(&mut self, peer: PeerId, addr: Option<Multiaddr>) -> &mut Seen {
        if !self.peers.contains_key(&peer) && self.peers.len() >= MAX_KNOWN {
            self.evict_one();
        }
        self.touch(peer, addr)
    }

    /// Notes an address of a peer already on the list.
    pub fn add_addr(&mut self, peer: &PeerId, addr: Multiaddr) -> bool {
        match self.peers.get_mut(peer) {
            Some(seen) => {
                if !seen.addrs.contains(&addr) && seen.addrs.len() < MAX_ADDRS {
                    seen.addrs.push(addr);
                }
                true
            }
            None => false,
        }
    }

    pub fn disconnected(&mut self, peer: &PeerId, relayed: bool) {
        if let Some(seen) = self.peers.get_mut(peer) {
            seen.connections = seen.connections.saturating_sub(1);
            if relayed {
                seen.relayed = seen.relayed.saturating_sub(1);
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&PeerId, &Seen)> {
        self.peers.iter()
    }

    fn touch(&mut self, peer: PeerId, addr: Option<Multiaddr>) -> &mut Seen {
        self.clock += 1;
        let seen = self.peers.entry(peer).or_default();
        seen.last_seen = self.clock;
        if let Some(addr) = addr {
            if !seen.addrs.contains(&addr) && seen.addrs.len() < MAX_ADDRS {
                seen.addrs.push(addr);
            }
        }
        seen
    }

    /// Forgets the peer seen longest ago among those that need not stay; false if none may go.
    fn evict_one(&mut self) -> bool {
        let oldest = self.peers.iter().filter(|(_, s)| !s.kept()).min_by_key(|(_, s)| s.last_seen).map(|(id, _)| *id);
        match oldest {
            Some(id) => {
                self.labels.remove(&id);
                self.peers.remove(&id).is_some()
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u32) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{}", 1000 + i % 60000).parse().unwrap()
    }

    #[test]
    fn a_flood_of_fresh_identities_keeps_dialed_and_connected_peers() {
        let labels = Labels::default();
        let mut known = Known::new(labels.clone());
        let dialed = PeerId::random();
        known.see_kept(dialed, Some(addr(0))).contacted = true;
        let connected = PeerId::random();
        known.see_kept(connected, None).connections += 1;
        let mut flood = Vec::new();
        for i in 0..10 * MAX_KNOWN as u32 {
            let id = PeerId::random();
            known.see(id, Some(addr(i)));
            labels.set(id, format!("flood {i}"));
            flood.push(id);
        }
        assert_eq!(known.peers.len(), MAX_KNOWN);
        assert_eq!(labels.get(&flood[0]), "", "a forgotten peer's label is forgotten too");
        assert!(known.peers.contains_key(&dialed) && known.peers.contains_key(&connected));
        // The newest of the flood are the ones left besides the two that stay.
        let kept_flood = flood.iter().rev().take(MAX_KNOWN - 2).filter(|id| known.peers.contains_key(id)).count();
        assert_eq!(kept_flood, MAX_KNOWN - 2);

        // A peer that disconnects may then go; the dialed one never does.
        known.disconnected(&connected, false);
        for i in 0..MAX_KNOWN as u32 {
            known.see(PeerId::random(), Some(addr(i)));
        }
        assert!(!known.peers.contains_key(&connected));
        assert!(known.peers.contains_key(&dialed));
    }

    #[test]
    fn peers_that_stay_are_never_refused() {
        let mut known = Known::default();
        for _ in 0..MAX_KNOWN {
            known.see_kept(PeerId::random(), None).contacted = true;
        }
        assert!(known.see(PeerId::random(), None).is_none(), "a stranger finds no room");
        let late = PeerId::random();
        known.see_kept(late, None).connections += 1;
        assert!(known.peers.contains_key(&late));
        assert_eq!(known.peers.len(), MAX_KNOWN + 1);
    }
}
