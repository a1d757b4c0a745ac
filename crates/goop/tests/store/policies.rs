//! The data protocol from a visitor's side: access policies, options, and hostile requests.

use goop::store::Store;
use serde_json::{json, Value};

use super::*;

#[test]
fn visitor_insert_is_stamped_and_own_rows_only() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();

    let id = data(&store, VISITOR, json!({"op": "insert", "table": "notes", "data": {"text": "mine"}}));
    assert_eq!(id["ok"], json!(true), "{id}");
    data(&store, OTHER, json!({"op": "insert", "table": "notes", "data": {"text": "theirs"}}));
    let rows = data(&store, VISITOR, json!({"op": "query", "table": "notes", "where": "_id = ?", "args": [id["id"]]}));
    let row = &rows["rows"][0];
    assert_eq!((row["_owner"].as_str(), row["text"].as_str()), (Some(VISITOR), Some("mine")));
    assert!(row["_created_at"].is_string() && row["_updated_at"].is_string(), "{row}");

    // System columns are the system's: an `_owner` given on insert is ignored (goop2's way),
    // the row is the caller's; any other is refused.
    let forged =
        data(&store, VISITOR, json!({"op": "insert", "table": "notes", "data": {"_owner": HOST, "text": "x"}}));
    let stamped = json!({"op": "query", "table": "notes", "where": "_id = ?", "args": [forged["id"]]});
    assert_eq!(data(&store, VISITOR, stamped)["rows"][0]["_owner"], VISITOR);
    let e = refused(&store, VISITOR, json!({"op": "insert", "table": "notes", "data": {"_id": 7}}));
    assert_eq!(e, "column _id is set by the system");
    let e = refused(&store, VISITOR, json!({"op": "update", "table": "notes", "data": {"_id": 1}, "where": "1"}));
    assert_eq!(e, "column _id is set by the system");

    // `own` update/delete touch only the caller's rows, whatever the where says.
    let all = json!({"op": "update", "table": "notes", "data": {"text": "defaced"}, "where": "1 OR 1"});
    assert_eq!(data(&store, VISITOR, all), json!({"ok": true, "affected": 2}));
    let theirs = json!({"op": "query", "table": "notes", "where": "_owner = ?", "args": [OTHER]});
    assert_eq!(data(&store, VISITOR, theirs.clone())["rows"][0]["text"], "theirs");
    let seed = json!({"op": "delete", "table": "notes", "where": "_owner = 'seed'"});
    assert_eq!(data(&store, VISITOR, seed.clone()), json!({"ok": true, "affected": 0}));
    assert_eq!(data(&store, VISITOR, json!({"op": "delete", "table": "notes", "where": "1"}))["affected"], 2);
    assert_eq!(data(&store, VISITOR, theirs)["rows"].as_array().unwrap().len(), 1);

    // The owner is unrestricted.
    assert_eq!(data(&store, HOST, seed), json!({"ok": true, "affected": 1}));
}

#[test]
fn policies_refuse_and_filter() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();

    // games: read open, writes none for visitors, anything for the owner.
    let e = refused(&store, VISITOR, json!({"op": "insert", "table": "games", "data": {"challenger": VISITOR}}));
    assert_eq!(e, "not allowed: insert on table games (policy: none)");
    let game = data(&store, HOST, json!({"op": "insert", "table": "games", "data": {"challenger": VISITOR}}));
    assert_eq!(game, json!({"ok": true, "id": 1}));
    let e = refused(
        &store,
        VISITOR,
        json!({"op": "update", "table": "games", "data": {"board": "XXX------"}, "where": "1"}),
    );
    assert!(e.contains("update on table games (policy: none)"), "{e}");
    assert!(refused(&store, VISITOR, json!({"op": "delete", "table": "games", "where": "1"})).contains("policy: none"));
    assert_eq!(data(&store, VISITOR, json!({"op": "query", "table": "games"}))["rows"][0]["_owner"], HOST);

    // secrets: read own.
    for (who, value) in [(VISITOR, "v"), (OTHER, "o")] {
        data(&store, who, json!({"op": "insert", "table": "secrets", "data": {"value": value}}));
    }
    let mine = data(&store, VISITOR, json!({"op": "query", "table": "secrets", "columns": ["value"]}));
    assert_eq!(mine, json!({"ok": true, "rows": [{"value": "v"}]}));
    let all =
        data(&store, HOST, json!({"op": "query", "table": "secrets", "columns": ["value"], "order": "value desc"}));
    assert_eq!(all, json!({"ok": true, "rows": [{"value": "v"}, {"value": "o"}]}));

    // diary: owner only, and hidden from a visitor's table list.
    assert_eq!(
        refused(&store, VISITOR, json!({"op": "query", "table": "diary"})),
        "not allowed: read on table diary (policy: owner)"
    );
    assert!(refused(&store, VISITOR, json!({"op": "describe", "table": "diary"})).contains("policy: owner"));
    let tables = data(&store, VISITOR, json!({"op": "tables"}));
    assert_eq!(tables, json!({"ok": true, "tables": ["games", "notes", "plain", "secrets"]}));

    // plain: no system columns, so no remote writes.
    let e = refused(&store, VISITOR, json!({"op": "insert", "table": "plain", "data": {"name": "x"}}));
    assert!(e.contains("has no _id column"), "{e}");
    assert_eq!(data(&store, VISITOR, json!({"op": "query", "table": "plain"})), json!({"ok": true, "rows": []}));
}

#[test]
fn describe_and_query_options() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    let cols = data(&store, VISITOR, json!({"op": "describe", "table": "GAMES"}));
    assert_eq!(cols["columns"][0], json!({"name": "_id", "type": "INTEGER"}));
    assert_eq!(cols["columns"][3], json!({"name": "_created_at", "type": "DATETIME"}));
    for i in 0..5 {
        data(&store, VISITOR, json!({"op": "insert", "table": "notes", "data": {"text": format!("n{i}")}}));
    }
    let page = json!({"op": "query", "table": "notes", "columns": ["text"], "where": "text LIKE ?",
        "args": ["n%"], "order": "_id DESC", "limit": 2, "offset": 1});
    assert_eq!(data(&store, VISITOR, page), json!({"ok": true, "rows": [{"text": "n3"}, {"text": "n2"}]}));
}

#[test]
fn big_answers_are_truncated_with_a_flag() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    let big = "x".repeat(400 * 1024);
    for _ in 0..3 {
        data(&store, HOST, json!({"op": "insert", "table": "notes", "data": {"text": big}}));
    }
    let answer = data(&store, VISITOR, json!({"op": "query", "table": "notes", "where": "length(text) > 10"}));
    assert_eq!(answer["truncated"], json!(true));
    assert_eq!(answer["rows"].as_array().unwrap().len(), 2);
    assert!(answer.to_string().len() < 1024 * 1024 + 1024);
}

#[test]
fn hostile_requests_get_clear_errors() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    store.save_message(OTHER, "Bo", "private").unwrap();
    data(&store, VISITOR, json!({"op": "insert", "table": "notes", "data": {"text": "mine"}}));

    let q = |w: &str| json!({"op": "query", "table": "notes", "where": w});
    let cases: Vec<(Value, &str)> = vec![
        (json!(null), "must be a JSON object"),
        (json!("tables"), "must be a JSON object"),
        (json!([{"op": "tables"}]), "must be a JSON object"),
        (json!({}), "needs an \"op\""),
        (json!({"op": null}), "op must be a string"),
        (json!({"op": "drop"}), "unknown op: drop"),
        (json!({"op": "lua-call"}), "unknown op: lua-call"),
        (json!({"op": "query", "table": "_goop_inbox"}), "no table"),
        (json!({"op": "query", "table": "sqlite_master"}), "no table"),
        (json!({"op": "query", "table": "sqlite_sequence"}), "no table"),
        (json!({"op": "query", "table": "games; DROP TABLE games"}), "no table"),
        (json!({"op": "query", "table": "\"games\""}), "no table"),
        (json!({"op": "query", "table": "x".repeat(100_000)}), "no table"),
        (json!({"op": "query", "table": "notes", "columns": ["text FROM _goop_inbox --"]}), "no column"),
        (json!({"op": "query", "table": "notes", "columns": ["*"]}), "no column"),
        (json!({"op": "query", "table": "notes", "order": "(SELECT 1)"}), "order must be"),
        (json!({"op": "query", "table": "notes", "order": "nope"}), "no column"),
        (json!({"op": "query", "table": "notes", "limit": "10"}), "limit: invalid type"),
        (json!({"op": "query", "table": "notes", "limit": 5000}), "limit must be between 1 and 1000"),
        (json!({"op": "query", "table": "notes", "where": 1}), "where: invalid type"),
        (json!({"op": "query", "table": "notes", "where": "_id = ?", "args": [[1]]}), "args[0] must be"),
        (json!({"op": "insert", "table": "notes", "data": {"text": {"a": 1}}}), "data.text must be"),
        (json!({"op": "insert", "table": "notes", "data": {"nope": 1}}), "no column"),
        (q("_id IN (SELECT id FROM _goop_inbox)"), "must not contain subqueries"),
        (q("(SELECT count(*) FROM sqlite_master) > 0"), "subqueries"),
        (q("EXISTS (SELECT 1 FROM notes WHERE _owner = 'x')"), "subqueries"),
        (q("text IN (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c)"), "subqueries"),
        (q("load_extension('/tmp/evil.so')"), "not allowed: function load_extension"),
        (q("1; DROP TABLE games"), "\";\""),
        (q("1) OR (1"), ") without its ("),
        (q("1 -- comment"), "comments"),
        (q("_owner = ?1"), "plain ? placeholders"),
        (q("_owner = :me"), "plain ? placeholders"),
        (q("nope = 1"), "no such column"),
        (q("_id = ?"), "parameter"),
        (json!({"op": "delete", "table": "notes", "where": "_id IN (SELECT _id FROM notes)"}), "subqueries"),
        (json!({"op": "update", "table": "notes", "data": {"text": "x"}, "where": "1) OR (1"}), "without"),
    ];
    for (request, expected) in cases {
        let e = refused(&store, VISITOR, request.clone());
        assert!(e.contains(expected), "{request}: expected {expected:?} in {e:?}");
        assert!(e.len() < 400, "error too long for {request}: {e}");
    }

    // Nothing was dropped or leaked.
    assert_eq!(store.inbox(10).unwrap().len(), 1);
    let tables = data(&store, HOST, json!({"op": "tables"}));
    assert!(tables["tables"].as_array().unwrap().contains(&json!("games")));
    assert_eq!(data(&store, VISITOR, q("text = 'mine'"))["rows"].as_array().unwrap().len(), 1);
    // Ordinary SQL functions and string literals with `;` inside still work.
    assert_eq!(data(&store, VISITOR, q("upper(text) = 'MINE' AND 'a;b' <> ''"))["ok"], json!(true));
}

#[test]
fn odd_shapes_never_panic() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    let odd = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1e308),
        json!(""),
        json!("x".repeat(5000)),
        json!("_goop_inbox"),
        json!("notes"),
        json!("\u{0}"),
        json!([]),
        json!([null, {"a": []}]),
        json!({}),
        json!({"text": "x"}),
    ];
    let fields = ["table", "columns", "where", "args", "order", "limit", "offset", "data"];
    for op in ["tables", "describe", "query", "insert", "update", "delete", "nope"] {
        for field in fields {
            for value in &odd {
                let request = json!({"op": op, "table": "notes", field: value});
                let answer = store.data_request(VISITOR, &request);
                assert!(answer["ok"].is_boolean(), "{request} -> {answer}");
                if answer["ok"] == json!(false) {
                    assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty() && e.len() < 400), "{answer}");
                }
            }
        }
    }
    // The seed row is still there (no `where` in a delete means no delete).
    assert_eq!(
        data(&store, HOST, json!({"op": "query", "table": "notes", "where": "_owner = 'seed'"}))["rows"][0]["text"],
        "hello"
    );
}
