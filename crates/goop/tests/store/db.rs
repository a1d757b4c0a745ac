//! `goop.db` through a real engine: the spec's tic-tac-toe, binding, walls and deadlines.

use std::time::{Duration, Instant};

use goop::store::Store;
use goop_script::{Engine, Peer};
use serde_json::{json, Value};

use super::*;

fn call(engine: &Engine, who: &Peer, function: &str, params: Value) -> Value {
    engine.call(who, function, &params).unwrap_or_else(|e| panic!("{function} {params}: {e}"))
}

#[test]
fn tic_tac_toe_from_the_spec() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    let engine = engine(dir.path(), &store, Duration::from_secs(5));
    let (host, visitor, stranger) = (Peer::new(HOST, "Host"), Peer::new(VISITOR, "Ann"), Peer::new(OTHER, "Bo"));

    let game = call(&engine, &visitor, "ttt", json!({"action": "new"}));
    assert_eq!(game, json!({"game_id": 1, "status": "waiting", "your_symbol": "O"}));
    let again = call(&engine, &visitor, "ttt", json!({"action": "new"}));
    assert_eq!(again["error"], "you already have an active game");

    // The host accepts the challenge through the data protocol (the owner is unrestricted).
    let accept =
        json!({"op": "update", "table": "games", "data": {"status": "playing"}, "where": "_id = ?", "args": [1]});
    assert_eq!(data(&store, HOST, accept), json!({"ok": true, "affected": 1}));

    let play = |who: &Peer, pos: i64| call(&engine, who, "move", json!({"game_id": 1, "position": pos}));
    assert_eq!(play(&visitor, 4)["error"], "not your turn");
    assert_eq!(play(&stranger, 4)["error"], "you are not a player in this game");
    assert_eq!(play(&host, 0)["board"], "X--------");
    assert_eq!(play(&host, 1)["error"], "not your turn");
    assert_eq!(play(&visitor, 0)["error"], "cell is already occupied");
    play(&visitor, 3);
    play(&host, 1);
    play(&visitor, 4);
    let win = play(&host, 2);
    assert_eq!(win, json!({"board": "XXXOO----", "status": "won_x", "turn": "", "winner": HOST, "your_symbol": "X"}));
    assert_eq!(play(&visitor, 5)["error"], "game is not in progress");

    let state = call(&engine, &visitor, "ttt", json!({"action": "state", "game_id": 1}));
    assert_eq!(state["board"], "XXXOO----");
    assert_eq!((state["status"].as_str(), state["your_symbol"].as_str()), (Some("won_x"), Some("O")));
    assert_eq!(state["challenger_label"], "Ann");
    assert!(state["created_at"].is_string(), "{state}");
    let lobby = call(&engine, &stranger, "ttt", json!({"action": "lobby"}));
    assert_eq!(lobby["games"][0]["winner"], HOST);

    // A finished game lets the visitor start a new one.
    assert_eq!(call(&engine, &visitor, "ttt", json!({"action": "new"}))["game_id"], 2);
    // goop.db is for data functions only: a chat command does not see it.
    std::fs::write(dir.path().join("site/lua/peek.lua"), "function handle() return tostring(goop.db) end").unwrap();
    let engine = self::engine(dir.path(), &store, Duration::from_secs(5));
    assert_eq!(engine.handle_chat(&visitor, "!peek"), goop_script::ChatReply::Text("nil".into()));
}

/// `goop.db.<function>(sql, args...)` run by the visitor through `sql.lua`.
fn db(engine: &Engine, function: &str, sql: &str, args: Value) -> Value {
    call(engine, &Peer::new(VISITOR, "Ann"), "sql", json!({"fn": function, "sql": sql, "args": args}))
}

fn db_error(engine: &Engine, function: &str, sql: &str) -> String {
    let answer = db(engine, function, sql, json!([]));
    assert_eq!(answer["ok"], json!(false), "goop.db.{function}({sql:?}) should fail, got {answer}");
    answer["error"].as_str().unwrap_or_default().to_string()
}

#[test]
fn db_binds_converts_and_counts() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    let engine = engine(dir.path(), &store, Duration::from_secs(5));

    let hostile = "x'); DROP TABLE games; --";
    let row = db(
        &engine,
        "query",
        "SELECT ? AS a, ? AS b, ? AS c, 7 AS d, 2.5 AS e, NULL AS f, x'6869' AS g",
        json!([hostile, 3, true]),
    );
    assert_eq!(row["first"], json!({"a": hostile, "b": 3, "c": 1, "d": 7, "e": 2.5, "g": "hi"}));
    assert_eq!(db(&engine, "scalar", "SELECT count(*) FROM games", json!([])), json!({"ok": true, "value": 0}));
    assert_eq!(db(&engine, "scalar", "SELECT text FROM notes WHERE 0", json!([])), json!({"ok": true}));

    // A script may set _owner itself; exec answers the rows changed.
    let insert = "INSERT INTO notes (_owner, text) VALUES (?, ?), (?, ?)";
    assert_eq!(db(&engine, "exec", insert, json!([OTHER, "a", OTHER, "b"])), json!({"ok": true, "value": 2}));
    assert_eq!(db(&engine, "exec", "UPDATE notes SET text = upper(text)", json!([])), json!({"ok": true, "value": 3}));
    let upsert = "INSERT INTO notes (_id, _owner, text) VALUES (1, 'x', 'y') ON CONFLICT(_id) DO UPDATE SET text = 'z'";
    assert_eq!(db(&engine, "exec", upsert, json!([]))["value"], 1);
    assert_eq!(
        db(&engine, "exec", "REPLACE INTO notes (_id, _owner, text) VALUES (1, 'x', 'r')", json!([]))["value"],
        1
    );
    assert_eq!(db(&engine, "exec", "DELETE FROM notes WHERE _owner = ? RETURNING _id", json!([OTHER]))["value"], 2);

    // 1000 rows are fine; 1001 and over 1 MB are errors.
    let count = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT ?) SELECT x FROM c";
    assert_eq!(db(&engine, "query", count, json!([1000]))["rows"], 1000);
    let e = db(&engine, "query", count, json!([1001]));
    assert!(e["error"].as_str().unwrap().contains("more than 1000 rows"), "{e}");
    let big = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 3) SELECT printf('%.*c', 500000, 'x') AS s FROM c";
    let e = db(&engine, "query", big, json!([]));
    assert!(e["error"].as_str().unwrap().contains("larger than 1048576 bytes"), "{e}");
    let e = db(&engine, "query", "SELECT zeroblob(100000000)", json!([]));
    assert!(e["error"].as_str().unwrap().contains("too big"), "{e}");
}

#[test]
fn db_walls_hold() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    store.save_message(OTHER, "Bo", "private").unwrap();
    let engine = engine(dir.path(), &store, Duration::from_secs(5));

    let cases: &[(&str, &str, &str)] = &[
        // query and scalar cannot write
        ("query", "DELETE FROM notes", "not allowed: deleting from table notes"),
        ("query", "WITH x AS (SELECT 1) DELETE FROM notes", "not allowed"),
        ("scalar", "INSERT INTO notes (_owner) VALUES ('x')", "not allowed"),
        ("query", "UPDATE notes SET text = 'x' RETURNING _id", "not allowed"),
        ("query", "VACUUM", "use exec"),
        // ... nor read internal tables or the schema
        ("query", "SELECT * FROM _goop_inbox", "not allowed: reading internal table _goop_inbox"),
        ("query", "SELECT name FROM sqlite_master", "not allowed: reading internal table sqlite_master"),
        ("query", "SELECT * FROM notes WHERE text IN (SELECT content FROM _goop_inbox)", "not allowed"),
        ("scalar", "SELECT count(*) FROM sqlite_sequence", "not allowed"),
        ("query", "PRAGMA table_info(notes)", "not allowed: PRAGMA table_info"),
        ("query", "SELECT * FROM pragma_table_info('_goop_inbox')", "not allowed"),
        ("query", "SELECT load_extension('/tmp/evil.so')", "not allowed: function load_extension"),
        ("query", "SELECT 1; SELECT 2", "only one statement"),
        ("query", "SELECT 1; DELETE FROM notes", "not allowed"),
        // exec writes rows of user tables, nothing else
        ("exec", "DROP TABLE games", "not allowed: changing the schema"),
        ("exec", "CREATE TABLE t2 (a)", "not allowed: changing the schema"),
        ("exec", "CREATE TEMP TABLE t3 (a)", "not allowed: database temp"),
        ("exec", "CREATE INDEX i ON games (board)", "changing the schema"),
        ("exec", "CREATE TRIGGER tr AFTER INSERT ON notes BEGIN DELETE FROM games; END", "changing the schema"),
        ("exec", "ALTER TABLE games ADD COLUMN z TEXT", "not allowed"),
        ("exec", "PRAGMA journal_mode = DELETE", "not allowed: PRAGMA journal_mode"),
        ("exec", "PRAGMA writable_schema = 1", "not allowed"),
        ("exec", "ATTACH DATABASE ':memory:' AS other", "not allowed: ATTACH"),
        ("exec", "DETACH DATABASE main", "not allowed"),
        ("exec", "BEGIN", "not allowed: transactions"),
        ("exec", "SAVEPOINT s", "not allowed: transactions"),
        ("exec", "VACUUM", "exec runs only INSERT, UPDATE, DELETE or REPLACE"),
        ("exec", "VACUUM INTO '/tmp/goop-leak.db'", "exec runs only INSERT"),
        ("exec", "ANALYZE", "not allowed"),
        ("exec", "SELECT 1", "exec runs only INSERT, UPDATE, DELETE or REPLACE"),
        ("exec", "", "empty SQL"),
        (
            "exec",
            "INSERT INTO _goop_inbox (from_peer, from_label, content) VALUES ('x', 'x', 'x')",
            "not allowed: inserting into internal table _goop_inbox",
        ),
        ("exec", "DELETE FROM _goop_inbox", "not allowed"),
        ("exec", "UPDATE _goop_schema SET statement = ''", "not allowed"),
        ("exec", "DELETE FROM sqlite_sequence", "not allowed"),
        ("exec", "INSERT INTO notes (_owner, text) SELECT from_peer, content FROM _goop_inbox", "not allowed"),
        ("exec", "UPDATE notes SET text = 'x'; DROP TABLE games", "not allowed"),
        ("exec", "UPDATE notes SET text = 'x'; UPDATE notes SET text = 'y'", "only one statement"),
    ];
    for (function, sql, expected) in cases {
        let e = db_error(&engine, function, sql);
        assert!(e.contains(expected), "goop.db.{function}({sql:?}): expected {expected:?} in {e:?}");
    }
    let e =
        call(&engine, &Peer::new(VISITOR, ""), "sql", json!({"fn": "query", "sql": "SELECT ?", "args": [{"a": 1}]}));
    assert!(e["error"].as_str().unwrap().contains("parameter 1 is a table"), "{e}");

    // Nothing changed.
    assert!(!Path::new("/tmp/goop-leak.db").exists());
    assert_eq!(store.inbox(10).unwrap()[0].content, "private");
    assert_eq!(db(&engine, "scalar", "SELECT count(*) FROM notes", json!([]))["value"], 1);
    assert_eq!(db(&engine, "scalar", "SELECT count(*) FROM games", json!([]))["value"], 0);
}

#[test]
fn endless_query_stops_at_the_deadline() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    let engine = engine(dir.path(), &store, Duration::from_millis(300));
    let forever = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    // More times than there are connections: each one comes back healthy.
    for _ in 0..10 {
        let started = Instant::now();
        let outcome = engine.call(&Peer::new(VISITOR, ""), "sql", &json!({"fn": "scalar", "sql": forever}));
        let elapsed = started.elapsed();
        let text = match outcome {
            Ok(v) => v["error"].as_str().unwrap_or_default().to_string(),
            Err(e) => e.to_string(),
        };
        assert!(text.contains("timeout") || text.contains("timed out"), "{text}");
        assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    }
    assert_eq!(db(&engine, "scalar", "SELECT count(*) FROM notes", json!([]))["value"], 1);
    assert_eq!(data(&store, VISITOR, json!({"op": "query", "table": "notes"}))["ok"], json!(true));
}
