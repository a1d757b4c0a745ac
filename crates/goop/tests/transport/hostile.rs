//! A hostile libp2p client for the transport tests: many connections and streams from one
//! identity, and answers it never reads past their first line.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol};
use tokio::sync::mpsc;

/// How the client treats an answer.
#[derive(Debug, Clone, Copy)]
pub enum Reading {
    /// Read it whole (up to 8 MB).
    All,
    /// Read the first line; when it is `{"ok":true…`, count the answer as accepted and hold the
    /// stream open without reading another byte.
    HeaderThenHold,
}

#[derive(Clone)]
struct Codec {
    reading: Reading,
    accepted: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        Err(std::io::Error::other("this client serves nothing"))
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        let mut answer = Vec::new();
        match self.reading {
            Reading::All => {
                io.take(8 << 20).read_to_end(&mut answer).await?;
            }
            Reading::HeaderThenHold => {
                let mut byte = [0u8];
                while answer.len() < 1024 && io.read(&mut byte).await? == 1 && byte[0] != b'\n' {
                    answer.push(byte[0]);
                }
                if answer.is_empty() {
                    return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "stream dropped unanswered"));
                }
                if answer.starts_with(br#"{"ok":true"#) {
                    self.accepted.fetch_add(1, Ordering::SeqCst);
                    futures::future::pending::<()>().await;
                }
            }
        }
        Ok(answer)
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> std::io::Result<()> {
        io.write_all(&req).await?;
        io.close().await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: Vec<u8>,
    ) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the client saw so far.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Connections open now.
    pub open: usize,
    /// Connections that were established, including those the peer closed since.
    pub established: usize,
    /// Dials that failed before a connection was established.
    pub dial_errors: usize,
    /// Answers whose header said ok, held unread ([`Reading::HeaderThenHold`]).
    pub accepted: usize,
    /// Answers read (whole, or the first line of a refusal).
    pub answers: Vec<String>,
    /// Requests that got no answer: the stream was dropped or reset.
    pub failed: usize,
}

enum Order {
    Connect(u32),
    Send(Vec<Vec<u8>>),
}

/// A client running in the background until dropped (dropping it closes its connections).
pub struct Client {
    orders: mpsc::UnboundedSender<Order>,
    seen: Arc<Mutex<Seen>>,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `addr` must end in `/p2p/<peer ID>`.
pub fn peer_of(addr: &Multiaddr) -> PeerId {
    match addr.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(peer)) => peer,
        _ => panic!("{addr} has no /p2p/ part"),
    }
}

impl Client {
    /// A client with a fresh identity, speaking `protocol` to the peer at `addr`.
    pub fn new(addr: Multiaddr, protocol: StreamProtocol, reading: Reading) -> Client {
        let accepted = Arc::new(AtomicUsize::new(0));
        let codec = Codec { reading, accepted: accepted.clone() };
        let config = request_response::Config::default()
            .with_request_timeout(Duration::from_secs(600))
            .with_max_concurrent_streams(100_000);
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(Keypair::generate_ed25519())
            .with_tokio()
            .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
            .unwrap()
            .with_behaviour(|_| {
                request_response::Behaviour::with_codec(codec, [(protocol, ProtocolSupport::Outbound)], config)
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
            .build();
        let peer = peer_of(&addr);
        let (orders, mut rx) = mpsc::unbounded_channel();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    order = rx.recv() => match order {
                        Some(Order::Connect(n)) => {
                            for _ in 0..n {
                                let opts = DialOpts::peer_id(peer)
                                    .addresses(vec![addr.clone()])
                                    .condition(PeerCondition::Always)
                                    .build();
                                let _ = swarm.dial(opts);
                            }
                        }
                        Some(Order::Send(bodies)) => {
                            for body in bodies {
                                swarm.behaviour_mut().send_request(&peer, body);
                            }
                        }
                        None => return,
                    },
                    event = swarm.select_next_some() => {
                        use request_response::{Event, Message};
                        let mut seen = shared.lock().unwrap();
                        match event {
                            SwarmEvent::ConnectionEstablished { .. } => {
                                seen.open += 1;
                                seen.established += 1;
                            }
                            SwarmEvent::OutgoingConnectionError { .. } => seen.dial_errors += 1,
                            SwarmEvent::ConnectionClosed { .. } => seen.open -= 1,
                            SwarmEvent::Behaviour(Event::Message { message: Message::Response { response, .. }, .. }) => {
                                seen.answers.push(String::from_utf8_lossy(&response).into_owned());
                            }
                            SwarmEvent::Behaviour(Event::OutboundFailure { .. }) => seen.failed += 1,
                            _ => {}
                        }
                    }
                }
            }
        });
        Client { orders, seen, accepted, task }
    }

    /// Opens `n` more connections to the peer, whether or not one is open already.
    pub fn connect(&self, n: u32) {
        let _ = self.orders.send(Order::Connect(n));
    }

    /// Sends each body as a request of its own, spread over the open connections.
    pub fn send(&self, bodies: Vec<Vec<u8>>) {
        let _ = self.orders.send(Order::Send(bodies));
    }

    pub fn seen(&self) -> Seen {
        let mut seen = self.seen.lock().unwrap().clone();
        seen.accepted = self.accepted.load(Ordering::SeqCst);
        seen
    }

    /// Waits until `done` holds for what the client saw, or `limit` passes; returns what it saw.
    pub async fn wait_for(&self, limit: Duration, done: impl Fn(&Seen) -> bool) -> Seen {
        let start = tokio::time::Instant::now();
        loop {
            let seen = self.seen();
            if done(&seen) || start.elapsed() > limit {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A bare connection: streams opened straight on the muxer, below any protocol.
pub struct Raw {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Opens `silent` streams that never finish naming a protocol (they hold the peer's negotiation
/// slots), then `loaded` streams that each send `bytes` and wait. Keeps all of them open.
pub async fn raw_streams(addr: &Multiaddr, silent: usize, loaded: usize, bytes: usize) -> Raw {
    use libp2p::core::muxing::StreamMuxerExt;
    use libp2p::core::transport::{DialOpts as TransportDial, PortUse};
    use libp2p::core::upgrade::Version;
    use libp2p::core::{Endpoint, Transport};
    let key = Keypair::generate_ed25519();
    let mut transport = tcp::tokio::Transport::new(tcp::Config::default())
        .upgrade(Version::V1)
        .authenticate(noise::Config::new(&key).unwrap())
        .multiplex(yamux::Config::default())
        .boxed();
    let bare: Multiaddr = addr.iter().filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_))).collect();
    let dial = transport.dial(bare, TransportDial { role: Endpoint::Dialer, port_use: PortUse::New }).unwrap();
    let (_, mut muxer) = dial.await.unwrap();
    // One poll function drives the muxer, opens the streams and writes, so none waits on another.
    let task = tokio::spawn(async move {
        use std::task::Poll;
        let mut garbage = vec![b'x'; bytes.max(1)];
        garbage[0] = 0x13;
        let mut streams = Vec::new();
        let mut sent: Vec<usize> = Vec::new();
        futures::future::poll_fn(|cx| {
            while let Poll::Ready(event) = muxer.poll_unpin(cx) {
                if event.is_err() {
                    return Poll::Ready(());
                }
            }
            while streams.len() < silent + loaded {
                match muxer.poll_outbound_unpin(cx) {
                    Poll::Ready(Ok(stream)) => {
                        streams.push(stream);
                        sent.push(0);
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Pending => break,
                }
            }
            for (i, (stream, sent)) in streams.iter_mut().zip(sent.iter_mut()).enumerate() {
                // A silent stream sends the first byte of a protocol name's length, then nothing.
                let want = if i < silent { 1 } else { bytes };
                while *sent < want {
                    match std::pin::Pin::new(&mut *stream).poll_write(cx, &garbage[*sent..want]) {
                        Poll::Ready(Ok(n)) if n > 0 => *sent += n,
                        _ => break,
                    }
                }
            }
            Poll::Pending
        })
        .await
    });
    Raw { task }
}
