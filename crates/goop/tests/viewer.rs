//! The viewer of a running peer, over plain HTTP on loopback: the dashboard's API, a peer's
//! site on its own origin through another peer's viewer, and the Host / origin checks.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {} {}", self.status, self.body))
    }
}

/// One HTTP/1.1 request to the viewer on `port` with the given Host and extra headers.
fn http(port: u16, method: &str, host: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let (status, head, body) = common::http(port, method, host, path, headers, body);
    Answer { status, head, body }
}

fn get(port: u16, host: &str, path: &str) -> Answer {
    http(port, "GET", host, path, &[], "")
}

/// A POST the way a page of `host`'s own origin sends it.
fn post(port: u16, host: &str, path: &str, body: &Value) -> Answer {
    let origin = format!("http://{host}");
    http(port, "POST", host, path, &[("Origin", &origin), ("Content-Type", "application/json")], &body.to_string())
}

fn status(port: u16) -> Value {
    get(port, &format!("localhost:{port}"), "/api/status").json()
}

/// Waits until the viewer on `port` lists `peer` as connected; returns its site's host name.
fn site_host(port: u16, peer: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = status(port);
        if let Some(p) = s["peers"].as_array().unwrap().iter().find(|p| p["id"] == peer && p["connected"] == true) {
            let url = p["site"].as_str().unwrap();
            return url.trim_start_matches("http://").trim_end_matches('/').to_string();
        }
        assert!(Instant::now() < deadline, "{peer} never showed as connected: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_visitor_reaches_the_hosts_site_and_functions_through_its_own_viewer() {
    let (host_dir, visitor_dir) = (folder("Host"), folder("Ann"));
    let host = run(host_dir.path());
    let visitor = run_with(visitor_dir.path(), &["--connect", &host.addr]);
    let (host_id, visitor_id) = (peer_id(host_dir.path()), peer_id(visitor_dir.path()));
    let port = visitor.viewer_port;
    let site = site_host(port, &host_id);
    assert!(site.starts_with('k') && site.ends_with(&format!(".localhost:{port}")), "{site}");

    let page = get(port, &site, "/");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.head.contains("content-type: text/html"), "{}", page.head);
    assert!(page.head.contains("connect-src 'self'"), "a peer's page talks to its own origin only");
    assert_eq!(page.body, std::fs::read_to_string(host_dir.path().join("site/index.html")).unwrap());

    let sdk = get(port, &site, "/_goop/sdk.js");
    assert_eq!(sdk.status, 200);
    assert!(sdk.body.contains(&format!(r#""self":{{"id":"{visitor_id}","label":"Ann"}}"#)), "{}", sdk.body);
    assert!(sdk.body.contains(&format!(r#""peer":{{"id":"{host_id}","label":"Host"}}"#)), "{}", sdk.body);

    let call =
        post(port, &site, "/_goop/data", &json!({"op": "lua-call", "function": "hello", "params": {"name": "Bo"}}));
    let answer = call.json();
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["result"]["caller"], visitor_id.as_str(), "the host sees the visitor's peer ID: {answer}");
    let missing = post(port, &site, "/_goop/data", &json!({"op": "lua-call", "function": "nope"})).json();
    assert_eq!(missing["ok"], false);

    for private in ["/lua/echo.lua", "/lua/functions/hello.lua", "/%6cua/echo.lua", "/../goop.json", "/schema.sql"] {
        let refused = get(port, &site, private);
        assert!(matches!(refused.status, 403 | 404), "{private}: {}", refused.status);
        assert!(!refused.body.contains("lua") && !refused.body.contains("profile"), "{}", refused.body);
    }

    // The host's own viewer serves its site from disk and calls its scripts as the owner.
    let own = status(host.viewer_port)["self"]["site"].as_str().unwrap().to_string();
    let own_host = own.trim_start_matches("http://").trim_end_matches('/');
    let mine = post(host.viewer_port, own_host, "/_goop/data", &json!({"op": "lua-call", "function": "hello"})).json();
    assert_eq!(mine["result"]["caller"], host_id.as_str(), "{mine}");
    let hello = status(host.viewer_port)["scripts"].as_array().unwrap().iter().find(|s| s["name"] == "hello").cloned();
    let hello = hello.expect("hello is listed");
    assert_eq!((hello["kind"].as_str(), hello["invocations"].as_u64()), (Some("function"), Some(2)), "{hello}");
}

#[test]
fn hostile_requests_are_refused() {
    let (host_dir, visitor_dir) = (folder("Host"), folder("Ann"));
    let host = run(host_dir.path());
    let visitor = run_with(visitor_dir.path(), &["--connect", &host.addr]);
    let port = visitor.viewer_port;
    let site = site_host(port, &peer_id(host_dir.path()));
    let own_site =
        status(port)["self"]["site"].as_str().unwrap().trim_start_matches("http://").trim_end_matches('/').to_string();
    let list = json!({"op": "lua-list"}).to_string();

    // DNS rebinding: a name that is not the viewer's, or the right name on another port.
    for host in [format!("evil.example:{port}"), format!("localhost:{}", port.wrapping_add(1)), "localhost".into()] {
        assert_eq!(get(port, &host, "/api/status").status, 421, "{host}");
    }
    assert_eq!(get(port, &format!("kbogus.localhost:{port}"), "/").status, 421);

    // Writes must come from a page of the same origin.
    let data = |origin: Option<&str>| {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(o) = origin {
            headers.push(("Origin", o));
        }
        http(port, "POST", &site, "/_goop/data", &headers, &list).status
    };
    assert_eq!(data(None), 403, "no Origin");
    assert_eq!(data(Some(&format!("http://{own_site}"))), 403, "another peer's page");
    assert_eq!(data(Some("http://evil.example")), 403);
    assert_eq!(data(Some(&format!("http://{site}"))), 200);
    let chat = json!({"peer": peer_id(host_dir.path()), "content": "hi"}).to_string();
    let from_site = [("Origin", format!("http://{site}")), ("Content-Type", "application/json".into())];
    let headers: Vec<(&str, &str)> = from_site.iter().map(|(n, v)| (*n, v.as_str())).collect();
    assert_eq!(http(port, "POST", &format!("localhost:{port}"), "/api/chat", &headers, &chat).status, 403);

    // A peer's page cannot read the viewer's API, even through a same-site request.
    let sneaky = http(port, "GET", &format!("localhost:{port}"), "/api/inbox", &[("Sec-Fetch-Site", "same-site")], "");
    assert_eq!(sneaky.status, 403);
    assert!(!sneaky.head.contains("access-control-allow-origin"));

    // Oversize and malformed bodies.
    let big = "x".repeat(300 * 1024);
    let oversize = http(port, "POST", &site, "/_goop/data", &[("Origin", &format!("http://{site}"))], &big);
    assert_eq!(oversize.status, 413);
    let bad = http(port, "POST", &site, "/_goop/data", &[("Origin", &format!("http://{site}"))], "{not json");
    assert_eq!(bad.json()["ok"], false);
    assert_eq!(post(port, &format!("localhost:{port}"), "/api/connect", &json!({"addr": "nonsense"})).status, 400);
    assert_eq!(
        post(port, &format!("localhost:{port}"), "/api/chat", &json!({"peer": "x", "content": "hi"})).status,
        400
    );
}

#[test]
fn messages_and_command_replies_reach_the_inbox_through_the_viewer() {
    let (host_dir, visitor_dir) = (folder("Host"), folder("Ann"));
    let host = run(host_dir.path());
    let visitor = run_with(visitor_dir.path(), &["--connect", &host.addr]);
    let host_id = peer_id(host_dir.path());
    site_host(visitor.viewer_port, &host_id);
    let viewer = format!("localhost:{}", visitor.viewer_port);
    assert_eq!(
        post(visitor.viewer_port, &viewer, "/api/chat", &json!({"peer": host_id, "content": "hello host"})).json()
            ["ok"],
        true
    );
    assert_eq!(
        post(visitor.viewer_port, &viewer, "/api/chat", &json!({"peer": host_id, "content": "!echo ping"})).json()
            ["ok"],
        true
    );

    let inbox_has = |port: u16, text: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let inbox = get(port, &format!("localhost:{port}"), "/api/inbox").json();
            if inbox["messages"].as_array().unwrap().iter().any(|m| m["content"] == text) {
                return inbox;
            }
            assert!(Instant::now() < deadline, "{text:?} never arrived: {inbox}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let host_inbox = inbox_has(host.viewer_port, "hello host");
    assert_eq!(host_inbox["messages"][0]["label"], "Ann");
    let reply = inbox_has(visitor.viewer_port, "You said: ping");
    assert_eq!(reply["messages"][0]["from"], host_id.as_str());
}

#[test]
fn an_offline_peers_site_gets_a_page_saying_so() {
    let (host_dir, visitor_dir) = (folder("Host <b>&"), folder("Ann"));
    let host = run(host_dir.path());
    let visitor = run_with(visitor_dir.path(), &["--connect", &host.addr]);
    let host_id = peer_id(host_dir.path());
    let site = site_host(visitor.viewer_port, &host_id);
    assert_eq!(get(visitor.viewer_port, &site, "/").status, 200);
    drop(host);

    let started = Instant::now();
    let page = get(visitor.viewer_port, &site, "/index.html");
    assert_eq!(page.status, 502, "{}", page.body);
    assert!(page.head.contains("content-type: text/html; charset=utf-8"), "{}", page.head);
    assert!(page.body.starts_with("<!doctype html>"), "{}", page.body);
    assert!(page.body.contains("<h1>This peer is offline</h1>"), "{}", page.body);
    assert!(page.body.contains(&format!("Peer <code>{host_id}</code>")), "{}", page.body);
    assert!(page.body.contains("(Host &lt;b&gt;&amp;)") && !page.body.contains("<b>"), "label escaped: {}", page.body);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(25), "the page took {took:?}");
}

/// A broken `site/schema.sql`: the peer still runs (site, functions, data); the dashboard shows
/// the error with the statement's line until it is fixed; the log says it once per change of
/// the file, however often the dashboard polls and callers ask.
#[test]
fn a_broken_schema_shows_on_the_dashboard_and_is_logged_once() {
    let (host_dir, visitor_dir) = (folder("Host"), folder("Ann"));
    let (h, v) = (host_dir.path(), visitor_dir.path().to_str().unwrap());
    let notes = "CREATE TABLE notes (_id INTEGER PRIMARY KEY AUTOINCREMENT, _owner TEXT NOT NULL,\n  \
                 _created_at DATETIME, _updated_at DATETIME, text TEXT DEFAULT 'a;b');\n";
    std::fs::write(h.join("site/schema.sql"), format!("{notes}\n-- <b>draft</b>;\nCREATE TABLEE <b>oops</b> (a);\n"))
        .unwrap();
    let log = h.join("run.log");
    let host = run_logged(h, &log);
    let port = host.viewer_port;
    let first = r#"site/schema.sql:5: near "TABLEE": syntax error"#;
    for _ in 0..5 {
        assert_eq!(status(port)["schema_error"], first);
    }
    let page = get(port, &format!("localhost:{port}"), "/").body;
    assert!(page.contains(r#"<p class="error" id="schema-error"></p>"#), "{page}");
    // The page shows it as text, never as HTML.
    let script = get(port, &format!("localhost:{port}"), "/viewer.js").body;
    assert!(script.contains(r#"$("schema-error").textContent = error || "";"#), "{script}");

    // The peer serves its site, its functions and its data meanwhile; the tables are as before.
    let page = goop(&["site", "--peer", &host.addr, "--dir", v, "/index.html"]);
    assert!(page.status.success() && !page.stdout.is_empty());
    let call = goop(&["call", "--peer", &host.addr, "--dir", v, "hello", r#"{"name":"Bo"}"#]);
    assert!(stdout(&call).contains("Hello, Bo!"), "{}", stdout(&call));
    let tables = goop(&["data", "--peer", &host.addr, "--dir", v, r#"{"op":"tables"}"#]);
    assert_eq!(stdout(&tables), "{\"ok\":true,\"tables\":[]}\n");

    // Another mistake: reported from its own line; then fixed: applied, and the error is gone.
    std::fs::write(h.join("site/schema.sql"), format!("INSERT INTO nowhere VALUES (1);\n{notes}")).unwrap();
    for _ in 0..5 {
        assert_eq!(status(port)["schema_error"], "site/schema.sql:1: no such table: nowhere");
    }
    std::fs::write(h.join("site/schema.sql"), notes).unwrap();
    assert_eq!(status(port)["schema_error"], Value::Null);
    let tables = goop(&["data", "--peer", &host.addr, "--dir", v, r#"{"op":"tables"}"#]);
    assert_eq!(stdout(&tables), "{\"ok\":true,\"tables\":[\"notes\"]}\n");

    let log = std::fs::read_to_string(&log).unwrap();
    let schema_lines: Vec<&str> = log.lines().filter(|l| l.contains("schema.sql")).collect();
    assert_eq!(schema_lines.len(), 2, "{log}");
    assert!(
        schema_lines[0]
            .ends_with(&format!("{first} (schema not applied: the tables stay as they were until it is fixed)")),
        "{log}"
    );
    assert!(schema_lines[1].contains("site/schema.sql:1: no such table: nowhere"), "{log}");
    assert!(!log.contains(&h.display().to_string()), "the log names files relative to the folder: {log}");
}
