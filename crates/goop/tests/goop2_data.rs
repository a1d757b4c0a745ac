//! goop2's data-protocol operations between two `goop` processes on loopback: each op's answer
//! as a visitor's page would get it, then the attacks — fragments that reach for goop's own
//! tables, writes from a read, stacked statements, a query past the deadline, answers over a
//! big table, `update-where` against `own`, and an `upsert` aimed at another peer's row.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{folder, goop, peer_id, run, stdout};
use serde_json::{json, Value};

/// goop's system columns, then the table's own.
fn table(name: &str, columns: &str) -> String {
    format!(
        "CREATE TABLE {name} (_id INTEGER PRIMARY KEY AUTOINCREMENT, _owner TEXT NOT NULL, \
         _created_at DATETIME DEFAULT CURRENT_TIMESTAMP, _updated_at DATETIME DEFAULT CURRENT_TIMESTAMP, {columns});\n"
    )
}

/// `notes` with the default policies (read open, writes own), `secrets` read `own`, and `big`:
/// 3000 rows of 1100 bytes (3.3 MB), more than one answer may hold.
fn host() -> tempfile::TempDir {
    let dir = folder("Host");
    let schema = [
        table("notes", "body TEXT, category TEXT, n INTEGER"),
        table("secrets", "key TEXT, value TEXT"),
        table("big", "body TEXT"),
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000) \
         INSERT INTO big (_owner, body) SELECT 'seed', printf('%01100d', x) FROM c;\n"
            .to_string(),
    ]
    .concat();
    std::fs::write(dir.path().join("site/schema.sql"), schema).unwrap();
    std::fs::write(dir.path().join("site/schema.json"), r#"{"tables": {"secrets": {"read": "own"}}}"#).unwrap();
    dir
}

fn data(addr: &str, dir: &Path, request: Value) -> Value {
    let out = goop(&["data", "--peer", addr, "--dir", dir.to_str().unwrap(), &request.to_string()]);
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

/// The host's own view of a table, ordered by `_id`.
fn local(dir: &Path, table: &str) -> Vec<Value> {
    let request = json!({"op": "query", "table": table, "order": "_id"}).to_string();
    let out = goop(&["data", "--dir", dir.to_str().unwrap(), &request]);
    let answer: Value = serde_json::from_str(&stdout(&out)).unwrap();
    answer["rows"].as_array().cloned().unwrap_or_default()
}

#[test]
fn goop2_ops_answer_a_visitor() {
    let host_dir = host();
    let h = host_dir.path();
    let host = run(h);
    let (ann_dir, bo_dir) = (folder("Ann"), folder("Bo"));
    let (ann, bo) = (ann_dir.path(), bo_dir.path());
    let ask = |who: &Path, request: Value| data(&host.addr, who, request);

    // insert: a forged _owner is ignored; the row is the caller's.
    let first = ask(
        ann,
        json!({"op": "insert", "table": "notes", "data": {"body": "a", "category": "x", "n": 1, "_owner": peer_id(h)}}),
    );
    assert_eq!(first, json!({"ok": true, "id": 1}));
    ask(ann, json!({"op": "insert", "table": "notes", "data": {"body": "b", "category": "y", "n": 2}}));
    ask(bo, json!({"op": "insert", "table": "notes", "data": {"body": "c", "category": "x", "n": 3}}));
    assert_eq!(local(h, "notes")[0]["_owner"], peer_id(ann));

    // Reads.
    let fields = ask(bo, json!({"op": "query", "table": "notes", "fields": ["body"], "order": "_id"}));
    assert_eq!(fields, json!({"ok": true, "rows": [{"body": "a"}, {"body": "b"}, {"body": "c"}]}));
    let one =
        ask(bo, json!({"op": "query-one", "table": "notes", "where": "n > ?", "args": [1], "fields": ["body", "n"]}));
    assert_eq!(one, json!({"ok": true, "data": {"body": "b", "n": 2}}));
    let none = ask(bo, json!({"op": "query-one", "table": "notes", "where": "n > 9"}));
    assert_eq!(none, json!({"ok": true, "data": null}));
    assert_eq!(
        ask(bo, json!({"op": "exists", "table": "notes", "where": "body = ?", "args": ["c"]})),
        json!({"ok": true, "data": {"exists": true}})
    );
    assert_eq!(
        ask(bo, json!({"op": "count", "table": "notes", "where": "category = 'x'"})),
        json!({"ok": true, "data": {"count": 2}})
    );
    assert_eq!(
        ask(bo, json!({"op": "pluck", "table": "notes", "key_col": "body", "order": "_id desc"})),
        json!({"ok": true, "data": ["c", "b", "a"]})
    );
    assert_eq!(
        ask(bo, json!({"op": "distinct", "table": "notes", "fields": ["category"]})),
        json!({"ok": true, "data": ["x", "y"]})
    );
    let sums = ask(
        bo,
        json!({"op": "aggregate", "table": "notes", "expr": "category, SUM(n) AS total", "group_by": "category"}),
    );
    assert_eq!(sums, json!({"ok": true, "data": [{"category": "x", "total": 4}, {"category": "y", "total": 2}]}));

    // Writes by id and by condition, own rows only.
    let by_id = ask(ann, json!({"op": "update", "table": "notes", "id": 1, "data": {"body": "A"}}));
    assert_eq!(by_id, json!({"ok": true, "affected": 1, "data": {"status": "updated"}}));
    let not_hers = ask(ann, json!({"op": "update", "table": "notes", "id": 3, "data": {"body": "defaced"}}));
    assert_eq!(not_hers, json!({"ok": false, "error": "row not found or not owned by caller"}));
    let moved = ask(ann, json!({"op": "update-where", "table": "notes", "data": {"n": 0}, "where": "1"}));
    assert_eq!(moved, json!({"ok": true, "data": {"affected": 2}}), "only her two rows");
    let gone = ask(bo, json!({"op": "delete-where", "table": "notes", "where": "category = 'x'"}));
    assert_eq!(gone, json!({"ok": true, "data": {"affected": 1}}), "only his row");
    assert_eq!(
        ask(ann, json!({"op": "delete", "table": "notes", "id": 2})),
        json!({"ok": true, "affected": 1, "data": {"status": "deleted"}})
    );
    let bodies: Vec<Value> = local(h, "notes").iter().map(|r| json!([r["body"], r["n"]])).collect();
    assert_eq!(bodies, vec![json!(["A", 0])]);

    // upsert by a key column: her row is updated, his never: he gets his own.
    let up = ask(
        ann,
        json!({"op": "upsert", "table": "secrets", "key_col": "key", "data": {"key": "pin", "value": "1234"}}),
    );
    assert_eq!(up, json!({"ok": true, "data": {"status": "ok", "id": 1}}));
    let again = ask(
        ann,
        json!({"op": "upsert", "table": "secrets", "key_col": "key", "data": {"key": "pin", "value": "4321"}}),
    );
    assert_eq!(again, json!({"ok": true, "data": {"status": "ok", "id": 1}}));
    let his =
        ask(bo, json!({"op": "upsert", "table": "secrets", "key_col": "key", "data": {"key": "pin", "value": "0000"}}));
    assert_eq!(his, json!({"ok": true, "data": {"status": "ok", "id": 2}}));
    let secrets: Vec<Value> = local(h, "secrets").iter().map(|r| json!([r["value"], r["_owner"]])).collect();
    assert_eq!(secrets, vec![json!(["4321", peer_id(ann)]), json!(["0000", peer_id(bo)])]);
    // Reading them back under read `own`: each sees only their own.
    assert_eq!(
        ask(bo, json!({"op": "pluck", "table": "secrets", "key_col": "value"})),
        json!({"ok": true, "data": ["0000"]})
    );
    assert_eq!(ask(bo, json!({"op": "count", "table": "secrets"})), json!({"ok": true, "data": {"count": 1}}));

    // Schema and role.
    let schema = ask(bo, json!({"op": "orm-schema"}));
    assert_eq!(
        schema["data"]["secrets"],
        json!({"name": "secrets", "system_key": true,
               "columns": [{"name": "key", "type": "text", "required": false, "key": false},
                           {"name": "value", "type": "text", "required": false, "key": false}],
               "access": {"read": "own", "insert": "own", "update": "own", "delete": "own"}})
    );
    let role = ask(bo, json!({"op": "role", "table": "notes"}));
    assert_eq!(
        role,
        json!({"ok": true, "data": {"role": "visitor", "permissions": {"read": true, "insert": true, "update": true, "delete": true}}})
    );
    let out = goop(&["data", "--dir", h.to_str().unwrap(), r#"{"op":"role","table":"notes"}"#]);
    assert_eq!(serde_json::from_str::<Value>(&stdout(&out)).unwrap()["data"]["role"], "owner");
}

#[test]
fn goop2_ops_hold_against_a_hostile_visitor() {
    let host_dir = host();
    let h = host_dir.path();
    let host = run(h);
    let (ann_dir, bo_dir) = (folder("Ann"), folder("Bo"));
    let (ann, bo) = (ann_dir.path(), bo_dir.path());
    let ask = |who: &Path, request: Value| data(&host.addr, who, request);
    let error = |who: &Path, request: Value| {
        let answer = ask(who, request.clone());
        assert_eq!(answer["ok"], false, "{request} should fail, got {answer}");
        answer["error"].as_str().unwrap_or_default().to_string()
    };
    goop(&["cmd", "--peer", &host.addr, "--dir", ann.to_str().unwrap(), "a private message to the host"]);
    ask(bo, json!({"op": "insert", "table": "notes", "data": {"body": "his", "n": 1}}));
    ask(bo, json!({"op": "insert", "table": "secrets", "data": {"key": "k", "value": "his secret"}}));

    // Fragments that reach for goop's tables, another table, or another's rows.
    let reach = [
        (
            json!({"op": "count", "table": "notes", "where": "_id IN (SELECT id FROM _goop_inbox)"}),
            "where must not contain subqueries",
        ),
        (
            json!({"op": "exists", "table": "notes", "where": "_id IN _goop_inbox"}),
            "not allowed: reading table _goop_inbox",
        ),
        (json!({"op": "pluck", "table": "notes", "key_col": "content FROM _goop_inbox --"}), "no column"),
        (
            json!({"op": "query", "table": "notes", "fields": ["body", "(SELECT content FROM _goop_inbox)"]}),
            "no column",
        ),
        (json!({"op": "query-one", "table": "notes", "order": "(SELECT 1)"}), "order must be columns"),
        (
            json!({"op": "distinct", "table": "notes", "key_col": "body", "where": "1 UNION SELECT content FROM _goop_inbox"}),
            "subqueries",
        ),
        (
            json!({"op": "aggregate", "table": "notes", "expr": "group_concat(content) FROM _goop_inbox"}),
            "expr must be one expression",
        ),
        (
            json!({"op": "aggregate", "table": "notes", "expr": "count(*)", "group_by": "body HAVING 1"}),
            "group_by must be column names",
        ),
        (
            json!({"op": "aggregate", "table": "secrets", "expr": "group_concat(value)", "where": "(1, 'x') IN (SELECT _id, value FROM secrets)"}),
            "subqueries",
        ),
        (
            json!({"op": "aggregate", "table": "secrets", "expr": "count(*)", "where": "(2, 'x', 'y', 'z', 'k', 'v') IN secrets"}),
            "not allowed: reading table secrets (only your own rows)",
        ),
        (json!({"op": "pluck", "table": "_goop_inbox", "key_col": "content"}), "no table"),
    ];
    for (request, expected) in reach {
        let e = error(ann, request.clone());
        assert!(e.contains(expected), "{request}: {e}");
    }
    // Under read `own`, aggregates see only the caller's rows.
    assert_eq!(
        ask(ann, json!({"op": "aggregate", "table": "secrets", "expr": "count(*) AS n"})),
        json!({"ok": true, "data": [{"n": 0}]})
    );

    // No write from a read op, no stacked statement, no connection state.
    let writes = [
        (json!({"op": "count", "table": "notes", "where": "1; DELETE FROM notes"}), "\";\""),
        (json!({"op": "count", "table": "notes", "where": "1); DELETE FROM notes; (1"}), "without its ("),
        (json!({"op": "aggregate", "table": "notes", "expr": "count(*); DELETE FROM notes"}), "\";\""),
        (
            json!({"op": "exists", "table": "notes", "where": "last_insert_rowid() > 0"}),
            "not allowed: function last_insert_rowid",
        ),
        (json!({"op": "aggregate", "table": "notes", "expr": "changes()"}), "not allowed: function changes"),
        (json!({"op": "query-one", "table": "notes", "where": "1 /* */"}), "comments"),
    ];
    for (request, expected) in writes {
        let e = error(ann, request.clone());
        assert!(e.contains(expected), "{request}: {e}");
    }
    assert_eq!(local(h, "notes").len(), 1);

    // update-where and delete-where keep to her own rows whatever the where says.
    let escape = ask(
        ann,
        json!({"op": "update-where", "table": "notes", "data": {"body": "defaced"}, "where": "1 OR _owner <> ''"}),
    );
    assert_eq!(escape, json!({"ok": true, "data": {"affected": 0}}));
    let escape =
        ask(ann, json!({"op": "delete-where", "table": "notes", "where": "_owner = ?", "args": [peer_id(bo)]}));
    assert_eq!(escape, json!({"ok": true, "data": {"affected": 0}}));
    assert!(error(ann, json!({"op": "update-where", "table": "notes", "data": {"_owner": "me"}, "where": "1"}))
        .contains("set by the system"));
    // upsert on his key makes her a row of her own; his stays his.
    ask(ann, json!({"op": "upsert", "table": "secrets", "key_col": "key", "data": {"key": "k", "value": "hers"}}));
    let secrets: Vec<Value> = local(h, "secrets").iter().map(|r| json!([r["value"], r["_owner"]])).collect();
    assert_eq!(secrets, vec![json!(["his secret", peer_id(bo)]), json!(["hers", peer_id(ann)])]);
    assert!(error(
        ann,
        json!({"op": "upsert", "table": "secrets", "key_col": "_owner", "data": {"_owner": peer_id(bo)}})
    )
    .contains("system column"));

    // A query that would run for seconds stops at the 2 s request deadline.
    let started = Instant::now();
    let slow = error(ann, json!({"op": "count", "table": "big", "where": "length(hex(randomblob(1000000))) > 0"}));
    let took = started.elapsed();
    assert_eq!(slow, "timeout: the query was stopped at the deadline");
    eprintln!("slow count stopped after {took:?} (2 s deadline, process start included)");
    assert!(took < Duration::from_secs(6), "{took:?}");

    // Over 3000 rows of 1100 bytes, answers stop at 1000 rows and 1 MB and say so.
    let pluck = ask(ann, json!({"op": "pluck", "table": "big", "key_col": "body", "limit": 1000}));
    let distinct = ask(ann, json!({"op": "distinct", "table": "big", "key_col": "body"}));
    let aggregate =
        ask(ann, json!({"op": "aggregate", "table": "big", "expr": "body, count(*) AS n", "group_by": "body"}));
    for (name, answer) in [("pluck", &pluck), ("distinct", &distinct), ("aggregate", &aggregate)] {
        let rows = answer["data"].as_array().map_or(0, Vec::len);
        let bytes = answer.to_string().len();
        eprintln!("{name} over 3000 rows: {rows} rows, {bytes} bytes, truncated {}", answer["truncated"]);
        assert_eq!(answer["truncated"], true, "{name}");
        assert!((1..=1000).contains(&rows) && bytes <= 1024 * 1024 + 1024, "{name}: {rows} rows, {bytes} bytes");
    }
}

/// goop2's writes go through the site's data hooks like today's: no way around a `before_*`.
#[test]
fn hooks_see_goop2s_writes() {
    let host_dir = host();
    let h = host_dir.path();
    let hooks = r#"
function before_update(tbl, change)
  if change.data.body == "no" then return false, "not that" end
  goop.kv.set("seen", change)
end
function before_delete(tbl, target) return false, "keep it" end
function handle() return goop.json.encode(goop.kv.get("seen")) end
"#;
    std::fs::write(h.join("site/lua/guard.lua"), hooks).unwrap();
    let host = run(h);
    let ann_dir = folder("Ann");
    let ann = ann_dir.path();
    let ask = |request: Value| data(&host.addr, ann, request);
    ask(json!({"op": "insert", "table": "notes", "data": {"body": "a"}}));
    let refused = |request: Value, reason: &str| {
        assert_eq!(ask(request.clone()), json!({"ok": false, "error": format!("refused: {reason}")}), "{request}");
    };
    refused(json!({"op": "update", "table": "notes", "id": 1, "data": {"body": "no"}}), "not that");
    refused(json!({"op": "update-where", "table": "notes", "data": {"body": "no"}, "where": "1"}), "not that");
    refused(json!({"op": "delete", "table": "notes", "id": 1}), "keep it");
    refused(json!({"op": "delete-where", "table": "notes", "where": "1"}), "keep it");
    refused(
        json!({"op": "upsert", "table": "notes", "key_col": "body", "data": {"body": "a", "n": 1}}),
        "upsert is not available while data hooks watch inserts and updates; use insert or update",
    );
    assert_eq!(local(h, "notes").len(), 1);
    let ok = ask(json!({"op": "update", "table": "notes", "id": 1, "data": {"body": "yes"}}));
    assert_eq!(ok["ok"], true, "{ok}");
    let seen = goop(&["cmd", "--dir", h.to_str().unwrap(), "!guard"]);
    let seen: Value = serde_json::from_str(stdout(&seen).trim()).unwrap();
    assert_eq!(seen, json!({"data": {"body": "yes"}, "where": "_id = ?", "args": [1]}));
}

/// A running peer's data functions have `goop.orm` and `goop.expr`; chat commands do not.
#[test]
fn a_running_peers_functions_have_goop_orm() {
    let host_dir = host();
    let h = host_dir.path();
    let function = r#"
function call(req)
  local notes = goop.orm("notes")
  local id = notes:insert({ body = req.params.body, n = 1 })
  notes:update_where({ n = goop.expr("n + 1") }, { where = "_id = ?", args = { id } })
  return { id = id, row = notes:get(id), visitors = notes:count({ where = "_owner <> ?", args = { goop.self.id } }) }
end
"#;
    std::fs::write(h.join("site/lua/functions/note.lua"), function).unwrap();
    std::fs::write(
        h.join("site/lua/probe.lua"),
        "function handle() return type(goop.orm) .. ' ' .. type(goop.expr) end",
    )
    .unwrap();
    let host = run(h);
    let ann_dir = folder("Ann");
    let ann = ann_dir.path();
    let out = goop(&["call", "--peer", &host.addr, "--dir", ann.to_str().unwrap(), "note", r#"{"body":"hi"}"#]);
    let answer: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(answer["result"]["id"], 1, "{answer}");
    assert_eq!(answer["result"]["row"]["_owner"], peer_id(ann));
    assert_eq!((answer["result"]["row"]["n"].clone(), answer["result"]["visitors"].clone()), (json!(2), json!(1)));
    let command = goop(&["cmd", "--peer", &host.addr, "--dir", ann.to_str().unwrap(), "!probe"]);
    assert_eq!(stdout(&command).trim(), "nil nil", "goop.orm is for data functions only");
}
