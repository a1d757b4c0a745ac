//! `goop relay`: the helper node keeps its identity, and relays a connection between two peers
//! that reach each other only through it (libp2p's own relay client on both ends).

mod common;

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
        match line.strip_prefix("listening ") {
            Some(addr) if addr.contains("/tcp/") => {
                helper.addr = addr.parse().unwrap();
                return helper;
            }
            Some(_) => {} // its QUIC address
            None => helper.lines.push(line),
        }
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

/// Takes a relay slot for `peer` at the helper and waits until it is accepted.
async fn reserve(peer: &mut Swarm<Client>, helper: &Multiaddr) {
    peer.listen_on(helper.clone().with(Protocol::P2pCircuit)).unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let SwarmEvent::Behaviour(ClientEvent::Relay(relay::client::Event::ReservationReqAccepted { .. })) =
                peer.select_next_some().await
            {
                break;
            }
        }
    })
    .await
    .expect("the helper accepted the reservation");
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
        reserve(&mut a, &helper.addr).await;

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

/// The peer list a viewer's `/api/status` shows.
fn peers(viewer_port: u16) -> Vec<serde_json::Value> {
    common::viewer_status(viewer_port)["peers"].as_array().cloned().unwrap_or_default()
}

#[test]
fn peers_find_each_other_through_a_helper_and_dial_by_peer_id() {
    let dir = tempfile::tempdir().unwrap();
    let helper = helper(&dir.path().join("helper"));
    let relays = format!(r#""relays": ["{}"]"#, helper.addr);
    let (a_dir, b_dir) = (common::folder("Ann"), common::folder("Bob"));
    common::configure(a_dir.path(), "", &relays);
    common::configure(b_dir.path(), "", &relays);
    let a = common::run(a_dir.path());
    let b = common::run(b_dir.path());
    let a_id = common::peer_id(a_dir.path());
    // A learns it is reachable (AutoNAT through the helper), registers, and B finds it there
    // (discovery every 10 s, and at once when B reaches the helper).
    let started = std::time::Instant::now();
    loop {
        if peers(b.viewer_port).iter().any(|p| p["id"] == a_id.as_str()) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "B never found A through the helper");
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("B found A through the helper after {:?}", started.elapsed());
    // The helper's AutoNAT found A reachable (on loopback, directly): its dashboard says so.
    let a_self = common::viewer_status(a.viewer_port)["self"].clone();
    assert_eq!(
        (a_self["reachability"].as_str(), a_self["relayed"].as_array().map(Vec::len)),
        (Some("public"), Some(0))
    );

    // Knowing only A's peer ID and the helper: the CLI (as B's identity) calls A's function.
    let b_path = b_dir.path().to_str().unwrap();
    let call = common::goop(&["call", "--dir", b_path, "--peer", &a_id, "hello", r#"{"name":"Bo"}"#]);
    assert!(common::stdout(&call).contains("Hello, Bo!"), "{}", String::from_utf8_lossy(&call.stderr));
    // A peer ID nobody registered is not found, in one line.
    let nobody = libp2p::PeerId::random().to_string();
    let out = common::goop(&["call", "--dir", b_path, "--peer", &nobody, "hello"]);
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(said, format!("goop: cannot reach {nobody}: not found through a helper (p2p.relays) in time\n"));
    drop(a);
}

/// One peer may open `CIRCUITS_PER_PEER` circuits in a burst (60), then one per 10 s: the 61st
/// in a quick row is refused, while the helper still relays for others.
#[test]
fn the_helper_refuses_the_61st_circuit_from_one_peer_in_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let helper = helper(&dir.path().join("helper"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut a = client();
        let a_id = *a.local_peer_id();
        reserve(&mut a, &helper.addr).await;

        let relayed = helper.addr.clone().with(Protocol::P2pCircuit).with(Protocol::P2p(a_id));
        // Opens one circuit from `from` to A and closes it again; false when it was refused.
        async fn circuit(from: &mut Swarm<Client>, a: &mut Swarm<Client>, to: &Multiaddr, a_id: PeerId) -> bool {
            from.dial(to.clone()).unwrap();
            let opened = tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    tokio::select! {
                        _ = a.select_next_some() => {}
                        event = from.select_next_some() => match event {
                            SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == a_id => return true,
                            SwarmEvent::OutgoingConnectionError { peer_id: Some(p), .. } if p == a_id => return false,
                            _ => {}
                        }
                    }
                }
            })
            .await
            .expect("the circuit opened or was refused");
            if opened {
                let _ = from.disconnect_peer_id(a_id);
                tokio::time::timeout(Duration::from_secs(20), async {
                    loop {
                        tokio::select! {
                            _ = a.select_next_some() => {}
                            event = from.select_next_some() => {
                                if let SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } = event {
                                    if peer_id == a_id {
                                        return;
                                    }
                                }
                            }
                        }
                    }
                })
                .await
                .expect("the circuit closed");
                // Let the helper count the circuit as closed (at most 16 are open per peer).
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            opened
        }

        let mut b = client();
        let started = std::time::Instant::now();
        let mut opened = 0;
        while circuit(&mut b, &mut a, &relayed, a_id).await {
            opened += 1;
            assert!(opened <= 100, "the helper never refused a circuit");
        }
        // The bucket refills one circuit per 10 s while the test runs.
        let refilled = started.elapsed().as_secs() / 10;
        assert!(
            (60..=60 + refilled).contains(&opened),
            "opened {opened} circuits before a refusal in {:?}",
            started.elapsed()
        );
        // Another peer still gets through.
        let mut c = client();
        assert!(circuit(&mut c, &mut a, &relayed, a_id).await, "another peer's circuit was refused");
        eprintln!("refused after {opened} circuits in {:?}", started.elapsed());
    });
}
