//! Groups across real `goop` processes: a page in a visitor's viewer joins a group at the host,
//! gets what the host's scripts send, sends to them, and is held to every bound on the way.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{folder, goop, peak_memory_kib, peer_id, run, run_with, stdout, Running};
use goop::viewer::origin::Hosts;
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

/// The origin of `peer`'s site on a viewer at `port`: `<label>.localhost:PORT`.
fn origin(port: u16, peer: &str) -> String {
    let url = Hosts { port }.site_url(&peer.parse().unwrap());
    url.trim_start_matches("http://").trim_end_matches('/').to_string()
}

fn request(port: u16, host: &str, path: &str, body: &Value) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nContent-Type: application/json\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    stream
}

/// A page in a group: the open join stream, read line by line.
struct Page {
    reader: BufReader<TcpStream>,
    /// Bytes left in the current chunk.
    left: usize,
}

impl Page {
    /// Joins `group` at `host` through the viewer at `port`; the HTTP status and JSON otherwise.
    fn join(port: u16, host: &str, group: &str) -> Result<Page, (u16, Value)> {
        let stream = request(port, &origin(port, host), "/_goop/group/join", &json!({ "group": group }));
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            if header == "\r\n" {
                break;
            }
        }
        if !status.contains(" 200 ") {
            let mut body = String::new();
            let _ = reader.read_to_string(&mut body);
            let code = status.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
            return Err((code, serde_json::from_str(&body).unwrap_or(json!(body))));
        }
        let mut page = Page { reader, left: 0 };
        assert_eq!(page.frame()["type"], "joined");
        Ok(page)
    }

    /// The next frame from the host (chunked transfer, one JSON object per line).
    fn frame(&mut self) -> Value {
        let mut line = Vec::new();
        loop {
            if self.left == 0 {
                let mut size = String::new();
                self.reader.read_line(&mut size).unwrap();
                if size == "\r\n" {
                    continue; // the end of the previous chunk
                }
                self.left = usize::from_str_radix(size.trim(), 16).unwrap_or_else(|_| panic!("chunk size {size:?}"));
                assert!(self.left > 0, "the stream ended");
            }
            let mut byte = [0u8];
            self.reader.read_exact(&mut byte).unwrap();
            self.left -= 1;
            if byte[0] == b'\n' {
                return serde_json::from_slice(&line).unwrap();
            }
            line.push(byte[0]);
        }
    }
}

/// A page's `g.send(message)`: `Ok` or the refusal.
fn send(port: u16, host: &str, group: &str, message: &Value) -> Result<(), String> {
    let mut stream =
        request(port, &origin(port, host), "/_goop/group/send", &json!({ "group": group, "message": message }));
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    let answer: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {raw}"));
    if answer["ok"] == true {
        Ok(())
    } else {
        Err(answer["error"].as_str().unwrap_or_default().to_string())
    }
}

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
    for _ in 0..700 {
        match send(port, &p.host_id, "lobby", &json!({ "text": "x" })) {
            Ok(()) => accepted += 1,
            Err(e) => {
                assert!(e.starts_with("rate limited"), "{e}");
                refused += 1;
            }
        }
    }
    assert!((600..=610).contains(&accepted) && refused >= 90, "{accepted} accepted, {refused} refused");
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
