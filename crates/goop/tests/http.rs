//! goop.http through a real engine, against a tiny HTTP server on 127.0.0.1.
//!
//! Only 127.0.0.1 ever receives traffic: refusals of other addresses happen in the resolver,
//! before any connection, and the server counts connections to prove refused ones never came.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use goop::http::{HttpModule, HttpPolicy};
use goop_script::{ChatReply, Config, Engine, Error, Peer};
use serde_json::{json, Value};

/// Calls the engine's functions and returns what the script saw.
const FETCH: &str = r#"
function call(req)
    local p = req.params
    local body, err, status
    if p.method == "post" then
        body, err, status = goop.http.post(p.url, p.body, p.headers)
    else
        body, err, status = goop.http.get(p.url, p.headers)
    end
    local out = { err = err, status = status, len = body and #body or -1 }
    if body and #body <= 4096 then out.body = body end
    if body and #body == 256 then
        out.first, out.last, out.body = string.byte(body, 1), string.byte(body, 256), nil
    end
    return out
end
"#;

const MANY: &str = r#"
function call(req)
    local out = {}
    for i = 1, 4 do
        local body, err, status = goop.http.get(req.params.url)
        out[i] = { body = body, err = err or "", status = status }
    end
    return out
end
"#;

const COMMAND: &str = r#"
function handle(args)
    local body, err, status = goop.http.get(args)
    return (body or err) .. " " .. status
end
"#;

/// A one-request-per-connection server; counts every connection it accepts.
struct Server {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                thread::spawn(move || serve(stream, port));
            }
        });
        Server { port, connections }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn serve(mut stream: TcpStream, port: u16) {
    let Some((head, body)) = read_request(&mut stream) else { return };
    let target = head.split(' ').nth(1).unwrap_or("/").to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let reply = |stream: &mut TcpStream, status: &str, extra: &str, body: &[u8]| {
        let head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n", body.len());
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body);
    };
    match path {
        "/hello" => reply(&mut stream, "200 OK", "", b"hello"),
        "/echo" => {
            let mut all = head.to_lowercase().into_bytes();
            all.extend_from_slice(b"\r\n\r\n");
            all.extend_from_slice(&body);
            reply(&mut stream, "200 OK", "", &all);
        }
        "/missing" => reply(&mut stream, "404 Not Found", "", b"not found"),
        "/binary" => reply(&mut stream, "200 OK", "", &(0..=255u8).collect::<Vec<_>>()),
        "/exact" => reply(&mut stream, "200 OK", "", &vec![b'x'; 1024 * 1024]),
        "/big" => {
            // Announces 8 MB, then streams until the client hangs up.
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 8388608\r\nconnection: close\r\n\r\n");
            stream_until_closed(&mut stream);
        }
        "/unsized" => {
            // No length: the body ends when the connection closes.
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n");
            stream_until_closed(&mut stream);
        }
        "/slow" => {
            thread::sleep(Duration::from_secs(10));
            reply(&mut stream, "200 OK", "", b"too late");
        }
        "/redirect" => {
            let to = query.strip_prefix("to=").unwrap_or("/hello");
            reply(&mut stream, "302 Found", &format!("location: {to}\r\n"), b"");
        }
        "/loop" => reply(&mut stream, "302 Found", &format!("location: http://127.0.0.1:{port}/loop\r\n"), b""),
        _ => reply(&mut stream, "404 Not Found", "", b"no such path"),
    }
}

fn stream_until_closed(stream: &mut TcpStream) {
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..128 {
        if stream.write_all(&chunk).is_err() {
            return;
        }
    }
}

/// The request head (up to the blank line) and its body by content-length.
fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if buf.len() > 64 * 1024 || stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf[..buf.len() - 4]).to_string();
    let length = head
        .lines()
        .find_map(|l| l.to_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    Some((head, body))
}

struct Setup {
    engine: Engine,
    _dir: tempfile::TempDir,
}

fn setup(allow_loopback: bool, timeout: Duration) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "fetch.lua", COMMAND);
    write(dir.path(), "functions/fetch.lua", FETCH);
    write(dir.path(), "functions/many.lua", MANY);
    let mut config = Config::new(dir.path());
    config.hot_reload = false;
    config.timeout = timeout;
    config.rate_limit_per_peer = 10_000;
    config.rate_limit_global = 10_000;
    let http = HttpModule::new(HttpPolicy { allow_loopback });
    let engine = Engine::with_modules(config, vec![Arc::new(http)]).unwrap();
    Setup { engine, _dir: dir }
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn visitor() -> Peer {
    Peer::new("12D3KooWVisitor", "Ann")
}

fn fetch(s: &Setup, params: Value) -> Value {
    s.engine.call(&visitor(), "fetch", &params).unwrap()
}

fn get(s: &Setup, url: &str) -> Value {
    fetch(s, json!({ "url": url }))
}

#[test]
fn loopback_is_refused_by_default_in_every_form() {
    let server = Server::start();
    let s = setup(false, Duration::from_secs(5));
    let port = server.port;
    for host in ["127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.1", "127.1", "[::ffff:127.0.0.1]", "localhost"] {
        let out = get(&s, &format!("http://{host}:{port}/hello"));
        let err = out["err"].as_str().unwrap_or_default();
        assert!(err.starts_with("blocked address") && err.ends_with("(loopback)"), "{host}: {out}");
        assert_eq!(out["status"], 0, "{host}");
        assert_eq!(out["len"], -1, "{host}");
    }
    let out = get(&s, &format!("http://0.0.0.0:{port}/hello"));
    assert_eq!(out["err"], "blocked address 0.0.0.0 (unspecified)");
    assert_eq!(server.connections(), 0, "a refused request must not connect");
}

#[test]
fn get_returns_body_nil_and_status() {
    let server = Server::start();
    let s = setup(true, Duration::from_secs(5));
    let out = get(&s, &server.url("/hello"));
    assert_eq!(out, json!({ "body": "hello", "status": 200, "len": 5 }));
    // An error status is still a response: the script gets its body.
    let out = get(&s, &server.url("/missing"));
    assert_eq!(out, json!({ "body": "not found", "status": 404, "len": 9 }));
    // Bodies are bytes, not text.
    let out = get(&s, &server.url("/binary"));
    assert_eq!((out["len"].clone(), out["first"].clone(), out["last"].clone()), (json!(256), json!(0), json!(255)));
}

#[test]
fn headers_are_sent_and_post_has_a_default_content_type() {
    let server = Server::start();
    let s = setup(true, Duration::from_secs(5));
    let out = fetch(&s, json!({ "url": server.url("/echo"), "headers": { "X-Token": "abc 123" } }));
    let echoed = out["body"].as_str().unwrap();
    assert!(echoed.starts_with("get /echo http/1.1"), "{echoed}");
    assert!(echoed.contains("x-token: abc 123"), "{echoed}");

    let out = fetch(&s, json!({ "method": "post", "url": server.url("/echo"), "body": "a=1&b=2" }));
    let echoed = out["body"].as_str().unwrap();
    assert!(echoed.starts_with("post /echo http/1.1"), "{echoed}");
    assert!(echoed.contains("content-type: application/x-www-form-urlencoded"), "{echoed}");
    assert!(echoed.ends_with("\r\n\r\na=1&b=2"), "{echoed}");

    let headers = json!({ "Content-Type": "application/json" });
    let out = fetch(&s, json!({ "method": "post", "url": server.url("/echo"), "body": "{}", "headers": headers }));
    let echoed = out["body"].as_str().unwrap();
    assert!(echoed.contains("content-type: application/json"), "{echoed}");
    assert!(!echoed.contains("x-www-form-urlencoded"), "{echoed}");

    let out = fetch(&s, json!({ "url": server.url("/echo"), "headers": { "Bad Name": "x" } }));
    assert!(out["err"].as_str().unwrap().contains("invalid header \"Bad Name\""), "{out}");
}

#[test]
fn urls_and_headers_are_bounded_before_any_copy_or_connection() {
    let server = Server::start();
    let s = setup(true, Duration::from_secs(5));
    let long_url = format!("{}?q={}", server.url("/hello"), "x".repeat(8 * 1024));
    assert_eq!(get(&s, &long_url)["err"], "URL longer than 8 KB");
    // 8 KB of header names and values in all: two of 5 KB are over.
    let headers = json!({ "X-A": "a".repeat(5 * 1024), "X-B": "b".repeat(5 * 1024) });
    let out = fetch(&s, json!({ "url": server.url("/hello"), "headers": headers }));
    assert_eq!(out["err"], "headers longer than 8 KB");
    assert_eq!(server.connections(), 0, "refused before connecting");
    let headers = json!({ "X-A": "a".repeat(7 * 1024) });
    assert_eq!(fetch(&s, json!({ "url": server.url("/hello"), "headers": headers }))["status"], 200);
}

#[test]
fn three_requests_per_invocation() {
    let server = Server::start();
    let s = setup(true, Duration::from_secs(5));
    for _ in 0..2 {
        let out = s.engine.call(&visitor(), "many", &json!({ "url": server.url("/hello") })).unwrap();
        for i in 0..3 {
            assert_eq!(out[i], json!({ "body": "hello", "err": "", "status": 200 }), "request {i}: {out}");
        }
        assert_eq!(out[3], json!({ "err": "too many HTTP requests in one invocation (max 3)", "status": 0 }));
    }
    assert_eq!(server.connections(), 6, "the refused 4th request must not connect");
}

#[test]
fn bodies_over_one_megabyte_are_refused() {
    let server = Server::start();
    let s = setup(true, Duration::from_secs(5));
    assert_eq!(get(&s, &server.url("/exact"))["len"], 1024 * 1024);
    for path in ["/big", "/unsized"] {
        let out = get(&s, &server.url(path));
        assert_eq!(out, json!({ "err": "response larger than 1 MB", "status": 200, "len": -1 }), "{path}");
    }
}

#[test]
fn a_slow_server_runs_into_the_deadline() {
    let server = Server::start();
    let s = setup(true, Duration::from_secs(1));
    let start = Instant::now();
    let result = s.engine.call(&visitor(), "fetch", &json!({ "url": server.url("/slow") }));
    let elapsed = start.elapsed();
    // Either the script saw the timeout, or the engine stopped it right after.
    match result {
        Ok(out) => assert!(out["err"].as_str().unwrap_or_default().starts_with("timeout"), "{out}"),
        Err(e) => assert!(matches!(e, Error::Timeout { .. }), "{e}"),
    }
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
}

#[test]
fn redirects_are_followed_and_every_hop_is_checked() {
    let server = Server::start();
    let s = setup(true, Duration::from_secs(5));
    let out = get(&s, &server.url(&format!("/redirect?to={}", server.url("/hello"))));
    assert_eq!(out, json!({ "body": "hello", "status": 200, "len": 5 }));
    assert_eq!(server.connections(), 2);

    // Loopback is allowed here, but no other blocked range, whatever the form.
    let port = server.port;
    let hops = [
        (format!("http://0.0.0.0:{port}/hello"), "blocked address 0.0.0.0 (unspecified)"),
        ("http://10.0.0.1/".to_string(), "blocked address 10.0.0.1 (private network)"),
        ("http://[::ffff:a00:1]/".to_string(), "blocked address ::ffff:10.0.0.1 (private network)"),
        ("http://169.254.169.254/latest/meta-data/".to_string(), "blocked address 169.254.169.254 (link-local)"),
        ("http://0xa9fea9fe/".to_string(), "blocked address 169.254.169.254 (link-local)"),
    ];
    for (to, want) in hops {
        let before = server.connections();
        let out = get(&s, &server.url(&format!("/redirect?to={to}")));
        assert_eq!(out["err"], want, "{to}: {out}");
        assert_eq!(out["status"], 0, "{to}");
        assert_eq!(server.connections(), before + 1, "{to}: only the redirecting server is contacted");
    }

    for to in [format!("ftp://127.0.0.1:{port}/"), format!("gopher://127.0.0.1:{port}/")] {
        let before = server.connections();
        let out = get(&s, &server.url(&format!("/redirect?to={to}")));
        assert!(out["err"].as_str().unwrap_or_default().contains("scheme"), "{to}: {out}");
        assert_eq!(server.connections(), before + 1, "{to}");
    }
    // ureq reads an unparsable Location as a path on the same, already checked server.
    let out = get(&s, &server.url("/redirect?to=file:///etc/passwd"));
    assert!(!out["body"].as_str().unwrap_or_default().contains("root:"), "{out}");

    let out = get(&s, &server.url("/loop"));
    assert_eq!(out["err"], "too many redirects (max 5)");
}

#[test]
fn only_http_and_https_schemes() {
    let server = Server::start();
    let s = setup(true, Duration::from_secs(5));
    let port = server.port;
    for url in [
        "file:///etc/passwd".to_string(),
        format!("ftp://127.0.0.1:{port}/"),
        format!("gopher://127.0.0.1:{port}/"),
        format!("ws://127.0.0.1:{port}/"),
    ] {
        let out = get(&s, &url);
        assert!(out["err"].as_str().unwrap_or_default().contains("not allowed (only http and https)"), "{url}: {out}");
    }
    let out = get(&s, "/relative");
    assert!(out["err"].as_str().unwrap_or_default().starts_with("invalid URL"), "{out}");
    assert_eq!(server.connections(), 0);
}

#[test]
fn chat_commands_can_use_http() {
    let server = Server::start();
    let s = setup(true, Duration::from_secs(5));
    let reply = s.engine.handle_chat(&visitor(), &format!("!fetch {}", server.url("/hello")));
    assert_eq!(reply, ChatReply::Text("hello 200".into()));

    let strict = setup(false, Duration::from_secs(5));
    let reply = strict.engine.handle_chat(&visitor(), &format!("!fetch {}", server.url("/hello")));
    assert_eq!(reply, ChatReply::Text("blocked address 127.0.0.1 (loopback) 0".into()));
}
