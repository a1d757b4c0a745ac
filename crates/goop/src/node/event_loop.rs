//! The task that owns the swarm: runs commands from `Node` handles and answers peers.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use goop_script::Peer;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, DialError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::behaviour::{self, Behaviour, BehaviourEvent};
use super::budget::Budget;
use super::inbound::{self, busy_answer, refusal};
use super::known::Known;
use super::reach::{self, Reach};
use super::services::{Labels, Services};
use super::{Command, Incoming, KnownPeer, NodeError, Proto};
use crate::protocol::codec::Response;
use crate::protocol::{chat, profile};

pub(super) struct EventLoop {
    pub(super) swarm: Swarm<Behaviour>,
    pub(super) commands: mpsc::Receiver<Command>,
    /// For handler tasks to hand their answers back to this task.
    pub(super) loopback: mpsc::Sender<Command>,
    pub(super) addrs: watch::Sender<Vec<Multiaddr>>,
    pub(super) incoming: broadcast::Sender<Incoming>,
    /// Bumped whenever what `Node::peers` lists changes.
    pub(super) peers: watch::Sender<u64>,
    pub(super) labels: Labels,
    pub(super) services: Option<Arc<Services>>,
    pub(super) label: String,
    pub(super) dials: HashMap<ConnectionId, oneshot::Sender<Result<PeerId, NodeError>>>,
    pub(super) requests: HashMap<(Proto, OutboundRequestId), Pending>,
    /// Peers met so far: addresses seen, and whether a connection is open. Bounded.
    pub(super) known: Known,
    pub(super) budget: Budget,
    /// Helper nodes: reachability, relay slots, registration and discovery.
    pub(super) reach: Reach,
}

pub(super) enum Pending {
    Reply(oneshot::Sender<Result<Vec<u8>, NodeError>>),
    /// The dialer's label swap; the dial completes when it does.
    Profile(Option<oneshot::Sender<Result<PeerId, NodeError>>>),
    Ignore,
}

impl EventLoop {
    pub(super) async fn run(mut self) {
        let mut refresh = tokio::time::interval(reach::REFRESH);
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(c) => self.command(c),
                    None => break,
                },
                event = self.swarm.select_next_some() => self.event(event),
                _ = refresh.tick() => self.reach.refresh(&mut self.swarm),
            }
        }
        tracing::debug!("node stopped");
    }

    fn protocol(&mut self, proto: Proto) -> &mut behaviour::Protocol {
        let b = self.swarm.behaviour_mut();
        match proto {
            Proto::Chat => &mut b.chat,
            Proto::Data => &mut b.data,
            Proto::Site => &mut b.site,
            Proto::Profile => &mut b.profile,
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Dial { addr, reply } => {
                let opts = DialOpts::unknown_peer_id().address(addr.clone()).build();
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dials.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NodeError::Unreachable(dial_failure(&e))));
                    }
                }
            }
            Command::DialPeer { peer, reply } => {
                if self.swarm.is_connected(&peer) {
                    let _ = reply.send(Ok(peer));
                    return;
                }
                let opts = DialOpts::peer_id(peer).build();
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dials.insert(id, reply);
                    }
                    Err(DialError::NoAddresses) => {
                        let why = format!("{peer}: no known address (not found through a helper or on this network)");
                        let _ = reply.send(Err(NodeError::Unreachable(why)));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NodeError::Unreachable(format!("{peer}: {}", dial_failure(&e)))));
                    }
                }
            }
            Command::Request { peer, proto, body, reply } => {
                // The owner asked this peer something (a script's chat reply is not the owner's).
                if reply.is_some() {
                    self.known.see_kept(peer, None).contacted = true;
                }
                let id = self.protocol(proto).send_request(&peer, body);
                let pending = reply.map_or(Pending::Ignore, Pending::Reply);
                self.requests.insert((proto, id), pending);
            }
            Command::Respond { proto, channel, body } => {
                if self.protocol(proto).send_response(channel, body).is_err() {
                    tracing::debug!("{proto:?} answer dropped: the requester went away");
                }
            }
            Command::Connected { reply } => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::Peers { reply } => {
                let peers = self
                    .known
                    .iter()
                    .map(|(id, seen)| KnownPeer {
                        id: *id,
                        label: self.labels.get(id),
                        connected: seen.connections > 0,
                        relayed: seen.connections > 0 && seen.relayed == seen.connections,
                        addrs: seen.addrs.clone(),
                    })
                    .collect();
                let _ = reply.send(peers);
            }
        }
    }

    fn event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                self.reach.listening(&mut self.swarm, &address);
                self.addrs.send_modify(|a| a.push(address));
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.reach.expired(&address);
                self.addrs.send_modify(|a| a.retain(|x| *x != address));
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                // The relayed address `reach` confirms itself comes here too: that one is not
                // a public address of this peer (`reach` has logged it already).
                if !is_relayed(&address) {
                    tracing::info!("publicly reachable at {address}");
                }
                self.reach.external_confirmed(&mut self.swarm);
            }
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, num_established, .. } => {
                if num_established.get() == 1 {
                    self.peer_changed(crate::events::PEER_CONNECT, peer_id);
                    self.reach.connected(&mut self.swarm, peer_id);
                }
                // A direct connection beside a relayed one (hole punching) changes the list too.
                self.peers_changed();
                let relayed = is_relayed(endpoint.get_remote_address());
                let addr = endpoint.is_dialer().then(|| endpoint.get_remote_address().clone());
                let reply = self.dials.remove(&connection_id);
                let seen = self.known.see_kept(peer_id, addr);
                seen.connections += 1;
                seen.relayed += u32::from(relayed);
                seen.contacted |= reply.is_some();
                // The dialer swaps labels — before an explicit dial completes, so the first
                // request carries one; also for dials a request made by itself (mDNS peers).
                if reply.is_some() || endpoint.is_dialer() {
                    let id = self.swarm.behaviour_mut().profile.send_request(&peer_id, profile::encode(&self.label));
                    self.requests.insert((Proto::Profile, id), Pending::Profile(reply));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established, endpoint, .. } => {
                self.known.disconnected(&peer_id, is_relayed(endpoint.get_remote_address()));
                if num_established == 0 {
                    self.peer_changed(crate::events::PEER_DISCONNECT, peer_id);
                    self.reach.disconnected(&peer_id);
                }
                self.peers_changed();
            }
            SwarmEvent::OutgoingConnectionError { connection_id, error, .. } => {
                if let Some(reply) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Err(NodeError::Unreachable(dial_failure(&error))));
                }
            }
            SwarmEvent::Behaviour(event) => self.behaviour(event),
            _ => {}
        }
    }

    /// A peer's first connection opened or its last one closed: the scripts hear of it.
    fn peer_changed(&self, event: &'static str, peer: PeerId) {
        if let Some(engine) = self.services.as_ref().and_then(|s| s.engine.as_ref()) {
            crate::events::peer_changed(engine, event, Peer::new(peer.to_string(), self.labels.get(&peer)));
        }
    }

    /// The peer list changed: whoever watches it (the dashboard) looks again.
    fn peers_changed(&self) {
        self.peers.send_modify(|version| *version += 1);
    }

    fn behaviour(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Chat(e) => self.request_response(Proto::Chat, e),
            BehaviourEvent::Data(e) => self.request_response(Proto::Data, e),
            BehaviourEvent::Site(e) => self.request_response(Proto::Site, e),
            BehaviourEvent::Profile(e) => self.request_response(Proto::Profile, e),
            // A peer's own listen addresses let this node reach it again after the connection idles out.
            BehaviourEvent::Identify(libp2p::identify::Event::Received { peer_id, info, .. }) => {
                for addr in info.listen_addrs.into_iter().take(8) {
                    if self.known.add_addr(&peer_id, addr.clone()) {
                        self.swarm.add_peer_address(peer_id, addr);
                    }
                }
            }
            BehaviourEvent::Autonat(e) => self.reach.autonat(&mut self.swarm, e),
            BehaviourEvent::Rendezvous(e) => self.reach.rendezvous(&mut self.swarm, &mut self.known, e),
            BehaviourEvent::Dcutr(libp2p::dcutr::Event { remote_peer_id, result }) => match result {
                Ok(_) => tracing::info!("hole punch to {remote_peer_id}: direct connection"),
                Err(e) => tracing::info!("hole punch to {remote_peer_id} failed: {e}"),
            },
            BehaviourEvent::Mdns(libp2p::mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    if self.known.see(peer, Some(addr.clone())).is_some() {
                        tracing::info!("discovered {peer} at {addr}");
                        self.swarm.add_peer_address(peer, addr);
                    }
                }
                self.peers_changed();
            }
            _ => {}
        }
    }

    fn request_response(&mut self, proto: Proto, event: request_response::Event<Vec<u8>, Response>) {
        use request_response::{Event, Message};
        match event {
            Event::Message { peer, message: Message::Request { request, channel, .. }, .. } => {
                self.inbound(proto, peer, request, channel)
            }
            Event::Message { peer, message: Message::Response { request_id, response }, .. } => {
                match self.requests.remove(&(proto, request_id)) {
                    Some(Pending::Reply(reply)) => {
                        let _ = reply.send(Ok(response.bytes));
                    }
                    Some(Pending::Profile(reply)) => {
                        self.labels.set(peer, profile::parse(&response.bytes));
                        self.peers_changed();
                        if let Some(reply) = reply {
                            let _ = reply.send(Ok(peer));
                        }
                    }
                    Some(Pending::Ignore) | None => {}
                }
            }
            Event::OutboundFailure { peer, request_id, error, .. } => {
                match self.requests.remove(&(proto, request_id)) {
                    Some(Pending::Reply(reply)) => {
                        let _ = reply.send(Err(NodeError::Request(format!("{proto:?} request to {peer}: {error}"))));
                    }
                    // A peer without the profile protocol is still reachable.
                    Some(Pending::Profile(Some(reply))) => {
                        let _ = reply.send(Ok(peer));
                    }
                    _ => tracing::debug!("{proto:?} request to {peer} failed: {error}"),
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                tracing::debug!("{proto:?} request from {peer} failed: {error}")
            }
            Event::ResponseSent { .. } => {}
        }
    }

    /// Answers an inbound request on a blocking thread, then hands the answer back. Past the
    /// budget's requests in progress, the answer is a refusal at once.
    fn inbound(&mut self, proto: Proto, peer: PeerId, body: Vec<u8>, channel: ResponseChannel<Response>) {
        if proto == Proto::Profile {
            self.labels.set(peer, profile::parse(&body));
            self.peers_changed();
            let answer = profile::encode(&self.label).into();
            let _ = self.swarm.behaviour_mut().profile.send_response(channel, answer);
            return;
        }
        let slot = match self.budget.request(peer) {
            Ok(slot) => slot,
            Err(busy) => {
                tracing::debug!("{proto:?} request from {peer} refused: {busy}");
                let _ = self.protocol(proto).send_response(channel, busy_answer(proto, busy));
                return;
            }
        };
        let request = inbound::Request {
            proto,
            peer,
            caller: Peer::new(peer.to_string(), self.labels.get(&peer)),
            body,
            services: self.services.clone(),
            budget: self.budget.clone(),
            incoming: self.incoming.clone(),
        };
        let loopback = self.loopback.clone();
        tokio::spawn(async move {
            let (answer, reply) = match tokio::task::spawn_blocking(move || inbound::answer(request)).await {
                Ok(out) => out,
                Err(e) => {
                    // The owner sees what went wrong; the caller only that something did.
                    tracing::error!("{proto:?} request from {peer} failed: {e}");
                    (refusal(proto, "internal error"), None)
                }
            };
            let _ = loopback.send(Command::Respond { proto, channel, body: answer }).await;
            drop(slot);
            if let Some(text) = reply {
                let _ = loopback
                    .send(Command::Request { peer, proto: Proto::Chat, body: chat::encode(&text), reply: None })
                    .await;
            }
        });
    }
}

/// Why a dial failed, in a few words ("connection refused") rather than libp2p's nested report
/// of every transport layer.
/// Whether a connection to `addr` goes through a helper's relay.
fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| p == libp2p::multiaddr::Protocol::P2pCircuit)
}

fn dial_failure(error: &DialError) -> String {
    match error {
        DialError::Transport(attempts) => match attempts.first() {
            Some((_, error)) => root_cause(error),
            None => "no address to dial".into(),
        },
        DialError::WrongPeerId { obtained, .. } => format!("the peer there is {obtained}, not the one asked for"),
        DialError::LocalPeerId { .. } => "that address is this peer itself".into(),
        DialError::NoAddresses => "no address to dial".into(),
        DialError::Aborted | DialError::DialPeerConditionFalse(_) => "the dial was cancelled".into(),
        DialError::Denied { cause } => format!("refused by this peer's connection limits: {cause}"),
    }
}

/// The innermost message of `error`'s chain, as a sentence part: "connection refused" for
/// libp2p's `Connection refused (os error 111)` (the OS error itself sits behind wrappers that
/// hide it from `source()`, so its text is what is left).
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    let text = match text.rsplit_once(" (os error ") {
        Some((message, code)) if code.ends_with(')') => message.to_string(),
        _ => text,
    };
    let mut chars = text.chars();
    chars.next().map(|first| first.to_lowercase().chain(chars).collect()).unwrap_or(text)
}
