//! Host work done for a script is charged to its invocation, a VM keeps nothing of a call, and
//! callers share the engine fairly. Each test states the bound it holds the engine to.

mod common;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use goop_script::{Engine, Error, Peer};
use serde_json::json;

/// 100 bytes of Lua: a table of 2^22 leaves that shares its sub-tables (23 distinct tables).
const SHARED_BOMB: &str = "local t = {1} for i = 1, 22 do t = {t, t} end";

/// Time a call may take past its timeout, host work included.
const GRACE: Duration = Duration::from_millis(900);

fn assert_limit_hit(engine: &Engine, name: &str, timeout: Duration) -> Error {
    let start = Instant::now();
    let err = call(engine, name, json!({})).expect_err(name);
    let took = start.elapsed();
    assert!(matches!(err, Error::Memory { .. } | Error::Timeout { .. }), "{name}: {err}");
    assert!(took < timeout + GRACE, "{name}: took {took:?}");
    err
}

#[test]
fn shared_subtables_are_charged_each_time_they_are_expanded() {
    let site = Site::new();
    site.write("functions/encode.lua", &format!("function call() {SHARED_BOMB} return goop.json.encode(t) end"));
    site.write("functions/result.lua", &format!("function call() {SHARED_BOMB} return t end"));
    site.write("functions/kv.lua", &format!("function call() {SHARED_BOMB} goop.kv.set('k', t) return 1 end"));
    site.write("functions/ok.lua", "function call() return goop.json.encode({1, {2, 3}}) end");
    let engine = site.engine();
    for name in ["encode", "result", "kv"] {
        // 10 MB limit: the 2^22-leaf expansion stops at the limit, in well under the 1 s timeout.
        let err = assert_limit_hit(&engine, name, Duration::from_secs(1));
        assert!(matches!(err, Error::Memory { limit_mb: 10, .. }), "{name}: {err}");
    }
    assert_eq!(call(&engine, "ok", json!({})).unwrap(), json!("[1,[2,3]]"));
}

#[test]
fn a_conversion_stops_at_the_deadline_when_memory_would_allow_more() {
    let site = Site::new();
    site.write("functions/bomb.lua", &format!("function call() {SHARED_BOMB} return goop.json.encode(t) end"));
    let mut config = site.config();
    config.max_memory_mb = 1024;
    config.timeout = Duration::from_millis(300);
    let engine = Engine::new(config).unwrap();
    // 1 GB would hold a good part of the expansion; the 300 ms deadline stops it first or soon after.
    assert_limit_hit(&engine, "bomb", Duration::from_millis(300));
}

#[test]
fn host_copies_count_against_the_same_memory_limit() {
    let site = Site::new();
    // One 512 KB string held 24 times is 0.5 MB of Lua; the host's copy would be 12 MB.
    let shared = "local s = string.rep('x', 512 * 1024) local t = {} for i = 1, 24 do t[i] = s end";
    site.write("functions/many.lua", &format!("function call() {shared} return t end"));
    site.write("functions/one.lua", &format!("function call() {shared} return {{ s }} end"));
    site.write("functions/small.lua", "function call() local t = {} for i = 1, 1000 do t[i] = {i} end return t end");
    let engine = site.engine();
    let err = assert_limit_hit(&engine, "many", Duration::from_secs(1));
    assert!(matches!(err, Error::Memory { .. }), "{err}");
    assert_eq!(call(&engine, "one", json!({})).unwrap()[0].as_str().map(str::len), Some(512 * 1024));
    assert_eq!(call(&engine, "small", json!({})).unwrap().as_array().map(Vec::len), Some(1000));
}

#[test]
fn a_result_is_at_most_one_megabyte_of_json() {
    let site = Site::new();
    site.write("functions/big.lua", "function call() return { s = string.rep('x', 1024 * 1024) } end");
    site.write("functions/fits.lua", "function call() return { s = string.rep('x', 1000 * 1000) } end");
    let engine = site.engine();
    let err = call(&engine, "big", json!({})).unwrap_err();
    assert!(matches!(err, Error::BadResult { .. }), "{err}");
    assert_eq!(err.to_string(), "script big returned an invalid result: result is larger than 1 MB of JSON");
    assert_eq!(call(&engine, "fits", json!({})).unwrap()["s"].as_str().map(str::len), Some(1_000_000));
}

#[test]
fn a_filtered_log_line_is_never_built() {
    // No subscriber is installed in this test binary: every level is filtered out, so the
    // argument's __tostring (an endless loop) must never run.
    let site = Site::new();
    site.write(
        "t.lua",
        "function handle() goop.log.info(setmetatable({}, { __tostring = function() while true do end end })) print(string.rep('x', 5e6)) return 'logged' end",
    );
    assert_eq!(cmd(&site.engine(), "t", "").unwrap().as_deref(), Some("logged"));
}

#[test]
fn a_vm_back_in_the_pool_holds_nothing_of_its_last_call() {
    let site = Site::new();
    for i in 0..8 {
        site.write(
            &format!("keep{i}.lua"),
            "KEEP = string.rep('x', 4 * 1024 * 1024) function handle() KEEP2 = KEEP .. '!' return #KEEP2 end",
        );
    }
    let mut config = site.config();
    config.workers = 1;
    let engine = Engine::new(config).unwrap();
    for round in 0..3 {
        for i in 0..8 {
            assert_eq!(cmd(&engine, &format!("keep{i}"), "").unwrap().as_deref(), Some("4194305"), "round {round}");
        }
    }
    // Each call stored 8 MB in its environment; the one idle worker is back near its baseline
    // (about 0.5 MB) plus the 256 KB of garbage it may keep.
    let idle = engine.idle_vm_memory();
    assert!(idle < 1024 * 1024, "idle worker holds {idle} bytes");
}

#[test]
fn a_script_error_leaves_a_clean_reusable_vm() {
    let site = Site::new();
    site.write("fail.lua", "LEFT = 'from the failed call' function handle() LEFT2 = 'also' error('bad input') end");
    site.write("look.lua", "function handle() return tostring(LEFT) .. ',' .. tostring(LEFT2) end");
    let mut config = site.config();
    config.workers = 1;
    let engine = Engine::new(config).unwrap();
    for _ in 0..100 {
        let err = cmd(&engine, "fail", "").unwrap_err();
        assert_eq!(err.to_string(), "fail.lua:1: bad input");
        assert_eq!(cmd(&engine, "look", "").unwrap().as_deref(), Some("nil,nil"));
    }
}

#[test]
fn error_values_never_show_memory_addresses() {
    let site = Site::new();
    site.write("tbl.lua", "function handle() error({ code = 42 }) end");
    site.write("fn.lua", "function handle() error(print) end");
    site.write("cyc.lua", "function handle() local t = {} t.t = t error(t) end");
    site.write("txt.lua", "function handle() error('got ' .. tostring({}) .. ' and ' .. tostring(print)) end");
    let engine = site.engine();
    let shown: Vec<String> =
        ["tbl", "fn", "txt", "cyc"].iter().map(|n| cmd(&engine, n, "").unwrap_err().to_string()).collect();
    assert_eq!(shown[0], r#"{"code":42}"#, "a table raised reaches the caller as its JSON");
    assert_eq!(shown[1], "script raised a function as its error");
    assert_eq!(shown[2], "txt.lua:1: got table and function");
    assert_eq!(shown[3], "script raised a table as its error", "no JSON form: a plain word");
    site.write(
        "glued.lua",
        "function handle() error(tostring(print) .. tostring(goop.json.encode) .. tostring({}):upper()) end",
    );
    engine.reload();
    assert_eq!(cmd(&engine, "glued", "").unwrap_err().to_string(), "glued.lua:1: functionfunctionTABLE");
}

#[test]
fn error_messages_are_cut_to_a_kilobyte() {
    let site = Site::new();
    site.write("big.lua", "function handle() error(string.rep('\\255', 2000000), 0) end");
    let engine = site.engine();
    let err = cmd(&engine, "big", "").unwrap_err().to_string();
    // 2 MB raised; the caller, the log and the dashboard keep 1 KB of it.
    assert!(err.len() <= 1024, "{} bytes", err.len());
    let kept = engine.scripts().into_iter().find(|s| s.name == "big").and_then(|s| s.last_error).unwrap();
    assert!(kept.len() <= 1024, "{} bytes kept", kept.len());
}

#[test]
fn one_caller_holds_at_most_its_share_of_the_workers() {
    let site = Site::new();
    site.write("spin.lua", "function handle() while true do end end");
    site.write("ok.lua", "function handle() return 'fine' end");
    let mut config = site.config();
    config.workers = 4;
    config.workers_per_caller = 1;
    config.busy_wait = Duration::from_millis(200);
    config.timeout = Duration::from_secs(3);
    let engine = Arc::new(Engine::new(config).unwrap());
    let hog = Peer::new("12D3KooWHog", "hog");
    let refused = Arc::new(AtomicUsize::new(0));
    let spinners: Vec<_> = (0..6)
        .map(|_| {
            let (engine, hog, refused) = (engine.clone(), hog.clone(), refused.clone());
            std::thread::spawn(move || {
                if let Err(Error::RateLimited(m)) = engine.run_command(&hog, "spin", "") {
                    assert_eq!(m, "at most 1 of your calls run at once");
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    // The hog's call takes 3 s; another caller is served at once meanwhile.
    let start = Instant::now();
    assert_eq!(cmd(&engine, "ok", "").unwrap().as_deref(), Some("fine"));
    assert!(start.elapsed() < Duration::from_millis(1500), "{:?}", start.elapsed());
    for s in spinners {
        s.join().unwrap();
    }
    // 6 calls at once: 1 runs, the 5 others wait 200 ms for the hog's own worker and give up.
    assert_eq!(refused.load(Ordering::Relaxed), 5);
}

#[test]
fn five_identities_holding_workers_cannot_lock_out_a_sixth() {
    let site = Site::new();
    site.write("spin.lua", "function handle() while true do end end");
    site.write("ok.lua", "function handle() return 'fine' end");
    let mut config = site.config(); // 16 workers, 4 per caller
    config.timeout = Duration::from_secs(3);
    let engine = Arc::new(Engine::new(config).unwrap());
    let spinners: Vec<_> = (0..20)
        .map(|i| {
            let engine = engine.clone();
            let hog = Peer::new(format!("12D3KooWHog{}", i % 5), "");
            std::thread::spawn(move || {
                let _ = engine.run_command(&hog, "spin", "");
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // 20 calls that take 3 s each hold at most 14 workers: 2 of 16 wait for callers holding none.
    // (Waiting for a hog's worker would take seconds.)
    let start = Instant::now();
    assert_eq!(cmd(&engine, "ok", "").unwrap().as_deref(), Some("fine"));
    assert!(start.elapsed() < Duration::from_millis(1500), "the sixth waited {:?}", start.elapsed());
    for s in spinners {
        s.join().unwrap();
    }
}

#[test]
fn five_identities_hammering_cannot_starve_a_sixth() {
    let site = Site::new();
    site.write("ok.lua", "function handle() return 'fine' end");
    let mut config = site.config();
    config.rate_limit_global = 600; // refills 10 calls a second
    let engine = Arc::new(Engine::new(config).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(std::sync::Barrier::new(6));
    let sybils: Vec<_> = (0..5)
        .map(|i| {
            let (engine, stop, start) = (engine.clone(), stop.clone(), start.clone());
            std::thread::spawn(move || {
                let me = Peer::new(format!("12D3KooWSybil{i}"), "");
                start.wait();
                while !stop.load(Ordering::Relaxed) {
                    let _ = engine.run_command(&me, "ok", "");
                }
            })
        })
        .collect();
    start.wait();
    std::thread::sleep(Duration::from_millis(500));
    let mut served = 0;
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if cmd(&engine, "ok", "").is_ok() {
            served += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for s in sybils {
        s.join().unwrap();
    }
    // Its share is 100 a minute: a burst of 25, then one call every 0.6 s (about 33 in 5 s),
    // while the five are held to theirs. Without shares it got 7: the five took every refill.
    assert!(served >= 20, "the sixth caller got {served} calls in 5 s");
}
