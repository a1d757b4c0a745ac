//! Two `goop run` processes on 127.0.0.1 reach each other's scripts, data and site.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

#[test]
fn a_visitor_reaches_the_hosts_scripts_data_and_site() {
    let host_dir = folder("Host");
    let visitor_dir = folder("Ann");
    let host = run(host_dir.path());
    let v = visitor_dir.path().to_str().unwrap();
    let host_id = stdout(&goop(&["id", "--dir", host_dir.path().to_str().unwrap()])).trim().to_string();
    assert!(host.addr.ends_with(&host_id));
    let visitor_id = stdout(&goop(&["id", "--dir", v])).trim().to_string();

    let echo = goop(&["cmd", "--peer", &host.addr, "--dir", v, "!echo over the wire"]);
    assert_eq!(stdout(&echo), "You said: over the wire\n");
    assert_eq!(stdout(&goop(&["cmd", "--peer", &host.addr, "--dir", v, "!greet"])), "Hello, Ann!\n");

    let call = goop(&["call", "--peer", &host.addr, "--dir", v, "hello", r#"{"name":"Bo"}"#]);
    assert_eq!(
        stdout(&call),
        format!("{{\"ok\":true,\"result\":{{\"caller\":\"{visitor_id}\",\"message\":\"Hello, Bo!\"}}}}\n")
    );
    assert_eq!(call.status.code(), Some(0));
    // Every TCP listener has a QUIC one beside it, answering the same.
    assert!(host.quic.starts_with("/ip4/127.0.0.1/udp/") && host.quic.contains("/quic-v1/p2p/"), "{}", host.quic);
    let over_quic = goop(&["call", "--peer", &host.quic, "--dir", v, "hello", r#"{"name":"Bo"}"#]);
    assert_eq!(stdout(&over_quic), stdout(&call));
    let missing = goop(&["call", "--peer", &host.addr, "--dir", v, "nope"]);
    assert_eq!(stdout(&missing), "{\"ok\":false,\"error\":\"function not found: nope\",\"kind\":\"not_found\"}\n");
    assert_eq!(missing.status.code(), Some(1));

    let list = goop(&["data", "--peer", &host.addr, "--dir", v, r#"{"op":"lua-list"}"#]);
    assert_eq!(
        stdout(&list),
        "{\"ok\":true,\"functions\":[{\"name\":\"hello\",\"description\":\"Greets the caller\"}]}\n"
    );
    let bogus = goop(&["data", "--peer", &host.addr, "--dir", v, r#"{"op":"frobnicate"}"#]);
    assert_eq!(bogus.status.code(), Some(1));

    let page = goop(&["site", "--peer", &host.addr, "--dir", v, "/index.html"]);
    assert!(page.status.success());
    assert!(stdout(&page).contains("<h1>Welcome to my peer</h1>"));
    let script = goop(&["site", "--peer", &host.addr, "--dir", v, "/lua/echo.lua"]);
    assert_eq!(script.status.code(), Some(1));
    assert!(stdout(&script).is_empty());
    assert!(String::from_utf8_lossy(&script.stderr).contains("not found"));
}

#[test]
fn an_unreachable_peer_exits_2() {
    let visitor = folder("Ann");
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("/ip4/127.0.0.1/tcp/{port}");
    for args in [vec!["call", "hello"], vec!["cmd", "!echo hi"], vec!["site", "/index.html"]] {
        let mut all = vec![args[0], "--peer", &addr, "--dir", visitor.path().to_str().unwrap()];
        all.extend_from_slice(&args[1..]);
        let out = goop(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), format!("goop: cannot reach {addr}: connection refused\n"));
    }
}

#[test]
fn a_remote_caller_learns_a_script_is_broken_but_not_where_it_lives() {
    let (host_dir, visitor_dir) = (folder("Host"), folder("Ann"));
    let lua = host_dir.path().join("site/lua");
    std::fs::write(lua.join("broken.lua"), "function handle()\n  return 1 +\nend\n").unwrap();
    std::fs::write(lua.join("functions/bad.lua"), "function call(r)\n  return {\nend\n").unwrap();
    let host = run(host_dir.path());
    let v = visitor_dir.path().to_str().unwrap();

    let broken = goop(&["cmd", "--peer", &host.addr, "--dir", v, "!broken"]);
    assert_eq!(stdout(&broken), "!broken is unavailable: its script failed to load\n");
    let bad = goop(&["call", "--peer", &host.addr, "--dir", v, "bad"]);
    assert_eq!(
        stdout(&bad),
        "{\"ok\":false,\"error\":\"function bad is unavailable: its script failed to load\",\"kind\":\"compile\"}\n"
    );
    assert_eq!(bad.status.code(), Some(1));
    let host_path = host_dir.path().to_str().unwrap();
    for out in [&broken, &bad] {
        let seen = format!("{}{}", stdout(out), String::from_utf8_lossy(&out.stderr));
        assert!(!seen.contains(host_path) && !seen.contains(".lua"), "{seen}");
    }
}

#[test]
fn a_plain_message_returns_once_delivered() {
    let (host_dir, visitor_dir) = (folder("Host"), folder("Ann"));
    let host = run(host_dir.path());
    let started = std::time::Instant::now();
    let out = goop(&["cmd", "--peer", &host.addr, "--dir", visitor_dir.path().to_str().unwrap(), "--wait", "60", "hi"]);
    assert_eq!(stdout(&out), "delivered (no reply expected)\n");
    assert_eq!(out.status.code(), Some(0));
    // Well under the 60 s a command's reply may take: nothing is waited for.
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(20), "took {took:?}");
}

fn data(addr: &str, dir: &Path, request: &str) -> serde_json::Value {
    let out = goop(&["data", "--peer", addr, "--dir", dir.to_str().unwrap(), request]);
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

#[test]
fn access_policies_hold_from_a_visitors_side() {
    let host_dir = folder("Host");
    let h = host_dir.path();
    std::fs::write(
        h.join("site/schema.sql"),
        "CREATE TABLE notes (_id INTEGER PRIMARY KEY AUTOINCREMENT, _owner TEXT NOT NULL, \
         _created_at DATETIME DEFAULT CURRENT_TIMESTAMP, _updated_at DATETIME DEFAULT CURRENT_TIMESTAMP, body TEXT);\n\
         CREATE TABLE games (_id INTEGER PRIMARY KEY AUTOINCREMENT, _owner TEXT NOT NULL, \
         _created_at DATETIME DEFAULT CURRENT_TIMESTAMP, _updated_at DATETIME DEFAULT CURRENT_TIMESTAMP, board TEXT);\n",
    )
    .unwrap();
    std::fs::write(
        h.join("site/schema.json"),
        r#"{"tables": {"games": {"insert": "none", "update": "none", "delete": "none"}}}"#,
    )
    .unwrap();
    // The owner writes locally, unrestricted.
    let own =
        goop(&["data", "--dir", h.to_str().unwrap(), r#"{"op":"insert","table":"notes","data":{"body":"host note"}}"#]);
    assert!(own.status.success(), "{}", stdout(&own));
    let host = run(h);
    let visitor_dir = folder("Ann");
    let v = visitor_dir.path();
    let visitor_id = stdout(&goop(&["id", "--dir", v.to_str().unwrap()])).trim().to_string();

    let spoofed =
        data(&host.addr, v, r#"{"op":"insert","table":"notes","data":{"body":"hi","_owner":"someone else"}}"#);
    // A caller cannot choose the owner: the `_owner` sent is ignored (goop2's way), the row is theirs.
    assert_eq!(spoofed["ok"], true, "{spoofed}");
    let inserted = data(&host.addr, v, r#"{"op":"insert","table":"notes","data":{"body":"hi"}}"#);
    assert_eq!(inserted["ok"], true, "{inserted}");
    let rows = data(&host.addr, v, r#"{"op":"query","table":"notes","order":"_id"}"#);
    assert_eq!(rows["rows"][1]["_owner"], visitor_id.as_str(), "the system stamps the caller: {rows}");
    assert_eq!(rows["rows"][2]["_owner"], visitor_id.as_str(), "{rows}");
    assert_eq!(rows["rows"][1]["body"], "hi");

    let stolen = data(
        &host.addr,
        v,
        r#"{"op":"update","table":"notes","data":{"body":"mine now"},"where":"_id = ?","args":[1]}"#,
    );
    assert_ne!(stolen["affected"], 1, "a visitor cannot update the host's row: {stolen}");
    let deleted = data(&host.addr, v, r#"{"op":"delete","table":"notes","where":"_id = ?","args":[1]}"#);
    assert_ne!(deleted["affected"], 1, "{deleted}");
    let rows = data(&host.addr, v, r#"{"op":"query","table":"notes","where":"_id = 1"}"#);
    assert_eq!(rows["rows"][0]["body"], "host note");

    let forbidden = data(&host.addr, v, r#"{"op":"insert","table":"games","data":{"board":"XXX------"}}"#);
    assert_eq!(forbidden["ok"], false, "{forbidden}");
    for hostile in [
        r#"{"op":"query","table":"notes","where":"body IN (SELECT content FROM _goop_inbox)"}"#,
        r#"{"op":"query","table":"notes","where":"1; DROP TABLE notes"}"#,
        r#"{"op":"query","table":"sqlite_master"}"#,
        r#"{"op":"query","table":"_goop_inbox"}"#,
        r#"{"op":"drop","table":"notes"}"#,
    ] {
        assert_eq!(data(&host.addr, v, hostile)["ok"], false, "{hostile}");
    }
    assert_eq!(data(&host.addr, v, r#"{"op":"query","table":"notes"}"#)["rows"].as_array().map(Vec::len), Some(3));
}

#[cfg(unix)]
#[test]
fn sigterm_stops_the_peer_cleanly() {
    let dir = folder("Host");
    let mut host = run(dir.path());
    let pid = host.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(status) = host.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "goop run did not stop on SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
