//! Real nodes on 127.0.0.1: chat commands, data calls and site files between peers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use goop::node::services::{DataStore, Services};
use goop::node::{Node, NodeConfig, Proto};
use goop::protocol::site::{self, Site, SiteRequest};
use goop_script::{Config, Engine, Peer};
use libp2p::identity::Keypair;
use serde_json::{json, Value};

/// Remembers messages; answers table ops with a fixed error (the SQLite store is tested apart).
#[derive(Default)]
struct Inbox(Mutex<Vec<(String, String)>>);

impl DataStore for Inbox {
    fn data_request(&self, _caller: &str, request: &Value) -> Value {
        json!({ "ok": false, "error": format!("no tables here (op {})", request["op"]) })
    }
    fn save_message(&self, from: &str, _label: &str, content: &str) -> Result<(), String> {
        self.0.lock().unwrap().push((from.to_string(), content.to_string()));
        Ok(())
    }
}

fn config(label: &str) -> NodeConfig {
    NodeConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        fallback_port: false,
        mdns: false,
        label: label.into(),
        relays: Vec::new(),
    }
}

struct Host {
    node: Node,
    inbox: Arc<Inbox>,
    _dir: tempfile::TempDir,
}

fn host() -> Host {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("site");
    std::fs::create_dir_all(root.join("lua/functions")).unwrap();
    std::fs::write(root.join("index.html"), "<h1>host</h1>").unwrap();
    std::fs::write(root.join("lua/echo.lua"), "function handle(a) return 'You said: ' .. a end").unwrap();
    std::fs::write(root.join("lua/greet.lua"), "function handle() return 'Hello, ' .. goop.peer.label .. '!' end")
        .unwrap();
    std::fs::write(root.join("lua/functions/whoami.lua"), "--- Who is calling\nfunction call(r) return { id = goop.peer.id, label = goop.peer.label, n = r.params.n } end").unwrap();
    let key = Keypair::generate_ed25519();
    let mut c = Config::new(root.join("lua"));
    c.hot_reload = false;
    c.local = Peer::new(key.public().to_peer_id().to_string(), "Host");
    let engine = Arc::new(Engine::new(c).unwrap());
    let inbox = Arc::new(Inbox::default());
    let services = Services {
        engine: Some(engine),
        store: inbox.clone(),
        site: Site { scripts: root.join("lua"), root },
        groups: goop::group::Groups::new(),
    };
    let node = Node::start(key, config("Host"), Some(Arc::new(services))).unwrap();
    Host { node, inbox, _dir: dir }
}

async fn visitor_of(host: &Host, label: &str) -> (Node, libp2p::PeerId) {
    let visitor =
        Node::start(Keypair::generate_ed25519(), NodeConfig { listen: vec![], ..config(label) }, None).unwrap();
    let addr = host.node.listen_addrs().await.remove(0);
    let peer = visitor.dial(addr).await.unwrap();
    assert_eq!(peer, host.node.peer_id());
    (visitor, peer)
}

async fn next_message(rx: &mut tokio::sync::broadcast::Receiver<goop::node::Incoming>) -> String {
    tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("a reply in time").unwrap().content
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_commands_are_answered_by_direct_message() {
    let host = host();
    let (visitor, peer) = visitor_of(&host, "Ann").await;
    let mut rx = visitor.incoming();
    visitor.send_chat(peer, "!echo hi there").await.unwrap();
    assert_eq!(next_message(&mut rx).await, "You said: hi there");
    visitor.send_chat(peer, "!greet").await.unwrap();
    assert_eq!(next_message(&mut rx).await, "Hello, Ann!", "the host learned the visitor's label on connect");
    visitor.send_chat(peer, "!nope").await.unwrap();
    assert_eq!(next_message(&mut rx).await, "Unknown command: !nope. Try !help");
    visitor.send_chat(peer, "just saying hi").await.unwrap();
    let kept = host.inbox.0.lock().unwrap().clone();
    assert_eq!(kept, vec![(visitor.peer_id().to_string(), "just saying hi".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_calls_run_as_the_authenticated_caller() {
    let host = host();
    let (visitor, peer) = visitor_of(&host, "Ann").await;
    let ask = |req: Value| {
        let visitor = visitor.clone();
        async move {
            let bytes = visitor.request(peer, Proto::Data, serde_json::to_vec(&req).unwrap()).await.unwrap();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        }
    };
    let answer = ask(json!({"op": "lua-call", "function": "whoami", "params": {"n": 7}})).await;
    assert_eq!(answer, json!({"ok": true, "result": {"id": visitor.peer_id().to_string(), "label": "Ann", "n": 7}}));
    assert_eq!(
        ask(json!({"op": "lua-list"})).await,
        json!({"ok": true, "functions": [{"name": "whoami", "description": "Who is calling"}]})
    );
    assert_eq!(
        ask(json!({"op": "lua-call", "function": "nope"})).await,
        json!({"ok": false, "error": "function not found: nope", "kind": "not_found"})
    );
    assert_eq!(ask(json!({"op": "lua-call"})).await["ok"], false);
    assert_eq!(ask(json!({"function": "whoami"})).await["ok"], false);
    assert_eq!(ask(json!([1, 2])).await["ok"], false);
    let raw = visitor.request(peer, Proto::Data, b"{not json".to_vec()).await.unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&raw).unwrap()["ok"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_messages_are_refused_and_the_host_keeps_serving() {
    let host = host();
    let (visitor, peer) = visitor_of(&host, "Ann").await;
    let huge = vec![b'x'; 300 * 1024];
    assert!(visitor.request(peer, Proto::Data, huge).await.is_err());
    let long = format!("!echo {}", "y".repeat(5000));
    assert!(visitor.send_chat(peer, &long).await.is_err(), "chat content over 4 KB is refused");
    let mut rx = visitor.incoming();
    visitor.send_chat(peer, "!echo still here").await.unwrap();
    assert_eq!(next_message(&mut rx).await, "You said: still here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_files_are_served_and_scripts_are_not() {
    let host = host();
    let (visitor, peer) = visitor_of(&host, "Ann").await;
    let get = |path: &str| {
        let visitor = visitor.clone();
        let body = serde_json::to_vec(&SiteRequest { path: path.into() }).unwrap();
        async move { site::decode(&visitor.request(peer, Proto::Site, body).await.unwrap()).unwrap() }
    };
    let (header, body) = get("/").await;
    assert!(header.ok);
    assert_eq!(header.content_type.as_deref(), Some("text/html"));
    assert_eq!(body, b"<h1>host</h1>");
    for path in ["/lua/echo.lua", "/lua/functions/whoami.lua", "/../site/lua/echo.lua", "/%2e%2e/"] {
        let (header, body) = get(path).await;
        assert!(!header.ok, "{path}");
        assert!(body.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_peers_each_get_their_own_answers() {
    let host = host();
    let (ann, peer) = visitor_of(&host, "Ann").await;
    let (bob, _) = visitor_of(&host, "Bob").await;
    let (mut ra, mut rb) = (ann.incoming(), bob.incoming());
    ann.send_chat(peer, "!greet").await.unwrap();
    bob.send_chat(peer, "!greet").await.unwrap();
    assert_eq!(next_message(&mut ra).await, "Hello, Ann!");
    assert_eq!(next_message(&mut rb).await, "Hello, Bob!");
}

#[tokio::test]
async fn a_taken_port_is_never_shared_with_another_peer() {
    let first = Node::start(Keypair::generate_ed25519(), config("A"), None).unwrap();
    let taken: libp2p::Multiaddr = first.listen_addrs().await[0].clone();
    let mut same = config("B");
    same.listen = vec![taken.clone()];
    assert!(Node::start(Keypair::generate_ed25519(), same.clone(), None).is_err(), "an explicit address fails");
    same.fallback_port = true;
    let second = Node::start(Keypair::generate_ed25519(), same, None).unwrap();
    let got = second.listen_addrs().await;
    assert!(!got.contains(&taken), "the default address falls back to a free port: {got:?}");
    // Every dial to the first address still reaches the first peer.
    for _ in 0..4 {
        let fresh = Node::start(Keypair::generate_ed25519(), config("D"), None).unwrap();
        assert_eq!(fresh.dial(taken.clone()).await.unwrap(), first.peer_id());
    }
}
