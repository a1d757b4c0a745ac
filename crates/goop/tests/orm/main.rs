//! `goop.orm` and `goop.expr` through a real engine: goop2's documented examples (lua.md) and
//! the results its orm_test.go and template tests assert, on tables made by `schema.sql` with
//! goop's system columns; `goop.config`; then the walls (fragments, deadline, caps).

mod config;
mod walls;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use goop::store::{ConfigModule, DbModule, ExprModule, OrmModule, Store};
use goop_script::{Config, Engine, Peer};
use serde_json::{json, Value};
use tempfile::TempDir;

pub const HOST: &str = "12D3KooWHost";
pub const VISITOR: &str = "12D3KooWVisitor";

/// goop's system columns, then the table's own.
fn table(name: &str, columns: &str) -> String {
    format!(
        "CREATE TABLE {name} (_id INTEGER PRIMARY KEY AUTOINCREMENT, _owner TEXT NOT NULL, \
         _created_at DATETIME DEFAULT CURRENT_TIMESTAMP, _updated_at DATETIME DEFAULT CURRENT_TIMESTAMP, {columns});\n"
    )
}

/// goop2's test tables (orm_test.go, template_test.go), as `schema.sql` declares them.
pub fn schema() -> String {
    [
        table("posts", "title TEXT NOT NULL, body TEXT, slug TEXT, published INTEGER DEFAULT 1"),
        table("items", "name TEXT NOT NULL, priority INTEGER DEFAULT 0, count INTEGER"),
        table("scores", "score INTEGER NOT NULL, player TEXT"),
        table("notes", "title TEXT NOT NULL, category TEXT DEFAULT 'general'"),
        table("cards", "title TEXT NOT NULL, column_id INTEGER NOT NULL, position INTEGER DEFAULT 0"),
        table("config", "key TEXT NOT NULL, value TEXT DEFAULT ''"),
        table("app_settings", "api_url TEXT, timeout INTEGER, debug TEXT"),
    ]
    .concat()
}

/// A peer folder with the tables and `scripts` as data functions.
pub fn site(scripts: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("lua/functions")).unwrap();
    std::fs::write(site.join("schema.sql"), schema()).unwrap();
    std::fs::write(
        site.join("schema.json"),
        r#"{"tables": {"posts": {"insert": "open", "update": "owner", "delete": "owner"},
            "config": {"insert": "owner", "update": "owner", "delete": "owner"},
            "app_settings": {"insert": "owner", "update": "owner", "delete": "owner"}}}"#,
    )
    .unwrap();
    for (name, source) in scripts {
        std::fs::write(site.join(format!("lua/functions/{name}.lua")), source).unwrap();
    }
    dir
}

pub fn engine(dir: &Path, store: &Store, timeout: Duration) -> Engine {
    let mut config = Config::new(dir.join("site/lua"));
    config.hot_reload = false;
    config.rate_limit_per_peer = 0;
    config.rate_limit_global = 0;
    config.timeout = timeout;
    config.local = Peer::new(HOST, "Host");
    let modules: Vec<Arc<dyn goop_script::HostModule>> = vec![
        Arc::new(DbModule::new(store.clone())),
        Arc::new(OrmModule::new(store.clone())),
        Arc::new(ExprModule),
        Arc::new(ConfigModule::new(store.clone())),
    ];
    Engine::with_modules(config, modules).unwrap()
}

/// One folder, store and engine for a test.
pub struct Peer2 {
    pub dir: TempDir,
    pub store: Store,
    pub engine: Engine,
}

pub fn peer(scripts: &[(&str, &str)]) -> Peer2 {
    let dir = site(scripts);
    let store = Store::open(dir.path(), HOST).unwrap();
    let engine = engine(dir.path(), &store, Duration::from_secs(5));
    Peer2 { dir, store, engine }
}

impl Peer2 {
    pub fn call_as(&self, who: &str, function: &str, params: Value) -> Value {
        let caller = Peer::new(who, "");
        self.engine.call(&caller, function, &params).unwrap_or_else(|e| panic!("{function} {params}: {e}"))
    }
    pub fn call(&self, function: &str, params: Value) -> Value {
        self.call_as(HOST, function, params)
    }
    /// Rows of `table` as the owner sees them over the data protocol.
    pub fn rows(&self, table: &str) -> Vec<Value> {
        let answer = self.store.data_request(HOST, &json!({"op": "query", "table": table, "order": "_id"}));
        answer["rows"].as_array().cloned().unwrap_or_default()
    }
    /// Inserts a row as `owner` (the owner's data protocol stamps the owner; then set it).
    pub fn seed(&self, table: &str, data: Value) {
        let answer = self.store.data_request(HOST, &json!({"op": "insert", "table": table, "data": data}));
        assert_eq!(answer["ok"], true, "{answer}");
    }
}

/// goop2's `crud.lua` pattern (lua.md "goop.orm"): every method through one dispatcher.
const CRUD: &str = r#"
local items = nil
function call(req)
    if not items then items = goop.orm("items") end
    local p = req.params
    local a = p.action
    if a == "insert" then return { id = items:insert({ name = p.name, priority = p.priority or 0 }) }
    elseif a == "get" then return items:get(p.id) or { error = "not found" }
    elseif a == "get_by" then return items:get_by("name", p.name) or { error = "not found" }
    elseif a == "find" then return items:find(p.opts or {})
    elseif a == "find_one" then return items:find_one(p.opts or {}) or { error = "not found" }
    elseif a == "list" then return items:list(p.limit or 100)
    elseif a == "count" then return { n = items:count(p.opts) }
    elseif a == "exists" then return { yes = items:exists(p.opts) }
    elseif a == "pluck" then return items:pluck(p.column, p.opts)
    elseif a == "update" then items:update(p.id, p.data) return { ok = true }
    elseif a == "delete" then items:delete(p.id) return { ok = true }
    elseif a == "upsert" then return items:upsert(p.key_col, p.data)
    elseif a == "seed" then return { n = items:seed(p.rows) }
    elseif a == "validate" then local ok, err = items:validate(p.data) return { valid = ok, error = err }
    elseif a == "schema" then
        return { name = items.name, system_key = items.system_key, col_count = #items.columns,
                 first = items.columns[1].name, first_type = items.columns[1].type,
                 first_required = items.columns[1].required, insert_policy = items.access.insert }
    else error("unknown action: " .. tostring(a)) end
end
"#;

#[test]
fn crud_methods_give_goop2s_results() {
    let p = peer(&[("crud", CRUD)]);
    let id = p.call("crud", json!({"action": "insert", "name": "apple", "priority": 3}))["id"].clone();
    assert_eq!(id, json!(1));
    assert_eq!(p.rows("items")[0]["_owner"], HOST, "insert stamps the caller");
    assert_eq!(p.call("crud", json!({"action": "get", "id": id}))["name"], "apple");
    assert_eq!(p.call("crud", json!({"action": "get", "id": 99}))["error"], "not found");
    p.call("crud", json!({"action": "insert", "name": "b", "priority": 5}));
    p.call("crud", json!({"action": "insert", "name": "c", "priority": 4}));
    assert_eq!(p.call("crud", json!({"action": "get_by", "name": "b"}))["priority"], 5);
    let rows = p.call("crud", json!({"action": "find", "opts": {"order": "priority DESC", "limit": 2}}));
    assert_eq!(rows.as_array().map(Vec::len), Some(2));
    assert_eq!(rows[0]["name"], "b");
    let one = p.call(
        "crud",
        json!({"action": "find_one", "opts": {"where": "priority < ?", "args": [4], "fields": ["name"]}}),
    );
    assert_eq!(one, json!({"name": "apple"}));
    assert_eq!(p.call("crud", json!({"action": "count"}))["n"], 3);
    assert_eq!(p.call("crud", json!({"action": "count", "opts": {"where": "priority > 3"}}))["n"], 2);
    assert_eq!(p.call("crud", json!({"action": "exists"}))["yes"], true);
    assert_eq!(
        p.call("crud", json!({"action": "exists", "opts": {"where": "name = ?", "args": ["zz"]}}))["yes"],
        false
    );
    assert_eq!(
        p.call("crud", json!({"action": "pluck", "column": "name", "opts": {"order": "_id"}})),
        json!(["apple", "b", "c"])
    );
    assert_eq!(p.call("crud", json!({"action": "list", "limit": 2})).as_array().map(Vec::len), Some(2));

    p.call("crud", json!({"action": "update", "id": id, "data": {"name": "y"}}));
    assert_eq!(p.call("crud", json!({"action": "get", "id": id}))["name"], "y");
    p.call("crud", json!({"action": "delete", "id": id}));
    assert_eq!(p.call("crud", json!({"action": "count"}))["n"], 2);

    let schema = p.call("crud", json!({"action": "schema"}));
    assert_eq!(
        schema,
        json!({"name": "items", "system_key": true, "col_count": 3, "first": "name", "first_type": "text",
               "first_required": true, "insert_policy": "own"})
    );
    let valid = p.call("crud", json!({"action": "validate", "data": {"name": "hello", "count": 5}}));
    assert_eq!(valid, json!({"valid": true}));
    let invalid = p.call("crud", json!({"action": "validate", "data": {"name": "hello", "count": "not_a_number"}}));
    assert_eq!(invalid, json!({"valid": false, "error": "column \"count\" expects integer, got string"}));
    let missing = p.call("crud", json!({"action": "validate", "data": {"count": 1}}));
    assert_eq!(missing["error"], "column \"name\" is required");
    let unknown = p.call("crud", json!({"action": "validate", "data": {"name": "a", "colour": "red"}}));
    assert_eq!(unknown["error"], "column \"colour\" does not exist in items");
}

#[test]
fn seed_upsert_and_empty_results() {
    let p = peer(&[("crud", CRUD)]);
    let rows = json!([{"name": "apple"}, {"name": "banana"}, {"priority": 1}]);
    // The row without its required name is skipped, as goop2's seed skips rows it cannot insert.
    assert_eq!(p.call("crud", json!({"action": "seed", "rows": rows}))["n"], 2);
    assert_eq!(p.call("crud", json!({"action": "seed", "rows": [{"name": "again"}]}))["n"], 0, "seed is idempotent");
    assert_eq!(p.rows("items").len(), 2);
    assert_eq!(p.rows("items")[0]["_owner"], HOST);

    let first =
        p.call("crud", json!({"action": "upsert", "key_col": "name", "data": {"name": "cherry", "priority": 1}}));
    let again =
        p.call("crud", json!({"action": "upsert", "key_col": "name", "data": {"name": "cherry", "priority": 9}}));
    assert_eq!((first, again), (json!(3), json!(3)));
    assert_eq!(p.rows("items").len(), 3);
    assert_eq!(p.rows("items")[2]["priority"], 9);

    let empty = peer(&[("crud", CRUD)]);
    assert_eq!(empty.call("crud", json!({"action": "find"})), json!([]));
    assert_eq!(empty.call("crud", json!({"action": "pluck", "column": "name"})), json!([]));
    assert_eq!(empty.call("crud", json!({"action": "find_one"}))["error"], "not found");
}

#[test]
fn documented_reads_and_writes() {
    let script = r#"
function call(req)
    local posts = goop.orm("posts")
    local a = req.params.action
    if a == "find" then
        return posts:find({ where = "published = ?", args = { 1 }, fields = { "title", "slug" }, order = "_id DESC", limit = 10 })
    elseif a == "stats" then
        local scores = goop.orm("scores")
        return { total = scores:aggregate("COUNT(*) as n, SUM(score) as total")[1],
                 per_player = scores:aggregate("player, SUM(score) as total", { group_by = "player" }),
                 categories = goop.orm("notes"):distinct("category") }
    elseif a == "cards" then
        local cards = goop.orm("cards")
        local moved = cards:update_where({ position = 99 }, { where = "column_id = ?", args = { 1 } })
        local bumped = cards:update_where({ position = goop.expr("position + 1") }, { where = "column_id = ?", args = { 2 } })
        local gone = cards:delete_where({ where = "column_id = ? AND title = ?", args = { 1, "b" } })
        return { moved = moved, bumped = bumped, gone = gone, left = cards:pluck("position", { order = "_id" }) }
    elseif a == "no_where" then
        local n1, e1 = goop.orm("cards"):update_where({ position = 1 }, {})
        local n2, e2 = goop.orm("cards"):delete_where({})
        return { n1 = n1, e1 = e1, n2 = n2, e2 = e2 }
    elseif a == "missing" then
        local h, err = goop.orm("nonexistent")
        return { handle = h, err = err }
    end
end
"#;
    let p = peer(&[("doc", script)]);
    for (title, slug, published) in [("First", "first", 1), ("Draft", "draft", 0), ("Second", "second", 1)] {
        p.seed("posts", json!({"title": title, "slug": slug, "published": published}));
    }
    assert_eq!(
        p.call("doc", json!({"action": "find"})),
        json!([{"title": "Second", "slug": "second"}, {"title": "First", "slug": "first"}])
    );
    for (score, player) in [(100, "alice"), (250, "bob"), (50, "alice")] {
        p.seed("scores", json!({"score": score, "player": player}));
    }
    for (title, category) in [("a", "selling"), ("b", "event"), ("c", "selling")] {
        p.seed("notes", json!({"title": title, "category": category}));
    }
    let stats = p.call("doc", json!({"action": "stats"}));
    assert_eq!(stats["total"], json!({"n": 3, "total": 400}));
    assert_eq!(stats["per_player"], json!([{"player": "alice", "total": 150}, {"player": "bob", "total": 250}]));
    assert_eq!(stats["categories"], json!(["event", "selling"]));

    for (title, column, position) in [("a", 1, 0), ("b", 1, 1), ("c", 2, 0), ("d", 2, 5)] {
        p.seed("cards", json!({"title": title, "column_id": column, "position": position}));
    }
    let cards = p.call("doc", json!({"action": "cards"}));
    assert_eq!(cards, json!({"moved": 2, "bumped": 2, "gone": 1, "left": [99, 1, 6]}));
    let no_where = p.call("doc", json!({"action": "no_where"}));
    assert_eq!(
        no_where,
        json!({"n1": 0, "e1": "update_where requires a where clause", "n2": 0, "e2": "delete_where requires a where clause"})
    );
    assert_eq!(p.rows("cards").len(), 3, "nothing deleted without a where");
    assert_eq!(p.call("doc", json!({"action": "missing"})), json!({"err": "no table \"nonexistent\""}));
}

/// goop2's expr.lua: `goop.expr` in update_where values; and insert stamps the caller.
#[test]
fn expr_increments_and_insert_stamps_the_caller() {
    let script = r#"
local items = nil
local function init() if not items then items = goop.orm("items") end end
function call(req)
    init()
    local p = req.params
    if p.action == "seed" then
        items:insert({ name = "a", priority = 5 })
        items:insert({ name = "b", priority = 10 })
        items:insert({ name = "c", priority = 3 })
        return { ok = true }
    elseif p.action == "increment_all" then
        return items:update_where({ priority = goop.expr("priority + " .. (p.amount or 1)) }, { where = "1=1" })
    elseif p.action == "decrement" then
        return items:update_where({ priority = goop.expr("priority - 1") }, { where = "priority > ?", args = { p.min or 0 } })
    elseif p.action == "mine" then
        return { id = items:insert({ name = "visitor's" }), owner = goop.peer.id }
    end
end
"#;
    let p = peer(&[("expr", script)]);
    p.call("expr", json!({"action": "seed"}));
    assert_eq!(p.call("expr", json!({"action": "increment_all", "amount": 10})), json!(3));
    let priorities: Vec<Value> = p.rows("items").iter().map(|r| r["priority"].clone()).collect();
    assert_eq!(priorities, vec![json!(15), json!(20), json!(13)]);
    assert_eq!(p.call("expr", json!({"action": "decrement", "min": 14})), json!(2));
    let priorities: Vec<Value> = p.rows("items").iter().map(|r| r["priority"].clone()).collect();
    assert_eq!(priorities, vec![json!(14), json!(19), json!(13)]);

    let mine = p.call_as(VISITOR, "expr", json!({"action": "mine"}));
    assert_eq!(mine["owner"], VISITOR);
    assert_eq!(p.rows("items")[3]["_owner"], VISITOR, "insert stamps _owner with goop.peer.id");
}
