//! The libp2p node: one task owns the swarm; everyone else talks to it through a `Node` handle.
//!
//! Inbound requests are answered off the network task (scripts and SQLite run on blocking
//! threads); the answer comes back to the task as a command and goes out on the same stream.

mod behaviour;
pub mod services;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use goop_script::Peer;
use libp2p::identity::Keypair;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId, Swarm};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::protocol::{chat, profile};
use behaviour::{Behaviour, BehaviourEvent};
use services::{ChatOutcome, Labels, Services};

/// Which goop protocol a request travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Chat,
    Data,
    Site,
    Profile,
}

/// How a node starts.
#[derive(Debug, Clone, Default)]
pub struct NodeConfig {
    pub listen: Vec<Multiaddr>,
    /// Listen on an OS-chosen port when a `listen` address is taken.
    pub fallback_port: bool,
    pub mdns: bool,
    /// This peer's display label, sent to peers it dials.
    pub label: String,
}

/// A direct message that arrived and was not a command for this peer's scripts.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub from: PeerId,
    pub label: String,
    pub content: String,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot start the network: {0}")]
    Start(String),
    #[error("cannot reach {0}")]
    Unreachable(String),
    #[error("request failed: {0}")]
    Request(String),
    #[error("the node has stopped")]
    Stopped,
}

enum Command {
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<PeerId, NodeError>>,
    },
    Request {
        peer: PeerId,
        proto: Proto,
        body: Vec<u8>,
        reply: Option<oneshot::Sender<Result<Vec<u8>, NodeError>>>,
    },
    Respond {
        proto: Proto,
        channel: ResponseChannel<Vec<u8>>,
        body: Vec<u8>,
    },
    Connected {
        reply: oneshot::Sender<Vec<PeerId>>,
    },
}

/// A handle to a running node. Cheap to clone; the node stops when every handle is dropped.
#[derive(Clone)]
pub struct Node {
    peer_id: PeerId,
    commands: mpsc::Sender<Command>,
    addrs: watch::Receiver<Vec<Multiaddr>>,
    incoming: broadcast::Sender<Incoming>,
    labels: Labels,
}

impl Node {
    /// Starts a node; `services` is what it serves (none for a client-only node).
    pub fn start(
        key: Keypair,
        config: NodeConfig,
        services: Option<Arc<Services>>,
    ) -> Result<Node, NodeError> {
        let start = |e: &dyn std::fmt::Display| NodeError::Start(e.to_string());
        let mdns = config.mdns;
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key.clone())
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| start(&e))?
            .with_behaviour(|key| Behaviour::new(key, mdns).map_err(Box::from))
            .map_err(|e| start(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
            .build();
        for addr in &config.listen {
            if let Err(e) = swarm.listen_on(addr.clone()) {
                let fallback = config.fallback_port.then(|| with_port_zero(addr)).flatten();
                match fallback {
                    Some(any) => {
                        tracing::warn!("cannot listen on {addr} ({e}); using a free port");
                        swarm.listen_on(any).map_err(|e| start(&e))?;
                    }
                    None => return Err(NodeError::Start(format!("cannot listen on {addr}: {e}"))),
                }
            }
        }
        let (commands, rx) = mpsc::channel(256);
        let (addr_tx, addrs) = watch::channel(Vec::new());
        let (incoming, _) = broadcast::channel(64);
        let labels = Labels::default();
        let node = Node {
            peer_id: key.public().to_peer_id(),
            commands: commands.clone(),
            addrs,
            incoming: incoming.clone(),
            labels: labels.clone(),
        };
        let event_loop = EventLoop {
            swarm,
            commands: rx,
            loopback: commands,
            addrs: addr_tx,
            incoming,
            labels,
            services,
            label: config.label,
            dials: HashMap::new(),
            requests: HashMap::new(),
        };
        tokio::spawn(event_loop.run());
        Ok(node)
    }

    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The addresses the node listens on, once it listens on at least one.
    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        let mut rx = self.addrs.clone();
        let addrs = rx.wait_for(|a| !a.is_empty()).await.map(|a| a.clone());
        addrs.unwrap_or_default()
    }

    /// Connects to `addr` and swaps labels with the peer there; returns its ID.
    pub async fn dial(&self, addr: Multiaddr) -> Result<PeerId, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Dial { addr, reply }).await?;
        rx.await.map_err(|_| NodeError::Stopped)?
    }

    /// Sends one request on `proto` and waits for the answer.
    pub async fn request(
        &self,
        peer: PeerId,
        proto: Proto,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Request {
            peer,
            proto,
            body,
            reply: Some(reply),
        })
        .await?;
        rx.await.map_err(|_| NodeError::Stopped)?
    }

    /// Sends a direct message; `Ok` once the peer acknowledged it.
    pub async fn send_chat(&self, peer: PeerId, content: &str) -> Result<(), NodeError> {
        let ack = self
            .request(peer, Proto::Chat, chat::encode(content))
            .await?;
        match serde_json::from_slice::<chat::ChatAck>(&ack) {
            Ok(a) if a.ok => Ok(()),
            Ok(a) => Err(NodeError::Request(a.error.unwrap_or_default())),
            Err(e) => Err(NodeError::Request(format!(
                "malformed chat acknowledgement: {e}"
            ))),
        }
    }

    /// Direct messages that arrive from now on (not the ones this peer's scripts answered).
    pub fn incoming(&self) -> broadcast::Receiver<Incoming> {
        self.incoming.subscribe()
    }

    pub async fn connected(&self) -> Vec<PeerId> {
        let (reply, rx) = oneshot::channel();
        if self.send(Command::Connected { reply }).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// The label `peer` announced, or "".
    pub fn label_of(&self, peer: &PeerId) -> String {
        self.labels.get(peer)
    }

    async fn send(&self, command: Command) -> Result<(), NodeError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| NodeError::Stopped)
    }
}

/// `addr` with its TCP port replaced by 0.
fn with_port_zero(addr: &Multiaddr) -> Option<Multiaddr> {
    use libp2p::multiaddr::Protocol;
    let mut changed = false;
    let out: Multiaddr = addr
        .iter()
        .map(|p| match p {
            Protocol::Tcp(_) => {
                changed = true;
                Protocol::Tcp(0)
            }
            other => other,
        })
        .collect();
    changed.then_some(out)
}

struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    /// For handler tasks to hand their answers back to this task.
    loopback: mpsc::Sender<Command>,
    addrs: watch::Sender<Vec<Multiaddr>>,
    incoming: broadcast::Sender<Incoming>,
    labels: Labels,
    services: Option<Arc<Services>>,
    label: String,
    dials: HashMap<ConnectionId, oneshot::Sender<Result<PeerId, NodeError>>>,
    requests: HashMap<(Proto, OutboundRequestId), Pending>,
}

enum Pending {
    Reply(oneshot::Sender<Result<Vec<u8>, NodeError>>),
    /// The dialer's label swap; the dial completes when it does.
    Profile(Option<oneshot::Sender<Result<PeerId, NodeError>>>),
    Ignore,
}

impl EventLoop {
    async fn run(mut self) {
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
            Command::Request {
                peer,
                proto,
                body,
                reply,
            } => {
                let id = self.protocol(proto).send_request(&peer, body);
                let pending = reply.map_or(Pending::Ignore, Pending::Reply);
                self.requests.insert((proto, id), pending);
            }
            Command::Respond {
                proto,
                channel,
                body,
            } => {
                if self.protocol(proto).send_response(channel, body).is_err() {
                    tracing::debug!("{proto:?} answer dropped: the requester went away");
                }
            }
            Command::Connected { reply } => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
        }
    }

    fn event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                self.addrs.send_modify(|a| a.push(address));
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                ..
            } => {
                if let Some(reply) = self.dials.remove(&connection_id) {
                    // Swap labels before the dial completes, so the first request carries one.
                    let id = self
                        .swarm
                        .behaviour_mut()
                        .profile
                        .send_request(&peer_id, profile::encode(&self.label));
                    self.requests
                        .insert((Proto::Profile, id), Pending::Profile(Some(reply)));
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
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
            BehaviourEvent::Mdns(libp2p::mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    tracing::info!("discovered {peer} at {addr}");
                    self.swarm.add_peer_address(peer, addr);
                }
            }
            _ => {}
        }
    }

    fn request_response(&mut self, proto: Proto, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.inbound(proto, peer, request, channel),
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => match self.requests.remove(&(proto, request_id)) {
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
            },
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => match self.requests.remove(&(proto, request_id)) {
                Some(Pending::Reply(reply)) => {
                    let _ = reply.send(Err(NodeError::Request(format!(
                        "{proto:?} request to {peer}: {error}"
                    ))));
                }
                // A peer without the profile protocol is still reachable.
                Some(Pending::Profile(Some(reply))) => {
                    let _ = reply.send(Ok(peer));
                }
                _ => tracing::debug!("{proto:?} request to {peer} failed: {error}"),
            },
            Event::InboundFailure { peer, error, .. } => {
                tracing::debug!("{proto:?} request from {peer} failed: {error}")
            }
            Event::ResponseSent { .. } => {}
        }
    }

    /// Answers an inbound request on a blocking thread, then hands the answer back.
    fn inbound(
        &mut self,
        proto: Proto,
        peer: PeerId,
        request: Vec<u8>,
        channel: ResponseChannel<Vec<u8>>,
    ) {
        if proto == Proto::Profile {
            self.labels.set(peer, profile::parse(&request));
            let body = profile::encode(&self.label);
            let _ = self
                .swarm
                .behaviour_mut()
                .profile
                .send_response(channel, body);
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
                    (_, _) => (
                        br#"{"ok":false,"error":"this peer serves nothing"}"#.to_vec(),
                        None,
                    ),
                }
            };
            let (body, reply) = match tokio::task::spawn_blocking(work).await {
                Ok(out) => out,
                Err(e) => (
                    format!(r#"{{"ok":false,"error":"internal error: {e}"}}"#).into_bytes(),
                    None,
                ),
            };
            let _ = loopback
                .send(Command::Respond {
                    proto,
                    channel,
                    body,
                })
                .await;
            if let Some(text) = reply {
                let _ = loopback
                    .send(Command::Request {
                        peer,
                        proto: Proto::Chat,
                        body: chat::encode(&text),
                        reply: None,
                    })
                    .await;
            }
        });
    }
}
