//! Limits hold against hostile scripts: loops, bombs, deep recursion, escapes through pcall.

mod common;
use std::time::{Duration, Instant};

use common::*;
use goop_script::{Error, MAX_REPLY_BYTES, TRUNCATED};

/// Runs `body` as `handle` and expects it to fail with a timeout within a generous margin.
fn assert_times_out(body: &str) {
    let site = Site::new();
    site.write("t.lua", &format!("function handle(args)\n{body}\nreturn 'escaped' end"));
    site.write("ok.lua", "function handle() return 'fine' end");
    let engine = site.engine();
    let start = Instant::now();
    let err = cmd(&engine, "t", "").expect_err(body);
    assert!(matches!(err, Error::Timeout { .. }), "{body}: {err}");
    assert!(start.elapsed() < Duration::from_secs(10), "{body}: took {:?}", start.elapsed());
    // The engine keeps serving after a runaway script.
    assert_eq!(cmd(&engine, "ok", "").unwrap().as_deref(), Some("fine"));
}

#[test]
fn plain_infinite_loop_times_out() {
    assert_times_out("while true do end");
}

#[test]
fn loop_inside_pcall_cannot_swallow_the_timeout() {
    assert_times_out("while true do pcall(function() while true do end end) end");
    assert_times_out("pcall(function() while true do end end)");
    assert_times_out(
        "for i = 1, 1e12 do xpcall(function() while true do end end, function() while true do end end) end",
    );
}

#[test]
fn loop_inside_coroutine_times_out() {
    assert_times_out("local co = coroutine.wrap(function() while true do end end) co()");
    assert_times_out("while true do local co = coroutine.create(function() while true do coroutine.yield() end end) coroutine.resume(co) end");
}

#[test]
fn pathological_pattern_times_out() {
    assert_times_out("local s = string.rep('a', 5000) while true do string.find(s, '.-.-.-.-.-.-b') end");
}

fn assert_out_of_memory(body: &str) {
    let site = Site::new();
    site.write("t.lua", &format!("function handle(args)\n{body}\nreturn 'escaped' end"));
    site.write("ok.lua", "function handle() local t = {} for i = 1, 1000 do t[i] = i end return 'fine' end");
    let engine = site.engine();
    let err = cmd(&engine, "t", "").expect_err(body);
    assert!(matches!(err, Error::Memory { limit_mb: 10, .. }), "{body}: {err}");
    assert_eq!(cmd(&engine, "ok", "").unwrap().as_deref(), Some("fine"));
}

#[test]
fn string_bombs_hit_the_memory_limit() {
    assert_out_of_memory("local s = 'x' while true do s = s .. s end");
    assert_out_of_memory("local s = string.rep('x', 1e9)");
}

#[test]
fn table_bomb_hits_the_memory_limit() {
    assert_out_of_memory("local t = {} local i = 0 while true do i = i + 1 t[i] = {i} end");
}

#[test]
fn memory_error_inside_pcall_still_fails_the_call() {
    // pcall may catch the allocation failure, but the call ends either over the limit or clean.
    let site = Site::new();
    site.write("t.lua", "function handle() local ok = pcall(function() local t = {} while true do t[#t+1] = string.rep('y', 1000) end end) return tostring(ok) end");
    let got = cmd(&site.engine(), "t", "");
    match got {
        Ok(r) => assert_eq!(r.as_deref(), Some("false")),
        Err(e) => assert!(matches!(e, Error::Memory { .. }), "{e}"),
    }
}

#[test]
fn deep_recursion_is_stopped() {
    let site = Site::new();
    site.write("t.lua", "local function f(n) return 1 + f(n + 1) end function handle() return f(1) end");
    site.write("ok.lua", "function handle() return 'fine' end");
    let engine = site.engine();
    let err = cmd(&engine, "t", "").unwrap_err();
    assert!(matches!(err, Error::Runtime { .. } | Error::Memory { .. }), "{err}");
    assert!(err.to_string().contains("stack overflow") || matches!(err, Error::Memory { .. }), "{err}");
    assert_eq!(cmd(&engine, "ok", "").unwrap().as_deref(), Some("fine"));
}

#[test]
fn long_replies_are_cut_with_a_marker() {
    let site = Site::new();
    site.write("long.lua", "function handle() return string.rep('é', 5000) end");
    let reply = chat(&site.engine(), "!long");
    assert!(reply.len() <= MAX_REPLY_BYTES, "{}", reply.len());
    assert!(reply.ends_with(TRUNCATED));
    assert!(reply.starts_with("éé"));
}

#[test]
fn runtime_errors_name_script_and_line() {
    let site = Site::new();
    site.write(
        "functions/fail.lua",
        "function call(request)\n  local x = nil\n  error('bad input: ' .. tostring(request.params.v))\nend",
    );
    let err = call(&site.engine(), "fail", serde_json::json!({"v": 7})).unwrap_err();
    match &err {
        Error::Runtime { script, message, .. } => {
            assert_eq!(script, "fail");
            assert_eq!(message, "functions/fail.lua:3: bad input: 7");
        }
        other => panic!("expected a runtime error, got {other}"),
    }
}

#[test]
fn host_functions_see_the_same_deadline() {
    use goop_script::mlua::{Lua, Table};
    use goop_script::{HostModule, Invocation, Scope};
    use std::sync::Arc;

    struct Slow;
    impl HostModule for Slow {
        fn name(&self) -> &str {
            "slow"
        }
        fn scope(&self) -> Scope {
            Scope::All
        }
        fn build(&self, lua: &Lua) -> goop_script::mlua::Result<Table> {
            let t = lua.create_table()?;
            // A well-behaved host call: waits at most until the invocation's deadline.
            t.set(
                "wait",
                lua.create_function(|lua, secs: f64| {
                    let left = lua.app_data_ref::<Invocation>().map(|i| i.remaining()).unwrap_or_default();
                    std::thread::sleep(Duration::from_secs_f64(secs).min(left));
                    Ok(left.as_secs_f64())
                })?,
            )?;
            Ok(t)
        }
    }

    let site = Site::new();
    site.write("t.lua", "function handle() local left = goop.slow.wait(30) while true do end end");
    let engine = goop_script::Engine::with_modules(site.config(), vec![Arc::new(Slow)]).unwrap();
    let start = Instant::now();
    let err = cmd(&engine, "t", "").unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
}

#[test]
fn library_loops_keep_the_deadline() {
    // Luau's own find and split compare a needle at every position, and sort compares long
    // strings O(n log n) times, each in one C call the interrupt never sees: minutes on a few
    // MB. Find and split are now linear; sort checks the deadline at every comparison.
    let site = Site::new();
    let needle = "local hay = string.rep('x', 2000000) local needle = string.rep('x', 1000000) .. 'y'";
    site.write("find.lua", &format!("function handle() {needle} return tostring(hay:find(needle, 1, true)) end"));
    site.write("pattern.lua", &format!("function handle() {needle} return tostring(string.find(hay, needle)) end"));
    site.write("split.lua", &format!("function handle() {needle} return #hay:split(needle) end"));
    let engine = site.engine();
    for name in ["find", "pattern", "split"] {
        let start = Instant::now();
        let want = if name == "split" { "1" } else { "nil" };
        assert_eq!(cmd(&engine, name, "").unwrap().as_deref(), Some(want), "{name}");
        assert!(start.elapsed() < Duration::from_secs(1), "{name}: {:?}", start.elapsed());
    }
    assert_times_out(
        "local a, b = string.rep('x', 2300000), string.rep('x', 2300001) local t = table.create(290000, a) for i = 2, 290000, 2 do t[i] = b end table.sort(t)",
    );
    // A C function as the comparator: each comparison scans a 600,000-slot table.
    assert_times_out(
        "local big = table.create(600000, 0) local t = table.create(20000, big) table.sort(t, table.find)",
    );
}

#[test]
fn find_split_and_sort_behave_as_luau_documents() {
    let cases = [
        ("('hello world'):find('o w')", "5 7"),
        ("('a.b'):find('.', 1, true)", "2 2"),
        ("('a.b'):find('%.')", "2 2"),
        ("('abcabc'):find('c', -2)", "6 6"),
        ("('abc'):find('', 10)", "nil"),
        ("('abc'):find('', 4)", "4 3"),
        ("('abc'):find('b', -10)", "2 2"),
        ("('abc'):find('x')", "nil"),
        ("table.concat(('a,b,,c'):split(), '|')", "a|b||c"),
        ("table.concat(('a::b'):split('::'), '|')", "a|b"),
        ("#('abc'):split('')", "4"),
        ("table.concat((''):split(','), '|')", ""),
        ("(function() local t = {'b', 'c', 'a'} table.sort(t) return table.concat(t) end)()", "abc"),
        ("(function() local t = {3, 1, 2} table.sort(t, function(x, y) return x > y end) return table.concat(t) end)()", "321"),
        ("select(2, pcall(table.sort, {1, 'a'}))", "error"),
    ];
    for (expr, want) in cases {
        let site = Site::new();
        site.write(
            "t.lua",
            &format!("function handle() local r = {{ {expr} }} for i = 1, #r do r[i] = tostring(r[i]) end if #r == 0 then return 'nil' end local s = table.concat(r, ' ') if s:find('attempt to compare', 1, true) then return 'error' end return s end"),
        );
        assert_eq!(cmd(&site.engine(), "t", "").unwrap().as_deref(), Some(want), "{expr}");
    }
}
