//! SQL whose cost hides inside one function call, where the progress handler never runs: time
//! (`instr`, `replace`, two-argument `trim` are linear now) and memory (SQLite's heap is capped).

use std::time::{Duration, Instant};

use goop::store::Store;
use serde_json::json;

use super::*;

fn store() -> (tempfile::TempDir, Store) {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    (dir, store)
}

#[test]
fn quadratic_functions_in_a_where_finish_within_the_deadline() {
    let (_dir, store) = store();
    for (i, where_) in [
        "instr(hex(zeroblob(1000000)), hex(zeroblob(500000)) || '1') > 0",
        "length(replace(hex(zeroblob(1000000)), hex(zeroblob(500000)) || '1', '')) = 0",
        "length(trim(hex(zeroblob(1000000)), hex(zeroblob(1000000)) || 'x')) > 0",
    ]
    .iter()
    .enumerate()
    {
        let start = Instant::now();
        let answer = data(&store, VISITOR, json!({"op": "query", "table": "secrets", "where": where_}));
        // SQLite's own instr took 18 s here, against the 2 s deadline, holding a connection.
        assert!(start.elapsed() < Duration::from_secs(2), "{i}: {:?} {answer}", start.elapsed());
        assert_eq!(answer["ok"], json!(true), "{i}: {answer}");
    }
}

#[test]
fn a_where_cannot_make_sqlite_take_the_hosts_memory() {
    let (_dir, store) = store();
    // 200 arguments of 4 MB each, for the one seed row: 800 MB of SQLite heap before.
    let args = vec!["randomblob(4e6)"; 200].join(", ");
    let where_ = format!("length(max({args})) > 0");
    let error = refused(&store, VISITOR, json!({"op": "query", "table": "notes", "where": where_}));
    assert!(error.contains("out of memory"), "{error}");
    // The store keeps serving once the statement is gone.
    let answer = data(&store, VISITOR, json!({"op": "query", "table": "notes", "limit": 1}));
    assert_eq!(answer["ok"], json!(true), "{answer}");
}

#[test]
fn a_script_query_gets_the_same_walls() {
    let (dir, store) = store();
    let engine = engine(dir.path(), &store, Duration::from_secs(5));
    let visitor = goop_script::Peer::new(VISITOR, "Ann");
    let run = |sql: &str| engine.call(&visitor, "sql", &json!({"fn": "scalar", "sql": sql})).unwrap();
    let start = Instant::now();
    let found = run("SELECT instr(hex(zeroblob(1000000)), hex(zeroblob(500000)) || '1')");
    assert_eq!(found, json!({"ok": true, "value": 0}));
    // 18 s against a 5 s timeout before.
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    let args = vec!["randomblob(4e6)"; 200].join(", ");
    let big = run(&format!("SELECT length(max({args}))"));
    assert!(big["error"].as_str().is_some_and(|e| e.contains("out of memory")), "{big}");
}
