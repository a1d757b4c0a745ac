//! Data functions written for goop2 against its documented API (its lua.md: the task list
//! backend, goop.route/goop.owner, lazy init, seed data, "who is calling", goop.config,
//! goop.site, goop.template; and the Lua its scripts assume: _G dispatch, library helpers,
//! C date formats) run unchanged on a real `goop` folder with goop2's `schemas/*.json` tables.

mod common;

use std::path::Path;

use serde_json::{json, Value};

const VISITOR: &str = "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq";

/// goop2's task list: a `todos` table from a schema file, one routed data function.
const TODO_SCHEMA: &str = r#"{
  "name": "todos",
  "system_key": true,
  "columns": [
    {"name": "text", "type": "text", "required": true},
    {"name": "done", "type": "integer", "default": 0},
    {"name": "position", "type": "integer", "default": 0},
    {"name": "created_by", "type": "text", "default": ""}
  ],
  "access": {"read": "open", "insert": "open", "update": "owner", "delete": "owner"}
}"#;

const TODO: &str = r#"--- Task list, in goop2's documented style
--- @rate_limit 0

local todos = nil

local function init()
    if not todos then todos = goop.orm("todos") end
end

local function list(params)
    return { todos = todos:find({ order = "position ASC" }) or {} }
end

local function add(params)
    if not params.text or params.text == "" then
        return { error = "text required" }
    end
    local top = todos:aggregate("COALESCE(MAX(position), -1) as v")
    local position = (top and #top > 0) and top[1].v + 1 or 0
    local id = todos:insert({ text = params.text, done = 0, position = position, created_by = goop.peer.label })
    return { id = id }
end

local function toggle(params)
    local row = todos:find_one({ where = "_id = ?", args = { params.id }, fields = { "done" } })
    if not row then return { error = "not found" } end
    todos:update(params.id, { done = row.done == 0 and 1 or 0 })
    return { status = "toggled" }
end

local function remove(params)
    todos:delete(params.id)
    return { status = "deleted" }
end

local function lazy(fn) return function(p) init(); return fn(p) end end

local dispatch = goop.route({
    list = lazy(list),
    add = lazy(add),
    toggle = lazy(toggle),
    delete = goop.owner(lazy(remove)),
})

function call(req) return dispatch(req) end
"#;

const COLUMNS_SCHEMA: &str = r#"{"name": "columns", "system_key": true,
  "columns": [{"name": "name", "type": "text", "required": true}, {"name": "position", "type": "integer"},
              {"name": "color", "type": "text"}],
  "access": {"read": "open", "insert": "owner", "update": "owner", "delete": "owner"}}"#;

const SETTINGS_SCHEMA: &str = r#"{"name": "settings", "system_key": true,
  "columns": [{"name": "key", "type": "text", "required": true}, {"name": "value", "type": "text"}],
  "access": {"read": "open", "insert": "owner", "update": "owner", "delete": "owner"}}"#;

/// goop2's `auto` columns, filled on insert when left out.
const TICKETS_SCHEMA: &str = r#"{"name": "tickets", "system_key": true,
  "columns": [{"name": "number", "type": "integer", "auto": true, "required": true},
              {"name": "code", "type": "guid", "auto": true}, {"name": "opened", "type": "datetime", "auto": true},
              {"name": "day", "type": "date", "auto": true}, {"name": "title", "type": "text"}]}"#;

/// lua.md's seed pattern: rows only into empty tables, the count inserted.
const SEED: &str = r##"
function call(req)
    local cols = goop.orm("columns")
    local cfg = goop.orm("settings")
    local n1 = cols:seed({
        { name = "To Do", position = 0, color = "#6366f1" },
        { name = "Doing", position = 1, color = "#f59e0b" },
        { name = "Done", position = 2, color = "#22c55e" },
    })
    local n2 = cfg:seed({ { key = "title", value = "My Board" }, { key = "subtitle", value = "Shared" } })
    return n1 + n2
end
"##;

/// Who is calling, the site's files, the template, settings, and the Lua goop2 scripts assume.
const HELPERS: &str = r#"
function string.trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

function action_whoami(p)
    return { id = goop.peer.id, label = goop.peer.label, email = goop.peer.email,
             is_owner = goop.peer.id == goop.self.id, self_label = goop.self.label }
end

function action_site(p)
    local text, err = goop.site.read("config.json")
    local hidden, why = goop.site.read("lua/functions/helpers.lua")
    return { title = goop.json.decode(text).title, hidden = hidden == nil, why = why, template = goop.template.name }
end

function action_settings(p)
    local cfg = goop.config("settings", { theme = "light", title = "untitled" })
    if p.theme then cfg:set("theme", p.theme) end
    return { theme = cfg.theme, title = cfg.title }
end

function action_lua(p)
    return { trimmed = ("  hi  "):trim(), day = os.date("!%F", 0), clock = os.date("!%T", 3661),
             short = os.date("!%D %R", 86400) }
end

function action_describe(p)
    local todos = goop.orm("todos")
    local first = todos.columns[1]
    return { n = #todos.columns, first = first.name, type = first.type, required = first.required,
             default = todos.columns[2].default, update = todos.access.update, read = todos.access.read }
end

function action_tickets(p)
    local tickets = goop.orm("tickets")
    tickets:insert({ title = "first" })
    tickets:insert({ title = "second" })
    tickets:insert({ title = "mine", number = 40 })
    tickets:insert({ title = "after" })
    return tickets:find({ order = "_id" })
end

function call(req)
    local handler = _G["action_" .. tostring(req.params.action)]
    if not handler then error("unknown action") end
    return handler(req.params)
end
"#;

fn setup() -> tempfile::TempDir {
    let dir = common::folder("Host");
    let path = dir.path().to_str().unwrap();
    assert!(common::goop(&["templates", "apply", "starter", "--dir", path]).status.success());
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("schemas")).unwrap();
    for (name, text) in [
        ("todos", TODO_SCHEMA),
        ("columns", COLUMNS_SCHEMA),
        ("settings", SETTINGS_SCHEMA),
        ("tickets", TICKETS_SCHEMA),
    ] {
        std::fs::write(site.join(format!("schemas/{name}.json")), text).unwrap();
    }
    for (name, text) in [("todo", TODO), ("seed", SEED), ("helpers", HELPERS)] {
        std::fs::write(site.join(format!("lua/functions/{name}.lua")), text).unwrap();
    }
    std::fs::write(site.join("config.json"), r#"{"title": "My site"}"#).unwrap();
    dir
}

fn call(dir: &Path, as_peer: Option<&str>, function: &str, params: Value) -> Value {
    common::call_result(dir, as_peer, function, params)
}

#[test]
fn goop2s_task_list_backend_runs_unchanged() {
    let dir = setup();
    let d = dir.path();
    assert_eq!(call(d, None, "todo", json!({"action": "list"})), json!({"todos": []}));
    assert_eq!(call(d, None, "todo", json!({"action": "add", "text": "Buy milk"})), json!({"id": 1}));
    assert_eq!(call(d, Some(VISITOR), "todo", json!({"action": "add", "text": "Walk"})), json!({"id": 2}));
    assert_eq!(call(d, None, "todo", json!({"action": "add"})), json!({"error": "text required"}));
    assert_eq!(call(d, None, "todo", json!({"action": "toggle", "id": 1})), json!({"status": "toggled"}));
    let list = call(d, None, "todo", json!({"action": "list"}));
    let todos: Vec<(String, i64, i64)> = list["todos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (t["text"].as_str().unwrap().to_string(), t["done"].as_i64().unwrap(), t["position"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(todos, [("Buy milk".to_string(), 1, 0), ("Walk".to_string(), 0, 1)]);
    assert_eq!(list["todos"][1]["_owner"], VISITOR, "insert stamps the caller");
    let refused = call(d, Some(VISITOR), "todo", json!({"action": "delete", "id": 1}));
    assert!(refused["error"].as_str().unwrap().ends_with("only the site owner can do this"), "{refused}");
    let unknown = call(d, None, "todo", json!({"action": "fly"}));
    assert!(unknown["error"].as_str().unwrap().ends_with("unknown action: fly"), "{unknown}");
    assert_eq!(call(d, None, "todo", json!({"action": "delete", "id": 1})), json!({"status": "deleted"}));
    assert_eq!(call(d, None, "todo", json!({"action": "list"}))["todos"].as_array().unwrap().len(), 1);
}

#[test]
fn seed_data_goes_in_once() {
    let dir = setup();
    assert_eq!(call(dir.path(), None, "seed", json!({})), json!(5));
    assert_eq!(call(dir.path(), None, "seed", json!({})), json!(0));
}

#[test]
fn goop2s_helpers_and_lua_habits_work() {
    let dir = setup();
    let d = dir.path();
    let owner = call(d, None, "helpers", json!({"action": "whoami"}));
    assert_eq!((&owner["email"], &owner["is_owner"], &owner["self_label"]), (&json!(""), &json!(true), &json!("Host")));
    let visitor = call(d, Some(VISITOR), "helpers", json!({"action": "whoami"}));
    assert_eq!((&visitor["id"], &visitor["is_owner"]), (&json!(VISITOR), &json!(false)));
    assert_eq!(
        call(d, None, "helpers", json!({"action": "site"})),
        json!({"title": "My site", "hidden": true, "why": "not found", "template": "starter"})
    );
    assert_eq!(call(d, None, "helpers", json!({"action": "settings"})), json!({"theme": "light", "title": "untitled"}));
    assert_eq!(call(d, None, "helpers", json!({"action": "settings", "theme": "dark"}))["theme"], "dark");
    assert_eq!(call(d, None, "helpers", json!({"action": "settings"})), json!({"theme": "dark", "title": "untitled"}));
    assert_eq!(
        call(d, None, "helpers", json!({"action": "lua"})),
        json!({"trimmed": "hi", "day": "1970-01-01", "clock": "01:01:01", "short": "01/02/70 00:00"})
    );
}

#[test]
fn schema_file_tables_are_described_in_goop2s_words() {
    let dir = setup();
    let d = dir.path();
    assert_eq!(
        call(d, None, "helpers", json!({"action": "describe"})),
        json!({"n": 4, "first": "text", "type": "text", "required": true, "default": 0, "update": "owner", "read": "open"})
    );
    let out = common::goop(&["data", "--dir", d.to_str().unwrap(), r#"{"op":"orm-schema"}"#]);
    let answer: Value = serde_json::from_str(&common::stdout(&out)).unwrap();
    assert_eq!(
        answer["data"]["todos"]["columns"][1],
        json!({"name": "done", "type": "integer", "required": false, "default": 0, "key": false})
    );
    assert_eq!(
        answer["data"]["todos"]["access"],
        json!({"read": "open", "insert": "open", "update": "owner", "delete": "owner"})
    );
}

#[test]
fn auto_columns_are_filled_as_goop2_fills_them() {
    let dir = setup();
    let rows = call(dir.path(), None, "helpers", json!({"action": "tickets"}));
    let rows = rows.as_array().unwrap();
    let numbers: Vec<i64> = rows.iter().map(|r| r["number"].as_i64().unwrap()).collect();
    assert_eq!(numbers, [1, 2, 40, 41], "the largest so far + 1, unless given");
    let uuid = |v: &Value| {
        let s = v.as_str().unwrap_or_default();
        let parts: Vec<usize> = s.split('-').map(str::len).collect();
        parts == [8, 4, 4, 4, 12] && s.as_bytes()[14] == b'4' && b"89ab".contains(&s.as_bytes()[19])
    };
    assert!(rows.iter().all(|r| uuid(&r["code"])), "{rows:?}");
    assert_ne!(rows[0]["code"], rows[1]["code"]);
    let opened = rows[0]["opened"].as_str().unwrap();
    assert_eq!((opened.len(), &opened[4..5], &opened[10..11]), (19, "-", " "), "{opened}");
    assert_eq!(rows[0]["day"].as_str().unwrap(), &opened[..10]);
}
