//! Schema application, WAL, policy file errors and the inbox.

use goop::store::Store;
use serde_json::json;

use super::*;

#[test]
fn schema_applies_once_and_reopens() {
    let dir = peer_dir();
    for _ in 0..3 {
        let store = Store::open(dir.path(), HOST).unwrap();
        let tables = data(&store, HOST, json!({"op": "tables"}));
        assert_eq!(tables, json!({"ok": true, "tables": ["diary", "games", "notes", "plain", "secrets"]}));
    }
    let store = Store::open(dir.path(), HOST).unwrap();
    let seeds = data(&store, HOST, json!({"op": "query", "table": "notes", "where": "_owner = 'seed'"}));
    assert_eq!(seeds["rows"].as_array().unwrap().len(), 1, "the seed INSERT ran once: {seeds}");
    drop(store);

    // Appending an ALTER TABLE migrates; the edited file still opens on the next start.
    let schema = dir.path().join("site/schema.sql");
    let mut text = std::fs::read_to_string(&schema).unwrap();
    text.push_str("\nALTER TABLE notes ADD COLUMN mood TEXT DEFAULT 'ok';\n");
    std::fs::write(&schema, &text).unwrap();
    for _ in 0..2 {
        let store = Store::open(dir.path(), HOST).unwrap();
        let cols = data(&store, HOST, json!({"op": "describe", "table": "notes"}));
        assert!(cols["columns"].as_array().unwrap().iter().any(|c| c["name"] == "mood"), "{cols}");
    }

    // A broken statement is named by its line; the peer's store still opens, and nothing of
    // this version stays applied, not even the statement before it.
    let line = text.matches('\n').count() + 2;
    text.push_str("CREATE TABLE extra (a TEXT);\nINSERT INTO nowhere VALUES (1);\n");
    std::fs::write(&schema, &text).unwrap();
    let store = Store::open(dir.path(), HOST).unwrap();
    let error = store.schema_error().map(|e| e.to_string());
    assert_eq!(error, Some(format!("site/schema.sql:{line}: no such table: nowhere")));
    let tables = data(&store, HOST, json!({"op": "tables"}));
    assert_eq!(tables, json!({"ok": true, "tables": ["diary", "games", "notes", "plain", "secrets"]}));
    std::fs::write(&schema, text.replace("INSERT INTO nowhere VALUES (1);", "")).unwrap();
    let store = Store::open(dir.path(), HOST).unwrap();
    assert_eq!(store.schema_error(), None);
    assert!(data(&store, HOST, json!({"op": "tables"}))["tables"].as_array().unwrap().contains(&json!("extra")));
}

/// An open store follows edits of schema.sql: a broken one is reported (its line) and changes
/// nothing, a fixed one is applied; the store keeps answering throughout.
#[test]
fn an_open_store_reports_and_recovers_from_a_broken_schema() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    let schema = dir.path().join("site/schema.sql");
    let good = std::fs::read_to_string(&schema).unwrap();
    let line = good.matches('\n').count() + 2;
    let broken = format!("{good}\nCREATE TABLE later (a TEXT, b TEXT DEFAULT ';');\nCREATE TABLEE oops (a);\n");
    std::fs::write(&schema, &broken).unwrap();
    let error = store.schema_error().map(|e| e.to_string());
    assert_eq!(error, Some(format!("site/schema.sql:{}: near \"TABLEE\": syntax error", line + 1)));
    let tables = data(&store, HOST, json!({"op": "tables"}));
    assert_eq!(tables["tables"].as_array().map(Vec::len), Some(5), "nothing applied: {tables}");
    std::fs::write(&schema, broken.replace("CREATE TABLEE oops (a);", "")).unwrap();
    assert_eq!(store.schema_error(), None);
    let tables = data(&store, HOST, json!({"op": "tables"}));
    assert!(tables["tables"].as_array().unwrap().contains(&json!("later")), "{tables}");

    // A statement that only fails on the real data (the scratch run has none) is named too.
    for _ in 0..2 {
        assert_eq!(data(&store, VISITOR, json!({"op": "insert", "table": "notes", "data": {"text": "x"}}))["ok"], true);
    }
    let unique =
        broken.replace("CREATE TABLEE oops (a);", "CREATE TABLE more (a);\nCREATE UNIQUE INDEX one ON notes (_owner);");
    std::fs::write(&schema, unique).unwrap();
    let error = store.schema_error().map(|e| e.to_string());
    assert_eq!(error, Some(format!("site/schema.sql:{}: UNIQUE constraint failed: notes._owner", line + 2)));
    assert!(!data(&store, HOST, json!({"op": "tables"}))["tables"].as_array().unwrap().contains(&json!("more")));
}

#[test]
fn simultaneous_opens_apply_the_schema_once() {
    let dir = peer_dir();
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let path = dir.path().to_path_buf();
            std::thread::spawn(move || Store::open(&path, HOST).map(|_| ()).map_err(|e| e.to_string()))
        })
        .collect();
    for open in opens {
        assert_eq!(open.join().unwrap(), Ok(()));
    }
    let store = Store::open(dir.path(), HOST).unwrap();
    let seeds = data(&store, HOST, json!({"op": "query", "table": "notes"}));
    assert_eq!(seeds["rows"].as_array().unwrap().len(), 1, "{seeds}");
}

#[test]
fn concurrent_writers_and_readers() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    let workers: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let who = format!("peer{t}");
                for i in 0..25 {
                    let insert = json!({"op": "insert", "table": "notes", "data": {"text": format!("{t}-{i}")}});
                    assert_eq!(store.data_request(&who, &insert)["ok"], json!(true));
                    let mine = json!({"op": "query", "table": "notes", "where": "_owner = ?", "args": [who]});
                    assert_eq!(store.data_request(&who, &mine)["rows"].as_array().map(Vec::len), Some(i + 1));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let all = data(&store, HOST, json!({"op": "query", "table": "notes", "limit": 1000}));
    assert_eq!(all["rows"].as_array().unwrap().len(), 1 + 8 * 25);
}

#[test]
fn database_is_wal_in_the_peer_folder() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    assert_eq!(store.path(), dir.path().join("data.db"));
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn bad_policy_file_names_the_field() {
    let dir = peer_dir();
    std::fs::write(dir.path().join("site/schema.json"), r#"{"tables":{"games":{"read":"everyone"}}}"#).unwrap();
    let err = Store::open(dir.path(), HOST).unwrap_err().to_string();
    assert!(err.contains("schema.json") && err.contains("tables.games.read"), "{err}");
}

#[test]
fn inbox_keeps_messages_in_order() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    for text in ["one", "two", "three"] {
        store.save_message(VISITOR, "Ann", text).unwrap();
    }
    let last: Vec<String> = store.inbox(2).unwrap().into_iter().map(|m| m.content).collect();
    assert_eq!(last, ["two", "three"]);
    let m = &store.inbox(1).unwrap()[0];
    assert_eq!((m.from_peer.as_str(), m.from_label.as_str()), (VISITOR, "Ann"));
    assert_eq!(m.received_at.len(), "2026-01-01 00:00:00".len());
}

#[test]
fn owner_index_for_tables_not_virtual_ones() {
    let dir = peer_dir();
    let schema = dir.path().join("site/schema.sql");
    let text = std::fs::read_to_string(&schema).unwrap();
    std::fs::write(&schema, format!("{text}\nCREATE VIRTUAL TABLE docs USING fts5(_owner, body);\n")).unwrap();
    let store = Store::open(dir.path(), HOST).unwrap();
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let mut indexes = conn
        .prepare("SELECT name FROM sqlite_schema WHERE name LIKE '\\_goop\\_owner\\_%' ESCAPE '\\' ORDER BY name")
        .unwrap();
    let names: Vec<String> = indexes.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(names, ["_goop_owner_diary", "_goop_owner_games", "_goop_owner_notes", "_goop_owner_secrets"]);
}
