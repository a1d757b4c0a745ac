//! Reaching peers beyond the local network through helper nodes (`goop relay`): the peer learns
//! its reachability from their AutoNAT, reserves a relay slot at each when it is not publicly
//! reachable (and advertises the relayed address), registers at their rendezvous and discovers
//! the other goop peers registered there. libp2p's DCUtR then upgrades relayed connections.

use std::net::IpAddr;
use std::time::Duration;

use libp2p::autonat::{self, NatStatus};
use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::rendezvous::{self, Cookie, Namespace};
use libp2p::{Multiaddr, PeerId, Swarm};
use tokio::sync::watch;

use super::behaviour::Behaviour;
use super::known::Known;

/// How often discovery asks the helpers again (and a lost helper is dialed again).
pub const REFRESH: Duration = Duration::from_secs(10);
/// Registrations kept from one discovery answer.
const MAX_DISCOVERED: u64 = 256;

struct Helper {
    id: PeerId,
    addr: Multiaddr,
    connected: bool,
    reservation: Option<ListenerId>,
    registered: bool,
    cookie: Option<Cookie>,
    /// Not dialed at start: waiting for a listen address to dial it from (see `refresh`).
    waiting: bool,
}

/// This peer's reachability, as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reachability {
    /// `public`, `private` or `unknown` (no helper has told yet).
    pub status: &'static str,
    /// Addresses at helpers through which others reach this peer.
    pub relayed: Vec<Multiaddr>,
}

impl Default for Reachability {
    fn default() -> Self {
        Reachability { status: "unknown", relayed: Vec::new() }
    }
}

pub struct Reach {
    helpers: Vec<Helper>,
    status: NatStatus,
    shown: watch::Sender<Reachability>,
    /// This node listens (a peer, not the CLI's client node): helpers are dialed from its
    /// listening port.
    listens: bool,
    /// The IP addresses it listens on with TCP so far.
    listen_ips: Vec<IpAddr>,
    /// `refresh` ran before.
    refreshed: bool,
}

fn namespace() -> Namespace {
    Namespace::from_static(crate::relay::NAMESPACE)
}

impl Reach {
    /// The helpers at `relays`; each address must end in `/p2p/<helper ID>`.
    /// `listens`: the node has listen addresses to come (it dials helpers from one of them).
    pub fn new(relays: &[Multiaddr], listens: bool, shown: watch::Sender<Reachability>) -> Result<Reach, String> {
        let mut helpers = Vec::new();
        for addr in relays {
            let Some(Protocol::P2p(id)) = addr.iter().last() else {
                return Err(format!("relay {addr} must end in /p2p/<its peer ID>"));
            };
            let helper = Helper {
                id,
                addr: addr.clone(),
                connected: false,
                reservation: None,
                registered: false,
                cookie: None,
                waiting: false,
            };
            helpers.push(helper);
        }
        Ok(Reach { helpers, status: NatStatus::Unknown, shown, listens, listen_ips: Vec::new(), refreshed: false })
    }

    /// Dials every helper not connected now; asks the connected ones for peers again.
    ///
    /// At start, a listening peer dials a helper only once it listens on an address TCP can
    /// dial it from: libp2p dials from the listening port only then, and otherwise from a
    /// fresh one, which is the port the helper sees and tells others for hole punching — a
    /// port the NAT maps to nothing this peer dials from, so every hole punch would miss. Such
    /// a helper is dialed when that address comes (`listening`), or at the next refresh.
    pub fn refresh(&mut self, swarm: &mut Swarm<Behaviour>) {
        let first = !std::mem::replace(&mut self.refreshed, true);
        for helper in &mut self.helpers {
            if helper.connected {
                let cookie = helper.cookie.clone();
                swarm.behaviour_mut().rendezvous.discover(Some(namespace()), cookie, Some(MAX_DISCOVERED), helper.id);
            } else if first && self.listens && !can_dial_from(&self.listen_ips, &helper.addr) {
                helper.waiting = true;
            } else {
                helper.waiting = false;
                dial(swarm, helper);
            }
        }
    }

    /// A connection to `peer` opened: a helper serves AutoNAT and discovery from now on.
    pub fn connected(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId) {
        let private = matches!(self.status, NatStatus::Private);
        let Some(helper) = self.helpers.iter_mut().find(|h| h.id == peer) else { return };
        if helper.connected {
            return;
        }
        helper.connected = true;
        tracing::info!("connected to helper {}", helper.addr);
        let b = swarm.behaviour_mut();
        b.autonat.add_server(helper.id, Some(helper.addr.clone()));
        b.rendezvous.discover(Some(namespace()), None, Some(MAX_DISCOVERED), helper.id);
        if private {
            reserve(swarm, helper);
        }
        register(swarm, helper);
    }

    /// The last connection to `peer` closed.
    pub fn disconnected(&mut self, peer: &PeerId) {
        if let Some(helper) = self.helpers.iter_mut().find(|h| h.id == *peer) {
            helper.connected = false;
            helper.registered = false;
        }
    }

    pub fn autonat(&mut self, swarm: &mut Swarm<Behaviour>, event: autonat::Event) {
        let autonat::Event::StatusChanged { new, .. } = event else { return };
        tracing::info!("reachability: {new:?}");
        self.status = new;
        let status = match self.status {
            NatStatus::Public(_) => "public",
            NatStatus::Private => "private",
            NatStatus::Unknown => "unknown",
        };
        self.shown.send_modify(|r| r.status = status);
        for helper in &mut self.helpers {
            match self.status {
                NatStatus::Private if helper.connected => reserve(swarm, helper),
                NatStatus::Public(_) => {
                    if let Some(listener) = helper.reservation.take() {
                        swarm.remove_listener(listener);
                    }
                }
                _ => {}
            }
        }
    }

    /// A new listen address: a relayed one is where others reach this peer, so it is advertised.
    /// A plain one may be what a helper waits for to be dialed from (`refresh`).
    pub fn listening(&mut self, swarm: &mut Swarm<Behaviour>, addr: &Multiaddr) {
        if !addr.iter().any(|p| p == Protocol::P2pCircuit) {
            // TCP's: libp2p's TCP transport dials from the port of a TCP listener only.
            let tcp = addr.iter().any(|p| matches!(p, Protocol::Tcp(_)));
            if let (true, Some(ip)) = (tcp, ip_of(addr)) {
                self.listen_ips.push(ip);
                for helper in self.helpers.iter_mut().filter(|h| h.waiting) {
                    if can_dial_from(&self.listen_ips, &helper.addr) {
                        helper.waiting = false;
                        dial(swarm, helper);
                    }
                }
            }
            return;
        }
        tracing::info!("reachable through a helper at {addr}");
        self.shown.send_modify(|r| r.relayed.push(addr.clone()));
        swarm.add_external_address(addr.clone());
        for helper in self.helpers.iter_mut().filter(|h| h.connected) {
            helper.registered = false;
            register(swarm, helper);
        }
    }

    /// A listen address went away (a relay slot given up or lost).
    pub fn expired(&mut self, addr: &Multiaddr) {
        self.shown.send_if_modified(|r| {
            let before = r.relayed.len();
            r.relayed.retain(|a| a != addr);
            r.relayed.len() != before
        });
    }

    /// An external address was confirmed (AutoNAT found this peer public): register with it.
    pub fn external_confirmed(&mut self, swarm: &mut Swarm<Behaviour>) {
        for helper in self.helpers.iter_mut().filter(|h| h.connected && !h.registered) {
            register(swarm, helper);
        }
    }

    pub fn rendezvous(&mut self, swarm: &mut Swarm<Behaviour>, known: &mut Known, event: rendezvous::client::Event) {
        use rendezvous::client::Event;
        match event {
            Event::Discovered { rendezvous_node, registrations, cookie } => {
                if let Some(helper) = self.helpers.iter_mut().find(|h| h.id == rendezvous_node) {
                    helper.cookie = Some(cookie);
                }
                let me = *swarm.local_peer_id();
                for registration in registrations {
                    let peer = registration.record.peer_id();
                    if peer == me {
                        continue;
                    }
                    for addr in registration.record.addresses().iter().take(8) {
                        if known.see(peer, Some(addr.clone())).is_some() {
                            tracing::info!("discovered {peer} at {addr} through a helper");
                            swarm.add_peer_address(peer, addr.clone());
                        }
                    }
                }
            }
            Event::Registered { rendezvous_node, .. } => {
                tracing::info!("registered at helper {rendezvous_node}");
            }
            Event::RegisterFailed { rendezvous_node, error, .. } => {
                tracing::warn!("helper {rendezvous_node} refused the registration: {error:?}");
            }
            Event::DiscoverFailed { rendezvous_node, error, .. } => {
                tracing::debug!("discovery at helper {rendezvous_node} failed: {error:?}");
            }
            Event::Expired { peer } => tracing::debug!("registration of {peer} expired"),
        }
    }
}

fn dial(swarm: &mut Swarm<Behaviour>, helper: &Helper) {
    if let Err(e) = swarm.dial(helper.addr.clone()) {
        tracing::warn!("cannot dial helper {}: {e}", helper.addr);
    }
}

fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// Whether libp2p's TCP transport would dial `helper` from a listening port: it needs a listen
/// address of the same IP version and, like the helper's, loopback or not (a helper named by
/// a DNS name or only over QUIC does not wait).
fn can_dial_from(listen_ips: &[IpAddr], helper: &Multiaddr) -> bool {
    let Some(remote) = ip_of(helper) else { return true };
    if !helper.iter().any(|p| matches!(p, Protocol::Tcp(_))) {
        return true;
    }
    listen_ips.iter().any(|ip| ip.is_ipv4() == remote.is_ipv4() && ip.is_loopback() == remote.is_loopback())
}

/// Reserves a slot at `helper`: its relayed address appears as a new listen address.
fn reserve(swarm: &mut Swarm<Behaviour>, helper: &mut Helper) {
    if helper.reservation.is_some() {
        return;
    }
    match swarm.listen_on(helper.addr.clone().with(Protocol::P2pCircuit)) {
        Ok(listener) => helper.reservation = Some(listener),
        Err(e) => tracing::warn!("cannot reserve a slot at {}: {e}", helper.addr),
    }
}

/// Registers at `helper`'s rendezvous, once this peer has an address to give.
fn register(swarm: &mut Swarm<Behaviour>, helper: &mut Helper) {
    if helper.registered {
        return;
    }
    match swarm.behaviour_mut().rendezvous.register(namespace(), helper.id, None) {
        Ok(()) => helper.registered = true,
        Err(rendezvous::client::RegisterError::NoExternalAddresses) => {} // registers once it has one
        Err(e) => tracing::warn!("cannot register at {}: {e}", helper.addr),
    }
}
