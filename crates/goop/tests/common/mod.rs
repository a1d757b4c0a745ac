//! Helpers for tests that drive the `goop` binary: peer folders and running peers on loopback.
#![allow(dead_code)] // each test file uses its own subset

pub mod page;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub fn goop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_goop")).args(args).env_remove("RUST_LOG").output().expect("goop runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A peer folder from `goop init`, with mDNS off so tests stay on loopback.
pub fn folder(label: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    assert!(goop(&["init", dir.path().to_str().unwrap()]).status.success());
    let config =
        format!(r#"{{"profile": {{"label": "{label}"}}, "lua": {{"enabled": true}}, "p2p": {{"mdns": false}}}}"#);
    std::fs::write(dir.path().join("goop.json"), config).unwrap();
    dir
}

/// The peer ID of the folder `dir`.
pub fn peer_id(dir: &Path) -> String {
    stdout(&goop(&["id", "--dir", dir.to_str().unwrap()])).trim().to_string()
}

/// A running peer; killed when dropped.
pub struct Running {
    pub child: Child,
    /// Its libp2p address, `/ip4/127.0.0.1/tcp/N/p2p/ID`.
    pub addr: String,
    /// Its QUIC address beside it, `/ip4/127.0.0.1/udp/N/quic-v1/p2p/ID`.
    pub quic: String,
    /// Its viewer's port on 127.0.0.1.
    pub viewer_port: u16,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `goop run` on loopback with OS-chosen ports, plus `extra` arguments.
pub fn run_with(dir: &Path, extra: &[&str]) -> Running {
    start(dir, extra, Stdio::null())
}

/// Starts `goop run` like [`run_with`], its log (stderr) going to `log`.
pub fn run_logged(dir: &Path, log: &Path) -> Running {
    start(dir, &[], Stdio::from(std::fs::File::create(log).unwrap()))
}

fn start(dir: &Path, extra: &[&str], stderr: Stdio) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_goop"))
        .args(["run", "--dir", dir.to_str().unwrap(), "--listen", "/ip4/127.0.0.1/tcp/0", "--viewer", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("goop run starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut addr, mut quic, mut viewer_port) = (None, None, None);
    while addr.is_none() || quic.is_none() || viewer_port.is_none() {
        let line = lines.next().expect("goop run printed its addresses").unwrap();
        if let Some(a) = line.strip_prefix("listening ") {
            if a.contains("/tcp/") {
                addr = Some(a.to_string());
            } else if a.contains("/quic-v1/") {
                quic = Some(a.to_string());
            }
        } else if let Some(rest) = line.strip_prefix("viewer http://localhost:") {
            viewer_port = rest.split('/').next().and_then(|p| p.parse().ok());
        } else {
            panic!("unexpected line {line:?}");
        }
    }
    let addr = addr.unwrap();
    assert!(addr.starts_with("/ip4/127.0.0.1/tcp/") && addr.contains("/p2p/12D3KooW"), "{addr}");
    Running { child, addr, quic: quic.unwrap(), viewer_port: viewer_port.unwrap() }
}

pub fn run(dir: &Path) -> Running {
    run_with(dir, &[])
}

/// A process's peak resident memory (`VmHWM` in /proc/PID/status), in KiB.
pub fn peak_memory_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process is running");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("a VmHWM line");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmHWM in kB")
}

/// Replaces the `p2p` and `lua` sections of the peer folder `dir`'s goop.json (mDNS stays off).
pub fn configure(dir: &Path, lua: &str, p2p: &str) {
    let p2p = if p2p.is_empty() { r#""mdns": false"#.to_string() } else { format!(r#""mdns": false, {p2p}"#) };
    let lua = if lua.is_empty() { r#""enabled": true"#.to_string() } else { format!(r#""enabled": true, {lua}"#) };
    let config = format!(r#"{{"profile": {{"label": "Host"}}, "lua": {{{lua}}}, "p2p": {{{p2p}}}}}"#);
    std::fs::write(dir.join("goop.json"), config).unwrap();
}

/// One HTTP/1.1 request; status, lower-cased head, body.
pub fn http(
    port: u16,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_lowercase(), body.to_string())
}

/// `goop call` on the folder, as its owner or (`as_peer`) as another peer: the answer's result,
/// or its error as `{"error": …}`.
pub fn call_result(dir: &Path, as_peer: Option<&str>, function: &str, params: serde_json::Value) -> serde_json::Value {
    let params = params.to_string();
    let mut args = vec!["call", "--dir", dir.to_str().unwrap()];
    if let Some(id) = as_peer {
        args.extend(["--as", id]);
    }
    args.extend([function, params.as_str()]);
    let out = goop(&args);
    match serde_json::from_str::<serde_json::Value>(&stdout(&out)) {
        Ok(answer) if answer["ok"] == true => answer["result"].clone(),
        Ok(answer) => serde_json::json!({ "error": answer["error"] }),
        Err(_) => serde_json::json!({ "error": String::from_utf8_lossy(&out.stderr).trim().to_string() }),
    }
}

/// The viewer's `/api/status` on `port` (null while the viewer does not answer with JSON).
pub fn viewer_status(port: u16) -> serde_json::Value {
    let (_, _, body) = http(port, "GET", &format!("localhost:{port}"), "/api/status", &[], "");
    serde_json::from_str(&body).unwrap_or_default()
}
