//! Push latency on loopback: the time from a host script's `goop.group.send` to the message in
//! a visitor's page (its viewer's join stream), median and p99, next to the same lua-call that
//! sends nothing (the baseline: how long the trigger itself takes to answer).
//!
//! Two real `goop run` processes; the bench triggers sends with a lua-call through the host's
//! own viewer and reads the visitor page's stream, so it measures every hop a page sees:
//! host engine → group mailbox → libp2p stream → visitor peer → viewer → HTTP stream.
//!
//! `cargo bench -p goop --bench push`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use goop::viewer::origin::Hosts;
use serde_json::{json, Value};

const ROUNDS: usize = 400;
const WARMUP: usize = 30;

struct Peer {
    child: Child,
    addr: String,
    viewer: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn goop(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_goop")).args(args).output().expect("goop runs")
}

fn peer(label: &str, connect: Option<&str>, scripts: &[(&str, &str)]) -> Peer {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_str().expect("utf-8 path").to_string();
    assert!(goop(&["init", &path]).status.success());
    let config = json!({ "profile": { "label": label },
        "lua": { "enabled": true, "rate_limit_per_peer": 0, "rate_limit_global": 0 }, "p2p": { "mdns": false } });
    std::fs::write(dir.path().join("goop.json"), config.to_string()).expect("config");
    for (file, source) in scripts {
        std::fs::write(dir.path().join("site/lua").join(file), source).expect("script");
    }
    let mut args = vec!["run", "--dir", &path, "--listen", "/ip4/127.0.0.1/tcp/0", "--viewer", "127.0.0.1:0"];
    if let Some(addr) = connect {
        args.extend(["--connect", addr]);
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_goop"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("goop run");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut addr, mut viewer) = (None, None);
    while addr.is_none() || viewer.is_none() {
        let line = lines.next().expect("a line").expect("utf-8");
        if let Some(a) = line.strip_prefix("listening ") {
            addr = Some(a.to_string());
        } else if let Some(rest) = line.strip_prefix("viewer http://localhost:") {
            viewer = rest.split('/').next().and_then(|p| p.parse().ok());
        }
    }
    Peer { child, addr: addr.expect("addr"), viewer: viewer.expect("viewer"), _dir: dir }
}

fn origin(port: u16, peer: &str) -> String {
    let url = Hosts { port }.site_url(&peer.parse().expect("peer id"));
    url.trim_start_matches("http://").trim_end_matches('/').to_string()
}

fn post(port: u16, host: &str, path: &str, body: &Value) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("viewer");
    stream.set_nodelay(true).expect("nodelay");
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nContent-Type: application/json\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("request");
    stream
}

/// A lua-call through `port`'s viewer on `host`'s origin, read to its end.
fn call(port: u16, host: &str, function: &str, n: usize) {
    let body = json!({ "op": "lua-call", "function": function, "params": { "n": n } });
    let mut answer = String::new();
    post(port, host, "/_goop/data", &body).read_to_string(&mut answer).expect("answer");
    assert!(answer.contains(r#""ok":true"#), "{answer}");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let (median, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
    println!("{name:<48} median {median:>10.1?}   p99 {p99:>10.1?}   ({} rounds)", samples.len());
    median
}

fn main() {
    let push = "function call(r) goop.group.send('bench', { n = r.params.n }) return true end";
    let quiet = "function call(r) return true end";
    let host = peer("host", None, &[("functions/push.lua", push), ("functions/quiet.lua", quiet)]);
    let visitor = peer("visitor", Some(&host.addr), &[]);
    let host_id = host.addr.rsplit('/').next().expect("peer id").to_string();

    // The visitor's page joins; its stream is read on a thread that timestamps each message.
    let page =
        post(visitor.viewer, &origin(visitor.viewer, &host_id), "/_goop/group/join", &json!({ "group": "bench" }));
    let (arrived, arrivals) = std::sync::mpsc::channel::<(u64, Instant)>();
    std::thread::spawn(move || {
        for line in BufReader::new(page).split(b'\n').map_while(Result::ok) {
            let Some(start) = line.iter().position(|b| *b == b'{') else { continue };
            if let Ok(frame) = serde_json::from_slice::<Value>(&line[start..]) {
                if let Some(n) = frame["message"]["n"].as_u64() {
                    let _ = arrived.send((n, Instant::now()));
                }
            }
        }
    });
    std::thread::sleep(Duration::from_secs(1));

    let own = origin(host.viewer, &host_id);
    let (mut pushes, mut baseline) = (Vec::new(), Vec::new());
    for n in 0..WARMUP + ROUNDS {
        let started = Instant::now();
        call(host.viewer, &own, "push", n);
        let (got, at) = arrivals.recv_timeout(Duration::from_secs(10)).expect("the page got the message");
        assert_eq!(got, n as u64);
        let started_quiet = Instant::now();
        call(host.viewer, &own, "quiet", n);
        if n >= WARMUP {
            pushes.push(at - started);
            baseline.push(started_quiet.elapsed());
        }
    }
    println!("push latency on loopback, two goop processes:");
    let push = report("lua-call that sends → message in the visitor's page", pushes);
    let base = report("the same lua-call sending nothing (its answer)", baseline);
    println!("ratio of medians: {:.2}", push.as_secs_f64() / base.as_secs_f64());
}
