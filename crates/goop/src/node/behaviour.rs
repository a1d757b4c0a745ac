//! The libp2p behaviour of a goop peer: identify, ping, mDNS and the four goop protocols.

use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{identify, mdns, ping, StreamProtocol};

use crate::protocol::codec::{Bounds, BytesCodec};
use crate::protocol::{self, CHAT, DATA, PROFILE, SITE};

pub type Protocol = request_response::Behaviour<BytesCodec>;

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub chat: Protocol,
    pub data: Protocol,
    pub site: Protocol,
    pub profile: Protocol,
}

/// How long a peer has to answer one request (a data call waits for a script of up to 60 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(75);

fn protocol(id: StreamProtocol, bounds: Bounds) -> Protocol {
    let config =
        request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT).with_max_concurrent_streams(64);
    request_response::Behaviour::with_codec(BytesCodec::new(bounds), [(id, ProtocolSupport::Full)], config)
}

impl Behaviour {
    pub fn new(key: &Keypair, mdns_enabled: bool) -> std::io::Result<Behaviour> {
        let peer_id = key.public().to_peer_id();
        let mdns =
            if mdns_enabled { Some(mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)?) } else { None };
        Ok(Behaviour {
            identify: identify::Behaviour::new(
                identify::Config::new("/goop/1.0.0".into(), key.public())
                    .with_agent_version(format!("goop/{}", env!("CARGO_PKG_VERSION"))),
            ),
            ping: ping::Behaviour::default(),
            mdns: mdns.into(),
            chat: protocol(CHAT, protocol::CHAT_BOUNDS),
            data: protocol(DATA, protocol::DATA_BOUNDS),
            site: protocol(SITE, protocol::SITE_BOUNDS),
            profile: protocol(PROFILE, protocol::PROFILE_BOUNDS),
        })
    }
}
