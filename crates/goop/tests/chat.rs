//! The chat template's moderator (its host's Lua) as a visitor's page meets it: two running
//! peers, the visitor joining and sending through its own viewer's group endpoints.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::page::post;
use common::*;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

/// `POST /_goop/group/send`: Ok, or the host's reason.
fn send(port: u16, site: &str, text: &str) -> Result<(), String> {
    let mut stream = post(port, site, "/_goop/group/send", &json!({"group": "chat", "message": {"text": text}}));
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let answer: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {raw}"));
    if answer["ok"] == true {
        Ok(())
    } else {
        Err(answer["error"].as_str().unwrap_or_default().to_string())
    }
}

/// A page in the room: the frames of its `POST /_goop/group/join` stream (chunked NDJSON), as
/// they come; the status line first. Dropping the stream is the page leaving.
struct Page {
    stream: TcpStream,
    frames: mpsc::Receiver<Value>,
    status: String,
}

fn join(port: u16, site: &str) -> Page {
    let stream = post(port, site, "/_goop/group/join", &json!({"group": "chat"}));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let (to_test, frames) = mpsc::channel();
    std::thread::spawn(move || {
        for line in reader.lines() {
            let Ok(line) = line else { return };
            // Chunk sizes are hex lines; frames are the JSON lines between them.
            if let Ok(frame @ Value::Object(_)) = serde_json::from_str::<Value>(&line) {
                if to_test.send(frame).is_err() {
                    return;
                }
            }
        }
    });
    Page { stream, frames, status }
}

impl Page {
    fn next(&self) -> Value {
        self.frames.recv_timeout(WAIT).expect("a frame from the host")
    }

    fn leave(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// The next pushed chat message (skipping notices).
    fn next_message(&self) -> Value {
        loop {
            let frame = self.next();
            if frame["type"] == "message" && frame["message"]["type"] == "message" {
                return frame["message"].clone();
            }
        }
    }
}

/// Waits for the site of `host` to be reachable through the viewer on `port`; its host name.
fn site_of(port: u16, host: &str) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let head = format!("GET /api/status HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        let mut raw = String::new();
        let _ = stream.read_to_string(&mut raw);
        let status: Value = serde_json::from_str(raw.split_once("\r\n\r\n").map_or("", |(_, b)| b)).unwrap();
        let peers = status["peers"].as_array().cloned().unwrap_or_default();
        if let Some(p) = peers.iter().find(|p| p["id"] == host && p["connected"] == true) {
            return p["site"].as_str().unwrap().trim_start_matches("http://").trim_end_matches('/').to_string();
        }
        assert!(std::time::Instant::now() < deadline, "{host} never connected: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_chat_moderator_limits_length_and_rate_and_shuts_out_a_banned_member() {
    let host_dir = tempfile::tempdir().unwrap();
    let h = host_dir.path();
    assert!(goop(&["init", h.to_str().unwrap(), "--template", "chat"]).status.success());
    configure(h, "", "");
    let host = run(h);
    let ann_dir = folder("Ann");
    let ann = run_with(ann_dir.path(), &["--connect", &host.addr]);
    let ann_id = peer_id(ann_dir.path());
    let site = site_of(ann.viewer_port, &peer_id(h));
    let port = ann.viewer_port;

    // Stay clear of a minute's end: the rate is counted per clock minute.
    let second = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() % 60;
    if second > 40 {
        std::thread::sleep(Duration::from_secs(61 - second));
    }

    let page = join(port, &site);
    assert!(page.status.contains(" 200 "), "{}", page.status);
    assert_eq!(page.next()["type"], "joined");

    // Length: 500 characters (of two bytes each) pass, 501 do not.
    assert_eq!(send(port, &site, &"a".repeat(501)), Err("a message is at most 500 characters".into()));
    assert_eq!(send(port, &site, "   "), Err("say something".into()));
    assert_eq!(send(port, &site, "what a SCAM."), Err("\"scam\" is not allowed here".into()));
    assert_eq!(send(port, &site, &"é".repeat(500)), Ok(()));
    let first = page.next_message();
    assert_eq!((first["from"].as_str(), first["label"].as_str()), (Some(ann_id.as_str()), Some("Ann")));
    assert_eq!(first["text"].as_str().map(|t| t.chars().count()), Some(500));
    assert_eq!(send(port, &site, "scampi are fine"), Ok(()), "whole words only");
    assert_eq!(page.next_message()["text"], "scampi are fine");

    // Rate: 12 messages a minute, counting those the word filter refused; the 13th is refused.
    for n in 4..=12 {
        assert_eq!(send(port, &site, &format!("message {n}")), Ok(()), "message {n}");
        assert_eq!(page.next_message()["text"], format!("message {n}"));
    }
    assert_eq!(send(port, &site, "one too many"), Err("slow down: at most 12 messages a minute".into()));

    // The host bans Ann: her messages are refused at once, and once gone she cannot come back.
    let ban = json!({"action": "ban", "peer": ann_id, "label": "Ann"}).to_string();
    let banned = goop(&["call", "--dir", h.to_str().unwrap(), "chat", &ban]);
    assert!(stdout(&banned).contains(r#""ok":true"#), "{}", stdout(&banned));
    assert_eq!(send(port, &site, "hello?"), Err("you are banned from this room".into()));
    page.leave();
    let deadline = std::time::Instant::now() + WAIT;
    let again = loop {
        let again = join(port, &site);
        if !again.status.contains(" 200 ") || std::time::Instant::now() > deadline {
            break again;
        }
        again.leave(); // the viewer had not yet seen the first page go
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(again.status.contains(" 403 "), "{}", again.status);
    assert_eq!(again.next()["error"], "you are banned from this room");

    // History keeps what was said, for pages that join later.
    let state = goop(&["call", "--dir", h.to_str().unwrap(), "chat", r#"{"action":"state"}"#]);
    let state: Value = serde_json::from_str(&stdout(&state)).unwrap();
    assert_eq!(state["result"]["messages"].as_array().map(Vec::len), Some(11), "{state}");
}
