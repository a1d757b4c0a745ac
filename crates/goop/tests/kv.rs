//! `goop.kv` from several processes at once: a running peer serving remote callers and local
//! `goop call`s on the same folder lose no increment between them.

mod common;

use common::*;

#[test]
fn a_running_peer_and_local_calls_share_one_counter() {
    let host_dir = folder("Host");
    let dir = host_dir.path().to_str().unwrap().to_string();
    std::fs::write(
        host_dir.path().join("site/lua/functions/count.lua"),
        "function call() return goop.kv.incr('n') end",
    )
    .unwrap();
    let host = run(host_dir.path());
    let visitors: Vec<_> = (0..2).map(|i| folder(&format!("v{i}"))).collect();
    let mut callers = Vec::new();
    for v in &visitors {
        let (addr, v) = (host.addr.clone(), v.path().to_str().unwrap().to_string());
        callers.push(std::thread::spawn(move || {
            (0..20).map(|_| stdout(&goop(&["call", "--peer", &addr, "--dir", &v, "count"]))).collect::<Vec<_>>()
        }));
    }
    for _ in 0..2 {
        let dir = dir.clone();
        callers.push(std::thread::spawn(move || {
            (0..20).map(|_| stdout(&goop(&["call", "--dir", &dir, "count"]))).collect::<Vec<_>>()
        }));
    }
    let mut got: Vec<i64> = callers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .map(|out| {
            let answer: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}"));
            answer["result"].as_i64().unwrap_or_else(|| panic!("{out}"))
        })
        .collect();
    got.sort_unstable();
    // 80 acknowledged increments from two processes' worth of callers: all there, none twice.
    assert_eq!(got, (1..=80).collect::<Vec<_>>());
    let file = std::fs::read_to_string(host_dir.path().join("site/lua/.state/functions/count.json")).unwrap();
    assert_eq!(file, r#"{"n":80}"#);
}
