//! Test helpers: a script folder in a temp dir and an engine over it.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use goop_script::{ChatReply, Config, Engine, Error, Peer};
use serde_json::Value;

pub struct Site {
    pub dir: tempfile::TempDir,
}

impl Site {
    pub fn new() -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("functions")).expect("functions dir");
        Site { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `rel` (e.g. `echo.lua` or `functions/add.lua`) under the script folder.
    pub fn write(&self, rel: &str, source: &str) -> &Self {
        std::fs::write(self.dir.path().join(rel), source).expect("write script");
        self
    }

    pub fn config(&self) -> Config {
        let mut c = Config::new(self.dir.path());
        c.hot_reload = false;
        c.local = Peer::new("12D3KooWSelf", "Host");
        c.timeout = Duration::from_secs(1);
        c.rate_limit_per_peer = 0;
        c.rate_limit_global = 0;
        c
    }

    pub fn engine(&self) -> Engine {
        Engine::new(self.config()).expect("engine starts")
    }
}

pub fn visitor() -> Peer {
    Peer::new("12D3KooWVisitor", "Ann")
}

/// Runs `handle(args)` of `name` as the visitor.
pub fn cmd(engine: &Engine, name: &str, args: &str) -> Result<Option<String>, Error> {
    engine.run_command(&visitor(), name, args)
}

/// The reply text of a chat message from the visitor (a failed command's included).
pub fn chat(engine: &Engine, message: &str) -> String {
    match engine.handle_chat(&visitor(), message) {
        ChatReply::Text(t) | ChatReply::Failed { reply: t, .. } => t,
        other => panic!("expected a text reply to {message:?}, got {other:?}"),
    }
}

pub fn call(engine: &Engine, name: &str, params: Value) -> Result<Value, Error> {
    engine.call(&visitor(), name, &params)
}

/// A one-script engine whose `handle` returns the value of `expr` as a string.
pub fn eval(expr: &str) -> Result<Option<String>, Error> {
    let site = Site::new();
    site.write("t.lua", &format!("function handle(args) return tostring({expr}) end"));
    cmd(&site.engine(), "t", "")
}
