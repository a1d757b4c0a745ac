//! Nothing one call does is visible to a later call or another caller.

mod common;
use common::*;
use goop_script::Peer;

/// Runs `attack` as one call, then `probe` as the next; `probe` must see a clean world.
fn assert_isolated(attack: &str, probe: &str) {
    let site = Site::new();
    site.write("attack.lua", &format!("function handle() {attack} end"));
    site.write("probe.lua", &format!("function handle() return tostring({probe}) end"));
    let mut c = site.config();
    c.workers = 1; // both calls run on the same VM
    let engine = goop_script::Engine::new(c).unwrap();
    let _ = cmd(&engine, "attack", "");
    assert_eq!(cmd(&engine, "probe", "").unwrap().as_deref(), Some("true"), "after: {attack}");
}

#[test]
fn globals_do_not_survive_a_call() {
    assert_isolated("leaked = 42 x = 1", "leaked == nil and x == nil");
    assert_isolated("pcall(function() _G.leaked = 1 end)", "leaked == nil");
}

#[test]
fn modified_libraries_do_not_survive_a_call() {
    assert_isolated("pcall(function() string.upper = function() return 'owned' end end)", "string.upper('a') == 'A'");
    assert_isolated("pcall(function() table.insert = nil end)", "type(table.insert) == 'function'");
    // Shadowing a library in the call's own globals is allowed, and stays in that call.
    assert_isolated("string = { upper = function() return 'owned' end }", "string.upper('a') == 'A'");
}

#[test]
fn stashed_closures_do_not_survive_a_call() {
    assert_isolated(
        "local f = function() return 'stale' end pcall(function() rawset(goop, 'stash', f) end) pcall(function() getmetatable('').stash = f end)",
        "goop.stash == nil and getmetatable('').stash == nil",
    );
}

#[test]
fn metatable_tricks_do_not_survive_a_call() {
    assert_isolated("pcall(setmetatable, _G, { __index = function() return 'owned' end })", "anything == nil");
    assert_isolated(
        "pcall(function() getmetatable('').__index = { len = function() return 99 end } end)",
        "('abc'):len() == 3",
    );
    assert_isolated("pcall(function() getmetatable(goop).__index = {} end)", "type(goop.json) == 'table'");
}

#[test]
fn top_level_state_is_fresh_each_call() {
    let site = Site::new();
    site.write("count.lua", "local n = 0\nfunction handle() n = n + 1 return tostring(n) end");
    let mut c = site.config();
    c.workers = 1;
    let engine = goop_script::Engine::new(c).unwrap();
    for _ in 0..3 {
        assert_eq!(cmd(&engine, "count", "").unwrap().as_deref(), Some("1"));
    }
}

#[test]
fn callers_see_their_own_identity() {
    let site = Site::new();
    site.write("who.lua", "function handle() return goop.peer.id .. '|' .. goop.peer.label .. '|' .. goop.self.id .. '|' .. goop.self.label end");
    let mut c = site.config();
    c.workers = 1;
    let engine = goop_script::Engine::new(c).unwrap();
    let a = engine.run_command(&Peer::new("A", "Alice"), "who", "").unwrap();
    let b = engine.run_command(&Peer::new("B", ""), "who", "").unwrap();
    assert_eq!(a.as_deref(), Some("A|Alice|12D3KooWSelf|Host"));
    assert_eq!(b.as_deref(), Some("B||12D3KooWSelf|Host"));
}
