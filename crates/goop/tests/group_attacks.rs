//! Groups under attack, across real `goop` processes: a hostile site (its host's scripts and its
//! page in a visitor's browser) against the visitor's peer, and pages racing each other.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::page::{origin, post};
use common::{folder, goop, peak_memory_kib, peer_id, run, run_with, stdout};
use serde_json::json;

/// A page's join: the open stream, its headers read, or the refusal's status line and body.
fn join(port: u16, host: &str, group: &str) -> Result<BufReader<TcpStream>, String> {
    let stream = post(port, &origin(port, host), "/_goop/group/join", &json!({ "group": group }));
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
    if status.contains(" 200 ") {
        Ok(reader)
    } else {
        let mut body = String::new();
        let _ = reader.read_to_string(&mut body);
        Err(format!("{} {body}", status.trim()))
    }
}

/// Reads chunked NDJSON until a line containing `needle` (up to 20 s); the lines before it.
fn read_until(page: &mut BufReader<TcpStream>, needle: &str) -> Vec<String> {
    let started = Instant::now();
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        if page.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("the page's stream ended; it saw {seen:?}");
        }
        if line.contains(needle) {
            return seen;
        }
        seen.push(line);
        assert!(started.elapsed() < Duration::from_secs(20), "no {needle} in 20 s: {seen:?}");
    }
}

/// Runs `!NAME ARGS` at the peer in `dir`.
fn command(dir: &std::path::Path, line: &str) -> String {
    stdout(&goop(&["cmd", "--dir", dir.to_str().unwrap(), line])).trim().to_string()
}

const FLOOD: &str = r#"
function handle(args)
  local group, n = args:match("^(%S+)%s+(%d+)$")
  local pad = string.rep("x", 60000)
  for i = 1, tonumber(n) do goop.group.send(group, { i = i, pad = pad }) end
  return "sent"
end
"#;

#[test]
fn a_hostile_site_cannot_fill_a_visitors_peer_through_pages_that_do_not_read() {
    let (host_dir, visitor_dir) = (folder("Host"), folder("Ann"));
    std::fs::write(host_dir.path().join("site/lua/flood.lua"), FLOOD).unwrap();
    let host = run(host_dir.path());
    let visitor = run_with(visitor_dir.path(), &["--connect", &host.addr]);
    let host_id = peer_id(host_dir.path());
    let port = visitor.viewer_port;

    // The site's page joins 16 groups (the most a host lets one peer be in) and reads nothing.
    let pages: Vec<_> = (0..16).map(|i| join(port, &host_id, &format!("g{i}")).unwrap()).collect();
    std::thread::sleep(Duration::from_secs(1));
    let before = peak_memory_kib(visitor.child.id());
    // The host's scripts send 200 distinct 60 KB messages to each group: 192 MB in all.
    for i in 0..16 {
        assert_eq!(command(host_dir.path(), &format!("!flood g{i} 200")), "sent");
    }
    std::thread::sleep(Duration::from_secs(3));
    let grown_mb = (peak_memory_kib(visitor.child.id()) - before) / 1024;
    eprintln!("visitor's peer grew {grown_mb} MB for 16 pages that do not read");
    // Each page may hold 1 MB of what it did not read, not 128 messages of up to 64 KB (8 MB).
    assert!(grown_mb < 48, "the visitor's peer grew by {grown_mb} MB for pages that do not read");
    drop(pages);
}

#[test]
fn pages_joining_a_new_host_at_once_all_get_in() {
    let (host_dir, visitor_dir) = (folder("Host"), folder("Ann"));
    std::fs::write(host_dir.path().join("site/lua/flood.lua"), FLOOD).unwrap();
    let host = run(host_dir.path());
    let visitor = run_with(visitor_dir.path(), &["--connect", &host.addr]);
    let host_id = peer_id(host_dir.path());
    let port = visitor.viewer_port;
    // Connected: the first join opens the link to the host, not a dial.
    std::thread::sleep(Duration::from_secs(1));

    // Eight tabs open at the same moment, each joining a group of its own at a host the
    // visitor has no link to yet.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let tabs: Vec<_> = (0..8)
        .map(|i| {
            let (barrier, host_id) = (barrier.clone(), host_id.clone());
            std::thread::spawn(move || {
                barrier.wait();
                join(port, &host_id, &format!("t{i}"))
            })
        })
        .collect();
    let mut pages = Vec::new();
    for (i, tab) in tabs.into_iter().enumerate() {
        match tab.join().unwrap() {
            Ok(page) => pages.push((i, page)),
            Err(e) => panic!("tab {i} could not join: {e}"),
        }
    }
    // Each of them hears its group.
    for (i, page) in &mut pages {
        read_until(page, "joined");
        assert_eq!(command(host_dir.path(), &format!("!flood t{i} 1")), "sent");
        read_until(page, r#""i":1"#);
    }
}
