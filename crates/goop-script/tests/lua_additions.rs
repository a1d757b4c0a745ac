//! Helpers a script adds to `string`, `table`, `math` … (`function string.trim(s) … end`),
//! as scripts written for goop2 do: they work for the call that adds them, through `.` and `:`,
//! and no other call or script sees them; the libraries' own functions stay as they are.

mod common;
use common::*;

/// An engine on one worker, so every call runs on the same VM.
fn one_vm(site: &Site) -> goop_script::Engine {
    let mut c = site.config();
    c.workers = 1;
    goop_script::Engine::new(c).unwrap()
}

const TRIM: &str = r#"function string.trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end"#;

#[test]
fn a_script_adds_helpers_to_the_libraries_for_its_own_call() {
    let site = Site::new();
    site.write(
        "helpers.lua",
        &format!(
            r#"{TRIM}
            function table.count(t) local n = 0 for _ in pairs(t) do n = n + 1 end return n end
            function math.between(x, lo, hi) return math.max(lo, math.min(hi, x)) end
            function os.today() return os.date("!%F", 0) end
            utf8.first = function(s) return utf8.char(utf8.codepoint(s, 1)) end
            bit32.twice = function(x) return bit32.lshift(x, 1) end
            coroutine.run = function(f) return coroutine.wrap(f)() end
            function handle(args)
                return string.trim(args) .. "|" .. ("  b "):trim() .. "|" .. table.count({{ a = 1, b = 2 }})
                    .. "|" .. math.between(12, 0, 10) .. "|" .. os.today() .. "|" .. utf8.first("été")
                    .. "|" .. bit32.twice(21) .. "|" .. coroutine.run(function() return "co" end)
            end"#
        ),
    );
    assert_eq!(cmd(&site.engine(), "helpers", "  a  ").unwrap().as_deref(), Some("a|b|2|10|1970-01-01|é|42|co"));
}

#[test]
fn a_helper_can_be_redefined_and_removed_within_the_call() {
    let expr = r#"(function()
        string.shout = function(s) return s:upper() end
        local first = ("a"):shout()
        string.shout = function(s) return s:upper() .. "!" end
        local second = ("a"):shout()
        string.shout = nil
        return first .. second .. tostring(string.shout)
    end)()"#;
    assert_eq!(eval(expr).unwrap().as_deref(), Some("AA!nil"));
}

#[test]
fn another_script_and_the_next_call_do_not_see_the_helpers() {
    let site = Site::new();
    site.write("a.lua", &format!("{TRIM}\nfunction handle() return string.trim('  x ') end"));
    site.write(
        "b.lua",
        "function handle() return tostring(string.trim) .. ' ' .. tostring(('x').trim) .. ' ' .. string.format('%d', 7) end",
    );
    site.write("c.lua", "function handle() return tostring(string.trim) end");
    let engine = one_vm(&site);
    assert_eq!(cmd(&engine, "a", "").unwrap().as_deref(), Some("x"));
    assert_eq!(cmd(&engine, "b", "").unwrap().as_deref(), Some("nil nil 7"));
    assert_eq!(cmd(&engine, "a", "").unwrap().as_deref(), Some("x"));
    assert_eq!(cmd(&engine, "c", "").unwrap().as_deref(), Some("nil"));
}

#[test]
fn helpers_are_forgotten_after_a_failed_call_too() {
    let site = Site::new();
    site.write("fails.lua", &format!("{TRIM}\nfunction handle() error('bad input') end"));
    site.write("slow.lua", &format!("{TRIM}\nfunction handle() while true do end end"));
    site.write("probe.lua", "function handle() return tostring(string.trim) .. tostring(('').trim) end");
    let engine = one_vm(&site);
    assert!(cmd(&engine, "fails", "").is_err());
    assert_eq!(cmd(&engine, "probe", "").unwrap().as_deref(), Some("nilnil"));
    assert!(matches!(cmd(&engine, "slow", ""), Err(goop_script::Error::Timeout { .. })));
    assert_eq!(cmd(&engine, "probe", "").unwrap().as_deref(), Some("nilnil"));
}

#[test]
fn library_functions_cannot_be_replaced_even_for_the_own_call() {
    for stmt in [
        "string.format = function() return 'owned' end",
        "function string.upper(s) return s end",
        "table.insert = nil",
        "math.floor = math.ceil",
        "os.date = os.time",
        "coroutine.wrap = print",
        "rawset(string, 'trim', print)",
        "setmetatable(string, {})",
        "getmetatable(string).__index = {}",
    ] {
        let site = Site::new();
        site.write("t.lua", &format!("function handle() {stmt} return 'changed' end"));
        let err = cmd(&site.engine(), "t", "").expect_err(stmt);
        assert!(matches!(err, goop_script::Error::Runtime { .. }), "{stmt}: {err}");
    }
    assert_eq!(eval("getmetatable(string)").unwrap().as_deref(), Some("false"));
}
