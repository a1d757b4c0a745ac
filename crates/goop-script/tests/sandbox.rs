//! The sandbox holds exactly the spec's lists: what is available works, what is removed is gone.

mod common;
use common::*;

#[test]
fn available_libraries_and_functions_work() {
    let checks = [
        ("string.upper('a') .. string.format('%d', 3) .. ('x'):rep(2)", "A3xx"),
        ("table.concat({1, 2}, ',') .. #table.pack(1, 2, 3)", "1,23"),
        ("math.floor(2.7) + math.max(1, 5)", "7"),
        ("type(os.time()) .. type(os.clock())", "numbernumber"),
        ("os.date('!%Y', 0)", "1970"),
        ("tonumber('12') + 1", "13"),
        ("tostring(nil)", "nil"),
        ("type({})", "table"),
        ("select('#', pairs({}))", "3"),
        ("select('#', ipairs({}))", "3"),
        ("next({}) == nil", "true"),
        ("select(2, 'a', 'b')", "b"),
        ("unpack({4, 5})", "4"),
        ("pcall(error, 'x')", "false"),
        ("xpcall(function() error('x') end, function(m) return m end)", "false"),
        ("select(2, pcall(assert, false, 'boom'))", "boom"),
    ];
    for (expr, want) in checks {
        assert_eq!(eval(expr).unwrap(), Some(want.to_string()), "{expr}");
    }
}

#[test]
fn removed_globals_are_nil() {
    for name in ["io", "require", "package", "debug", "loadfile", "dofile", "getfenv", "setfenv", "load", "loadstring"]
    {
        assert_eq!(eval(&format!("type({name})")).unwrap(), Some("nil".into()), "{name} should be removed");
    }
}

#[test]
fn os_keeps_only_time_functions() {
    for name in ["execute", "remove", "rename", "exit", "getenv", "tmpname", "difftime"] {
        assert_eq!(eval(&format!("type(os.{name})")).unwrap(), Some("nil".into()), "os.{name} should be removed");
    }
    for name in ["time", "date", "clock"] {
        assert_eq!(eval(&format!("type(os.{name})")).unwrap(), Some("function".into()), "os.{name} should stay");
    }
}

#[test]
fn libraries_cannot_be_modified() {
    for stmt in [
        "string.upper = nil",
        "table.insert = print",
        "math.pi = 3",
        "os.time = nil",
        "getmetatable('').__index = {}",
        "goop.json = nil",
        "goop.peer.id = 'someone else'",
        "goop.self.id = 'x'",
        "goop.log.info = nil",
        "rawset(string, 'x', 1)",
        "setmetatable(goop, {})",
    ] {
        let site = Site::new();
        site.write("t.lua", &format!("function handle() {stmt} return 'changed' end"));
        let err = cmd(&site.engine(), "t", "").expect_err(stmt);
        assert!(matches!(err, goop_script::Error::Runtime { .. }), "{stmt}: {err}");
    }
}

#[test]
fn bytecode_cannot_be_loaded_and_no_files_are_reachable() {
    // No way to turn a string into code, and no file API at all.
    assert_eq!(eval("type(string.dump)").unwrap(), Some("nil".into()));
    assert_eq!(eval("type(_G.io) .. type(_G.debug)").unwrap(), Some("nilnil".into()));
}
