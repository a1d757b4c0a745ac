//! Store tests: the spec's tic-tac-toe schema and scripts through a real engine, data-protocol
//! access policies from a visitor's side, hostile requests, and the walls of `goop.db`.
//! Helpers and fixtures here; the tests by topic in the modules below.

mod budgets;
mod costs;
mod db;
mod floods;
mod own;
mod policies;
mod props;
mod schema;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use goop::store::{DbModule, Store};
use goop_script::{Config, Engine, Peer};
use serde_json::{json, Value};
use tempfile::TempDir;

pub const HOST: &str = "12D3KooWHost";
pub const VISITOR: &str = "12D3KooWVisitor";
pub const OTHER: &str = "12D3KooWOther";

/// The spec's tic-tac-toe schema, verbatim.
pub const TTT_SCHEMA: &str = include_str!("spec/schema.sql");

/// Tables for the policy tests: `notes` with default policies, `secrets` read `own`,
/// `diary` read `owner`, `plain` without system columns, and a seed row.
pub const EXTRA_SCHEMA: &str = "
CREATE TABLE notes (
    _id INTEGER PRIMARY KEY AUTOINCREMENT, _owner TEXT NOT NULL,
    _created_at DATETIME DEFAULT CURRENT_TIMESTAMP, _updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    text TEXT NOT NULL DEFAULT ''
);
CREATE TABLE secrets (
    _id INTEGER PRIMARY KEY AUTOINCREMENT, _owner TEXT NOT NULL,
    _created_at DATETIME, _updated_at DATETIME, value TEXT
);
CREATE TABLE diary (
    _id INTEGER PRIMARY KEY AUTOINCREMENT, _owner TEXT NOT NULL,
    _created_at DATETIME, _updated_at DATETIME, entry TEXT
);
CREATE TABLE plain (name TEXT);
INSERT INTO notes (_owner, text) VALUES ('seed', 'hello');
";

pub const POLICIES: &str = r#"{"tables": {
    "games": {"read": "open", "insert": "none", "update": "none", "delete": "none"},
    "secrets": {"read": "own"},
    "diary": {"read": "owner", "insert": "owner"}
}}"#;

/// The spec's `move.lua`, verbatim.
pub const MOVE_LUA: &str = include_str!("spec/move.lua");

/// The spec's `ttt.lua`, verbatim.
pub const TTT_LUA: &str = include_str!("spec/ttt.lua");

/// Runs `goop.db.<fn>(sql, args...)` and reports `{ok, rows | value | error}`.
pub const SQL_LUA: &str = include_str!("sql.lua");

/// A peer folder with the tic-tac-toe site, the extra tables and the policies.
pub fn peer_dir() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("lua/functions")).unwrap();
    std::fs::write(site.join("schema.sql"), format!("{TTT_SCHEMA}\n{EXTRA_SCHEMA}")).unwrap();
    std::fs::write(site.join("schema.json"), POLICIES).unwrap();
    std::fs::write(site.join("lua/functions/ttt.lua"), TTT_LUA).unwrap();
    std::fs::write(site.join("lua/functions/move.lua"), MOVE_LUA).unwrap();
    std::fs::write(site.join("lua/functions/sql.lua"), SQL_LUA).unwrap();
    dir
}

pub fn engine(dir: &Path, store: &Store, timeout: Duration) -> Engine {
    let mut config = Config::new(dir.join("site/lua"));
    config.hot_reload = false;
    config.rate_limit_per_peer = 0;
    config.rate_limit_global = 0;
    config.timeout = timeout;
    config.local = Peer::new(HOST, "Host");
    Engine::with_modules(config, vec![Arc::new(DbModule::new(store.clone()))]).unwrap()
}

pub fn data(store: &Store, caller: &str, request: Value) -> Value {
    store.data_request(caller, &request)
}

/// The error text of a data answer that must have failed.
pub fn refused(store: &Store, caller: &str, request: Value) -> String {
    let answer = data(store, caller, request.clone());
    assert_eq!(answer["ok"], json!(false), "{request} should fail, got {answer}");
    answer["error"].as_str().unwrap_or_default().to_string()
}
