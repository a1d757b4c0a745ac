//! Issue 9, point 7: under an `own` read policy no `where` reveals anything about other peers'
//! rows. Each attack asks a yes/no question about OTHER's secret twice, once with the true
//! answer and once with a false one; a leak is any difference between the two answers.
//! Figure: 0 bits per query (before the fix: 1 bit per query for every attack below).

use goop::store::Store;
use serde_json::{json, Value};

use super::*;

/// `vault`: read own, update open (so an affected count would tell), delete own.
const VAULT: &str = "
CREATE TABLE vault (
    _id INTEGER PRIMARY KEY AUTOINCREMENT, _owner TEXT NOT NULL,
    _created_at DATETIME, _updated_at DATETIME, value TEXT
);
CREATE INDEX secrets_value ON secrets (value);";
const VAULT_POLICY: &str = r#"{"tables": {
    "secrets": {"read": "own"},
    "vault": {"read": "own", "update": "open"}
}}"#;

const SECRET: &str = "hunter2";

/// A peer with VISITOR's and OTHER's rows in `secrets` and `vault`.
fn setup() -> (tempfile::TempDir, Store) {
    let dir = peer_dir();
    let site = dir.path().join("site");
    let schema = std::fs::read_to_string(site.join("schema.sql")).unwrap();
    std::fs::write(site.join("schema.sql"), format!("{schema}\n{VAULT}")).unwrap();
    std::fs::write(site.join("schema.json"), VAULT_POLICY).unwrap();
    let store = Store::open(dir.path(), HOST).unwrap();
    for table in ["secrets", "vault"] {
        for (who, value) in [(VISITOR, "mine"), (OTHER, SECRET)] {
            let answer = data(&store, who, json!({"op": "insert", "table": table, "data": {"value": value}}));
            assert_eq!(answer["ok"], json!(true), "{answer}");
        }
    }
    (dir, store)
}

/// A query on `secrets` by VISITOR with `where`, where `?` is the guess.
fn ask(store: &Store, table: &str, filter: &str, guess: Value) -> Value {
    let mut answer = data(store, VISITOR, json!({"op": "query", "table": table, "where": filter, "args": [guess]}));
    // Timestamps differ between runs, not between guesses: leave them out of the comparison.
    if let Some(rows) = answer["rows"].as_array_mut() {
        for row in rows.iter_mut().filter_map(Value::as_object_mut) {
            row.retain(|k, _| !k.ends_with("_at"));
        }
    }
    answer
}

/// The names of the attacks whose answers for a right and a wrong guess differ.
fn leaks(attacks: Vec<(String, Value, Value)>) -> Vec<String> {
    attacks
        .into_iter()
        .filter(|(_, right, wrong)| right != wrong)
        .map(|(name, r, w)| format!("{name}: {r} / {w}"))
        .collect()
}

#[test]
fn row_value_in_table_is_no_oracle() {
    let (_dir, store) = setup();
    // OTHER's whole row, as an attacker would guess it (timestamps to the second are guessable).
    let theirs = data(&store, HOST, json!({"op": "query", "table": "secrets", "where": "_owner = ?", "args": [OTHER]}));
    let row = &theirs["rows"][0];
    let filter = "(?, ?, ?, ?, ?) IN secrets";
    let answer = |value: &str| {
        let args = json!([row["_id"], OTHER, row["_created_at"], row["_updated_at"], value]);
        data(
            &store,
            VISITOR,
            json!({"op": "query", "table": "secrets", "columns": ["value"], "where": filter, "args": args}),
        )
    };
    let leaked = leaks(vec![("row-value IN table".into(), answer(SECRET), answer("wrong"))]);
    assert_eq!(leaked, Vec::<String>::new(), "1 bit leaked per query");
    let answer = answer(SECRET);
    assert_eq!(answer["ok"], json!(false), "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("not allowed: reading table secrets"), "{answer}");
}

#[test]
fn errors_raised_on_other_rows_are_no_oracle() {
    let (_dir, store) = setup();
    // Each fragment fails only when evaluated on a row whose value is the guess.
    let attacks = [
        ("integer overflow", "CASE WHEN value = ? THEN abs(-9223372036854775807 - 1) ELSE 1 END"),
        ("IN (VALUES …)", "1 IN (VALUES (CASE WHEN value = ? THEN abs(-9223372036854775807 - 1) ELSE 1 END))"),
        ("string too big", "CASE WHEN value = ? THEN length(zeroblob(100000000)) ELSE 1 END"),
        ("malformed JSON", "CASE WHEN value = ? THEN json_extract(value, '$.a') IS NULL ELSE 1 END"),
        ("like escape", "value LIKE 'x' ESCAPE CASE WHEN value = ? THEN 'ab' ELSE 'a' END OR 1"),
        // With an index on `value`, SQLite checks terms the index covers before reading the
        // row: a flattened `_owner = …` would come too late.
        ("index-covered term", "value > '' AND CASE WHEN value = ? THEN abs(-9223372036854775807 - 1) ELSE 1 END"),
    ];
    let answers = attacks.map(|(name, filter)| {
        (
            name.to_string(),
            ask(&store, "secrets", filter, json!(SECRET)),
            ask(&store, "secrets", filter, json!("wrong")),
        )
    });
    assert_eq!(leaks(answers.to_vec()), Vec::<String>::new(), "1 bit leaked per query");
}

#[test]
fn per_connection_state_is_not_readable() {
    let (_dir, store) = setup();
    // The last insert on the connection was OTHER's (the pool hands back the last one used).
    data(&store, OTHER, json!({"op": "insert", "table": "vault", "data": {"value": "later"}}));
    for function in ["last_insert_rowid()", "changes()", "total_changes()"] {
        let e =
            refused(&store, VISITOR, json!({"op": "query", "table": "secrets", "where": format!("{function} > 0")}));
        assert!(e.starts_with("not allowed: function"), "{function}: {e}");
    }
}

#[test]
fn writes_are_no_oracle_either() {
    let (_dir, store) = setup();
    let boom = "CASE WHEN value = ? THEN abs(-9223372036854775807 - 1) ELSE 0 END";
    let write = |op: &str, table: &str, filter: &str, guess: &str| {
        let mut request = json!({"op": op, "table": table, "where": filter, "args": [guess]});
        if op == "update" {
            request["data"] = json!({"value": "mine"});
        }
        data(&store, VISITOR, request)
    };
    // `own` delete and update: the where must not run on OTHER's rows.
    let mut answers: Vec<_> = [("delete", "secrets"), ("update", "secrets"), ("update", "vault")]
        .map(|(op, table)| {
            (format!("{op} {table} error"), write(op, table, boom, SECRET), write(op, table, boom, "wrong"))
        })
        .to_vec();
    // `open` update of a table read `own`: the affected count must not tell.
    let count = "value = ?";
    answers.push((
        "update vault count".into(),
        write("update", "vault", count, SECRET),
        write("update", "vault", count, "wrong"),
    ));
    assert_eq!(leaks(answers), Vec::<String>::new(), "1 bit leaked per query");
    // OTHER's rows are untouched.
    let theirs = data(&store, HOST, json!({"op": "query", "table": "vault", "where": "_owner = ?", "args": [OTHER]}));
    assert_eq!(theirs["rows"][0]["value"], SECRET, "{theirs}");
}

#[test]
fn own_rows_still_work() {
    let (_dir, store) = setup();
    let mine = ask(&store, "secrets", "value = ? OR 1", json!("x"));
    assert_eq!(mine["rows"].as_array().map(Vec::len), Some(1), "{mine}");
    assert_eq!(mine["rows"][0]["value"], "mine");
    let page = data(
        &store,
        VISITOR,
        json!({"op": "query", "table": "secrets", "columns": ["value"],
        "where": "secrets.value LIKE ?", "args": ["m%"], "order": "_id desc", "limit": 5}),
    );
    assert_eq!(page, json!({"ok": true, "rows": [{"value": "mine"}]}));
    let update =
        json!({"op": "update", "table": "vault", "data": {"value": "new"}, "where": "value = ?", "args": ["mine"]});
    assert_eq!(data(&store, VISITOR, update), json!({"ok": true, "affected": 1}));
    assert_eq!(
        data(&store, VISITOR, json!({"op": "delete", "table": "vault", "where": "1"})),
        json!({"ok": true, "affected": 1})
    );
    // The owner still sees everything.
    let all = data(&store, HOST, json!({"op": "query", "table": "secrets"}));
    assert_eq!(all["rows"].as_array().map(Vec::len), Some(2), "{all}");
}
