//! Peer events across real `goop` processes: connects and disconnects (once per peer, not per
//! connection), direct messages, and `@every` schedules.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{folder, goop, peer_id, run, run_with, stdout};
use serde_json::Value;

/// Each handler writes the key a test waits for last, so the others are there when it sees it.
const WATCH: &str = r#"
function on_peer_connect(p) goop.kv.set('last', p.id) goop.kv.incr('connects') end
function on_peer_disconnect(p) goop.kv.incr('disconnects') end
function on_message(m)
  goop.kv.set('from', m.from) goop.kv.set('sender', goop.peer.id) goop.kv.set('said', m.text)
end
function handle()
  return goop.json.encode({ connects = goop.kv.get('connects') or 0, disconnects = goop.kv.get('disconnects') or 0,
    last = goop.kv.get('last'), said = goop.kv.get('said'), from = goop.kv.get('from'),
    sender = goop.kv.get('sender') })
end
"#;

/// What the host's `watch.lua` has seen, asked through the running host.
fn seen(host: &Path) -> Value {
    let out = goop(&["cmd", "--dir", host.to_str().unwrap(), "!watch"]);
    serde_json::from_str(stdout(&out).trim()).unwrap_or(Value::Null)
}

/// Waits (up to 30 s) until `host`'s watcher satisfies `ready`.
fn wait_for(host: &Path, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let now = seen(host);
        if ready(&now) {
            return now;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "waited 30 s for {what}; saw {now}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn connects_disconnects_and_messages_reach_the_hosts_scripts() {
    let host_dir = folder("Host");
    std::fs::write(host_dir.path().join("site/lua/watch.lua"), WATCH).unwrap();
    let host = run(host_dir.path());
    let visitor_dir = folder("Visitor");
    let visitor_id = peer_id(visitor_dir.path());

    // The visitor's peer connects: one event.
    let mut visitor = run_with(visitor_dir.path(), &["--connect", &host.addr]);
    let now = wait_for(host_dir.path(), "the visitor's connect", |v| v["connects"] == 1);
    assert_eq!(now["last"], visitor_id.as_str());

    // A second connection of the same peer (a CLI session as the visitor) is not a second
    // connect; its closing is not a disconnect while the peer stays connected.
    let out = goop(&["cmd", "--peer", &host.addr, "--dir", visitor_dir.path().to_str().unwrap(), "hello there"]);
    assert_eq!(stdout(&out), "delivered (no reply expected)\n");
    let now = wait_for(host_dir.path(), "the message", |v| v["said"] == "hello there");
    assert_eq!((now["from"].as_str(), now["sender"].as_str()), (Some(visitor_id.as_str()), Some(visitor_id.as_str())));
    std::thread::sleep(Duration::from_secs(1));
    let now = seen(host_dir.path());
    assert_eq!((now["connects"].as_i64(), now["disconnects"].as_i64()), (Some(1), Some(0)), "{now}");

    // The peer goes away: one disconnect.
    visitor.child.kill().unwrap();
    visitor.child.wait().unwrap();
    let now = wait_for(host_dir.path(), "the visitor's disconnect", |v| v["disconnects"] == 1);
    assert_eq!(now["connects"], 1, "{now}");
}

#[test]
fn an_every_script_runs_on_its_schedule_as_the_peer() {
    let dir = folder("Host");
    std::fs::write(
        dir.path().join("site/lua/tick.lua"),
        "--- Counts\n--- @every 1s\nfunction on_schedule() goop.kv.incr('ticks') goop.kv.set('as', goop.peer.id) end\n\
         function handle() return goop.json.encode({ ticks = goop.kv.get('ticks') or 0, as = goop.kv.get('as') }) end\n",
    )
    .unwrap();
    let id = peer_id(dir.path());
    let host = run(dir.path());
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(3500));
    let out = goop(&["cmd", "--dir", dir.path().to_str().unwrap(), "!tick"]);
    let seen: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let ticks = seen["ticks"].as_i64().unwrap();
    let most = started.elapsed().as_secs() as i64;
    assert!(ticks >= 1 && ticks <= most, "{ticks} runs in {most}+ s: {seen}");
    assert_eq!(seen["as"], id.as_str());
    drop(host);
}

#[test]
fn a_peer_that_comes_and_goes_is_last_seen_gone() {
    // A presence list: connect does some work before it marks the peer online.
    const PRESENCE: &str = r#"
function on_peer_connect(p)
  local n = 0
  for i = 1, 3000000 do n = n + i % 7 end
  goop.kv.set('online', true)
end
function on_peer_disconnect(p) goop.kv.set('online', false) end
function handle() return goop.json.encode({ online = goop.kv.get('online') }) end
"#;
    let host_dir = folder("Host");
    std::fs::write(host_dir.path().join("site/lua/presence.lua"), PRESENCE).unwrap();
    let host = run(host_dir.path());
    let visitor_dir = folder("Visitor");
    let (h, v) = (host_dir.path().to_str().unwrap(), visitor_dir.path().to_str().unwrap());
    // A CLI session connects, delivers one message and goes: connect, then disconnect.
    for _ in 0..3 {
        let out = goop(&["cmd", "--peer", &host.addr, "--dir", v, "hello"]);
        assert_eq!(stdout(&out), "delivered (no reply expected)\n");
    }
    std::thread::sleep(Duration::from_secs(3));
    let out = goop(&["cmd", "--dir", h, "!presence"]);
    let seen: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(seen["online"], false, "the scripts heard the visitor's events out of order");
}

#[test]
fn a_disconnect_is_heard_even_past_the_callers_rate_limit() {
    const PRESENCE: &str = r#"
function on_peer_connect(p) goop.kv.set('online', true) end
function on_peer_disconnect(p) goop.kv.set('online', false) end
function handle() return goop.json.encode({ online = goop.kv.get('online') }) end
"#;
    let host_dir = folder("Host");
    // 3 calls a minute per peer: two connects and one disconnect use them up.
    common::configure(host_dir.path(), r#""rate_limit_per_peer": 3"#, "");
    std::fs::write(host_dir.path().join("site/lua/presence.lua"), PRESENCE).unwrap();
    let host = run(host_dir.path());
    let visitor_dir = folder("Visitor");
    let (h, v) = (host_dir.path().to_str().unwrap(), visitor_dir.path().to_str().unwrap());
    for _ in 0..2 {
        let out = goop(&["cmd", "--peer", &host.addr, "--dir", v, "hello"]);
        assert_eq!(stdout(&out), "delivered (no reply expected)\n");
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(2));
    let seen: Value = serde_json::from_str(stdout(&goop(&["cmd", "--dir", h, "!presence"])).trim()).unwrap();
    assert_eq!(seen["online"], false, "the visitor is gone, but its disconnect was rate limited");
}

#[test]
fn a_period_too_long_to_schedule_stops_no_other_script() {
    let dir = folder("Host");
    let lua = dir.path().join("site/lua");
    // u64::MAX seconds parses, but no clock reaches it.
    std::fs::write(lua.join("forever.lua"), "--- @every 18446744073709551615s\nfunction on_schedule() end\n").unwrap();
    std::fs::write(
        lua.join("tick.lua"),
        "--- @every 1s\nfunction on_schedule() goop.kv.incr('ticks') end\n\
         function handle() return tostring(goop.kv.get('ticks') or 0) end\n",
    )
    .unwrap();
    let host = run(dir.path());
    std::thread::sleep(Duration::from_millis(3500));
    let out = goop(&["cmd", "--dir", dir.path().to_str().unwrap(), "!tick"]);
    let ticks: i64 = stdout(&out).trim().parse().unwrap();
    assert!(ticks >= 1, "tick.lua ran {ticks} times in 3.5 s");
    drop(host);
}
