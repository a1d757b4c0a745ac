//! The `goop` API core: json, kv, log, commands, and host modules scoped to data functions.

mod common;
use std::sync::Arc;

use common::*;
use goop_script::mlua::{Lua, Table};
use goop_script::{Error, HostModule, Scope};
use serde_json::json;

fn echo_call(site: &Site, params: serde_json::Value) -> serde_json::Value {
    site.write("functions/echo.lua", "function call(r) return r.params end");
    call(&site.engine(), "echo", params).unwrap()
}

#[test]
fn params_and_results_round_trip() {
    let site = Site::new();
    let v = json!({"a": [1, 2.5, "x", true, {"b": []}], "n": -3, "s": "ünï", "o": {"k": [[1], [2]]}});
    assert_eq!(echo_call(&site, v.clone()), v);
    assert_eq!(echo_call(&site, json!([])), json!([]));
    assert_eq!(echo_call(&site, json!({})), json!([]), "the empty table encodes as []");
}

#[test]
fn json_encode_decode_from_scripts() {
    let site = Site::new();
    site.write(
        "functions/j.lua",
        r#"function call(r)
            local s = goop.json.encode({ list = {1, 2, 3}, obj = { a = "b" }, empty = {} })
            local back = goop.json.decode(s)
            return { s = s, n = #back.list, a = back.obj.a }
        end"#,
    );
    let got = call(&site.engine(), "j", json!({})).unwrap();
    let s: serde_json::Value = serde_json::from_str(got["s"].as_str().unwrap()).unwrap();
    assert_eq!(s, json!({"list": [1, 2, 3], "obj": {"a": "b"}, "empty": []}));
    assert_eq!(got["n"], 3);
    assert_eq!(got["a"], "b");
}

#[test]
fn json_failures_return_nil_and_error() {
    let cases = [
        ("goop.json.encode(t)", "local t = {} t.self = t"),
        ("goop.json.encode({ x = 0/0 })", ""),
        ("goop.json.encode({ x = math.huge })", ""),
        ("goop.json.encode({ f = print })", ""),
        ("goop.json.encode(deep)", "local deep = {} local cur = deep for i = 1, 200 do cur.n = {} cur = cur.n end"),
        ("goop.json.decode('{not json')", ""),
        ("goop.json.decode(string.rep('[', 500) .. string.rep(']', 500))", ""),
    ];
    for (expr, setup) in cases {
        let site = Site::new();
        site.write(
            "t.lua",
            &format!("function handle() {setup} local v, err = {expr} return tostring(v) .. '|' .. type(err) end"),
        );
        assert_eq!(cmd(&site.engine(), "t", "").unwrap().as_deref(), Some("nil|string"), "{expr}");
    }
}

#[test]
fn results_that_cannot_be_encoded_are_errors() {
    let site = Site::new();
    site.write("functions/cyc.lua", "function call() local t = {} t[1] = t return t end");
    site.write("functions/fn.lua", "function call() return { f = function() end } end");
    let engine = site.engine();
    for name in ["cyc", "fn"] {
        let err = call(&engine, name, json!({})).unwrap_err();
        assert!(matches!(err, Error::BadResult { .. }), "{name}: {err}");
    }
}

#[test]
fn kv_persists_per_script_across_engines() {
    let site = Site::new();
    site.write(
        "functions/store.lua",
        r#"function call(r)
            if r.params.set then goop.kv.set(r.params.key, r.params.value) end
            if r.params.del then goop.kv.del(r.params.key) end
            return { value = goop.kv.get(r.params.key) }
        end"#,
    );
    site.write("functions/other.lua", "function call(r) return { value = goop.kv.get(r.params.key) } end");
    let engine = site.engine();
    let v = json!({"n": 1, "list": ["a"], "ok": true});
    call(&engine, "store", json!({"set": true, "key": "k", "value": v})).unwrap();
    drop(engine);
    let engine = site.engine();
    assert_eq!(call(&engine, "store", json!({"key": "k"})).unwrap(), json!({"value": v}));
    assert_eq!(call(&engine, "other", json!({"key": "k"})).unwrap(), json!([]), "kv is per script");
    call(&engine, "store", json!({"del": true, "key": "k"})).unwrap();
    assert_eq!(call(&engine, "store", json!({"key": "k"})).unwrap(), json!([]));
    // A data function's store: `.state/functions/NAME.json` (a command's is `.state/NAME.json`).
    let file = std::fs::read_to_string(site.path().join(".state/functions/store.json")).unwrap();
    assert_eq!(file, "{}");
}

#[test]
fn kv_limits_are_enforced() {
    let site = Site::new();
    site.write("big.lua", "function handle() goop.kv.set('k', string.rep('x', 70000)) return 'stored' end");
    site.write("many.lua", "function handle() for i = 1, 1001 do goop.kv.set('k' .. i, i) end return 'stored' end");
    site.write(
        "fine.lua",
        "function handle() goop.kv.set('k', string.rep('x', 1000)) return goop.kv.get('k'):sub(1, 3) end",
    );
    let mut c = site.config();
    c.timeout = std::time::Duration::from_secs(30); // 1000 fsynced writes on a slow disk
    let engine = goop_script::Engine::new(c).unwrap();
    let err = cmd(&engine, "big", "").unwrap_err();
    assert!(err.to_string().contains("64 KB"), "{err}");
    assert!(!site.path().join(".state/big.json").exists(), "nothing written");
    let err = cmd(&engine, "many", "").unwrap_err();
    assert!(err.to_string().contains("1000 keys"), "{err}");
    let kept: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(site.path().join(".state/many.json")).unwrap()).unwrap();
    assert_eq!(kept.len(), 1000, "the first 1000 keys stay");
    assert_eq!(cmd(&engine, "fine", "").unwrap().as_deref(), Some("xxx"));
}

#[test]
fn corrupt_kv_file_is_an_error_and_left_alone() {
    let site = Site::new();
    std::fs::create_dir_all(site.path().join(".state")).unwrap();
    std::fs::write(site.path().join(".state/t.json"), "{ broken").unwrap();
    site.write("t.lua", "function handle() goop.kv.set('a', 'b') return 'stored' end");
    let err = cmd(&site.engine(), "t", "").unwrap_err().to_string();
    // The caller learns which store, never where it lives (the owner's log has the path).
    assert!(err.contains("kv store of t is unreadable"), "{err}");
    assert!(!err.contains(&*site.path().to_string_lossy()) && !err.contains(".state"), "{err}");
    assert_eq!(std::fs::read_to_string(site.path().join(".state/t.json")).unwrap(), "{ broken");
}

#[test]
fn kv_disabled_removes_the_module() {
    let site = Site::new();
    site.write("t.lua", "function handle() return type(goop.kv) end");
    let mut c = site.config();
    c.kv_dir = None;
    let engine = goop_script::Engine::new(c).unwrap();
    assert_eq!(cmd(&engine, "t", "").unwrap().as_deref(), Some("nil"));
}

#[test]
fn commands_are_listed_sorted() {
    let site = Site::new();
    site.write("zeta.lua", "function handle() end");
    site.write("Alpha.lua", "function handle() end");
    site.write("help.lua", "function handle() return table.concat(goop.commands(), ' ') end");
    site.write("functions/data.lua", "function call() end");
    let engine = site.engine();
    assert_eq!(cmd(&engine, "help", "").unwrap().as_deref(), Some("Alpha help zeta"));
    assert_eq!(engine.commands(), vec!["Alpha", "help", "zeta"]);
}

#[test]
fn log_and_print_do_not_fail() {
    let site = Site::new();
    site.write("t.lua", "function handle() goop.log.info('a', 1) goop.log.warn('b') goop.log.error('c') print('d', nil) return 'logged' end");
    assert_eq!(cmd(&site.engine(), "t", "").unwrap().as_deref(), Some("logged"));
}

struct Db;
impl HostModule for Db {
    fn name(&self) -> &str {
        "db"
    }
    fn scope(&self) -> Scope {
        Scope::DataFunctions
    }
    fn build(&self, lua: &Lua) -> goop_script::mlua::Result<Table> {
        let t = lua.create_table()?;
        t.set("scalar", lua.create_function(|_, ()| Ok(42))?)?;
        Ok(t)
    }
}

#[test]
fn data_function_modules_are_hidden_from_commands() {
    let site = Site::new();
    site.write(
        "both.lua",
        "function handle() return type(goop.db) end\nfunction call() return { v = goop.db.scalar() } end",
    );
    let engine = goop_script::Engine::with_modules(site.config(), vec![Arc::new(Db)]).unwrap();
    assert_eq!(cmd(&engine, "both", "").unwrap().as_deref(), Some("nil"));
    assert_eq!(call(&engine, "both", json!({})).unwrap(), json!({"v": 42}));
}

#[test]
fn kv_incr_loses_no_increment_across_threads_and_engines() {
    let site = Site::new();
    site.write("functions/count.lua", "function call() return goop.kv.incr('n') end");
    // Two engines on one folder stand for two processes: nothing is shared but the files.
    let engines = [std::sync::Arc::new(site.engine()), std::sync::Arc::new(site.engine())];
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let engine = engines[i % 2].clone();
            std::thread::spawn(move || {
                (0..50).map(|_| call(&engine, "count", json!({})).unwrap().as_i64().unwrap()).collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seen: Vec<i64> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    seen.sort_unstable();
    // 400 acknowledged increments: every one counted, each answered with its own number.
    assert_eq!(seen, (1..=400).collect::<Vec<_>>());
    let file = std::fs::read_to_string(site.path().join(".state/functions/count.json")).unwrap();
    assert_eq!(file, r#"{"n":400}"#);
}

#[test]
fn kv_sees_a_hand_edit_and_incr_refuses_what_is_not_a_number() {
    let site = Site::new();
    site.write(
        "functions/kv.lua",
        "function call(r) if r.params.by then return goop.kv.incr('n', r.params.by) end return goop.kv.get('n') end",
    );
    let engine = site.engine();
    assert_eq!(call(&engine, "kv", json!({"by": 2.5})).unwrap(), json!(2.5));
    std::fs::write(site.path().join(".state/functions/kv.json"), r#"{"n": 10}"#).unwrap();
    assert_eq!(call(&engine, "kv", json!({})).unwrap(), json!(10), "the running engine reads the edit");
    assert_eq!(call(&engine, "kv", json!({"by": -3})).unwrap(), json!(7));
    std::fs::write(site.path().join(".state/functions/kv.json"), r#"{"n": "ten"}"#).unwrap();
    let err = call(&engine, "kv", json!({"by": 1})).unwrap_err().to_string();
    assert!(err.contains(r#"the value of "n" is not a number"#), "{err}");
}
