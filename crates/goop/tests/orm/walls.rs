//! `goop.orm`'s walls: every fragment checked as strictly as the data protocol's `where`, the
//! authorizer keeping each statement on its table, the deadline, and the result caps.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;

/// Runs one hostile operation and reports what came back: `{value, err}` or the raised error.
const PROBE: &str = r#"
function call(req)
    local p = req.params
    local t = goop.orm(p.table or "items")
    local ok, value, err = pcall(function()
        if p.op == "find" then return t:find(p.opts)
        elseif p.op == "count" then return t:count(p.opts)
        elseif p.op == "exists" then return t:exists(p.opts)
        elseif p.op == "pluck" then return t:pluck(p.column, p.opts)
        elseif p.op == "distinct" then return t:distinct(p.column, p.opts)
        elseif p.op == "aggregate" then return t:aggregate(p.expr, p.opts)
        elseif p.op == "expr" then return t:update_where({ priority = goop.expr(p.expr) }, { where = "1" })
        elseif p.op == "update_where" then return t:update_where(p.data, p.opts)
        end
    end)
    if not ok then return { raised = tostring(value) } end
    if type(value) == "table" then value = #value end
    return { value = value, err = err }
end
"#;

fn probe(p: &Peer2, request: Value) -> Value {
    p.call("probe", request)
}

fn err(p: &Peer2, request: Value) -> String {
    let answer = probe(p, request.clone());
    answer["err"].as_str().map(str::to_string).unwrap_or_else(|| panic!("{request} should fail, got {answer}"))
}

#[test]
fn fragments_cannot_reach_other_tables_or_write() {
    let p = peer(&[("probe", PROBE)]);
    p.seed("items", json!({"name": "a"}));
    p.store.save_message("12D3KooWSomeone", "x", "a private message").unwrap();
    let cases = [
        (
            json!({"op": "find", "opts": {"where": "_id IN (SELECT id FROM _goop_inbox)"}}),
            "where must not contain subqueries",
        ),
        (json!({"op": "find", "opts": {"where": "1; DELETE FROM items"}}), "where must not contain \";\""),
        (json!({"op": "find", "opts": {"where": "1 -- "}}), "where must not contain comments"),
        (json!({"op": "find", "opts": {"where": "1) OR (1"}}), "where has a ) without its ("),
        (json!({"op": "find", "opts": {"order": "name; DROP TABLE items"}}), "order must be columns"),
        (json!({"op": "find", "opts": {"fields": ["name FROM _goop_inbox --"]}}), "no column"),
        (json!({"op": "find", "opts": {"wher": "1"}}), "unknown option \"wher\""),
        (json!({"op": "count", "opts": {"where": "EXISTS (SELECT 1 FROM sqlite_master)"}}), "subqueries"),
        (json!({"op": "pluck", "column": "content FROM _goop_inbox"}), "no column"),
        (
            json!({"op": "distinct", "column": "name", "opts": {"where": "_id IN _goop_inbox"}}),
            "not allowed: reading table _goop_inbox",
        ),
        (json!({"op": "aggregate", "expr": "count(*) FROM _goop_inbox"}), "expr must be one expression"),
        (json!({"op": "aggregate", "expr": "(SELECT content FROM _goop_inbox)"}), "subqueries"),
        (
            json!({"op": "aggregate", "expr": "count(*)", "opts": {"group_by": "name HAVING 1"}}),
            "group_by must be column names",
        ),
        (
            json!({"op": "aggregate", "expr": "count(*)", "opts": {"where": "_id IN json_each('[1]')"}}),
            "not allowed: reading table json_each",
        ),
        (json!({"op": "expr", "expr": "(SELECT count(*) FROM _goop_inbox)"}), "goop.expr must not contain subqueries"),
        (json!({"op": "expr", "expr": "1 WHERE 0; DELETE FROM items"}), "goop.expr"),
        (json!({"op": "expr", "expr": "priority + ?"}), "goop.expr must not contain parameters"),
        (json!({"op": "find", "table": "_goop_inbox"}), "attempt to index nil"),
    ];
    for (request, expected) in cases {
        let answer = probe(&p, request.clone());
        let text = answer["err"].as_str().or(answer["raised"].as_str()).unwrap_or_default().to_string();
        assert!(text.contains(expected), "{request}: {answer}");
    }
    // A read may not write, even through a function: the authorizer and the read-only flag.
    assert!(err(&p, json!({"op": "find", "opts": {"where": "last_insert_rowid() > 0"}})).contains("not allowed"));
    assert_eq!(p.rows("items").len(), 1);
}

/// A query that would run for minutes stops at the invocation's deadline (1 s here).
#[test]
fn a_slow_fragment_stops_at_the_deadline() {
    let dir = site(&[("probe", PROBE)]);
    let store = Store::open(dir.path(), HOST).unwrap();
    let engine = engine(dir.path(), &store, Duration::from_secs(1));
    let p = Peer2 { dir, store, engine };
    for i in 0..1000 {
        p.seed("items", json!({"name": format!("n{i}")}));
    }
    let started = Instant::now();
    // A megabyte of random bytes made and hexed for each of 1000 rows: seconds of work.
    let slow = json!({"op": "count", "opts": {"where": "length(hex(randomblob(1000000))) > 0 AND priority = 0"}});
    let caller = goop_script::Peer::new(HOST, "");
    let answer = p.engine.call(&caller, "probe", &slow);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(matches!(answer, Err(goop_script::Error::Timeout { .. })), "{answer:?} after {took:?}");
}

/// Results are capped: past 1000 rows or 1 MB a script gets an error, as with goop.db.
#[test]
fn reads_are_capped_at_1000_rows() {
    let p = peer(&[("probe", PROBE)]);
    for i in 0..1001 {
        p.seed("items", json!({"name": format!("n{i}"), "priority": i % 3}));
    }
    let e = err(&p, json!({"op": "pluck", "column": "name"}));
    assert_eq!(e, "more than 1000 rows; add a LIMIT");
    assert_eq!(err(&p, json!({"op": "distinct", "column": "name"})), "more than 1000 rows; add a LIMIT");
    assert_eq!(
        err(&p, json!({"op": "aggregate", "expr": "name", "opts": {"group_by": "name"}})),
        "more than 1000 rows; add a LIMIT"
    );
    assert_eq!(probe(&p, json!({"op": "distinct", "column": "priority"}))["value"], 3);
    assert_eq!(probe(&p, json!({"op": "find", "opts": {"limit": 1000}}))["value"], 1000);
}
