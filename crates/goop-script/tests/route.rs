//! `goop.route` and `goop.owner`, as goop2's data functions use them.

mod common;

use common::*;
use goop_script::{Error, Peer};
use serde_json::json;

const APP: &str = r#"
local items = {}
local dispatch = goop.route({
    list  = function(params) return { items = params.page or 0 } end,
    add   = function(params) return { added = params.title } end,
    wipe  = goop.owner(function(params) return { wiped = true, by = goop.peer.id } end),
    broken = "not a function",
})
function call(request) return dispatch(request) end
"#;

fn failure(result: Result<serde_json::Value, Error>) -> String {
    match result {
        Err(Error::Runtime { message, .. }) => message,
        other => panic!("expected a runtime error, got {other:?}"),
    }
}

#[test]
fn route_dispatches_on_the_action_and_passes_params() {
    let site = Site::new();
    site.write("functions/app.lua", APP);
    let engine = site.engine();
    assert_eq!(call(&engine, "app", json!({"action": "list", "page": 2})).unwrap(), json!({"items": 2}));
    assert_eq!(call(&engine, "app", json!({"action": "add", "title": "Milk"})).unwrap(), json!({"added": "Milk"}));
    for (params, error) in [
        (json!({"action": "nope"}), "unknown action: nope"),
        (json!({"title": "x"}), "action parameter required"),
        (json!({"action": ""}), "action parameter required"),
        (json!({"action": "broken"}), "action broken is not a function"),
    ] {
        let message = failure(call(&engine, "app", params.clone()));
        assert!(message.ends_with(error), "{params}: {message}");
    }
}

#[test]
fn owner_only_handlers_refuse_everyone_but_the_site_owner() {
    let site = Site::new();
    site.write("functions/app.lua", APP);
    let engine = site.engine();
    let message = failure(call(&engine, "app", json!({"action": "wipe"})));
    assert!(message.ends_with("only the site owner can do this"), "{message}");
    let owner = Peer::new("12D3KooWSelf", "Host");
    assert_eq!(
        engine.call(&owner, "app", &json!({"action": "wipe"})).unwrap(),
        json!({"wiped": true, "by": "12D3KooWSelf"})
    );
    // A visitor cannot pass as the owner by label.
    let pretender = Peer::new("12D3KooWVisitor", "Host");
    assert!(failure(engine.call(&pretender, "app", &json!({"action": "wipe"}))).ends_with("can do this"));
}

#[test]
fn route_and_owner_check_what_they_are_given() {
    for (expr, error) in [
        ("goop.route(42)", "goop.route expects a table of action handlers"),
        ("goop.owner('x')", "goop.owner expects a function"),
        ("goop.route({})(nil)", "request.params missing"),
    ] {
        let site = Site::new();
        site.write("functions/f.lua", &format!("function call() return {expr} end"));
        let message = failure(call(&site.engine(), "f", json!({})));
        assert!(message.ends_with(error), "{expr}: {message}");
    }
}
