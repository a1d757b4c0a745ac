//! `goop relay`: the helper node keeps its identity, and relays a connection between two peers
//! that reach each other only through it (libp2p's own relay client on both ends).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identity::Keypair, multiaddr::Protocol, noise, ping, relay, tcp, yamux, Multiaddr, PeerId, Swarm};

struct Helper {
    child: Child,
    /// Every line it printed before its listen address, and the address.
    lines: Vec<String>,
    addr: Multiaddr,
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn helper(dir: &std::path::Path) -> Helper {
    let child = Command::new(env!("CARGO_BIN_EXE_goop"))
        .args(["relay", dir.to_str().unwrap(), "--listen", "/ip4/127.0.0.1/tcp/0", "--private-addresses"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut helper = Helper { child, lines: Vec::new(), addr: Multiaddr::empty() };
    let mut out = BufReader::new(helper.child.stdout.take().unwrap()).lines();
    loop {
        let line = out.next().expect("goop relay printed its address").unwrap();
        if let Some(addr) = line.strip_prefix("listening ") {
            helper.addr = addr.parse().unwrap();
            return helper;
        }
        helper.lines.push(line);
    }
}

#[derive(NetworkBehaviour)]
struct Client {
    relay: relay::client::Behaviour,
    ping: ping::Behaviour,
}

fn client() -> Swarm<Client> {
    libp2p::SwarmBuilder::with_existing_identity(Keypair::generate_ed25519())
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_behaviour(|_, relay| Client { relay, ping: ping::Behaviour::default() })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
        .build()
}

#[test]
fn the_helper_keeps_its_identity_and_relays_between_two_peers() {
    let dir = tempfile::tempdir().unwrap();
    let first = helper(&dir.path().join("helper"));
    let id = first.addr.iter().find_map(|p| if let Protocol::P2p(id) = p { Some(id) } else { None }).unwrap();
    assert_eq!(first.lines, [format!("created {} (peer ID {id})", dir.path().join("helper/identity.key").display())]);
    drop(first);
    let helper = helper(&dir.path().join("helper"));
    assert!(helper.lines.is_empty(), "says nothing of a key it already has: {:?}", helper.lines);
    assert!(helper.addr.to_string().ends_with(&format!("/p2p/{id}")), "same identity: {}", helper.addr);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // A reserves a slot at the helper and is reachable at its relayed address.
        let mut a = client();
        let a_id = *a.local_peer_id();
        a.listen_on(helper.addr.clone().with(Protocol::P2pCircuit)).unwrap();
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let SwarmEvent::Behaviour(ClientEvent::Relay(relay::client::Event::ReservationReqAccepted { .. })) =
                    a.select_next_some().await
                {
                    break;
                }
            }
        })
        .await
        .expect("the helper accepted A's reservation");

        // B reaches A through the helper only, and they ping over the circuit.
        let mut b = client();
        let relayed = helper.addr.clone().with(Protocol::P2pCircuit).with(Protocol::P2p(a_id));
        b.dial(relayed).unwrap();
        let pinged: PeerId = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                tokio::select! {
                    _ = a.select_next_some() => {}
                    event = b.select_next_some() => {
                        if let SwarmEvent::Behaviour(ClientEvent::Ping(ping::Event { peer, result: Ok(_), .. })) = event {
                            if peer == a_id {
                                return peer;
                            }
                        }
                    }
                }
            }
        })
        .await
        .expect("B pinged A over the relayed connection");
        assert_eq!(pinged, a_id);
    });
}
