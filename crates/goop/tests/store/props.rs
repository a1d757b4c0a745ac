//! Issue 9, point 11: data-protocol requests made of arbitrary JSON never panic the parser or
//! the store, and every answer is bounded: `{"ok":…}` with an error under 400 characters, at
//! most 1000 rows and about 1 MB. 2048 cases per run, plus the proptest regressions.

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
    let strategy = prop_oneof![any_json(), request_like()];
    runner
        .run(&strategy, |request| {
            // The parser alone, then the whole path for a visitor and for the owner.
            let _ = request::parse(&request);
            bounded(&request, &store.data_request(VISITOR, &request))?;
            bounded(&request, &store.data_request(HOST, &request))
        })
        .unwrap();
    // The store still answers afterwards.
    assert_eq!(data(&store, HOST, json!({"op": "tables"}))["ok"], json!(true));
}
