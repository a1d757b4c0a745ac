//! A `lua-call` round trip between two peers on loopback, next to a bare request-response
//! round trip on the same transport, and throughput with 64 concurrent calls from 4 callers.

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use goop::node::services::{DataStore, Services};
use goop::node::{Node, NodeConfig, Proto};
use goop::protocol::site::Site;
use goop_script::{Config, Engine, Peer};
use libp2p::identity::Keypair;
use serde_json::{json, Value};

struct NoTables;
impl DataStore for NoTables {
    fn data_request(&self, _: &str, _: &Value) -> Value {
        json!({ "ok": false, "error": "no tables" })
    }
    fn save_message(&self, _: &str, _: &str, _: &str) -> Result<(), String> {
        Ok(())
    }
}

fn node_config() -> NodeConfig {
    NodeConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("addr")],
        fallback_port: false,
        mdns: false,
        label: "bench".into(),
        relays: Vec::new(),
    }
}

fn remote(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("site");
    std::fs::create_dir_all(root.join("lua/functions")).expect("mkdir");
    std::fs::write(root.join("lua/functions/add.lua"), "function call(r) return { sum = r.params.a + r.params.b } end")
        .expect("write");

    let (host, visitors, peer) = rt.block_on(async {
        let key = Keypair::generate_ed25519();
        let mut config = Config::new(root.join("lua"));
        config.hot_reload = false;
        config.rate_limit_per_peer = 0;
        config.rate_limit_global = 0;
        config.local = Peer::new(key.public().to_peer_id().to_string(), "host");
        let engine = Arc::new(Engine::new(config).expect("engine"));
        let services = Services {
            engine: Some(engine),
            store: Arc::new(NoTables),
            site: Site { scripts: root.join("lua"), root: root.clone() },
            groups: goop::group::Groups::new(),
        };
        let host = Node::start(key, node_config(), Some(Arc::new(services))).expect("host");
        // Four identities: one peer alone gets at most 16 requests in progress and 4 workers.
        let addr = host.listen_addrs().await.remove(0);
        let mut visitors = Vec::new();
        let mut peer = None;
        for _ in 0..4 {
            let visitor =
                Node::start(Keypair::generate_ed25519(), NodeConfig { listen: vec![], ..node_config() }, None)
                    .expect("visitor");
            peer = Some(visitor.dial(addr.clone()).await.expect("dial"));
            visitors.push(visitor);
        }
        (host, visitors, peer.expect("a peer"))
    });
    let visitor = &visitors[0];
    let call =
        serde_json::to_vec(&json!({"op": "lua-call", "function": "add", "params": {"a": 2, "b": 3}})).expect("json");

    c.bench_function("bare request-response round trip (profile protocol)", |b| {
        b.iter(|| rt.block_on(visitor.request(peer, Proto::Profile, br#"{"label":"bench"}"#.to_vec())).expect("answer"))
    });
    c.bench_function("lua-call round trip", |b| {
        b.iter(|| {
            let answer = rt.block_on(visitor.request(peer, Proto::Data, call.clone())).expect("answer");
            assert_eq!(answer, br#"{"ok":true,"result":{"sum":5}}"#);
        })
    });
    let mut group = c.benchmark_group("64 concurrent calls, 4 callers");
    group.throughput(Throughput::Elements(64));
    group.bench_function("lua-call", |b| {
        b.iter(|| {
            rt.block_on(async {
                let calls = (0..64).map(|i| visitors[i % 4].request(peer, Proto::Data, call.clone()));
                for answer in futures::future::join_all(calls).await {
                    assert_eq!(answer.expect("answer"), br#"{"ok":true,"result":{"sum":5}}"#);
                }
            })
        })
    });
    group.finish();
    drop(host);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    targets = remote
}
criterion_main!(benches);
