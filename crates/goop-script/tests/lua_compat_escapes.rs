//! Hostile scripts against `_G` and the per-call library additions: the frozen globals stay
//! out of reach and read-only, and nothing a call adds to a library reaches a later call.

mod common;
use common::*;

/// Runs `attack` as one call of one script, then `probe` as the next call of another script
/// on the same VM; `probe` must see a clean world.
fn assert_isolated(attack: &str, probe: &str) {
    let site = Site::new();
    site.write("attack.lua", &format!("function handle() {attack} return 'done' end"));
    site.write("probe.lua", &format!("function handle() return tostring({probe}) end"));
    let mut c = site.config();
    c.workers = 1;
    let engine = goop_script::Engine::new(c).unwrap();
    assert_eq!(cmd(&engine, "attack", "").unwrap().as_deref(), Some("done"), "attack: {attack}");
    assert_eq!(cmd(&engine, "probe", "").unwrap().as_deref(), Some("true"), "after: {attack}");
}

#[test]
fn g_leads_to_no_shared_table() {
    let checks = [
        ("getmetatable(_G)", "false"),
        ("pcall(setmetatable, _G, {})", "false"),
        ("_G._G._G == _G and rawget(_G._G, '_G') == _G", "true"),
        // No table reachable from `_G` holds the frozen globals themselves.
        ("rawget(_G, 'print') == nil and rawget(_G._G, 'pairs') == nil", "true"),
        ("type(_G.getfenv) .. type(_G.setfenv) .. type(_G.load) .. type(_G.debug)", "nilnilnilnil"),
        ("pcall(function() return getmetatable(_G).__index end)", "false"),
        ("getmetatable(string)", "false"),
        ("pcall(setmetatable, string, {})", "false"),
        ("pcall(rawset, string, 'trim', print)", "false"),
        ("pcall(rawset, getmetatable('').__index, 'trim', print)", "false"),
    ];
    for (expr, want) in checks {
        assert_eq!(eval(expr).unwrap(), Some(want.to_string()), "{expr}");
    }
}

#[test]
fn writes_through_g_stay_in_the_call() {
    assert_isolated(
        "rawset(_G, 'string', { format = function() return 'owned' end })",
        "string.format('%d', 1) == '1'",
    );
    assert_isolated("_G._G.leak = print", "leak == nil and _G.leak == nil");
    assert_isolated("_G.goop = { peer = { id = 'forged' } }", "goop.peer.id == '12D3KooWVisitor'");
}

#[test]
fn functions_added_to_libraries_do_not_survive_the_call() {
    assert_isolated(
        "local secret = 'stale' function string.leak() return secret end table.leak = string.leak math.leak = string.leak",
        "string.leak == nil and ('').leak == nil and table.leak == nil and math.leak == nil",
    );
    // gopher-lua style: through the string metatable's `__index`.
    assert_isolated("getmetatable('').__index.leak = function() return 'stale' end", "('x').leak == nil");
    assert_isolated(
        "_G.string.leak = print utf8.leak = print bit32.leak = print",
        "string.leak == nil and utf8.leak == nil and bit32.leak == nil",
    );
    assert_isolated(
        "local co = coroutine.create(function() string.leak = print coroutine.yield() end) coroutine.resume(co) os.held = co",
        "string.leak == nil and os.held == nil",
    );
}

#[test]
fn metamethod_names_added_to_a_library_change_nothing() {
    let expr = "(function() string.__index = function() return 'owned' end string.__newindex = print \
        return tostring(('x').anything) .. tostring(string.anything) .. ('x'):upper() end)()";
    assert_eq!(eval(expr).unwrap().as_deref(), Some("nilnilX"));
    assert_isolated("string.__index = function() return print end", "('x').anything == nil");
}

#[test]
fn additions_never_shadow_or_replace_library_functions() {
    // Within the call a replaced name keeps the library's function, for `.` and `:` alike.
    let expr = "(function() local ok = pcall(function() string.upper = function() return 'owned' end end) \
        return tostring(ok) .. string.upper('a') .. ('b'):upper() end)()";
    assert_eq!(eval(expr).unwrap().as_deref(), Some("falseAB"));
}
