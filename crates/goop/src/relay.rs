//! `goop relay DIR`: a helper node for peers behind NATs, meant for a public server. It runs
//! libp2p's own circuit relay v2 server, rendezvous server (namespace [`NAMESPACE`]), AutoNAT
//! server, identify and ping; it serves no site and runs no scripts.

use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{autonat, connection_limits, identify, noise, ping, relay, rendezvous, tcp, yamux, Multiaddr};

use crate::identity;
use crate::run::say;

/// The rendezvous namespace goop peers register and discover in.
pub const NAMESPACE: &str = "goop";

/// Where a helper listens unless told otherwise: TCP (and QUIC, as beside every TCP address) on
/// port 4001.
pub const DEFAULT_LISTEN: [&str; 1] = ["/ip4/0.0.0.0/tcp/4001"];

/// Reservations held at once, and by one peer (libp2p refuses a peer's reservation only when it
/// already holds more than this).
pub const MAX_RESERVATIONS: usize = 1024;
pub const MAX_RESERVATIONS_PER_PEER: usize = 4;
/// How long a reservation lasts before the peer renews it.
pub const RESERVATION_DURATION: Duration = Duration::from_secs(60 * 60);
/// Relayed connections open at once, and to or from one peer.
pub const MAX_CIRCUITS: usize = 512;
pub const MAX_CIRCUITS_PER_PEER: usize = 16;
/// One relayed connection's life and bytes (each way). libp2p's defaults (2 minutes, 128 KiB)
/// would cut a site visit off mid-page; these carry a visit, and DCUtR replaces the circuit
/// with a direct connection when it can.
pub const MAX_CIRCUIT_DURATION: Duration = Duration::from_secs(30 * 60);
pub const MAX_CIRCUIT_BYTES: u64 = 64 * 1024 * 1024;
/// New circuits a source may open: a burst, then one per interval (a token bucket). A visit
/// to a peer known only by ID opens one or two circuits (one per relayed address it tries);
/// libp2p's defaults (30, then one per 2 minutes per peer) refused a peer after about 15 visits.
/// A household shares one IP address, so that bucket is larger.
pub const CIRCUITS_PER_PEER: (NonZeroU32, Duration) = (NonZeroU32::new(60).unwrap(), Duration::from_secs(10));
pub const CIRCUITS_PER_IP: (NonZeroU32, Duration) = (NonZeroU32::new(240).unwrap(), Duration::from_secs(2));
/// Connections to the helper in all, and from one peer.
const MAX_CONNECTIONS: u32 = 4096;
const MAX_CONNECTIONS_PER_PEER: u32 = 8;
const MAX_PENDING: u32 = 256;

#[derive(NetworkBehaviour)]
struct Helper {
    limits: connection_limits::Behaviour,
    relay: relay::Behaviour,
    rendezvous: rendezvous::server::Behaviour,
    autonat: autonat::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// The circuit relay's limits. Reservations keep libp2p's rate limits (a peer renews once an
/// hour); circuits get goop's own (see the constants).
pub fn relay_config() -> relay::Config {
    relay::Config {
        max_reservations: MAX_RESERVATIONS,
        max_reservations_per_peer: MAX_RESERVATIONS_PER_PEER,
        reservation_duration: RESERVATION_DURATION,
        max_circuits: MAX_CIRCUITS,
        max_circuits_per_peer: MAX_CIRCUITS_PER_PEER,
        max_circuit_duration: MAX_CIRCUIT_DURATION,
        max_circuit_bytes: MAX_CIRCUIT_BYTES,
        circuit_src_rate_limiters: Vec::new(),
        ..relay::Config::default()
    }
    .circuit_src_per_peer(CIRCUITS_PER_PEER.0, CIRCUITS_PER_PEER.1)
    .circuit_src_per_ip(CIRCUITS_PER_IP.0, CIRCUITS_PER_IP.1)
}

/// Runs the helper whose identity is in `dir` until Ctrl-C or SIGTERM. `private_addresses`
/// lets AutoNAT answer peers seen at private addresses (a lab, a LAN), which a helper on the
/// internet must not.
pub async fn run(
    dir: &Path,
    listen: &[String],
    private_addresses: bool,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let existed = dir.join(identity::FILE).exists();
    let key = identity::load_or_create(dir)?;
    let id = key.public().to_peer_id();
    if !existed {
        say(&format!("created {} (peer ID {id})", dir.join(identity::FILE).display()));
    }
    let defaults: Vec<String> = DEFAULT_LISTEN.iter().map(|a| a.to_string()).collect();
    let listen = if listen.is_empty() { &defaults[..] } else { listen };
    let listen: Vec<Multiaddr> = listen
        .iter()
        .map(|a| a.parse().with_context(|| format!("--listen {a:?} is not a multiaddr")))
        .collect::<anyhow::Result<_>>()?;

    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)?
        .with_quic()
        .with_behaviour(|key| {
            let limits = connection_limits::ConnectionLimits::default()
                .with_max_established(Some(MAX_CONNECTIONS))
                .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
                .with_max_pending_incoming(Some(MAX_PENDING));
            let autonat = autonat::Config { only_global_ips: !private_addresses, ..autonat::Config::default() };
            let peer = key.public().to_peer_id();
            Helper {
                limits: connection_limits::Behaviour::new(limits),
                relay: relay::Behaviour::new(peer, relay_config()),
                rendezvous: rendezvous::server::Behaviour::new(rendezvous::server::Config::default()),
                autonat: autonat::Behaviour::new(peer, autonat),
                identify: identify::Behaviour::new(
                    identify::Config::new("/goop/1.0.0".into(), key.public())
                        .with_agent_version(format!("goop-relay/{}", env!("CARGO_PKG_VERSION"))),
                ),
                ping: ping::Behaviour::default(),
            }
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    for addr in crate::node::with_quic(&listen) {
        swarm.listen_on(addr.clone()).with_context(|| format!("cannot listen on {addr}"))?;
    }
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { address, .. } => {
                    // Reservations hand out the helper's external addresses: on a server its
                    // listen addresses are those.
                    swarm.add_external_address(address.clone());
                    say(&format!("listening {address}/p2p/{id}"));
                }
                SwarmEvent::Behaviour(HelperEvent::Relay(e)) => log_relay(&e),
                SwarmEvent::Behaviour(HelperEvent::Rendezvous(e)) => tracing::debug!("rendezvous: {e:?}"),
                _ => {}
            },
        }
    }
    tracing::info!("stopping");
    Ok(())
}

fn log_relay(event: &relay::Event) {
    use relay::Event::*;
    match event {
        ReservationReqAccepted { src_peer_id, renewed } => {
            tracing::info!(peer = %src_peer_id, renewed, "relay reservation accepted");
        }
        ReservationReqDenied { src_peer_id, .. } => tracing::info!(peer = %src_peer_id, "relay reservation denied"),
        CircuitReqAccepted { src_peer_id, dst_peer_id } => {
            tracing::info!(from = %src_peer_id, to = %dst_peer_id, "relayed connection opened");
        }
        CircuitReqDenied { src_peer_id, dst_peer_id, .. } => {
            tracing::info!(from = %src_peer_id, to = %dst_peer_id, "relayed connection refused");
        }
        CircuitClosed { src_peer_id, dst_peer_id, error } => {
            tracing::info!(from = %src_peer_id, to = %dst_peer_id, ?error, "relayed connection closed");
        }
        other => tracing::debug!("relay: {other:?}"),
    }
}
