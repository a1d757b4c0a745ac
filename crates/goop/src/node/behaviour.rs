//! The libp2p behaviour of a goop peer: connection limits, identify, ping, mDNS and the four
//! goop protocols, and the group protocol's long-lived streams.

use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{autonat, connection_limits, dcutr, identify, mdns, ping, relay, rendezvous, StreamProtocol};

use super::budget::Limits;

use crate::protocol::codec::{Bounds, BytesCodec};
use crate::protocol::{self, CHAT, DATA, PROFILE, SITE};

pub type Protocol = request_response::Behaviour<BytesCodec>;

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub limits: connection_limits::Behaviour,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub chat: Protocol,
    pub data: Protocol,
    pub site: Protocol,
    pub profile: Protocol,
    /// Long-lived streams: a member's link to a host's groups.
    pub streams: libp2p_stream::Behaviour,
    /// Reaching peers through helper nodes (`reach.rs`): relayed connections, hole punching,
    /// reachability probes, registration and discovery.
    pub relay: relay::client::Behaviour,
    pub dcutr: dcutr::Behaviour,
    pub autonat: autonat::Behaviour,
    pub rendezvous: rendezvous::client::Behaviour,
}

/// How long a peer has to answer one request (a data call waits for a script of up to 60 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(75);

/// A request-response protocol; a connection's streams past `streams` are dropped unanswered.
fn protocol(id: StreamProtocol, bounds: Bounds, streams: usize) -> Protocol {
    let config =
        request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT).with_max_concurrent_streams(streams);
    request_response::Behaviour::with_codec(BytesCodec::new(bounds), [(id, ProtocolSupport::Full)], config)
}

impl Behaviour {
    pub fn new(
        key: &Keypair,
        relay: relay::client::Behaviour,
        mdns_enabled: bool,
        limits: &Limits,
    ) -> std::io::Result<Behaviour> {
        let peer_id = key.public().to_peer_id();
        let mdns =
            if mdns_enabled { Some(mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)?) } else { None };
        // Outgoing connections are the owner's (or answer the owner's requests): only incoming
        // ones count against the total, so a flood of visitors cannot stop the owner dialing out.
        let connections = connection_limits::ConnectionLimits::default()
            .with_max_established_per_peer(Some(limits.connections_per_peer))
            .with_max_established_incoming(Some(limits.incoming_connections))
            .with_max_pending_incoming(Some(limits.pending_connections));
        let streams = limits.streams_per_connection;
        Ok(Behaviour {
            limits: connection_limits::Behaviour::new(connections),
            identify: identify::Behaviour::new(
                identify::Config::new("/goop/1.0.0".into(), key.public())
                    .with_agent_version(format!("goop/{}", env!("CARGO_PKG_VERSION"))),
            ),
            ping: ping::Behaviour::default(),
            mdns: mdns.into(),
            chat: protocol(CHAT, protocol::CHAT_BOUNDS, streams),
            data: protocol(DATA, protocol::DATA_BOUNDS, streams),
            site: protocol(SITE, protocol::SITE_BOUNDS, streams),
            profile: protocol(PROFILE, protocol::PROFILE_BOUNDS, streams),
            streams: libp2p_stream::Behaviour::new(),
            relay,
            dcutr: dcutr::Behaviour::new(peer_id),
            autonat: autonat::Behaviour::new(peer_id, autonat_config()),
            rendezvous: rendezvous::client::Behaviour::new(key.clone()),
        })
    }
}

/// AutoNAT as a client of the configured helpers only (they are trusted to probe, wherever they
/// are); this peer answers nobody's probes (`throttle_clients_global_max` 0).
fn autonat_config() -> autonat::Config {
    autonat::Config {
        boot_delay: Duration::from_secs(2),
        retry_interval: Duration::from_secs(20),
        refresh_interval: Duration::from_secs(5 * 60),
        use_connected: false,
        only_global_ips: false,
        throttle_clients_global_max: 0,
        ..autonat::Config::default()
    }
}
