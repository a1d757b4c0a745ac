//! A running peer under hostile scripts' host work: bounded memory and time, and errors that
//! tell a remote caller nothing about the host.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Peak resident memory of a process, in MB.
fn peak_rss_mb(pid: u32) -> u64 {
    peak_memory_kib(pid) / 1024
}

const BOMB: &str = "local t = {1} for i = 1, 22 do t = {t, t} end";

#[test]
fn a_peer_survives_host_work_bombs_within_its_limits() {
    let host_dir = folder("Host");
    let visitor = folder("Ann");
    let functions = host_dir.path().join("site/lua/functions");
    let write = |name: &str, body: &str| std::fs::write(functions.join(format!("{name}.lua")), body).unwrap();
    write("encode", &format!("function call() {BOMB} return goop.json.encode(t) end"));
    write("result", &format!("function call() {BOMB} return t end"));
    write("kv", &format!("function call() {BOMB} goop.kv.set('k', t) return 1 end"));
    write("decode", "function call() return #goop.json.decode('[' .. string.rep('[],', 400000) .. '[]]') end");
    write("tblerr", "function call() error({ code = 42 }) end");
    write("kvbad", "function call() return goop.kv.get('a') end");
    // Big text the host used to copy whole (3 times over for invalid UTF-8) before cutting it.
    write("ebig", "function call() error(string.rep('\\255', 2000000), 0) end");
    write("logbig", "function call() local s = string.rep('a', 9e6) goop.log.warn(setmetatable({}, { __tostring = function() return s end })) return 1 end");
    std::fs::write(
        host_dir.path().join("site/lua/bigreply.lua"),
        "function handle() return string.rep('\\255', 9000000) end",
    )
    .unwrap();
    std::fs::create_dir_all(host_dir.path().join("site/lua/.state")).unwrap();
    std::fs::write(host_dir.path().join("site/lua/.state/kvbad.json"), "{ broken").unwrap();
    let host = run(host_dir.path());
    let pid = host.child.id();
    let v = visitor.path().to_str().unwrap();
    let before = peak_rss_mb(pid);

    for name in ["encode", "result", "kv", "decode"] {
        let start = Instant::now();
        let out = goop(&["call", "--peer", &host.addr, "--dir", v, name]);
        let took = start.elapsed();
        assert_eq!(
            stdout(&out),
            format!(
                "{{\"ok\":false,\"error\":\"script {name} exceeded its memory limit of 10 MB\",\"kind\":\"memory\"}}\n"
            ),
        );
        // The 5 s timeout is never reached: the 10 MB limit stops each at once (the `goop`
        // client's own start and dial included).
        assert!(took < Duration::from_secs(5), "{name}: {took:?}");
    }
    // Eight of each at once, from eight callers: a command's reply comes back as a message to
    // the caller's peer ID, so two processes must not share an identity.
    let others: Vec<_> = (0..7).map(|i| folder(&format!("o{i}"))).collect();
    let mut dirs = vec![v.to_string()];
    dirs.extend(others.iter().map(|o| o.path().to_str().unwrap().to_string()));
    for (args, want) in [
        (["call", "encode"], "exceeded its memory limit of 10 MB"),
        (["call", "ebig"], "\u{fffd}"),
        (["call", "logbig"], r#"{"ok":true,"result":1}"#),
        (["cmd", "!bigreply"], "[reply truncated]"),
    ] {
        let callers: Vec<_> = (0..8)
            .map(|i| {
                let (addr, dir) = (host.addr.clone(), dirs[i].clone());
                std::thread::spawn(move || stdout(&goop(&[args[0], "--peer", &addr, "--dir", &dir, args[1]])))
            })
            .collect();
        for c in callers {
            let out = c.join().unwrap();
            assert!(out.contains(want), "{args:?}: {}", &out[..out.len().min(200)]);
            assert!(out.len() < 8 * 1024, "{args:?}: {} bytes", out.len());
        }
    }
    // A peer whose scripts may hold 10 MB each (plus as much again of host copies) stays far
    // below what the expansions asked for (2^22 leaves, several GB each).
    let peak = peak_rss_mb(pid);
    eprintln!("peak resident memory {peak} MB ({before} MB before the bombs)");
    assert!(peak < before + 200, "peak {peak} MB, {before} MB before the bombs");

    let shown = stdout(&goop(&["call", "--peer", &host.addr, "--dir", v, "tblerr"]));
    assert_eq!(
        shown, "{\"ok\":false,\"error\":\"{\\\"code\\\":42}\",\"kind\":\"runtime\"}\n",
        "the table's JSON, no address"
    );
    let shown = stdout(&goop(&["call", "--peer", &host.addr, "--dir", v, "kvbad"]));
    assert_eq!(shown, "{\"ok\":false,\"error\":\"kv store of kvbad is unreadable\",\"kind\":\"runtime\"}\n");
}

#[test]
fn big_call_params_are_charged_while_they_are_answered() {
    let host_dir = folder("Host");
    let functions = host_dir.path().join("site/lua/functions");
    std::fs::write(functions.join("ping.lua"), "function call(r) return { n = #r.params } end").unwrap();
    // No rate limits: this is about memory.
    let config =
        r#"{"lua": {"enabled": true, "rate_limit_per_peer": 0, "rate_limit_global": 0}, "p2p": {"mdns": false}}"#;
    std::fs::write(host_dir.path().join("goop.json"), config).unwrap();
    let host = run(host_dir.path());
    let pid = host.child.id();
    let before = peak_rss_mb(pid);
    // 120 KB of `0,`: a tree of 61,440 JSON nodes (about 2 MB) per request, 32 at once from 8 peers.
    let params = format!("[{}0]", "0,".repeat(61_439));
    let visitors: Vec<_> = (0..8).map(|i| folder(&format!("v{i}"))).collect();
    let calls: Vec<_> = (0..32)
        .map(|i| {
            let (addr, params) = (host.addr.clone(), params.clone());
            let dir = visitors[i % 8].path().to_str().unwrap().to_string();
            std::thread::spawn(move || stdout(&goop(&["call", "--peer", &addr, "--dir", &dir, "ping", &params])))
        })
        .collect();
    let answers: Vec<String> = calls.into_iter().map(|c| c.join().unwrap()).collect();
    let served = answers.iter().filter(|a| a.contains(r#""n":61440"#)).count();
    assert!(answers.iter().all(|a| a.contains(r#""n":61440"#) || a.contains("busy")), "{answers:?}");
    let peak = peak_rss_mb(pid);
    eprintln!("{served} of 32 served; peak resident memory {peak} MB ({before} MB before)");
    assert!(served >= 8, "{served} served");
    // Params decode straight into Lua (charged to each call's 10 MB), and parsing room is charged
    // to the 64 MB answer budget.
    assert!(peak < before + 100, "peak {peak} MB, {before} MB before");
}
