//! A page of a peer's site, as the tests drive it through a viewer: its POSTs, and its group
//! joins read frame by frame.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use goop::viewer::origin::Hosts;
use serde_json::{json, Value};

/// The origin of `peer`'s site on a viewer at `port`: `<label>.localhost:PORT`.
pub fn origin(port: u16, peer: &str) -> String {
    let url = Hosts { port }.site_url(&peer.parse().unwrap());
    url.trim_start_matches("http://").trim_end_matches('/').to_string()
}

/// A POST to the viewer on `port` the way a page of origin `site` sends it.
pub fn post(port: u16, site: &str, path: &str, body: &Value) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {site}\r\nOrigin: http://{site}\r\nContent-Type: application/json\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    stream
}

/// A page in a group: the open join stream, read line by line.
pub struct Page {
    reader: BufReader<TcpStream>,
    /// Bytes left in the current chunk.
    left: usize,
}

impl Page {
    /// Joins `group` at `host` through the viewer at `port`; the HTTP status and JSON otherwise.
    pub fn join(port: u16, host: &str, group: &str) -> Result<Page, (u16, Value)> {
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
    pub fn frame(&mut self) -> Value {
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
pub fn send(port: u16, host: &str, group: &str, message: &Value) -> Result<(), String> {
    let mut stream =
        post(port, &origin(port, host), "/_goop/group/send", &json!({ "group": group, "message": message }));
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
