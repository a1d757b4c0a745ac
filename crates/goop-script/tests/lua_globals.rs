//! `_G` as scripts written for goop2 (gopher-lua, a Lua state per call) use it: the call's own
//! globals, so `_G[name]` finds the script's functions. Nothing written through it outlives the call.

mod common;
use common::*;
use serde_json::json;

/// An engine on one worker, so every call runs on the same VM.
fn one_vm(site: &Site) -> goop_script::Engine {
    let mut c = site.config();
    c.workers = 1;
    goop_script::Engine::new(c).unwrap()
}

#[test]
fn g_dispatches_to_the_scripts_own_functions() {
    let site = Site::new();
    site.write(
        "functions/notes.lua",
        r#"
        function action_add(p) return { added = p.text } end
        function action_count(p) return { count = 3 } end
        function call(request)
            local handler = _G["action_" .. request.params.action]
            if type(handler) ~= "function" then error("unknown action") end
            return handler(request.params)
        end"#,
    );
    let engine = site.engine();
    assert_eq!(call(&engine, "notes", json!({ "action": "add", "text": "hi" })).unwrap(), json!({ "added": "hi" }));
    assert_eq!(call(&engine, "notes", json!({ "action": "count" })).unwrap(), json!({ "count": 3 }));
    let err = call(&engine, "notes", json!({ "action": "print" })).unwrap_err();
    assert!(err.to_string().contains("unknown action"), "{err}");
}

#[test]
fn g_reads_and_writes_the_calls_globals() {
    let checks = [
        ("(function() _G.x = 1 return x end)()", "1"),
        ("(function() y = 2 return _G.y end)()", "2"),
        ("_G.goop == goop and _G.goop.peer.id", "12D3KooWVisitor"),
        ("_G.string == string and _G.string.upper('a')", "A"),
        ("_G.print == print and _G.math.floor(2.5)", "2"),
        ("_G._G == _G and rawget(_G, '_G') == _G", "true"),
        ("type(_G.handle)", "function"),
        ("rawget(_G, 'handle') == handle", "true"),
        // The libraries and base functions sit behind the call's globals, not in them.
        ("rawget(_G, 'print') == nil and rawget(_G, 'string') == nil", "true"),
    ];
    for (expr, want) in checks {
        assert_eq!(eval(expr).unwrap(), Some(want.to_string()), "{expr}");
    }
}

#[test]
fn pairs_over_g_lists_the_scripts_globals() {
    let site = Site::new();
    site.write(
        "list.lua",
        r#"
        greeting = "hi"
        function helper() end
        function handle()
            local names = {}
            for name in pairs(_G) do names[#names + 1] = name end
            table.sort(names)
            return table.concat(names, ",")
        end"#,
    );
    assert_eq!(cmd(&site.engine(), "list", "").unwrap().as_deref(), Some("_G,goop,greeting,handle,helper"));
}

#[test]
fn nothing_written_through_g_reaches_another_call() {
    let site = Site::new();
    site.write("writer.lua", "function handle() _G.shared = 'secret' _G.string = { upper = print } return 'ok' end");
    site.write("reader.lua", "function handle() return tostring(_G.shared) .. ' ' .. string.upper('a') end");
    let engine = one_vm(&site);
    assert_eq!(cmd(&engine, "writer", "").unwrap().as_deref(), Some("ok"));
    assert_eq!(cmd(&engine, "reader", "").unwrap().as_deref(), Some("nil A"));
    assert_eq!(cmd(&engine, "writer", "").unwrap().as_deref(), Some("ok"));
    assert_eq!(cmd(&engine, "writer", "").unwrap().as_deref(), Some("ok"), "the writer's own next call starts clean");
}
