//! The libp2p node: one task owns the swarm; everyone else talks to it through a `Node` handle.
//!
//! Inbound requests are answered off the network task (scripts and SQLite run on blocking
//! threads); the answer comes back to the task as a command and goes out on the same stream.

mod behaviour;
pub mod budget;
mod event_loop;
mod inbound;
mod known;
mod reach;
pub use reach::Reachability;
pub mod services;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::request_response::ResponseChannel;
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::protocol::chat;
use crate::protocol::codec::Response;
use behaviour::Behaviour;
use budget::Budget;
pub use budget::Limits;
use event_loop::EventLoop;
use known::Known;
use services::{Labels, Services};

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
    /// Helper nodes (`goop relay`) to reach and be reached through, each `…/p2p/<ID>`.
    pub relays: Vec<Multiaddr>,
}

/// Direct messages kept for `incoming()` readers that are behind; an older one is lost to them
/// (they see `RecvError::Lagged`).
pub const INCOMING_KEPT: usize = 64;

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
    /// `ADDR: why`, one line.
    #[error("cannot reach {0}")]
    Unreachable(String),
    #[error("request failed: {0}")]
    Request(String),
    #[error("the node has stopped")]
    Stopped,
}

enum Command {
    Dial { addr: Multiaddr, reply: oneshot::Sender<Result<PeerId, NodeError>> },
    DialPeer { peer: PeerId, reply: oneshot::Sender<Result<PeerId, NodeError>> },
    Request { peer: PeerId, proto: Proto, body: Vec<u8>, reply: Option<oneshot::Sender<Result<Vec<u8>, NodeError>>> },
    Respond { proto: Proto, channel: ResponseChannel<Response>, body: Response },
    Connected { reply: oneshot::Sender<Vec<PeerId>> },
    Peers { reply: oneshot::Sender<Vec<KnownPeer>> },
}

/// `addrs` and, beside each TCP address, the QUIC one on the same IP and port number (UDP):
/// hole punching works better over UDP behind many NATs.
pub fn with_quic(addrs: &[Multiaddr]) -> Vec<Multiaddr> {
    use libp2p::multiaddr::Protocol;
    let mut all = addrs.to_vec();
    for addr in addrs {
        let mut parts = addr.iter();
        let (Some(ip @ (Protocol::Ip4(_) | Protocol::Ip6(_))), Some(Protocol::Tcp(port)), None) =
            (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let quic = Multiaddr::empty().with(ip).with(Protocol::Udp(port)).with(Protocol::QuicV1);
        if !all.contains(&quic) {
            all.push(quic);
        }
    }
    all
}

/// Where to reach a peer: its address, or only its ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Addr(Multiaddr),
    Id(PeerId),
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(text: &str) -> Result<Target, String> {
        let text = text.trim();
        if let Ok(addr) = text.parse::<Multiaddr>() {
            return Ok(Target::Addr(addr));
        }
        match text.parse::<PeerId>() {
            Ok(peer) => Ok(Target::Id(peer)),
            Err(_) => Err(format!("{text:?} is neither a multiaddr nor a peer ID")),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Addr(addr) => write!(f, "{addr}"),
            Target::Id(peer) => write!(f, "{peer}"),
        }
    }
}

/// A peer this node has met: connected now, or seen before and still reachable perhaps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownPeer {
    pub id: PeerId,
    /// What it announced; display text only.
    pub label: String,
    pub connected: bool,
    /// Connected only through a helper's relay (no direct connection).
    pub relayed: bool,
    /// Where it was seen (mDNS or a connection).
    pub addrs: Vec<Multiaddr>,
}

/// A handle to a running node. Cheap to clone; the node stops when every handle is dropped.
#[derive(Clone)]
pub struct Node {
    peer_id: PeerId,
    commands: mpsc::Sender<Command>,
    addrs: watch::Receiver<Vec<Multiaddr>>,
    incoming: broadcast::Sender<Incoming>,
    peers: watch::Receiver<u64>,
    labels: Labels,
    streams: libp2p_stream::Control,
    reachability: watch::Receiver<Reachability>,
}

impl Node {
    /// Starts a node with the default limits; `services` is what it serves (none for a
    /// client-only node).
    pub fn start(key: Keypair, config: NodeConfig, services: Option<Arc<Services>>) -> Result<Node, NodeError> {
        Node::start_with(key, config, Limits::default(), services)
    }

    /// Starts a node that holds remote peers to `limits`.
    pub fn start_with(
        key: Keypair,
        config: NodeConfig,
        limits: Limits,
        services: Option<Arc<Services>>,
    ) -> Result<Node, NodeError> {
        let start = |e: &dyn std::fmt::Display| NodeError::Start(e.to_string());
        let mdns = config.mdns;
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key.clone())
            .with_tokio()
            .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
            .map_err(|e| start(&e))?
            .with_quic()
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(|e| start(&e))?
            .with_behaviour(|key, relay| Behaviour::new(key, relay, mdns, &limits).map_err(Box::from))
            .map_err(|e| start(&e))?
            .with_swarm_config(|c| {
                // Streams still choosing their protocol hold buffered bytes too: no more of them
                // than a protocol may have open.
                c.with_idle_connection_timeout(Duration::from_secs(120))
                    .with_max_negotiating_inbound_streams(limits.streams_per_connection)
            })
            .build();
        for addr in &config.listen {
            let listened = match port_in_use(addr) {
                Some(e) => Err(e.to_string()),
                None => swarm.listen_on(addr.clone()).map(drop).map_err(|e| e.to_string()),
            };
            if let Err(e) = listened {
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
        let (incoming, _) = broadcast::channel(INCOMING_KEPT);
        let (peers_tx, peers) = watch::channel(0);
        let labels = Labels::default();
        let streams = swarm.behaviour().streams.new_control();
        let (shown, reachability) = watch::channel(Reachability::default());
        let reach = reach::Reach::new(&config.relays, !config.listen.is_empty(), shown).map_err(NodeError::Start)?;
        let node = Node {
            peer_id: key.public().to_peer_id(),
            commands: commands.clone(),
            addrs,
            incoming: incoming.clone(),
            peers,
            labels: labels.clone(),
            streams,
            reachability,
        };
        let event_loop = EventLoop {
            swarm,
            commands: rx,
            loopback: commands,
            addrs: addr_tx,
            incoming,
            peers: peers_tx,
            labels: labels.clone(),
            services,
            label: config.label,
            dials: HashMap::new(),
            requests: HashMap::new(),
            known: Known::new(labels),
            budget: Budget::new(limits),
            reach,
        };
        tokio::spawn(event_loop.run());
        Ok(node)
    }

    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Whether others can reach this peer directly, and its relayed addresses.
    pub fn reachability(&self) -> Reachability {
        self.reachability.borrow().clone()
    }

    /// Opens and accepts long-lived streams (the group protocol).
    pub fn streams(&self) -> libp2p_stream::Control {
        self.streams.clone()
    }

    /// The addresses the node listens on, once it listens on at least one.
    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        let mut rx = self.addrs.clone();
        let addrs = rx.wait_for(|a| !a.is_empty()).await.map(|a| a.clone());
        addrs.unwrap_or_default()
    }

    /// The listen addresses as they change.
    pub fn watch_addrs(&self) -> watch::Receiver<Vec<Multiaddr>> {
        self.addrs.clone()
    }

    /// Connects to `addr` and swaps labels with the peer there; returns its ID.
    pub async fn dial(&self, addr: Multiaddr) -> Result<PeerId, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Dial { addr: addr.clone(), reply }).await?;
        rx.await.map_err(|_| NodeError::Stopped)?.map_err(|e| match e {
            NodeError::Unreachable(why) => NodeError::Unreachable(format!("{addr}: {why}")),
            other => other,
        })
    }

    /// Connects to `target`: an address, or a bare peer ID, once the node knows an address of it
    /// (found through a helper or mDNS, or met before; wrap the call in a timeout); returns its ID.
    pub async fn connect(&self, target: &Target) -> Result<PeerId, NodeError> {
        match target {
            Target::Addr(addr) => self.dial(addr.clone()).await,
            Target::Id(peer) => {
                // Helpers and mDNS may not have found it yet: the caller's timeout bounds the wait.
                while !self.peers().await.iter().any(|p| p.id == *peer && (p.connected || !p.addrs.is_empty())) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let (reply, rx) = oneshot::channel();
                self.send(Command::DialPeer { peer: *peer, reply }).await?;
                rx.await.map_err(|_| NodeError::Stopped)?
            }
        }
    }

    /// Sends one request on `proto` and waits for the answer.
    pub async fn request(&self, peer: PeerId, proto: Proto, body: Vec<u8>) -> Result<Vec<u8>, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Request { peer, proto, body, reply: Some(reply) }).await?;
        rx.await.map_err(|_| NodeError::Stopped)?
    }

    /// Sends a direct message; `Ok` once the peer acknowledged it.
    pub async fn send_chat(&self, peer: PeerId, content: &str) -> Result<(), NodeError> {
        let ack = self.request(peer, Proto::Chat, chat::encode(content)).await?;
        match serde_json::from_slice::<chat::ChatAck>(&ack) {
            Ok(a) if a.ok => Ok(()),
            Ok(a) => Err(NodeError::Request(a.error.unwrap_or_default())),
            Err(e) => Err(NodeError::Request(format!("malformed chat acknowledgement: {e}"))),
        }
    }

    /// Direct messages that arrive from now on (not the ones this peer's scripts answered).
    pub fn incoming(&self) -> broadcast::Receiver<Incoming> {
        self.incoming.subscribe()
    }

    /// A version number that goes up whenever the peer list changes (a peer connected, its last
    /// connection closed, it told its label, mDNS found it). A watch keeps only the newest, so a
    /// slow reader misses versions, never the fact that something changed.
    pub fn watch_peers(&self) -> watch::Receiver<u64> {
        self.peers.clone()
    }

    pub async fn connected(&self) -> Vec<PeerId> {
        let (reply, rx) = oneshot::channel();
        if self.send(Command::Connected { reply }).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Every peer met since start (connected or discovered), sorted by ID.
    pub async fn peers(&self) -> Vec<KnownPeer> {
        let (reply, rx) = oneshot::channel();
        if self.send(Command::Peers { reply }).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// The label `peer` announced, or "".
    pub fn label_of(&self, peer: &PeerId) -> String {
        self.labels.get(peer)
    }

    async fn send(&self, command: Command) -> Result<(), NodeError> {
        self.commands.send(command).await.map_err(|_| NodeError::Stopped)
    }
}

/// Why `addr`'s TCP port cannot be ours, if it cannot. libp2p listens with SO_REUSEPORT, so
/// a second peer on a taken port would share it silently (and get half the first one's
/// connections) instead of failing; a plain bind finds out first.
fn port_in_use(addr: &Multiaddr) -> Option<std::io::Error> {
    use libp2p::multiaddr::Protocol;
    let (mut ip, mut tcp, mut udp) = (None, None, None);
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Ip6(a) => ip = Some(std::net::IpAddr::V6(a)),
            Protocol::Tcp(p) => tcp = Some(p),
            Protocol::Udp(p) => udp = Some(p),
            _ => {}
        }
    }
    match (ip, tcp, udp) {
        (Some(ip), Some(port), _) if port != 0 => std::net::TcpListener::bind((ip, port)).err(),
        (Some(ip), _, Some(port)) if port != 0 => std::net::UdpSocket::bind((ip, port)).err(),
        _ => None,
    }
}

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
            Protocol::Udp(_) => {
                changed = true;
                Protocol::Udp(0)
            }
            other => other,
        })
        .collect();
    changed.then_some(out)
}
