//! Groups under attack, across real `goop` processes: a hostile site (its host's scripts and its
//! page in a visitor's browser) against the visitor's peer, and pages racing each other.

mod common;

use std::time::Duration;

use common::page::Page;
use common::{folder, goop, peak_memory_kib, peer_id, run, run_with, stdout, Running};

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

/// A host with `flood.lua` (`!flood GROUP N` sends N distinct 60 KB messages) and a visitor's
/// peer connected to it.
struct Flooding {
    host_dir: tempfile::TempDir,
    _visitor_dir: tempfile::TempDir,
    _host: Running,
    visitor: Running,
    host_id: String,
}

fn flooding() -> Flooding {
    let (host_dir, visitor_dir) = (folder("Host"), folder("Ann"));
    std::fs::write(host_dir.path().join("site/lua/flood.lua"), FLOOD).unwrap();
    let host = run(host_dir.path());
    let visitor = run_with(visitor_dir.path(), &["--connect", &host.addr]);
    let host_id = peer_id(host_dir.path());
    Flooding { host_dir, _visitor_dir: visitor_dir, _host: host, visitor, host_id }
}

#[test]
fn a_hostile_site_cannot_fill_a_visitors_peer_through_pages_that_do_not_read() {
    let Flooding { host_dir, _visitor_dir, _host, visitor, host_id } = flooding();
    let port = visitor.viewer_port;

    // The site's page joins 16 groups (the most a host lets one peer be in) and reads nothing.
    let pages: Vec<_> = (0..16).map(|i| Page::join(port, &host_id, &format!("g{i}")).unwrap()).collect();
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
    let Flooding { host_dir, _visitor_dir, _host, visitor, host_id } = flooding();
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
                Page::join(port, &host_id, &format!("t{i}"))
            })
        })
        .collect();
    let mut pages = Vec::new();
    for (i, tab) in tabs.into_iter().enumerate() {
        match tab.join().unwrap() {
            Ok(page) => pages.push((i, page)),
            Err(e) => panic!("tab {i} could not join: {e:?}"),
        }
    }
    // Each of them hears its group.
    for (i, page) in &mut pages {
        assert_eq!(command(host_dir.path(), &format!("!flood t{i} 1")), "sent");
        assert_eq!(page.frame()["message"]["i"], 1);
    }
}
