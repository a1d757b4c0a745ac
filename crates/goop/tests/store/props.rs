//! Issue 9, point 11: data-protocol requests made of arbitrary JSON never panic the parser or
//! the store, and every answer is bounded: `{"ok":…}` with an error under 400 characters, at
//! most 1000 rows and about 1 MB. 2048 cases per run, plus the proptest regressions.

use std::sync::atomic::{AtomicUsize, Ordering};

use goop::store::request;
use goop::store::Store;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Map, Value};

use super::*;

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
        prop::sample::select(vec!["notes", "secrets", "games", "_goop_inbox", "_id", "text", "1", "_id = ?", "(", "'"])
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Request-shaped JSON: a known or odd `op`, known fields with arbitrary values, sometimes a
/// stray field.
fn request_like() -> impl Strategy<Value = Value> {
    let op = prop_oneof![
        Just(json!("tables")),
        Just(json!("describe")),
        Just(json!("query")),
        Just(json!("insert")),
        Just(json!("update")),
        Just(json!("delete")),
        any_json(),
    ];
    let field =
        prop::sample::select(vec!["table", "columns", "where", "args", "order", "limit", "offset", "data", "wher"]);
    (op, prop::collection::vec((field, any_json()), 0..6)).prop_map(|(op, fields)| {
        let mut request = Map::new();
        request.insert("op".into(), op);
        for (name, value) in fields {
            request.insert(name.into(), value);
        }
        Value::Object(request)
    })
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-5i64..50).prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,30}".prop_map(Value::from),
    ]
}

/// Requests a page would send, right and wrong: real and missing tables and columns, `where`
/// fragments made of ordinary and hostile terms.
fn well_formed() -> impl Strategy<Value = Value> {
    let op = prop::sample::select(vec!["tables", "describe", "query", "insert", "update", "delete"]);
    let table = prop::sample::select(vec!["notes", "secrets", "games", "diary", "plain", "nope"]);
    let term = prop::sample::select(vec![
        "1",
        "_id = ?",
        "text LIKE ?",
        "_owner = ?",
        "length(text) > ?",
        "text IS NULL",
        "abs(?) > 1",
        "(_id, _owner) IN notes",
        "1 IN (VALUES (?))",
        "json_extract(text, '$.a') = ?",
        "nope = 1",
        "last_insert_rowid() > 0",
    ]);
    let filter = prop::collection::vec((term, prop::bool::ANY), 1..4).prop_map(|terms| {
        terms.iter().map(|(t, and)| format!("{t} {}", if *and { "AND" } else { "OR" })).collect::<String>() + " 1"
    });
    let column = prop::sample::select(vec!["text", "value", "entry", "board", "_owner", "nope"]);
    let data = prop::collection::btree_map(column, scalar(), 0..3);
    let order = prop::sample::select(vec!["", "_id desc", "text", "nope asc", "_id, text desc"]);
    (op, table, filter, prop::collection::vec(scalar(), 0..3), data, 0i64..1200, order).prop_map(
        |(op, table, filter, args, data, limit, order)| {
            let mut r = json!({"op": op});
            if op != "tables" {
                r["table"] = json!(table);
            }
            if matches!(op, "query" | "update" | "delete") {
                r["where"] = json!(filter);
                r["args"] = json!(args);
            }
            if matches!(op, "insert" | "update") {
                r["data"] = json!(data);
            }
            if op == "query" {
                r["limit"] = json!(limit);
                r["order"] = json!(order);
            }
            r
        },
    )
}

fn bounded(request: &Value, answer: &Value) -> Result<(), TestCaseError> {
    prop_assert!(answer["ok"].is_boolean(), "{} -> {}", request, answer);
    if answer["ok"] == json!(false) {
        let error = answer["error"].as_str().unwrap_or_default();
        prop_assert!(!error.is_empty() && error.chars().count() <= 301, "{} -> {}", request, answer);
    }
    if let Some(rows) = answer["rows"].as_array() {
        prop_assert!(rows.len() <= 1000);
    }
    prop_assert!(answer.to_string().len() <= 1024 * 1024 + 1024);
    Ok(())
}

#[test]
fn arbitrary_requests_get_bounded_answers() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    let mut runner = TestRunner::new(Config { cases: 2048, failure_persistence: None, ..Config::default() });
    let strategy = prop_oneof![any_json(), request_like(), well_formed()];
    let (parsed, answered) = (AtomicUsize::new(0), AtomicUsize::new(0));
    runner
        .run(&strategy, |request| {
            // The parser alone, then the whole path for a visitor and for the owner.
            if request::parse(&request).is_ok() {
                parsed.fetch_add(1, Ordering::Relaxed);
            }
            let answer = store.data_request(VISITOR, &request);
            if answer["ok"] == json!(true) {
                answered.fetch_add(1, Ordering::Relaxed);
            }
            bounded(&request, &answer)?;
            bounded(&request, &store.data_request(HOST, &request))
        })
        .unwrap();
    // Enough cases get past the parser to exercise the store, not only the refusals.
    let (parsed, answered) = (parsed.into_inner(), answered.into_inner());
    eprintln!("{parsed} of 2048 requests parsed, {answered} answered ok");
    assert!(parsed >= 200 && answered >= 50, "{parsed} parsed, {answered} answered");
    // The store still answers afterwards.
    assert_eq!(data(&store, HOST, json!({"op": "tables"}))["ok"], json!(true));
}
