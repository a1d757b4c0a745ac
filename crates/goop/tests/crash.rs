//! A peer killed with SIGKILL twenty times under writes loses nothing it acknowledged: every
//! `goop.kv.incr` answer and every inserted row is there after a restart, every state file
//! parses, and no temporary file is left.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::Value;

const KILLS: usize = 20;

/// Runs `work` in a loop on its own thread until `stop`, collecting what it returns.
fn repeat<T: Send + 'static>(
    stop: &Arc<AtomicBool>,
    work: impl Fn() -> Option<T> + Send + 'static,
) -> std::thread::JoinHandle<Vec<T>> {
    let stop = stop.clone();
    std::thread::spawn(move || {
        let mut acked = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            acked.extend(work());
        }
        acked
    })
}

fn answer(out: &std::process::Output) -> Option<Value> {
    serde_json::from_slice::<Value>(&out.stdout).ok().filter(|a| a["ok"] == Value::Bool(true))
}

#[test]
fn twenty_kills_lose_no_acknowledged_write() {
    let host_dir = folder("Host");
    let site = host_dir.path().join("site");
    configure(host_dir.path(), r#""rate_limit_per_peer": 0, "rate_limit_global": 0"#, "");
    std::fs::write(site.join("lua/functions/count.lua"), "function call() return goop.kv.incr('n') end").unwrap();
    std::fs::write(
        site.join("schema.sql"),
        "CREATE TABLE notes (_id INTEGER PRIMARY KEY AUTOINCREMENT, _owner TEXT, _created_at TEXT, _updated_at TEXT, text TEXT);",
    )
    .unwrap();
    std::fs::write(site.join("schema.json"), r#"{"tables": {"notes": {"rate_limit": 0}}}"#).unwrap();
    let visitor = folder("Ann");
    let v = visitor.path().to_str().unwrap().to_string();

    let (mut counts, mut rows) = (Vec::new(), Vec::new());
    for round in 0..KILLS {
        let host = run(host_dir.path());
        let stop = Arc::new(AtomicBool::new(false));
        let (addr, dir) = (host.addr.clone(), v.clone());
        let counter = repeat(&stop, move || {
            answer(&goop(&["call", "--peer", &addr, "--dir", &dir, "count"])).and_then(|a| a["result"].as_i64())
        });
        let (addr, dir) = (host.addr.clone(), v.clone());
        let inserter = repeat(&stop, move || {
            let insert = r#"{"op":"insert","table":"notes","data":{"text":"x"}}"#;
            answer(&goop(&["data", "--peer", &addr, "--dir", &dir, insert])).and_then(|a| a["id"].as_i64())
        });
        std::thread::sleep(Duration::from_millis(150 + 37 * round as u64 % 200));
        drop(host); // SIGKILL, whatever it was doing
        stop.store(true, Ordering::Relaxed);
        counts.extend(counter.join().unwrap());
        rows.extend(inserter.join().unwrap());
    }

    // After the last kill: one more write through a fresh peer tidies what a killed writer left.
    let host = run(host_dir.path());
    let last = answer(&goop(&["call", "--peer", &host.addr, "--dir", &v, "count"])).unwrap();
    drop(host);
    let state = site.join("lua/.state/functions");
    let file: Value = serde_json::from_slice(&std::fs::read(state.join("count.json")).unwrap()).unwrap();
    let persisted = file["n"].as_i64().unwrap();
    assert_eq!(last["result"].as_i64(), Some(persisted));
    counts.sort_unstable();
    let acked = counts.len();
    counts.dedup();
    assert_eq!(counts.len(), acked, "an increment was answered twice");
    assert!(counts.last().is_none_or(|max| *max < persisted), "acknowledged up to {counts:?}, persisted {persisted}");
    let leftovers: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let all = goop(&[
        "data",
        "--dir",
        host_dir.path().to_str().unwrap(),
        r#"{"op":"query","table":"notes","columns":["_id"],"limit":1000}"#,
    ]);
    let stored: Vec<i64> = serde_json::from_slice::<Value>(&all.stdout).unwrap()["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["_id"].as_i64())
        .collect();
    let lost: Vec<_> = rows.iter().filter(|id| !stored.contains(id)).collect();
    assert!(lost.is_empty(), "acknowledged rows lost: {lost:?}");
    eprintln!(
        "{KILLS} kills: {acked} increments acknowledged, {persisted} persisted; {} rows acknowledged, {} stored",
        rows.len(),
        stored.len()
    );
    assert!(acked >= KILLS && rows.len() >= KILLS, "too little work to say anything: {acked} / {}", rows.len());
}
