//! The task that owns the swarm: runs commands from `Node` handles and answers peers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use goop_script::Peer;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::behaviour::{self, Behaviour, BehaviourEvent};
use super::services::{ChatOutcome, Labels, Services};
use super::{Command, Incoming, KnownPeer, NodeError, Proto};
use crate::protocol::{chat, profile};

pub(super) struct EventLoop {
    pub(super) swarm: Swarm<Behaviour>,
    pub(super) commands: mpsc::Receiver<Command>,
    /// For handler tasks to hand their answers back to this task.
    pub(super) loopback: mpsc::Sender<Command>,
    pub(super) addrs: watch::Sender<Vec<Multiaddr>>,
    pub(super) incoming: broadcast::Sender<Incoming>,
    pub(super) labels: Labels,
    pub(super) services: Option<Arc<Services>>,
    pub(super) label: String,
    pub(super) dials: HashMap<ConnectionId, oneshot::Sender<Result<PeerId, NodeError>>>,
    pub(super) requests: HashMap<(Proto, OutboundRequestId), Pending>,
    /// Peers met so far: addresses seen, and whether a connection is open. Bounded.
    pub(super) known: BTreeMap<PeerId, Seen>,
}

/// Most peers remembered; past it, peers never connected to are not added.
const MAX_KNOWN: usize = 1024;

#[derive(Default)]
pub(super) struct Seen {
    addrs: Vec<Multiaddr>,
    connections: u32,
}

impl EventLoop {
    fn seen(&mut self, peer: PeerId, addr: Option<Multiaddr>) -> Option<&mut Seen> {
        if !self.known.contains_key(&peer) && self.known.len() >= MAX_KNOWN {
            return None;
        }
        let seen = self.known.entry(peer).or_default();
        if let Some(addr) = addr {
            if !seen.addrs.contains(&addr) && seen.addrs.len() < 8 {
                seen.addrs.push(addr);
            }
        }
        Some(seen)
    }
}

pub(super) enum Pending {
    Reply(oneshot::Sender<Result<Vec<u8>, NodeError>>),
    /// The dialer's label swap; the dial completes when it does.
    Profile(Option<oneshot::Sender<Result<PeerId, NodeError>>>),
    Ignore,
}

impl EventLoop {
    pub(super) async fn run(mut self) {
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(c) => self.command(c),
                    None => break,
                },
                event = self.swarm.select_next_some() => self.event(event),
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
                        let _ = reply.send(Err(NodeError::Unreachable(format!("{addr}: {e}"))));
                    }
                }
            }
            Command::Request { peer, proto, body, reply } => {
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
                self.addrs.send_modify(|a| a.push(address));
            }
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } => {
                let addr = endpoint.is_dialer().then(|| endpoint.get_remote_address().clone());
                if let Some(seen) = self.seen(peer_id, addr) {
                    seen.connections += 1;
                }
                // The dialer swaps labels — before an explicit dial completes, so the first
                // request carries one; also for dials a request made by itself (mDNS peers).
                let reply = self.dials.remove(&connection_id);
                if reply.is_some() || endpoint.is_dialer() {
                    let id = self.swarm.behaviour_mut().profile.send_request(&peer_id, profile::encode(&self.label));
                    self.requests.insert((Proto::Profile, id), Pending::Profile(reply));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, .. } => {
                if let Some(seen) = self.known.get_mut(&peer_id) {
                    seen.connections = seen.connections.saturating_sub(1);
                }
            }
            SwarmEvent::OutgoingConnectionError { connection_id, error, .. } => {
                if let Some(reply) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Err(NodeError::Unreachable(error.to_string())));
                }
            }
            SwarmEvent::Behaviour(event) => self.behaviour(event),
            _ => {}
        }
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
                    if self.seen(peer_id, Some(addr.clone())).is_some() {
                        self.swarm.add_peer_address(peer_id, addr);
                    }
                }
            }
            BehaviourEvent::Mdns(libp2p::mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    tracing::info!("discovered {peer} at {addr}");
                    self.seen(peer, Some(addr.clone()));
                    self.swarm.add_peer_address(peer, addr);
                }
            }
            _ => {}
        }
    }

    fn request_response(&mut self, proto: Proto, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        use request_response::{Event, Message};
        match event {
            Event::Message { peer, message: Message::Request { request, channel, .. }, .. } => {
                self.inbound(proto, peer, request, channel)
            }
            Event::Message { peer, message: Message::Response { request_id, response }, .. } => {
                match self.requests.remove(&(proto, request_id)) {
                    Some(Pending::Reply(reply)) => {
                        let _ = reply.send(Ok(response));
                    }
                    Some(Pending::Profile(reply)) => {
                        self.labels.set(peer, profile::parse(&response));
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

    /// Answers an inbound request on a blocking thread, then hands the answer back.
    fn inbound(&mut self, proto: Proto, peer: PeerId, request: Vec<u8>, channel: ResponseChannel<Vec<u8>>) {
        if proto == Proto::Profile {
            self.labels.set(peer, profile::parse(&request));
            let body = profile::encode(&self.label);
            let _ = self.swarm.behaviour_mut().profile.send_response(channel, body);
            return;
        }
        let caller = Peer::new(peer.to_string(), self.labels.get(&peer));
        let services = self.services.clone();
        let loopback = self.loopback.clone();
        let incoming = self.incoming.clone();
        tokio::spawn(async move {
            let work = move || -> (Vec<u8>, Option<String>) {
                match (proto, services) {
                    (Proto::Chat, services) => match chat::parse(&request) {
                        Err(e) => (chat::ack(Err(e)), None),
                        Ok(message) => {
                            let outcome = match services {
                                Some(s) => s.chat(&caller, &message),
                                None => ChatOutcome::Done,
                            };
                            let _ = incoming.send(Incoming {
                                from: peer,
                                label: caller.label.clone(),
                                content: message.content,
                            });
                            let reply = match outcome {
                                ChatOutcome::Reply(text) => Some(text),
                                ChatOutcome::Done => None,
                            };
                            (chat::ack(Ok(())), reply)
                        }
                    },
                    (Proto::Data, Some(s)) => (s.data(&caller, &request), None),
                    (Proto::Site, Some(s)) => (s.site(&request), None),
                    (_, _) => (br#"{"ok":false,"error":"this peer serves nothing"}"#.to_vec(), None),
                }
            };
            let (body, reply) = match tokio::task::spawn_blocking(work).await {
                Ok(out) => out,
                Err(e) => (format!(r#"{{"ok":false,"error":"internal error: {e}"}}"#).into_bytes(), None),
            };
            let _ = loopback.send(Command::Respond { proto, channel, body }).await;
            if let Some(text) = reply {
                let _ = loopback
                    .send(Command::Request { peer, proto: Proto::Chat, body: chat::encode(&text), reply: None })
                    .await;
            }
        });
    }
}
