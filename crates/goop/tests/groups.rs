//! Groups across real `goop` processes: a page in a visitor's viewer joins a group at the host,
//! gets what the host's scripts send, sends to them, and is held to every bound on the way.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::page::{send, Page};
use common::{folder, goop, peak_memory_kib, peer_id, run, run_with, stdout, Running};
use serde_json::{json, Value};

const ROOM: &str = r#"
function on_group_join(name, peer)
  if name == "closed" then return false, "this room is closed" end
  goop.kv.set("joined", { name = name, id = peer.id })
end
function on_group_leave(name, peer) goop.kv.set("left", { name = name, id = peer.id }) end
function on_group_message(name, message)
  if message.text == nil or #message.text > 10 then return false, "too long" end
  goop.group.send(name, { from = goop.peer.id, text = message.text })
end
function handle(args)
  local name, text = args:match("^(%S+)%s*(.*)$")
  if text == "" then
    local ids = {}
    for _, m in ipairs(goop.group.members(name)) do table.insert(ids, m.id) end
    return goop.json.encode({ members = ids, joined = goop.kv.get("joined"), left = goop.kv.get("left") })
  end
  local to, rest = text:match("^@(%S+)%s+(.*)$")
  if to then return tostring(goop.group.send(name, { text = rest }, { to = { to } })) end
  return tostring(goop.group.send(name, { text = text }))
end
"#;

/// `!room NAME [TEXT]` at the host: sends TEXT to the group, or tells who is in it.
fn room(host: &Path, args: &str) -> String {
    let out = goop(&["cmd", "--dir", host.to_str().unwrap(), &format!("!room {args}")]);
    stdout(&out).trim().to_string()
}

struct Pair {
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    host_dir: std::path::PathBuf,
    host_id: String,
    visitor_id: String,
    host: Running,
    visitor: Running,
}

/// A host with the room script and a visitor connected to it.
fn pair() -> Pair {
    pair_with("")
}

/// [`pair`] with these `lua` settings at the host.
fn pair_with(lua: &str) -> Pair {
    let (host_dir, visitor_dir) = (folder("Host"), folder("Ann"));
    if !lua.is_empty() {
        common::configure(host_dir.path(), lua, "");
    }
    std::fs::write(host_dir.path().join("site/lua/room.lua"), ROOM).unwrap();
    let host = run(host_dir.path());
    let visitor = run_with(visitor_dir.path(), &["--connect", &host.addr]);
    let (host_id, visitor_id) = (peer_id(host_dir.path()), peer_id(visitor_dir.path()));
    Pair { host_dir: host_dir.path().to_path_buf(), host_id, visitor_id, host, visitor, _dirs: (host_dir, visitor_dir) }
}

/// Waits (up to 20 s) for the host's `!room NAME` answer to satisfy `ready`.
fn wait_room(host: &Path, name: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let seen: Value = serde_json::from_str(&room(host, name)).unwrap();
        if ready(&seen) {
            return seen;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "waited 20 s; the host saw {seen}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_visitors_page_joins_hears_the_host_and_sends_through_its_scripts() {
    let p = pair();
    let port = p.visitor.viewer_port;
    let mut page = Page::join(port, &p.host_id, "lobby").unwrap();
    let seen = wait_room(&p.host_dir, "lobby", |v| v["members"] == json!([p.visitor_id]));
    assert_eq!(seen["joined"], json!({ "name": "lobby", "id": p.visitor_id }));

    // The host's script pushes; the page hears it at once.
    assert_eq!(room(&p.host_dir, "lobby hello"), "1");
    assert_eq!(page.frame(), json!({ "type": "message", "group": "lobby", "message": { "text": "hello" } }));

    // The page sends; the host's on_group_message relays it as the sender.
    assert_eq!(send(port, &p.host_id, "lobby", &json!({ "text": "hi all" })), Ok(()));
    assert_eq!(page.frame()["message"], json!({ "from": p.visitor_id, "text": "hi all" }));
    // Refused by the host's script: the sender learns why; nobody hears it.
    assert_eq!(send(port, &p.host_id, "lobby", &json!({ "text": "far too long" })), Err("too long".into()));
    assert_eq!(send(port, &p.host_id, "elsewhere", &json!({})), Err("join elsewhere before sending to it".into()));
    let closed = (403, json!({ "ok": false, "error": "this room is closed" }));
    assert_eq!(Page::join(port, &p.host_id, "closed").err(), Some(closed.clone()));
    // Pages joining at once share one answer from the host: none gets in on another's refusal.
    let tries: Vec<_> = (0..4)
        .map(|_| {
            let host = p.host_id.clone();
            std::thread::spawn(move || Page::join(port, &host, "closed").err())
        })
        .collect();
    for attempt in tries {
        assert_eq!(attempt.join().unwrap(), Some(closed.clone()));
    }

    // Closing the page leaves the group: on_group_leave runs, the member is gone.
    drop(page);
    let seen = wait_room(&p.host_dir, "lobby", |v| v["members"] == json!([]));
    assert_eq!(seen["left"], json!({ "name": "lobby", "id": p.visitor_id }));

    // The host goes away: joining is worth trying again later (502), not refused (403).
    drop(p.host);
    let (status, answer) = Page::join(port, &p.host_id, "lobby").err().unwrap();
    assert_eq!(status, 502, "{answer}");
}

#[test]
fn two_pages_of_one_visitor_share_its_membership_and_the_hosts_own_page_joins_too() {
    let p = pair();
    let port = p.visitor.viewer_port;
    let mut first = Page::join(port, &p.host_id, "lobby").unwrap();
    let mut second = Page::join(port, &p.host_id, "lobby").unwrap();
    // The host's own page, on its own viewer.
    let mut own = Page::join(p.host.viewer_port, &p.host_id, "lobby").unwrap();
    let seen = wait_room(&p.host_dir, "lobby", |v| v["members"].as_array().is_some_and(|m| m.len() == 2));
    let mut members: Vec<String> = serde_json::from_value(seen["members"].clone()).unwrap();
    members.sort();
    let mut expected = vec![p.host_id.clone(), p.visitor_id.clone()];
    expected.sort();
    assert_eq!(members, expected, "one membership per peer");
    // `to` picks members: only the visitor's pages hear this one.
    assert_eq!(room(&p.host_dir, &format!("lobby @{} psst", p.visitor_id)), "1");
    assert_eq!(room(&p.host_dir, "lobby all"), "2");
    for page in [&mut first, &mut second] {
        assert_eq!(page.frame()["message"]["text"], "psst");
    }
    for page in [&mut first, &mut second, &mut own] {
        assert_eq!(page.frame()["message"]["text"], "all");
    }
    // One page of two leaving keeps the visitor in the group.
    drop(first);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(room(&p.host_dir, "lobby still"), "2");
    assert_eq!(second.frame()["message"]["text"], "still");
}

#[test]
fn bounds_hold_against_a_hostile_page() {
    // The scripts' own rate limits off, to see the group's.
    let p = pair_with(r#""rate_limit_per_peer": 0, "rate_limit_global": 0"#);
    let port = p.visitor.viewer_port;
    let _page = Page::join(port, &p.host_id, "lobby").unwrap();

    // A message past 64 KB is refused before it leaves the visitor's peer.
    let big = json!({ "text": "x".repeat(64 * 1024) });
    assert_eq!(send(port, &p.host_id, "lobby", &big), Err("a message is at most 64 KB of JSON".into()));

    // At most 16 groups per peer at one host.
    let mut pages = Vec::new();
    for i in 1..16 {
        pages.push(Page::join(port, &p.host_id, &format!("g{i}")).unwrap());
    }
    let (status, refused) = Page::join(port, &p.host_id, "g16").err().unwrap();
    assert_eq!((status, refused["error"].as_str()), (403, Some("a peer may be in at most 16 groups here")));

    // A name the host would never use is refused at once.
    assert!(Page::join(port, &p.host_id, "../etc").err().unwrap().1["error"]
        .as_str()
        .unwrap()
        .starts_with("a group name"));

    // 600 messages a minute (a burst of 600, then one per 100 ms): a flood is cut off past it,
    // and the room script does not run for what is cut off.
    let mut accepted = 0;
    let mut refused = 0;
    let started = Instant::now();
    for _ in 0..700 {
        match send(port, &p.host_id, "lobby", &json!({ "text": "x" })) {
            Ok(()) => accepted += 1,
            Err(e) => {
                assert!(e.starts_with("rate limited"), "{e}");
                refused += 1;
            }
        }
    }
    // The burst, plus one for each 100 ms the flood took (however slow the machine).
    let most = 600 + started.elapsed().as_millis() as usize / 100 + 1;
    assert!((600..=most).contains(&accepted), "{accepted} accepted (at most {most}), {refused} refused");
    assert_eq!(accepted + refused, 700);
}

#[test]
fn a_page_that_does_not_read_loses_the_oldest_messages_and_is_told_how_many() {
    let p = pair();
    let port = p.visitor.viewer_port;
    let mut page = Page::join(port, &p.host_id, "lobby").unwrap();
    wait_room(&p.host_dir, "lobby", |v| v["members"] == json!([p.visitor_id]));
    std::fs::write(
        p.host_dir.join("site/lua/flood.lua"),
        "function handle(n) local big = string.rep('x', 60000)\n\
         for i = 1, tonumber(n) do goop.group.send('lobby', { i = i, pad = big }) end return 'sent' end",
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let before = peak_memory_kib(p.host.child.id());
    // 1000 messages of 60 KB (60 MB) while the page reads nothing.
    let out = goop(&["cmd", "--dir", p.host_dir.to_str().unwrap(), "!flood 1000"]);
    assert_eq!(stdout(&out).trim(), "sent");
    std::thread::sleep(Duration::from_secs(2));
    let grown_mb = (peak_memory_kib(p.host.child.id()) - before) / 1024;

    // The page reads now: whatever it got, plus what it was told it missed, is all 1000.
    let (mut received, mut missed, mut last) = (0u64, 0u64, 0u64);
    while received + missed < 1000 {
        let frame = page.frame();
        match frame["type"].as_str() {
            Some("message") => {
                let i = frame["message"]["i"].as_u64().unwrap();
                assert!(i > last, "messages come in order: {i} after {last}");
                last = i;
                received += 1;
            }
            Some("missed") => missed += frame["count"].as_u64().unwrap(),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(last, 1000, "the newest messages are kept");
    // At least the page's own mailbox: 1 MB, 17 messages of 60 KB.
    assert!(missed > 0 && received >= 17, "{received} received, {missed} missed");
    // The host held at most its mailbox (1 MB) and the network's buffers, not 60 MB.
    assert!(grown_mb < 40, "the host grew by {grown_mb} MB for a page that does not read");
    eprintln!("slow page: {received} received, {missed} missed; host grew {grown_mb} MB");
}
