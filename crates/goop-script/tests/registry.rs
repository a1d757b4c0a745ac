//! Script discovery, metadata, bad scripts next to good ones, and hot reload.

mod common;
use std::time::{Duration, Instant};

use common::*;
use goop_script::{ChatReply, Engine, Error, FunctionInfo};
use serde_json::json;

#[test]
fn commands_and_functions_are_found_by_running_the_chunk() {
    let site = Site::new();
    site.write("echo.lua", "--- Echo back\nfunction handle(a) return a end");
    site.write("quiz.lua", "--- A quiz\n--- @rate_limit 5\nfunction handle() return 'visit my site' end\nfunction call() return { ok = 1 } end");
    site.write("functions/add.lua", "--- Adds\nlocal function add(r) return r.params.a + r.params.b end\ncall = add");
    site.write(
        "functions/text.lua",
        "-- call(request) is mentioned but never defined\nlocal s = 'function call() end'",
    );
    let engine = site.engine();
    assert_eq!(
        engine.functions(),
        vec![
            FunctionInfo { name: "add".into(), description: "Adds".into() },
            FunctionInfo { name: "quiz".into(), description: "A quiz".into() },
        ]
    );
    assert_eq!(engine.commands(), vec!["echo", "quiz"]);
    let quiz = engine.scripts().into_iter().find(|s| s.name == "quiz").unwrap();
    assert_eq!(quiz.rate_limit, Some(5));
    assert!(quiz.has_handle && quiz.has_call);
}

#[test]
fn chat_parsing_follows_the_spec() {
    let site = Site::new();
    site.write("echo.lua", "function handle(args) return 'You said: ' .. args end");
    site.write("quiet.lua", "function handle() return '' end");
    site.write("none.lua", "function handle() end");
    let engine = site.engine();
    assert_eq!(chat(&engine, "  !echo London  "), "You said: London");
    assert_eq!(chat(&engine, "!ECHO a b  c"), "You said: a b  c");
    assert_eq!(chat(&engine, "!echo"), "You said: ");
    assert_eq!(chat(&engine, "!weather London"), "Unknown command: !weather. Try !help");
    assert_eq!(engine.handle_chat(&visitor(), "hello !echo"), ChatReply::NotACommand);
    assert_eq!(engine.handle_chat(&visitor(), "!quiet"), ChatReply::Silent);
    assert_eq!(engine.handle_chat(&visitor(), "!none"), ChatReply::Silent);
}

#[test]
fn errors_in_chat_become_a_reply() {
    let site = Site::new();
    site.write("boom.lua", "function handle() error('no city given') end");
    assert_eq!(chat(&site.engine(), "!boom"), "Error: boom.lua:1: no city given");
}

#[test]
fn name_clashes_prefer_the_folder_of_the_kind() {
    let site = Site::new();
    site.write("x.lua", "function handle() return 'top' end\nfunction call() return 'top' end");
    site.write("functions/x.lua", "function handle() return 'fn' end\nfunction call() return 'fn' end");
    let engine = site.engine();
    assert_eq!(cmd(&engine, "x", "").unwrap().as_deref(), Some("top"));
    assert_eq!(call(&engine, "x", json!({})).unwrap(), json!("fn"));
}

#[test]
fn a_broken_script_is_skipped_and_reported() {
    let site = Site::new();
    site.write("good.lua", "function handle() return 'fine' end");
    site.write("bad.lua", "function handle()\n  return 'x' +\nend");
    site.write("throws.lua", "local x = nil\nx.y = 1\nfunction handle() end");
    let engine = site.engine();
    assert_eq!(cmd(&engine, "good", "").unwrap().as_deref(), Some("fine"));
    let scripts = engine.scripts();
    let bad = scripts.iter().find(|s| s.name == "bad").unwrap();
    let err = bad.error.as_ref().unwrap();
    assert_eq!(err.line, Some(3), "{err}");
    assert!(!bad.loaded);
    let throws = scripts.iter().find(|s| s.name == "throws").unwrap().error.clone().unwrap();
    assert_eq!(throws.line, Some(2), "{throws}");
    // The caller learns the command exists but is broken, without the host's path; the error
    // carries the load error for the owner.
    let reply = engine.handle_chat(&visitor(), "!Bad");
    let unavailable = Error::CommandUnavailable { name: "Bad".into(), load_error: err.clone() };
    let text = "!Bad is unavailable: its script failed to load".to_string();
    assert_eq!(reply, ChatReply::Failed { reply: text, error: unavailable });
    assert!(matches!(
        engine.handle_chat(&visitor(), "!nope"),
        ChatReply::Failed { error: Error::CommandNotFound(_), .. }
    ));

    site.write("functions/half.lua", "function call(r)\n  return {\nend");
    engine.reload();
    let failed = call(&engine, "half", json!({})).unwrap_err();
    assert_eq!(failed.to_string(), "function half is unavailable: its script failed to load");
    let Error::FunctionUnavailable { load_error, .. } = failed else { panic!("{failed:?}") };
    assert!(load_error.file.ends_with("functions/half.lua") && load_error.line == Some(3), "{load_error}");
}

#[test]
fn a_script_that_loops_at_load_is_skipped() {
    let site = Site::new();
    site.write("spin.lua", "while true do end");
    site.write("good.lua", "function handle() return 'fine' end");
    let engine = site.engine();
    let spin = engine.scripts().into_iter().find(|s| s.name == "spin").unwrap();
    assert!(spin.error.unwrap().message.contains("timed out"));
    assert_eq!(cmd(&engine, "good", "").unwrap().as_deref(), Some("fine"));
}

#[test]
fn reload_keeps_the_last_good_version() {
    let site = Site::new();
    site.write("v.lua", "function handle() return 'one' end");
    let engine = site.engine();
    site.write("v.lua", "function handle() return 'two' end");
    engine.reload();
    assert_eq!(cmd(&engine, "v", "").unwrap().as_deref(), Some("two"));
    site.write("v.lua", "function handle( return 'three' end");
    engine.reload();
    assert_eq!(cmd(&engine, "v", "").unwrap().as_deref(), Some("two"), "broken edit keeps the last good one");
    assert!(engine.scripts()[0].error.is_some());
    std::fs::remove_file(site.path().join("v.lua")).unwrap();
    engine.reload();
    assert!(cmd(&engine, "v", "").is_err(), "deleted script is gone");
    assert!(engine.scripts().is_empty());
}

/// Waits (generously) until `f` holds, polling.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < give_up, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hot_reload_follows_edits_renames_and_deletes() {
    let site = Site::new();
    site.write("v.lua", "function handle() return 'one' end");
    let mut c = site.config();
    c.hot_reload = true;
    let engine = Engine::new(c).unwrap();
    let reply = |name: &str| cmd(&engine, name, "").ok().flatten();

    site.write("v.lua", "function handle() return 'two' end");
    eventually("edit picked up", || reply("v").as_deref() == Some("two"));

    site.write("v.lua", "function handle( broken");
    eventually("broken edit reported", || engine.scripts().iter().any(|s| s.error.is_some()));
    assert_eq!(reply("v").as_deref(), Some("two"));

    // An editor's safe save: write a temp file, then rename it over the script.
    site.write(".v.lua.tmp~", "function handle() return 'three' end");
    std::fs::rename(site.path().join(".v.lua.tmp~"), site.path().join("v.lua")).unwrap();
    eventually("renamed save picked up", || reply("v").as_deref() == Some("three"));

    std::fs::rename(site.path().join("v.lua"), site.path().join("w.lua")).unwrap();
    eventually("rename moves the command", || reply("w").as_deref() == Some("three") && reply("v").is_none());

    site.write("functions/f.lua", "function call() return { n = 1 } end");
    eventually("new function picked up", || call(&engine, "f", json!({})).is_ok());

    std::fs::remove_file(site.path().join("w.lua")).unwrap();
    eventually("delete removes the command", || reply("w").is_none());
}

#[test]
fn hot_reload_can_be_switched_off() {
    let site = Site::new();
    site.write("v.lua", "function handle() return 'one' end");
    let engine = site.engine(); // hot_reload = false
    site.write("v.lua", "function handle() return 'two' end");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(cmd(&engine, "v", "").unwrap().as_deref(), Some("one"));
}

#[test]
fn scripts_report_their_runs_and_last_error_with_its_line() {
    let site = Site::new();
    site.write("functions/div.lua", "function call(r)\n  if r.params.b == 0 then\n    error('divide by zero')\n  end\n  return r.params.a / r.params.b\nend");
    let engine = site.engine();
    assert_eq!(engine.call(&visitor(), "div", &json!({"a": 6, "b": 3})).unwrap(), json!(2));
    assert!(engine.call(&visitor(), "div", &json!({"a": 1, "b": 0})).is_err());
    let div = engine.scripts().into_iter().find(|s| s.name == "div").unwrap();
    assert_eq!((div.invocations, div.errors), (2, 1));
    let last = div.last_error.unwrap();
    assert!(last.contains("functions/div.lua:3") && last.contains("divide by zero"), "{last}");
}

#[test]
fn saving_in_place_never_drops_a_function() {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    let site = Site::new();
    site.write("functions/f.lua", "function call() return 1 end");
    let mut c = site.config();
    c.hot_reload = true;
    let engine = Arc::new(Engine::new(c).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let caller = {
        let (engine, stop, calls, failed) = (engine.clone(), stop.clone(), calls.clone(), failed.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                calls.fetch_add(1, Ordering::Relaxed);
                if call(&engine, "f", json!({})).is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    // An editor saving in place: truncate, then write in two parts (the file is briefly empty,
    // then cut short), 200 times.
    let path = site.path().join("functions/f.lua");
    for i in 0..200 {
        let mut file = std::fs::File::create(&path).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        file.write_all(b"function call() ").unwrap();
        file.flush().unwrap();
        std::thread::sleep(Duration::from_millis(2));
        file.write_all(format!("return {i} end").as_bytes()).unwrap();
    }
    // Every save leaves the same function: the folder settles on the last one.
    eventually("the last save is active", || call(&engine, "f", json!({})).ok() == Some(json!(199)));
    stop.store(true, Ordering::Relaxed);
    caller.join().unwrap();
    let (calls, failed) = (calls.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("200 saves in place: {calls} calls, {failed} failed");
    assert!(calls > 100, "{calls} calls");
    assert_eq!(failed, 0, "{failed} of {calls} calls failed during the saves");
}

#[test]
fn a_version_without_its_entry_point_keeps_the_last_good_one() {
    let site = Site::new();
    site.write("functions/f.lua", "function call() return 1 end");
    site.write("e.lua", "function handle() return 'one' end");
    let engine = site.engine();
    site.write("functions/f.lua", "function calll() return 2 end");
    site.write("e.lua", "");
    engine.reload();
    assert_eq!(call(&engine, "f", json!({})).unwrap(), json!(1));
    assert_eq!(cmd(&engine, "e", "").unwrap().as_deref(), Some("one"));
    let errors: Vec<String> = engine.scripts().into_iter().filter_map(|s| s.error.map(|e| e.message)).collect();
    assert!(errors.contains(&"no longer defines call; the last version stays active".to_string()), "{errors:?}");
    assert!(errors.contains(&"file is empty".to_string()), "{errors:?}");
}

/// A tool that saves by deleting the file and writing it anew, quickly and over and over
/// while calls run: the function never answers `function not found`, and the last version
/// ends up active. The pauses between saves straddle the 150 ms debounce, so rescans run
/// while the file is gone.
#[test]
fn delete_then_recreate_never_drops_a_function() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    let site = Site::new();
    site.write("functions/f.lua", "function call() return 0 end");
    let mut c = site.config();
    c.hot_reload = true;
    let engine = Arc::new(Engine::new(c).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let (engine, stop, calls, failures) = (engine.clone(), stop.clone(), calls.clone(), failures.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    calls.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = call(&engine, "f", json!({})) {
                        failures.lock().unwrap().push(e.to_string());
                    }
                    // Leaves the saving thread a core: it must not stall between delete and write.
                    std::thread::sleep(Duration::from_micros(100));
                }
            })
        })
        .collect();
    let path = site.path().join("functions/f.lua");
    let saves = 120;
    let mut longest_gone = Duration::ZERO;
    for i in 1..=saves {
        let deleted = Instant::now();
        std::fs::remove_file(&path).unwrap();
        std::thread::sleep(Duration::from_millis(i % 4 * 5)); // gone for 0 to 15 ms
        std::fs::write(&path, format!("function call() return {i} end")).unwrap();
        longest_gone = longest_gone.max(deleted.elapsed());
        std::thread::sleep(Duration::from_millis(100 + i * 37 % 120)); // 100 to 219 ms
    }
    eventually("the last save is active", || call(&engine, "f", json!({})).ok() == Some(json!(saves)));
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.join().unwrap();
    }
    let calls = calls.load(Ordering::Relaxed);
    let failures = failures.lock().unwrap();
    eprintln!("{saves} saves, {calls} calls, {} failed, file gone for at most {longest_gone:?}", failures.len());
    assert!(calls > 1000, "{calls} calls");
    let first: Vec<_> = failures.iter().take(3).collect();
    assert_eq!(failures.len(), 0, "{} of {calls} calls failed during {saves} saves: {first:?}", failures.len());
}
